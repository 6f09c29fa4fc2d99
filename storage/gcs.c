/* Google Cloud Storage backend (giftless.storage.google_cloud:GoogleCloudStorage): objects
 * live in one bucket under "[path_prefix/]<org_path>/<repo>/<oid>", giftless's layout. Clients
 * get V4 signed URLs to the XML API (storage/gcs_sign.c): signed here with a service-account key
 * parsed once at startup, or, with workload identity (serviceaccount_email and no key), by IAM
 * signBlob with the pod's access token from the metadata server (storage/gcs_iam.c).
 * lfsgate's own calls use a signed URL with a key and the access token (Authorization: Bearer)
 * without one: existence and size are HEADs sent through the event-loop HTTP client
 * (storage/http_client.h), one per object, all at once; basic_streaming uploads are hashed
 * first (in slices on the loop) and PUT only when the SHA-256 matches the oid, and downloads
 * are a ranged GET streamed through a bounded buffer with pause/resume (both shared with the
 * Azure backend: storage/remote.h). All request-scoped state is owned by the request pool. */
#include "storage/storage.h"

#include <errno.h>
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
#include "storage/gcs_iam.h"
#include "storage/gcs_sign.h"
#include "storage/http_client.h"
#include "storage/remote.h"

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define GCS_STORE "gcs storage"
/* Lifetime of the URLs lfsgate signs for its own calls; each call has a shorter deadline. */
#define GCS_SELF_EXPIRES 300
#define GCS_STAT_TIMEOUT_MS 20000
/* Longest service-account key file we read. */
#define GCS_MAX_KEY_FILE (1 << 20)

struct lfs_storage_gcs {
    struct lfs_storage base;
    struct lfs_gcs_key *key; /* NULL: workload identity, through iam */
    struct lfs_gcs_iam *iam;
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
    lfs_gcs_iam_destroy(st->iam);
    free(st->bucket);
    free(st->prefix);
    free(st->base_url);
    free(st->host);
    free(st);
}

/* Workload identity: signing as `email` through IAM at iam_endpoint, with the token of the
 * metadata server GCE_METADATA_HOST names (as Google's client libraries read it). */
static int create_iam(struct lfs_storage_gcs *st, const char *path, const char *email,
                      const char *iam_endpoint, struct lfs_error *err)
{
    char *iam_base = NULL, *iam_host = NULL, *md_base = NULL, *md_host = NULL;
    const char *md = getenv("GCE_METADATA_HOST");
    if (md == NULL || md[0] == '\0')
        md = LFS_GCS_METADATA_DEFAULT_HOST;
    char md_url[300];
    int rc = -1;
    if (parse_endpoint(iam_endpoint, &iam_base, &iam_host) < 0)
        lfs_error_set(err, 500,
                      "config: %s.iam_endpoint: expected http(s)://host[:port], got \"%s\"", path,
                      iam_endpoint);
    else if ((size_t)snprintf(md_url, sizeof(md_url), "http://%s", md) >= sizeof(md_url) ||
             parse_endpoint(md_url, &md_base, &md_host) < 0)
        lfs_error_set(err, 500,
                      "config: %s: the environment variable GCE_METADATA_HOST: expected "
                      "host[:port] of the metadata server, got \"%s\"",
                      path, md);
    else if (lfs_gcs_iam_create(email, iam_base, &st->iam, err) < 0)
        lfs_error_prefix(err, "config: %s.serviceaccount_email: ", path);
    else if (lfs_gcs_token_configure(md_base, err) >= 0)
        rc = 0;
    if (rc == 0)
        lfs_log(LFS_LOG_INFO,
                "gcs storage: bucket \"%s\"%s%s at %s, workload identity: signing as %s through "
                "IAM signBlob at %s, access token from the metadata server at %s",
                st->bucket, st->prefix[0] ? " under " : "", st->prefix, st->base_url, email,
                iam_base, md_base);
    free(iam_base);
    free(iam_host);
    free(md_base);
    free(md_host);
    return rc;
}

