/* Plugin registry lookup: see plugin.h. */
#include "common/plugin.h"

#include <stdio.h>
#include <string.h>

const void *lfs_plugin_find(const void *const *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const struct lfs_plugin_names *p = table[i];
        if (strcmp(p->name, name) == 0)
            return p;
        for (const char *const *a = p->aliases; a != NULL && *a != NULL; a++)
            if (strcmp(*a, name) == 0)
                return p;
    }
    return NULL;
}

const char *lfs_plugin_list(const void *const *table, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const struct lfs_plugin_names *p = table[i];
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", p->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}
