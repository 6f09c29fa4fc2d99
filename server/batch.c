/* The batch endpoint: parse and validate the request, check permissions, negotiate the
 * transfer, let the adapter decide each object's actions, render the answer. As the spec
 * says (and unlike giftless), per-object problems are per-object errors in a 200 answer. */
#include "server/batch.h"

#include <stdio.h>
#include <string.h>

#include "common/json_read.h"
#include "common/json_write.h"
#include "common/metrics.h"
#include "common/util.h"
#include "server/logs.h"
#include "server/http.h"

#define OPERATION_MESSAGE "\"operation\" must be \"upload\" or \"download\""

/* Keys a parser reads, as bits: a second occurrence of one is refused (two parsers of the
 * same body, e.g. a proxy's and ours, must not be able to see different values). */
static int seen_key(unsigned *seen, unsigned bit, const char *key, struct lfs_error *err)
{
    if (*seen & bit)
        return lfs_error_set(err, 422, "request body has the key \"%s\" twice in one object", key);
    *seen |= bit;
    return 0;
}

static int syntax_error(struct lfs_json_reader *r, struct lfs_error *err)
{
    return lfs_error_set(err, 422, "request body is not valid JSON: %s", r->error);
}

/* One extra's value: null (absent) or a string of 1 to 255 bytes. Returns 0 with *out (NULL
 * for null), 1 when the value is well-formed JSON of the wrong kind (a per-object error), -1
 * on a syntax error. */
static int read_extra(struct lfs_json_reader *r, const char **out)
{
    size_t len;
    *out = NULL;
    switch (lfs_json_peek(r)) {
    case LFS_JSON_NULL: return lfs_json_read_null(r);
    case LFS_JSON_STRING:
        if (lfs_json_read_string(r, out, &len) < 0)
            return -1;
        if (len == 0 || len > LFS_FILENAME_MAX) {
            *out = NULL;
            return 1;
        }
        return 0;
    default: return lfs_json_skip(r) < 0 ? -1 : 1;
    }
}

enum { OBJ_OID = 1, OBJ_SIZE = 2, OBJ_XFILENAME = 4, OBJ_XDISPOSITION = 8, OBJ_EXTRA = 16 };

/* One element of "objects" (the reader is at it). Invalid fields make a per-object 422;
 * -1 only for what fails the whole batch (syntax, duplicate keys, not an object). */