/* A service-account key, from account_key_file or account_key_base64. */
static int create_key(struct lfs_storage_gcs *st, const char *path, const char *key_file,
                      const char *key_b64, const char *email, struct lfs_error *err)
{
    const char *option = key_file != NULL ? "account_key_file" : "account_key_base64";
    size_t len = 0;
    char *text = key_file != NULL ? read_key_file(key_file, &len) : decode_base64(key_b64, &len);
    if (text == NULL) {
        if (key_file != NULL)
            return lfs_error_set(err, 500, "config: %s.%s: cannot read \"%s\": %s", path, option,
                                 key_file, strerror(errno));
        return lfs_error_set(err, 500, "config: %s.%s: not valid base64", path, option);
    }
    int rc = lfs_gcs_key_parse(text, len, &st->key, err);
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc < 0)
        return lfs_error_prefix(err, "config: %s.%s: ", path, option);
    /* giftless too signs with the key and ignores serviceaccount_email then. */
    if (email != NULL && strcmp(email, lfs_gcs_key_email(st->key)) != 0)
        lfs_log(LFS_LOG_WARN,
                "config: %s.serviceaccount_email: ignored: URLs are signed with the key of %s (%s)",
                path, lfs_gcs_key_email(st->key), option);
    lfs_log(LFS_LOG_INFO, "gcs storage: bucket \"%s\"%s%s at %s, signing as %s", st->bucket,
            st->prefix[0] ? " under " : "", st->prefix, st->base_url, lfs_gcs_key_email(st->key));
    return 0;
}

static int gcs_create(const json_t *options, const char *path, struct lfs_storage **out,
                      struct lfs_error *err)
{
    if (lfs_http_client_load(path, err) < 0)
        return -1;
    static const char *const keys[] = {"project_name",         "bucket_name",  "account_key_file",
                                       "account_key_base64",   "path_prefix",  "endpoint",
                                       "serviceaccount_email", "iam_endpoint", NULL};
    const char *project, *bucket, *key_file, *key_b64, *prefix, *endpoint, *sa_email, *iam;
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "project_name", NULL, &project, err) < 0 ||
        lfs_config_get_string(options, path, "bucket_name", NULL, &bucket, err) < 0 ||
        lfs_config_get_string(options, path, "account_key_file", NULL, &key_file, err) < 0 ||
        lfs_config_get_string(options, path, "account_key_base64", NULL, &key_b64, err) < 0 ||
        lfs_config_get_string(options, path, "path_prefix", "", &prefix, err) < 0 ||
        lfs_config_get_string(options, path, "endpoint", GCS_DEFAULT_ENDPOINT, &endpoint, err) <
            0 ||
        lfs_config_get_string(options, path, "serviceaccount_email", NULL, &sa_email, err) < 0 ||
        lfs_config_get_string(options, path, "iam_endpoint", LFS_GCS_IAM_DEFAULT_ENDPOINT, &iam,
                              err) < 0)
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
    if (key_file == NULL && key_b64 == NULL && sa_email == NULL)
        return lfs_error_set(err, 500,
                             "config: %s.account_key_file: required key is missing (give "
                             "account_key_file or account_key_base64, or serviceaccount_email "
                             "for workload identity)",
                             path);
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
    int rc = key_file == NULL && key_b64 == NULL
                 ? create_iam(st, path, sa_email, iam, err)
                 : create_key(st, path, key_file, key_b64, sa_email, err);
    if (rc < 0) {
        gcs_free(st);
        return -1;
    }
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

#define GCS_MAX_PATH 2048

/* What a URL for method on the object signs (path into path[GCS_MAX_PATH]); the lifetime is
 * brought into 1..LFS_GCS_MAX_EXPIRES. */
static int sign_input(const struct lfs_storage_gcs *st, const char *method,
                      const struct lfs_object_key *key, time_t now, long expires,
                      const struct lfs_gcs_param *query, size_t nquery, char *path,
                      struct lfs_gcs_sign_input *in, struct lfs_error *err)
{
    if (resource_path(st, key, path, GCS_MAX_PATH, err) < 0)
        return -1;
    if (expires > LFS_GCS_MAX_EXPIRES)
        expires = LFS_GCS_MAX_EXPIRES;
    if (expires < 1)
        expires = 1;
    *in = (struct lfs_gcs_sign_input){
        .method = method,
        .base_url = st->base_url,
        .host = st->host,
        .path = path,
        .now = now,
        .expires = expires,
        .query = query,
        .nquery = nquery,
    };
    return 0;
}

