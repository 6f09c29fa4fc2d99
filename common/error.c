/* struct lfs_error helpers: formatting with truncation, and prefixing a context such as a
 * config key path onto an error raised deeper down. A message may quote bytes from a request
 * or a store's answer, so every message is made printable here (common/text.h): valid UTF-8,
 * no control characters, cut on a character boundary. Whatever renders it (a JSON error
 * answer, a log line) can then rely on that. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/text.h"

/* Longer than a message, so that a message cut for length still ends with "...". */
#define FORMAT_MAX (4 * LFS_ERROR_MESSAGE_MAX)

static void set_message(struct lfs_error *err, const char *text)
{
    lfs_text_printable(err->message, sizeof(err->message), text, strlen(text));
}

int lfs_error_set(struct lfs_error *err, int status, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char text[FORMAT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    set_message(err, text);
    err->status = status;
    return -1;
}

int lfs_error_prefix(struct lfs_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char text[FORMAT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t plen = n < 0 ? 0 : strnlen(text, sizeof(text) - 1);
    snprintf(text + plen, sizeof(text) - plen, "%s", err->message);
    set_message(err, text);
    return -1;
}
