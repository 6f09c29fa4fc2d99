/* Helpers shared by the fuzz targets (see fuzz.h): splitting one fuzzed input into the
 * several inputs a parser takes, and NUL-terminated copies of the parts. */
#include <string.h>

#include "fuzz.h"

size_t lfs_fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t seplen,
                      struct lfs_fuzz_part *parts, size_t max)
{
    const char *p = (const char *)data, *end = p + size;
    size_t n = 0;
    while (n + 1 < max) {
        const char *at = memmem(p, (size_t)(end - p), sep, seplen);
        if (at == NULL)
            break;
        parts[n++] = (struct lfs_fuzz_part){p, (size_t)(at - p)};
        p = at + seplen;
    }
    parts[n++] = (struct lfs_fuzz_part){p, (size_t)(end - p)};
    return n;
}

char *lfs_fuzz_strdup(struct lfs_fuzz_part part)
{
    char *s = malloc(part.len + 1);
    if (s == NULL)
        abort();
    memcpy(s, part.base, part.len);
    s[part.len] = '\0';
    return s;
}
