/* Azure Blob Storage credentials and signatures, free of I/O so every byte of them is
 * unit-tested: connection strings, service SAS tokens (the string-to-sign of each service
 * version), Shared Key request authorization, and the small encodings they need (base64,
 * the two date formats, blob paths in URLs), and the List Blobs answer. Pure functions on
 * caller buffers (or a pool); any thread.
 * Nothing here logs, and no error message contains a key or a signature. */
#ifndef LFS_STORAGE_AZURE_SIGN_H
#define LFS_STORAGE_AZURE_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

/* The service version lfsgate signs with and sends as x-ms-version. */
#define LFS_AZURE_VERSION "2021-08-06"

/* The storage emulator's well-known development account (UseDevelopmentStorage=true). */
#define LFS_AZURE_DEV_ACCOUNT "devstoreaccount1"
#define LFS_AZURE_DEV_KEY                                                                          \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define LFS_AZURE_DEV_ENDPOINT "http://127.0.0.1:10000/" LFS_AZURE_DEV_ACCOUNT

/* A storage account as a connection string describes it. */
struct lfs_azure_account {
    char name[256];
    unsigned char key[128]; /* decoded AccountKey */
    size_t key_len;
    char endpoint[512]; /* blob endpoint, no trailing '/': "https://acct.blob.core.windows.net" */
    char path[512];     /* the endpoint's path: "" or e.g. "/devstoreaccount1" (path-style) */
};

/* Parses an Azure connection string: ';'-separated Key=Value pairs, each split on its first
 * '=', key names case-insensitive. Understands DefaultEndpointsProtocol (http/https,
 * default https), AccountName, AccountKey (base64), BlobEndpoint, EndpointSuffix (default
 * core.windows.net) and UseDevelopmentStorage=true (the emulator's devstoreaccount1 account on
 * http://127.0.0.1:10000); other keys (QueueEndpoint, ...) are ignored. Returns 0, or -1 with
 * err (status 500) saying what is wrong, never quoting the key. */
int lfs_azure_parse_connection_string(const char *text, struct lfs_azure_account *out,
                                      struct lfs_error *err);

/* Standard base64 with padding. Writes 4 * ceil(len / 3) characters and a NUL into out.
 * Returns the length written. */
size_t lfs_azure_base64_encode(const unsigned char *in, size_t len, char *out);

/* Strict base64 decoding (standard alphabet, padding required, no whitespace). Writes at most
 * cap bytes. Returns the decoded length, or (size_t)-1 when the text is not base64 or does not
 * fit. */
size_t lfs_azure_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* "2024-01-01T00:00:00Z" (UTC, second precision) into out[21]. Returns out. */
const char *lfs_azure_iso8601(time_t t, char *out);

/* "Mon, 01 Jan 2024 00:00:00 GMT" (RFC 1123, locale-independent) into out[30]. Returns out. */
const char *lfs_azure_rfc1123(time_t t, char *out);

/* Percent-encodes a blob name for a URL path: every '/'-separated segment encoded, the '/'
 * kept. out must hold 3 * strlen(name) + 1 bytes. Returns the encoded length. */
size_t lfs_azure_path_encode(const char *name, char *out);

/* HMAC-SHA256 of msg under key, base64-encoded into out[45]. Returns 0, or -1 if OpenSSL
 * fails. */
int lfs_azure_hmac_base64(const unsigned char *key, size_t key_len, const char *msg, size_t len,
                          char *out);

/* The fields of a service SAS for one blob (sr=b). Strings, "" or NULL when absent, raw
 * (not URL-encoded). permissions, expiry and version are required. */
struct lfs_azure_sas {
    const char *permissions;         /* sp, e.g. "r", "cw" */
    const char *start;               /* st, ISO 8601 */
    const char *expiry;              /* se */
    const char *identifier;          /* si (stored access policy) */
    const char *ip;                  /* sip */
    const char *protocol;            /* spr: "https" or "https,http" */
    const char *version;             /* sv */
    const char *cache_control;       /* rscc */
    const char *content_disposition; /* rscd */
    const char *content_encoding;    /* rsce */
    const char *content_language;    /* rscl */
    const char *content_type;        /* rsct */
};

/* Writes the string-to-sign of a blob service SAS as the service computes it for sas->version
 * (2020-12-06 and later; 2018-11-09; 2015-04-05 and later) into buf. The canonicalized
 * resource is "/blob/<account>/<container>/<blob>" with the blob name unencoded. Returns its
 * length, or -1 when buf is too small or a required field is missing. */
int lfs_azure_sas_string_to_sign(const char *account, const char *container, const char *blob,
                                 const struct lfs_azure_sas *sas, char *buf, size_t size);

