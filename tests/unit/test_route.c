/* Unit tests for server/route.c (lfs_route_parse): the current form with nested org paths and
 * the ".git" repository suffix, every endpoint (batch, storage/<oid>, storage/verify, locks,
 * healthz), the legacy /<org>/<repo>/... form only while enabled and only with one org
 * segment, and hostile paths (traversal, encoded '/' and NUL, empty/over-long segments, too
 * many segments, bad escapes, bad oids). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "server/route.h"

#define OID "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

static struct lfs_route route;
static struct lfs_error err;

/* Parses `path`; returns the status (0 on success). */
static int parse(const char *path, bool legacy)
{
    memset(&err, 0, sizeof(err));
    memset(&route, 0x5a, sizeof(route));
    int rc = lfs_route_parse(path, strlen(path), legacy, &route, &err);
    if (rc == 0) {
        assert_int_equal(err.status, 0);
        return 0;
    }
    assert_int_equal(rc, -1);
    assert_true(err.status == 400 || err.status == 404);
    assert_true(err.message[0] != '\0');
    return err.status;
}

static void test_batch_current_form(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/batch", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
    assert_false(route.legacy);
    assert_string_equal(route.org_path, "org");
    assert_string_equal(route.repo, "repo");
    assert_string_equal(route.oid, "");
    assert_string_equal(route.locks_rest, "");
}

static void test_nested_org_path(void **state)
{
    (void)state;
    assert_int_equal(parse("/a/b/c/repo.git/info/lfs/objects/batch", true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
    assert_false(route.legacy);
    assert_string_equal(route.org_path, "a/b/c");
    assert_string_equal(route.repo, "repo");

    assert_int_equal(parse("/group/sub-group/my.repo.git/info/lfs/objects/storage/" OID, false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_OBJECT);
    assert_string_equal(route.org_path, "group/sub-group");
    assert_string_equal(route.repo, "my.repo");
    assert_string_equal(route.oid, OID);
}

static void test_git_suffix(void **state)
{
    (void)state;
    /* only the last ".git" is stripped */
    assert_int_equal(parse("/org/repo.git.git/info/lfs/objects/batch", false), 0);
    assert_string_equal(route.repo, "repo.git");
    /* a repo without ".git" is not the current form */
    assert_int_equal(parse("/org/repo/info/lfs/objects/batch", false), 404);
    /* the org path is required */
    assert_int_equal(parse("/repo.git/info/lfs/objects/batch", false), 404);
    assert_int_equal(parse("/repo.git/info/lfs/objects/batch", true), 404);
    /* ".git" alone is no repository name; "..git" / "...git" would be "." / ".." */
    assert_int_equal(parse("/org/.git/info/lfs/objects/batch", false), 404);
    assert_int_equal(parse("/org/..git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/...git/info/lfs/objects/batch", false), 400);
    /* an org segment named like a repo but not followed by info/lfs stays in the org path */
    assert_int_equal(parse("/x.git/repo.git/info/lfs/objects/batch", false), 0);
    assert_string_equal(route.org_path, "x.git");
    assert_string_equal(route.repo, "repo");
}

static void test_storage_and_verify(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/" OID, false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_OBJECT);
    assert_string_equal(route.oid, OID);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/verify", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_VERIFY);
    assert_string_equal(route.oid, "");
    assert_string_equal(route.repo, "repo");
    /* unknown or incomplete endpoints */
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/batch/x", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/" OID "/x", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/upload", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/Batch", false), 404);
}

static void test_invalid_oid(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/"
                           "2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE",
                           false),
                     404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/"
                           "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a",
                           false),
                     404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/" OID "0", false), 404);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/"
                           "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ag",
                           false),
                     404);
}

