/* Amazon S3 and S3-compatible stores (giftless.storage.amazon_s3:AmazonS3Storage; MinIO, Ceph
 * RGW, R2, Wasabi through `endpoint`): objects live in one bucket under
 * "[path_prefix/]<org_path>/<repo>/<oid>", giftless's layout. Every request is signed with
 * AWS Signature Version 4 (storage/s3_sign.c) with the keys of the AWS default chain
 * (storage/s3_creds.c): long-term keys found at startup, or temporary ones (web identity,
 * container, IMDS) that may have to be waited for, so signing is asynchronous everywhere: a
 * request never signs with expired keys. basic_external hands the clients presigned PUT/GET URLs
 * (the PUT signs x-amz-checksum-sha256, the oid in base64, so S3 refuses a body with another
 * SHA-256); existence and size are HEADs with header authorization sent through the event-loop HTTP
 * client, one per object, all at once; basic_streaming uploads are hashed first and sent as one
 * PUT whose payload hash is the verified oid, and downloads are ranged GETs streamed through
 * storage/remote.c's bounded buffer. All request-scoped state is owned by the request pool. */
#include "storage/storage.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "storage/azure_sign.h"
#include "storage/http_client.h"
#include "storage/remote.h"
#include "storage/s3_creds.h"
#include "storage/s3_sign.h"

#define S3_STORE "s3 storage"
#define S3_DEFAULT_REGION "us-east-1"
#define S3_DEFAULT_TIMEOUT_S 20
/* Largest object one PUT may create (S3's limit; larger ones go as a multipart upload, and
 * so do those over the multipart_threshold option). */
#define S3_PUT_MAX (5ull << 30)

struct lfs_storage_s3 {
    struct lfs_storage base;
    char *bucket;
    char *prefix;   /* "" or "a/b": no leading or trailing '/' */
    char *region;   /* "us-east-1" */
    char *base_url; /* "<scheme>://<authority>" of every request, default port left out */
    char *host;     /* the authority: what the clients send as Host and we sign */
    bool virtual_style;
    bool checksum;    /* sign x-amz-checksum-sha256 into presigned uploads */
    uint64_t put_max; /* larger basic_streaming uploads go as multipart uploads */
    long timeout_ms;
    struct lfs_s3_creds *creds; /* the keys, or where temporary ones come from */
};

/* ---- configuration ---- */

/* S3 bucket names: 3-63 of a-z, 0-9, '.', '-', starting and ending with a letter or digit
 * ('_' too, which some S3-compatible stores allow). */
static bool valid_bucket(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > 63 || s[0] == '.' || s[0] == '-' || s[len - 1] == '.' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.' || s[i] == '_'))
            return false;
    return true;
}

static bool valid_region(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* Reads an http(s)://host[:port][/] endpoint (h2o's URL parser) into base URL and Host value,
 * the default port dropped; `bucket_host` prefixes the host with "<bucket>." (virtual-hosted
 * style). Returns 0, or -1 when it is not such a URL. */
static int parse_endpoint(struct lfs_storage_s3 *st, const char *endpoint)
{
    h2o_url_t url;
    size_t len = strlen(endpoint);
    if (len == 0 || len > 255 || strpbrk(endpoint, "@?#") != NULL ||
        h2o_url_parse(endpoint, len, &url) != 0 || url.host.len == 0 ||
        (url.path.len > 0 && !(url.path.len == 1 && url.path.base[0] == '/')))
        return -1;
    bool https = url.scheme == &H2O_URL_SCHEME_HTTPS;
    if (!https && url.scheme != &H2O_URL_SCHEME_HTTP)
        return -1;
    uint16_t port = h2o_url_get_port(&url);
    bool default_port = port == (https ? 443 : 80);
    char host[300];
    int n = snprintf(host, sizeof(host), "%s%s%.*s", st->virtual_style ? st->bucket : "",
                     st->virtual_style ? "." : "", (int)url.host.len, url.host.base);
    if (n < 0 || (size_t)n >= sizeof(host) - 8)
        return -1;
    if (!default_port)
        snprintf(host + n, sizeof(host) - (size_t)n, ":%u", (unsigned)port);
    size_t blen = strlen(host) + 9;
    st->host = strdup(host);
    st->base_url = malloc(blen);
    if (st->host == NULL || st->base_url == NULL)
        return -1;
    snprintf(st->base_url, blen, "%s://%s", https ? "https" : "http", host);
    return 0;
}

static void s3_free(struct lfs_storage_s3 *st)
{
    lfs_s3_creds_free(st->creds);
    free(st->bucket);
    free(st->prefix);
    free(st->region);
    free(st->base_url);
    free(st->host);
    free(st);
}

static int s3_create(const json_t *options, const char *path, struct lfs_storage **out,
                     struct lfs_error *err)
{
    if (lfs_http_client_load(path, err) < 0)
        return -1;
    static const char *const keys[] = {"bucket_name",
                                       "path_prefix",
                                       "endpoint",
                                       "region",
                                       "addressing_style",
                                       "request_timeout",
                                       "checksum_sha256",
                                       "sts_endpoint",
                                       "multipart_threshold",
                                       NULL};
    const char *bucket, *prefix, *endpoint, *region, *style, *sts_endpoint;
    const char *env_region = getenv("AWS_REGION");
    if (env_region == NULL || env_region[0] == '\0')
        env_region = getenv("AWS_DEFAULT_REGION");
    if (env_region == NULL || env_region[0] == '\0')
        env_region = S3_DEFAULT_REGION;
    long long timeout, put_max;
    bool checksum;
    char kpath[256];
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "bucket_name", NULL, &bucket, err) < 0 ||
        lfs_config_get_string(options, path, "path_prefix", "", &prefix, err) < 0 ||
        lfs_config_get_string(options, path, "endpoint", NULL, &endpoint, err) < 0 ||
        lfs_config_get_string(options, path, "region", env_region, &region, err) < 0 ||
        lfs_config_get_string(options, path, "addressing_style", NULL, &style, err) < 0 ||
        lfs_config_get_int(options, path, "request_timeout", S3_DEFAULT_TIMEOUT_S, 1, 3600,
                           &timeout, err) < 0 ||
        lfs_config_get_bool(options, path, "checksum_sha256", true, &checksum, err) < 0 ||
        lfs_config_get_string(options, path, "sts_endpoint", NULL, &sts_endpoint, err) < 0 ||
        lfs_config_get_size(options, path, "multipart_threshold", (long long)S3_PUT_MAX, 5LL << 20,
                            (long long)S3_PUT_MAX, &put_max, err) < 0)
        return -1;
    if (bucket == NULL || bucket[0] == '\0')
        return lfs_error_set(err, 500, "config: %s: required key is missing",
                             lfs_config_path(kpath, sizeof(kpath), path, "bucket_name"));
    if (!valid_bucket(bucket))
        return lfs_error_set(err, 500,
                             "config: %s: \"%s\" is not a valid bucket name (3-63 characters of "
                             "a-z, 0-9, '.', '-', '_', starting and ending with a letter or digit)",
                             lfs_config_path(kpath, sizeof(kpath), path, "bucket_name"), bucket);
    if (!valid_region(region))
        return lfs_error_set(err, 500,
                             "config: %s: \"%s\" is not a region name (e.g. \"eu-west-1\")",
                             lfs_config_path(kpath, sizeof(kpath), path, "region"), region);
    if (style != NULL && strcmp(style, "path") != 0 && strcmp(style, "virtual") != 0)
        return lfs_error_set(err, 500, "config: %s: expected \"path\" or \"virtual\", got \"%s\"",
                             lfs_config_path(kpath, sizeof(kpath), path, "addressing_style"),
                             style);
    struct lfs_storage_s3 *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return lfs_error_set(err, 500, "out of memory");
    extern const struct lfs_storage_ops lfs_storage_s3_ops;
    st->base.ops = &lfs_storage_s3_ops;
    st->checksum = checksum;
    st->put_max = (uint64_t)put_max;
    st->timeout_ms = (long)timeout * 1000;
    /* Virtual-hosted style on AWS (path style is deprecated there); path style with an
     * endpoint, as most S3-compatible stores want. */
    st->virtual_style = style != NULL ? strcmp(style, "virtual") == 0 : endpoint == NULL;
    st->bucket = strdup(bucket);
    st->region = strdup(region);
    /* path_prefix: leading and trailing '/' dropped (giftless drops the leading one). */
    int rc = lfs_storage_prefix_normalize(prefix, &st->prefix);
    if (rc > 0) {
        s3_free(st);
        return lfs_error_set(err, 500,
                             "config: %s: \"%s\" is not a usable key prefix (empty, \".\" or "
                             "\"..\" segments, or control characters)",
                             lfs_config_path(kpath, sizeof(kpath), path, "path_prefix"), prefix);
    }
    if (rc < 0 || st->bucket == NULL || st->prefix == NULL || st->region == NULL) {
        s3_free(st);
        return lfs_error_set(err, 500, "out of memory");
    }
    char aws[128];
    snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com", region);
    if (parse_endpoint(st, endpoint != NULL ? endpoint : aws) < 0) {
        s3_free(st);
        return lfs_error_set(err, 500, "config: %s: expected http(s)://host[:port], got \"%s\"",
                             lfs_config_path(kpath, sizeof(kpath), path, "endpoint"),
                             endpoint != NULL ? endpoint : aws);
    }
    if (lfs_s3_creds_load(st->region, sts_endpoint, &st->creds, err) < 0) {
        lfs_error_prefix(err, "config: %s: ", path);
        s3_free(st);
        return -1;
    }
    lfs_log(LFS_LOG_INFO, S3_STORE ": bucket \"%s\"%s%s at %s (%s style, region %s), key from %s",
            st->bucket, st->prefix[0] ? " under " : "", st->prefix, st->base_url,
            st->virtual_style ? "virtual-hosted" : "path", st->region,
            lfs_s3_creds_source(st->creds));
    *out = &st->base;
    return 0;
}

