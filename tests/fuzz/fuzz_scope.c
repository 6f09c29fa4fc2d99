/* Fuzz target: the `scopes` claim grammar (auth/scope.c). The input is one scope string,
 * and its lines are also given as a `scopes` list. Properties: a scope that grants something
 * has non-zero permissions and parts that are valid org paths, repositories and oids (or
 * wildcards); one that names exactly one object is re-rendered by lfs_scope_format and parses
 * back to the same grant; the list form grants what the lines grant one by one. */
#include <jansson.h>
#include <string.h>

#include "auth/scope.h"
#include "common/util.h"
#include "fuzz.h"

static bool same_part(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Parses one scope; returns 1 with a checked grant, 0 when it grants nothing. */
static int parse_one(const char *s, size_t len, h2o_mem_pool_t *pool, struct lfs_grant *g)
{
    int rc = lfs_scope_parse(s, len, lfs_scope_pool_alloc, pool, g);
    LFS_FUZZ_CHECK(rc == 0 || rc == 1);
    if (rc == 0)
        return 0;
    LFS_FUZZ_CHECK(g->perms != 0 && (g->perms & ~LFS_PERM_ALL) == 0);
    LFS_FUZZ_CHECK(g->org_path == NULL || lfs_segments_valid(g->org_path, strlen(g->org_path)));
    LFS_FUZZ_CHECK(g->repo == NULL || lfs_segment_valid(g->repo, strlen(g->repo)));
    LFS_FUZZ_CHECK(g->oid == NULL || lfs_oid_valid(g->oid, strlen(g->oid)));
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_grant g;
    if (parse_one((const char *)data, size, &pool, &g) && g.org_path != NULL && g.repo != NULL &&
        g.oid != NULL) {
        char buf[4096];
        struct lfs_error err = {0};
        LFS_FUZZ_CHECK(
            lfs_scope_format(g.org_path, g.repo, g.oid, g.perms, buf, sizeof(buf), &err) == 0);
        struct lfs_grant back;
        LFS_FUZZ_CHECK(parse_one(buf, strlen(buf), &pool, &back) == 1);
        LFS_FUZZ_CHECK(same_part(back.org_path, g.org_path) && same_part(back.repo, g.repo) &&
                       same_part(back.oid, g.oid) && back.perms == g.perms);
    }

    struct lfs_fuzz_part lines[32];
    size_t n = lfs_fuzz_split(data, size, "\n", 1, lines, 32);
    json_t *claim = json_array();
    size_t granting = 0;
    for (size_t i = 0; i < n; i++) {
        char *line = lfs_fuzz_strdup(lines[i]);
        json_t *item = json_string(line); /* NULL when the line is not UTF-8: then skipped */
        if (item != NULL) {
            json_array_append_new(claim, item);
            granting += parse_one(line, strlen(line), &pool, &g);
        }
        free(line);
    }
    struct lfs_grant *grants;
    size_t ngrants;
    struct lfs_error err = {0};
    LFS_FUZZ_CHECK(
        lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &ngrants, &err) == 0);
    LFS_FUZZ_CHECK(ngrants == granting);
    json_decref(claim);
    h2o_mem_clear_pool(&pool);
    return 0;
}