static int parse_object(struct lfs_json_reader *r, size_t index, struct lfs_batch_object *obj,
                        struct lfs_error *err)
{
    memset(obj, 0, sizeof(*obj));
    obj->oid = "";
    obj->size = -1;
    if (lfs_json_peek(r) != LFS_JSON_OBJECT)
        return lfs_error_set(err, 422, "objects[%zu] must be an object {\"oid\", \"size\"}", index);
    const char *key, *xname = NULL, *xdisp = NULL, *ename = NULL, *edisp = NULL;
    size_t klen, len;
    unsigned seen = 0;
    bool bad_oid = true, bad_size = true, bad_extra = false;
    int rc;
    if (lfs_json_object_begin(r) < 0)
        return syntax_error(r, err);
    while ((rc = lfs_json_object_next(r, &key, &klen)) == 1) {
        if (strcmp(key, "oid") == 0) {
            if (seen_key(&seen, OBJ_OID, key, err) < 0)
                return -1;
            if (lfs_json_peek(r) == LFS_JSON_STRING) {
                if (lfs_json_read_string(r, &obj->oid, &len) < 0)
                    return syntax_error(r, err);
                bad_oid = !lfs_oid_valid(obj->oid, len);
            } else if (lfs_json_skip(r) < 0) {
                return syntax_error(r, err);
            }
        } else if (strcmp(key, "size") == 0) {
            if (seen_key(&seen, OBJ_SIZE, key, err) < 0)
                return -1;
            if (lfs_json_peek(r) == LFS_JSON_NUMBER) {
                int64_t v;
                bool is_int;
                if (lfs_json_read_number(r, &v, &is_int) < 0)
                    return syntax_error(r, err);
                bad_size = !is_int || v < 0;
                obj->size = is_int ? v : -1;
            } else if (lfs_json_skip(r) < 0) {
                return syntax_error(r, err);
            }
        } else if (strcmp(key, "x-filename") == 0 || strcmp(key, "x-disposition") == 0) {
            bool name = key[2] == 'f';
            if (seen_key(&seen, name ? OBJ_XFILENAME : OBJ_XDISPOSITION, key, err) < 0)
                return -1;
            if ((rc = read_extra(r, name ? &xname : &xdisp)) < 0)
                return syntax_error(r, err);
            bad_extra |= rc > 0;
        } else if (strcmp(key, "extra") == 0) {
            if (seen_key(&seen, OBJ_EXTRA, key, err) < 0)
                return -1;
            if (lfs_json_peek(r) != LFS_JSON_OBJECT) {
                /* null or another kind: no extras, as giftless reads them */
                if (lfs_json_skip(r) < 0)
                    return syntax_error(r, err);
                continue;
            }
            unsigned eseen = 0;
            if (lfs_json_object_begin(r) < 0)
                return syntax_error(r, err);
            while ((rc = lfs_json_object_next(r, &key, &klen)) == 1) {
                bool name = strcmp(key, "filename") == 0;
                if (name || strcmp(key, "disposition") == 0) {
                    if (seen_key(&eseen, name ? 1 : 2, key, err) < 0)
                        return -1;
                    if ((rc = read_extra(r, name ? &ename : &edisp)) < 0)
                        return syntax_error(r, err);
                    bad_extra |= rc > 0;
                } else if (lfs_json_skip(r) < 0) {
                    return syntax_error(r, err);
                }
            }
            if (rc < 0)
                return syntax_error(r, err);
        } else if (lfs_json_skip(r) < 0) {
            return syntax_error(r, err);
        }
    }
    if (rc < 0)
        return syntax_error(r, err);
    /* x- keys win over extra, wherever they stand in the object */
    obj->filename = xname != NULL ? xname : ename;
    obj->disposition = xdisp != NULL ? xdisp : edisp;
    if (bad_oid)
        lfs_batch_object_fail(obj, 422, "invalid oid: expected 64 lowercase hex digits (sha256)");
    else if (bad_size)
        lfs_batch_object_fail(obj, 422, "invalid size: expected an integer >= 0");
    else if (bad_extra)
        lfs_batch_object_fail(obj, 422,
                              "invalid filename or disposition: expected a string of "
                              "1 to 255 bytes");
    else if (obj->disposition != NULL && strcmp(obj->disposition, "attachment") != 0 &&
             strcmp(obj->disposition, "inline") != 0)
        lfs_batch_object_fail(obj, 422, "invalid disposition: expected attachment or inline");
    if (obj->error_code != 0)
        obj->filename = obj->disposition = NULL;
    return 0;
}

static int parse_objects(struct lfs_json_reader *r, long long max_objects, h2o_mem_pool_t *pool,
                         struct lfs_batch_request *out, struct lfs_error *err)
{
    if (lfs_json_peek(r) != LFS_JSON_ARRAY)
        return lfs_error_set(err, 422, "\"objects\" must be a list of {\"oid\", \"size\"}");
    size_t cap = 0;
    int rc;
    if (lfs_json_array_begin(r) < 0)
        return syntax_error(r, err);
    while ((rc = lfs_json_array_next(r)) == 1) {
        if ((long long)out->nobjects >= max_objects)
            return lfs_error_set(err, 413,
                                 "too many objects in one batch: more than %lld; split the "
                                 "request",
                                 max_objects);
        if (out->nobjects == cap) {
            /* Grows in the pool: at most twice the final size is ever allocated. */
            cap = cap ? 2 * cap : 8;
            struct lfs_batch_object *grown = h2o_mem_alloc_pool(pool, cap * sizeof(*grown));
            if (out->nobjects > 0)
                memcpy(grown, out->objects, out->nobjects * sizeof(*grown));
            out->objects = grown;
        }
        if (parse_object(r, out->nobjects, &out->objects[out->nobjects], err) < 0)
            return -1;
        out->nobjects++;
    }
    return rc < 0 ? syntax_error(r, err) : 0;
}

