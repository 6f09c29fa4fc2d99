/* The transfer adapter registry and what adapters share: reading TRANSFER_ADAPTERS, the
 * storage options every storage-backed adapter takes, the per-object storage fan-out of a
 * batch, and actions whose hrefs point back at this server (streaming upload/download,
 * verify). */
#include "transfer/transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_write.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/util.h"
#include "config/config.h"

extern const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops,
    lfs_transfer_basic_external_ops, lfs_transfer_multipart_ops;

static const struct lfs_transfer_ops *const adapters[] = {
    &lfs_transfer_basic_streaming_ops,
    &lfs_transfer_basic_external_ops,
    &lfs_transfer_multipart_ops,
};

#define NADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

/* giftless's default action_lifetime for the basic adapters. */
#define DEFAULT_ACTION_LIFETIME 900

int lfs_transfer_set_create(const json_t *map, const char *path, struct lfs_transfer_set *out,
                            struct lfs_error *err)
{
    *out = (struct lfs_transfer_set){0};
    if (!json_is_object(map) || json_object_size(map) == 0)
        return lfs_error_set(err, 500,
                             "config: %s: expected a mapping of transfer names to adapters, "
                             "e.g. {basic: {factory: giftless.transfer.basic_streaming:factory}}",
                             path);
    size_t n = json_object_size(map);
    out->names = calloc(n, sizeof(*out->names));
    out->adapters = calloc(n, sizeof(*out->adapters));
    if (out->names == NULL || out->adapters == NULL) {
        lfs_transfer_set_destroy(out);
        return lfs_error_set(err, 500, "out of memory");
    }
    const char *name;
    json_t *entry;
    json_object_foreach((json_t *)map, name, entry)
    {
        char epath[256], opath[256];
        const char *factory;
        const json_t *options;
        static const char *const keys[] = {"factory", "options", NULL};
        lfs_config_path(epath, sizeof(epath), path, name);
        if (!json_is_object(entry)) {
            lfs_error_set(err, 500,
                          "config: %s: expected a mapping with \"factory\" and \"options\"", epath);
            goto fail;
        }
        if (lfs_config_check_keys(entry, epath, keys, err) < 0 ||
            lfs_config_get_string(entry, epath, "factory", NULL, &factory, err) < 0 ||
            lfs_config_get_object(entry, epath, "options", &options, err) < 0)
            goto fail;
        if (factory == NULL) {
            lfs_error_set(err, 500, "config: %s.factory: required key is missing", epath);
            goto fail;
        }
        const struct lfs_transfer_ops *ops =
            lfs_plugin_find((const void *const *)adapters, NADAPTERS, factory);
        if (ops == NULL) {
            char names[512];
            lfs_error_set(
                err, 500, "config: %s.factory: unknown transfer adapter \"%s\"; valid: %s", epath,
                factory,
                lfs_plugin_list((const void *const *)adapters, NADAPTERS, names, sizeof(names)));
            goto fail;
        }
        lfs_config_path(opath, sizeof(opath), epath, "options");
        if (ops->create(options, opath, &out->adapters[out->count], err) < 0)
            goto fail;
        out->names[out->count] = strdup(name);
        out->count++;
        if (out->names[out->count - 1] == NULL) {
            lfs_error_set(err, 500, "out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    lfs_transfer_set_destroy(out);
    return -1;
}

void lfs_transfer_set_destroy(struct lfs_transfer_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        set->adapters[i]->ops->destroy(set->adapters[i]);
        free(set->names[i]);
    }
    free(set->adapters);
    free(set->names);
    *set = (struct lfs_transfer_set){0};
}

struct lfs_transfer *lfs_transfer_set_get(const struct lfs_transfer_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->names[i], name) == 0)
            return set->adapters[i];
    return NULL;
}

