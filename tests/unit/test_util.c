/* Unit tests for common/util.c: oid and path-segment validation (the gate between request
 * paths and storage keys), hex encoding, percent-encoding and -decoding (bad escapes, %00)
 * and constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/util.h"

#define OID "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

static bool oid_ok(const char *s)
{
    return lfs_oid_valid(s, strlen(s));
}

static bool seg_ok(const char *s)
{
    return lfs_segment_valid(s, strlen(s));
}

static bool segs_ok(const char *s)
{
    return lfs_segments_valid(s, strlen(s));
}

static void test_oid_valid(void **state)
{
    (void)state;
    assert_true(oid_ok(OID));
    assert_true(oid_ok("0000000000000000000000000000000000000000000000000000000000000000"));
    /* 63 and 65 digits */
    assert_false(oid_ok("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a"));
    assert_false(oid_ok(OID "0"));
    /* uppercase, non-hex, empty */
    assert_false(oid_ok("2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE"));
    assert_false(oid_ok("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7aG"));
    assert_false(oid_ok("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a/"));
    assert_false(oid_ok(""));
    /* only len bytes are looked at */
    assert_true(lfs_oid_valid(OID "zzz", 64));
    /* an embedded NUL within the length is invalid */
    char buf[65];
    memcpy(buf, OID, 65);
    buf[10] = '\0';
    assert_false(lfs_oid_valid(buf, 64));
}

static void test_segment_valid(void **state)
{
    (void)state;
    assert_true(seg_ok("repo"));
    assert_true(seg_ok("My-Repo_1.2~x@y+z"));
    assert_true(seg_ok("..."));
    assert_true(seg_ok(".hidden"));
    assert_true(seg_ok("a.."));
    assert_false(seg_ok(""));
    assert_false(seg_ok("."));
    assert_false(seg_ok(".."));
    assert_false(seg_ok("a/b"));
    assert_false(seg_ok("a b"));
    assert_false(seg_ok("a%2e"));
    assert_false(seg_ok("a\\b"));
    assert_false(seg_ok("a:b"));
    assert_false(seg_ok("caf\xc3\xa9"));
    assert_false(lfs_segment_valid("a\0b", 3));
    char buf[300];
    memset(buf, 'a', sizeof(buf));
    assert_true(lfs_segment_valid(buf, 255));
    assert_false(lfs_segment_valid(buf, 256));
}

static void test_segments_valid(void **state)
{
    (void)state;
    assert_true(segs_ok("a"));
    assert_true(segs_ok("a/b/c"));
    assert_false(segs_ok(""));
    assert_false(segs_ok("/a"));
    assert_false(segs_ok("a/"));
    assert_false(segs_ok("a//b"));
    assert_false(segs_ok("a/../b"));
    assert_false(segs_ok("a/./b"));
    assert_false(segs_ok(".."));
    assert_false(segs_ok("a/b c"));
}

static void test_hex_encode(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0xab, 0xff, 0x10};
    char out[2 * sizeof(in) + 1];
    memset(out, 'x', sizeof(out));
    lfs_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "0001abff10");
    lfs_hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

static void test_secure_equal(void **state)
{
    (void)state;
    assert_true(lfs_secure_equal("secret", 6, "secret", 6));
    assert_false(lfs_secure_equal("secret", 6, "secreT", 6));
    assert_false(lfs_secure_equal("secret", 6, "secret!", 7));
    assert_false(lfs_secure_equal("secret", 6, "secre", 5));
    assert_true(lfs_secure_equal("", 0, "", 0));
    /* bytes after a NUL count */
    assert_false(lfs_secure_equal("a\0b", 3, "a\0c", 3));
}

static void test_url_encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lfs_url_encode("AZaz09-._~", 10, out), 10);
    assert_string_equal(out, "AZaz09-._~");
    const char *in = "a b/c?d=e&f+\xc3\xa9%";
    size_t n = lfs_url_encode(in, strlen(in), out);
    assert_string_equal(out, "a%20b%2Fc%3Fd%3De%26f%2B%C3%A9%25");
    assert_int_equal(n, strlen(out));
    assert_int_equal(lfs_url_encode("", 0, out), 0);
    assert_string_equal(out, "");
    /* a NUL byte is encoded, not a terminator */
    assert_int_equal(lfs_url_encode("a\0b", 3, out), 5);
    assert_string_equal(out, "a%00b");
}

static size_t decode(const char *s, char *out)
{
    return lfs_url_decode(s, strlen(s), out);
}

static void test_url_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("plain", out), 5);
    assert_string_equal(out, "plain");
    assert_int_equal(decode("a%20b%2Fc", out), 5);
    assert_string_equal(out, "a b/c");
    assert_int_equal(decode("%2e%2E", out), 2);
    assert_string_equal(out, "..");
    assert_int_equal(decode("%C3%a9", out), 2);
    assert_string_equal(out, "\xc3\xa9");
    /* '+' is kept as is (paths, not form data) */
    assert_int_equal(decode("a+b", out), 3);
    assert_string_equal(out, "a+b");
    assert_int_equal(decode("", out), 0);
    assert_string_equal(out, "");
    /* escape at the very end */
    assert_int_equal(decode("ab%41", out), 3);
    assert_string_equal(out, "abA");
    /* round trip */
    char enc[3 * 16 + 1];
    const char raw[] = "x y/z\x01\xff";
    lfs_url_encode(raw, sizeof(raw) - 1, enc);
    assert_int_equal(decode(enc, out), sizeof(raw) - 1);
    assert_memory_equal(out, raw, sizeof(raw) - 1);
}

static void test_url_decode_rejects(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("%", out), (size_t)-1);
    assert_int_equal(decode("a%", out), (size_t)-1);
    assert_int_equal(decode("a%4", out), (size_t)-1);
    assert_int_equal(decode("%4g", out), (size_t)-1);
    assert_int_equal(decode("%g4", out), (size_t)-1);
    assert_int_equal(decode("%%41", out), (size_t)-1);
    assert_int_equal(decode("% 41", out), (size_t)-1);
    assert_int_equal(decode("%00", out), (size_t)-1);
    assert_int_equal(decode("abc%00def", out), (size_t)-1);
    /* only len bytes are decoded: a valid escape cut by len is malformed */
    assert_int_equal(lfs_url_decode("%41", 2, out), (size_t)-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oid_valid),      cmocka_unit_test(test_segment_valid),
        cmocka_unit_test(test_segments_valid), cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_secure_equal),   cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_url_decode),     cmocka_unit_test(test_url_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