static void s3_destroy(struct lfs_storage *storage)
{
    s3_free((struct lfs_storage_s3 *)storage);
}

/* ---- names and signatures ---- */

/* The object's path in the URL, not encoded: "/[<bucket>/]<object name>" in the pool
 * (storage/remote.h names the object). NULL with err 422 for an invalid key. */
static const char *object_path(const struct lfs_storage_s3 *st, const struct lfs_object_key *key,
                               h2o_mem_pool_t *pool, struct lfs_error *err)
{
    const char *name = lfs_storage_object_name(st->prefix, key, pool, err);
    if (name == NULL)
        return NULL;
    size_t n = strlen(st->bucket) + strlen(name) + 3;
    struct lfs_strbuf b = {.buf = h2o_mem_alloc_pool(pool, n), .cap = n};
    lfs_strbuf_add(&b, "/", 1);
    if (!st->virtual_style) {
        lfs_strbuf_adds(&b, st->bucket);
        lfs_strbuf_add(&b, "/", 1);
    }
    lfs_strbuf_adds(&b, name);
    return b.buf;
}

/* Signs a request for `path` with cred: presigned when expires > 0, header authorization
 * otherwise. */
static int sign_path(const struct lfs_storage_s3 *st, const struct lfs_s3_credentials *cred,
                     const char *method, const char *path, const struct lfs_s3_param *headers,
                     size_t nheaders, const struct lfs_s3_param *query, size_t nquery,
                     const char *payload_hash, time_t now, long expires, h2o_mem_pool_t *pool,
                     struct lfs_s3_signed *out, struct lfs_error *err)
{
    struct lfs_s3_sign_input in = {
        .method = method,
        .host = st->host,
        .path = path,
        .query = query,
        .nquery = nquery,
        .headers = headers,
        .nheaders = nheaders,
        .payload_hash = payload_hash,
        .content_sha256_header = expires == 0,
        .region = st->region,
        .service = "s3",
        .now = now,
        .expires = expires,
    };
    return lfs_s3_sign(cred, &in, pool, out, err);
}

/* "<base_url><encoded path>[?<query>]" in the pool. */
static const char *signed_url(const struct lfs_storage_s3 *st, const struct lfs_s3_signed *s,
                              h2o_mem_pool_t *pool)
{
    size_t n = strlen(st->base_url) + strlen(s->encoded_path) + strlen(s->query) + 2;
    struct lfs_strbuf b = {.buf = h2o_mem_alloc_pool(pool, n), .cap = n};
    lfs_strbuf_adds(&b, st->base_url);
    lfs_strbuf_adds(&b, s->encoded_path);
    if (s->query[0] != '\0') {
        lfs_strbuf_add(&b, "?", 1);
        lfs_strbuf_adds(&b, s->query);
    }
    return b.buf;
}

/* ---- sign: presigned URLs for the clients ---- */

static int s3_sign_url(struct lfs_storage_s3 *st, const struct lfs_s3_credentials *cred,
                       const struct lfs_object_key *key, const struct lfs_sign_request *request,
                       h2o_mem_pool_t *pool, struct lfs_storage_request *out, struct lfs_error *err)
{
    const char *path = object_path(st, key, pool, err);
    if (path == NULL)
        return -1;
    long lifetime = request->lifetime;
    if (lifetime > LFS_S3_MAX_EXPIRES)
        lifetime = LFS_S3_MAX_EXPIRES;
    if (lifetime < 1)
        lifetime = 1;
    struct lfs_s3_param params[2];
    size_t n = 0;
    struct lfs_s3_signed s;
    *out = (struct lfs_storage_request){0};
    if (request->op == LFS_SIGN_DOWNLOAD) {
        if (request->filename != NULL || request->disposition != NULL)
            params[n++] = (struct lfs_s3_param){
                "response-content-disposition",
                lfs_content_disposition(request->filename, request->disposition,
                                        LFS_DISPOSITION_FULL, pool)};
        if (sign_path(st, cred, "GET", path, NULL, 0, params, n, LFS_S3_UNSIGNED_PAYLOAD,
                      request->now, lifetime, pool, &s, err) < 0)
            return -1;
        out->href = signed_url(st, &s, pool);
        return 0;
    }
    /* Upload: the checksum S3 verifies (base64 of the oid's 32 bytes) and, when the client
     * names one, the content type, both signed and sent by the client as the action's
     * headers. git-lfs otherwise sends a Content-Type it guesses, so none is signed then. */
    if (st->checksum) {
        unsigned char digest[32];
        for (size_t i = 0; i < 32; i++) {
            unsigned v;
            sscanf(key->oid + 2 * i, "%2x", &v);
            digest[i] = (unsigned char)v;
        }
        char *b64 = h2o_mem_alloc_pool(pool, 45);
        lfs_azure_base64_encode(digest, sizeof(digest), b64);
        params[n++] = (struct lfs_s3_param){"x-amz-checksum-sha256", b64};
    }
    if (request->content_type != NULL)
        params[n++] = (struct lfs_s3_param){"Content-Type", request->content_type};
    if (sign_path(st, cred, "PUT", path, params, n, NULL, 0, LFS_S3_UNSIGNED_PAYLOAD, request->now,
                  lifetime, pool, &s, err) < 0)
        return -1;
    out->href = signed_url(st, &s, pool);
    if (n > 0) {
        const char **header = h2o_mem_alloc_pool(pool, (2 * n + 1) * sizeof(*header));
        for (size_t i = 0; i < n; i++) {
            header[2 * i] = params[i].name;
            header[2 * i + 1] = params[i].value;
        }
        header[2 * n] = NULL;
        out->header = header;
    }
    return 0;
}

