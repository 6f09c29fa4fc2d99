/* Google Cloud Storage backend (giftless.storage.google_cloud:GoogleCloudStorage): objects
 * live in one bucket under "[path_prefix/]<org_path>/<repo>/<oid>", giftless's layout. Every
 * call, the clients' and our own, is a V4 signed URL to the XML API (storage/gcs_sign.c) made
 * from a service-account key parsed once at startup: basic_external hands the clients signed
 * PUT/GET URLs; existence and size are signed HEADs that lfsgate sends itself through the
 * event-loop HTTP client (storage/http_client.h), one per object, all at once; basic_streaming
 * uploads are hashed first (in slices on the loop) and PUT only when the SHA-256 matches the
 * oid, and downloads are a signed ranged GET streamed through a bounded buffer with
 * pause/resume. All request-scoped state is owned by the request pool. */
#include "storage/storage.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "storage/gcs_sign.h"
#include "storage/http_client.h"

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define GCS_STORE "gcs storage"
/* Lifetime of the URLs lfsgate signs for its own calls; each call has a shorter deadline. */
#define GCS_SELF_EXPIRES 300
#define GCS_STAT_TIMEOUT_MS 20000
/* Bytes hashed per turn of the event loop before an upload. */
#define GCS_HASH_SLICE (8u << 20)
/* Download buffer between the HTTP client and the reader (twice the client's largest
 * delivery): the transfer is paused when a delivery does not fit and resumed once it would. */
#define GCS_STREAM_BUFFER (512u << 10)
/* Longest service-account key file we read. */
#define GCS_MAX_KEY_FILE (1 << 20)

struct lfs_storage_gcs {
    struct lfs_storage base;
    struct lfs_gcs_key *key;
    char *bucket;
    char *prefix;   /* "" or "a/b": no leading or trailing '/' */
    char *base_url; /* "<scheme>://<authority>", default port left out */
    char *host;     /* the authority: what clients send as Host */
};

/* ---- configuration ---- */

