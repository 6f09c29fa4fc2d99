/* The objects/storage endpoints served for adapters that stream objects through this
 * server: PUT (upload, verified against the oid before it becomes visible), GET (download,
 * with single ranges, sent in chunks as the client reads) and POST verify. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/util.h"
#include "server/logs.h"
#include "server/batch.h"
#include "common/json_write.h"
#include "server/http.h"

#define DOWNLOAD_CHUNK (64 * 1024)

static struct lfs_object_key route_key(struct lfs_request *r, const char *oid)
{
    return (struct lfs_object_key){
        .org_path = r->route.org_path, .repo = r->route.repo, .oid = oid};
}

static struct lfs_io request_io(struct lfs_request *r)
{
    return (struct lfs_io){.ctx = r->req->conn->ctx, .pool = &r->req->pool};
}

/* ---- upload ---- */

/* One upload: taken whole from h2o (req->entity), or read as it arrives (a body the receive
 * guard kept back, server/guard.c) into a storage writer. */
struct upload {
    struct lfs_request *r;
    int64_t size;
    struct lfs_storage_writer *writer;
    struct lfs_error err; /* a failed write: answered once the body has been read */
    bool failed;
};

static void on_put_done(void *arg, const struct lfs_error *err)
{
    struct upload *up = arg;
    struct lfs_request *r = up->r;
    if (err != NULL) {
        lfs_log_activity(r, "store", r->route.oid, up->size, "refused", err->message);
        lfs_http_send_lfs_error(r, err);
        return;
    }
    lfs_metrics_bytes((uint64_t)up->size, 0);
    lfs_log_activity(r, "store", r->route.oid, up->size, "stored", NULL);
    static char empty[] = "{}";
    lfs_http_send_json_text(r, 200, empty, sizeof(empty) - 1);
}

static int on_body_piece(void *arg, const char *p, size_t n)
{
    struct upload *up = arg;
    if (up->writer->ops->write(up->writer, p, n, &up->err) == 0)
        return 0;
    up->failed = true;
    return -1;
}

static void on_body_end(void *arg, bool complete)
{
    struct upload *up = arg;
    if (!complete) {
        lfs_log_activity(up->r, "store", up->r->route.oid, up->size, "interrupted",
                         "the client closed the connection before the end of the body");
        return;
    }
    if (up->failed) {
        on_put_done(up, &up->err);
        return;
    }
    up->writer->ops->commit(up->writer, on_put_done, up);
}

static void handle_upload(struct lfs_request *r, struct lfs_storage *storage)
{
    if (lfs_http_authorize(r, LFS_PERM_WRITE, r->route.oid) < 0)
        return;
    struct lfs_object_key key = route_key(r, r->route.oid);
    struct lfs_io io = request_io(r);
    struct upload *up = h2o_mem_alloc_pool(&r->req->pool, sizeof(*up));
    *up = (struct upload){.r = r, .size = (int64_t)r->req->entity.len};
    long long direct = lfs_guard_direct_length(r->req);
    if (direct >= 0) {
        up->size = direct;
        if (storage->ops->put_open == NULL) { /* the configuration was reloaded meanwhile */
            lfs_http_send_error(r, 503, "the server's configuration changed; retry the upload");
            return;
        }
        if (storage->ops->put_open(storage, &io, &key, direct, &up->writer, &up->err) < 0) {
            on_put_done(up, &up->err);
            return;
        }
        lfs_guard_direct_read(r->req, on_body_piece, on_body_end, up);
        return;
    }
    h2o_iovec_t body = r->req->entity;
    if (body.base == NULL)
        body = h2o_iovec_init("", 0);
    storage->ops->put(storage, &io, &key, body, on_put_done, up);
}

/* ---- download ---- */

struct download {
    h2o_generator_t super;
    struct lfs_request *r;
    struct lfs_storage_stream *stream;
    uint64_t remaining;
    char *buf;
};