/* A URL waiting for the keys, in the request pool (the key and request are copied: the
 * caller's may not outlive the call). */
struct s3_sign_wait {
    struct lfs_storage_s3 *st;
    h2o_mem_pool_t *pool;
    struct lfs_object_key key;
    struct lfs_sign_request request;
    lfs_storage_sign_cb cb;
    void *arg;
};

static void sign_with_keys(void *arg, const struct lfs_s3_credentials *cred,
                           const struct lfs_error *err)
{
    struct s3_sign_wait *w = arg;
    if (cred == NULL) {
        w->cb(w->arg, NULL, err);
        return;
    }
    struct lfs_storage_request out;
    struct lfs_error e = {0};
    int rc = s3_sign_url(w->st, cred, &w->key, &w->request, w->pool, &out, &e);
    lfs_storage_sign_now(rc, &out, &e, w->cb, w->arg);
}

static void s3_sign(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, const struct lfs_sign_request *request,
                    lfs_storage_sign_cb cb, void *arg)
{
    struct s3_sign_wait *w = h2o_mem_alloc_pool(io->pool, sizeof(*w));
    *w = (struct s3_sign_wait){.st = (struct lfs_storage_s3 *)storage,
                               .pool = io->pool,
                               .key = *key,
                               .request = *request,
                               .cb = cb,
                               .arg = arg};
    lfs_s3_creds_get(w->st->creds, io, sign_with_keys, w);
}

/* ---- lfsgate's own calls: header authorization ---- */

/* One call lfsgate makes to the store. */
struct s3_call {
    const char *method;
    const char *path;                 /* not encoded */
    const char *payload_hash;         /* hex SHA-256 of the body; NULL: empty body */
    const char *range;                /* Range value, or NULL */
    const struct lfs_s3_param *query; /* query parameters (in io->pool), or NULL */
    size_t nquery;
    h2o_iovec_t body;
    long timeout_ms;
    int (*on_data)(void *arg, long status, const char *data, size_t len);
    /* A download: handed the HTTP call once it starts (lfs_storage_http_stream_started). */
    struct lfs_storage_http_stream *stream;
    /* A precondition header line ("If-None-Match: *"), or NULL. */
    const char *precondition;
    const char *copy_source; /* CopyObject: x-amz-copy-source value (signed), or NULL */
};

/* A call waiting for the keys, in the request pool. */
struct s3_fetch_wait {
    struct lfs_storage_s3 *st;
    struct lfs_io io;
    struct s3_call c;
    lfs_http_cb cb;
    void *arg;
};

/* Signs the call with cred and starts it. */
static void fetch_with_keys(void *arg, const struct lfs_s3_credentials *cred,
                            const struct lfs_error *err)
{
    struct s3_fetch_wait *w = arg;
    struct lfs_storage_s3 *st = w->st;
    const struct s3_call *c = &w->c;
    struct lfs_s3_signed s;
    struct lfs_error e = {0};
    /* x-amz-content-sha256 is signed and sent on every call: S3 wants it. */
    const char *payload = c->payload_hash != NULL ? c->payload_hash : LFS_S3_EMPTY_SHA256;
    struct lfs_s3_param signed_headers[2];
    size_t nsigned = 0;
    if (c->range != NULL)
        signed_headers[nsigned++] = (struct lfs_s3_param){"Range", c->range};
    if (c->copy_source != NULL)
        signed_headers[nsigned++] = (struct lfs_s3_param){"x-amz-copy-source", c->copy_source};
    if (cred == NULL || sign_path(st, cred, c->method, c->path, signed_headers, nsigned, c->query,
                                  c->nquery, payload, time(NULL), 0, w->io.pool, &s, &e) < 0) {
        struct lfs_http_response response = {.content_length = -1, .body = h2o_iovec_init("", 0)};
        w->cb(w->arg, &response, cred == NULL ? err : &e);
        return;
    }
    struct lfs_http_request req = {
        .method = c->method,
        .url = signed_url(st, &s, w->io.pool),
        .body = c->body,
        .timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : st->timeout_ms,
        .store = S3_STORE,
        .on_data = c->on_data,
    };
    size_t n = 0;
    const char *lines[][2] = {
        {"Authorization: ", s.authorization},
        {"x-amz-date: ", s.amz_date},
        {"x-amz-content-sha256: ", payload},
        {"x-amz-security-token: ", cred->session_token},
        {"Range: ", c->range},
        {"x-amz-copy-source: ", c->copy_source},
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *v = lines[i][1];
        if (v == NULL)
            continue;
        size_t len = strlen(lines[i][0]) + strlen(v) + 1;
        char *line = h2o_mem_alloc_pool(w->io.pool, len);
        snprintf(line, len, "%s%s", lines[i][0], v);
        req.headers[n++] = line;
    }
    if (c->precondition != NULL)
        req.headers[n++] = c->precondition;
    req.headers[n] = NULL;
    struct lfs_storage_http_stream *stream = c->stream;
    struct lfs_http_call *call = lfs_http_fetch(&w->io, &req, w->cb, w->arg);
    if (stream != NULL)
        lfs_storage_http_stream_started(stream, call);
}

/* Gets the keys (at once, or once temporary ones arrive), signs `c` and starts it; cb gets
 * the answer, or the error of the keys or of signing. Everything `c` points to must live in
 * io->pool. */
static void s3_fetch(struct lfs_storage_s3 *st, struct lfs_io *io, const struct s3_call *c,
                     lfs_http_cb cb, void *arg)
{
    struct s3_fetch_wait *w = h2o_mem_alloc_pool(io->pool, sizeof(*w));
    *w = (struct s3_fetch_wait){.st = st, .io = *io, .c = *c, .cb = cb, .arg = arg};
    lfs_s3_creds_get(st->creds, io, fetch_with_keys, w);
}

/* err for an answer of the store that is neither success nor an expected 404 (an
 * lfs_storage_status_error_fn; ctx: the struct lfs_storage_s3). Only the error code of the
 * body is passed on: S3's other fields may quote the string to sign. */
static void status_error(const void *ctx, struct lfs_error *err,
                         const struct lfs_http_response *res, const char *what, const char *object)
{
    const struct lfs_storage_s3 *st = ctx;
    char code[64];
    lfs_storage_xml_error_code(res->body, code, sizeof(code));
    long status = res->status;
    bool busy = status == 429 || status >= 500 || strcmp(code, "SlowDown") == 0;
    const char *hint = "";
    if (strcmp(code, "NoSuchBucket") == 0)
        hint = "; create the bucket or fix bucket_name";
    else if (strcmp(code, "RequestTimeTooSkewed") == 0)
        hint = "; fix this host's clock";
    else if (status == 301 || strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
             strcmp(code, "PermanentRedirect") == 0)
        hint = "; check region and endpoint";
    else if (status == 401 || status == 403)
        hint = "; check the access key, its permissions on the bucket and this host's clock";
    else if (busy)
        hint = "; the store is busy or down, try again later";
    lfs_error_set(err, busy ? 503 : 502,
                  S3_STORE " answered %ld%s%s%s to %s of object %s in bucket \"%s\"%s", status,
                  code[0] != '\0' ? " (" : "", code, code[0] != '\0' ? ")" : "", what, object,
                  st->bucket, hint);
}

/* ---- stat: HEAD (storage/remote.h) ---- */

