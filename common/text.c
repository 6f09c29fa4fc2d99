/* See text.h. The decoder follows the well-formedness table of Unicode 15, section 3.9
 * (Table 3-7): the second byte's range depends on the first byte, which rules out overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF without decoding the value. */
#include "common/text.h"

#include <stdbool.h>
#include <string.h>

size_t lfs_utf8_char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0; /* a continuation byte, 0xc0, 0xc1 or 0xf5..0xff */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t lfs_utf8_prefix(const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = lfs_utf8_char_len(u + i, n - i);
        if (len == 0 || i + len > max)
            break;
        i += len;
    }
    return i;
}

size_t lfs_text_printable(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    static const char ellipsis[] = "...";
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0, limit = cap - 1; /* room for the NUL */
    bool cut = false;
    for (size_t i = 0; i < n;) {
        size_t len = lfs_utf8_char_len(u + i, n - i);
        char esc[4];
        const char *piece = s + i;
        size_t plen = len;
        if (len == 0 || u[i] < 0x20 || u[i] == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[u[i] >> 4];
            esc[3] = hex[u[i] & 15];
            piece = esc;
            plen = 4;
            len = 1;
        }
        /* Keep room for the ellipsis unless this is the last piece. */
        size_t reserve = i + len < n ? sizeof(ellipsis) - 1 : 0;
        if (out + plen + reserve > limit) {
            cut = true;
            break;
        }
        memcpy(dst + out, piece, plen);
        out += plen;
        i += len;
    }
    if (cut) {
        /* Every piece kept left room for it (cap >= 4). */
        memcpy(dst + out, ellipsis, sizeof(ellipsis) - 1);
        out += sizeof(ellipsis) - 1;
    }
    dst[out] = '\0';
    return out;
}