static bool valid_bucket(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > 222)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* Splits "http(s)://host[:port][/]" into base URL and Host value (default port dropped). */
static int parse_endpoint(const char *endpoint, char **base_url, char **host)
{
    const char *scheme, *rest;
    int def_port;
    if (strncmp(endpoint, "https://", 8) == 0)
        scheme = "https", rest = endpoint + 8, def_port = 443;
    else if (strncmp(endpoint, "http://", 7) == 0)
        scheme = "http", rest = endpoint + 7, def_port = 80;
    else
        return -1;
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '/')
        len--;
    if (len == 0 || len > 255 || memchr(rest, '/', len) != NULL || memchr(rest, '@', len) != NULL)
        return -1;
    char authority[256];
    memcpy(authority, rest, len);
    authority[len] = '\0';
    /* Host part: a name, an IPv4 address or a bracketed IPv6 address. */
    char *port = NULL;
    if (authority[0] == '[') {
        char *close = strchr(authority, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        for (char *p = authority + 1; p < close; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                  (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
                return -1;
        port = close[1] == ':' ? close + 1 : NULL;
    } else {
        port = strchr(authority, ':');
        for (char *p = authority; *p != '\0' && p != port; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
                return -1;
        if (port == authority)
            return -1;
    }
    if (port != NULL) {
        char *end;
        errno = 0;
        long n = strtol(port + 1, &end, 10);
        if (port[1] < '0' || port[1] > '9' || *end != '\0' || errno != 0 || n < 1 || n > 65535)
            return -1;
        if (n == def_port)
            *port = '\0';
    }
    size_t blen = strlen(scheme) + 3 + strlen(authority) + 1;
    *base_url = malloc(blen);
    *host = strdup(authority);
    if (*base_url == NULL || *host == NULL) {
        free(*base_url);
        free(*host);
        return -1;
    }
    snprintf(*base_url, blen, "%s://%s", scheme, authority);
    return 0;
}

/* Reads a key file into a malloc'd buffer. Returns NULL with errno set. */
static char *read_key_file(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(GCS_MAX_KEY_FILE + 1);
    size_t n = buf != NULL ? fread(buf, 1, GCS_MAX_KEY_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad || n > GCS_MAX_KEY_FILE) {
        free(buf);
        errno = bad ? EIO : n > GCS_MAX_KEY_FILE ? EFBIG : ENOMEM;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Decodes base64 (newlines and surrounding blanks allowed) into a malloc'd buffer. */
static char *decode_base64(const char *text, size_t *len)
{
    size_t tlen = strlen(text);
    unsigned char *out = malloc(tlen / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n1 = 0, n2 = 0;
    if (out == NULL || ctx == NULL) {
        free(out);
        EVP_ENCODE_CTX_free(ctx);
        return NULL;
    }
    EVP_DecodeInit(ctx);
    /* EVP_DecodeUpdate stops at the first space: drop blanks first. */
    char *clean = malloc(tlen + 1);
    size_t c = 0;
    for (size_t i = 0; clean != NULL && i < tlen; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            clean[c++] = text[i];
    int ok = clean != NULL && c > 0 &&
             EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)clean, (int)c) >= 0 &&
             EVP_DecodeFinal(ctx, out + n1, &n2) == 1;
    free(clean);
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, tlen / 4 * 3 + 4);
        free(out);
        return NULL;
    }
    *len = (size_t)(n1 + n2);
    return (char *)out;
}

static void gcs_free(struct lfs_storage_gcs *st)
{
    lfs_gcs_key_free(st->key);
    free(st->bucket);
    free(st->prefix);
    free(st->base_url);
    free(st->host);
    free(st);
}

static int gcs_create(const json_t *options, const char *path, struct lfs_storage **out,
                      struct lfs_error *err)
{
    static const char *const keys[] = {"project_name",         "bucket_name", "account_key_file",
                                       "account_key_base64",   "path_prefix", "endpoint",
                                       "serviceaccount_email", NULL};
    const char *project, *bucket, *key_file, *key_b64, *prefix, *endpoint, *sa_email;
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "project_name", NULL, &project, err) < 0 ||
        lfs_config_get_string(options, path, "bucket_name", NULL, &bucket, err) < 0 ||
        lfs_config_get_string(options, path, "account_key_file", NULL, &key_file, err) < 0 ||
        lfs_config_get_string(options, path, "account_key_base64", NULL, &key_b64, err) < 0 ||
        lfs_config_get_string(options, path, "path_prefix", "", &prefix, err) < 0 ||
        lfs_config_get_string(options, path, "endpoint", GCS_DEFAULT_ENDPOINT, &endpoint, err) <
            0 ||
        lfs_config_get_string(options, path, "serviceaccount_email", NULL, &sa_email, err) < 0)
        return -1;
    (void)project; /* the XML API needs only the bucket; accepted for giftless configs */
    if (bucket == NULL || bucket[0] == '\0')
        return lfs_error_set(err, 500, "config: %s.bucket_name: required key is missing", path);
    if (!valid_bucket(bucket))
        return lfs_error_set(err, 500,
                             "config: %s.bucket_name: \"%s\" is not a valid bucket name "
                             "(3-222 characters of a-z, 0-9, '-', '_', '.')",
                             path, bucket);
    if (key_file != NULL && key_b64 != NULL)
        return lfs_error_set(err, 500,
                             "config: %s: give exactly one of account_key_file and "
                             "account_key_base64, not both",
                             path);
    if (key_file == NULL && key_b64 == NULL) {
        if (sa_email != NULL)
            return lfs_error_set(err, 500,
                                 "config: %s.serviceaccount_email: signing as a service account "
                                 "without its key (workload identity) is not supported yet; give "
                                 "account_key_file or account_key_base64",
                                 path);
        return lfs_error_set(err, 500,
                             "config: %s.account_key_file: required key is missing (give "
                             "account_key_file or account_key_base64)",
                             path);
    }
    /* path_prefix: '/'-separated safe segments; leading and trailing '/' ignored. */
    while (*prefix == '/')
        prefix++;
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen > 0 && !lfs_segments_valid(prefix, plen))
        return lfs_error_set(err, 500,
                             "config: %s.path_prefix: expected '/'-separated names of "
                             "[A-Za-z0-9._~@+-], got \"%s\"",
                             path, prefix);

    struct lfs_storage_gcs *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return lfs_error_set(err, 500, "out of memory");
    extern const struct lfs_storage_ops lfs_storage_gcs_ops;
    st->base.ops = &lfs_storage_gcs_ops;
    st->bucket = strdup(bucket);
    st->prefix = strndup(prefix, plen);
    if (st->bucket == NULL || st->prefix == NULL) {
        gcs_free(st);
        return lfs_error_set(err, 500, "out of memory");
    }
    if (parse_endpoint(endpoint, &st->base_url, &st->host) < 0) {
        gcs_free(st);
        return lfs_error_set(err, 500,
                             "config: %s.endpoint: expected http(s)://host[:port], got \"%s\"",
                             path, endpoint);
    }

    const char *option = key_file != NULL ? "account_key_file" : "account_key_base64";
    size_t len = 0;
    char *text = key_file != NULL ? read_key_file(key_file, &len) : decode_base64(key_b64, &len);
    if (text == NULL) {
        if (key_file != NULL)
            lfs_error_set(err, 500, "config: %s.%s: cannot read \"%s\": %s", path, option, key_file,
                          strerror(errno));
        else
            lfs_error_set(err, 500, "config: %s.%s: not valid base64", path, option);
        gcs_free(st);
        return -1;
    }
    int rc = lfs_gcs_key_parse(text, len, &st->key, err);
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc < 0) {
        lfs_error_prefix(err, "config: %s.%s: ", path, option);
        gcs_free(st);
        return -1;
    }
    lfs_log(LFS_LOG_INFO, "gcs storage: bucket \"%s\"%s%s at %s, signing as %s", st->bucket,
            st->prefix[0] ? " under " : "", st->prefix, st->base_url, lfs_gcs_key_email(st->key));
    *out = &st->base;
    return 0;
}

