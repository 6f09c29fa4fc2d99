/* Azure Blob Storage backend (giftless.storage.azure:AzureBlobsStorage): objects are block
 * blobs in one container, named "[path_prefix/]<org_path>/<repo>/<oid>" as giftless names them,
 * so an existing giftless container is served as is. Credentials come from a connection string
 * parsed once at startup (storage/azure_sign.c). Clients get service SAS URLs (basic_external:
 * write-only for uploads, read-only for downloads; multipart-basic: Put Block / Put Block List /
 * Delete Blob); lfsgate's own calls carry Shared Key authorization and go through the
 * event-loop HTTP client (storage/http_client.h): existence and size are one HEAD per object,
 * all of a batch at once; basic_streaming uploads are hashed first (in slices on the loop) and
 * only a body whose SHA-256 matches the oid is written (Put Blob, or staged blocks committed
 * with Put Block List for large bodies), straight from the request's buffer; downloads are a
 * ranged GET streamed through a bounded buffer with pause/resume (the hashing and the
 * streaming are shared with the GCS backend: storage/remote.h). All request-scoped state is
 * owned by the request pool. */
#include "storage/storage.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/config.h"
#include "storage/azure_sign.h"
#include "storage/http_client.h"
#include "storage/remote.h"

#define AZURE_STORE "azure storage"
/* Deadline of lfsgate's metadata calls (HEAD, Get Block List) unless `request_timeout` says. */
#define AZURE_DEFAULT_TIMEOUT_S 20
/* SAS start times are set this far in the past: clocks of client, server and store differ. */
#define AZURE_CLOCK_SKEW 300
/* Bodies up to this size are one Put Blob; larger ones are staged in blocks of
 * AZURE_BLOCK_SIZE and committed with Put Block List. */
#define AZURE_PUT_BLOB_MAX (256u << 20)
#define AZURE_BLOCK_SIZE (64u << 20)
/* Block ids: base64 of a 16-character text, the same length as giftless's, so blocks staged
 * by either never mix ids of different lengths in one blob (the service refuses that). */
#define AZURE_BLOCK_ID_RAW 16
#define AZURE_BLOCK_ID_LEN 24
/* Service limits: blocks per blob, bytes per block. */
#define AZURE_MAX_BLOCKS 50000u
#define AZURE_MAX_BLOCK_SIZE (4000ull << 20)

struct lfs_storage_azure {
    struct lfs_storage base;
    struct lfs_azure_account account;
    char *container;
    char *prefix; /* "" or "a/b": no leading or trailing '/' */
    bool content_digest;
    bool https;
    long timeout_ms;
};

/* ---- configuration ---- */

/* Azure container names: 3-63 of [a-z0-9-], starting with a letter or digit, no "--". */
static bool valid_container(const char *s)
{
    size_t len = strlen(s);
    if (strcmp(s, "$root") == 0)
        return true;
    if (len < 3 || len > 63 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--") != NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void azure_destroy(struct lfs_storage *storage)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    if (st == NULL)
        return;
    OPENSSL_cleanse(&st->account, sizeof(st->account));
    free(st->container);
    free(st->prefix);
    free(st);
}

static int azure_create(const json_t *options, const char *path, struct lfs_storage **out,
                        struct lfs_error *err)
{
    if (lfs_http_client_load(path, err) < 0)
        return -1;
    static const char *const keys[] = {"connection_string",     "container_name",  "path_prefix",
                                       "enable_content_digest", "request_timeout", NULL};
    const char *cs, *container, *prefix;
    bool digest;
    long long timeout;
    char kpath[256];
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "connection_string", NULL, &cs, err) < 0 ||
        lfs_config_get_string(options, path, "container_name", NULL, &container, err) < 0 ||
        lfs_config_get_string(options, path, "path_prefix", "", &prefix, err) < 0 ||
        lfs_config_get_bool(options, path, "enable_content_digest", true, &digest, err) < 0 ||
        lfs_config_get_int(options, path, "request_timeout", AZURE_DEFAULT_TIMEOUT_S, 1, 3600,
                           &timeout, err) < 0)
        return -1;
    if (cs == NULL)
        return lfs_error_set(err, 500,
                             "config: %s: required key is missing (e.g. "
                             "\"DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...\", "
                             "or \"UseDevelopmentStorage=true\" for Azurite)",
                             lfs_config_path(kpath, sizeof(kpath), path, "connection_string"));
    if (container == NULL)
        return lfs_error_set(err, 500, "config: %s: required key is missing",
                             lfs_config_path(kpath, sizeof(kpath), path, "container_name"));
    if (!valid_container(container))
        return lfs_error_set(err, 500,
                             "config: %s: \"%s\" is not a valid container name (3 to 63 "
                             "lowercase letters, digits and single hyphens)",
                             lfs_config_path(kpath, sizeof(kpath), path, "container_name"),
                             container);
    struct lfs_storage_azure *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return lfs_error_set(err, 500, "out of memory");
    extern const struct lfs_storage_ops lfs_storage_azure_ops;
    st->base.ops = &lfs_storage_azure_ops;
    st->content_digest = digest;
    st->timeout_ms = (long)timeout * 1000;
    if (lfs_azure_parse_connection_string(cs, &st->account, err) < 0) {
        lfs_error_prefix(
            err, "config: %s: ", lfs_config_path(kpath, sizeof(kpath), path, "connection_string"));
        azure_destroy(&st->base);
        return -1;
    }
    st->https = strncmp(st->account.endpoint, "https://", 8) == 0;
    int rc = lfs_storage_prefix_normalize(prefix, &st->prefix);
    if (rc != 0) {
        azure_destroy(&st->base);
        if (rc > 0)
            return lfs_error_set(err, 500,
                                 "config: %s: \"%s\" is not a usable blob name prefix (empty, "
                                 "\".\" or \"..\" segments, or control characters)",
                                 lfs_config_path(kpath, sizeof(kpath), path, "path_prefix"),
                                 prefix);
        return lfs_error_set(err, 500, "out of memory");
    }
    if ((st->container = strdup(container)) == NULL) {
        azure_destroy(&st->base);
        return lfs_error_set(err, 500, "out of memory");
    }
    *out = &st->base;
    return 0;
}

