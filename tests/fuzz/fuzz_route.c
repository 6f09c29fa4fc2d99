/* Fuzz target: the router (server/route.c), the only gate between request paths and storage
 * keys. The first byte turns the legacy /<org>/<repo>/... routes on ('1') or off; the rest is
 * the path. Properties: a refusal is a 400 or 404 with a message; an accepted route's org
 * path, repository and oid are valid (lfs_segments_valid, lfs_segment_valid, lfs_oid_valid);
 * and the route re-rendered as a canonical path parses to the same route. */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "fuzz.h"
#include "server/route.h"

/* The canonical path of an accepted repository route, in buf. */
static void render(const struct lfs_route *r, char *buf, size_t size)
{
    const char *rest = "";
    char locks[300];
    switch (r->kind) {
    case LFS_ROUTE_BATCH: rest = "objects/batch"; break;
    case LFS_ROUTE_VERIFY: rest = "objects/storage/verify"; break;
    case LFS_ROUTE_OBJECT: rest = NULL; break;
    case LFS_ROUTE_LOCKS:
        snprintf(locks, sizeof(locks), "locks%s", r->locks_rest);
        rest = locks;
        break;
    default: break;
    }
    if (r->legacy)
        snprintf(buf, size, "/%s/%s/%s%s", r->org_path, r->repo, rest ? rest : "objects/storage/",
                 rest ? "" : r->oid);
    else
        snprintf(buf, size, "/%s/%s.git/info/lfs/%s%s", r->org_path, r->repo,
                 rest ? rest : "objects/storage/", rest ? "" : r->oid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool legacy = data[0] == '1';
    const char *path = (const char *)data + 1;
    size_t len = size - 1;
    static struct lfs_route route, again;
    struct lfs_error err = {0};
    if (lfs_route_parse(path, len, legacy, &route, &err) < 0) {
        LFS_FUZZ_CHECK((err.status == 400 || err.status == 404) && err.message[0] != '\0');
        return 0;
    }
    if (route.kind == LFS_ROUTE_HEALTH || route.kind == LFS_ROUTE_READY ||
        route.kind == LFS_ROUTE_METRICS)
        return 0;
    LFS_FUZZ_CHECK(lfs_segments_valid(route.org_path, strlen(route.org_path)));
    LFS_FUZZ_CHECK(lfs_segment_valid(route.repo, strlen(route.repo)));
    if (route.kind == LFS_ROUTE_OBJECT)
        LFS_FUZZ_CHECK(lfs_oid_valid(route.oid, strlen(route.oid)));
    static char buf[LFS_ROUTE_PATH_MAX + 1024];
    render(&route, buf, sizeof(buf));
    LFS_FUZZ_CHECK(lfs_route_parse(buf, strlen(buf), legacy, &again, &err) == 0);
    LFS_FUZZ_CHECK(again.kind == route.kind && again.legacy == route.legacy);
    LFS_FUZZ_CHECK(strcmp(again.org_path, route.org_path) == 0);
    LFS_FUZZ_CHECK(strcmp(again.repo, route.repo) == 0);
    LFS_FUZZ_CHECK(strcmp(again.oid, route.oid) == 0);
    LFS_FUZZ_CHECK(strcmp(again.locks_rest, route.locks_rest) == 0);
    return 0;
}
