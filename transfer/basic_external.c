/* The basic transfer with objects going straight between client and store
 * (giftless.transfer.basic_external:factory): upload and download hrefs are URLs the storage
 * backend signs; only the verify action points back at this server, which checks the store. */
#include "transfer/transfer.h"

extern const struct lfs_transfer_ops lfs_transfer_basic_external_ops;

static int external_create(const json_t *options, const char *path, struct lfs_transfer **out,
                           struct lfs_error *err)
{
    return lfs_transfer_create_common(&lfs_transfer_basic_external_ops, sizeof(struct lfs_transfer),
                                      options, path, NULL, LFS_STORAGE_SIGNED_URLS, out, err);
}

static int external_actions(struct lfs_transfer *t, struct lfs_batch *batch,
                            struct lfs_batch_object *obj, struct lfs_error *err)
{
    bool upload = batch->operation == LFS_OP_UPLOAD;
    struct lfs_object_key key = {.org_path = batch->org_path, .repo = batch->repo, .oid = obj->oid};
    struct lfs_sign_request request = {
        .op = upload ? LFS_SIGN_UPLOAD : LFS_SIGN_DOWNLOAD,
        .lifetime = t->action_lifetime,
        .now = batch->now,
        .size = obj->size,
        .filename = obj->filename,
        .disposition = obj->disposition,
    };
    struct lfs_storage_request action;
    if (t->storage->ops->sign(t->storage, &key, &request, batch->io.pool, &action, err) < 0)
        return -1;
    lfs_batch_object_add_action(obj, batch->io.pool, upload ? "upload" : "download", &action,
                                t->action_lifetime);
    if (!upload)
        return 0;
    if (lfs_transfer_own_action(batch, obj, LFS_OWN_VERIFY, t->action_lifetime, &action, err) < 0)
        return -1;
    lfs_batch_object_add_action(obj, batch->io.pool, "verify", &action, t->action_lifetime);
    return 0;
}

static void external_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                           lfs_batch_done_cb cb, void *arg)
{
    lfs_transfer_stat_batch(transfer, batch, external_actions, cb, arg);
}

const struct lfs_transfer_ops lfs_transfer_basic_external_ops = {
    .name = "basic_external",
    .factories = (const char *const[]){"giftless.transfer.basic_external:factory", NULL},
    .flags = 0,
    .create = external_create,
    .destroy = lfs_transfer_destroy_common,
    .batch = external_batch,
};