/* Signs method on the object with the key; the URL is copied into pool. */
static const char *sign_url(const struct lfs_storage_gcs *st, const char *method,
                            const struct lfs_object_key *key, time_t now, long expires,
                            const struct lfs_gcs_param *query, size_t nquery, h2o_mem_pool_t *pool,
                            struct lfs_error *err)
{
    char path[GCS_MAX_PATH];
    struct lfs_gcs_sign_input in;
    struct lfs_gcs_signed s;
    if (sign_input(st, method, key, now, expires, query, nquery, path, &in, err) < 0 ||
        lfs_gcs_sign(st->key, &in, &s, err) < 0)
        return NULL;
    const char *url = h2o_strdup(pool, s.url, SIZE_MAX).base;
    lfs_gcs_signed_free(&s);
    return url;
}

/* A sign through IAM, in the request pool. */
struct gcs_remote_sign {
    lfs_storage_sign_cb cb;
    void *arg;
};

static void on_remote_signed(void *arg, const char *url, const struct lfs_error *err)
{
    struct gcs_remote_sign *rs = arg;
    struct lfs_storage_request out = {.href = url};
    rs->cb(rs->arg, url != NULL ? &out : NULL, err);
}

static void gcs_sign(struct lfs_storage *storage, struct lfs_io *io,
                     const struct lfs_object_key *key, const struct lfs_sign_request *request,
                     lfs_storage_sign_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_gcs_param query[1];
    size_t nquery = 0;
    const char *method = "PUT";
    struct lfs_error err = {0};
    if (request->op == LFS_SIGN_DOWNLOAD) {
        method = "GET";
        if (request->filename != NULL || request->disposition != NULL)
            query[nquery++] = (struct lfs_gcs_param){
                "response-content-disposition",
                lfs_content_disposition(request->filename, request->disposition,
                                        LFS_DISPOSITION_FULL, io->pool)};
    }
    /* Uploads sign only the host: git-lfs sends a Content-Type it guesses from the data. */
    if (st->key != NULL) {
        struct lfs_storage_request out = {.href = sign_url(st, method, key, request->now,
                                                           request->lifetime, query, nquery,
                                                           io->pool, &err)};
        cb(arg, out.href != NULL ? &out : NULL, out.href != NULL ? NULL : &err);
        return;
    }
    /* signBlob is a round trip: URLs of one window are the same string, signed once. */
    time_t date;
    long expires;
    char path[GCS_MAX_PATH];
    struct lfs_gcs_sign_input in;
    long lifetime =
        request->lifetime < LFS_GCS_MAX_EXPIRES ? request->lifetime : LFS_GCS_MAX_EXPIRES;
    lfs_gcs_iam_window(request->now, lifetime > 0 ? lifetime : 1, &date, &expires);
    if (sign_input(st, method, key, date, expires, query, nquery, path, &in, &err) < 0) {
        cb(arg, NULL, &err);
        return;
    }
    struct gcs_remote_sign *rs = h2o_mem_alloc_pool(io->pool, sizeof(*rs));
    *rs = (struct gcs_remote_sign){.cb = cb, .arg = arg};
    lfs_gcs_iam_sign(st->iam, io, &in, on_remote_signed, rs);
}

/* ---- lfsgate's own calls: a signed URL, or the access token ---- */

/* url and, with the access token, the "Authorization: Bearer" header line (NULL with a signed
 * URL), both in the pool; or err. */
typedef void (*gcs_auth_cb)(void *arg, const char *url, const char *auth,
                            const struct lfs_error *err);

struct gcs_auth {
    h2o_mem_pool_t *pool;
    const char *url;
    gcs_auth_cb cb;
    void *arg;
};

