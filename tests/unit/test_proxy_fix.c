/* Unit tests for lfs_http_public_origin (server/http.c), the werkzeug ProxyFix rules used to
 * build hrefs: without the middleware X-Forwarded-* is ignored; with x_proto/x_host/x_port/
 * x_prefix = N the Nth value from the right of the (comma-separated, possibly repeated)
 * header is used, and fewer values than N means the header is ignored; x_port replaces the
 * host's port and default ports are dropped; a trailing '/' of the prefix is removed; hostile
 * values (bad scheme, host with spaces or '/', prefix with "..") are refused with 400, and so
 * is any host, trusted or not, that is not a name, IPv4 or [IPv6] address with an optional
 * port of 1..65535. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/http.h"

struct fixture {
    h2o_mem_pool_t pool;
    h2o_headers_t headers;
    struct lfs_proxy_fix pf;
    const char *origin;
    struct lfs_error err;
};

static int setup(void **state)
{
    struct fixture *f = test_calloc(1, sizeof(*f));
    h2o_mem_init_pool(&f->pool);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    h2o_mem_clear_pool(&f->pool);
    test_free(f);
    return 0;
}

static void add(struct fixture *f, const char *name, const char *value)
{
    h2o_add_header_by_str(&f->pool, &f->headers, name, strlen(name), 1, NULL, value, strlen(value));
}

/* Computes the origin for `scheme` and Host `authority`; returns 0 or the error status. */
static int origin(struct fixture *f, const char *scheme, const char *authority)
{
    memset(&f->err, 0, sizeof(f->err));
    f->origin = NULL;
    int rc = lfs_http_public_origin(&f->pool, &f->pf, scheme,
                                    h2o_iovec_init(authority, strlen(authority)), &f->headers,
                                    &f->origin, &f->err);
    if (rc == 0) {
        assert_non_null(f->origin);
        return 0;
    }
    assert_int_equal(rc, -1);
    assert_true(f->err.message[0] != '\0');
    return f->err.status;
}

static void add_all_forwarded(struct fixture *f)
{
    add(f, "x-forwarded-for", "203.0.113.9");
    add(f, "x-forwarded-proto", "https");
    add(f, "x-forwarded-host", "evil.example");
    add(f, "x-forwarded-port", "4443");
    add(f, "x-forwarded-prefix", "/evil");
}

static void test_plain(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8080");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com");
    assert_int_equal(origin(f, "http", "[::1]:8080"), 0);
    assert_string_equal(f->origin, "http://[::1]:8080");
    assert_int_equal(origin(f, "http", "127.0.0.1:8080"), 0);
    assert_string_equal(f->origin, "http://127.0.0.1:8080");
}

static void test_no_middleware_ignores_forwarded(void **state)
{
    struct fixture *f = *state;
    add_all_forwarded(f);
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8080");
    /* hostile forwarded values do not matter either when nothing is trusted */
    add(f, "x-forwarded-proto", "javascript");
    add(f, "x-forwarded-host", "a b/c");
    add(f, "x-forwarded-prefix", "/../..");
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8080");
    /* x_for alone does not change the origin */
    f->pf.x_for = 1;
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8080");
}

static void test_only_trusted_headers_used(void **state)
{
    struct fixture *f = *state;
    add_all_forwarded(f);
    f->pf.x_proto = 1;
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "https://example.com:8080");
    f->pf = (struct lfs_proxy_fix){.x_host = 1};
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://evil.example");
    f->pf = (struct lfs_proxy_fix){.x_prefix = 1};
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8080/evil");
    f->pf = (struct lfs_proxy_fix){.x_proto = 1, .x_host = 1, .x_port = 1, .x_prefix = 1};
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "https://evil.example:4443/evil");
}

