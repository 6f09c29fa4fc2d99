/* The multipart-basic transfer (giftless.transfer.multipart:factory, transfer name
 * "multipart-basic"; spec: giftless docs/source/multipart-spec.md): uploads go straight to the
 * store in parts of at most max_part_size bytes, each its own signed request, followed by a
 * commit request that assembles them and a verify action back to this server; an abort
 * request discards an unfinished upload. The storage backend plans the parts (and leaves out
 * those an interrupted upload already stored) through its multipart_plan operation; downloads
 * are plain signed URLs, as with basic_external. Objects already stored with the declared size
 * get no actions. Batches ask the store about all their objects at once: one round of
 * existence checks, then one round of plans. */
#include "transfer/transfer.h"

#include <stdlib.h>
#include <string.h>

#include "common/json_write.h"
#include "config/config.h"

extern const struct lfs_transfer_ops lfs_transfer_multipart_ops;

/* giftless's defaults: parts of 10,240,000 bytes, actions valid for 6 hours. */
#define MULTIPART_DEFAULT_PART_SIZE 10240000LL
#define MULTIPART_DEFAULT_LIFETIME (6 * 3600)

struct lfs_transfer_multipart {
    struct lfs_transfer base;
    uint64_t max_part_size;
};

static int multipart_create(const json_t *options, const char *path, struct lfs_transfer **out,
                            struct lfs_error *err)
{
    static const char *const extra[] = {"max_part_size", NULL};
    long long part_size;
    if (lfs_config_get_size(options, path, "max_part_size", MULTIPART_DEFAULT_PART_SIZE, 1024,
                            4000LL << 20, &part_size, err) < 0)
        return -1;
    if (lfs_transfer_create_common(&lfs_transfer_multipart_ops,
                                   sizeof(struct lfs_transfer_multipart), options, path, extra,
                                   LFS_STORAGE_MULTIPART | LFS_STORAGE_SIGNED_URLS, out, err) < 0)
        return -1;
    struct lfs_transfer_multipart *t = (struct lfs_transfer_multipart *)*out;
    t->max_part_size = (uint64_t)part_size;
    const json_t *lifetime = json_object_get(options, "action_lifetime");
    if (lifetime == NULL || json_is_null(lifetime))
        t->base.action_lifetime = MULTIPART_DEFAULT_LIFETIME;
    if (t->base.storage->ops->multipart_plan == NULL) {
        lfs_transfer_destroy_common(&t->base);
        return lfs_error_set(err, 500,
                             "config: %s.storage_class: storage cannot plan multipart "
                             "uploads",
                             path);
    }
    return 0;
}

/* Upload, first round: the object needs a transfer. Adds its verify action, which also marks
 * it for the second round (objects without actions need nothing). */
static void upload_mark(struct lfs_transfer *t, struct lfs_batch *batch,
                        struct lfs_batch_object *obj, lfs_batch_done_cb done, void *arg)
{
    struct lfs_error err = {0};
    /* Where lfsgate completes the upload at verify (S3), the verify token may write. */
    enum lfs_own_action kind =
        t->storage->ops->multipart_complete != NULL ? LFS_OWN_VERIFY_COMMIT : LFS_OWN_VERIFY;
    done(arg, lfs_transfer_add_own_action(t, batch, obj, "verify", kind, &err) < 0 ? &err : NULL);
}

/* The second round of an upload batch: one plan per marked object, all at once. */
struct plan_batch {
    struct lfs_transfer *transfer;
    struct lfs_batch *batch;
    size_t pending;
    lfs_batch_done_cb cb;
    void *arg;
};

struct plan_object {
    struct plan_batch *pb;
    struct lfs_batch_object *obj;
};

static void plan_batch_release(struct plan_batch *pb)
{
    if (--pb->pending == 0)
        pb->cb(pb->arg, NULL);
}

