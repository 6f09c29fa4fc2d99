/* Fuzz target: CORS origin patterns (server/cors.c). Input: lines of allowed origins (exact,
 * with '*' for one DNS label, or a lone '*'), an empty line, then the Origin header value.
 * Properties: a pattern list is accepted or refused with a message; an allowed origin is
 * printable ASCII of at most 512 bytes (it is echoed into a response header);
 * an origin identical to an exact (star-free) allowed entry is allowed. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "server/cors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lfs_fuzz_part parts[2];
    size_t n = lfs_fuzz_split(data, size, "\n\n", 2, parts, 2);
    if (n < 2)
        return 0;
    struct lfs_fuzz_part lines[16];
    size_t nlines =
        lfs_fuzz_split((const uint8_t *)parts[0].base, parts[0].len, "\n", 1, lines, 16);
    json_t *list = json_array();
    for (size_t i = 0; i < nlines; i++) {
        json_t *s = json_stringn(lines[i].base, lines[i].len); /* NULL: not UTF-8, skipped */
        if (s != NULL)
            json_array_append_new(list, s);
    }
    json_t *section = json_pack("{s:o}", "allowed_origins", list);
    struct lfs_cors cors;
    struct lfs_error err = {0};
    if (lfs_cors_create(section, &cors, &err) < 0) {
        LFS_FUZZ_CHECK(err.message[0] != '\0');
        json_decref(section);
        return 0;
    }
    const char *origin = parts[1].base;
    size_t len = parts[1].len;
    bool allowed = lfs_cors_origin_allowed(&cors, origin, len);
    if (allowed) {
        LFS_FUZZ_CHECK(len <= 512);
        for (size_t i = 0; i < len; i++)
            LFS_FUZZ_CHECK(origin[i] > ' ' && origin[i] < 0x7f);
    }
    bool printable = len > 0 && len <= 512;
    for (size_t i = 0; i < len; i++)
        printable = printable && origin[i] > ' ' && origin[i] < 0x7f;
    json_t *item;
    size_t i;
    json_array_foreach(json_object_get(section, "allowed_origins"), i, item)
    {
        const char *exact = json_string_value(item);
        if (printable && strchr(exact, '*') == NULL && json_string_length(item) == len &&
            memcmp(exact, origin, len) == 0)
            LFS_FUZZ_CHECK(allowed);
    }
    lfs_cors_destroy(&cors);
    json_decref(section);
    return 0;
}
