/* Small helpers shared by every layer: oid and path-segment validation, hex, and
 * constant-time comparison. Pure functions; any thread. */
#ifndef LFS_COMMON_UTIL_H
#define LFS_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define LFS_OID_LEN 64

/* True when s[0..len) is exactly 64 lowercase hex digits. */
bool lfs_oid_valid(const char *s, size_t len);

/* True when s[0..len) is a safe single path segment for a repository or organisation name:
 * 1..255 characters of [A-Za-z0-9._~@+-], and not "." or "..". Everything that reaches the
 * filesystem or a storage key is built from such segments only. */
bool lfs_segment_valid(const char *s, size_t len);

/* True when every '/'-separated segment of s[0..len) is lfs_segment_valid (no empty ones). */
bool lfs_segments_valid(const char *s, size_t len);

/* Writes 2 * len lowercase hex digits and a NUL into out. */
void lfs_hex_encode(const unsigned char *in, size_t len, char *out);

/* Compares two byte strings in time that depends only on the lengths. */
bool lfs_secure_equal(const void *a, size_t alen, const void *b, size_t blen);



/* Percent-encodes s[0..len) for a URL query value (RFC 3986 unreserved characters kept).
 * out must hold 3 * len + 1 bytes. Returns the encoded length; out is NUL-terminated. */
size_t lfs_url_encode(const char *s, size_t len, char *out);

/* Percent-decodes s[0..len) into out (capacity len + 1), '+' kept as is. Returns the decoded
 * length, or (size_t)-1 for a malformed escape or an encoded NUL. */
size_t lfs_url_decode(const char *s, size_t len, char *out);
#endif