/* Writes the SAS query string, without '?': sv, spr, st, se, sip, si, sr=b, sp, rscc, rscd,
 * rsce, rscl, rsct (those given, in this order, values percent-encoded) and sig last, signed
 * with the account key. Returns its length, or -1 with err. */
int lfs_azure_sas_query(const struct lfs_azure_account *account, const char *container,
                        const char *blob, const struct lfs_azure_sas *sas, char *buf, size_t size,
                        struct lfs_error *err);

/* One request to authorize with Shared Key. */
struct lfs_azure_request {
    const char *method;
    const char *path;  /* the URL's path as sent (percent-encoded), e.g. "/acct/lfs/a%20b.bin" */
    const char *query; /* the URL's query without '?', or NULL */
    const char *const *headers; /* "Name: value" lines, NULL-terminated: every header sent that
                                 * takes part in the signature (Content-*, Range, x-ms-*) */
};

/* Writes the Shared Key string-to-sign (service version 2015-02-21 and later: an empty
 * Content-Length for 0) into buf: the verb, the standard headers, the x-ms-* headers
 * lowercased and sorted, then "/<account><path>" and the query parameters, lowercased,
 * sorted, decoded. Returns its length, or -1 when buf is too small. */
int lfs_azure_shared_key_string_to_sign(const char *account, const struct lfs_azure_request *req,
                                        char *buf, size_t size);

/* Writes the Authorization header value "SharedKey <account>:<signature>" into buf.
 * Returns its length, or -1 with err. */
int lfs_azure_shared_key(const struct lfs_azure_account *account,
                         const struct lfs_azure_request *req, char *buf, size_t size,
                         struct lfs_error *err);

/* A content type for a file name from its extension ("data.csv" -> "text/csv"), or NULL
 * when the extension is unknown. Returns a static string. */
const char *lfs_azure_content_type_for(const char *filename);

struct st_h2o_mem_pool_t;
/* The text between the next `open` tag and its `close` in [*p, limit), XML-unescaped into the
 * pool; moves *p past it. NULL when there is none before limit. Plain XML, nothing
 * Azure-specific (the S3 listing reads it too). Any thread. */
char *lfs_azure_xml_text(const char **p, const char *limit, const char *open, const char *close,
                         struct st_h2o_mem_pool_t *pool);

/* Reads a List Blobs answer (no delimiter) for the blobs under `prefix` (which ends in '/')
 * into out, in the pool: the blobs whose name past the prefix is an oid, with their
 * Content-Length, and how far the listing reaches (<NextMarker> empty: complete; otherwise up
 * to the last blob listed, whatever its name: deeper names, such as a nested repository's,
 * count). Names are XML-unescaped. Returns 0, or -1 for an answer that is not such a listing
 * (including blobs out of name order). */
struct lfs_storage_listing;
int lfs_azure_parse_listing(const char *xml, size_t len, const char *prefix,
                            struct st_h2o_mem_pool_t *pool, struct lfs_storage_listing *out);

/* Reads a List Blobs answer (include=metadata, no delimiter) of the locks under `prefix`
 * (which ends in "locks/"): every blob "<prefix><name>.lock" whose metadata "lock" holds its
 * content (base64), with its Etag (quoted, as If-Match wants it) as the version, in name order
 * into *recs (pool), their number into *n, and the <NextMarker> into *marker ("" when the
 * listing is complete). Blobs of another shape are skipped. Returns 0, or -1 for an answer
 * that is not such a listing (including locks out of name order). Everything it returns lives in
 * the pool. Any thread. */
struct lfs_lock_record;
int lfs_azure_parse_lock_listing(const char *xml, size_t len, const char *prefix,
                                 struct st_h2o_mem_pool_t *pool, struct lfs_lock_record **recs,
                                 size_t *n, const char **marker);
/* Size of the uncommitted block named `id` (one of the block ids azure.c makes, at most 24
 * characters) in a Get Block List answer, or -1 when the answer does not list it with a
 * size. Defined in azure.c, which reads those answers. Any thread. */
int64_t lfs_azure_block_list_size(const char *xml, size_t len, const char *id);
/* One page of a List Blobs answer (no delimiter) for the blobs under `prefix`: every blob's
 * name past the prefix, XML-unescaped, in name order, with its Content-Length (-1 when the
 * answer has none), and the marker of the next page (NULL: the listing is complete). All in
 * the pool. */
struct lfs_azure_blob {
    const char *name;
    int64_t size;
};
struct lfs_azure_blob_page {
    size_t n;
    const struct lfs_azure_blob *blobs;
    const char *next_marker;
};
/* Reads such an answer into out. Returns 0, or -1 for an answer that is not a listing of
 * `prefix` (including blobs out of name order). Any thread. */
int lfs_azure_parse_blobs(const char *xml, size_t len, const char *prefix,
                          struct st_h2o_mem_pool_t *pool, struct lfs_azure_blob_page *out);

#endif