int lfs_transfer_create_common(const struct lfs_transfer_ops *ops, size_t size,
                               const json_t *options, const char *path, const char *const *extra,
                               unsigned required_caps, struct lfs_transfer **out,
                               struct lfs_error *err)
{
    const char *keys[16] = {"storage_class", "storage_options", "action_lifetime",
                            "verify_content"};
    size_t nkeys = 4;
    for (; extra != NULL && *extra != NULL && nkeys < 15; extra++)
        keys[nkeys++] = *extra;
    keys[nkeys] = NULL;
    const char *storage_class;
    const json_t *storage_options;
    long long lifetime;
    bool verify_content;
    char spath[256];
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "storage_class",
                              "giftless.storage.local_storage:LocalStorage", &storage_class,
                              err) < 0 ||
        lfs_config_get_object(options, path, "storage_options", &storage_options, err) < 0 ||
        lfs_config_get_int(options, path, "action_lifetime", DEFAULT_ACTION_LIFETIME, 1,
                           7 * 24 * 3600, &lifetime, err) < 0 ||
        lfs_config_get_bool(options, path, "verify_content", false, &verify_content, err) < 0)
        return -1;
    const struct lfs_storage_ops *sops = lfs_storage_find(storage_class);
    if (sops == NULL) {
        char names[256];
        return lfs_error_set(err, 500,
                             "config: %s.storage_class: unknown storage \"%s\"; valid: %s", path,
                             storage_class, lfs_storage_list_names(names, sizeof(names)));
    }
    if ((sops->caps & required_caps) != required_caps)
        return lfs_error_set(err, 500,
                             "config: %s.storage_class: storage \"%s\" cannot be used with %s "
                             "(it does not support %s)",
                             path, sops->name, ops->name,
                             required_caps & LFS_STORAGE_SIGNED_URLS ? "signed URLs"
                             : required_caps & LFS_STORAGE_MULTIPART
                                 ? "multipart uploads"
                                 : "streaming through the server");
    struct lfs_transfer *t = calloc(1, size);
    if (t == NULL)
        return lfs_error_set(err, 500, "out of memory");
    t->ops = ops;
    t->action_lifetime = (long)lifetime;
    t->verify_content = verify_content;
    if (sops->create(storage_options,
                     lfs_config_path(spath, sizeof(spath), path, "storage_options"), &t->storage,
                     err) < 0) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void lfs_transfer_destroy_common(struct lfs_transfer *transfer)
{
    transfer->storage->ops->destroy(transfer->storage);
    free(transfer);
}

/* Appends "?name=value" (or "&name=value"), value percent-encoded. */
static void str_add_param(struct lfs_strbuf *s, bool *first, const char *name, const char *value)
{
    size_t vlen = strlen(value);
    lfs_strbuf_add(s, *first ? "?" : "&", 1);
    lfs_strbuf_adds(s, name);
    lfs_strbuf_add(s, "=", 1);
    if (3 * vlen < s->cap - s->len)
        s->len += lfs_url_encode(value, vlen, s->buf + s->len);
    else
        s->overflow = true;
    *first = false;
}