/* ---- names, URLs, signed requests ---- */

/* The blob's name: "[prefix/]org_path/repo/oid" in the pool (storage/remote.h). */
static const char *blob_name(const struct lfs_storage_azure *st, const struct lfs_object_key *key,
                             h2o_mem_pool_t *pool, struct lfs_error *err)
{
    return lfs_storage_object_name(st->prefix, key, pool, err);
}

/* "<endpoint>/<container>/<encoded blob>" (url) and its path (for Shared Key), in the pool. */
static void blob_url(const struct lfs_storage_azure *st, const char *blob, h2o_mem_pool_t *pool,
                     const char **url, const char **path)
{
    char *enc = h2o_mem_alloc_pool(pool, 3 * strlen(blob) + 1);
    lfs_azure_path_encode(blob, enc);
    size_t n = strlen(st->account.endpoint) + strlen(st->container) + strlen(enc) + 3;
    char *u = h2o_mem_alloc_pool(pool, n);
    snprintf(u, n, "%s/%s/%s", st->account.endpoint, st->container, enc);
    *url = u;
    if (path != NULL) {
        size_t pn = strlen(st->account.path) + strlen(st->container) + strlen(enc) + 3;
        char *p = h2o_mem_alloc_pool(pool, pn);
        snprintf(p, pn, "%s/%s/%s", st->account.path, st->container, enc);
        *path = p;
    }
}

/* One call lfsgate makes to the store with Shared Key authorization. */
struct azure_call {
    const char *method;
    const char *blob;       /* NULL: the container */
    const char *query;      /* without '?', or NULL */
    const char *headers[8]; /* extra "Name: value" lines (x-ms-*, Content-Type), NULL-ended */
    h2o_iovec_t body;
    long timeout_ms;
    int (*on_data)(void *arg, long status, const char *data, size_t len);
};

/* Signs and starts `c`. Returns what lfs_http_fetch returns (NULL after calling cb). */
static struct lfs_http_call *azure_fetch(struct lfs_storage_azure *st, struct lfs_io *io,
                                         const struct azure_call *c, lfs_http_cb cb, void *arg)
{
    const char *url, *path;
    if (c->blob != NULL) {
        blob_url(st, c->blob, io->pool, &url, &path);
    } else { /* the container itself (List Blobs) */
        size_t n =
            strlen(st->account.endpoint) + strlen(st->account.path) + 2 * strlen(st->container) + 4;
        char *buf = h2o_mem_alloc_pool(io->pool, n);
        int un = snprintf(buf, n, "%s/%s", st->account.endpoint, st->container);
        url = buf;
        path = buf + un + 1;
        snprintf(buf + un + 1, n - (size_t)un - 1, "%s/%s", st->account.path, st->container);
    }
    if (c->query != NULL) {
        size_t n = strlen(url) + strlen(c->query) + 2;
        char *u = h2o_mem_alloc_pool(io->pool, n);
        snprintf(u, n, "%s?%s", url, c->query);
        url = u;
    }
    char date[64], length[64], auth[512];
    char rfc[30];
    snprintf(date, sizeof(date), "x-ms-date: %s", lfs_azure_rfc1123(time(NULL), rfc));
    snprintf(length, sizeof(length), "Content-Length: %zu", c->body.len);
    /* Signed: everything sent, plus the Content-Length curl adds itself. */
    const char *signed_headers[LFS_HTTP_MAX_HEADERS + 1];
    struct lfs_http_request req = {
        .method = c->method,
        .url = url,
        .body = c->body,
        .timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : st->timeout_ms,
        .store = AZURE_STORE,
        .on_data = c->on_data,
    };
    size_t n = 0, ns = 0;
    req.headers[n++] = date;
    req.headers[n++] = "x-ms-version: " LFS_AZURE_VERSION;
    for (size_t i = 0; c->headers[i] != NULL && n < LFS_HTTP_MAX_HEADERS - 2; i++)
        req.headers[n++] = c->headers[i];
    for (size_t i = 0; i < n; i++)
        signed_headers[ns++] = req.headers[i];
    if (c->body.len > 0)
        signed_headers[ns++] = length;
    signed_headers[ns] = NULL;
    struct lfs_azure_request sreq = {
        .method = c->method, .path = path, .query = c->query, .headers = signed_headers};
    struct lfs_error err = {0};
    char *authz = auth + 15;
    memcpy(auth, "Authorization: ", 15);
    if (lfs_azure_shared_key(&st->account, &sreq, authz, sizeof(auth) - 15, &err) < 0) {
        struct lfs_http_response response = {.content_length = -1, .body = h2o_iovec_init("", 0)};
        cb(arg, &response, &err);
        return NULL;
    }
    req.headers[n++] = auth;
    req.headers[n] = NULL;
    struct lfs_http_call *call = lfs_http_fetch(io, &req, cb, arg);
    OPENSSL_cleanse(auth, sizeof(auth));
    return call;
}

/* err for an unexpected answer of the store to `what` (e.g. "HEAD") of a blob; ctx: the
 * struct lfs_storage_azure (an lfs_storage_status_error_fn). */
static void status_error(const void *ctx, struct lfs_error *err,
                         const struct lfs_http_response *res, const char *what, const char *blob)
{
    const struct lfs_storage_azure *st = ctx;
    char code[64];
    lfs_storage_xml_error_code(res->body, code, sizeof(code));
    long status = res->status;
    const char *hint = "";
    if (status == 401 || status == 403)
        hint = "; check the account name and key of connection_string";
    else if (strcmp(code, "ContainerNotFound") == 0)
        hint = "; create the container first";
    lfs_error_set(err, status == 503 ? 503 : 502,
                  AZURE_STORE " answered %ld%s%s%s to %s of \"%s\" in container \"%s\"%s", status,
                  code[0] != '\0' ? " (" : "", code, code[0] != '\0' ? ")" : "", what, blob,
                  st->container, hint);
}