static void gcs_destroy(struct lfs_storage *storage)
{
    gcs_free((struct lfs_storage_gcs *)storage);
}

/* ---- signing ---- */

/* "/<bucket>/[<prefix>/]<org_path>/<repo>/<oid>" (not encoded) into buf. */
static int resource_path(const struct lfs_storage_gcs *st, const struct lfs_object_key *key,
                         char *buf, size_t size, struct lfs_error *err)
{
    if (!lfs_segments_valid(key->org_path, strlen(key->org_path)) ||
        !lfs_segment_valid(key->repo, strlen(key->repo)) ||
        !lfs_oid_valid(key->oid, strlen(key->oid)))
        return lfs_error_set(err, 422, "invalid object key");
    int n = snprintf(buf, size, "/%s/%s%s%s/%s/%s", st->bucket, st->prefix,
                     st->prefix[0] ? "/" : "", key->org_path, key->repo, key->oid);
    if (n < 0 || (size_t)n >= size)
        return lfs_error_set(err, 422, "object name too long");
    return 0;
}

/* Signs method on the object; the URL is copied into pool. */
static const char *sign_url(const struct lfs_storage_gcs *st, const char *method,
                            const struct lfs_object_key *key, time_t now, long expires,
                            const struct lfs_gcs_param *query, size_t nquery, h2o_mem_pool_t *pool,
                            struct lfs_error *err)
{
    char path[2048];
    if (resource_path(st, key, path, sizeof(path), err) < 0)
        return NULL;
    if (expires > LFS_GCS_MAX_EXPIRES)
        expires = LFS_GCS_MAX_EXPIRES;
    if (expires < 1)
        expires = 1;
    struct lfs_gcs_sign_input in = {
        .method = method,
        .base_url = st->base_url,
        .host = st->host,
        .path = path,
        .now = now,
        .expires = expires,
        .query = query,
        .nquery = nquery,
    };
    struct lfs_gcs_signed s;
    if (lfs_gcs_sign(st->key, &in, &s, err) < 0)
        return NULL;
    size_t len = strlen(s.url);
    char *url = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(url, s.url, len + 1);
    lfs_gcs_signed_free(&s);
    return url;
}

/* Content-Disposition for a download, as server/objects.c writes it: the filename reduced to
 * safe characters in the quoted form and given in full in the RFC 5987 form. */
static char *content_disposition(const char *filename, const char *disposition,
                                 h2o_mem_pool_t *pool)
{
    if (disposition == NULL || strcmp(disposition, "inline") != 0)
        disposition = "attachment";
    size_t len = filename != NULL ? strlen(filename) : 0;
    if (len == 0 || len > 1024) {
        char *v = h2o_mem_alloc_pool(pool, strlen(disposition) + 1);
        strcpy(v, disposition);
        return v;
    }
    char *plain = h2o_mem_alloc_pool(pool, len + 1);
    char *enc = h2o_mem_alloc_pool(pool, 3 * len + 1);
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)filename[i];
        plain[i] = (c == '\0' || (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '/'))
                       ? (char)c
                       : '_';
    }
    lfs_url_encode(filename, len, enc);
    size_t vlen = strlen(disposition) + len + strlen(enc) + 48;
    char *v = h2o_mem_alloc_pool(pool, vlen);
    snprintf(v, vlen, "%s; filename=\"%s\"; filename*=UTF-8''%s", disposition, plain, enc);
    return v;
}

