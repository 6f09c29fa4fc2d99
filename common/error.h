/* Error reporting shared by every layer: a function that fails returns -1 and fills a
 * struct lfs_error with the HTTP status the failure maps to and a message for the user.
 * Only server/ turns it into an HTTP response. */
#ifndef LFS_COMMON_ERROR_H
#define LFS_COMMON_ERROR_H

#include <stddef.h>

#define LFS_ERROR_MESSAGE_MAX 512

struct lfs_error {
    int status; /* HTTP status this maps to; 0 = no error recorded */
    char message[LFS_ERROR_MESSAGE_MAX];
};

/* Fills err (may be NULL) with status and a printf-formatted message, made printable
 * (lfs_text_printable: bytes that are not UTF-8 and control characters as \xNN, cut on a
 * character boundary with "..." when too long), so arguments may hold any bytes.
 * Always returns -1, so callers can write `return lfs_error_set(err, 422, ...)`.
 * Any thread. */
int lfs_error_set(struct lfs_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with a printf-formatted context ("a.b: ").
 * Returns -1. Any thread. */
int lfs_error_prefix(struct lfs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