static int parse_transfers(struct lfs_json_reader *r, h2o_mem_pool_t *pool,
                           struct lfs_batch_request *out, struct lfs_error *err)
{
    static const char message[] = "\"transfers\" must be a list of transfer names";
    enum lfs_json_type t = lfs_json_peek(r);
    if (t == LFS_JSON_NULL)
        return lfs_json_read_null(r) < 0 ? syntax_error(r, err) : 0;
    if (t != LFS_JSON_ARRAY)
        return lfs_error_set(err, 422, message);
    out->transfers = h2o_mem_alloc_pool(pool, LFS_BATCH_MAX_TRANSFERS * sizeof(char *));
    int rc;
    size_t len;
    if (lfs_json_array_begin(r) < 0)
        return syntax_error(r, err);
    while ((rc = lfs_json_array_next(r)) == 1) {
        if (out->ntransfers == LFS_BATCH_MAX_TRANSFERS || lfs_json_peek(r) != LFS_JSON_STRING)
            return lfs_error_set(err, 422, message);
        if (lfs_json_read_string(r, &out->transfers[out->ntransfers++], &len) < 0)
            return syntax_error(r, err);
    }
    return rc < 0 ? syntax_error(r, err) : 0;
}

static int parse_ref(struct lfs_json_reader *r, struct lfs_batch_request *out,
                     struct lfs_error *err)
{
    static const char message[] = "\"ref\" must be an object {\"name\": \"refs/...\"} or null";
    enum lfs_json_type t = lfs_json_peek(r);
    if (t == LFS_JSON_NULL)
        return lfs_json_read_null(r) < 0 ? syntax_error(r, err) : 0;
    if (t != LFS_JSON_OBJECT)
        return lfs_error_set(err, 422, message);
    const char *key;
    size_t klen, len;
    unsigned seen = 0;
    int rc;
    if (lfs_json_object_begin(r) < 0)
        return syntax_error(r, err);
    while ((rc = lfs_json_object_next(r, &key, &klen)) == 1) {
        if (strcmp(key, "name") != 0) {
            if (lfs_json_skip(r) < 0)
                return syntax_error(r, err);
            continue;
        }
        if (seen_key(&seen, 1, key, err) < 0)
            return -1;
        if (lfs_json_peek(r) != LFS_JSON_STRING)
            return lfs_error_set(err, 422, message);
        if (lfs_json_read_string(r, &out->ref, &len) < 0)
            return syntax_error(r, err);
    }
    return rc < 0 ? syntax_error(r, err) : 0;
}

enum { TOP_OPERATION = 1, TOP_OBJECTS = 2, TOP_TRANSFERS = 4, TOP_REF = 8, TOP_HASH = 16 };

