/* The storage backend registry: native names and giftless storage_class strings -> ops.
 * Adding a backend means adding its ops to `backends`. */
#include "storage/storage.h"

#include "common/plugin.h"
#include "storage/http_client.h"
#include "storage/refresh.h"
#include "storage/remote.h"

extern const struct lfs_storage_ops lfs_storage_local_ops;
extern const struct lfs_storage_ops lfs_storage_gcs_ops;
extern const struct lfs_storage_ops lfs_storage_azure_ops;
extern const struct lfs_storage_ops lfs_storage_s3_ops;

static const struct lfs_storage_ops *const backends[] = {
    &lfs_storage_local_ops,
    &lfs_storage_gcs_ops,
    &lfs_storage_azure_ops,
    &lfs_storage_s3_ops,
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

void lfs_storage_thread_cleanup(void)
{
    lfs_storage_slice_thread_cleanup();
    /* Before the HTTP client: a credential fetch in flight is the client's transfer. */
    lfs_refresh_thread_cleanup();
    lfs_http_thread_cleanup();
}

static bool cleanup_allowed;

void lfs_storage_set_cleanup(bool allowed)
{
    cleanup_allowed = allowed;
}

bool lfs_storage_cleanup_allowed(void)
{
    return cleanup_allowed;
}

const struct lfs_storage_ops *lfs_storage_find(const char *name)
{
    return lfs_plugin_find((const void *const *)backends, NBACKENDS, name);
}

const char *lfs_storage_list_names(char *buf, size_t size)
{
    return lfs_plugin_list((const void *const *)backends, NBACKENDS, buf, size);
}