static int gcs_sign(struct lfs_storage *storage, const struct lfs_object_key *key,
                    const struct lfs_sign_request *request, h2o_mem_pool_t *pool,
                    struct lfs_signed_url *out, struct lfs_error *err)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_gcs_param query[1];
    size_t nquery = 0;
    const char *method = "PUT";
    if (request->op == LFS_SIGN_DOWNLOAD) {
        method = "GET";
        if (request->filename != NULL || request->disposition != NULL)
            query[nquery++] = (struct lfs_gcs_param){
                "response-content-disposition",
                content_disposition(request->filename, request->disposition, pool)};
    }
    /* Uploads sign only the host: git-lfs sends a Content-Type it guesses from the data. */
    const char *url =
        sign_url(st, method, key, request->now, request->lifetime, query, nquery, pool, err);
    if (url == NULL)
        return -1;
    out->href = url;
    out->header = NULL;
    return 0;
}

/* ---- errors from the store ---- */

/* The <Code> of a GCS XML error body ("SignatureDoesNotMatch"), into buf ("" if none). Only
 * the code is kept: other fields may echo the string to sign. */
static void xml_error_code(const char *body, size_t len, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *p = memmem(body, len, "<Code>", 6);
    if (p == NULL)
        return;
    const char *s = p + 6, *end = body + len, *e = s;
    while (e < end && (size_t)(e - s) < size - 1 &&
           ((*e >= 'A' && *e <= 'Z') || (*e >= 'a' && *e <= 'z') || (*e >= '0' && *e <= '9')))
        e++;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
}

/* Maps a store answer that is not success to a struct lfs_error naming the store. */
static void status_error(struct lfs_error *err, long status, const char *what, const char *oid,
                         const char *body, size_t len)
{
    char code[64];
    xml_error_code(body != NULL ? body : "", body != NULL ? len : 0, code, sizeof(code));
    int mapped = status == 429 || status >= 500 ? 503 : 502;
    const char *hint = status == 401 || status == 403 || status == 400
                           ? "; check the service account's permissions, the key and the clock"
                           : "";
    lfs_error_set(err, mapped, GCS_STORE ": %s of object %s failed: HTTP %ld%s%s%s", what, oid,
                  status, code[0] ? " " : "", code, hint);
}

/* ---- stat: a signed HEAD ---- */

struct gcs_stat {
    lfs_storage_stat_cb cb;
    void *arg;
    char oid[LFS_OID_LEN + 1];
};

static void on_stat_done(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct gcs_stat *s = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        s->cb(s->arg, -1, err);
    } else if (res->status == 200 && res->content_length >= 0) {
        s->cb(s->arg, res->content_length, NULL);
    } else if (res->status == 404) {
        s->cb(s->arg, -1, NULL);
    } else if (res->status == 200) {
        lfs_error_set(&e, 502, GCS_STORE ": no Content-Length for object %s", s->oid);
        s->cb(s->arg, -1, &e);
    } else {
        status_error(&e, res->status, "lookup", s->oid, res->body.base, res->body.len);
        s->cb(s->arg, -1, &e);
    }
}

static void gcs_stat(struct lfs_storage *storage, struct lfs_io *io,
                     const struct lfs_object_key *key, lfs_storage_stat_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_error err = {0};
    const char *url =
        sign_url(st, "HEAD", key, time(NULL), GCS_SELF_EXPIRES, NULL, 0, io->pool, &err);
    if (url == NULL) {
        cb(arg, -1, &err);
        return;
    }
    struct gcs_stat *s = h2o_mem_alloc_pool(io->pool, sizeof(*s));
    s->cb = cb;
    s->arg = arg;
    snprintf(s->oid, sizeof(s->oid), "%s", key->oid);
    struct lfs_http_request req = {
        .method = "HEAD", .url = url, .timeout_ms = GCS_STAT_TIMEOUT_MS, .store = GCS_STORE};
    lfs_http_fetch(io, &req, on_stat_done, s);
}