int lfs_batch_parse(const char *body, size_t len, long long max_objects, h2o_mem_pool_t *pool,
                    struct lfs_batch_request *out, struct lfs_error *err)
{
    memset(out, 0, sizeof(*out));
    out->hash_algo_ok = true;
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, body, len, pool);
    enum lfs_json_type top = lfs_json_peek(&r);
    if (top == LFS_JSON_INVALID) {
        lfs_json_skip(&r); /* for the error's wording */
        return syntax_error(&r, err);
    }
    if (top != LFS_JSON_OBJECT) {
        if (lfs_json_skip(&r) < 0 || lfs_json_read_end(&r) < 0)
            return syntax_error(&r, err);
        return lfs_error_set(err, 422, "request body must be a JSON object");
    }
    const char *key, *op = NULL, *hash;
    size_t klen, slen;
    unsigned seen = 0;
    int rc;
    if (lfs_json_object_begin(&r) < 0)
        return syntax_error(&r, err);
    while ((rc = lfs_json_object_next(&r, &key, &klen)) == 1) {
        if (strcmp(key, "operation") == 0) {
            if (seen_key(&seen, TOP_OPERATION, key, err) < 0)
                return -1;
            if (lfs_json_peek(&r) != LFS_JSON_STRING)
                return lfs_error_set(err, 422, OPERATION_MESSAGE);
            if (lfs_json_read_string(&r, &op, &slen) < 0)
                return syntax_error(&r, err);
        } else if (strcmp(key, "objects") == 0) {
            if (seen_key(&seen, TOP_OBJECTS, key, err) < 0 ||
                parse_objects(&r, max_objects, pool, out, err) < 0)
                return -1;
        } else if (strcmp(key, "transfers") == 0) {
            if (seen_key(&seen, TOP_TRANSFERS, key, err) < 0 ||
                parse_transfers(&r, pool, out, err) < 0)
                return -1;
        } else if (strcmp(key, "ref") == 0) {
            if (seen_key(&seen, TOP_REF, key, err) < 0 || parse_ref(&r, out, err) < 0)
                return -1;
        } else if (strcmp(key, "hash_algo") == 0) {
            if (seen_key(&seen, TOP_HASH, key, err) < 0)
                return -1;
            enum lfs_json_type t = lfs_json_peek(&r);
            if (t == LFS_JSON_NULL) {
                if (lfs_json_read_null(&r) < 0)
                    return syntax_error(&r, err);
            } else if (t != LFS_JSON_STRING) {
                return lfs_error_set(err, 422, "\"hash_algo\" must be a string");
            } else {
                if (lfs_json_read_string(&r, &hash, &slen) < 0)
                    return syntax_error(&r, err);
                out->hash_algo_ok = strcmp(hash, "sha256") == 0;
            }
        } else if (lfs_json_skip(&r) < 0) {
            return syntax_error(&r, err);
        }
    }
    if (rc < 0 || lfs_json_read_end(&r) < 0)
        return syntax_error(&r, err);
    if (op != NULL && strcmp(op, "upload") == 0)
        out->operation = LFS_OP_UPLOAD;
    else if (op != NULL && strcmp(op, "download") == 0)
        out->operation = LFS_OP_DOWNLOAD;
    else
        return lfs_error_set(err, 422, OPERATION_MESSAGE);
    if (!(seen & TOP_OBJECTS))
        return lfs_error_set(err, 422, "\"objects\" must be a list of {\"oid\", \"size\"}");
    if (out->ntransfers == 0) {
        out->transfers = h2o_mem_alloc_pool(pool, sizeof(char *));
        out->transfers[0] = "basic";
        out->ntransfers = 1;
    }
    if (!out->hash_algo_ok)
        for (size_t i = 0; i < out->nobjects; i++)
            if (out->objects[i].error_code == 0)
                lfs_batch_object_fail(&out->objects[i], 409,
                                      "unsupported hash_algo: this server uses sha256");
    return 0;
}

const char *lfs_batch_pick_transfer(const struct lfs_batch_request *request,
                                    const char *const *offered, size_t noffered)
{
    for (size_t i = 0; i < request->ntransfers; i++)
        for (size_t j = 0; j < noffered; j++)
            if (strcmp(request->transfers[i], offered[j]) == 0)
                return offered[j];
    return NULL;
}

void lfs_batch_render(const char *transfer, const struct lfs_batch_object *objects, size_t n,
                      bool authenticated, struct lfs_json_writer *w)
{
    lfs_json_begin_object(w);
    lfs_json_key(w, "transfer");
    lfs_json_cstring(w, transfer);
    lfs_json_key(w, "objects");
    lfs_json_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        const struct lfs_batch_object *obj = &objects[i];
        lfs_json_begin_object(w);
        lfs_json_key(w, "oid");
        lfs_json_cstring(w, obj->oid);
        lfs_json_key(w, "size");
        lfs_json_int(w, obj->size);
        if (obj->error_code != 0) {
            lfs_json_key(w, "error");
            lfs_json_begin_object(w);
            lfs_json_key(w, "code");
            lfs_json_int(w, obj->error_code);
            lfs_json_key(w, "message");
            lfs_json_cstring(w, obj->error_message);
            lfs_json_end_object(w);
        } else if (obj->actions != NULL) {
            if (authenticated) {
                lfs_json_key(w, "authenticated");
                lfs_json_bool(w, true);
            }
            lfs_json_key(w, "actions");
            lfs_json_raw(w, obj->actions, obj->actions_len);
        }
        lfs_json_end_object(w);
    }
    lfs_json_end_array(w);
    lfs_json_key(w, "hash_algo");
    lfs_json_cstring(w, "sha256");
    lfs_json_end_object(w);
}