static void s3_stat(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, lfs_storage_stat_cb cb, void *arg)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)storage;
    struct lfs_error err = {0};
    const char *path = object_path(st, key, io->pool, &err);
    if (path == NULL) {
        cb(arg, -1, &err);
        return;
    }
    struct lfs_storage_remote_op op = {.store = S3_STORE,
                                       .what = "HEAD",
                                       .object = key->oid,
                                       .status_error = status_error,
                                       .ctx = st};
    struct s3_call c = {.method = "HEAD", .path = path};
    s3_fetch(st, io, &c, lfs_storage_http_stat_on_done,
             lfs_storage_http_stat_new(io, &op, cb, arg));
}

/* ---- list: ListObjectsV2 under the repository's prefix ---- */

/* The bucket's URL path: "/<bucket>" (path style) or "/". */
static const char *bucket_path(const struct lfs_storage_s3 *st, h2o_mem_pool_t *pool)
{
    if (st->virtual_style)
        return "/";
    size_t n = strlen(st->bucket) + 2;
    char *p = h2o_mem_alloc_pool(pool, n);
    snprintf(p, n, "/%s", st->bucket);
    return p;
}

static void s3_list(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, size_t limit, lfs_storage_list_cb cb,
                    void *arg)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)storage;
    struct lfs_error err = {0};
    const char *prefix = lfs_storage_repo_prefix(st->prefix, key, io->pool, &err);
    if (prefix == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    struct lfs_storage_remote_op op = {.store = S3_STORE,
                                       .what = "ListObjectsV2",
                                       .object = prefix,
                                       .status_error = status_error,
                                       .ctx = st};
    char *max = h2o_mem_alloc_pool(io->pool, 24);
    /* S3 answers at most 1000 keys a page. */
    snprintf(max, 24, "%zu", limit < 1 ? 1 : limit > 1000 ? 1000 : limit);
    struct lfs_s3_param *q = h2o_mem_alloc_pool(io->pool, 3 * sizeof(*q));
    q[0] = (struct lfs_s3_param){"list-type", "2"};
    q[1] = (struct lfs_s3_param){"max-keys", max};
    q[2] = (struct lfs_s3_param){"prefix", prefix};
    struct s3_call c = {
        .method = "GET", .path = bucket_path(st, io->pool), .query = q, .nquery = 3};
    s3_fetch(st, io, &c, lfs_storage_http_list_on_done,
             lfs_storage_http_list_new(io, &op, lfs_s3_parse_listing, cb, arg));
}

/* ---- put: hash, then one signed PUT ---- */

/* One upload in progress, owned by the request pool. */
struct s3_put {
    struct lfs_io io;
    struct lfs_storage_s3 *st;
    h2o_iovec_t body;
    const char *path;
    char oid[LFS_OID_LEN + 1];
    lfs_storage_done_cb cb;
    void *arg;
};

static void mp_stream_put(struct s3_put *put);

/* Called once the body is hashed (storage/remote.h): sends it when its SHA-256 is the oid. The
 * oid is then the body's hash, so the PUT signs its payload and the store checks it again. */
static void put_send(void *arg, const struct lfs_error *verified)
{
    struct s3_put *put = arg;
    if (verified != NULL) {
        put->cb(put->arg, verified);
        return;
    }
    if (put->body.len > put->st->put_max) {
        mp_stream_put(put);
        return;
    }
    struct s3_call c = {
        .method = "PUT",
        .path = put->path,
        .payload_hash = put->oid,
        .body = put->body,
        .timeout_ms = lfs_storage_upload_timeout_ms(put->body.len),
    };
    struct lfs_storage_remote_op op = {.store = S3_STORE,
                                       .what = "upload",
                                       .object = put->oid,
                                       .status_error = status_error,
                                       .ctx = put->st};
    s3_fetch(put->st, &put->io, &c, lfs_storage_http_done_on_done,
             lfs_storage_http_done_new(&put->io, &op, put->cb, put->arg));
}

static void s3_put(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                   h2o_iovec_t body, lfs_storage_done_cb cb, void *arg)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)storage;
    struct s3_put *put = h2o_mem_alloc_pool(io->pool, sizeof(*put));
    *put = (struct s3_put){.io = *io, .st = st, .body = body, .cb = cb, .arg = arg};
    struct lfs_error err = {0};
    put->path = object_path(st, key, io->pool, &err);
    if (put->path == NULL) {
        cb(arg, &err);
        return;
    }
    memcpy(put->oid, key->oid, LFS_OID_LEN + 1);
    lfs_storage_verify_body(io, body, put->oid, put_send, put);
}

/* ---- open: a signed ranged GET, streamed (storage/remote.h) ---- */

static void s3_open(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, uint64_t offset, uint64_t length,
                    lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)storage;
    struct lfs_storage_remote_op op = {.store = S3_STORE,
                                       .what = "download",
                                       .object = key->oid,
                                       .status_error = status_error,
                                       .ctx = st};
    struct lfs_storage_http_stream *s =
        lfs_storage_http_stream_new(io, &op, offset, length, cb, arg);
    if (s == NULL)
        return;
    struct lfs_error err = {0};
    const char *path = object_path(st, key, io->pool, &err);
    if (path == NULL) {
        lfs_storage_http_stream_fail(s, &err);
        return;
    }
    struct s3_call c = {
        .method = "GET",
        .path = path,
        .range = lfs_storage_http_stream_range(s),
        .timeout_ms = lfs_storage_http_stream_timeout_ms(s),
        .on_data = lfs_storage_http_stream_on_data,
        .stream = s,
    };
    s3_fetch(st, io, &c, lfs_storage_http_stream_on_done, s);
}

/* ---- multipart-basic: CreateMultipartUpload, presigned UploadPart, completed at verify ----
 *
 * The plan finds the upload in progress for the object (ListMultipartUploads, the most recent
 * one of exactly this key) and its parts (ListParts), or creates one (CreateMultipartUpload),
 * and hands the client presigned UploadPart URLs for the parts still missing and a presigned
 * AbortMultipartUpload. There is no commit request the client could send: S3's
 * CompleteMultipartUpload names every part's ETag, which only the store knows. So lfsgate
 * completes the upload itself when the client verifies (storage multipart_complete): it lists
 * the parts and completes only when they make exactly the declared size. */

#define S3_PART_MIN (5ull << 20)
#define S3_PART_MAX (5ull << 30)
#define S3_MAX_PARTS 10000u
#define S3_OBJECT_MAX (5ull << 40)

/* One part ListParts found. */
struct s3_listed_part {
    unsigned number;
    int64_t size;
    const char *etag; /* as listed (XML-escaped quotes kept) */
};

/* A plan or a completion in progress, owned by the request pool. */
struct s3_multipart {
    struct lfs_storage_s3 *st;
    struct lfs_io io;
    const char *path;   /* the object's URL path, not encoded */
    const char *name;   /* the object's key */
    const char *oid;    /* names the object in messages */
    const char *upload; /* the upload id, once known */
    struct lfs_multipart_request request;
    int64_t size;
    struct s3_listed_part *parts;
    size_t nparts, cap;
    lfs_storage_multipart_cb plan_cb; /* planning */
    lfs_storage_done_cb done_cb;      /* completing, or uploading through lfsgate */
    void *arg;
    /* basic_streaming: lfsgate uploads body in parts of `part` bytes itself; a failure
     * aborts the upload (its error kept in err meanwhile). */
    bool streaming, aborting;
    h2o_iovec_t body;
    uint64_t part;
    struct lfs_error err;
};