int lfs_transfer_own_action(const struct lfs_batch *batch, const struct lfs_batch_object *obj,
                            enum lfs_own_action kind, long lifetime,
                            struct lfs_storage_request *out, struct lfs_error *err)
{
    static const unsigned perms[] = {
        [LFS_OWN_UPLOAD] = LFS_PERM_WRITE,
        [LFS_OWN_DOWNLOAD] = LFS_PERM_READ,
        [LFS_OWN_VERIFY] = LFS_PERM_READ_META,
        [LFS_OWN_VERIFY_COMMIT] = LFS_PERM_READ_META | LFS_PERM_WRITE,
    };
    const char *token = NULL;
    if (batch->preauth != NULL &&
        batch->preauth->mint(batch->preauth->provider, batch->identity, batch->org_path,
                             batch->repo, obj->oid, perms[kind], lifetime, batch->io.pool, &token,
                             err) < 0)
        return -1;
    static const char storage[] = "/objects/storage/";
    const char *what =
        kind == LFS_OWN_VERIFY || kind == LFS_OWN_VERIFY_COMMIT ? "verify" : obj->oid;
    size_t cap = strlen(batch->base_url) + sizeof(storage) + strlen(what) + 64;
    if (kind == LFS_OWN_DOWNLOAD)
        cap += 3 * ((token ? strlen(token) : 0) + (obj->filename ? strlen(obj->filename) : 0) +
                    (obj->disposition ? strlen(obj->disposition) : 0));
    /* Sized for everything up front: the href cannot overflow. */
    struct lfs_strbuf href = {.buf = h2o_mem_alloc_pool(batch->io.pool, cap), .cap = cap};
    bool first = true;
    lfs_strbuf_adds(&href, batch->base_url);
    lfs_strbuf_add(&href, storage, sizeof(storage) - 1);
    lfs_strbuf_adds(&href, what);
    if (kind == LFS_OWN_DOWNLOAD) {
        if (token != NULL)
            str_add_param(&href, &first, "jwt", token);
        if (obj->filename != NULL)
            str_add_param(&href, &first, "filename", obj->filename);
        if (obj->disposition != NULL)
            str_add_param(&href, &first, "disposition", obj->disposition);
    }
    *out = (struct lfs_storage_request){.href = href.buf};
    if (token != NULL && kind != LFS_OWN_DOWNLOAD) {
        size_t tlen = strlen(token);
        char *bearer = h2o_mem_alloc_pool(batch->io.pool, tlen + 8);
        memcpy(bearer, "Bearer ", 7);
        memcpy(bearer + 7, token, tlen + 1);
        const char **header = h2o_mem_alloc_pool(batch->io.pool, 3 * sizeof(*header));
        header[0] = "Authorization";
        header[1] = bearer;
        header[2] = NULL;
        out->header = header;
    }
    return 0;
}

int lfs_transfer_add_own_action(struct lfs_transfer *transfer, struct lfs_batch *batch,
                                struct lfs_batch_object *obj, const char *name,
                                enum lfs_own_action kind, struct lfs_error *err)
{
    struct lfs_storage_request action;
    if (lfs_transfer_own_action(batch, obj, kind, transfer->action_lifetime, &action, err) < 0)
        return -1;
    lfs_batch_object_add_action(obj, batch->io.pool, name, &action, transfer->action_lifetime);
    return 0;
}

void lfs_batch_object_fail(struct lfs_batch_object *obj, int code, const char *message)
{
    obj->error_code = code;
    obj->error_message = message;
    obj->actions = NULL;
    obj->actions_len = 0;
}

void lfs_transfer_write_action(struct lfs_json_writer *w, const struct lfs_storage_request *action,
                               long expires_in)
{
    lfs_json_key(w, "href");
    lfs_json_cstring(w, action->href);
    if (action->header != NULL && action->header[0] != NULL) {
        lfs_json_key(w, "header");
        lfs_json_begin_object(w);
        for (const char *const *h = action->header; h[0] != NULL && h[1] != NULL; h += 2) {
            lfs_json_key(w, h[0]);
            lfs_json_cstring(w, h[1]);
        }
        lfs_json_end_object(w);
    }
    if (action->method != NULL) {
        lfs_json_key(w, "method");
        lfs_json_cstring(w, action->method);
    }
    if (action->body != NULL) {
        lfs_json_key(w, "body");
        lfs_json_cstring(w, action->body);
    }
    lfs_json_key(w, "expires_in");
    lfs_json_int(w, expires_in);
}

/* Appends actions[name] = <action or json> to obj's actions text: the text so far without
 * its closing brace, the new member, the brace again. Objects have at most a handful of
 * actions, so the copies stay small. */
