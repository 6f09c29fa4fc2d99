/* Unit tests of the scope grammar (auth/scope.c) and of permission checks on the grants it
 * produces (auth/identity.c): giftless's forms, nested org paths, subscopes and actions, the
 * fail-closed cases, the claim shapes and the scope lfsgate writes into action tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/scope.h"

#define OID "6adada03e86b154be00e25f288fcadc27aef06c47f12f88e3e1985c502803d1b"
#define OID2 "0000000000000000000000000000000000000000000000000000000000000001"

static h2o_mem_pool_t pool;

static int setup(void **state)
{
    (void)state;
    h2o_mem_init_pool(&pool);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h2o_mem_clear_pool(&pool);
    return 0;
}

/* Parses s; returns what lfs_scope_parse returned. */
static int parse(const char *s, struct lfs_grant *g)
{
    memset(g, 0xa5, sizeof(*g));
    return lfs_scope_parse(s, strlen(s), lfs_scope_pool_alloc, &pool, g);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_non_null(got), assert_string_equal(got, want);
}

static void expect_grant(const char *scope, const char *org, const char *repo, const char *oid,
                         unsigned perms)
{
    struct lfs_grant g;
    assert_int_equal(parse(scope, &g), 1);
    assert_str_or_null(g.org_path, org);
    assert_str_or_null(g.repo, repo);
    assert_str_or_null(g.oid, oid);
    assert_int_equal(g.perms, perms);
    assert_false(g.action_token);
}

static void expect_nothing(const char *scope)
{
    struct lfs_grant g;
    assert_int_equal(parse(scope, &g), 0);
}

#define RRM (LFS_PERM_READ | LFS_PERM_READ_META)

static void test_giftless_forms(void **state)
{
    (void)state;
    expect_grant("obj:datopian/somerepo/" OID ":read", "datopian", "somerepo", OID, RRM);
    expect_grant("obj:datopian/my-repo/*", "datopian", "my-repo", NULL, LFS_PERM_ALL);
    expect_grant("obj:datopian/*:read", "datopian", NULL, NULL, RRM);
    expect_grant("obj:datopian/my-repo:meta:verify", "datopian", "my-repo", NULL,
                 LFS_PERM_READ_META);
    expect_grant("obj:" OID ":read", NULL, NULL, OID, RRM); /* bare oid */
    expect_grant("obj:datopian/my-repo", "datopian", "my-repo", NULL, LFS_PERM_ALL);
    expect_grant("obj:*", NULL, NULL, NULL, LFS_PERM_ALL);
    expect_grant("obj", NULL, NULL, NULL, LFS_PERM_ALL);
    expect_grant("obj:*:*", NULL, NULL, NULL, LFS_PERM_ALL);
    expect_grant("obj:*/*/*:write", NULL, NULL, NULL, LFS_PERM_WRITE);
    expect_grant("obj:*/repo:read", NULL, "repo", NULL, RRM);
}

static void test_nested_org_paths(void **state)
{
    (void)state;
    expect_grant("obj:a/b/repo/" OID ":write", "a/b", "repo", OID, LFS_PERM_WRITE);
    expect_grant("obj:a/b/c/repo/*:read", "a/b/c", "repo", NULL, RRM);
    expect_grant("obj:a/b/repo:read", "a/b", "repo", NULL, RRM);
    /* giftless's reading of three parts ending in a wildcard is kept: org a, repo b */
    expect_grant("obj:a/b/*:read", "a", "b", NULL, RRM);
    /* every repository of org path a/b */
    expect_grant("obj:a/b/*/*:read", "a/b", NULL, NULL, RRM);
    expect_grant("obj:a/*/*", "a", NULL, NULL, LFS_PERM_ALL);
    /* an uppercase "oid" is not an oid: it is the repository */
    expect_grant("obj:a/b/6ADADA03E86B154BE00E25F288FCADC27AEF06C47F12F88E3E1985C502803D1B", "a/b",
                 "6ADADA03E86B154BE00E25F288FCADC27AEF06C47F12F88E3E1985C502803D1B", NULL,
                 LFS_PERM_ALL);
    /* two parts are always org/repo, even when the second looks like an oid (giftless) */
    expect_grant("obj:a/" OID, "a", OID, NULL, LFS_PERM_ALL);
    /* a wildcard inside a longer org path, empty parts, bad characters: nothing */
    expect_nothing("obj:a/*/repo/" OID);
    expect_nothing("obj:a//repo");
    expect_nothing("obj:/repo");
    expect_nothing("obj:org/");
    expect_nothing("obj:a/b/../" OID);
    expect_nothing("obj:a b/repo");
    expect_nothing("obj:org"); /* one part that is not an oid names nothing */
    expect_nothing("obj::read");
}

