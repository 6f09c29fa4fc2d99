/* Fuzz target: the request headers lfsgate interprets itself (server/http.c, objects.c):
 * ProxyFix X-Forwarded-Proto/Host/Port/Prefix lists, RFC 7239 Forwarded, the Host header
 * (lfs_http_public_origin, which every href starts with) and Range (lfs_http_parse_range).
 * Input: 5 bytes of trust counts (x_proto, x_host, x_port, x_prefix, forwarded; each 0-3),
 * a byte for the scheme (odd: https), 2 bytes of object size for Range, then lines: the Host
 * value, then "name: value" headers (repeats allowed). Properties: the origin is
 * "http(s)://" + an authority of host characters only + a prefix of valid segments, or a 400
 * with a message; a Range is 1 with start <= end < size, or 0, or -1. Authorization values
 * are fuzzed by the jwt target, which owns their parsing. */
#include <ctype.h>
#include <string.h>

#include "common/util.h"
#include "fuzz.h"
#include "server/http.h"

/* True for a byte that may appear in an authority we put into hrefs. */
static bool authority_byte(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' ||
           c == '_' || c == '~';
}

static void check_origin(const char *origin)
{
    const char *p = strstr(origin, "://");
    LFS_FUZZ_CHECK(p != NULL);
    LFS_FUZZ_CHECK((p - origin == 4 && memcmp(origin, "http", 4) == 0) ||
                   (p - origin == 5 && memcmp(origin, "https", 5) == 0));
    p += 3;
    const char *slash = strchr(p, '/');
    size_t alen = slash != NULL ? (size_t)(slash - p) : strlen(p);
    LFS_FUZZ_CHECK(alen > 0);
    for (size_t i = 0; i < alen; i++)
        LFS_FUZZ_CHECK(authority_byte(p[i]));
    if (slash != NULL)
        LFS_FUZZ_CHECK(lfs_segments_valid(slash + 1, strlen(slash + 1)));
}

static void check_range(h2o_iovec_t value, uint64_t size)
{
    uint64_t start = 0, end = 0;
    int rc = lfs_http_parse_range(value, size, &start, &end);
    LFS_FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 1)
        LFS_FUZZ_CHECK(start <= end && end < size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    struct lfs_proxy_fix pf = {.x_proto = data[0] % 4,
                               .x_host = data[1] % 4,
                               .x_port = data[2] % 4,
                               .x_prefix = data[3] % 4,
                               .forwarded = data[4] % 4};
    const char *scheme = data[5] & 1 ? "https" : "http";
    uint64_t object_size = (uint64_t)data[6] << 8 | data[7];
    struct lfs_fuzz_part lines[32];
    size_t n = lfs_fuzz_split(data + 8, size - 8, "\n", 1, lines, 32);

    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_headers_t headers = {0};
    for (size_t i = 1; i < n; i++) {
        const char *colon = memchr(lines[i].base, ':', lines[i].len);
        if (colon == NULL || colon == lines[i].base)
            continue;
        size_t nlen = (size_t)(colon - lines[i].base);
        char *name = h2o_mem_alloc_pool(&pool, nlen);
        for (size_t k = 0; k < nlen; k++) /* h2o hands lfsgate lowercase names */
            name[k] = (char)tolower((unsigned char)lines[i].base[k]);
        const char *v = colon + 1, *end = lines[i].base + lines[i].len;
        while (v < end && *v == ' ')
            v++;
        h2o_add_header_by_str(&pool, &headers, name, nlen, 0, NULL, v, (size_t)(end - v));
        check_range(h2o_iovec_init(v, (size_t)(end - v)), object_size);
    }
    const char *origin = NULL;
    struct lfs_error err = {0};
    if (lfs_http_public_origin(&pool, &pf, scheme, h2o_iovec_init(lines[0].base, lines[0].len),
                               &headers, &origin, &err) == 0)
        check_origin(origin);
    else
        LFS_FUZZ_CHECK(err.status == 400 && err.message[0] != '\0');
    h2o_mem_clear_pool(&pool);
    return 0;
}