/* ---- stat: HEAD (storage/remote.h) ---- */

static void azure_stat(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, lfs_storage_stat_cb cb, void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *blob = blob_name(st, key, io->pool, &err);
    if (blob == NULL) {
        cb(arg, -1, &err);
        return;
    }
    struct lfs_storage_remote_op op = {.store = AZURE_STORE,
                                       .what = "HEAD",
                                       .object = blob,
                                       .status_error = status_error,
                                       .ctx = st};
    struct azure_call c = {.method = "HEAD", .blob = blob};
    azure_fetch(st, io, &c, lfs_storage_http_stat_on_done,
                lfs_storage_http_stat_new(io, &op, cb, arg));
}

/* ---- list: List Blobs under the repository's prefix ---- */

static void azure_list(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, size_t limit, lfs_storage_list_cb cb,
                       void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *prefix = lfs_storage_repo_prefix(st->prefix, key, io->pool, &err);
    if (prefix == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    struct lfs_storage_remote_op op = {.store = AZURE_STORE,
                                       .what = "List Blobs",
                                       .object = prefix,
                                       .status_error = status_error,
                                       .ctx = st};
    size_t plen = strlen(prefix);
    size_t qn = 3 * plen + 96;
    char *query = h2o_mem_alloc_pool(io->pool, qn);
    int qlen = snprintf(
        query, qn, "restype=container&comp=list&maxresults=%zu&prefix=", limit > 0 ? limit : 1);
    lfs_url_encode(prefix, plen, query + qlen);
    struct azure_call c = {.method = "GET", .blob = NULL, .query = query};
    azure_fetch(st, io, &c, lfs_storage_http_list_on_done,
                lfs_storage_http_list_new(io, &op, lfs_azure_parse_listing, cb, arg));
}

/* ---- put: hash, then Put Blob (or Put Block... + Put Block List) ---- */

/* One upload in progress, owned by the request pool. */
struct azure_put {
    struct lfs_io io;
    struct lfs_storage_azure *st;
    h2o_iovec_t body;
    const char *blob;
    size_t nblocks, next_block; /* staged upload of a large body */
    bool checked;               /* looked for a concurrent upload's blob after a refusal */
    char tag[9];                /* per-upload part of the block ids */
    lfs_storage_done_cb cb;
    void *arg;
};

static void put_finish(struct azure_put *put, const struct lfs_error *err)
{
    put->cb(put->arg, err);
}

/* Block id i of a staged upload: base64 of "lg<8 hex tag><6 digits>", 16 characters. */
static void put_block_id(const struct azure_put *put, size_t i, char *out)
{
    char raw[AZURE_BLOCK_ID_RAW + 1];
    snprintf(raw, sizeof(raw), "lg%s%06zu", put->tag, i % 1000000);
    lfs_azure_base64_encode((const unsigned char *)raw, AZURE_BLOCK_ID_RAW, out);
}

static void put_next_block(struct azure_put *put);

static void on_put_check(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct azure_put *put = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        put_finish(put, err);
    } else if (res->status == 200 && res->content_length == (int64_t)put->body.len) {
        put_finish(put, NULL);
    } else {
        lfs_error_set(&e, 502, AZURE_STORE " refused the block list of \"%s\"", put->blob);
        put_finish(put, &e);
    }
}

static void on_put_done(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct azure_put *put = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        put_finish(put, err);
    } else if (res->status == 400 && put->nblocks != 0 && put->next_block > put->nblocks &&
               !put->checked) {
        /* Another upload of the same object committed first, which discards the blocks
         * staged by everyone else: fine if its blob is there (its data is verified too). */
        put->checked = true;
        struct azure_call c = {.method = "HEAD", .blob = put->blob};
        azure_fetch(put->st, &put->io, &c, on_put_check, put);
    } else if (res->status != 201 && res->status != 200) {
        status_error(put->st, &e, res,
                     put->nblocks == 0                 ? "Put Blob"
                     : put->next_block <= put->nblocks ? "Put Block"
                                                       : "Put Block List",
                     put->blob);
        put_finish(put, &e);
    } else if (put->nblocks != 0 && put->next_block <= put->nblocks) {
        put_next_block(put);
    } else {
        put_finish(put, NULL);
    }
}

/* Stages the next block, or commits them all once staged. */
static void put_next_block(struct azure_put *put)
{
    char id[AZURE_BLOCK_ID_LEN + 1], query[128];
    if (put->next_block < put->nblocks) {
        size_t i = put->next_block++;
        size_t off = i * (size_t)AZURE_BLOCK_SIZE;
        size_t len =
            put->body.len - off < AZURE_BLOCK_SIZE ? put->body.len - off : AZURE_BLOCK_SIZE;
        put_block_id(put, i, id);
        char enc[3 * AZURE_BLOCK_ID_LEN + 1];
        lfs_url_encode(id, strlen(id), enc);
        snprintf(query, sizeof(query), "comp=block&blockid=%s", enc);
        struct azure_call c = {.method = "PUT",
                               .blob = put->blob,
                               .query = query,
                               .headers = {"Content-Type: application/octet-stream"},
                               .body = h2o_iovec_init(put->body.base + off, len),
                               .timeout_ms = lfs_storage_upload_timeout_ms(len)};
        azure_fetch(put->st, &put->io, &c, on_put_done, put);
        return;
    }
    put->next_block++;
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t cap = sizeof(head) + sizeof(tail) + put->nblocks * (AZURE_BLOCK_ID_LEN + 20);
    char *xml = h2o_mem_alloc_pool(put->io.pool, cap);
    size_t n = (size_t)snprintf(xml, cap, "%s", head);
    for (size_t i = 0; i < put->nblocks; i++) {
        put_block_id(put, i, id);
        n += (size_t)snprintf(xml + n, cap - n, "<Latest>%s</Latest>", id);
    }
    n += (size_t)snprintf(xml + n, cap - n, "%s", tail);
    struct azure_call c = {.method = "PUT",
                           .blob = put->blob,
                           .query = "comp=blocklist",
                           .headers = {"Content-Type: application/xml",
                                       "x-ms-blob-content-type: application/octet-stream"},
                           .body = h2o_iovec_init(xml, n)};
    azure_fetch(put->st, &put->io, &c, on_put_done, put);
}