static void test_actions_and_subscopes(void **state)
{
    (void)state;
    expect_grant("obj:o/r/*:write", "o", "r", NULL, LFS_PERM_WRITE);
    expect_grant("obj:o/r/*:verify", "o", "r", NULL, LFS_PERM_READ_META);
    expect_grant("obj:o/r/*:read,write", "o", "r", NULL, LFS_PERM_ALL);
    expect_grant("obj:o/r/*:verify,write", "o", "r", NULL, LFS_PERM_READ_META | LFS_PERM_WRITE);
    expect_grant("obj:o/r/*:*", "o", "r", NULL, LFS_PERM_ALL);
    expect_grant("obj:o/r/*:read,delete", "o", "r", NULL, RRM); /* unknown action ignored */
    expect_grant("obj:o/r:metadata:read", "o", "r", NULL, LFS_PERM_READ_META);
    expect_grant("obj:o/r:meta:*", "o", "r", NULL, LFS_PERM_READ_META);
    expect_grant("obj:o/r:*:write", "o", "r", NULL, LFS_PERM_WRITE);
    expect_nothing("obj:o/r:meta"); /* three parts: "meta" is the action list */
}

static void test_fail_closed(void **state)
{
    (void)state;
    expect_nothing("obj:o/r/*:delete");        /* no known action */
    expect_nothing("obj:o/r/*:");              /* empty actions (giftless: everything) */
    expect_nothing("obj:o/r:meta:write");      /* metadata subscope without read-meta */
    expect_nothing("obj:o/r:data:read");       /* unknown subscope (giftless ignores it) */
    expect_nothing("obj:o/r:meta:read:extra"); /* too many parts (giftless: everything) */
    expect_nothing("repo:o/r:read");           /* other scope types */
    expect_nothing("");
    expect_nothing("OBJ:o/r:read");
}

static void test_claim_shapes(void **state)
{
    (void)state;
    struct lfs_grant *grants;
    size_t n;
    struct lfs_error err = {0};

    json_t *claim = json_string("obj:o/r/*:read");
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(grants[0].repo, "r");
    json_decref(claim);

    claim = json_pack("[s, s, s, s]", "obj:o/r/*:read", "repo:x:read", "obj:o/r2:write",
                      "obj:a/b/r/" OID ":verify");
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(grants[1].repo, "r2");
    assert_int_equal(grants[1].perms, LFS_PERM_WRITE);
    assert_string_equal(grants[2].org_path, "a/b");
    assert_string_equal(grants[2].oid, OID);
    json_decref(claim);

    assert_int_equal(lfs_scope_parse_claim(NULL, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_null(grants);
    claim = json_array();
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     0);
    assert_int_equal(n, 0);
    json_decref(claim);

    claim = json_pack("[s, i]", "obj:o/r", 3);
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     -1);
    assert_int_equal(err.status, 401);
    assert_non_null(strstr(err.message, "scopes"));
    json_decref(claim);
    claim = json_integer(1);
    err = (struct lfs_error){0};
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     -1);
    assert_int_equal(err.status, 401);
    json_decref(claim);
}