static void on_auth_token(void *arg, const char *token, const struct lfs_error *err)
{
    struct gcs_auth *a = arg;
    if (err != NULL) {
        a->cb(a->arg, NULL, NULL, err);
        return;
    }
    size_t len = strlen(token) + sizeof("Authorization: Bearer ");
    char *auth = h2o_mem_alloc_pool(a->pool, len);
    snprintf(auth, len, "Authorization: Bearer %s", token);
    a->cb(a->arg, a->url, auth, NULL);
}

/* Authorizes lfsgate's own `method` on the object and calls cb once (possibly before
 * returning; never once io->pool is disposed). */
static void self_auth(const struct lfs_storage_gcs *st, struct lfs_io *io, const char *method,
                      const struct lfs_object_key *key, gcs_auth_cb cb, void *arg)
{
    struct lfs_error err = {0};
    if (st->key != NULL) {
        const char *url =
            sign_url(st, method, key, time(NULL), GCS_SELF_EXPIRES, NULL, 0, io->pool, &err);
        cb(arg, url, NULL, url != NULL ? NULL : &err);
        return;
    }
    char path[GCS_MAX_PATH];
    if (resource_path(st, key, path, sizeof(path), &err) < 0) {
        cb(arg, NULL, NULL, &err);
        return;
    }
    char *url = lfs_gcs_object_url(st->base_url, path);
    if (url == NULL) {
        lfs_error_set(&err, 500, "out of memory");
        cb(arg, NULL, NULL, &err);
        return;
    }
    struct gcs_auth *a = h2o_mem_alloc_pool(io->pool, sizeof(*a));
    *a = (struct gcs_auth){
        .pool = io->pool, .url = h2o_strdup(io->pool, url, SIZE_MAX).base, .cb = cb, .arg = arg};
    free(url);
    lfs_gcs_token_get(io, on_auth_token, a);
}

/* ---- errors from the store ---- */

/* Maps a store answer that is not success to a struct lfs_error naming the store (an
 * lfs_storage_status_error_fn; ctx unused). */
static void status_error(const void *ctx, struct lfs_error *err,
                         const struct lfs_http_response *res, const char *what, const char *oid)
{
    (void)ctx;
    char code[64];
    lfs_storage_xml_error_code(res->body, code, sizeof(code));
    long status = res->status;
    int mapped = status == 429 || status >= 500 ? 503 : 502;
    const char *hint = status == 401 || status == 403 || status == 400
                           ? "; check the service account's permissions, the key and the clock"
                           : "";
    lfs_error_set(err, mapped, GCS_STORE ": %s of object %s failed: HTTP %ld%s%s%s", what, oid,
                  status, code[0] ? " " : "", code, hint);
}

/* ---- stat: a HEAD (storage/remote.h) ---- */

/* A call on an object waiting for its authorization, in the request pool. */
struct gcs_call {
    struct lfs_io io;
    void *state; /* the stat, or the stream */
};

static struct gcs_call *call_new(struct lfs_io *io, void *state)
{
    struct gcs_call *c = h2o_mem_alloc_pool(io->pool, sizeof(*c));
    *c = (struct gcs_call){.io = *io, .state = state};
    return c;
}

static void stat_send(void *arg, const char *url, const char *auth, const struct lfs_error *err)
{
    struct gcs_call *c = arg;
    if (err != NULL) {
        struct lfs_http_response none = {.content_length = -1};
        lfs_storage_http_stat_on_done(c->state, &none, err);
        return;
    }
    struct lfs_http_request req = {.method = "HEAD",
                                   .url = url,
                                   .headers = {auth},
                                   .timeout_ms = GCS_STAT_TIMEOUT_MS,
                                   .store = GCS_STORE};
    lfs_http_fetch(&c->io, &req, lfs_storage_http_stat_on_done, c->state);
}

static void gcs_stat(struct lfs_storage *storage, struct lfs_io *io,
                     const struct lfs_object_key *key, lfs_storage_stat_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_storage_remote_op op = {
        .store = GCS_STORE, .what = "lookup", .object = key->oid, .status_error = status_error};
    self_auth(st, io, "HEAD", key, stat_send,
              call_new(io, lfs_storage_http_stat_new(io, &op, cb, arg)));
}