/* Called once the body is hashed (storage/remote.h): sends it if its SHA-256 is the oid. */
static void put_send(void *arg, const struct lfs_error *verified)
{
    struct azure_put *put = arg;
    if (verified != NULL) {
        put_finish(put, verified);
        return;
    }
    if (put->body.len > AZURE_PUT_BLOB_MAX) {
        /* A tag of its own per upload: concurrent uploads of the same object stage
         * separate blocks (the data is the same, verified, whichever commits last). */
        unsigned char rnd[4] = {0};
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            struct lfs_error err;
            lfs_error_set(&err, 500, "cannot draw random bytes for block ids");
            put_finish(put, &err);
            return;
        }
        lfs_hex_encode(rnd, sizeof(rnd), put->tag);
        put->nblocks = (put->body.len + AZURE_BLOCK_SIZE - 1) / AZURE_BLOCK_SIZE;
        put->next_block = 0;
        put_next_block(put);
        return;
    }
    struct azure_call c = {
        .method = "PUT",
        .blob = put->blob,
        .headers = {"x-ms-blob-type: BlockBlob", "Content-Type: application/octet-stream"},
        .body = put->body,
        .timeout_ms = lfs_storage_upload_timeout_ms(put->body.len)};
    azure_fetch(put->st, &put->io, &c, on_put_done, put);
}

static void azure_put(struct lfs_storage *storage, struct lfs_io *io,
                      const struct lfs_object_key *key, h2o_iovec_t body, lfs_storage_done_cb cb,
                      void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *blob = blob_name(st, key, io->pool, &err);
    if (blob == NULL) {
        cb(arg, &err);
        return;
    }
    struct azure_put *put = h2o_mem_alloc_pool(io->pool, sizeof(*put));
    *put =
        (struct azure_put){.io = *io, .st = st, .body = body, .blob = blob, .cb = cb, .arg = arg};
    lfs_storage_verify_body(io, body, key->oid, put_send, put);
}

/* ---- open: a ranged GET, streamed (storage/remote.h) ---- */

static void azure_open(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, uint64_t offset, uint64_t length,
                       lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *blob = blob_name(st, key, io->pool, &err);
    if (blob == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    struct lfs_storage_remote_op op = {.store = AZURE_STORE,
                                       .what = "GET",
                                       .object = blob,
                                       .status_error = status_error,
                                       .ctx = st};
    struct lfs_storage_http_stream *s =
        lfs_storage_http_stream_new(io, &op, offset, length, cb, arg);
    if (s == NULL)
        return;
    char range[96];
    snprintf(range, sizeof(range), "x-ms-range: %s", lfs_storage_http_stream_range(s));
    struct azure_call c = {.method = "GET",
                           .blob = blob,
                           .headers = {range},
                           .timeout_ms = lfs_storage_http_stream_timeout_ms(s),
                           .on_data = lfs_storage_http_stream_on_data};
    lfs_storage_http_stream_started(s, azure_fetch(st, io, &c, lfs_storage_http_stream_on_done, s));
}

/* ---- sign: service SAS URLs for the clients ---- */

/* "<blob url>?<SAS>" in the pool, for `permissions`, valid from now - skew to now + lifetime. */
static const char *sas_url(struct lfs_storage_azure *st, const char *blob, const char *permissions,
                           time_t now, long lifetime, const char *disposition, h2o_mem_pool_t *pool,
                           struct lfs_error *err)
{
    char start[24], expiry[24];
    struct lfs_azure_sas sas = {
        .permissions = permissions,
        .start = lfs_azure_iso8601(now - AZURE_CLOCK_SKEW, start),
        .expiry = lfs_azure_iso8601(now + lifetime, expiry),
        .protocol = st->https ? "https" : NULL,
        .version = LFS_AZURE_VERSION,
        .content_disposition = disposition,
    };
    const char *url;
    blob_url(st, blob, pool, &url, NULL);
    size_t ulen = strlen(url);
    size_t size = ulen + 512 + 3 * (disposition != NULL ? strlen(disposition) : 0);
    char *href = h2o_mem_alloc_pool(pool, size);
    memcpy(href, url, ulen);
    href[ulen] = '?';
    if (lfs_azure_sas_query(&st->account, st->container, blob, &sas, href + ulen + 1,
                            size - ulen - 1, err) < 0)
        return NULL;
    return href;
}

/* The headers of a client request that creates the blob: name: value, then
 * x-ms-blob-content-type with content_type, or else the type filename's extension implies
 * (none when it implies none). NULL-terminated pairs in the pool. */
static const char *const *header_and_type(const char *name, const char *value,
                                          const char *content_type, const char *filename,
                                          h2o_mem_pool_t *pool)
{
    const char *type = content_type != NULL ? content_type : lfs_azure_content_type_for(filename);
    const char **header = h2o_mem_alloc_pool(pool, 5 * sizeof(*header));
    header[0] = name;
    header[1] = value;
    header[2] = type != NULL ? "x-ms-blob-content-type" : NULL;
    header[3] = type;
    header[4] = NULL;
    return header;
}

static int sign_url(struct lfs_storage *storage, const struct lfs_object_key *key,
                    const struct lfs_sign_request *request, h2o_mem_pool_t *pool,
                    struct lfs_storage_request *out, struct lfs_error *err)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    const char *blob = blob_name(st, key, pool, err);
    if (blob == NULL)
        return -1;
    *out = (struct lfs_storage_request){0};
    if (request->op == LFS_SIGN_DOWNLOAD) {
        const char *rscd = lfs_content_disposition(request->filename, request->disposition,
                                                   LFS_DISPOSITION_MINIMAL, pool);
        out->href = sas_url(st, blob, "r", request->now, request->lifetime, rscd, pool, err);
        return out->href != NULL ? 0 : -1;
    }
    /* Upload: create or overwrite this one blob (Put Blob), nothing else. */
    out->href = sas_url(st, blob, "cw", request->now, request->lifetime, NULL, pool, err);
    if (out->href == NULL)
        return -1;
    out->header = header_and_type("x-ms-blob-type", "BlockBlob", request->content_type,
                                  request->filename, pool);
    return 0;
}

