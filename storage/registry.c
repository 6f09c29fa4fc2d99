/* The storage backend registry: native names and giftless storage_class strings -> ops.
 * Adding a backend means adding its ops to `backends`. */
#include "storage/storage.h"

#include "common/plugin.h"

extern const struct lfs_storage_ops lfs_storage_local_ops;

static const struct lfs_storage_ops *const backends[] = {
    &lfs_storage_local_ops,
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

const struct lfs_storage_ops *lfs_storage_find(const char *name)
{
    return lfs_plugin_find((const void *const *)backends, NBACKENDS, name);
}

const char *lfs_storage_list_names(char *buf, size_t size)
{
    return lfs_plugin_list((const void *const *)backends, NBACKENDS, buf, size);
}
