/* Small helpers shared by every layer: oid and path-segment validation, hex, URL encoding,
 * the Content-Disposition of a download, and constant-time comparison. Pure functions (a
 * result that needs memory goes in the caller's h2o pool); any thread. */
#ifndef LFS_COMMON_UTIL_H
#define LFS_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

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

/* Copies s into out (strlen(s) + 1 bytes) without leading and trailing blanks (spaces, tabs),
 * inner runs of blanks collapsed to one space: the canonical header value of the V4 signatures
 * (GCS and AWS). Returns the length written. */
size_t lfs_header_value_canonical(const char *s, char *out);

struct st_h2o_mem_pool_t; /* h2o_mem_pool_t */

/* How lfs_content_disposition gives a filename. */
enum lfs_disposition_form {
    /* filename="<safe>"; filename*=UTF-8''<percent-encoded>, always (what lfsgate serves) */
    LFS_DISPOSITION_FULL,
    /* the filename* form only when the quoted one had to replace characters (what the Azure
     * backend signs into its SAS URLs) */
    LFS_DISPOSITION_MINIMAL,
};

/* Content-Disposition of a download: "inline" when disposition is "inline", otherwise
 * "attachment", followed by the filename's parameters when filename is 1 to 255 bytes long.
 * The quoted form has control characters, bytes outside ASCII, '"', '\\' and '/' replaced with
 * '_'; the RFC 5987 filename* form carries the name in full. Returns NULL when filename and
 * disposition are both NULL; otherwise a string that lives as long as pool. */
const char *lfs_content_disposition(const char *filename, const char *disposition,
                                    enum lfs_disposition_form form, struct st_h2o_mem_pool_t *pool);

/* A string assembled into a caller's buffer of fixed capacity, piece by piece: paths and
 * hrefs are built for every object of a batch, and snprintf's format parsing was a visible
 * share of a small batch. A piece that does not fit sets `overflow` and is dropped; buf stays
 * NUL-terminated (cap >= 1). */
struct lfs_strbuf {
    char *buf;
    size_t len, cap;
    bool overflow;
};

static inline void lfs_strbuf_add(struct lfs_strbuf *s, const char *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then */
    if (n >= s->cap - s->len) {
        s->overflow = true;
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static inline void lfs_strbuf_adds(struct lfs_strbuf *s, const char *str)
{
    lfs_strbuf_add(s, str, strlen(str));
}
#endif