static void download_on_read(void *arg, ssize_t n, const struct lfs_error *err)
{
    struct download *d = arg;
    if (n <= 0) {
        /* Headers are gone already: all we can do is cut the response short. */
        h2o_send(d->r->req, NULL, 0, H2O_SEND_STATE_ERROR);
        (void)err;
        return;
    }
    d->remaining -= (uint64_t)n;
    lfs_metrics_bytes(0, (uint64_t)n);
    h2o_iovec_t vec = h2o_iovec_init(d->buf, (size_t)n);
    h2o_send(d->r->req, &vec, 1,
             d->remaining == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void download_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    struct download *d = (struct download *)self;
    size_t cap = d->remaining < DOWNLOAD_CHUNK ? (size_t)d->remaining : DOWNLOAD_CHUNK;
    d->stream->ops->read(d->stream, d->buf, cap, download_on_read, d);
}

static void download_stop(h2o_generator_t *self, h2o_req_t *req)
{
    /* The stream is released with the request pool. */
    (void)self, (void)req;
}

/* Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against size. Returns 1 with [start,end] for
 * a satisfiable single range, 0 to ignore the header (absent, malformed or several ranges:
 * RFC 9110 allows serving the whole object), -1 when unsatisfiable. */
int lfs_http_parse_range(h2o_iovec_t v, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (v.base == NULL || v.len < 7 || memcmp(v.base, "bytes=", 6) != 0 ||
        memchr(v.base, ',', v.len) != NULL || v.len > 64)
        return 0;
    char spec[65];
    memcpy(spec, v.base + 6, v.len - 6);
    spec[v.len - 6] = '\0';
    char *dash = strchr(spec, '-');
    if (dash == NULL)
        return 0;
    *dash = '\0';
    const char *a = spec, *b = dash + 1;
    char *e;
    if (*a == '\0') { /* suffix: the last n bytes */
        if (*b < '0' || *b > '9')
            return 0;
        uint64_t n = strtoull(b, &e, 10);
        if (*e != '\0')
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *start = n >= size ? 0 : size - n;
        *end = size - 1;
        return 1;
    }
    if (*a < '0' || *a > '9')
        return 0;
    *start = strtoull(a, &e, 10);
    if (*e != '\0')
        return 0;
    if (*b == '\0') {
        *end = size - 1;
    } else {
        if (*b < '0' || *b > '9')
            return 0;
        *end = strtoull(b, &e, 10);
        if (*e != '\0' || *end < *start)
            return 0;
        if (*end >= size)
            *end = size - 1;
    }
    return *start < size ? 1 : -1;
}

/* Content-Disposition from the filename/disposition query (common/util.h). */
static void add_disposition(struct lfs_request *r)
{
    h2o_mem_pool_t *pool = &r->req->pool;
    const char *value =
        lfs_content_disposition(lfs_http_query_param(r, "filename"),
                                lfs_http_query_param(r, "disposition"), LFS_DISPOSITION_FULL, pool);
    if (value != NULL)
        h2o_add_header(pool, &r->req->res.headers, H2O_TOKEN_CONTENT_DISPOSITION, NULL, value,
                       strlen(value));
}

struct download_start {
    struct lfs_request *r;
    struct lfs_storage *storage;
    uint64_t start, length, size;
    int status;
};

static void on_download_open(void *arg, struct lfs_storage_stream *stream,
                             const struct lfs_error *err)
{
    struct download_start *ds = arg;
    struct lfs_request *r = ds->r;
    h2o_req_t *req = r->req;
    if (err != NULL) {
        lfs_http_send_lfs_error(r, err);
        return;
    }
    /* The bytes leave through this server: the download itself is the record auditors want
     * (a batch only offered it). A range says which part. */
    lfs_log_activity(r, "download", r->route.oid, (int64_t)ds->length,
                     ds->status == 206 ? "served part" : "served", NULL);
    req->res.status = ds->status;
    req->res.reason = ds->status == 206 ? "Partial Content" : "OK";
    req->res.content_length = ds->length;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/octet-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL,
                   H2O_STRLIT("bytes"));
    char *etag = h2o_mem_alloc_pool(&req->pool, LFS_OID_LEN + 3);
    snprintf(etag, LFS_OID_LEN + 3, "\"%s\"", r->route.oid);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, LFS_OID_LEN + 2);
    if (ds->status == 206) {
        char *cr = h2o_mem_alloc_pool(&req->pool, 80);
        int n = snprintf(cr, 80, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, ds->start,
                         ds->start + ds->length - 1, ds->size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, (size_t)n);
    }
    add_disposition(r);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          r->request_id, strlen(r->request_id));
    struct download *d = h2o_mem_alloc_pool(&req->pool, sizeof(*d));
    *d = (struct download){.super = {download_proceed, download_stop},
                           .r = r,
                           .stream = stream,
                           .remaining = ds->length};
    h2o_start_response(req, &d->super);
    if (ds->length == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    d->buf = h2o_mem_alloc_pool(&req->pool, DOWNLOAD_CHUNK);
    download_proceed(&d->super, req);
}