static void test_locks(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo.git/info/lfs/locks", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_LOCKS);
    assert_string_equal(route.locks_rest, "");
    assert_string_equal(route.repo, "repo");
    assert_int_equal(parse("/a/b/repo.git/info/lfs/locks/verify", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_LOCKS);
    assert_string_equal(route.locks_rest, "/verify");
    assert_string_equal(route.org_path, "a/b");
    assert_int_equal(parse("/org/repo.git/info/lfs/locks/42/unlock", false), 0);
    assert_string_equal(route.locks_rest, "/42/unlock");
    assert_int_equal(parse("/org/repo.git/info/lfs/locks/42/unlock/x", false), 404);
    /* legacy locks */
    assert_int_equal(parse("/org/repo/locks/verify", true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_LOCKS);
    assert_true(route.legacy);
    assert_string_equal(route.locks_rest, "/verify");
    assert_int_equal(parse("/org/repo/locks/verify", false), 404);
}

static void test_healthz(void **state)
{
    (void)state;
    assert_int_equal(parse("/healthz", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_HEALTH);
    assert_int_equal(parse("/healthz", true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_HEALTH);
    assert_int_equal(parse("/healthz/", false), 400);
    assert_int_equal(parse("/healthz/x", false), 404);
    assert_int_equal(parse("/healthzz", false), 404);
    assert_int_equal(parse("/", false), 400);
    assert_int_equal(parse("", false), 400);
    assert_int_equal(parse("healthz", false), 400);
}

static void test_legacy_enabled(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo/objects/batch", true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
    assert_true(route.legacy);
    assert_string_equal(route.org_path, "org");
    assert_string_equal(route.repo, "repo");
    assert_int_equal(parse("/org/repo/objects/storage/" OID, true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_OBJECT);
    assert_true(route.legacy);
    assert_string_equal(route.oid, OID);
    assert_int_equal(parse("/org/repo/objects/storage/verify", true), 0);
    assert_int_equal(route.kind, LFS_ROUTE_VERIFY);
    assert_true(route.legacy);
    /* the current form is never legacy */
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/batch", true), 0);
    assert_false(route.legacy);
    /* legacy form, bad rest */
    assert_int_equal(parse("/org/repo/objects/nope", true), 404);
    assert_int_equal(parse("/org/repo/objects", true), 404);
}

static void test_legacy_disabled(void **state)
{
    (void)state;
    assert_int_equal(parse("/org/repo/objects/batch", false), 404);
    assert_int_equal(parse("/org/repo/objects/storage/" OID, false), 404);
    assert_int_equal(parse("/org/repo/objects/storage/verify", false), 404);
}

static void test_legacy_nested_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse("/a/b/repo/objects/batch", true), 404);
    assert_int_equal(parse("/a/b/c/repo/objects/storage/" OID, true), 404);
    assert_int_equal(parse("/org/objects/batch", true), 404);
    assert_int_equal(parse("/objects/batch", true), 404);
}

static void test_hostile_traversal(void **state)
{
    (void)state;
    assert_int_equal(parse("/../repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/../repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/./repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/./repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/%2e%2e/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/%2E%2E/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/%2e/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/.%2e/objects/batch", true), 400);
    assert_int_equal(parse("/../../etc/objects/batch", true), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/..", false), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/../../../etc/passwd", false), 400);
}

static void test_hostile_encoded(void **state)
{
    (void)state;
    /* an encoded '/' may not split or join segments */
    assert_int_equal(parse("/a%2Fb/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/a%2fb/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/re%2Fpo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org%2F..%2F..%2Fetc/repo/objects/batch", true), 400);
    /* encoded NUL and other control/odd bytes */
    assert_int_equal(parse("/org%00/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/repo%00.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/storage/" OID "%00", false), 400);
    assert_int_equal(parse("/org%5Cx/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org%20x/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org x/repo.git/info/lfs/objects/batch", false), 400);
    /* bad escapes */
    assert_int_equal(parse("/org%/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org%4/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org%zz/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/batch%", false), 400);
    /* a valid escape of an allowed character is decoded */
    assert_int_equal(parse("/o%72g/re%2Dpo.git/info/lfs/objects/batch", false), 0);
    assert_string_equal(route.org_path, "org");
    assert_string_equal(route.repo, "re-po");
    /* a decoded route keyword still routes */
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/b%61tch", false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
}

static void test_hostile_shape(void **state)
{
    (void)state;
    /* empty segments and trailing slashes */
    assert_int_equal(parse("//org/repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org//repo.git/info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/repo.git//info/lfs/objects/batch", false), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/objects/batch/", false), 400);
    assert_int_equal(parse("/org/repo/objects/batch/", true), 400);
    assert_int_equal(parse("/org/repo.git/info/lfs/locks/", false), 400);
    /* no leading slash */
    assert_int_equal(parse("org/repo.git/info/lfs/objects/batch", false), 400);
}

static void test_overlong_segment(void **state)
{
    (void)state;
    char path[1024], seg[300];
    memset(seg, 'a', sizeof(seg));
    /* 255 characters is the longest allowed name */
    seg[255] = '\0';
    snprintf(path, sizeof(path), "/%s/repo.git/info/lfs/objects/batch", seg);
    assert_int_equal(parse(path, false), 0);
    assert_string_equal(route.org_path, seg);
    snprintf(path, sizeof(path), "/org/%s/objects/batch", seg);
    assert_int_equal(parse(path, true), 0);
    assert_string_equal(route.repo, seg);
    /* 256 is too long, as an org segment or as a repo */
    seg[255] = 'a';
    seg[256] = '\0';
    snprintf(path, sizeof(path), "/%s/repo.git/info/lfs/objects/batch", seg);
    assert_int_equal(parse(path, false), 400);
    snprintf(path, sizeof(path), "/org/%s/objects/batch", seg);
    assert_int_equal(parse(path, true), 400);
    /* "<251 chars>.git" is fine (repo of 251), "<252>.git" is a 256-byte segment */
    memset(seg, 'r', sizeof(seg));
    memcpy(seg + 251, ".git", 5);
    snprintf(path, sizeof(path), "/org/%s/info/lfs/objects/batch", seg);
    assert_int_equal(parse(path, false), 0);
    assert_int_equal(strlen(route.repo), 251);
    memset(seg, 'r', sizeof(seg));
    memcpy(seg + 252, ".git", 5);
    snprintf(path, sizeof(path), "/org/%s/info/lfs/objects/batch", seg);
    assert_int_equal(parse(path, false), 400);
}

static void test_too_many_segments(void **state)
{
    (void)state;
    char path[4096];
    size_t used = 0;
    /* 60 org segments + repo + info/lfs/objects/batch = 65 segments */
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/o%d", i);
    snprintf(path + used, sizeof(path) - used, "/repo.git/info/lfs/objects/batch");
    assert_int_equal(parse(path, false), 400);
    /* 59 org segments: 64 segments, allowed */
    used = 0;
    for (int i = 0; i < 59; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/o%d", i);
    snprintf(path + used, sizeof(path) - used, "/repo.git/info/lfs/objects/batch");
    assert_int_equal(parse(path, false), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
    assert_true(strncmp(route.org_path, "o0/o1/o2/", 9) == 0);
    /* a very long path of many empty segments is refused, not overflowed */
    memset(path, '/', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(parse(path, false), 400);
}

static void test_org_path_too_long(void **state)
{
    (void)state;
    /* 10 org segments of 250 characters: 2509 bytes joined, over LFS_ROUTE_PATH_MAX */
    char path[4096], seg[251];
    memset(seg, 'o', 250);
    seg[250] = '\0';
    size_t used = 0;
    for (int i = 0; i < 10; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/%s", seg);
    snprintf(path + used, sizeof(path) - used, "/repo.git/info/lfs/objects/batch");
    assert_int_equal(parse(path, false), 400);
    /* 8 of them (2007 bytes) fit */
    used = 0;
    for (int i = 0; i < 8; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/%s", seg);
    snprintf(path + used, sizeof(path) - used, "/repo.git/info/lfs/objects/batch");
    assert_int_equal(parse(path, false), 0);
    assert_int_equal(strlen(route.org_path), 8 * 250 + 7);
}

static void test_length_is_respected(void **state)
{
    (void)state;
    /* `len` excludes the query string: what follows is never looked at */
    const char *p = "/org/repo.git/info/lfs/objects/batch?x=/../..";
    memset(&err, 0, sizeof(err));
    assert_int_equal(lfs_route_parse(p, strlen(p) - 9, false, &route, &err), 0);
    assert_int_equal(route.kind, LFS_ROUTE_BATCH);
    p = "/healthz?probe=1";
    assert_int_equal(lfs_route_parse(p, 8, false, &route, &err), 0);
    assert_int_equal(route.kind, LFS_ROUTE_HEALTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_current_form),
        cmocka_unit_test(test_nested_org_path),
        cmocka_unit_test(test_git_suffix),
        cmocka_unit_test(test_storage_and_verify),
        cmocka_unit_test(test_invalid_oid),
        cmocka_unit_test(test_locks),
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_legacy_enabled),
        cmocka_unit_test(test_legacy_disabled),
        cmocka_unit_test(test_legacy_nested_rejected),
        cmocka_unit_test(test_hostile_traversal),
        cmocka_unit_test(test_hostile_encoded),
        cmocka_unit_test(test_hostile_shape),
        cmocka_unit_test(test_overlong_segment),
        cmocka_unit_test(test_too_many_segments),
        cmocka_unit_test(test_org_path_too_long),
        cmocka_unit_test(test_length_is_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