/* A batch waiting for its adapter. */
struct batch_state {
    struct lfs_request *r;
    struct lfs_batch batch;
    const char *transfer;
};

static void on_batch_done(void *arg, const struct lfs_error *err)
{
    struct batch_state *bs = arg;
    if (err != NULL) {
        lfs_http_send_lfs_error(bs->r, err);
        return;
    }
    bool upload = bs->batch.operation == LFS_OP_UPLOAD;
    const char *operation = upload ? "upload" : "download";
    bool grant_lines = bs->r->app->settings.activity_log_grants;
    struct lfs_log_batch_counts counts = {.objects = bs->batch.nobjects};
    for (size_t i = 0; i < bs->batch.nobjects; i++) {
        const struct lfs_batch_object *obj = &bs->batch.objects[i];
        enum lfs_metrics_batch_result result = obj->error_code != 0   ? LFS_METRICS_OBJ_ERROR
                                               : obj->actions != NULL ? LFS_METRICS_OBJ_ACTION
                                                                      : LFS_METRICS_OBJ_PRESENT;
        lfs_metrics_batch_object(upload, result);
        uint64_t size = obj->size > 0 ? (uint64_t)obj->size : 0;
        counts.bytes += size;
        /* An object merely offered is counted in the batch line; a refused one gets its own
         * line (who was refused what, and why); a line per grant only when asked for. */
        if (result == LFS_METRICS_OBJ_ERROR) {
            counts.errors++;
            lfs_log_activity(bs->r, operation, obj->oid, obj->size, "refused", obj->error_message);
        } else if (result == LFS_METRICS_OBJ_ACTION) {
            counts.granted++;
            counts.granted_bytes += size;
            if (grant_lines)
                lfs_log_activity(bs->r, operation, obj->oid, obj->size, "granted", NULL);
        } else {
            counts.present++;
        }
    }
    lfs_log_batch(bs->r, operation, &counts);
    /* Written straight into a pool block sized for the answer (the actions are known; the rest
     * of an object is about 130 bytes): no growth by doubling and no copy afterwards. A large
     * answer was grown through realloc from 1 KiB and copied twice more before it was sent. */
    size_t estimate = 256;
    for (size_t i = 0; i < bs->batch.nobjects; i++) {
        const struct lfs_batch_object *obj = &bs->batch.objects[i];
        estimate +=
            160 + obj->actions_len +
            (obj->error_code != 0 && obj->error_message != NULL ? 64 + strlen(obj->error_message)
                                                                : 0);
    }
    struct lfs_json_writer w;
    lfs_json_writer_init_pool(&w, &bs->r->req->pool, estimate);
    lfs_batch_render(bs->transfer, bs->batch.objects, bs->batch.nobjects, bs->batch.preauth != NULL,
                     &w);
    size_t len = 0;
    char *text = lfs_json_writer_take_pool(&w, &bs->r->req->pool, &len);
    lfs_json_writer_free(&w);
    if (text == NULL)
        lfs_http_send_error(bs->r, 500, "out of memory while writing the batch answer");
    else
        lfs_http_send_json_text(bs->r, 200, text, len);
}

/* An object larger than the body this server accepts could never be uploaded through it
 * (h2o would answer the PUT with 413): the batch says so for that object instead of granting
 * an upload action. Only for adapters whose uploads come through this server. */
static void refuse_too_large(struct lfs_batch_object *objects, size_t n, long long limit,
                             h2o_mem_pool_t *pool)
{
    char *message = NULL;
    for (size_t i = 0; i < n; i++) {
        if (objects[i].error_code != 0 || objects[i].size <= limit)
            continue;
        if (message == NULL) {
            message = h2o_mem_alloc_pool(pool, 128);
            snprintf(message, 128,
                     "object too large: this server accepts uploads of at most %lld bytes "
                     "(SERVER.max_upload_size)",
                     limit);
        }
        lfs_batch_object_fail(&objects[i], 422, message);
    }
}