/* ---- put: hash, then a signed PUT ---- */

/* One upload in progress, owned by the request pool. */
struct gcs_put {
    h2o_timeout_entry_t slice;
    struct lfs_io io;
    struct lfs_storage_gcs *st;
    EVP_MD_CTX *md;
    h2o_iovec_t body;
    size_t done;
    char org_path[1024];
    char repo[256];
    char oid[LFS_OID_LEN + 1];
    lfs_storage_done_cb cb;
    void *arg;
};

static void put_release(struct gcs_put *put)
{
    if (h2o_timeout_is_linked(&put->slice))
        h2o_timeout_unlink(&put->slice);
    if (put->md != NULL)
        EVP_MD_CTX_free(put->md);
    put->md = NULL;
}

static void put_dispose(void *p)
{
    put_release(p);
}

static void put_finish(struct gcs_put *put, const struct lfs_error *err)
{
    put_release(put);
    put->cb(put->arg, err);
}

static void on_put_done(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct gcs_put *put = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        put_finish(put, err);
    } else if (res->status >= 200 && res->status < 300) {
        put_finish(put, NULL);
    } else {
        status_error(&e, res->status, "upload", put->oid, res->body.base, res->body.len);
        put_finish(put, &e);
    }
}

/* The hash matched: send the object. */
static void put_send(struct gcs_put *put)
{
    struct lfs_error err = {0};
    struct lfs_object_key key = {.org_path = put->org_path, .repo = put->repo, .oid = put->oid};
    const char *url =
        sign_url(put->st, "PUT", &key, time(NULL), GCS_SELF_EXPIRES, NULL, 0, put->io.pool, &err);
    if (url == NULL) {
        put_finish(put, &err);
        return;
    }
    /* A deadline that allows 1 MB/s (the body is already here; only the network is slow). */
    struct lfs_http_request req = {
        .method = "PUT",
        .url = url,
        .headers = {"Content-Type: application/octet-stream"},
        .body = put->body,
        .timeout_ms = 60000 + (long)(put->body.len / 1000),
        .store = GCS_STORE,
    };
    lfs_http_fetch(&put->io, &req, on_put_done, put);
}