/* The sign operation: a SAS is CPU work, so cb is called before this returns. */
static void azure_sign(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, const struct lfs_sign_request *request,
                       lfs_storage_sign_cb cb, void *arg)
{
    struct lfs_storage_request out;
    struct lfs_error err = {0};
    int rc = sign_url(storage, key, request, io->pool, &out, &err);
    lfs_storage_sign_now(rc, &out, &err, cb, arg);
}

/* ---- multipart: Put Block parts, Put Block List commit, Delete Blob abort ---- */

/* Block id of part i: base64 of i in 16 zero-padded digits (giftless's ids, so uploads it
 * started can be resumed here and the other way round). */
static void part_block_id(size_t i, char *out)
{
    char raw[AZURE_BLOCK_ID_RAW + 1];
    snprintf(raw, sizeof(raw), "%016llu", (unsigned long long)i % 10000000000000000ull);
    lfs_azure_base64_encode((const unsigned char *)raw, AZURE_BLOCK_ID_RAW, out);
}

struct azure_plan {
    struct lfs_storage_azure *st;
    struct lfs_io io;
    const char *blob;
    struct lfs_multipart_request request;
    lfs_storage_multipart_cb cb;
    void *arg;
};

/* Declared in azure_sign.h, beside the other answer parser, for the fuzz target. */
int64_t lfs_azure_block_list_size(const char *xml_text, size_t xml_len, const char *id)
{
    h2o_iovec_t xml = h2o_iovec_init(xml_text, xml_len);
    char needle[AZURE_BLOCK_ID_LEN + 16];
    int n = snprintf(needle, sizeof(needle), "<Name>%s</Name>", id);
    if (n < 0 || (size_t)n >= sizeof(needle))
        return -1; /* not one of our ids: the needle would be cut short */
    size_t at = h2o_strstr(xml.base, xml.len, needle, (size_t)n);
    if (at == SIZE_MAX)
        return -1;
    const char *p = xml.base + at + (size_t)n, *end = xml.base + xml.len;
    size_t sz = h2o_strstr(p, (size_t)(end - p), H2O_STRLIT("<Size>"));
    if (sz == SIZE_MAX)
        return -1;
    p += sz + 6;
    /* The <Size> must belong to this <Block>: no other <Name> in between. */
    size_t next = h2o_strstr(xml.base + at + (size_t)n, (size_t)(end - (xml.base + at + (size_t)n)),
                             H2O_STRLIT("<Name>"));
    if (next != SIZE_MAX && xml.base + at + (size_t)n + next < p)
        return -1;
    int64_t v = 0;
    bool digits = false;
    while (p < end && *p >= '0' && *p <= '9' && v < INT64_MAX / 10) {
        v = v * 10 + (*p++ - '0');
        digits = true;
    }
    return digits ? v : -1;
}

static void plan_build(struct azure_plan *p, h2o_iovec_t listing)
{
    struct lfs_storage_azure *st = p->st;
    h2o_mem_pool_t *pool = p->io.pool;
    const struct lfs_multipart_request *rq = &p->request;
    struct lfs_error err = {0};
    uint64_t size = (uint64_t)rq->size;
    /* Within the service's limits: at most 50,000 blocks of at most 4000 MiB. */
    uint64_t part = rq->part_size > 0 ? rq->part_size : 10240000;
    if (part > AZURE_MAX_BLOCK_SIZE)
        part = AZURE_MAX_BLOCK_SIZE;
    if (size / part >= AZURE_MAX_BLOCKS)
        part = (size + AZURE_MAX_BLOCKS - 1) / AZURE_MAX_BLOCKS;
    if (part > AZURE_MAX_BLOCK_SIZE) {
        lfs_error_set(&err, 422, "object of %" PRIu64 " bytes is too large for one blob", size);
        p->cb(p->arg, NULL, &err);
        return;
    }
    size_t total = (size_t)((size + part - 1) / part);
    struct lfs_multipart_plan *plan = h2o_mem_alloc_pool(pool, sizeof(*plan));
    memset(plan, 0, sizeof(*plan));
    plan->total = total;
    plan->parts = h2o_mem_alloc_pool(pool, (total > 0 ? total : 1) * sizeof(*plan->parts));
    /* Parts and commit: write only, to this blob. Abort: delete only. */
    const char *write_url = sas_url(st, p->blob, "cw", rq->now, rq->lifetime, NULL, pool, &err);
    const char *delete_url =
        write_url != NULL ? sas_url(st, p->blob, "d", rq->now, rq->lifetime, NULL, pool, &err)
                          : NULL;
    if (delete_url == NULL) {
        p->cb(p->arg, NULL, &err);
        return;
    }
    size_t wlen = strlen(write_url);
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t xcap = sizeof(head) + sizeof(tail) + total * (AZURE_BLOCK_ID_LEN + 20);
    char *xml = h2o_mem_alloc_pool(pool, xcap);
    size_t xn = (size_t)snprintf(xml, xcap, "%s", head);
    for (size_t i = 0; i < total; i++) {
        char id[AZURE_BLOCK_ID_LEN + 1], enc[3 * AZURE_BLOCK_ID_LEN + 1];
        part_block_id(i, id);
        xn += (size_t)snprintf(xml + xn, xcap - xn, "<Latest>%s</Latest>", id);
        uint64_t pos = (uint64_t)i * part;
        uint64_t psize = size - pos < part ? size - pos : part;
        if (listing.len > 0 &&
            lfs_azure_block_list_size(listing.base, listing.len, id) == (int64_t)psize)
            continue; /* already staged by an earlier attempt */
        lfs_url_encode(id, strlen(id), enc);
        size_t hlen = wlen + 32 + strlen(enc);
        char *href = h2o_mem_alloc_pool(pool, hlen);
        snprintf(href, hlen, "%s&comp=block&blockid=%s", write_url, enc);
        struct lfs_multipart_part *mp = &plan->parts[plan->nparts++];
        *mp = (struct lfs_multipart_part){
            .pos = pos,
            .size = psize,
            .request = {.href = href},
            .want_digest = st->content_digest ? "contentMD5" : NULL,
        };
    }
    xn += (size_t)snprintf(xml + xn, xcap - xn, "%s", tail);
    size_t clen = wlen + 32;
    char *commit = h2o_mem_alloc_pool(pool, clen);
    snprintf(commit, clen, "%s&comp=blocklist", write_url);
    const char *const *header = header_and_type("Content-Type", "application/xml; charset=utf-8",
                                                rq->content_type, rq->filename, pool);
    plan->commit = (struct lfs_storage_request){
        .method = "PUT", .href = commit, .header = header, .body = xml};
    plan->abort = (struct lfs_storage_request){.method = "DELETE", .href = delete_url};
    p->cb(p->arg, plan, NULL);
}