/* ---- put: hash, then a PUT ---- */

/* One upload in progress, owned by the request pool. */
struct gcs_put {
    struct lfs_io io;
    struct lfs_storage_gcs *st;
    h2o_iovec_t body;
    char org_path[1024];
    char repo[256];
    char oid[LFS_OID_LEN + 1];
    lfs_storage_done_cb cb;
    void *arg;
};

static void put_finish(struct gcs_put *put, const struct lfs_error *err)
{
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
        status_error(NULL, &e, res, "upload", put->oid);
        put_finish(put, &e);
    }
}

static void put_send(void *arg, const char *url, const char *auth, const struct lfs_error *err)
{
    struct gcs_put *put = arg;
    if (err != NULL) {
        put_finish(put, err);
        return;
    }
    struct lfs_http_request req = {
        .method = "PUT",
        .url = url,
        .headers = {"Content-Type: application/octet-stream", auth},
        .body = put->body,
        .timeout_ms = lfs_storage_upload_timeout_ms(put->body.len),
        .store = GCS_STORE,
    };
    lfs_http_fetch(&put->io, &req, on_put_done, put);
}

/* Called once the body is hashed (storage/remote.h): sends it if its SHA-256 is the oid. */
static void put_verified(void *arg, const struct lfs_error *verified)
{
    struct gcs_put *put = arg;
    if (verified != NULL) {
        put_finish(put, verified);
        return;
    }
    struct lfs_object_key key = {.org_path = put->org_path, .repo = put->repo, .oid = put->oid};
    self_auth(put->st, &put->io, "PUT", &key, put_send, put);
}

static void gcs_put(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, h2o_iovec_t body, lfs_storage_done_cb cb,
                    void *arg)
{
    struct gcs_put *put = h2o_mem_alloc_pool(io->pool, sizeof(*put));
    *put = (struct gcs_put){
        .io = *io, .st = (struct lfs_storage_gcs *)storage, .body = body, .cb = cb, .arg = arg};
    if (snprintf(put->org_path, sizeof(put->org_path), "%s", key->org_path) >=
            (int)sizeof(put->org_path) ||
        snprintf(put->repo, sizeof(put->repo), "%s", key->repo) >= (int)sizeof(put->repo) ||
        snprintf(put->oid, sizeof(put->oid), "%s", key->oid) >= (int)sizeof(put->oid) ||
        !lfs_oid_valid(put->oid, strlen(put->oid))) {
        struct lfs_error err;
        lfs_error_set(&err, 422, "invalid object key");
        put_finish(put, &err);
        return;
    }
    lfs_storage_verify_body(io, body, put->oid, put_verified, put);
}

/* ---- open: a ranged GET, streamed (storage/remote.h) ---- */

static void open_send(void *arg, const char *url, const char *auth, const struct lfs_error *err)
{
    struct gcs_call *c = arg;
    struct lfs_storage_http_stream *s = c->state;
    if (err != NULL) {
        lfs_storage_http_stream_fail(s, err);
        return;
    }
    char range[80];
    snprintf(range, sizeof(range), "Range: %s", lfs_storage_http_stream_range(s));
    struct lfs_http_request req = {
        .method = "GET",
        .url = url,
        .headers = {range, auth},
        .timeout_ms = lfs_storage_http_stream_timeout_ms(s),
        .store = GCS_STORE,
        .on_data = lfs_storage_http_stream_on_data,
    };
    lfs_storage_http_stream_started(
        s, lfs_http_fetch(&c->io, &req, lfs_storage_http_stream_on_done, s));
}

static void gcs_open(struct lfs_storage *storage, struct lfs_io *io,
                     const struct lfs_object_key *key, uint64_t offset, uint64_t length,
                     lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_storage_remote_op op = {
        .store = GCS_STORE, .what = "download", .object = key->oid, .status_error = status_error};
    struct lfs_storage_http_stream *s =
        lfs_storage_http_stream_new(io, &op, offset, length, cb, arg);
    if (s != NULL)
        self_auth(st, io, "GET", key, open_send, call_new(io, s));
}