static void put_slice(h2o_timeout_entry_t *entry)
{
    struct gcs_put *put = H2O_STRUCT_FROM_MEMBER(struct gcs_put, slice, entry);
    size_t n = put->body.len - put->done;
    if (n > GCS_HASH_SLICE)
        n = GCS_HASH_SLICE;
    EVP_DigestUpdate(put->md, put->body.base + put->done, n);
    put->done += n;
    if (put->done < put->body.len) {
        h2o_timeout_link(put->io.ctx->loop, &put->io.ctx->zero_timeout, &put->slice);
        return;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(put->md, digest, &dlen);
    lfs_hex_encode(digest, dlen, hex);
    if (strcmp(hex, put->oid) != 0) {
        struct lfs_error err;
        lfs_error_set(&err, 422,
                      "uploaded data does not match its oid: expected sha256 %s, got %s; "
                      "nothing was stored",
                      put->oid, hex);
        put_finish(put, &err);
        return;
    }
    EVP_MD_CTX_free(put->md);
    put->md = NULL;
    put_send(put);
}

static void gcs_put(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, h2o_iovec_t body, lfs_storage_done_cb cb,
                    void *arg)
{
    struct gcs_put *put = h2o_mem_alloc_shared(io->pool, sizeof(*put), put_dispose);
    memset(put, 0, sizeof(*put));
    put->io = *io;
    put->st = (struct lfs_storage_gcs *)storage;
    put->body = body;
    put->cb = cb;
    put->arg = arg;
    put->slice.cb = put_slice;
    struct lfs_error err = {0};
    if (snprintf(put->org_path, sizeof(put->org_path), "%s", key->org_path) >=
            (int)sizeof(put->org_path) ||
        snprintf(put->repo, sizeof(put->repo), "%s", key->repo) >= (int)sizeof(put->repo) ||
        snprintf(put->oid, sizeof(put->oid), "%s", key->oid) >= (int)sizeof(put->oid) ||
        !lfs_oid_valid(put->oid, strlen(put->oid))) {
        lfs_error_set(&err, 422, "invalid object key");
        put_finish(put, &err);
        return;
    }
    put->md = EVP_MD_CTX_new();
    if (put->md == NULL || EVP_DigestInit_ex(put->md, EVP_sha256(), NULL) != 1) {
        lfs_error_set(&err, 500, "out of memory");
        put_finish(put, &err);
        return;
    }
    put_slice(&put->slice);
}

/* ---- open: a signed ranged GET, streamed ---- */

/* A download in progress, owned by the request pool. Data from the HTTP client lands in buf;
 * the reader takes it from there. Callbacks to the opener and reader are made from a
 * zero-timeout "kick" (or synchronously from read), never from inside the HTTP client's
 * callbacks, so the client is never re-entered from its own on_data. */
struct gcs_stream {
    struct lfs_storage_stream base;
    h2o_timeout_entry_t kick;
    h2o_context_t *ctx;
    struct lfs_http_call *call;
    char *buf;
    size_t cap, start, end;
    size_t want; /* size of the delivery refused while paused */
    bool paused, opened, done, whole;
    uint64_t offset, expected, received;
    struct lfs_error err; /* status != 0: the transfer failed */
    char errbody[1024];
    size_t errlen;
    long status;
    lfs_storage_open_cb open_cb;
    void *open_arg;
    /* the pending read, when rcb != NULL */
    char *rbuf;
    size_t rcap;
    lfs_storage_read_cb rcb;
    void *rarg;
    char oid[LFS_OID_LEN + 1];
};

static void stream_dispose(void *p)
{
    struct gcs_stream *s = p;
    if (h2o_timeout_is_linked(&s->kick))
        h2o_timeout_unlink(&s->kick);
    free(s->buf);
    s->buf = NULL;
}

static void stream_schedule(struct gcs_stream *s)
{
    if (!h2o_timeout_is_linked(&s->kick))
        h2o_timeout_link(s->ctx->loop, &s->ctx->zero_timeout, &s->kick);
}

/* Serves the pending read if it can. */
static void stream_serve(struct gcs_stream *s)
{
    if (s->rcb == NULL)
        return;
    lfs_storage_read_cb cb = s->rcb;
    void *arg = s->rarg;
    size_t avail = s->end - s->start;
    if (avail > 0) {
        size_t n = avail < s->rcap ? avail : s->rcap;
        memcpy(s->rbuf, s->buf + s->start, n);
        s->start += n;
        if (s->start == s->end)
            s->start = s->end = 0;
        s->rcb = NULL;
        /* Resume before the callback: the client may deliver more right away, into buf. */
        if (s->paused && s->cap - (s->end - s->start) >= s->want) {
            s->paused = false;
            lfs_http_resume(s->call);
        }
        cb(arg, (ssize_t)n, NULL);
    } else if (s->done) {
        s->rcb = NULL;
        if (s->err.status != 0)
            cb(arg, -1, &s->err);
        else
            cb(arg, 0, NULL);
    }
}

static void stream_kick(h2o_timeout_entry_t *entry)
{
    struct gcs_stream *s = H2O_STRUCT_FROM_MEMBER(struct gcs_stream, kick, entry);
    if (!s->opened) {
        if (s->err.status != 0 && s->done) {
            s->opened = true;
            s->open_cb(s->open_arg, NULL, &s->err);
        } else if (s->end > s->start || s->done) {
            s->opened = true;
            s->open_cb(s->open_arg, &s->base, NULL);
        }
        return;
    }
    stream_serve(s);
}

static void stream_read(struct lfs_storage_stream *stream, char *buf, size_t cap,
                        lfs_storage_read_cb cb, void *arg)
{
    struct gcs_stream *s = (struct gcs_stream *)stream;
    s->rbuf = buf;
    s->rcap = cap;
    s->rcb = cb;
    s->rarg = arg;
    stream_serve(s);
}

static const struct lfs_storage_stream_ops gcs_stream_ops = {.read = stream_read};

static int stream_on_data(void *arg, long status, const char *data, size_t len)
{
    struct gcs_stream *s = arg;
    s->status = status;
    if (status != 200 && status != 206) {
        size_t room = sizeof(s->errbody) - s->errlen;
        if (len < room)
            room = len;
        memcpy(s->errbody + s->errlen, data, room);
        s->errlen += room;
        return 0;
    }
    if (status == 200 && s->offset != 0) {
        lfs_error_set(&s->err, 502, GCS_STORE ": the store ignored the range of object %s", s->oid);
        return -1;
    }
    if (s->received + len > s->expected) {
        /* A 200 for the whole object when a prefix was asked: keep what was asked. */
        if (status == 200 && s->received < s->expected) {
            len = (size_t)(s->expected - s->received);
            s->whole = true;
        } else {
            lfs_error_set(&s->err, 502, GCS_STORE ": object %s is longer than expected", s->oid);
            return -1;
        }
    }
    if (s->start > 0 && s->cap - s->end < len) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    if (s->cap - s->end < len) {
        if (s->end > 0) {
            s->paused = true;
            s->want = len;
            stream_schedule(s);
            return 1;
        }
        /* Empty and still too small for one delivery: grow to it. */
        char *nb = realloc(s->buf, len);
        if (nb == NULL) {
            lfs_error_set(&s->err, 500, "out of memory");
            return -1;
        }
        s->buf = nb;
        s->cap = len;
    }
    memcpy(s->buf + s->end, data, len);
    s->end += len;
    s->received += len;
    stream_schedule(s);
    return s->whole ? -1 : 0;
}

static void stream_on_done(void *arg, const struct lfs_http_response *res,
                           const struct lfs_error *err)
{
    struct gcs_stream *s = arg;
    s->done = true;
    s->paused = false;
    if (s->whole && s->received == s->expected) {
        /* we aborted on purpose once we had everything */
    } else if (s->err.status != 0) {
        /* our own reason for aborting */
    } else if (err != NULL) {
        s->err = *err;
    } else if (res->status == 404) {
        lfs_error_set(&s->err, 404, "object %s does not exist", s->oid);
    } else if (res->status != 200 && res->status != 206) {
        status_error(&s->err, res->status, "download", s->oid, s->errbody, s->errlen);
    } else if (s->received != s->expected) {
        lfs_error_set(&s->err, 502,
                      GCS_STORE ": object %s ended after %" PRIu64 " of %" PRIu64 " bytes", s->oid,
                      s->received, s->expected);
    }
    stream_schedule(s);
}

static void gcs_open(struct lfs_storage *storage, struct lfs_io *io,
                     const struct lfs_object_key *key, uint64_t offset, uint64_t length,
                     lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct gcs_stream *s = h2o_mem_alloc_shared(io->pool, sizeof(*s), stream_dispose);
    memset(s, 0, sizeof(*s));
    s->base.ops = &gcs_stream_ops;
    s->kick.cb = stream_kick;
    s->ctx = io->ctx;
    s->offset = offset;
    s->expected = length;
    s->open_cb = cb;
    s->open_arg = arg;
    snprintf(s->oid, sizeof(s->oid), "%s", key->oid);
    if (length == 0) {
        s->done = s->opened = true;
        cb(arg, &s->base, NULL);
        return;
    }
    struct lfs_error err = {0};
    const char *url =
        sign_url(st, "GET", key, time(NULL), GCS_SELF_EXPIRES, NULL, 0, io->pool, &err);
    s->cap = GCS_STREAM_BUFFER;
    s->buf = url != NULL ? malloc(s->cap) : NULL;
    if (s->buf == NULL) {
        if (url != NULL)
            lfs_error_set(&err, 500, "out of memory");
        s->opened = true;
        cb(arg, NULL, &err);
        return;
    }
    char range[80];
    snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, offset,
             offset + length - 1);
    struct lfs_http_request req = {
        .method = "GET",
        .url = url,
        .headers = {range},
        /* Allows a reader as slow as 100 kB/s. */
        .timeout_ms = 60000 + (long)(length / 100),
        .store = GCS_STORE,
        .on_data = stream_on_data,
    };
    s->call = lfs_http_fetch(io, &req, stream_on_done, s);
}

const struct lfs_storage_ops lfs_storage_gcs_ops = {
    .name = "gcs",
    .classes = (const char *const[]){"giftless.storage.google_cloud:GoogleCloudStorage", NULL},
    .caps = LFS_STORAGE_STREAMING | LFS_STORAGE_SIGNED_URLS,
    .create = gcs_create,
    .destroy = gcs_destroy,
    .stat = gcs_stat,
    .put = gcs_put,
    .open = gcs_open,
    .sign = gcs_sign,
};
