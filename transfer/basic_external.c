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

/* An upload whose URL the storage is signing: the verify action follows the upload action,
 * in the order clients and the spec's examples show them. */
struct upload_signing {
    struct lfs_transfer *transfer;
    struct lfs_batch *batch;
    struct lfs_batch_object *obj;
    lfs_batch_done_cb done;
    void *arg;
};

static void on_upload_signed(void *arg, const struct lfs_error *err)
{
    struct upload_signing *us = arg;
    struct lfs_error verify_err = {0};
    if (err == NULL && lfs_transfer_add_own_action(us->transfer, us->batch, us->obj, "verify",
                                                   LFS_OWN_VERIFY, &verify_err) < 0)
        err = &verify_err;
    us->done(us->arg, err);
}

/* Download: the signed URL. Upload: the signed URL and a verify action back to this server. */
static void external_actions(struct lfs_transfer *t, struct lfs_batch *batch,
                             struct lfs_batch_object *obj, lfs_batch_done_cb done, void *arg)
{
    if (batch->operation != LFS_OP_UPLOAD) {
        lfs_transfer_signed_action(t, batch, obj, done, arg);
        return;
    }
    struct upload_signing *us = h2o_mem_alloc_pool(batch->io.pool, sizeof(*us));
    *us = (struct upload_signing){
        .transfer = t, .batch = batch, .obj = obj, .done = done, .arg = arg};
    lfs_transfer_signed_action(t, batch, obj, on_upload_signed, us);
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
