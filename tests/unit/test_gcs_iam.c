/* Unit tests for the CPU-only parts of storage/gcs_iam.c (GCS workload identity): reading the
 * metadata server's token answer (and refusing a token that could forge headers), reading a
 * signBlob answer, the signing window that lets repeated batches share one signature, and the
 * service-account email check. The asynchronous parts (token sharing, signBlob calls) run
 * against loopback stand-ins in tests/e2e/test_gcs.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/gcs_iam.h"

static void expect_token_error(const char *body, const char *message)
{
    char *token = NULL;
    long expires_in = 0;
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_token_parse(body, strlen(body), &token, &expires_in, &err), -1);
    assert_null(token);
    assert_int_equal(err.status, 502);
    if (strstr(err.message, message) == NULL) {
        print_error("body %s: expected \"%s\" in \"%s\"\n", body, message, err.message);
        fail();
    }
    /* The token itself is never quoted. */
    assert_null(strstr(err.message, "ya29"));
}

static void test_token_parse(void **state)
{
    (void)state;
    const char *ok = "{\"access_token\":\"ya29.c.b0Aaekm1K-_~.x/+=\",\"expires_in\":3599,"
                     "\"token_type\":\"Bearer\"}";
    char *token = NULL;
    long expires_in = 0;
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_token_parse(ok, strlen(ok), &token, &expires_in, &err), 0);
    assert_string_equal(token, "ya29.c.b0Aaekm1K-_~.x/+=");
    assert_int_equal(expires_in, 3599);
    free(token);
    /* token_type may be left out, and its case does not matter. */
    const char *lower = "{\"access_token\":\"ya29.a\",\"expires_in\":5,\"token_type\":\"bearer\"}";
    assert_int_equal(lfs_gcs_token_parse(lower, strlen(lower), &token, &expires_in, &err), 0);
    free(token);
    const char *bare = "{\"access_token\":\"ya29.a\",\"expires_in\":5}";
    assert_int_equal(lfs_gcs_token_parse(bare, strlen(bare), &token, &expires_in, &err), 0);
    assert_int_equal(expires_in, 5);
    free(token);

    expect_token_error("not json", "not a JSON object");
    expect_token_error("[\"ya29.a\"]", "not a JSON object");
    expect_token_error("{\"expires_in\":5}", "no \"access_token\"");
    expect_token_error("{\"access_token\":\"\",\"expires_in\":5}", "no \"access_token\"");
    expect_token_error("{\"access_token\":7,\"expires_in\":5}", "no \"access_token\"");
    expect_token_error("{\"access_token\":\"ya29.a\"}", "\"expires_in\"");
    expect_token_error("{\"access_token\":\"ya29.a\",\"expires_in\":0}", "\"expires_in\"");
    expect_token_error("{\"access_token\":\"ya29.a\",\"expires_in\":-3}", "\"expires_in\"");
    expect_token_error("{\"access_token\":\"ya29.a\",\"expires_in\":\"60\"}", "\"expires_in\"");
    expect_token_error("{\"access_token\":\"ya29.a\",\"expires_in\":60,\"token_type\":\"MAC\"}",
                       "\"token_type\" is not \"Bearer\"");
    /* A token that would end the Authorization header and start another. */
    expect_token_error("{\"access_token\":\"ya29.a\\r\\nX-Evil: 1\",\"expires_in\":60}",
                       "cannot go into a header");
    expect_token_error("{\"access_token\":\"ya29 a\",\"expires_in\":60}",
                       "cannot go into a header");
    expect_token_error("{\"access_token\":\"ya29.\\u00e9\",\"expires_in\":60}",
                       "cannot go into a header");
    char *big = malloc(5000 + 64);
    int n = snprintf(big, 64, "{\"access_token\":\"");
    memset(big + n, 'a', 5000);
    snprintf(big + n + 5000, 64, "\",\"expires_in\":60}");
    expect_token_error(big, "longer than 4096 bytes");
    free(big);
}