static void add_member(struct lfs_batch_object *obj, h2o_mem_pool_t *pool, const char *name,
                       const struct lfs_storage_request *action, long expires_in, const char *json,
                       size_t len)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    if (obj->actions != NULL) {
        lfs_json_append(&w, obj->actions, obj->actions_len - 1);
        w.need_comma = true;
    } else {
        lfs_json_begin_object(&w);
    }
    lfs_json_key(&w, name);
    if (action != NULL) {
        lfs_json_begin_object(&w);
        lfs_transfer_write_action(&w, action, expires_in);
        lfs_json_end_object(&w);
    } else {
        lfs_json_raw(&w, json, len);
    }
    lfs_json_end_object(&w);
    size_t n = 0;
    const char *text = lfs_json_writer_take_pool(&w, pool, &n);
    lfs_json_writer_free(&w);
    if (text == NULL) {
        lfs_batch_object_fail(obj, 500, "out of memory while writing the object's actions");
        return;
    }
    obj->actions = text;
    obj->actions_len = n;
}

void lfs_batch_object_add_action(struct lfs_batch_object *obj, h2o_mem_pool_t *pool,
                                 const char *name, const struct lfs_storage_request *action,
                                 long expires_in)
{
    add_member(obj, pool, name, action, expires_in, NULL, 0);
}

void lfs_batch_object_add_json(struct lfs_batch_object *obj, h2o_mem_pool_t *pool, const char *name,
                               const char *json, size_t len)
{
    add_member(obj, pool, name, NULL, 0, json, len);
}

/* An object whose URL the storage is signing, in the batch's pool. */
struct signed_action {
    struct lfs_transfer *transfer;
    struct lfs_batch *batch;
    struct lfs_batch_object *obj;
    lfs_batch_done_cb done;
    void *arg;
};

static void on_signed(void *arg, const struct lfs_storage_request *action,
                      const struct lfs_error *err)
{
    struct signed_action *sa = arg;
    if (action != NULL)
        lfs_batch_object_add_action(sa->obj, sa->batch->io.pool,
                                    sa->batch->operation == LFS_OP_UPLOAD ? "upload" : "download",
                                    action, sa->transfer->action_lifetime);
    sa->done(sa->arg, err);
}

void lfs_transfer_signed_action(struct lfs_transfer *transfer, struct lfs_batch *batch,
                                struct lfs_batch_object *obj, lfs_batch_done_cb done,
                                void *done_arg)
{
    struct lfs_object_key key = {.org_path = batch->org_path, .repo = batch->repo, .oid = obj->oid};
    struct lfs_sign_request request = {
        .op = batch->operation == LFS_OP_UPLOAD ? LFS_SIGN_UPLOAD : LFS_SIGN_DOWNLOAD,
        .lifetime = transfer->action_lifetime,
        .now = batch->now,
        .size = obj->size,
        .filename = obj->filename,
        .disposition = obj->disposition,
    };
    struct signed_action *sa = h2o_mem_alloc_pool(batch->io.pool, sizeof(*sa));
    *sa = (struct signed_action){
        .transfer = transfer, .batch = batch, .obj = obj, .done = done, .arg = done_arg};
    transfer->storage->ops->sign(transfer->storage, &batch->io, &key, &request, on_signed, sa);
}

/* The state of one batch: how many storage answers are still due. */
struct stat_batch {
    struct lfs_transfer *transfer;
    struct lfs_batch *batch;
    lfs_transfer_actions_fn actions;
    size_t pending;
    struct lfs_error failure; /* first failure that fails the whole batch; status 0 if none */
    lfs_batch_done_cb cb;
    void *arg;
};

struct stat_object {
    struct stat_batch *sb;
    struct lfs_batch_object *obj;
    struct timespec started;
};

static void stat_batch_release(struct stat_batch *sb)
{
    if (--sb->pending == 0)
        sb->cb(sb->arg, sb->failure.status != 0 ? &sb->failure : NULL);
}

