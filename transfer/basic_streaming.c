/* The basic transfer with objects streamed through this server
 * (giftless.transfer.basic_streaming:factory): upload and download hrefs point at lfsgate's
 * own objects/storage endpoints, which server/ serves from the adapter's storage. */
#include "transfer/transfer.h"

extern const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops;

static int streaming_create(const json_t *options, const char *path, struct lfs_transfer **out,
                            struct lfs_error *err)
{
    return lfs_transfer_create_common(&lfs_transfer_basic_streaming_ops,
                                      sizeof(struct lfs_transfer), options, path, NULL,
                                      LFS_STORAGE_STREAMING, out, err);
}

static int add_actions(struct lfs_transfer *t, struct lfs_batch *batch,
                       struct lfs_batch_object *obj, struct lfs_error *err)
{
    if (batch->operation == LFS_OP_DOWNLOAD)
        return lfs_transfer_add_own_action(t, batch, obj, "download", LFS_OWN_DOWNLOAD, err);
    if (lfs_transfer_add_own_action(t, batch, obj, "upload", LFS_OWN_UPLOAD, err) < 0)
        return -1;
    return lfs_transfer_add_own_action(t, batch, obj, "verify", LFS_OWN_VERIFY, err);
}

/* Every action points back at this server: built at once. */
static void streaming_actions(struct lfs_transfer *t, struct lfs_batch *batch,
                              struct lfs_batch_object *obj, lfs_batch_done_cb done, void *arg)
{
    struct lfs_error err = {0};
    done(arg, add_actions(t, batch, obj, &err) < 0 ? &err : NULL);
}

static void streaming_batch(struct lfs_transfer *transfer, struct lfs_batch *batch,
                            lfs_batch_done_cb cb, void *arg)
{
    lfs_transfer_stat_batch(transfer, batch, streaming_actions, cb, arg);
}

const struct lfs_transfer_ops lfs_transfer_basic_streaming_ops = {
    .name = "basic_streaming",
    .factories = (const char *const[]){"giftless.transfer.basic_streaming:factory", NULL},
    .flags = LFS_TRANSFER_SERVES_OBJECTS,
    .create = streaming_create,
    .destroy = lfs_transfer_destroy_common,
    .batch = streaming_batch,
};