static void on_download_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    struct download_start *ds = arg;
    struct lfs_request *r = ds->r;
    if (err != NULL) {
        lfs_http_send_lfs_error(r, err);
        return;
    }
    if (size < 0) {
        lfs_http_send_error(r, 404, "object %s does not exist in %s/%s", r->route.oid,
                            r->route.org_path, r->route.repo);
        return;
    }
    ds->size = (uint64_t)size;
    ds->start = 0;
    ds->length = ds->size;
    ds->status = 200;
    uint64_t start, end;
    int range =
        lfs_http_parse_range(lfs_http_header(r->req, H2O_TOKEN_RANGE), ds->size, &start, &end);
    if (range < 0) {
        char *cr = h2o_mem_alloc_pool(&r->req->pool, 48);
        int n = snprintf(cr, 48, "bytes */%" PRIu64, ds->size);
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr,
                       (size_t)n);
        lfs_http_send_error(r, 416, "range not satisfiable: the object is %" PRIu64 " bytes",
                            ds->size);
        return;
    }
    if (range > 0) {
        ds->start = start;
        ds->length = end - start + 1;
        ds->status = 206;
    }
    struct lfs_object_key key = route_key(r, r->route.oid);
    struct lfs_io io = request_io(r);
    ds->storage->ops->open(ds->storage, &io, &key, ds->start, ds->length, on_download_open, ds);
}

static void handle_download(struct lfs_request *r, struct lfs_storage *storage)
{
    if (lfs_http_authorize(r, LFS_PERM_READ, r->route.oid) < 0)
        return;
    struct download_start *ds = h2o_mem_alloc_pool(&r->req->pool, sizeof(*ds));
    *ds = (struct download_start){.r = r, .storage = storage};
    struct lfs_object_key key = route_key(r, r->route.oid);
    struct lfs_io io = request_io(r);
    storage->ops->stat(storage, &io, &key, on_download_stat, ds);
}

void lfs_handle_object(struct lfs_request *r)
{
    struct lfs_transfer *t = r->app->objects;
    if ((t->ops->flags & LFS_TRANSFER_SERVES_OBJECTS) == 0) {
        lfs_http_send_error(r, 404,
                            "objects are not served by this server; use the hrefs of "
                            "the batch API");
        return;
    }
    if (h2o_memis(r->req->method.base, r->req->method.len, H2O_STRLIT("PUT")))
        handle_upload(r, t->storage);
    else
        handle_download(r, t->storage);
}

/* ---- verify ---- */

struct verify_state {
    struct lfs_request *r;
    const char *oid;
    int64_t size;
    bool completed;  /* a multipart upload was completed first (storage multipart_complete) */
    char sha256[65]; /* what a corrupt upload hashed to */
};

static void on_verify_stat(void *arg, int64_t size, const struct lfs_error *err);

/* The pending multipart upload of a missing object was completed (or there was none): look
 * again. */
static void on_verify_completed(void *arg, const struct lfs_error *err)
{
    struct verify_state *vs = arg;
    struct lfs_request *r = vs->r;
    if (err != NULL) {
        lfs_log_activity(r, "verify", vs->oid, vs->size, "incomplete", err->message);
        lfs_http_send_lfs_error(r, err);
        return;
    }
    struct lfs_storage *storage = r->app->objects->storage;
    struct lfs_object_key key = route_key(r, vs->oid);
    struct lfs_io io = request_io(r);
    storage->ops->stat(storage, &io, &key, on_verify_stat, vs);
}

static void send_verified(struct verify_state *vs)
{
    lfs_log_activity(vs->r, "verify", vs->oid, vs->size, "verified", NULL);
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "oid");
    lfs_json_cstring(&w, vs->oid);
    lfs_json_key(&w, "size");
    lfs_json_int(&w, vs->size);
    lfs_json_end_object(&w);
    lfs_http_send_writer(vs->r, 200, &w);
}

/* verify_content, after a mismatch: the corrupt object was moved aside (err == NULL), so the
 * client's next batch asks for it again. */
static void on_verify_quarantined(void *arg, const struct lfs_error *err)
{
    struct verify_state *vs = arg;
    lfs_log_activity(vs->r, "verify", vs->oid, vs->size, "corrupt", NULL);
    lfs_http_send_error(vs->r, 422, "object %s was stored with other content (it hashes to %s); %s",
                        vs->oid, vs->sha256,
                        err == NULL ? "it was removed: upload it again"
                                    : "it could not be removed: ask the operator to run "
                                      "`lfsgate scrub --quarantine`");
}