/* An object's actions are built: one count of the batch off. */
static void on_actions_done(void *arg, const struct lfs_error *err)
{
    struct stat_batch *sb = arg;
    if (err != NULL && sb->failure.status == 0)
        sb->failure = *err;
    stat_batch_release(sb);
}

/* One object's answer from the store (size -1: absent), then one count of the batch off. */
static void object_result(struct stat_batch *sb, struct lfs_batch_object *obj, int64_t size,
                          const struct lfs_error *err)
{
    struct lfs_batch *batch = sb->batch;
    if (err != NULL) {
        /* The message must outlive err: copy it into the pool. */
        size_t len = strlen(err->message);
        char *msg = h2o_mem_alloc_pool(batch->io.pool, len + 1);
        memcpy(msg, err->message, len + 1);
        lfs_batch_object_fail(obj, err->status >= 500 ? err->status : 500, msg);
    } else if (batch->operation == LFS_OP_DOWNLOAD && size < 0) {
        lfs_batch_object_fail(obj, 404, "object does not exist");
    } else if (batch->operation == LFS_OP_DOWNLOAD && size != obj->size) {
        lfs_batch_object_fail(obj, 422, "object is stored with a different size");
    } else if (batch->operation == LFS_OP_UPLOAD && size == obj->size) {
        /* Already stored: nothing to do. */
    } else {
        sb->pending++;
        sb->actions(sb->transfer, batch, obj, on_actions_done, sb);
    }
    stat_batch_release(sb);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_object_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    struct stat_object *so = arg;
    lfs_metrics_storage_call(so->sb->transfer->storage->ops->name,
                             err != NULL ? LFS_METRICS_FAILED : LFS_METRICS_OK,
                             seconds_since(&so->started));
    object_result(so->sb, so->obj, size, err);
}

/* Asks the store about one object (one more count of the batch until it answers). */
static void stat_one(struct stat_batch *sb, struct lfs_batch_object *obj)
{
    struct lfs_batch *batch = sb->batch;
    struct stat_object *so = h2o_mem_alloc_pool(batch->io.pool, sizeof(*so));
    *so = (struct stat_object){.sb = sb, .obj = obj};
    clock_gettime(CLOCK_MONOTONIC, &so->started);
    struct lfs_object_key key = {.org_path = batch->org_path, .repo = batch->repo, .oid = obj->oid};
    sb->pending++;
    sb->transfer->storage->ops->stat(sb->transfer->storage, &batch->io, &key, on_object_stat, so);
}

/* A batch with at least LIST_MIN_OBJECTS objects to look up, on a backend that can list,
 * first lists the repository, asking for up to LIST_PER_OBJECT entries per object (at most
 * LIST_MAX): one request answers for every object when the repository is small (a data
 * portal's dataset, a new repository), and only the objects beyond what the listing reached
 * cost a stat each when it is large (one round trip more than stats alone). */
#define LIST_MIN_OBJECTS 8
#define LIST_PER_OBJECT 4
#define LIST_MAX 500

/* Repositories whose last listing did not reach everything: their batches go straight to
 * one stat per object for LARGE_REPO_SECONDS, rather than paying a listing (a round trip and
 * up to LIST_MAX entries of XML) that answers for few of their objects. Per worker thread,
 * no lock; keyed by a hash of the storage and the repository (a collision only costs the
 * listing's saving, never a wrong answer). */
#define LARGE_REPO_SLOTS 256
#define LARGE_REPO_SECONDS 600

struct large_repo {
    uint64_t hash;
    time_t until;
};

static _Thread_local struct large_repo large_repos[LARGE_REPO_SLOTS];

static uint64_t repo_hash(const struct lfs_transfer *transfer, const struct lfs_batch *batch)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)transfer->storage;
    for (const char *parts[] = {batch->org_path, "/", batch->repo}, **p = parts; p < parts + 3; p++)
        for (const unsigned char *c = (const unsigned char *)*p; *c != '\0'; c++)
            h = (h ^ *c) * 1099511628211ULL;
    return h | 1; /* 0 marks a free slot */
}

