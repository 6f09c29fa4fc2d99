/* struct lfs_error helpers: formatting with truncation, and prefixing a context such as a
 * config key path onto an error raised deeper down. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lfs_error_set(struct lfs_error *err, int status, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->status = status;
    return -1;
}

int lfs_error_prefix(struct lfs_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char prefix[LFS_ERROR_MESSAGE_MAX], old[LFS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof(old));
    size_t plen = strnlen(prefix, sizeof(err->message) - 1);
    memcpy(err->message, prefix, plen);
    size_t olen = strnlen(old, sizeof(err->message) - 1 - plen);
    memcpy(err->message + plen, old, olen);
    err->message[plen + olen] = '\0';
    return -1;
}