static void on_verify_content(void *arg, const struct lfs_storage_check_result *result,
                              const struct lfs_error *err)
{
    struct verify_state *vs = arg;
    if (err != NULL) {
        lfs_http_send_lfs_error(vs->r, err);
        return;
    }
    if (result->matches) {
        send_verified(vs);
        return;
    }
    memcpy(vs->sha256, result->sha256, sizeof(vs->sha256));
    struct lfs_storage *storage = vs->r->app->objects->storage;
    if (storage->ops->quarantine == NULL) {
        on_verify_quarantined(vs, &(struct lfs_error){.status = 500});
        return;
    }
    struct lfs_object_key key = route_key(vs->r, vs->oid);
    struct lfs_io io = request_io(vs->r);
    storage->ops->quarantine(storage, &io, &key, on_verify_quarantined, vs);
}

/* True when an adapter asks for uploads to be read back (verify_content). */
static bool verify_content(const struct lfs_app *app)
{
    for (size_t i = 0; i < app->transfers.count; i++)
        if (app->transfers.adapters[i]->verify_content)
            return true;
    return false;
}

static void on_verify_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    struct verify_state *vs = arg;
    struct lfs_storage *storage = vs->r->app->objects->storage;
    if (err == NULL && size < 0 && !vs->completed && storage->ops->multipart_complete != NULL &&
        lfs_identity_allows(&vs->r->identity, vs->r->route.org_path, vs->r->route.repo, vs->oid,
                            LFS_PERM_WRITE)) {
        /* A store whose multipart uploads lfsgate completes (S3): the uploader's verify is
         * the commit. Only for one who may write the object. */
        vs->completed = true;
        struct lfs_object_key key = route_key(vs->r, vs->oid);
        struct lfs_io io = request_io(vs->r);
        storage->ops->multipart_complete(storage, &io, &key, vs->size, on_verify_completed, vs);
        return;
    }
    if (err != NULL) {
        lfs_http_send_lfs_error(vs->r, err);
    } else if (size < 0) {
        lfs_log_activity(vs->r, "verify", vs->oid, vs->size, "missing", NULL);
        lfs_http_send_error(vs->r, 404, "object %s does not exist; upload it again", vs->oid);
    } else if (size != vs->size) {
        lfs_log_activity(vs->r, "verify", vs->oid, vs->size, "size mismatch", NULL);
        lfs_http_send_error(vs->r, 422, "object %s is stored with size %" PRId64 ", not %" PRId64,
                            vs->oid, size, vs->size);
    } else if (verify_content(vs->r->app)) {
        struct lfs_storage *storage = vs->r->app->objects->storage;
        struct lfs_object_key key = route_key(vs->r, vs->oid);
        struct lfs_io io = request_io(vs->r);
        lfs_storage_check_content(storage, &io, &key, size, on_verify_content, vs);
    } else {
        send_verified(vs);
    }
}

void lfs_handle_verify(struct lfs_request *r)
{
    h2o_req_t *req = r->req;
    if (!lfs_http_accepts_json(r) || lfs_http_authenticate(r) < 0)
        return;
    if ((long long)req->entity.len > r->app->settings.max_batch_body) {
        lfs_http_send_error(r, 413, "verify request body too large");
        return;
    }
    json_t *body = json_loadb(req->entity.base ? req->entity.base : "", req->entity.len,
                              JSON_REJECT_DUPLICATES, NULL);
    const json_t *oid = json_object_get(body, "oid"), *size = json_object_get(body, "size");
    if (!json_is_string(oid) || !lfs_oid_valid(json_string_value(oid), json_string_length(oid)) ||
        !json_is_integer(size) || json_integer_value(size) < 0) {
        json_decref(body);
        lfs_http_send_error(r, 422,
                            "verify body must be {\"oid\": <64 lowercase hex>, \"size\": "
                            "<integer >= 0>}");
        return;
    }
    struct verify_state *vs = h2o_mem_alloc_pool(&req->pool, sizeof(*vs));
    char *oid_copy = h2o_mem_alloc_pool(&req->pool, LFS_OID_LEN + 1);
    memcpy(oid_copy, json_string_value(oid), LFS_OID_LEN + 1);
    *vs = (struct verify_state){.r = r, .oid = oid_copy, .size = json_integer_value(size)};
    json_decref(body);
    if (!lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, vs->oid,
                             LFS_PERM_READ_META)) {
        lfs_http_send_error(r, 403, "\"%s\" may not verify objects in %s/%s", r->identity.id,
                            r->route.org_path, r->route.repo);
        return;
    }
    struct lfs_storage *storage = r->app->objects->storage;
    struct lfs_object_key key = route_key(r, vs->oid);
    struct lfs_io io = request_io(r);
    storage->ops->stat(storage, &io, &key, on_verify_stat, vs);
}
