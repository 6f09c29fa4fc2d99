/* Path routing. Paths look like /<org_path>/<repo>.git/info/lfs/<rest>, where org_path may
 * have several segments (GitLab-style groups); the first segment ending in ".git" that is
 * followed by "info/lfs" ends the repository name. The legacy giftless form
 * /<org>/<repo>/<rest> has exactly one org segment. Segments are percent-decoded one by one
 * and validated after decoding, so "%2e%2e" and "%2F" cannot smuggle "..", "/" or NUL. */
#include "server/route.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define MAX_SEGMENTS 64

struct segment {
    char text[256];
    size_t len;
};

/* Splits and decodes; -1 on an empty, undecodable or invalid segment. */
static int split(const char *path, size_t len, struct segment *segs, size_t *n,
                 struct lfs_error *err)
{
    if (len == 0 || path[0] != '/')
        return lfs_error_set(err, 400, "request path must start with \"/\"");
    *n = 0;
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        size_t slen = i - start;
        if (*n == MAX_SEGMENTS)
            return lfs_error_set(err, 400, "request path has too many segments");
        if (slen == 0 || slen >= sizeof(segs[0].text))
            return lfs_error_set(err, 400, "request path has an empty or over-long segment");
        struct segment *s = &segs[*n];
        s->len = lfs_url_decode(path + start, slen, s->text);
        if (s->len == (size_t)-1 || !lfs_segment_valid(s->text, s->len))
            return lfs_error_set(err, 400,
                                 "invalid path segment: names may use letters, digits and "
                                 "\"._~@+-\", and may not be \".\" or \"..\"");
        (*n)++;
        start = i + 1;
    }
    return 0;
}

static bool is(const struct segment *s, const char *text)
{
    return strcmp(s->text, text) == 0;
}

/* Routes what follows the repository: objects/batch, objects/storage/<oid|verify>, locks... */
static int route_rest(const struct segment *rest, size_t n, struct lfs_route *out,
                      struct lfs_error *err)
{
    if (n == 2 && is(&rest[0], "objects") && is(&rest[1], "batch")) {
        out->kind = LFS_ROUTE_BATCH;
        return 0;
    }
    if (n == 3 && is(&rest[0], "objects") && is(&rest[1], "storage")) {
        if (is(&rest[2], "verify")) {
            out->kind = LFS_ROUTE_VERIFY;
            return 0;
        }
        if (!lfs_oid_valid(rest[2].text, rest[2].len))
            return lfs_error_set(err, 404, "not an object id: expected 64 lowercase hex digits");
        out->kind = LFS_ROUTE_OBJECT;
        memcpy(out->oid, rest[2].text, 65);
        return 0;
    }
    if (n >= 1 && n <= 3 && is(&rest[0], "locks")) {
        out->kind = LFS_ROUTE_LOCKS;
        size_t used = 0;
        for (size_t i = 1; i < n; i++)
            used += (size_t)snprintf(out->locks_rest + used, sizeof(out->locks_rest) - used, "/%s",
                                     rest[i].text);
        return 0;
    }
    return lfs_error_set(err, 404, "no such endpoint");
}

static int join(const struct segment *segs, size_t n, char *buf, size_t size, struct lfs_error *err)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (used + segs[i].len + 2 > size)
            return lfs_error_set(err, 400, "organisation path too long");
        if (i > 0)
            buf[used++] = '/';
        memcpy(buf + used, segs[i].text, segs[i].len);
        used += segs[i].len;
    }
    buf[used] = '\0';
    return 0;
}

int lfs_route_parse(const char *path, size_t len, bool legacy_endpoints, struct lfs_route *out,
                    struct lfs_error *err)
{
    memset(out, 0, sizeof(*out));
    static const struct {
        const char *path;
        enum lfs_route_kind kind;
    } fixed[] = {{"/healthz", LFS_ROUTE_HEALTH},
                 {"/readyz", LFS_ROUTE_READY},
                 {"/metrics", LFS_ROUTE_METRICS}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (len == strlen(fixed[i].path) && memcmp(path, fixed[i].path, len) == 0) {
            out->kind = fixed[i].kind;
            return 0;
        }
    struct segment segs[MAX_SEGMENTS];
    size_t n = 0;
    if (split(path, len, segs, &n, err) < 0)
        return -1;
    for (size_t k = 1; k + 2 < n; k++) {
        size_t rl = segs[k].len;
        if (rl > 4 && memcmp(segs[k].text + rl - 4, ".git", 4) == 0 && is(&segs[k + 1], "info") &&
            is(&segs[k + 2], "lfs")) {
            if (join(segs, k, out->org_path, sizeof(out->org_path), err) < 0)
                return -1;
            memcpy(out->repo, segs[k].text, rl - 4);
            out->repo[rl - 4] = '\0';
            if (!lfs_segment_valid(out->repo, rl - 4))
                return lfs_error_set(err, 400, "invalid repository name");
            return route_rest(&segs[k + 3], n - k - 3, out, err);
        }
    }
    if (legacy_endpoints && n >= 3 && (is(&segs[2], "objects") || is(&segs[2], "locks"))) {
        out->legacy = true;
        memcpy(out->org_path, segs[0].text, segs[0].len + 1);
        memcpy(out->repo, segs[1].text, segs[1].len + 1);
        return route_rest(&segs[2], n - 2, out, err);
    }
    return lfs_error_set(err, 404,
                         "no such endpoint: LFS URLs look like "
                         "/<organization>/<repository>.git/info/lfs/objects/batch");
}