static void on_block_list(void *arg, const struct lfs_http_response *res,
                          const struct lfs_error *err)
{
    struct azure_plan *p = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        p->cb(p->arg, NULL, err);
    } else if (res->status == 200) {
        plan_build(p, res->body);
    } else if (res->status == 404) {
        char code[64];
        lfs_storage_xml_error_code(res->body, code, sizeof(code));
        if (strcmp(code, "ContainerNotFound") == 0) {
            status_error(p->st, &e, res, "Get Block List", p->blob);
            p->cb(p->arg, NULL, &e);
            return;
        }
        plan_build(p, h2o_iovec_init("", 0)); /* no blob and no staged blocks yet */
    } else {
        status_error(p->st, &e, res, "Get Block List", p->blob);
        p->cb(p->arg, NULL, &e);
    }
}

static void azure_multipart_plan(struct lfs_storage *storage, struct lfs_io *io,
                                 const struct lfs_object_key *key,
                                 const struct lfs_multipart_request *request,
                                 lfs_storage_multipart_cb cb, void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *blob = blob_name(st, key, io->pool, &err);
    if (blob == NULL || request->size < 0) {
        if (blob != NULL)
            lfs_error_set(&err, 422, "invalid object size");
        cb(arg, NULL, &err);
        return;
    }
    struct azure_plan *p = h2o_mem_alloc_pool(io->pool, sizeof(*p));
    *p = (struct azure_plan){
        .st = st, .io = *io, .blob = blob, .request = *request, .cb = cb, .arg = arg};
    if (request->filename != NULL)
        p->request.filename = h2o_strdup(io->pool, request->filename, SIZE_MAX).base;
    if (request->content_type != NULL)
        p->request.content_type = h2o_strdup(io->pool, request->content_type, SIZE_MAX).base;
    if (request->size == 0) {
        plan_build(p, h2o_iovec_init("", 0));
        return;
    }
    struct azure_call c = {
        .method = "GET", .blob = blob, .query = "comp=blocklist&blocklisttype=uncommitted"};
    azure_fetch(st, io, &c, on_block_list, p);
}

/* ---- locks: one small block blob per lock (storage.h) ----
 * Create is Put Blob with If-None-Match: * (409 BlobAlreadyExists when the name is taken), so
 * the service picks the one winner among replicas; delete is Delete Blob with If-Match: the
 * ETag read, so a lock replaced since is left alone. The content also goes into the blob's
 * metadata ("lock", base64), so that one List Blobs with include=metadata returns every lock
 * of a repository (up to 1,000 per request) without a read per lock. */

#define AZURE_LOCK_PAGE 1000
/* Bytes of one listing page collected at most: 1,000 locks with the largest content (base64 in
 * the metadata) and their XML. The HTTP client's own collection stops at 1 MiB, which a page
 * of ordinary locks already nearly fills. */
#define AZURE_LOCK_PAGE_BYTES (8u << 20)

/* Starts a lock call (struct lfs_storage_lock_store.send). */
static void azure_lock_send(void *ctx, struct lfs_io *io, enum lfs_storage_lock_verb verb,
                            const char *object, const char *version, h2o_iovec_t body,
                            lfs_http_cb cb, void *arg)
{
    struct azure_call c = {.blob = object};
    if (verb == LFS_STORAGE_LOCK_CREATE) {
        size_t mlen = 16 + 4 * ((body.len + 2) / 3) + 1;
        char *meta = h2o_mem_alloc_pool(io->pool, mlen);
        memcpy(meta, "x-ms-meta-lock: ", 16);
        lfs_azure_base64_encode((const unsigned char *)body.base, body.len, meta + 16);
        c = (struct azure_call){.method = "PUT",
                                .blob = object,
                                .headers = {"x-ms-blob-type: BlockBlob",
                                            "Content-Type: application/json", "If-None-Match: *",
                                            meta},
                                .body = body};
    } else if (verb == LFS_STORAGE_LOCK_READ) {
        c.method = "GET";
    } else {
        c.method = "DELETE";
        c.headers[0] = lfs_storage_header_line(io->pool, "If-Match", version);
    }
    azure_fetch(ctx, io, &c, cb, arg);
}

static const char *azure_lock_version(const struct lfs_http_response *res)
{
    return res->etag;
}

