/* Validation and encoding helpers. The segment rules here are the single gate between
 * request paths and storage keys: storage backends trust names that passed them. */
#include "common/util.h"

#include <h2o/memory.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

bool lfs_oid_valid(const char *s, size_t len)
{
    if (len != LFS_OID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool lfs_segment_valid(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == '@' || c == '+' || c == '-'))
            return false;
    }
    return true;
}

bool lfs_segments_valid(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (!lfs_segment_valid(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

void lfs_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

bool lfs_secure_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

size_t lfs_url_encode(const char *s, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = digits[c >> 4];
            out[n++] = digits[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t lfs_header_value_canonical(const char *s, char *out)
{
    size_t n = 0;
    bool blank = false;
    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '\t') {
            blank = n > 0;
            continue;
        }
        if (blank)
            out[n++] = ' ';
        blank = false;
        out[n++] = *s;
    }
    out[n] = '\0';
    return n;
}

size_t lfs_url_decode(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return (size_t)-1;
        out[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[n] = '\0';
    return n;
}

const char *lfs_content_disposition(const char *filename, const char *disposition,
                                    enum lfs_disposition_form form, h2o_mem_pool_t *pool)
{
    if (filename == NULL && disposition == NULL)
        return NULL;
    const char *kind =
        disposition != NULL && strcmp(disposition, "inline") == 0 ? "inline" : "attachment";
    size_t len = filename != NULL ? strlen(filename) : 0;
    if (len == 0 || len > 255)
        return kind;
    char *plain = h2o_mem_alloc_pool(pool, len + 1);
    bool replaced = false;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)filename[i];
        bool ok = c == '\0' || (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '/');
        replaced = replaced || !ok;
        plain[i] = ok ? (char)c : '_';
    }
    size_t vlen = strlen(kind) + 4 * len + 48;
    char *value = h2o_mem_alloc_pool(pool, vlen);
    if (form == LFS_DISPOSITION_MINIMAL && !replaced) {
        snprintf(value, vlen, "%s; filename=\"%s\"", kind, plain);
    } else {
        char *encoded = h2o_mem_alloc_pool(pool, 3 * len + 1);
        lfs_url_encode(filename, len, encoded);
        snprintf(value, vlen, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, plain, encoded);
    }
    return value;
}