static void test_signblob_parse(void **state)
{
    (void)state;
    unsigned char sig[LFS_GCS_MAX_SIGNATURE];
    size_t len = 0;
    struct lfs_error err = {0};
    /* base64 of the bytes 0x00 0x01 0xfe 0xff */
    const char *ok = "{\"keyId\":\"0123abcd\",\"signedBlob\":\"AAH+/w==\"}";
    assert_int_equal(lfs_gcs_signblob_parse(ok, strlen(ok), sig, &len, &err), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(sig, "\x00\x01\xfe\xff", 4);

    const char *bad[][2] = {
        {"<html>", "not a JSON object"},
        {"{\"keyId\":\"k\"}", "no \"signedBlob\""},
        {"{\"signedBlob\":\"\"}", "no \"signedBlob\""},
        {"{\"signedBlob\":\"AAH+/w\"}", "not base64"},    /* no padding */
        {"{\"signedBlob\":\"AA H+/w==\"}", "not base64"}, /* a blank */
        {"{\"signedBlob\":\"AAH-_w==\"}", "not base64"},  /* base64url */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lfs_gcs_signblob_parse(bad[i][0], strlen(bad[i][0]), sig, &len, &err), -1);
        assert_int_equal(err.status, 502);
        assert_non_null(strstr(err.message, bad[i][1]));
    }
    /* Longer than a 4096-bit signature. */
    char body[1024];
    int n = snprintf(body, sizeof(body), "{\"signedBlob\":\"");
    for (int i = 0; i < 172; i++) /* 172 * 4 characters = 516 bytes */
        n += snprintf(body + n, sizeof(body) - (size_t)n, "AAAA");
    snprintf(body + n, sizeof(body) - (size_t)n, "\"}");
    assert_int_equal(lfs_gcs_signblob_parse(body, strlen(body), sig, &len, &err), -1);
    assert_non_null(strstr(err.message, "at most 512 bytes"));
}

static void test_window(void **state)
{
    (void)state;
    time_t date;
    long expires;
    /* 900 s: windows of 112 s; every URL lives at least 900 s from the moment it is asked. */
    for (time_t now = 1700000000; now < 1700000000 + 400; now += 7) {
        lfs_gcs_iam_window(now, 900, &date, &expires);
        assert_int_equal(expires, 900 + 112);
        assert_int_equal(date % 112, 0);
        assert_true(date <= now && now - date < 112);
        assert_true(date + expires >= now + 900);
    }
    /* Two moments in one window give the same date: the same string to sign. */
    time_t d1, d2;
    lfs_gcs_iam_window(1700000000 - 1700000000 % 112, 900, &d1, &expires);
    lfs_gcs_iam_window(1700000000 - 1700000000 % 112 + 111, 900, &d2, &expires);
    assert_int_equal(d1, d2);
    /* Long lifetimes: windows of at most 10 minutes. */
    lfs_gcs_iam_window(1700000123, 6 * 3600, &date, &expires);
    assert_int_equal(expires, 6 * 3600 + 600);
    assert_int_equal(date, 1700000123 - 1700000123 % 600);
    /* Never beyond the 7 days GCS accepts. */
    lfs_gcs_iam_window(1700000123, LFS_GCS_MAX_EXPIRES - 100, &date, &expires);
    assert_int_equal(expires, LFS_GCS_MAX_EXPIRES);
    assert_true(date + expires >= 1700000123 + LFS_GCS_MAX_EXPIRES - 100);
    lfs_gcs_iam_window(1700000123, LFS_GCS_MAX_EXPIRES, &date, &expires);
    assert_int_equal(date, 1700000123);
    assert_int_equal(expires, LFS_GCS_MAX_EXPIRES);
    /* Short lifetimes are not stretched: signed as asked. */
    lfs_gcs_iam_window(1700000123, 3, &date, &expires);
    assert_int_equal(date, 1700000123);
    assert_int_equal(expires, 3);
}

static void test_iam_create(void **state)
{
    (void)state;
    struct lfs_gcs_iam *iam = NULL;
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_iam_create("lfs-signer@my-project.iam.gserviceaccount.com",
                                        "http://127.0.0.1:9", &iam, &err),
                     0);
    assert_string_equal(lfs_gcs_iam_email(iam), "lfs-signer@my-project.iam.gserviceaccount.com");
    lfs_gcs_iam_destroy(iam);
    const char *bad[] = {"",        "a",       "@x.y",    "x.y@",    "a@b@c",
                         "a b@c.d", "a@c.d/e", "a@c.d:1", "a%40c.d", "a@c.d?x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        iam = NULL;
        assert_int_equal(lfs_gcs_iam_create(bad[i], "http://127.0.0.1:9", &iam, &err), -1);
        assert_null(iam);
        assert_non_null(strstr(err.message, "expected a service account's email"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_parse),
        cmocka_unit_test(test_signblob_parse),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_iam_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