/* A call on the upload: `method` to the object with ?[partNumber=<part>&]uploadId=<id>. */
static void mp_call(struct s3_multipart *mp, const char *method, size_t part,
                    const char *payload_hash, h2o_iovec_t body, lfs_http_cb cb)
{
    struct lfs_s3_param *q = h2o_mem_alloc_pool(mp->io.pool, 2 * sizeof(*q));
    size_t n = 0;
    if (part > 0) {
        char *number = h2o_mem_alloc_pool(mp->io.pool, 24);
        snprintf(number, 24, "%zu", part);
        q[n++] = (struct lfs_s3_param){"partNumber", number};
    }
    q[n++] = (struct lfs_s3_param){"uploadId", mp->upload};
    struct s3_call c = {.method = method,
                        .path = mp->path,
                        .query = q,
                        .nquery = n,
                        .payload_hash = payload_hash,
                        .body = body,
                        .timeout_ms = body.len > 0 ? lfs_storage_upload_timeout_ms(body.len) : 0};
    s3_fetch(mp->st, &mp->io, &c, cb, mp);
}

static void on_stream_aborted(void *arg, const struct lfs_http_response *res,
                              const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    (void)res;
    (void)err; /* an upload left behind is the store's lifecycle rules' to expire */
    mp->done_cb(mp->arg, &mp->err);
}

static void mp_fail(struct s3_multipart *mp, const struct lfs_error *err)
{
    if (mp->streaming && mp->upload != NULL && !mp->aborting) {
        /* Nothing of a failed upload stays: AbortMultipartUpload, then the error. */
        mp->aborting = true;
        mp->err = *err;
        mp_call(mp, "DELETE", 0, NULL, h2o_iovec_init("", 0), on_stream_aborted);
        return;
    }
    if (mp->plan_cb != NULL)
        mp->plan_cb(mp->arg, NULL, err);
    else
        mp->done_cb(mp->arg, err);
}

/* true for a 200 answer; otherwise fails mp with the error (status_error for an answer). */
static bool mp_answered(struct s3_multipart *mp, const struct lfs_http_response *res,
                        const struct lfs_error *err, const char *what)
{
    if (err != NULL) {
        mp_fail(mp, err);
        return false;
    }
    /* CompleteMultipartUpload may answer 200 with an <Error> body. */
    if (res->status == 200 &&
        h2o_strstr(res->body.base, res->body.len, H2O_STRLIT("<Error>")) == SIZE_MAX)
        return true;
    struct lfs_error e = {0};
    struct lfs_http_response r = *res;
    if (r.status == 200)
        r.status = 500;
    status_error(mp->st, &e, &r, what, mp->oid);
    mp_fail(mp, &e);
    return false;
}

/* The text of element `tag` in [b, b + n) copied into the pool, or NULL. */
static const char *mp_text(struct s3_multipart *mp, const char *b, size_t n, const char *tag)
{
    const char *t;
    size_t len;
    if (!lfs_storage_xml_field(b, n, tag, &t, &len))
        return NULL;
    return h2o_strdup(mp->io.pool, t, len).base;
}

