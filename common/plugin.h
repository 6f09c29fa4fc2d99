/* Name lookup shared by the plugin registries (auth providers, storage backends, transfer
 * adapters). Every ops struct begins with the same two members, a native name and a
 * NULL-terminated list of giftless names, so one lookup serves all of them. */
#ifndef LFS_COMMON_PLUGIN_H
#define LFS_COMMON_PLUGIN_H

#include <stddef.h>

/* The common head of every ops struct. */
struct lfs_plugin_names {
    const char *name;
    const char *const *aliases;
};

/* Returns the entry of `table` (n pointers to ops structs beginning with struct
 * lfs_plugin_names) whose name or one of whose aliases equals `name`, or NULL. */
const void *lfs_plugin_find(const void *const *table, size_t n, const char *name);

/* Writes the native names, ", "-separated, into buf (truncated to size). Returns buf. */
const char *lfs_plugin_list(const void *const *table, size_t n, char *buf, size_t size);

#endif
