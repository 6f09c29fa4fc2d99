/* The batch endpoint: parse and validate the request, check permissions, negotiate the
 * transfer, let the adapter decide each object's actions, render the answer. As the spec
 * says (and unlike giftless), per-object problems are per-object errors in a 200 answer. */
#include "server/batch.h"

#include <string.h>

#include "common/json_write.h"
#include "common/metrics.h"
#include "common/util.h"
#include "server/logs.h"
#include "server/http.h"

static const char *pool_strdup(h2o_mem_pool_t *pool, const char *s)
{
    size_t len = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(out, s, len + 1);
    return out;
}

/* Reads one extra (x-<name> key, or extra.<name>). Returns 0, or -1 when present but not
 * a short string. */
static int read_extra(const json_t *object, const char *name, h2o_mem_pool_t *pool,
                      const char **out)
{
    char key[64];
    snprintf(key, sizeof(key), "x-%s", name);
    const json_t *v = json_object_get(object, key);
    const json_t *extra = json_object_get(object, "extra");
    if (v == NULL && json_is_object(extra))
        v = json_object_get(extra, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > LFS_FILENAME_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    *out = pool_strdup(pool, json_string_value(v));
    return 0;
}

static void parse_object(const json_t *o, h2o_mem_pool_t *pool, struct lfs_batch_object *obj)
{
    const json_t *oid = json_object_get(o, "oid"), *size = json_object_get(o, "size");
    memset(obj, 0, sizeof(*obj));
    obj->oid = json_is_string(oid) ? pool_strdup(pool, json_string_value(oid)) : "";
    obj->size = json_is_integer(size) ? (int64_t)json_integer_value(size) : -1;
    if (!json_is_string(oid) || !lfs_oid_valid(json_string_value(oid), json_string_length(oid)))
        lfs_batch_object_fail(obj, 422, "invalid oid: expected 64 lowercase hex digits (sha256)");
    else if (!json_is_integer(size) || json_integer_value(size) < 0)
        lfs_batch_object_fail(obj, 422, "invalid size: expected an integer >= 0");
    else if (read_extra(o, "filename", pool, &obj->filename) < 0 ||
             read_extra(o, "disposition", pool, &obj->disposition) < 0)
        lfs_batch_object_fail(obj, 422,
                              "invalid filename or disposition: expected a string of "
                              "1 to 255 bytes");
    else if (obj->disposition != NULL && strcmp(obj->disposition, "attachment") != 0 &&
             strcmp(obj->disposition, "inline") != 0)
        lfs_batch_object_fail(obj, 422, "invalid disposition: expected attachment or inline");
}

int lfs_batch_parse(const char *body, size_t len, long long max_objects, h2o_mem_pool_t *pool,
                    struct lfs_batch_request *out, struct lfs_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return lfs_error_set(err, 422, "request body is not valid JSON: %s (line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
    int rc = -1;
    const json_t *op = json_object_get(root, "operation"),
                 *objects = json_object_get(root, "objects"),
                 *transfers = json_object_get(root, "transfers"),
                 *ref = json_object_get(root, "ref"), *hash = json_object_get(root, "hash_algo");
    if (!json_is_object(root)) {
        lfs_error_set(err, 422, "request body must be a JSON object");
        goto done;
    }
    if (json_is_string(op) && strcmp(json_string_value(op), "upload") == 0) {
        out->operation = LFS_OP_UPLOAD;
    } else if (json_is_string(op) && strcmp(json_string_value(op), "download") == 0) {
        out->operation = LFS_OP_DOWNLOAD;
    } else {
        lfs_error_set(err, 422, "\"operation\" must be \"upload\" or \"download\"");
        goto done;
    }
    if (!json_is_array(objects)) {
        lfs_error_set(err, 422, "\"objects\" must be a list of {\"oid\", \"size\"}");
        goto done;
    }
    if ((long long)json_array_size(objects) > max_objects) {
        lfs_error_set(err, 413,
                      "too many objects in one batch: %zu, at most %lld; split the request",
                      json_array_size(objects), max_objects);
        goto done;
    }
    if (transfers != NULL && !json_is_null(transfers)) {
        if (!json_is_array(transfers) || json_array_size(transfers) > 16) {
            lfs_error_set(err, 422, "\"transfers\" must be a list of transfer names");
            goto done;
        }
        out->ntransfers = json_array_size(transfers);
        out->transfers = h2o_mem_alloc_pool(pool, (out->ntransfers + 1) * sizeof(char *));
        for (size_t i = 0; i < out->ntransfers; i++) {
            const json_t *t = json_array_get(transfers, i);
            if (!json_is_string(t)) {
                lfs_error_set(err, 422, "\"transfers\" must be a list of transfer names");
                goto done;
            }
            out->transfers[i] = pool_strdup(pool, json_string_value(t));
        }
    }
    if (out->ntransfers == 0) {
        out->transfers = h2o_mem_alloc_pool(pool, sizeof(char *));
        out->transfers[0] = "basic";
        out->ntransfers = 1;
    }
    if (ref != NULL && !json_is_null(ref)) {
        const json_t *name = json_object_get(ref, "name");
        if (!json_is_object(ref) || (name != NULL && !json_is_string(name))) {
            lfs_error_set(err, 422, "\"ref\" must be an object {\"name\": \"refs/...\"} or null");
            goto done;
        }
        out->ref = name ? pool_strdup(pool, json_string_value(name)) : NULL;
    }
    if (hash != NULL && !json_is_null(hash) && !json_is_string(hash)) {
        lfs_error_set(err, 422, "\"hash_algo\" must be a string");
        goto done;
    }
    out->hash_algo_ok =
        hash == NULL || json_is_null(hash) || strcmp(json_string_value(hash), "sha256") == 0;
    out->nobjects = json_array_size(objects);
    out->objects = h2o_mem_alloc_pool(pool, (out->nobjects + 1) * sizeof(*out->objects));
    for (size_t i = 0; i < out->nobjects; i++) {
        const json_t *o = json_array_get(objects, i);
        if (!json_is_object(o)) {
            lfs_error_set(err, 422, "objects[%zu] must be an object {\"oid\", \"size\"}", i);
            goto done;
        }
        parse_object(o, pool, &out->objects[i]);
        if (!out->hash_algo_ok && out->objects[i].error_code == 0)
            lfs_batch_object_fail(&out->objects[i], 409,
                                  "unsupported hash_algo: this server uses sha256");
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
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
    for (size_t i = 0; i < bs->batch.nobjects; i++) {
        const struct lfs_batch_object *obj = &bs->batch.objects[i];
        enum lfs_metrics_batch_result result = obj->error_code != 0   ? LFS_METRICS_OBJ_ERROR
                                               : obj->actions != NULL ? LFS_METRICS_OBJ_ACTION
                                                                      : LFS_METRICS_OBJ_PRESENT;
        lfs_metrics_batch_object(upload, result);
        if (result == LFS_METRICS_OBJ_ACTION)
            lfs_log_activity(bs->r, upload ? "upload" : "download", obj->oid, obj->size, "granted",
                             NULL);
    }
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
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
    adapter->ops->batch(adapter, &bs->batch, on_batch_done, bs);
}