/* Put Blob answers 409 BlobAlreadyExists to a taken name, and 412 when it raced a delete. */
static const char *azure_lock_prefix(const struct lfs_storage *storage)
{
    return ((const struct lfs_storage_azure *)storage)->prefix;
}

static const struct lfs_storage_lock_store azure_locks = {
    .store = AZURE_STORE,
    .version_name = "an ETag",
    .what = {"Put Blob (lock)", "GET (lock)", "Delete Blob (lock)"},
    .taken = {409, 412},
    .status_error = status_error,
    .send = azure_lock_send,
    .version_of = azure_lock_version,
    .prefix = azure_lock_prefix,
    .version_valid = lfs_storage_lock_etag_valid,
};

/* A listing in progress: List Blobs pages with the locks' content in their metadata. */
struct azure_lock {
    struct lfs_storage_azure *st;
    struct lfs_io io;
    const char *blob; /* the locks' prefix */
    lfs_storage_lock_list_cb list;
    void *arg;
    const char *after;
    size_t limit;
    struct lfs_lock_page page;
    struct lfs_lock_record *recs;
    char *xml; /* the page being received, in the pool */
    size_t xml_len, xml_cap;
};

static void lock_list_page(struct azure_lock *l, const char *marker);

/* Collects a listing page (an on_data callback): -1 aborts a page larger than a listing. */
static int collect_listing(void *arg, long status, const char *data, size_t len)
{
    struct azure_lock *l = arg;
    (void)status;
    if (len > AZURE_LOCK_PAGE_BYTES - l->xml_len)
        return -1;
    if (l->xml_len + len > l->xml_cap) {
        size_t cap = l->xml_cap ? 2 * l->xml_cap : 256 * 1024;
        while (cap < l->xml_len + len)
            cap *= 2;
        char *grown = h2o_mem_alloc_pool(l->io.pool, cap);
        if (l->xml_len > 0)
            memcpy(grown, l->xml, l->xml_len);
        l->xml = grown, l->xml_cap = cap;
    }
    memcpy(l->xml + l->xml_len, data, len);
    l->xml_len += len;
    return 0;
}

static void on_lock_list(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct azure_lock *l = arg;
    struct lfs_error e = {0};
    struct lfs_lock_record *recs;
    size_t n;
    const char *marker;
    struct lfs_http_response page = *res;
    page.body = h2o_iovec_init(l->xml != NULL ? l->xml : "", l->xml_len);
    struct lfs_storage_remote_op op = {.store = AZURE_STORE,
                                       .what = "List Blobs (locks)",
                                       .object = l->blob,
                                       .status_error = status_error,
                                       .ctx = l->st};
    if (lfs_storage_lock_outcome(&op, &page, err, 0, 0, &e) < 0) {
        l->list(l->arg, NULL, &e);
        return;
    }
    if (lfs_azure_parse_lock_listing(page.body.base, page.body.len, l->blob, l->io.pool, &recs, &n,
                                     &marker) < 0) {
        lfs_error_set(&e, 502, AZURE_STORE " answered List Blobs of \"%s\" with no valid listing",
                      l->blob);
        l->list(l->arg, NULL, &e);
        return;
    }
    /* The listing starts at the beginning (an Azure marker is opaque, the cursor is a name):
     * names up to `after` are skipped, at most AZURE_LOCK_PAGE of them per request. */
    size_t i = 0;
    while (i < n && l->after != NULL && strcmp(recs[i].name, l->after) <= 0)
        i++;
    for (; i < n && l->page.n < l->limit; i++)
        l->recs[l->page.n++] = recs[i];
    bool more = i < n || marker[0] != '\0';
    if (l->page.n < l->limit && marker[0] != '\0') {
        lock_list_page(l, marker);
        return;
    }
    l->page.records = l->recs;
    l->page.next = more && l->page.n > 0 ? l->recs[l->page.n - 1].name : NULL;
    l->list(l->arg, &l->page, NULL);
}

static void lock_list_page(struct azure_lock *l, const char *marker)
{
    size_t qn = 3 * strlen(l->blob) + 3 * strlen(marker) + 128;
    char *query = h2o_mem_alloc_pool(l->io.pool, qn);
    int qlen = snprintf(
        query, qn,
        "restype=container&comp=list&include=metadata&maxresults=%d&prefix=", AZURE_LOCK_PAGE);
    qlen += (int)lfs_url_encode(l->blob, strlen(l->blob), query + qlen);
    if (marker[0] != '\0') {
        qlen += snprintf(query + qlen, qn - (size_t)qlen, "&marker=");
        lfs_url_encode(marker, strlen(marker), query + qlen);
    }
    l->xml_len = 0;
    struct azure_call c = {
        .method = "GET", .blob = NULL, .query = query, .on_data = collect_listing};
    azure_fetch(l->st, &l->io, &c, on_lock_list, l);
}