/* actions.parts: the plan's parts in order, each an action with its pos, size and digest. */
static void add_parts(struct lfs_batch_object *obj, h2o_mem_pool_t *pool,
                      const struct lfs_multipart_plan *plan, long lifetime)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_array(&w);
    for (size_t i = 0; i < plan->nparts; i++) {
        const struct lfs_multipart_part *p = &plan->parts[i];
        lfs_json_begin_object(&w);
        lfs_transfer_write_action(&w, &p->request, lifetime);
        lfs_json_key(&w, "pos");
        lfs_json_int(&w, (int64_t)p->pos);
        lfs_json_key(&w, "size");
        lfs_json_int(&w, (int64_t)p->size);
        if (p->want_digest != NULL) {
            lfs_json_key(&w, "want_digest");
            lfs_json_cstring(&w, p->want_digest);
        }
        lfs_json_end_object(&w);
    }
    lfs_json_end_array(&w);
    size_t len = 0;
    const char *parts = lfs_json_writer_take_pool(&w, pool, &len);
    lfs_json_writer_free(&w);
    if (parts == NULL)
        lfs_batch_object_fail(obj, 500, "out of memory while writing the object's parts");
    else
        lfs_batch_object_add_json(obj, pool, "parts", parts, len);
}

static void on_plan(void *arg, const struct lfs_multipart_plan *plan, const struct lfs_error *err)
{
    struct plan_object *po = arg;
    struct plan_batch *pb = po->pb;
    struct lfs_batch_object *obj = po->obj;
    long lifetime = pb->transfer->action_lifetime;
    if (err != NULL) {
        size_t len = strlen(err->message);
        char *msg = h2o_mem_alloc_pool(pb->batch->io.pool, len + 1);
        memcpy(msg, err->message, len + 1);
        lfs_batch_object_fail(obj, err->status > 0 ? err->status : 500, msg);
    } else {
        h2o_mem_pool_t *pool = pb->batch->io.pool;
        if (plan->init.href != NULL)
            lfs_batch_object_add_action(obj, pool, "init", &plan->init, lifetime);
        if (plan->nparts > 0)
            add_parts(obj, pool, plan, lifetime);
        if (plan->commit.href != NULL)
            lfs_batch_object_add_action(obj, pool, "commit", &plan->commit, lifetime);
        if (plan->abort.href != NULL)
            lfs_batch_object_add_action(obj, pool, "abort", &plan->abort, lifetime);
    }
    plan_batch_release(pb);
}

static void on_upload_stat_done(void *arg, const struct lfs_error *err)
{
    struct plan_batch *pb = arg;
    struct lfs_batch *batch = pb->batch;
    if (err != NULL) {
        pb->cb(pb->arg, err);
        return;
    }
    struct lfs_storage *storage = pb->transfer->storage;
    const struct lfs_transfer_multipart *t = (const struct lfs_transfer_multipart *)pb->transfer;
    /* One extra count while the plans are asked for, as in lfs_transfer_stat_batch. */
    pb->pending = 1;
    for (size_t i = 0; i < batch->nobjects; i++) {
        struct lfs_batch_object *obj = &batch->objects[i];
        if (obj->error_code != 0 || obj->actions == NULL)
            continue;
        struct plan_object *po = h2o_mem_alloc_pool(batch->io.pool, sizeof(*po));
        *po = (struct plan_object){.pb = pb, .obj = obj};
        struct lfs_object_key key = {
            .org_path = batch->org_path, .repo = batch->repo, .oid = obj->oid};
        struct lfs_multipart_request request = {
            .lifetime = t->base.action_lifetime,
            .now = batch->now,
            .size = obj->size,
            .part_size = t->max_part_size,
            .filename = obj->filename,
        };
        pb->pending++;
        storage->ops->multipart_plan(storage, &batch->io, &key, &request, on_plan, po);
    }
    plan_batch_release(pb);
}

static void multipart_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                            lfs_batch_done_cb cb, void *arg)
{
    if (batch->operation == LFS_OP_DOWNLOAD) {
        /* Download: a signed read URL, as basic_external gives it. */
        lfs_transfer_stat_batch(transfer, batch, lfs_transfer_signed_action, cb, arg);
        return;
    }
    struct plan_batch *pb = h2o_mem_alloc_pool(batch->io.pool, sizeof(*pb));
    *pb = (struct plan_batch){.transfer = transfer, .batch = batch, .cb = cb, .arg = arg};
    lfs_transfer_stat_batch(transfer, batch, upload_mark, on_upload_stat_done, pb);
}

const struct lfs_transfer_ops lfs_transfer_multipart_ops = {
    .name = "multipart",
    .factories = (const char *const[]){"giftless.transfer.multipart:factory", NULL},
    .flags = 0,
    .create = multipart_create,
    .destroy = lfs_transfer_destroy_common,
    .batch = multipart_batch,
};
