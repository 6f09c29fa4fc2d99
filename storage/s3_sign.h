/* AWS Signature Version 4 (AWS4-HMAC-SHA256) for Amazon S3 and S3-compatible stores, and the
 * AWS shared credentials file: pure CPU work on caller input, no I/O, and no state but caches
 * that do not change a result (the SHA-256 implementation, each thread's last signing key), so
 * every byte is unit-tested (tests/unit/test_s3_sign.c runs the aws-c-auth SigV4 suite and the
 * S3 documentation's worked examples). Both forms of SigV4 are here: header authorization
 * (lfsgate's own HEAD/GET/PUT to the store) and query authorization (presigned URLs handed to
 * clients); and reading S3's ListObjectsV2 answer. Results live in the caller's h2o pool. Any
 * thread, concurrently. Nothing here logs, and no error message contains a key, a token or a
 * signature. */
#ifndef LFS_STORAGE_S3_SIGN_H
#define LFS_STORAGE_S3_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/error.h"

struct st_h2o_mem_pool_t; /* h2o_mem_pool_t */

/* Longest lifetime S3 accepts for a presigned URL (7 days). */
#define LFS_S3_MAX_EXPIRES 604800L

/* The payload hash of presigned URLs: the client's body is not part of the signature. */
#define LFS_S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string: the payload hash of a request without a body. */
#define LFS_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* An access key: what signs. session_token is NULL for long-term keys; temporary keys (STS)
 * put it into every request as X-Amz-Security-Token. */
struct lfs_s3_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
};

/* A header or query parameter as it goes on the wire, not encoded. */
struct lfs_s3_param {
    const char *name;
    const char *value;
};

/* What to sign. */
struct lfs_s3_sign_input {
    const char *method;  /* "GET", "PUT", "HEAD", ... */
    const char *host;    /* the Host header the client sends (with the port when not default) */
    const char *path;    /* not encoded, starting with '/': each '/'-separated segment is
                          * percent-encoded (RFC 3986 unreserved kept), '/' kept, as S3 wants */
    bool normalize_path; /* remove "." and ".." segments and empty ones first (SigV4 for
                          * services other than S3; S3 keys are signed as they are) */
    const struct lfs_s3_param *query; /* extra query parameters, or NULL */
    size_t nquery;
    const struct lfs_s3_param *headers; /* extra signed headers besides host, or NULL; a name
                                         * given twice is signed as one comma-joined value */
    size_t nheaders;
    /* Hex SHA-256 of the body, or LFS_S3_UNSIGNED_PAYLOAD; NULL: the hash of an empty body. */
    const char *payload_hash;
    /* Header authorization only: sign (and send) x-amz-content-sha256, as S3 requires. */
    bool content_sha256_header;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
    time_t now;          /* X-Amz-Date */
    /* 0: header authorization. 1..LFS_S3_MAX_EXPIRES: a presigned URL valid this long. */
    long expires;
};

/* The result, in the pool. */
struct lfs_s3_signed {
    const char *canonical_request; /* for tests: never log it next to the signature */
    const char *string_to_sign;
    const char *signature; /* 64 hex digits */
    const char *amz_date;  /* "20130524T000000Z": header auth sends it as x-amz-date */
    /* Header authorization: the Authorization header value
     * "AWS4-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=<list>, Signature=<hex>". */
    const char *authorization;
    /* The URL's query, without '?': the canonical query string (extra parameters and,
     * presigned, the X-Amz-* ones, encoded, sorted), presigned followed by
     * "&X-Amz-Signature=<hex>". "" for header authorization without parameters. */
    const char *query;
    const char *encoded_path; /* the path as it goes in the URL (and the canonical request) */
};

/* Signs `in` with `cred`. Returns 0 with *out filled from pool, or -1 with err (500: a lifetime
 * outside 1..604800, a header or host with a line break, a missing field, OpenSSL failure).
 * Any thread. */
int lfs_s3_sign(const struct lfs_s3_credentials *cred, const struct lfs_s3_sign_input *in,
                struct st_h2o_mem_pool_t *pool, struct lfs_s3_signed *out, struct lfs_error *err);

/* One profile of an AWS shared credentials file ("~/.aws/credentials", INI). */
struct lfs_s3_profile {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[2048]; /* "" when the profile has none */
    /* role_arn / web_identity_token_file / credential_process / sso_*: sources lfsgate does
     * not implement in a profile; named in the error when the profile has no keys. */
    char unsupported[64];
};

/* Finds [profile] in the text of a shared credentials file and reads aws_access_key_id,
 * aws_secret_access_key and aws_session_token (keys case-insensitive, blanks around '=' and
 * the value ignored, ';' and '#' comment lines). Returns 1 when the profile has both keys,
 * 0 when the file has no such profile, or -1 with err (500) when it has it but without the
 * keys, or with a value too long. The message never quotes a value. Any thread. */
int lfs_s3_profile_parse(const char *text, size_t len, const char *profile,
                         struct lfs_s3_profile *out, struct lfs_error *err);

/* Reads a ListObjectsV2 answer (no delimiter) for the objects under `prefix` (which ends in
 * '/') into out, in the pool: the objects whose key past the prefix is an oid, with their
 * <Size>, and how far the listing reaches (<IsTruncated>false</IsTruncated>: complete;
 * otherwise up to the last key listed, whatever its name). Keys are XML-unescaped. Returns 0,
 * or -1 for an answer that is not such a listing (keys outside the prefix or out of order, an
 * oid without a size). Any thread. */
struct lfs_storage_listing;
int lfs_s3_parse_listing(const char *xml, size_t len, const char *prefix,
                         struct st_h2o_mem_pool_t *pool, struct lfs_storage_listing *out);

#endif