/* ---- locks: one small object per lock (storage.h) ----
 * Create is a PUT with x-goog-if-generation-match: 0 (412 when the name is taken), so the store
 * picks the one winner among replicas; delete is a DELETE with x-goog-if-generation-match: the
 * generation read, so a lock replaced since is left alone. Listing is one XML API list of the
 * locks' prefix (marker: the last name of the previous page) and then a GET per lock, all at
 * once: a lock's content is not in the listing. */

#define GCS_LOCK_TIMEOUT_MS 20000
#define GCS_LOCK_LIST_MAX 1000 /* keys per XML API list */

struct gcs_lock {
    struct lfs_storage_gcs *st;
    struct lfs_io io;
    const char *method;
    h2o_iovec_t body;
    const char *precondition; /* "x-goog-if-generation-match: N" (a quarantine's copy:
                               * "x-goog-copy-source: ..."), or NULL */
    long timeout_ms;          /* 0: GCS_LOCK_TIMEOUT_MS */
    lfs_http_cb cb;
    void *arg;
};

/* Authorizes lfsgate's own `method` on "/<bucket>/<object>" (object NULL: the bucket itself)
 * with `headers` signed besides host and `query` added, as self_auth does for objects. */
static void lock_auth(struct gcs_lock *l, const char *object, const struct lfs_gcs_param *headers,
                      size_t nheaders, const struct lfs_gcs_param *query, size_t nquery,
                      gcs_auth_cb cb)
{
    struct lfs_storage_gcs *st = l->st;
    struct lfs_error err = {0};
    char path[GCS_MAX_PATH];
    int n = snprintf(path, sizeof(path), "/%s%s%s", st->bucket, object != NULL ? "/" : "",
                     object != NULL ? object : "");
    if (n < 0 || (size_t)n >= sizeof(path)) {
        lfs_error_set(&err, 422, "lock name too long");
        cb(l, NULL, NULL, &err);
        return;
    }
    if (st->key != NULL) {
        struct lfs_gcs_sign_input in = {.method = l->method,
                                        .base_url = st->base_url,
                                        .host = st->host,
                                        .path = path,
                                        .now = time(NULL),
                                        .expires = GCS_SELF_EXPIRES,
                                        .headers = headers,
                                        .nheaders = nheaders,
                                        .query = query,
                                        .nquery = nquery};
        struct lfs_gcs_signed sg;
        if (lfs_gcs_sign(st->key, &in, &sg, &err) < 0) {
            cb(l, NULL, NULL, &err);
            return;
        }
        const char *url = h2o_strdup(l->io.pool, sg.url, SIZE_MAX).base;
        lfs_gcs_signed_free(&sg);
        cb(l, url, NULL, NULL);
        return;
    }
    char *base = lfs_gcs_object_url(st->base_url, path);
    if (base == NULL) {
        lfs_error_set(&err, 500, "out of memory");
        cb(l, NULL, NULL, &err);
        return;
    }
    size_t cap = strlen(base) + 2;
    for (size_t i = 0; i < nquery; i++)
        cap += strlen(query[i].name) + 3 * strlen(query[i].value) + 2;
    struct lfs_strbuf url = {.buf = h2o_mem_alloc_pool(l->io.pool, cap), .cap = cap};
    lfs_strbuf_adds(&url, base);
    free(base);
    for (size_t i = 0; i < nquery; i++) {
        char *enc = h2o_mem_alloc_pool(l->io.pool, 3 * strlen(query[i].value) + 1);
        lfs_url_encode(query[i].value, strlen(query[i].value), enc);
        lfs_strbuf_add(&url, i == 0 ? "?" : "&", 1);
        lfs_strbuf_adds(&url, query[i].name);
        lfs_strbuf_add(&url, "=", 1);
        lfs_strbuf_adds(&url, enc);
    }
    struct gcs_auth *a = h2o_mem_alloc_pool(l->io.pool, sizeof(*a));
    *a = (struct gcs_auth){.pool = l->io.pool, .url = url.buf, .cb = cb, .arg = l};
    lfs_gcs_token_get(&l->io, on_auth_token, a);
}