static void test_format_round_trip(void **state)
{
    (void)state;
    char buf[512];
    struct lfs_error err = {0};
    struct lfs_grant g;
    assert_int_equal(lfs_scope_format("a/b", "repo", OID, LFS_PERM_WRITE, buf, sizeof(buf), &err),
                     0);
    assert_string_equal(buf, "obj:a/b/repo/" OID ":write");
    assert_int_equal(parse(buf, &g), 1);
    assert_string_equal(g.org_path, "a/b");
    assert_string_equal(g.repo, "repo");
    assert_string_equal(g.oid, OID);
    assert_int_equal(g.perms, LFS_PERM_WRITE);

    assert_int_equal(lfs_scope_format("o", "r", OID, LFS_PERM_READ, buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "obj:o/r/" OID ":read");
    assert_int_equal(lfs_scope_format("o", "r", OID, LFS_PERM_READ_META, buf, sizeof(buf), &err),
                     0);
    assert_string_equal(buf, "obj:o/r/" OID ":verify");
    assert_int_equal(parse(buf, &g), 1);
    assert_int_equal(g.perms, LFS_PERM_READ_META);

    /* anything that would not parse back to exactly one object is refused */
    assert_int_equal(lfs_scope_format("o", "r", "*", LFS_PERM_READ, buf, sizeof(buf), &err), -1);
    assert_int_equal(lfs_scope_format("o", "*", OID, LFS_PERM_READ, buf, sizeof(buf), &err), -1);
    assert_int_equal(lfs_scope_format("o:x", "r", OID, LFS_PERM_READ, buf, sizeof(buf), &err), -1);
    assert_int_equal(lfs_scope_format("o", "r", NULL, LFS_PERM_READ, buf, sizeof(buf), &err), -1);
    assert_int_equal(lfs_scope_format("o", "r", OID, 0, buf, sizeof(buf), &err), -1);
    assert_int_equal(lfs_scope_format("o", "r", OID, LFS_PERM_READ, buf, 20, &err), -1);
    assert_int_equal(err.status, 500);
}

static struct lfs_identity identity_of(const char *scopes_json)
{
    json_t *claim = json_loads(scopes_json, JSON_DECODE_ANY, NULL);
    struct lfs_grant *grants;
    size_t n;
    struct lfs_error err = {0};
    assert_non_null(claim);
    assert_int_equal(lfs_scope_parse_claim(claim, lfs_scope_pool_alloc, &pool, &grants, &n, &err),
                     0);
    json_decref(claim);
    return (struct lfs_identity){.id = "u", .name = "u", .grants = grants, .ngrants = n};
}

static void test_permissions(void **state)
{
    (void)state;
    struct lfs_identity id = identity_of("\"obj:org/*:read\"");
    assert_true(lfs_identity_allows(&id, "org", "any", OID, LFS_PERM_READ));
    assert_true(lfs_identity_allows(&id, "org", "any", NULL, LFS_PERM_READ));
    assert_true(lfs_identity_allows(&id, "org", "any", OID, LFS_PERM_READ_META)); /* verify */
    assert_false(lfs_identity_allows(&id, "org", "any", OID, LFS_PERM_WRITE));    /* read-only */
    assert_false(lfs_identity_allows(&id, "org/sub", "any", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "other", "any", OID, LFS_PERM_READ));

    id = identity_of("[\"obj:a/b/repo/*:write\", \"obj:a/b/repo:meta:verify\"]");
    assert_true(lfs_identity_allows(&id, "a/b", "repo", NULL, LFS_PERM_WRITE));
    assert_true(lfs_identity_allows(&id, "a/b", "repo", OID, LFS_PERM_READ_META));
    assert_false(lfs_identity_allows(&id, "a/b", "repo", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "a", "b", OID, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a/b", "other", OID, LFS_PERM_WRITE));

    /* a grant on one object does not answer a repository-wide question */
    id = identity_of("\"obj:o/r/" OID ":read\"");
    assert_true(lfs_identity_allows(&id, "o", "r", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "o", "r", OID2, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "o", "r", NULL, LFS_PERM_READ));
    assert_false(lfs_identity_is_action_token(&id));

    /* grants add up */
    id = identity_of("[\"obj:o/r/*:read\", \"obj:o/*:write\"]");
    assert_true(lfs_identity_allows(&id, "o", "r", OID, LFS_PERM_READ));
    assert_true(lfs_identity_allows(&id, "o", "r", OID, LFS_PERM_WRITE));

    /* no scopes: authenticated, allowed nothing */
    id = identity_of("[]");
    assert_false(lfs_identity_allows(&id, "o", "r", OID, LFS_PERM_READ_META));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_giftless_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_org_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions_and_subscopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