/* The object's key as it appears (XML-escaped) in a listing. */
static const char *mp_escaped_name(struct s3_multipart *mp)
{
    size_t n = strlen(mp->name);
    char *out = h2o_mem_alloc_pool(mp->io.pool, 6 * n + 1), *o = out;
    for (const char *p = mp->name; *p != '\0'; p++) {
        const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (e != NULL)
            o += sprintf(o, "%s", e);
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

static void mp_plan_build(struct s3_multipart *mp);
static void mp_complete_send(struct s3_multipart *mp);
static void mp_list_parts(struct s3_multipart *mp, const char *marker);

/* What to do once the parts are known. */
static void mp_stream_next(struct s3_multipart *mp);

static void mp_parts_known(struct s3_multipart *mp)
{
    if (mp->streaming)
        mp_stream_next(mp);
    else if (mp->plan_cb != NULL)
        mp_plan_build(mp);
    else
        mp_complete_send(mp);
}

/* Records part `number` of `size` bytes with its ETag. */
static void mp_add_part(struct s3_multipart *mp, unsigned number, int64_t size, const char *etag)
{
    if (mp->nparts == mp->cap) {
        size_t cap = mp->cap ? 2 * mp->cap : 64;
        struct s3_listed_part *p = h2o_mem_alloc_pool(mp->io.pool, cap * sizeof(*p));
        if (mp->nparts > 0)
            memcpy(p, mp->parts, mp->nparts * sizeof(*p));
        mp->parts = p;
        mp->cap = cap;
    }
    mp->parts[mp->nparts++] = (struct s3_listed_part){.number = number, .size = size, .etag = etag};
}

static void on_list_parts(void *arg, const struct lfs_http_response *res,
                          const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (!mp_answered(mp, res, err, "ListParts"))
        return;
    const char *b = res->body.base, *end = b + res->body.len;
    const char *t;
    size_t n;
    while (b < end && lfs_storage_xml_field(b, (size_t)(end - b), "Part", &t, &n)) {
        const char *number = mp_text(mp, t, n, "PartNumber"), *size = mp_text(mp, t, n, "Size");
        const char *etag = mp_text(mp, t, n, "ETag");
        b = t + n;
        if (number == NULL || size == NULL || etag == NULL)
            continue;
        /* The store's word, checked before it is summed or sorted: parts are 1..10,000 of at
         * most 5 GiB each, and there are at most 10,000 of them however many pages come. */
        char *stop_n, *stop_s;
        unsigned long num = strtoul(number, &stop_n, 10);
        long long len = strtoll(size, &stop_s, 10);
        if (stop_n == number || *stop_n != '\0' || num < 1 || num > S3_MAX_PARTS ||
            stop_s == size || *stop_s != '\0' || len < 0 || (unsigned long long)len > S3_PART_MAX ||
            mp->nparts >= S3_MAX_PARTS) {
            struct lfs_error e;
            lfs_error_set(&e, 502,
                          S3_STORE " answered ListParts of object %s with an invalid part (number "
                                   "\"%s\", size \"%s\") or more than %u parts",
                          mp->oid, number, size, S3_MAX_PARTS);
            mp_fail(mp, &e);
            return;
        }
        mp_add_part(mp, (unsigned)num, len, etag);
    }
    const char *truncated = mp_text(mp, res->body.base, res->body.len, "IsTruncated");
    const char *next = mp_text(mp, res->body.base, res->body.len, "NextPartNumberMarker");
    if (truncated != NULL && strcmp(truncated, "true") == 0 && next != NULL && next[0] != '\0')
        mp_list_parts(mp, next);
    else
        mp_parts_known(mp);
}

/* ListParts of the upload, from after part `marker` (NULL: from the start). */
static void mp_list_parts(struct s3_multipart *mp, const char *marker)
{
    struct lfs_s3_param *q = h2o_mem_alloc_pool(mp->io.pool, 2 * sizeof(*q));
    size_t n = 0;
    if (marker != NULL)
        q[n++] = (struct lfs_s3_param){"part-number-marker", marker};
    q[n++] = (struct lfs_s3_param){"uploadId", mp->upload};
    struct s3_call c = {.method = "GET", .path = mp->path, .query = q, .nquery = n};
    s3_fetch(mp->st, &mp->io, &c, on_list_parts, mp);
}

static void on_created(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (!mp_answered(mp, res, err, "CreateMultipartUpload"))
        return;
    mp->upload = mp_text(mp, res->body.base, res->body.len, "UploadId");
    if (mp->upload == NULL || mp->upload[0] == '\0') {
        struct lfs_error e;
        lfs_error_set(&e, 502, S3_STORE ": CreateMultipartUpload of object %s answered no UploadId",
                      mp->oid);
        mp_fail(mp, &e);
        return;
    }
    mp_parts_known(mp); /* a new upload has no parts */
}

static void on_uploads(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (!mp_answered(mp, res, err, "ListMultipartUploads"))
        return;
    /* Uploads are listed by key, then by when they began: the last one of this key is the
     * most recent. */
    const char *want = mp_escaped_name(mp);
    const char *b = res->body.base, *end = b + res->body.len, *t;
    size_t n;
    while (b < end && lfs_storage_xml_field(b, (size_t)(end - b), "Upload", &t, &n)) {
        const char *k = mp_text(mp, t, n, "Key"), *id = mp_text(mp, t, n, "UploadId");
        if (k != NULL && id != NULL && id[0] != '\0' && strcmp(k, want) == 0)
            mp->upload = id;
        b = t + n;
    }
    if (mp->upload != NULL) {
        mp_list_parts(mp, NULL);
    } else if (mp->plan_cb == NULL) {
        mp->done_cb(mp->arg, NULL); /* nothing to complete */
    } else {
        static const struct lfs_s3_param uploads = {"uploads", ""};
        struct s3_call c = {.method = "POST", .path = mp->path, .query = &uploads, .nquery = 1};
        s3_fetch(mp->st, &mp->io, &c, on_created, mp);
    }
}

/* Starts mp: finds the upload in progress of its object. */
static void mp_start(struct s3_multipart *mp, const struct lfs_object_key *key)
{
    struct lfs_storage_s3 *st = mp->st;
    struct lfs_error err = {0};
    mp->path = object_path(st, key, mp->io.pool, &err);
    mp->name =
        mp->path != NULL ? lfs_storage_object_name(st->prefix, key, mp->io.pool, &err) : NULL;
    if (mp->name == NULL) {
        mp_fail(mp, &err);
        return;
    }
    mp->oid = h2o_strdup(mp->io.pool, key->oid, SIZE_MAX).base;
    struct lfs_s3_param *q = h2o_mem_alloc_pool(mp->io.pool, 2 * sizeof(*q));
    q[0] = (struct lfs_s3_param){"prefix", mp->name};
    q[1] = (struct lfs_s3_param){"uploads", ""};
    struct s3_call c = {
        .method = "GET", .path = bucket_path(st, mp->io.pool), .query = q, .nquery = 2};
    s3_fetch(st, &mp->io, &c, on_uploads, mp);
}

/* A presigned request for the upload: `method` with `query` (the upload id added). */
static const char *mp_presign(struct s3_multipart *mp, const struct lfs_s3_credentials *cred,
                              const char *method, const char *part_number, struct lfs_error *err)
{
    struct lfs_s3_param q[2];
    size_t n = 0;
    if (part_number != NULL)
        q[n++] = (struct lfs_s3_param){"partNumber", part_number};
    q[n++] = (struct lfs_s3_param){"uploadId", mp->upload};
    long lifetime = mp->request.lifetime;
    lifetime = lifetime > LFS_S3_MAX_EXPIRES ? LFS_S3_MAX_EXPIRES : lifetime < 1 ? 1 : lifetime;
    struct lfs_s3_signed s;
    if (sign_path(mp->st, cred, method, mp->path, NULL, 0, q, n, LFS_S3_UNSIGNED_PAYLOAD,
                  mp->request.now, lifetime, mp->io.pool, &s, err) < 0)
        return NULL;
    return signed_url(mp->st, &s, mp->io.pool);
}

/* The size of listed part `number`, or -1 when it is not there. */
static int64_t mp_listed_size(const struct s3_multipart *mp, unsigned number)
{
    for (size_t i = 0; i < mp->nparts; i++)
        if (mp->parts[i].number == number)
            return mp->parts[i].size;
    return -1;
}

static void mp_plan_with_keys(void *arg, const struct lfs_s3_credentials *cred,
                              const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (cred == NULL) {
        mp_fail(mp, err);
        return;
    }
    h2o_mem_pool_t *pool = mp->io.pool;
    uint64_t size = (uint64_t)mp->request.size;
    /* S3's limits: parts of 5 MiB..5 GiB (the last one smaller), at most 10,000 of them. */
    uint64_t part = mp->request.part_size < S3_PART_MIN ? S3_PART_MIN : mp->request.part_size;
    if (part > S3_PART_MAX)
        part = S3_PART_MAX;
    if ((size + part - 1) / part > S3_MAX_PARTS)
        part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
    size_t total = size == 0 ? 1 : (size_t)((size + part - 1) / part);
    struct lfs_multipart_plan *plan = h2o_mem_alloc_pool(pool, sizeof(*plan));
    memset(plan, 0, sizeof(*plan));
    plan->total = total;
    plan->parts = h2o_mem_alloc_pool(pool, total * sizeof(*plan->parts));
    struct lfs_error e = {0};
    for (size_t i = 0; i < total; i++) {
        uint64_t pos = (uint64_t)i * part;
        uint64_t psize = size - pos < part ? size - pos : part;
        if (mp_listed_size(mp, (unsigned)i + 1) == (int64_t)psize)
            continue; /* sent by an earlier attempt */
        char number[24];
        snprintf(number, sizeof(number), "%zu", i + 1);
        const char *href = mp_presign(mp, cred, "PUT", number, &e);
        if (href == NULL) {
            mp_fail(mp, &e);
            return;
        }
        plan->parts[plan->nparts++] = (struct lfs_multipart_part){
            .pos = pos, .size = psize, .request = {.href = href}, .want_digest = "contentMD5"};
    }
    const char *abort = mp_presign(mp, cred, "DELETE", NULL, &e);
    if (abort == NULL) {
        mp_fail(mp, &e);
        return;
    }
    plan->abort = (struct lfs_storage_request){.method = "DELETE", .href = abort};
    mp->plan_cb(mp->arg, plan, NULL);
}

static void mp_plan_build(struct s3_multipart *mp)
{
    lfs_s3_creds_get(mp->st->creds, &mp->io, mp_plan_with_keys, mp);
}

static void s3_multipart_plan(struct lfs_storage *storage, struct lfs_io *io,
                              const struct lfs_object_key *key,
                              const struct lfs_multipart_request *request,
                              lfs_storage_multipart_cb cb, void *arg)
{
    struct s3_multipart *mp = h2o_mem_alloc_pool(io->pool, sizeof(*mp));
    *mp = (struct s3_multipart){.st = (struct lfs_storage_s3 *)storage,
                                .io = *io,
                                .request = *request,
                                .plan_cb = cb,
                                .arg = arg};
    if (request->size < 0 || (uint64_t)request->size > S3_OBJECT_MAX) {
        struct lfs_error err;
        lfs_error_set(&err, 422, S3_STORE ": objects are 0 to 5 TiB, not %" PRId64 " bytes",
                      request->size);
        cb(arg, NULL, &err);
        return;
    }
    mp_start(mp, key);
}

static void on_completed(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (!mp_answered(mp, res, err, "CompleteMultipartUpload"))
        return;
    lfs_log(LFS_LOG_DEBUG, S3_STORE ": completed the multipart upload of %s (%zu parts)", mp->oid,
            mp->nparts);
    mp->done_cb(mp->arg, NULL);
}

static int mp_part_cmp(const void *a, const void *b)
{
    unsigned x = ((const struct s3_listed_part *)a)->number;
    unsigned y = ((const struct s3_listed_part *)b)->number;
    return x < y ? -1 : x > y;
}

/* CompleteMultipartUpload with the listed parts, when they are parts 1..n of `size` bytes. */
static void mp_complete_send(struct s3_multipart *mp)
{
    if (mp->nparts > 0)
        qsort(mp->parts, mp->nparts, sizeof(*mp->parts), mp_part_cmp);
    int64_t total = 0;
    bool contiguous = true;
    size_t len = 64;
    for (size_t i = 0; i < mp->nparts; i++) {
        contiguous = contiguous && mp->parts[i].number == i + 1;
        total += mp->parts[i].size;
        len += strlen(mp->parts[i].etag) + 64;
    }
    if (mp->nparts == 0 || !contiguous || total != mp->size) {
        struct lfs_error e;
        lfs_error_set(&e, 422,
                      "the multipart upload of object %s has %zu part(s) of %" PRId64
                      " bytes in all%s, not the %" PRId64
                      " bytes declared: send the missing parts (ask the batch API again for "
                      "them) or abort the upload",
                      mp->oid, mp->nparts, total, contiguous ? "" : " with gaps", mp->size);
        mp->done_cb(mp->arg, &e);
        return;
    }
    struct lfs_strbuf b = {.buf = h2o_mem_alloc_pool(mp->io.pool, len), .cap = len};
    lfs_strbuf_adds(&b, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < mp->nparts; i++) {
        char number[64];
        snprintf(number, sizeof(number), "<Part><PartNumber>%u</PartNumber><ETag>",
                 mp->parts[i].number);
        lfs_strbuf_adds(&b, number);
        lfs_strbuf_adds(&b, mp->parts[i].etag);
        lfs_strbuf_adds(&b, "</ETag></Part>");
    }
    lfs_strbuf_adds(&b, "</CompleteMultipartUpload>");
    unsigned char digest[32];
    char *hash = h2o_mem_alloc_pool(mp->io.pool, 65);
    SHA256((const unsigned char *)b.buf, b.len, digest);
    lfs_hex_encode(digest, sizeof(digest), hash);
    mp_call(mp, "POST", 0, hash, h2o_iovec_init(b.buf, b.len), on_completed);
}

static void s3_multipart_complete(struct lfs_storage *storage, struct lfs_io *io,
                                  const struct lfs_object_key *key, int64_t size,
                                  lfs_storage_done_cb cb, void *arg)
{
    struct s3_multipart *mp = h2o_mem_alloc_pool(io->pool, sizeof(*mp));
    *mp = (struct s3_multipart){
        .st = (struct lfs_storage_s3 *)storage, .io = *io, .size = size, .done_cb = cb, .arg = arg};
    mp_start(mp, key);
}

/* ---- basic_streaming above multipart_threshold: lfsgate's own multipart upload ----
 * The body is in memory and its SHA-256 already matched the oid: CreateMultipartUpload, its
 * parts one after another (UploadPart, header-signed, UNSIGNED-PAYLOAD: hashing each part
 * again would cost the loop as much as the first check did), then CompleteMultipartUpload
 * with the ETags the parts were answered with. Any failure aborts the upload, so the object
 * never appears half made. */

static void on_part_put(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct s3_multipart *mp = arg;
    if (!mp_answered(mp, res, err, "UploadPart"))
        return;
    if (res->etag == NULL || res->etag[0] == '\0') {
        struct lfs_error e;
        lfs_error_set(&e, 502, S3_STORE ": UploadPart of object %s answered no ETag", mp->oid);
        mp_fail(mp, &e);
        return;
    }
    uint64_t pos = (uint64_t)mp->nparts * mp->part;
    uint64_t len = mp->body.len - pos < mp->part ? mp->body.len - pos : mp->part;
    mp_add_part(mp, (unsigned)mp->nparts + 1, (int64_t)len,
                h2o_strdup(mp->io.pool, res->etag, SIZE_MAX).base);
    mp_stream_next(mp);
}

/* Sends the next part, or completes the upload once every part is in. */
static void mp_stream_next(struct s3_multipart *mp)
{
    uint64_t pos = (uint64_t)mp->nparts * mp->part;
    if (pos >= mp->body.len) {
        mp_complete_send(mp);
        return;
    }
    uint64_t len = mp->body.len - pos < mp->part ? mp->body.len - pos : mp->part;
    mp_call(mp, "PUT", mp->nparts + 1, LFS_S3_UNSIGNED_PAYLOAD,
            h2o_iovec_init(mp->body.base + pos, (size_t)len), on_part_put);
}

static void mp_stream_put(struct s3_put *put)
{
    struct s3_multipart *mp = h2o_mem_alloc_pool(put->io.pool, sizeof(*mp));
    uint64_t part = put->st->put_max < S3_PART_MAX ? put->st->put_max : S3_PART_MAX;
    if ((put->body.len + part - 1) / part > S3_MAX_PARTS)
        part = (put->body.len + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
    *mp = (struct s3_multipart){.st = put->st,
                                .io = put->io,
                                .path = put->path,
                                .oid = put->oid,
                                .size = (int64_t)put->body.len,
                                .done_cb = put->cb,
                                .arg = put->arg,
                                .streaming = true,
                                .body = put->body,
                                .part = part};
    static const struct lfs_s3_param uploads = {"uploads", ""};
    struct s3_call c = {.method = "POST", .path = mp->path, .query = &uploads, .nquery = 1};
    s3_fetch(mp->st, &mp->io, &c, on_created, mp);
}

/* ---- locks: one small object per lock (storage.h, storage/remote.h) ----
 * Create is PutObject with If-None-Match: * (412 PreconditionFailed when the name is taken; 409
 * ConditionalRequestConflict when another conditional write of it is in flight, which the
 * server reads as taken and then finds the winner or tries again), so S3 picks the one winner
 * among replicas; read is GetObject, its ETag the version; delete is DeleteObject with
 * If-Match: the ETag read (412 when the lock was replaced since, 404 when it is gone), so a
 * stale id never removes a newer lock. Listing is ListObjectsV2 of the locks' prefix
 * (start-after: the last name of the previous page), then a GetObject per listed lock,
 * LFS_STORAGE_LOCK_READS at once: a lock's content is not in the listing. */

/* "/<bucket>/<object>" (path style) or "/<object>". */
static const char *lock_path(const struct lfs_storage_s3 *st, const char *object,
                             h2o_mem_pool_t *pool)
{
    const char *bucket = bucket_path(st, pool);
    size_t n = strlen(bucket) + strlen(object) + 2;
    char *p = h2o_mem_alloc_pool(pool, n);
    snprintf(p, n, "%s%s%s", bucket, st->virtual_style ? "" : "/", object);
    return p;
}

/* Starts a lock call (struct lfs_storage_lock_store.send). */
static void s3_lock_send(void *ctx, struct lfs_io *io, enum lfs_storage_lock_verb verb,
                         const char *object, const char *version, h2o_iovec_t body, lfs_http_cb cb,
                         void *arg)
{
    struct lfs_storage_s3 *st = ctx;
    struct s3_call c = {.method = "GET", .path = lock_path(st, object, io->pool)};
    if (verb == LFS_STORAGE_LOCK_CREATE) {
        unsigned char digest[32];
        char *hash = h2o_mem_alloc_pool(io->pool, 65);
        SHA256((const unsigned char *)body.base, body.len, digest);
        lfs_hex_encode(digest, sizeof(digest), hash);
        c.method = "PUT";
        c.payload_hash = hash;
        c.body = body;
        c.precondition = "If-None-Match: *";
    } else if (verb == LFS_STORAGE_LOCK_DELETE) {
        c.method = "DELETE";
        c.precondition = lfs_storage_header_line(io->pool, "If-Match", version);
    }
    s3_fetch(st, io, &c, cb, arg);
}

/* ListObjectsV2 of the locks' prefix (struct lfs_storage_lock_store.send_list). */
static void s3_lock_send_list(void *ctx, struct lfs_io *io, const char *prefix, const char *after,
                              size_t limit, lfs_http_cb cb, void *arg)
{
    struct lfs_storage_s3 *st = ctx;
    char *max = h2o_mem_alloc_pool(io->pool, 24);
    snprintf(max, 24, "%zu", limit);
    struct lfs_s3_param *q = h2o_mem_alloc_pool(io->pool, 4 * sizeof(*q));
    size_t n = 0;
    q[n++] = (struct lfs_s3_param){"list-type", "2"};
    q[n++] = (struct lfs_s3_param){"max-keys", max};
    q[n++] = (struct lfs_s3_param){"prefix", prefix};
    if (after != NULL)
        q[n++] = (struct lfs_s3_param){"start-after", after};
    struct s3_call c = {
        .method = "GET", .path = bucket_path(st, io->pool), .query = q, .nquery = n};
    s3_fetch(st, io, &c, cb, arg);
}

static const char *s3_lock_version(const struct lfs_http_response *res)
{
    return res->etag != NULL && lfs_storage_lock_etag_valid(res->etag) ? res->etag : NULL;
}

static const char *s3_lock_prefix(const struct lfs_storage *storage)
{
    return ((const struct lfs_storage_s3 *)storage)->prefix;
}

static const struct lfs_storage_lock_store s3_locks = {
    .store = S3_STORE,
    .version_name = "an ETag",
    .what = {"PutObject (lock)", "GetObject (lock)", "DeleteObject (lock)"},
    .taken = {412, 409},
    .status_error = status_error,
    .send = s3_lock_send,
    .version_of = s3_lock_version,
    .version_valid = lfs_storage_lock_etag_valid,
    .send_list = s3_lock_send_list,
    .prefix = s3_lock_prefix,
    .list_max = 1000, /* keys per ListObjectsV2 page */
};

/* ---- scan and quarantine (lfsgate scrub; storage/remote.h) ----
 * Scanning is ListObjectsV2 of the prefix, a page at a time (continuation-token: the
 * NextContinuationToken of the page before). Quarantine is CopyObject (a PUT with
 * x-amz-copy-source; the store copies before it answers) to the quarantine name, then a
 * DeleteObject of the original. */

#define S3_SCAN_PAGE "1000"
#define S3_COPY_TIMEOUT_MS 300000

static int s3_scan_open(struct lfs_storage *storage, const char *org_path, const char *repo,
                        struct lfs_storage_scan **out, struct lfs_error *err)
{
    return lfs_storage_scan_cursor_open(storage, ((struct lfs_storage_s3 *)storage)->prefix,
                                        org_path, repo, out, err);
}

static void s3_scan_next(struct lfs_storage_scan *scan, struct lfs_io *io, lfs_storage_scan_cb cb,
                         void *arg)
{
    struct lfs_storage_scan_cursor *c = (struct lfs_storage_scan_cursor *)scan;
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)c->storage;
    if (lfs_storage_scan_end(c, cb, arg))
        return;
    struct lfs_storage_remote_op op = {.store = S3_STORE,
                                       .what = "ListObjectsV2",
                                       .object = c->prefix,
                                       .status_error = status_error,
                                       .ctx = st};
    struct lfs_s3_param *q = h2o_mem_alloc_pool(io->pool, 4 * sizeof(*q));
    q[0] = (struct lfs_s3_param){"list-type", "2"};
    q[1] = (struct lfs_s3_param){"max-keys", S3_SCAN_PAGE};
    q[2] = (struct lfs_s3_param){"prefix", h2o_strdup(io->pool, c->prefix, SIZE_MAX).base};
    size_t nq = 3;
    if (c->marker != NULL)
        q[nq++] = (struct lfs_s3_param){"continuation-token",
                                        h2o_strdup(io->pool, c->marker, SIZE_MAX).base};
    struct s3_call call = {
        .method = "GET", .path = bucket_path(st, io->pool), .query = q, .nquery = nq};
    s3_fetch(st, io, &call, lfs_storage_xml_scan_on_done,
             lfs_storage_xml_scan_new(io, c, &op, "NextContinuationToken", cb, arg));
}

/* The URL path of an object name: "/[<bucket>/]<name>", in the pool (as object_path). */
static const char *name_path(const struct lfs_storage_s3 *st, const char *name,
                             h2o_mem_pool_t *pool)
{
    size_t n = strlen(st->bucket) + strlen(name) + 3;
    struct lfs_strbuf path = {.buf = h2o_mem_alloc_pool(pool, n), .cap = n};
    lfs_strbuf_adds(&path, bucket_path(st, pool));
    if (!st->virtual_style)
        lfs_strbuf_add(&path, "/", 1);
    lfs_strbuf_adds(&path, name);
    return path.buf;
}

static void quarantine_delete(struct lfs_storage_quarantine *q)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)q->storage;
    struct s3_call c = {.method = "DELETE", .path = name_path(st, q->object, q->io.pool)};
    s3_fetch(st, &q->io, &c, lfs_storage_http_done_on_done, lfs_storage_quarantine_delete_done(q));
}

