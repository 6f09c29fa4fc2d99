/* Text that came from outside (request lines, headers, token claims, store answers) on its
 * way into a message, a header or a log line: UTF-8 decoding that never trusts its input, and
 * a printable copy that is valid UTF-8, holds no control character and is cut on a character
 * boundary. Pure functions; any thread. */
#ifndef LFS_COMMON_TEXT_H
#define LFS_COMMON_TEXT_H

#include <stddef.h>

/* The length (1 to 4) of the well-formed UTF-8 character at s[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one
 * (including a character cut short by n). n >= 1. */
size_t lfs_utf8_char_len(const unsigned char *s, size_t n);

/* The length of the longest prefix of s[0..n) that is at most max bytes and ends on a
 * character boundary of well-formed UTF-8, scanning from the start; stops early at the first
 * byte that is not UTF-8. */
size_t lfs_utf8_prefix(const char *s, size_t n, size_t max);

/* Copies s[0..n) into dst (capacity cap >= 4, always NUL-terminated) as printable text:
 * well-formed UTF-8 characters other than controls are kept, every other byte is written as
 * the four characters \xNN, so nothing in it can end a line or forge a field, and a reader
 * still sees which bytes came. Idempotent: printable text comes back unchanged (a backslash
 * is not escaped), so a message can be passed through again when a context is prefixed.
 * When it does not fit, it is cut on a character (or escape) boundary and ends with "...".
 * Returns the length written. */
size_t lfs_text_printable(char *dst, size_t cap, const char *s, size_t n);

#endif