/* Sends l->method with the precondition (if any) once authorized. */
static void lock_send(void *arg, const char *url, const char *auth, const struct lfs_error *err)
{
    struct gcs_lock *l = arg;
    if (err != NULL) {
        struct lfs_http_response none = {.content_length = -1, .body = h2o_iovec_init("", 0)};
        l->cb(l->arg, &none, err);
        return;
    }
    struct lfs_http_request req = {.method = l->method,
                                   .url = url,
                                   .body = l->body,
                                   .timeout_ms =
                                       l->timeout_ms ? l->timeout_ms : GCS_LOCK_TIMEOUT_MS,
                                   .store = GCS_STORE};
    size_t n = 0;
    if (l->body.len > 0)
        req.headers[n++] = "Content-Type: application/json";
    if (l->precondition != NULL)
        req.headers[n++] = l->precondition;
    req.headers[n] = auth;
    lfs_http_fetch(&l->io, &req, l->cb, l->arg);
}

static struct gcs_lock *gcs_lock_new(void *ctx, struct lfs_io *io, const char *method,
                                     lfs_http_cb cb, void *arg)
{
    struct gcs_lock *l = h2o_mem_alloc_pool(io->pool, sizeof(*l));
    *l = (struct gcs_lock){.st = ctx, .io = *io, .method = method, .cb = cb, .arg = arg};
    return l;
}

/* Starts a lock call (struct lfs_storage_lock_store.send): create with
 * x-goog-if-generation-match: 0, delete with the generation read. */
static void gcs_lock_send(void *ctx, struct lfs_io *io, enum lfs_storage_lock_verb verb,
                          const char *object, const char *version, h2o_iovec_t body, lfs_http_cb cb,
                          void *arg)
{
    static const char *const methods[] = {"PUT", "GET", "DELETE"};
    struct gcs_lock *l = gcs_lock_new(ctx, io, methods[verb], cb, arg);
    const char *generation = verb == LFS_STORAGE_LOCK_CREATE   ? "0"
                             : verb == LFS_STORAGE_LOCK_DELETE ? version
                                                               : NULL;
    struct lfs_gcs_param header = {"x-goog-if-generation-match", generation};
    l->body = body;
    if (generation != NULL)
        l->precondition = lfs_storage_header_line(io->pool, header.name, generation);
    lock_auth(l, object, generation != NULL ? &header : NULL, generation != NULL, NULL, 0,
              lock_send);
}

/* Lists the locks' prefix with the XML API (struct lfs_storage_lock_store.send_list). */
static void gcs_lock_send_list(void *ctx, struct lfs_io *io, const char *prefix, const char *after,
                               size_t limit, lfs_http_cb cb, void *arg)
{
    struct gcs_lock *l = gcs_lock_new(ctx, io, "GET", cb, arg);
    char max_keys[24];
    snprintf(max_keys, sizeof(max_keys), "%zu", limit);
    struct lfs_gcs_param query[3] = {{"max-keys", max_keys}, {"prefix", prefix}};
    size_t nquery = 2;
    if (after != NULL) /* the XML API lists the names after the marker */
        query[nquery++] = (struct lfs_gcs_param){"marker", after};
    lock_auth(l, NULL, NULL, 0, query, nquery, lock_send);
}

/* A generation: the digits of a 64-bit number. */
static bool gcs_generation_valid(const char *version)
{
    size_t n = strlen(version);
    return n > 0 && n <= 20 && strspn(version, "0123456789") == n;
}

static const char *gcs_lock_version(const struct lfs_http_response *res)
{
    return res->generation != NULL && gcs_generation_valid(res->generation) ? res->generation
                                                                            : NULL;
}

static const char *gcs_lock_prefix(const struct lfs_storage *storage)
{
    return ((const struct lfs_storage_gcs *)storage)->prefix;
}

static const struct lfs_storage_lock_store gcs_locks = {
    .store = GCS_STORE,
    .version_name = "a generation",
    .what = {"lock create", "lock read", "lock delete"},
    .taken = {412, 0},
    .status_error = status_error,
    .send = gcs_lock_send,
    .version_of = gcs_lock_version,
    .prefix = gcs_lock_prefix,
    .version_valid = gcs_generation_valid,
    .send_list = gcs_lock_send_list,
    .list_max = GCS_LOCK_LIST_MAX,
};