static void azure_lock_list(struct lfs_storage *storage, struct lfs_io *io,
                            const struct lfs_lock_key *key, size_t limit,
                            lfs_storage_lock_list_cb cb, void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_error err = {0};
    const char *blob = lfs_storage_lock_list_prefix(st->prefix, key, io->pool, &err);
    if (blob == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    struct azure_lock *l = h2o_mem_alloc_pool(io->pool, sizeof(*l));
    *l = (struct azure_lock){.st = st, .io = *io, .blob = blob, .list = cb, .arg = arg};
    l->after = key->name != NULL ? h2o_strdup(io->pool, key->name, SIZE_MAX).base : NULL;
    l->limit = limit > 0 ? limit : 1;
    l->recs = h2o_mem_alloc_pool(io->pool, l->limit * sizeof(*l->recs));
    lock_list_page(l, "");
}

/* ---- scan and quarantine (lfsgate scrub; storage/remote.h) ---- */

#define SCAN_PAGE 1000

/* List Blobs, a page at a time: the cursor's marker is the service's continuation marker. */
static int azure_scan_open(struct lfs_storage *storage, const char *org_path, const char *repo,
                           struct lfs_storage_scan **out, struct lfs_error *err)
{
    return lfs_storage_scan_cursor_open(storage, ((struct lfs_storage_azure *)storage)->prefix,
                                        org_path, repo, out, err);
}

struct azure_scan_call {
    struct lfs_storage_scan_cursor *c;
    h2o_mem_pool_t *pool;
    lfs_storage_scan_cb cb;
    void *arg;
};

static void on_scan_list(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct azure_scan_call *call = arg;
    struct lfs_storage_scan_cursor *c = call->c;
    struct lfs_error e = {0};
    struct lfs_azure_blob_page blobs;
    if (err != NULL) {
        call->cb(call->arg, NULL, err);
        return;
    }
    if (res->status != 200) {
        status_error(c->storage, &e, res, "List Blobs", c->prefix);
        call->cb(call->arg, NULL, &e);
        return;
    }
    char *marker = NULL;
    if (lfs_azure_parse_blobs(res->body.base, res->body.len, c->prefix, call->pool, &blobs) < 0 ||
        (blobs.next_marker != NULL && (marker = strdup(blobs.next_marker)) == NULL)) {
        lfs_error_set(&e, 502, AZURE_STORE " answered List Blobs of \"%s\" with no valid listing",
                      c->prefix);
        call->cb(call->arg, NULL, &e);
        return;
    }
    struct lfs_storage_scan_entry *entries =
        h2o_mem_alloc_pool(call->pool, (blobs.n + 1) * sizeof(*entries));
    struct lfs_storage_scan_page *page = h2o_mem_alloc_pool(call->pool, sizeof(*page));
    *page = (struct lfs_storage_scan_page){.entries = entries};
    for (size_t i = 0; i < blobs.n; i++)
        page->n += lfs_storage_scan_entry(c, blobs.blobs[i].name, blobs.blobs[i].size, call->pool,
                                          &entries[page->n]);
    free(c->marker);
    c->marker = marker;
    page->done = c->done = marker == NULL;
    call->cb(call->arg, page, NULL);
}

static void azure_scan_next(struct lfs_storage_scan *scan, struct lfs_io *io,
                            lfs_storage_scan_cb cb, void *arg)
{
    struct lfs_storage_scan_cursor *sc = (struct lfs_storage_scan_cursor *)scan;
    if (lfs_storage_scan_end(sc, cb, arg))
        return;
    struct azure_scan_call *c = h2o_mem_alloc_pool(io->pool, sizeof(*c));
    *c = (struct azure_scan_call){.c = sc, .pool = io->pool, .cb = cb, .arg = arg};
    size_t plen = strlen(sc->prefix), mlen = sc->marker ? strlen(sc->marker) : 0;
    size_t qn = 3 * (plen + mlen) + 128;
    char *query = h2o_mem_alloc_pool(io->pool, qn);
    size_t q =
        (size_t)snprintf(query, qn, "restype=container&comp=list&maxresults=%d&prefix=", SCAN_PAGE);
    q += lfs_url_encode(sc->prefix, plen, query + q);
    if (sc->marker != NULL) {
        memcpy(query + q, "&marker=", 8);
        q += 8;
        q += lfs_url_encode(sc->marker, mlen, query + q);
    }
    query[q] = '\0';
    struct azure_call call = {.method = "GET", .blob = NULL, .query = query};
    azure_fetch((struct lfs_storage_azure *)sc->storage, io, &call, on_scan_list, c);
}

/* Quarantine: Copy Blob to the quarantine name (within one account the service copies before
 * it answers), then Delete Blob of the original. */
static void quarantine_delete(struct lfs_storage_quarantine *q)
{
    struct azure_call c = {.method = "DELETE", .blob = q->object};
    azure_fetch((struct lfs_storage_azure *)q->storage, &q->io, &c, lfs_storage_http_done_on_done,
                lfs_storage_quarantine_delete_done(q));
}

static void azure_quarantine(struct lfs_storage *storage, struct lfs_io *io,
                             const struct lfs_object_key *key, lfs_storage_done_cb cb, void *arg)
{
    struct lfs_storage_azure *st = (struct lfs_storage_azure *)storage;
    struct lfs_storage_remote_op op = {
        .store = AZURE_STORE, .status_error = status_error, .ctx = st};
    struct lfs_storage_quarantine *q =
        lfs_storage_quarantine_new(io, storage, st->prefix, key, &op, quarantine_delete, cb, arg);
    if (q == NULL)
        return;
    const char *source;
    blob_url(st, q->object, io->pool, &source, NULL);
    size_t hn = strlen(source) + 32;
    char *header = h2o_mem_alloc_pool(io->pool, hn);
    snprintf(header, hn, "x-ms-copy-source: %s", source);
    struct azure_call c = {.method = "PUT", .blob = q->aside, .headers = {header}};
    azure_fetch(st, io, &c, lfs_storage_quarantine_on_copied, q);
}

const struct lfs_storage_ops lfs_storage_azure_ops = {
    .name = "azure",
    .classes = (const char *const[]){"giftless.storage.azure:AzureBlobsStorage", NULL},
    .caps = LFS_STORAGE_STREAMING | LFS_STORAGE_SIGNED_URLS | LFS_STORAGE_MULTIPART,
    .create = azure_create,
    .destroy = azure_destroy,
    .stat = azure_stat,
    .put = azure_put,
    .open = azure_open,
    .sign = azure_sign,
    .multipart_plan = azure_multipart_plan,
    .list = azure_list,
    .lock_create = lfs_storage_remote_lock_create,
    .lock_read = lfs_storage_remote_lock_read,
    .lock_delete = lfs_storage_remote_lock_delete,
    .lock_list = azure_lock_list,
    .scan_open = azure_scan_open,
    .scan_next = azure_scan_next,
    .scan_close = lfs_storage_scan_cursor_close,
    .quarantine = azure_quarantine,
    .lock_store = &azure_locks,
};