static bool repo_known_large(uint64_t hash, time_t now)
{
    const struct large_repo *e = &large_repos[hash % LARGE_REPO_SLOTS];
    return e->hash == hash && now < e->until;
}

struct list_state {
    struct stat_batch *sb;
    struct timespec started;
    uint64_t repo;
};

static int compare_oid(const void *key, const void *member)
{
    return strcmp(key, *(const char *const *)member);
}

static void on_listing(void *arg, const struct lfs_storage_listing *listing,
                       const struct lfs_error *err)
{
    struct list_state *ls = arg;
    struct stat_batch *sb = ls->sb;
    struct lfs_batch *batch = sb->batch;
    lfs_metrics_storage_call(sb->transfer->storage->ops->name,
                             err != NULL ? LFS_METRICS_FAILED : LFS_METRICS_OK,
                             seconds_since(&ls->started));
    if (listing != NULL && !listing->complete)
        large_repos[ls->repo % LARGE_REPO_SLOTS] =
            (struct large_repo){.hash = ls->repo, .until = batch->now + LARGE_REPO_SECONDS};
    for (size_t i = 0; i < batch->nobjects; i++) {
        struct lfs_batch_object *obj = &batch->objects[i];
        if (obj->error_code != 0)
            continue;
        if (listing == NULL) { /* no listing: each object asked on its own, as without one */
            stat_one(sb, obj);
            continue;
        }
        const char *const *found =
            bsearch(obj->oid, listing->oids, listing->n, sizeof(*listing->oids), compare_oid);
        if (found != NULL) {
            sb->pending++;
            object_result(sb, obj, listing->sizes[found - listing->oids], NULL);
        } else if (listing->complete || strcmp(obj->oid, listing->last) <= 0) {
            sb->pending++;
            object_result(sb, obj, -1, NULL);
        } else {
            stat_one(sb, obj);
        }
    }
    stat_batch_release(sb);
}

void lfs_transfer_stat_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                             lfs_transfer_actions_fn actions, lfs_batch_done_cb cb, void *arg)
{
    h2o_mem_pool_t *pool = batch->io.pool;
    struct stat_batch *sb = h2o_mem_alloc_pool(pool, sizeof(*sb));
    *sb = (struct stat_batch){
        .transfer = transfer, .batch = batch, .actions = actions, .cb = cb, .arg = arg};
    /* One extra count held while the requests are issued, so a backend that answers
     * synchronously cannot complete the batch before every object was asked. */
    sb->pending = 1;
    size_t todo = 0;
    for (size_t i = 0; i < batch->nobjects; i++)
        todo += batch->objects[i].error_code == 0;
    const struct lfs_storage_ops *ops = transfer->storage->ops;
    uint64_t repo = ops->list != NULL && todo >= LIST_MIN_OBJECTS ? repo_hash(transfer, batch) : 0;
    if (repo != 0 && !repo_known_large(repo, batch->now)) {
        struct list_state *ls = h2o_mem_alloc_pool(pool, sizeof(*ls));
        ls->sb = sb;
        ls->repo = repo;
        clock_gettime(CLOCK_MONOTONIC, &ls->started);
        struct lfs_object_key key = {.org_path = batch->org_path, .repo = batch->repo};
        size_t limit = todo * LIST_PER_OBJECT < LIST_MAX ? todo * LIST_PER_OBJECT : LIST_MAX;
        sb->pending++;
        ops->list(transfer->storage, &batch->io, &key, limit, on_listing, ls);
    } else {
        for (size_t i = 0; i < batch->nobjects; i++)
            if (batch->objects[i].error_code == 0)
                stat_one(sb, &batch->objects[i]);
    }
    stat_batch_release(sb);
}