static void test_x_proto(void **state)
{
    struct fixture *f = *state;
    f->pf.x_proto = 1;
    /* absent: the request's own scheme */
    assert_int_equal(origin(f, "http", "h"), 0);
    assert_string_equal(f->origin, "http://h");
    add(f, "x-forwarded-proto", "http, https");
    assert_int_equal(origin(f, "http", "h"), 0);
    assert_string_equal(f->origin, "https://h");
    /* the second from the right with two trusted proxies */
    f->pf.x_proto = 2;
    assert_int_equal(origin(f, "https", "h"), 0);
    assert_string_equal(f->origin, "http://h");
    /* fewer values than trusted proxies: ignored */
    f->pf.x_proto = 3;
    assert_int_equal(origin(f, "http", "h"), 0);
    assert_string_equal(f->origin, "http://h");
}

static void test_x_proto_downgrade(void **state)
{
    struct fixture *f = *state;
    f->pf.x_proto = 1;
    add(f, "x-forwarded-proto", "https,http");
    assert_int_equal(origin(f, "https", "h"), 0);
    assert_string_equal(f->origin, "http://h");
}

static void test_x_proto_hostile(void **state)
{
    static const char *const bad[] = {"ftp",    "javascript", "https://x",    "HTTPS ://",
                                      "http s", "http\"",     "https, gopher"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf.x_proto = 1;
        add(f, "x-forwarded-proto", bad[i]);
        print_message("X-Forwarded-Proto: %s\n", bad[i]);
        assert_int_equal(origin(f, "http", "h"), 400);
    }
}

static void test_x_host_chain(void **state)
{
    struct fixture *f = *state;
    f->pf.x_host = 1;
    add(f, "x-forwarded-host", "a.example, b.example");
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://b.example");
    f->pf.x_host = 2;
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://a.example");
    /* fewer values than trusted proxies: ignored, the Host header is used */
    f->pf.x_host = 3;
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://internal:8080");
}

static void test_x_host_single_value_ignored_when_two_trusted(void **state)
{
    struct fixture *f = *state;
    f->pf.x_host = 2;
    add(f, "x-forwarded-host", "only.example");
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://internal:8080");
}

static void test_x_host_with_port(void **state)
{
    struct fixture *f = *state;
    f->pf.x_host = 1;
    add(f, "x-forwarded-host", "lfs.example:8443");
    assert_int_equal(origin(f, "https", "internal:8080"), 0);
    assert_string_equal(f->origin, "https://lfs.example:8443");
}

/* RFC 9110: repeated header lines form one list; the rightmost value is in the last line.
 * A proxy that appends its own line must win over one the client sent first. */
static void test_x_host_repeated_header_lines(void **state)
{
    struct fixture *f = *state;
    f->pf.x_host = 1;
    add(f, "x-forwarded-host", "forged.example");
    add(f, "x-forwarded-host", "real.example");
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://real.example");
    /* counted across lines */
    f->pf.x_host = 2;
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://forged.example");
    f->pf.x_host = 3;
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://internal:8080");
}

static void test_x_host_hostile(void **state)
{
    static const char *const bad[] = {
        "evil .example",  "evil.example/path", "a/b",           "evil.example?x",
        "evil.example#x", "user@evil.example", "evil\\example", "a, b c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf.x_host = 1;
        add(f, "x-forwarded-host", bad[i]);
        print_message("X-Forwarded-Host: %s\n", bad[i]);
        assert_int_equal(origin(f, "http", "internal"), 400);
    }
    /* an over-long host */
    struct fixture *f = *state;
    char longhost[300];
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-host", longhost);
    assert_int_equal(origin(f, "http", "internal"), 400);
}

static void test_bad_host_header(void **state)
{
    struct fixture *f = *state;
    /* the Host header itself is validated too, with or without middleware */
    assert_int_equal(origin(f, "http", "exa mple.com"), 400);
    assert_int_equal(origin(f, "http", "example.com/evil"), 400);
    assert_int_equal(origin(f, "http", ""), 400);
    /* a list is no Host (X-Forwarded-Host takes its rightmost value instead) */
    assert_int_equal(origin(f, "http", "a,b"), 400);
}

