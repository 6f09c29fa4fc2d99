/* Unit tests of the github auth provider's synchronous side (auth/github.c): options and their
 * key-path errors, which credentials it takes and which it leaves to other providers, the
 * refusals it makes before any API call (nested org paths, restrict_to), and that it asks
 * for a wait rather than blocking. The API calls themselves are exercised end to end against
 * the stand-in in tests/e2e/test_github.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "config/config.h"

#define OPTS_PATH "AUTH_PROVIDERS[0].options"

static h2o_mem_pool_t pool;

static struct lfs_auth *create_ok(const char *yaml)
{
    json_t *opts = NULL;
    struct lfs_error err = {0};
    if (yaml != NULL)
        assert_int_equal(lfs_config_parse_yaml(yaml, strlen(yaml), "test", &opts, &err), 0);
    struct lfs_auth *auth = NULL;
    int rc = lfs_auth_github_ops.create(opts, OPTS_PATH, &auth, &err);
    if (rc != 0)
        fail_msg("create failed: %s", err.message);
    json_decref(opts);
    return auth;
}

static void create_fails(const char *yaml, const char *expected)
{
    json_t *opts = NULL;
    struct lfs_error err = {0};
    assert_int_equal(lfs_config_parse_yaml(yaml, strlen(yaml), "test", &opts, &err), 0);
    struct lfs_auth *auth = NULL;
    assert_int_equal(lfs_auth_github_ops.create(opts, OPTS_PATH, &auth, &err), -1);
    if (strstr(err.message, expected) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", expected, err.message);
    json_decref(opts);
}

/* Runs authenticate with one Authorization value on org/repo and no way to wait. */
static int run(struct lfs_auth *auth, const char *header, const char *org, const char *repo,
               struct lfs_auth_wait *wait, struct lfs_error *err)
{
    h2o_iovec_t v = h2o_iovec_init(header, strlen(header));
    struct lfs_auth_request req = {
        .authorization = &v,
        .nauthorization = 1,
        .now = 1700000000,
        .org_path = org,
        .repo = repo,
        .wait = wait,
    };
    struct lfs_identity id = {0};
    return auth->ops->authenticate(auth, &req, &pool, &id, err);
}

static void test_factory_names(void **state)
{
    (void)state;
    assert_ptr_equal(lfs_auth_find("giftless.auth.github:factory"), &lfs_auth_github_ops);
    assert_ptr_equal(lfs_auth_find("github"), &lfs_auth_github_ops);
}

static void test_options(void **state)
{
    (void)state;
    struct lfs_auth *a = create_ok(NULL);
    a->ops->destroy(a);
    a = create_ok("{api_url: 'https://ghe.example/api/v3/', api_version: null, api_timeout: 3, "
                  "restrict_to: {acme: [data], open: null}, "
                  "cache: {token_max_size: 4, auth_max_size: 8, auth_write_ttl: 60, "
                  "auth_other_ttl: 5}}");
    a->ops->destroy(a);
    /* giftless's ranges: sizes and TTLs of 0, fractional TTLs, older giftless's
     * user_max_size */
    a = create_ok("{cache: {token_max_size: 0, auth_max_size: 0, auth_write_ttl: 0.5, "
                  "auth_other_ttl: 0, user_max_size: 8}}");
    a->ops->destroy(a);
    create_fails("{api_url: ftp://x}", OPTS_PATH ".api_url: expected an http(s) URL");
    create_fails("{api_url: 'https:///'}", OPTS_PATH ".api_url: expected an http(s) URL");
    create_fails("{api_timeout: [1, 2, 3]}", OPTS_PATH ".api_timeout: expected seconds");
    create_fails("{api_timeout: 0}", OPTS_PATH ".api_timeout: expected a total");
    create_fails("{restrict_to: [acme]}", OPTS_PATH ".restrict_to: expected a mapping");
    create_fails("{restrict_to: {acme: data}}", OPTS_PATH ".restrict_to.acme: expected a list");
    create_fails("{restrict_to: {acme: [1]}}", OPTS_PATH ".restrict_to.acme[0]: expected a "
                                                         "repository name");
    create_fails("{cache: {auth_ttl: 3}}", OPTS_PATH ".cache.auth_ttl: unknown key");
    create_fails("{cache: {auth_write_ttl: -1}}",
                 OPTS_PATH ".cache.auth_write_ttl: expected seconds");
    create_fails("{cache: {auth_other_ttl: soon}}",
                 OPTS_PATH ".cache.auth_other_ttl: expected seconds");
    create_fails("{cache: {auth_max_size: -1}}", OPTS_PATH ".cache.auth_max_size");
    create_fails("{api_version: 'a b'}", OPTS_PATH ".api_version: expected a version");
    create_fails("{token: x}", OPTS_PATH ".token: unknown key");
}

/* What is not a GitHub token is left to the next provider (0), before anything else. */
static void test_not_ours(void **state)
{
    (void)state;
    struct lfs_auth *a = create_ok(NULL);
    struct lfs_error err = {0};
    assert_int_equal(run(a, "", "acme", "data", NULL, &err), 0);
    assert_int_equal(run(a, "Digest abc", "acme", "data", NULL, &err), 0);
    assert_int_equal(
        run(a, "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "acme", "data", NULL, &err), 0);
    /* Basic _jwt:<token> is the jwt provider's: "_jwt:ghp_x" */
    assert_int_equal(run(a, "Basic X2p3dDpnaHBfeA==", "acme", "data", NULL, &err), 0);
    /* Basic without a colon */
    assert_int_equal(run(a, "Basic bm9jb2xvbg==", "acme", "data", NULL, &err), 0);
    a->ops->destroy(a);
}

static void test_refusals_before_any_call(void **state)
{
    (void)state;
    struct lfs_auth *a = create_ok("{restrict_to: {acme: [data], open: null, any: []}}");
    struct lfs_error err = {0};
    /* "alice:ghp_abc" */
    const char *basic = "Basic YWxpY2U6Z2hwX2FiYw==";
    assert_int_equal(run(a, basic, "acme/sub", "data", NULL, &err), -1);
    assert_int_equal(err.status, 404);
    assert_non_null(strstr(err.message, "without nested groups"));
    assert_int_equal(run(a, basic, "acme", "other", NULL, &err), -1);
    assert_int_equal(err.status, 403);
    assert_non_null(strstr(err.message, "acme/other is not served"));
    assert_int_equal(run(a, "Bearer ghp_abc", "elsewhere", "data", NULL, &err), -1);
    assert_int_equal(err.status, 403);
    assert_int_equal(run(a, "Bearer ghp_a\x01", "acme", "data", NULL, &err), -1);
    assert_int_equal(err.status, 401);
    assert_null(strstr(err.message, "ghp_"));
    /* A listed repository needs a lookup: without a way to wait that is an internal error,
     * never an answer made up. */
    assert_int_equal(run(a, basic, "acme", "data", NULL, &err), -1);
    assert_int_equal(err.status, 500);
    assert_int_equal(run(a, basic, "open", "anything", NULL, &err), -1);
    assert_int_equal(err.status, 500);
    /* an empty list is every repository too, as in giftless */
    assert_int_equal(run(a, basic, "any", "thing", NULL, &err), -1);
    assert_int_equal(err.status, 500);
    a->ops->destroy(a);
}

int main(void)
{
    h2o_mem_init_pool(&pool);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory_names),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_refusals_before_any_call),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    h2o_mem_clear_pool(&pool);
    return rc;
}
