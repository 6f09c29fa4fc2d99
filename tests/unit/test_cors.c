/* Unit tests for lfs_cors_origin_allowed (server/cors.c): exact origins, '*'-patterns where a
 * star stands for part of ONE DNS label, and the lone "*". The hostile origins are those of
 * issue #12 (userinfo, ports, query, fragment or path before the allowed suffix) plus bytes
 * >= 0x80, control characters and over-long values, which must never match (not even "*",
 * since an allowed origin is echoed into a response header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/cors.h"

/* Builds a CORS config from a JSON list of origins; fails the test on a config error. */
static void make(struct lfs_cors *cors, const char *origins_json)
{
    json_error_t jerr;
    json_t *section = json_pack("{s:o}", "allowed_origins", json_loads(origins_json, 0, &jerr));
    assert_non_null(section);
    struct lfs_error err = {0};
    assert_int_equal(lfs_cors_create(section, cors, &err), 0);
    json_decref(section);
}

static bool allowed(const struct lfs_cors *cors, const char *origin)
{
    return lfs_cors_origin_allowed(cors, origin, strlen(origin));
}

static void test_exact(void **state)
{
    (void)state;
    struct lfs_cors cors;
    make(&cors, "[\"https://portal.example.org\"]");
    assert_true(allowed(&cors, "https://portal.example.org"));
    assert_false(allowed(&cors, "https://portal.example.org.evil.com"));
    assert_false(allowed(&cors, "http://portal.example.org"));
    assert_false(allowed(&cors, "https://portal.example.or"));
    assert_false(allowed(&cors, ""));
    assert_false(lfs_cors_origin_allowed(&cors, NULL, 0));
    lfs_cors_destroy(&cors);
}

static void test_star_one_label(void **state)
{
    (void)state;
    struct lfs_cors cors;
    make(&cors, "[\"https://*.example.org\"]");
    assert_true(allowed(&cors, "https://a.example.org"));
    assert_true(allowed(&cors, "https://portal-2.example.org"));
    assert_true(allowed(&cors, "https://XN--BCHER-KVA.example.org"));
    /* a star is never empty, and never more than one label */
    assert_false(allowed(&cors, "https://.example.org"));
    assert_false(allowed(&cors, "https://a.b.example.org"));
    assert_false(allowed(&cors, "https://example.org"));
    lfs_cors_destroy(&cors);
}

static void test_star_hostile(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "https://evil.com@x.example.org", "https://evil.com:1.example.org",
        "https://evil.com?.example.org",  "https://evil.com#.example.org",
        "https://evil.com/.example.org",  "https://evil.com\\.example.org",
        "https://a_b.example.org",        "https://a b.example.org",
        "https://a%2e.example.org",       "https://a.example.org.evil.com",
        "https://a.example.org:443",      "https://a.example.org/",
        "http://a.example.org",           "https://evil.com:@x.example.org",
    };
    struct lfs_cors cors;
    make(&cors, "[\"https://*.example.org\"]");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("Origin: %s\n", bad[i]);
        assert_false(allowed(&cors, bad[i]));
    }
    lfs_cors_destroy(&cors);
}

static void test_star_label_length(void **state)
{
    (void)state;
    struct lfs_cors cors;
    make(&cors, "[\"https://*.example.org\"]");
    char origin[200];
    /* 63 characters: one label; 64: not a DNS label any more */
    snprintf(origin, sizeof(origin), "https://%.63s.example.org",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_true(allowed(&cors, origin));
    snprintf(origin, sizeof(origin), "https://%.64s.example.org",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_false(allowed(&cors, origin));
    lfs_cors_destroy(&cors);
}

static void test_star_in_port_and_inside_label(void **state)
{
    (void)state;
    struct lfs_cors cors;
    make(&cors, "[\"http://localhost:*\", \"https://pr-*.preview.example\"]");
    assert_true(allowed(&cors, "http://localhost:3000"));
    assert_false(allowed(&cors, "http://localhost:"));
    assert_false(allowed(&cors, "http://localhost:3000@evil.com"));
    assert_false(allowed(&cors, "http://localhost:3000/x"));
    assert_true(allowed(&cors, "https://pr-42.preview.example"));
    assert_false(allowed(&cors, "https://pr-.preview.example"));
    assert_false(allowed(&cors, "https://pr-1.evil.preview.example"));
    lfs_cors_destroy(&cors);
}

/* Bytes no serialised origin holds: never allowed, whatever the pattern. */
static void test_odd_bytes_never_match(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "https://\xff.example.org",  "https://\xc3\xa9.example.org", "https://a.example.org\r\n",
        "https://a\x01.example.org", "https://a.example.org\x7f",    "https://\x80\x80.example.org",
        "https://a.example.org\t",   "https://a .example.org",
    };
    struct lfs_cors star, pattern;
    make(&star, "[\"*\"]");
    make(&pattern, "[\"https://*.example.org\"]");
    assert_true(allowed(&star, "https://anything.example"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(allowed(&star, bad[i]));
        assert_false(allowed(&pattern, bad[i]));
    }
    /* an embedded NUL: len covers it, the byte is refused */
    static const char nul[] = "https://a\0.example.org";
    assert_false(lfs_cors_origin_allowed(&star, nul, sizeof(nul) - 1));
    assert_false(lfs_cors_origin_allowed(&pattern, nul, sizeof(nul) - 1));
    lfs_cors_destroy(&star);
    lfs_cors_destroy(&pattern);
}

static void test_long_origin(void **state)
{
    (void)state;
    struct lfs_cors star, pattern;
    make(&star, "[\"*\"]");
    make(&pattern, "[\"https://*-*-*-*-*-*.example.org\"]");
    /* 100,000 bytes of label characters: refused by length, quickly */
    static char origin[100001];
    size_t n = sizeof(origin) - 1;
    memcpy(origin, "https://", 8);
    memset(origin + 8, 'a', n - 8);
    origin[n] = '\0';
    assert_false(allowed(&star, origin));
    assert_false(allowed(&pattern, origin));
    /* 512 bytes is the limit: exactly 512 is still considered */
    memset(origin + 8, '-', 512 - 8 - 12);
    memcpy(origin + 512 - 12, ".example.org", 12);
    assert_true(lfs_cors_origin_allowed(&star, origin, 512));
    assert_false(lfs_cors_origin_allowed(&pattern, origin, 512));
    assert_false(lfs_cors_origin_allowed(&star, origin, 513));
    lfs_cors_destroy(&star);
    lfs_cors_destroy(&pattern);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_star_one_label),
        cmocka_unit_test(test_star_hostile),
        cmocka_unit_test(test_star_label_length),
        cmocka_unit_test(test_star_in_port_and_inside_label),
        cmocka_unit_test(test_odd_bytes_never_match),
        cmocka_unit_test(test_long_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
