/* Unit tests of the answers lfsgate reads temporary AWS keys from (storage/s3_creds.c): STS
 * AssumeRoleWithWebIdentity's XML and the JSON of the container endpoint and IMDS. What is
 * accepted is split into the key id, secret and token with the right lifetime; what is refused
 * gets a message that names what is wrong and never quotes a key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/s3_creds.h"

/* 2026-12-05T20:00:00Z */
#define NOW ((time_t)1796500800)

static void expect_refused(int (*parse)(const char *, size_t, time_t, char **, long *,
                                        struct lfs_error *),
                           const char *body, const char *want)
{
    char *secret = NULL;
    long lifetime = 0;
    struct lfs_error err = {0};
    assert_int_equal(parse(body, strlen(body), NOW, &secret, &lifetime, &err), -1);
    assert_null(secret);
    if (strstr(err.message, want) == NULL) {
        print_error("expected \"%s\" in \"%s\"\n", want, err.message);
        fail();
    }
    assert_null(strstr(err.message, "wJalr"));
    assert_null(strstr(err.message, "FwoGZX"));
}

static void test_sts_parse(void **state)
{
    (void)state;
    const char *ok =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI/K7MDENG</"
        "SecretAccessKey><SessionToken>FwoGZXIvYXdzEJr+/==</SessionToken>"
        "<Expiration>2026-12-05T21:00:00Z</Expiration></Credentials>"
        "<AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/lfsgate</Arn></AssumedRoleUser>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    char *secret = NULL;
    long lifetime = 0;
    struct lfs_error err = {0};
    assert_int_equal(lfs_s3_sts_parse(ok, strlen(ok), NOW, &secret, &lifetime, &err), 0);
    assert_string_equal(secret, "ASIAEXAMPLE\nwJalrXUtnFEMI/K7MDENG\nFwoGZXIvYXdzEJr+/==");
    assert_int_equal(lifetime, 3600);
    free(secret);

    expect_refused(lfs_s3_sts_parse, "<ErrorResponse><Error><Code>AccessDenied</Code></Error>",
                   "the answer has no <Credentials>");
    expect_refused(lfs_s3_sts_parse,
                   "<Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>wJalr</"
                   "SecretAccessKey><SessionToken>FwoGZX</SessionToken></Credentials>",
                   "the answer has no <Expiration>");
    expect_refused(lfs_s3_sts_parse,
                   "<Credentials><AccessKeyId>ASIA</AccessKeyId><SessionToken>FwoGZX</"
                   "SessionToken><Expiration>2026-12-05T21:00:00Z</Expiration></Credentials>",
                   "the key id, secret key or session token is missing");
    /* A line break in a token would forge header lines. */
    expect_refused(lfs_s3_sts_parse,
                   "<Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>wJalr</"
                   "SecretAccessKey><SessionToken>FwoGZX\r\nX: y</SessionToken>"
                   "<Expiration>2026-12-05T21:00:00Z</Expiration></Credentials>",
                   "holds bytes that cannot go into a header");
    expect_refused(lfs_s3_sts_parse,
                   "<Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>wJalr</"
                   "SecretAccessKey><SessionToken>FwoGZX</SessionToken>"
                   "<Expiration>tomorrow</Expiration></Credentials>",
                   "the expiration is not a time");
    expect_refused(lfs_s3_sts_parse,
                   "<Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>wJalr</"
                   "SecretAccessKey><SessionToken>FwoGZX</SessionToken>"
                   "<Expiration>2026-12-05T19:59:00Z</Expiration></Credentials>",
                   "the keys expired 60 s ago as they arrived");
}

static void test_json_creds_parse(void **state)
{
    (void)state;
    /* IMDS's shape (with "Code"), fractional seconds in the expiration. */
    const char *ok =
        "{\"Code\": \"Success\", \"Type\": \"AWS-HMAC\", \"AccessKeyId\": \"ASIAIMDS\", "
        "\"SecretAccessKey\": \"wJalrIMDS\", \"Token\": \"FwoGZXimds\", "
        "\"Expiration\": \"2026-12-05T20:10:00.000Z\"}";
    char *secret = NULL;
    long lifetime = 0;
    struct lfs_error err = {0};
    assert_int_equal(lfs_s3_json_creds_parse(ok, strlen(ok), NOW, &secret, &lifetime, &err), 0);
    assert_string_equal(secret, "ASIAIMDS\nwJalrIMDS\nFwoGZXimds");
    assert_int_equal(lifetime, 600);
    free(secret);
    /* The container endpoint's (no "Code"), "+00:00". */
    const char *ecs = "{\"AccessKeyId\": \"ASIAECS\", \"SecretAccessKey\": \"wJalrECS\", "
                      "\"Token\": \"FwoGZXecs\", \"Expiration\": \"2026-12-05T20:00:30+00:00\"}";
    assert_int_equal(lfs_s3_json_creds_parse(ecs, strlen(ecs), NOW, &secret, &lifetime, &err), 0);
    assert_int_equal(lifetime, 30);
    free(secret);

    expect_refused(lfs_s3_json_creds_parse, "<html>", "the answer is not a JSON object");
    expect_refused(lfs_s3_json_creds_parse,
                   "{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"AccessKeyId\": \"A\"}",
                   "the answer's \"Code\" is not \"Success\"");
    expect_refused(lfs_s3_json_creds_parse,
                   "{\"AccessKeyId\": \"ASIA\", \"SecretAccessKey\": \"wJalr\", "
                   "\"Expiration\": \"2026-12-05T21:00:00Z\"}",
                   "the answer lacks one of");
    expect_refused(lfs_s3_json_creds_parse,
                   "{\"AccessKeyId\": \"ASIA\", \"SecretAccessKey\": \"wJalr x\", \"Token\": "
                   "\"FwoGZX\", \"Expiration\": \"2026-12-05T21:00:00Z\"}",
                   "holds bytes that cannot go into a header");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sts_parse),
        cmocka_unit_test(test_json_creds_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