/* CopyObject can fail after its 200 has gone out: the error is then the body. */
static void on_s3_copied(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct lfs_http_response failed;
    if (err == NULL && res->status == 200 && res->body.base != NULL &&
        h2o_strstr(res->body.base, res->body.len, H2O_STRLIT("<Error>")) != SIZE_MAX) {
        failed = *res;
        failed.status = 500;
        res = &failed;
    }
    lfs_storage_quarantine_on_copied(arg, res, err);
}

static void s3_quarantine(struct lfs_storage *storage, struct lfs_io *io,
                          const struct lfs_object_key *key, lfs_storage_done_cb cb, void *arg)
{
    struct lfs_storage_s3 *st = (struct lfs_storage_s3 *)storage;
    struct lfs_storage_remote_op op = {.store = S3_STORE, .status_error = status_error, .ctx = st};
    struct lfs_storage_quarantine *q =
        lfs_storage_quarantine_new(io, storage, st->prefix, key, &op, quarantine_delete, cb, arg);
    if (q == NULL)
        return;
    /* "/<bucket>/<key>", the key URL-encoded as S3 wants ('/' kept) */
    size_t olen = strlen(q->object);
    char *source = h2o_mem_alloc_pool(io->pool, strlen(st->bucket) + 3 * olen + 3);
    size_t n = (size_t)sprintf(source, "/%s/", st->bucket);
    for (const char *seg = q->object, *end; *seg != '\0'; seg = *end ? end + 1 : end) {
        end = strchr(seg, '/');
        if (end == NULL)
            end = seg + strlen(seg);
        n += lfs_url_encode(seg, (size_t)(end - seg), source + n);
        if (*end == '/')
            source[n++] = '/';
    }
    source[n] = '\0';
    struct s3_call c = {.method = "PUT",
                        .path = name_path(st, q->aside, io->pool),
                        .copy_source = source,
                        .timeout_ms = S3_COPY_TIMEOUT_MS};
    s3_fetch(st, io, &c, on_s3_copied, q);
}

const struct lfs_storage_ops lfs_storage_s3_ops = {
    .name = "s3",
    .classes = (const char *const[]){"giftless.storage.amazon_s3:AmazonS3Storage", NULL},
    .caps = LFS_STORAGE_STREAMING | LFS_STORAGE_SIGNED_URLS | LFS_STORAGE_MULTIPART,
    .create = s3_create,
    .destroy = s3_destroy,
    .stat = s3_stat,
    .put = s3_put,
    .open = s3_open,
    .sign = s3_sign,
    .multipart_plan = s3_multipart_plan,
    .multipart_complete = s3_multipart_complete,
    .list = s3_list,
    .lock_create = lfs_storage_remote_lock_create,
    .lock_read = lfs_storage_remote_lock_read,
    .lock_delete = lfs_storage_remote_lock_delete,
    .lock_list = lfs_storage_remote_lock_list,
    .lock_store = &s3_locks,
    .scan_open = s3_scan_open,
    .scan_next = s3_scan_next,
    .scan_close = lfs_storage_scan_cursor_close,
    .quarantine = s3_quarantine,
};