/* ---- scan and quarantine (lfsgate scrub; storage/remote.h) ----
 * Scanning is the XML API listing of the prefix, a page at a time (marker: the NextMarker of
 * the page before). Quarantine is a copy within the bucket (a PUT with x-goog-copy-source,
 * done when the store answers) to the quarantine name, then a DELETE of the original. */

#define GCS_SCAN_PAGE "1000"
#define GCS_COPY_TIMEOUT_MS 300000

static int gcs_scan_open(struct lfs_storage *storage, const char *org_path, const char *repo,
                         struct lfs_storage_scan **out, struct lfs_error *err)
{
    return lfs_storage_scan_cursor_open(storage, ((struct lfs_storage_gcs *)storage)->prefix,
                                        org_path, repo, out, err);
}

static void gcs_scan_next(struct lfs_storage_scan *scan, struct lfs_io *io, lfs_storage_scan_cb cb,
                          void *arg)
{
    struct lfs_storage_scan_cursor *c = (struct lfs_storage_scan_cursor *)scan;
    if (lfs_storage_scan_end(c, cb, arg))
        return;
    struct lfs_storage_remote_op op = {
        .store = GCS_STORE, .what = "listing", .object = c->prefix, .status_error = status_error};
    struct gcs_lock *l = gcs_lock_new(c->storage, io, "GET", lfs_storage_xml_scan_on_done,
                                      lfs_storage_xml_scan_new(io, c, &op, "NextMarker", cb, arg));
    struct lfs_gcs_param query[3] = {{"max-keys", GCS_SCAN_PAGE}, {"prefix", c->prefix}};
    size_t nquery = 2;
    if (c->marker != NULL)
        query[nquery++] = (struct lfs_gcs_param){"marker", c->marker};
    lock_auth(l, NULL, NULL, 0, query, nquery, lock_send);
}

static void quarantine_delete(struct lfs_storage_quarantine *q)
{
    struct gcs_lock *l = gcs_lock_new(q->storage, &q->io, "DELETE", lfs_storage_http_done_on_done,
                                      lfs_storage_quarantine_delete_done(q));
    lock_auth(l, q->object, NULL, 0, NULL, 0, lock_send);
}

static void gcs_quarantine(struct lfs_storage *storage, struct lfs_io *io,
                           const struct lfs_object_key *key, lfs_storage_done_cb cb, void *arg)
{
    struct lfs_storage_gcs *st = (struct lfs_storage_gcs *)storage;
    struct lfs_storage_remote_op op = {.store = GCS_STORE, .status_error = status_error};
    struct lfs_storage_quarantine *q =
        lfs_storage_quarantine_new(io, storage, st->prefix, key, &op, quarantine_delete, cb, arg);
    if (q == NULL)
        return;
    struct gcs_lock *l = gcs_lock_new(st, io, "PUT", lfs_storage_quarantine_on_copied, q);
    size_t n = strlen(st->bucket) + strlen(q->object) + 3; /* "/bucket/object" */
    char *source = h2o_mem_alloc_pool(io->pool, n);
    snprintf(source, n, "/%s/%s", st->bucket, q->object);
    l->precondition = lfs_storage_header_line(io->pool, "x-goog-copy-source", source);
    l->timeout_ms = GCS_COPY_TIMEOUT_MS;
    struct lfs_gcs_param signed_header = {"x-goog-copy-source", source};
    lock_auth(l, q->aside, &signed_header, 1, NULL, 0, lock_send);
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
    .lock_create = lfs_storage_remote_lock_create,
    .lock_read = lfs_storage_remote_lock_read,
    .lock_delete = lfs_storage_remote_lock_delete,
    .lock_list = lfs_storage_remote_lock_list,
    .lock_store = &gcs_locks,
    .scan_open = gcs_scan_open,
    .scan_next = gcs_scan_next,
    .scan_close = lfs_storage_scan_cursor_close,
    .quarantine = gcs_quarantine,
};
