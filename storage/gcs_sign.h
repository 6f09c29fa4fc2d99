/* Google Cloud Storage V4 signed URLs (GOOG4-RSA-SHA256, query-string authentication). Signing
 * is split in two so the RSA step is pluggable: lfs_gcs_sign_begin builds the canonical request,
 * the string to sign and the URL up to its signature; lfs_gcs_sign_end appends the signature,
 * made either here from a service-account key (lfs_gcs_sign) or by IAM signBlob for workload
 * identity (storage/gcs_iam.h). Pure CPU work: no I/O, no global state; a parsed key is
 * immutable and may be used by every thread at once. The canonical request and string to sign
 * are exposed so the unit tests can compare them byte for byte with Google's conformance
 * vectors. */
#ifndef LFS_STORAGE_GCS_SIGN_H
#define LFS_STORAGE_GCS_SIGN_H

#include <stddef.h>
#include <time.h>

#include "common/error.h"

/* Longest lifetime GCS accepts for a V4 signed URL (7 days). */
#define LFS_GCS_MAX_EXPIRES 604800L
/* Longest RSA signature accepted (a 4096-bit key). */
#define LFS_GCS_MAX_SIGNATURE 512

/* A service account's signing identity: client_email and its RSA private key. */
struct lfs_gcs_key;

/* Parses a service-account JSON key file (the text, len bytes). Fails with status 500 and a
 * message that names what is wrong but never quotes the key ("missing \"private_key\"");
 * the caller prefixes the option path. *out is freed with lfs_gcs_key_free. Any thread. */
int lfs_gcs_key_parse(const char *json, size_t len, struct lfs_gcs_key **out,
                      struct lfs_error *err);

void lfs_gcs_key_free(struct lfs_gcs_key *key);

/* The key's client_email (owned by the key). */
const char *lfs_gcs_key_email(const struct lfs_gcs_key *key);

/* A header or query parameter: name and value as they go on the wire (not encoded). */
struct lfs_gcs_param {
    const char *name;
    const char *value;
};

/* What to sign. */
struct lfs_gcs_sign_input {
    const char *method;   /* "GET", "PUT", "HEAD", ... */
    const char *base_url; /* "<scheme>://<authority>" exactly as it begins the URL */
    const char *host;     /* the Host header the client will send (port when not default) */
    const char *path;     /* resource path, not encoded, starting with '/': "/bucket/object" */
    time_t now;           /* X-Goog-Date */
    long expires;         /* X-Goog-Expires, 1..LFS_GCS_MAX_EXPIRES seconds */
    const struct lfs_gcs_param *headers; /* extra signed headers (besides host), or NULL */
    size_t nheaders;
    const struct lfs_gcs_param *query; /* extra query parameters, or NULL */
    size_t nquery;
};

/* The result; every string is malloc'd and freed by lfs_gcs_signed_free. */
struct lfs_gcs_signed {
    /* base_url + encoded path + "?" + query + "&X-Goog-Signature=" and, once signed, the
     * signature in lowercase hex */
    char *url;
    char *canonical_request; /* for tests and debugging: never log it next to the URL */
    char *string_to_sign;
};

/* Builds what `in` signs for the account `email`: canonical request, string to sign and the URL
 * ending in "X-Goog-Signature=" (no signature yet). Returns 0 with *out filled, or -1 with err
 * (500: bad input or out of memory; nothing is allocated then). Any thread. */
int lfs_gcs_sign_begin(const char *email, const struct lfs_gcs_sign_input *in,
                       struct lfs_gcs_signed *out, struct lfs_error *err);

/* Appends the RSA-SHA256 signature of out->string_to_sign (len raw bytes, made by whoever holds
 * the key) to out->url in hex. Returns 0, or -1 with err (502: not a plausible RSA signature;
 * 500: out of memory) leaving *out as it was. Any thread. */
int lfs_gcs_sign_end(struct lfs_gcs_signed *out, const unsigned char *sig, size_t len,
                     struct lfs_error *err);

/* Signs `in` with `key` (begin, RSA-SHA256 here, end). Returns 0 with *out filled, or -1 with
 * err (500: bad input or an OpenSSL failure; nothing is allocated then). Any thread,
 * concurrently. */
int lfs_gcs_sign(const struct lfs_gcs_key *key, const struct lfs_gcs_sign_input *in,
                 struct lfs_gcs_signed *out, struct lfs_error *err);

/* base_url + path percent-encoded as in a signed URL ('/' kept), without a query: the URL of
 * a request authorized by a header instead. malloc'd (the caller frees), NULL when out of
 * memory. Any thread. */
char *lfs_gcs_object_url(const char *base_url, const char *path);

/* Frees the strings of a result of lfs_gcs_sign (safe on a zeroed struct). */
void lfs_gcs_signed_free(struct lfs_gcs_signed *s);

#endif
