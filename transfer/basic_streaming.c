/* The basic transfer with objects streamed through this server
 * (giftless.transfer.basic_streaming:factory): upload and download hrefs point at lfsgate's
 * own objects/storage endpoints, which server/ serves from the adapter's storage. For each
 * object the storage is asked for its size; all objects are asked at once and the batch
 * completes when the last answer is back. */
#include "transfer/transfer.h"

#include <stdlib.h>
#include <string.h>

struct lfs_transfer_basic_streaming {
    struct lfs_transfer base;
};

static int streaming_create(const json_t *options, const char *path, struct lfs_transfer **out,
                            struct lfs_error *err)
{
    extern const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops;
    struct lfs_transfer_basic_streaming *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return lfs_error_set(err, 500, "out of memory");
    if (lfs_transfer_init_common(&t->base, &lfs_transfer_basic_streaming_ops, options, path, NULL,
                                 err) < 0) {
        free(t);
        return -1;
    }
    if ((t->base.storage->ops->caps & LFS_STORAGE_STREAMING) == 0) {
        t->base.storage->ops->destroy(t->base.storage);
        free(t);
        return lfs_error_set(err, 500,
                             "config: %s.storage_class: this storage cannot stream objects "
                             "through the server; use giftless.transfer.basic_external:factory",
                             path);
    }
    *out = &t->base;
    return 0;
}

static void streaming_destroy(struct lfs_transfer *transfer)
{
    transfer->storage->ops->destroy(transfer->storage);
    free(transfer);
}

/* The state of one batch: how many storage answers are still due. */
struct streaming_batch {
    struct lfs_transfer *transfer;
    struct lfs_batch *batch;
    size_t pending;
    struct lfs_error failure; /* first storage failure, status 0 if none */
    lfs_batch_done_cb cb;
    void *arg;
};

struct streaming_object {
    struct streaming_batch *sb;
    struct lfs_batch_object *obj;
};

static void add_action(struct streaming_batch *sb, struct lfs_batch_object *obj,
                       const char *name, enum lfs_own_action kind)
{
    struct lfs_error err = {0};
    json_t *action = lfs_transfer_own_action(sb->batch, obj, kind, sb->transfer->action_lifetime,
                                             &err);
    if (action == NULL) {
        if (sb->failure.status == 0)
            sb->failure = err;
        return;
    }
    if (obj->actions == NULL)
        obj->actions = json_object();
    json_object_set_new(obj->actions, name, action);
}

static void on_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    struct streaming_object *so = arg;
    struct streaming_batch *sb = so->sb;
    struct lfs_batch_object *obj = so->obj;
    if (err != NULL) {
        /* The message must outlive err: copy it into the pool. */
        size_t len = strlen(err->message);
        char *msg = h2o_mem_alloc_pool(sb->batch->io.pool, len + 1);
        memcpy(msg, err->message, len + 1);
        lfs_batch_object_fail(obj, err->status >= 500 ? err->status : 500, msg);
    } else if (sb->batch->operation == LFS_OP_UPLOAD) {
        /* Already stored with the same size: nothing to do. */
        if (size != obj->size) {
            add_action(sb, obj, "upload", LFS_OWN_UPLOAD);
            add_action(sb, obj, "verify", LFS_OWN_VERIFY);
        }
    } else if (size < 0) {
        lfs_batch_object_fail(obj, 404, "object does not exist");
    } else if (size != obj->size) {
        lfs_batch_object_fail(obj, 422, "object is stored with a different size");
    } else {
        add_action(sb, obj, "download", LFS_OWN_DOWNLOAD);
    }
    if (--sb->pending == 0)
        sb->cb(sb->arg, sb->failure.status != 0 ? &sb->failure : NULL);
}

static void streaming_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                            lfs_batch_done_cb cb, void *arg)
{
    h2o_mem_pool_t *pool = batch->io.pool;
    struct streaming_batch *sb = h2o_mem_alloc_pool(pool, sizeof(*sb));
    *sb = (struct streaming_batch){.transfer = transfer, .batch = batch, .cb = cb, .arg = arg};
    /* One extra count held while the requests are issued, so a backend that answers
     * synchronously cannot complete the batch before every object was asked. */
    sb->pending = 1;
    for (size_t i = 0; i < batch->nobjects; i++) {
        struct lfs_batch_object *obj = &batch->objects[i];
        if (obj->error_code != 0)
            continue;
        struct streaming_object *so = h2o_mem_alloc_pool(pool, sizeof(*so));
        *so = (struct streaming_object){.sb = sb, .obj = obj};
        struct lfs_object_key key = {.org_path = batch->org_path, .repo = batch->repo,
                                     .oid = obj->oid};
        sb->pending++;
        transfer->storage->ops->stat(transfer->storage, &batch->io, &key, on_stat, so);
    }
    if (--sb->pending == 0)
        cb(arg, sb->failure.status != 0 ? &sb->failure : NULL);
}

const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops = {
    .name = "basic_streaming",
    .factories = (const char *const[]){"giftless.transfer.basic_streaming:factory", NULL},
    .flags = LFS_TRANSFER_SERVES_OBJECTS,
    .create = streaming_create,
    .destroy = streaming_destroy,
    .batch = streaming_batch,
};