/* Upload needs write on the repository or on every object; download read likewise. */
static int check_permissions(struct lfs_request *r, const struct lfs_batch_request *breq)
{
    unsigned perm = breq->operation == LFS_OP_UPLOAD ? LFS_PERM_WRITE : LFS_PERM_READ;
    if (lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, NULL, perm))
        return 0;
    for (size_t i = 0; i < breq->nobjects; i++) {
        const struct lfs_batch_object *obj = &breq->objects[i];
        if (obj->error_code == 0 &&
            !lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, obj->oid, perm)) {
            lfs_http_send_error(r, 403, "\"%s\" may not %s objects in %s/%s", r->identity.id,
                                perm == LFS_PERM_WRITE ? "upload" : "download", r->route.org_path,
                                r->route.repo);
            return -1;
        }
    }
    return 0;
}

void lfs_handle_batch(struct lfs_request *r)
{
    h2o_req_t *req = r->req;
    const struct lfs_app *app = r->app;
    if (!lfs_http_accepts_json(r) || lfs_http_authenticate(r) < 0)
        return;
    if (lfs_identity_is_action_token(&r->identity)) {
        /* An action token names one object and action; letting it ask for new actions would
         * let it renew itself forever. */
        lfs_http_send_error(r, 403,
                            "an action token is valid only for the action it was "
                            "issued for, not for the batch API");
        return;
    }
    if ((long long)req->entity.len > app->settings.max_batch_body) {
        lfs_http_send_error(r, 413, "batch request body too large: at most %lld bytes",
                            app->settings.max_batch_body);
        return;
    }
    struct lfs_batch_request breq;
    struct lfs_error err = {0};
    if (lfs_batch_parse(req->entity.base ? req->entity.base : "", req->entity.len,
                        app->settings.max_batch_objects, &req->pool, &breq, &err) < 0) {
        lfs_http_send_lfs_error(r, &err);
        return;
    }
    if (check_permissions(r, &breq) < 0)
        return;
    const char *transfer = lfs_batch_pick_transfer(&breq, (const char *const *)app->transfers.names,
                                                   app->transfers.count);
    if (transfer == NULL) {
        char offered[256];
        size_t used = 0;
        offered[0] = '\0';
        for (size_t i = 0; i < app->transfers.count && used < sizeof(offered); i++)
            used += (size_t)snprintf(offered + used, sizeof(offered) - used, "%s%s", i ? ", " : "",
                                     app->transfers.names[i]);
        lfs_http_send_error(r, 422,
                            "none of the requested transfers is supported; this server "
                            "offers: %s",
                            offered);
        return;
    }
    const char *base_url = lfs_http_base_url(r);
    if (base_url == NULL)
        return;
    /* Everything the adapter builds lives in the request pool: a request cancelled midway
     * leaves nothing to release. */
    struct batch_state *bs = h2o_mem_alloc_pool(&req->pool, sizeof(*bs));
    bs->r = r;
    bs->transfer = transfer;
    bs->batch = (struct lfs_batch){
        .operation = breq.operation,
        .org_path = r->route.org_path,
        .repo = r->route.repo,
        .objects = breq.objects,
        .nobjects = breq.nobjects,
        .identity = &r->identity,
        .base_url = base_url,
        .preauth = app->preauth,
        .io = {.ctx = req->conn->ctx, .pool = &req->pool},
        .now = time(NULL),
    };
    struct lfs_transfer *adapter = lfs_transfer_set_get(&app->transfers, transfer);
    if (breq.operation == LFS_OP_UPLOAD && (adapter->ops->flags & LFS_TRANSFER_SERVES_OBJECTS))
        refuse_too_large(breq.objects, breq.nobjects, app->settings.max_upload_size, &req->pool);
    adapter->ops->batch(adapter, &bs->batch, on_batch_done, bs);
}