/* Issue #12: trusted forwarded values reached hrefs as they were ("]]]:" gave
 * "http://]]]:"). Trusted or not, a host must be a name, an IPv4 address or a bracketed IPv6
 * address with an optional port of 1..65535. */
static const char *const bad_hosts[] = {"]]]:",         "[::1",
                                        "::1",          "[::g]",
                                        "[]",           "[:]x",
                                        "[::1]x",       "[::1]:",
                                        "[::1]:99999",  "[a b]",
                                        "host:",        "host:0",
                                        "host:65536",   "host:99999",
                                        "host:8080:1",  "host:80a",
                                        "host:-1",      ":80",
                                        "a..b",         ".a",
                                        "a.",           "999.1.1.1",
                                        "1.2.3",        "1.2.3.4.5",
                                        "\xff.example", "caf\xc3\xa9.example",
                                        "a\x01b",       "a\tb",
                                        "a\"b",         "a%2eb",
                                        "a;b",          "[::1]@evil",
                                        "evil@[::1]",   "{evil}"};

static void test_x_host_syntax(void **state)
{
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf = (struct lfs_proxy_fix){.x_host = 1};
        add(f, "x-forwarded-host", bad_hosts[i]);
        print_message("X-Forwarded-Host: %s\n", bad_hosts[i]);
        assert_int_equal(origin(f, "http", "internal"), 400);
        assert_non_null(strstr(f->err.message, "forwarded host"));
        /* the same through RFC 7239 Forwarded host= */
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf = (struct lfs_proxy_fix){.forwarded = 1};
        char fwd[300];
        snprintf(fwd, sizeof(fwd), "for=1.2.3.4;host=\"%s\"", bad_hosts[i]);
        add(f, "forwarded", fwd);
        assert_int_equal(origin(f, "http", "internal"), 400);
        /* and as the plain Host header */
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf = (struct lfs_proxy_fix){0};
        assert_int_equal(origin(f, "http", bad_hosts[i]), 400);
        assert_non_null(strstr(f->err.message, "Host header"));
    }
}

static void test_host_syntax_accepted(void **state)
{
    static const char *const good[] = {
        "example.com",       "lfs-1.internal_svc.cluster.local:65535",
        "10.0.0.1:1",        "[::1]",
        "[2001:db8::1]:443", "[::ffff:192.0.2.1]:8080",
        "localhost",         "a1.b2:08080"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf = (struct lfs_proxy_fix){.x_host = 1};
        add(f, "x-forwarded-host", good[i]);
        print_message("X-Forwarded-Host: %s\n", good[i]);
        assert_int_equal(origin(f, "http", "internal"), 0);
        assert_string_equal(f->origin + strlen("http://"), good[i]);
        f->pf = (struct lfs_proxy_fix){0};
        assert_int_equal(origin(f, "https", good[i]), 0);
        assert_string_equal(f->origin + strlen("https://"), good[i]);
    }
}

static void test_x_port(void **state)
{
    struct fixture *f = *state;
    f->pf.x_port = 1;
    add(f, "x-forwarded-port", "8443");
    /* replaces the Host's port */
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:8443");
    /* or adds one */
    assert_int_equal(origin(f, "http", "example.com"), 0);
    assert_string_equal(f->origin, "http://example.com:8443");
    /* IPv6 literals keep their colons */
    assert_int_equal(origin(f, "http", "[::1]:8080"), 0);
    assert_string_equal(f->origin, "http://[::1]:8443");
    assert_int_equal(origin(f, "http", "[2001:db8::1]"), 0);
    assert_string_equal(f->origin, "http://[2001:db8::1]:8443");
}

static void test_x_port_default_dropped(void **state)
{
    struct fixture *f = *state;
    f->pf.x_port = 1;
    f->pf.x_proto = 1;
    add(f, "x-forwarded-proto", "https");
    add(f, "x-forwarded-port", "443");
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "https://example.com");

    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-proto", "http");
    add(f, "x-forwarded-port", "80");
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com");

    /* 443 is not the default for http */
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-proto", "http");
    add(f, "x-forwarded-port", "443");
    assert_int_equal(origin(f, "http", "example.com:8080"), 0);
    assert_string_equal(f->origin, "http://example.com:443");
}

static void test_x_port_with_x_host(void **state)
{
    struct fixture *f = *state;
    f->pf.x_host = 1;
    f->pf.x_port = 1;
    add(f, "x-forwarded-host", "lfs.example:1234");
    add(f, "x-forwarded-port", "9000, 8443");
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://lfs.example:8443");
    /* fewer port values than trusted: the forwarded host keeps its own port */
    f->pf.x_port = 3;
    assert_int_equal(origin(f, "http", "internal:8080"), 0);
    assert_string_equal(f->origin, "http://lfs.example:1234");
}

static void test_x_port_hostile(void **state)
{
    static const char *const bad[] = {"80a", "-1",    "123456", "8080/x", "8 0", "0x50",
                                      ":80", "99999", "65536",  "0",      "00",  ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf.x_port = 1;
        add(f, "x-forwarded-port", bad[i]);
        print_message("X-Forwarded-Port: %s\n", bad[i]);
        assert_int_equal(origin(f, "http", "example.com"), 400);
    }
    /* the limits themselves are ports */
    struct fixture *f = *state;
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-port", "65535");
    assert_int_equal(origin(f, "http", "example.com"), 0);
    assert_string_equal(f->origin, "http://example.com:65535");
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-port", "1");
    assert_int_equal(origin(f, "http", "example.com"), 0);
    assert_string_equal(f->origin, "http://example.com:1");
}

static void test_x_prefix(void **state)
{
    struct fixture *f = *state;
    f->pf.x_prefix = 1;
    add(f, "x-forwarded-prefix", "/lfs/");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com/lfs");

    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-prefix", "/a/b");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com/a/b");

    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-prefix", "/a//");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com/a");

    /* "/" alone is no prefix */
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-prefix", "/");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com");

    /* chains: the rightmost */
    memset(&f->headers, 0, sizeof(f->headers));
    add(f, "x-forwarded-prefix", "/outer, /inner/");
    assert_int_equal(origin(f, "https", "example.com"), 0);
    assert_string_equal(f->origin, "https://example.com/inner");
}

static void test_x_prefix_hostile(void **state)
{
    static const char *const bad[] = {"/..",     "/a/../b",        "/./a",  "/a//b",
                                      "lfs",     "//evil.example", "/a b",  "/a?x=1",
                                      "/a#frag", "/%2e%2e",        "/a\\b", "/a/./"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = *state;
        memset(&f->headers, 0, sizeof(f->headers));
        f->pf.x_prefix = 1;
        add(f, "x-forwarded-prefix", bad[i]);
        print_message("X-Forwarded-Prefix: %s\n", bad[i]);
        assert_int_equal(origin(f, "https", "example.com"), 400);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_plain),
        T(test_no_middleware_ignores_forwarded),
        T(test_only_trusted_headers_used),
        T(test_x_proto),
        T(test_x_proto_downgrade),
        T(test_x_proto_hostile),
        T(test_x_host_chain),
        T(test_x_host_single_value_ignored_when_two_trusted),
        T(test_x_host_with_port),
        T(test_x_host_repeated_header_lines),
        T(test_x_host_hostile),
        T(test_bad_host_header),
        T(test_x_host_syntax),
        T(test_host_syntax_accepted),
        T(test_x_port),
        T(test_x_port_default_dropped),
        T(test_x_port_with_x_host),
        T(test_x_port_hostile),
        T(test_x_prefix),
        T(test_x_prefix_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
