/* Fuzz target: the AWS temporary keys lfsgate reads from services it does not control
 * (storage/s3_creds.c): the STS AssumeRoleWithWebIdentity answer (XML, lfs_s3_sts_parse) and
 * the container endpoint's and IMDS's JSON answer (lfs_s3_json_creds_parse), with their
 * expiry timestamps. The first byte picks the parser: 's' STS, 'j' JSON; the rest is the
 * answer, read at a fixed `now` (2026-01-01T00:00:00Z) so seeds stay valid.
 * Properties: keys are accepted as "<id>\n<secret>\n<token>" of printable ASCII with a
 * positive lifetime (an Expiration later than now), or refused with a 502 and a message that
 * never quotes the secret key or the session token. */
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "storage/remote.h"
#include "storage/s3_creds.h"

#define FUZZ_NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z */

/* The secret key or token as the answer holds it, in buf: "" when absent, or too short or too
 * plain (a key has letters and digits) to be told apart from the message's own words, such
 * as "Credentials>". */
static void remember(const char *s, size_t n, char *buf, size_t size)
{
    buf[0] = '\0';
    bool digit = false, letter = false;
    for (size_t i = 0; s != NULL && i < n; i++) {
        digit |= isdigit((unsigned char)s[i]) != 0;
        letter |= isalpha((unsigned char)s[i]) != 0;
    }
    if (digit && letter && n >= 12 && n < size && memchr(s, '\0', n) == NULL) {
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || (data[0] != 's' && data[0] != 'j'))
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char key[256], token[256];
    char *secret = NULL;
    long lifetime = 0;
    struct lfs_error err = {0};
    int rc;
    if (data[0] == 's') {
        const char *s = NULL;
        size_t n = 0;
        lfs_storage_xml_field(body, len, "SecretAccessKey", &s, &n);
        remember(s, n, key, sizeof(key));
        s = NULL;
        n = 0;
        lfs_storage_xml_field(body, len, "SessionToken", &s, &n);
        remember(s, n, token, sizeof(token));
        rc = lfs_s3_sts_parse(body, len, FUZZ_NOW, &secret, &lifetime, &err);
    } else {
        json_t *root = json_loadb(body, len, 0, NULL);
        json_t *k = json_object_get(root, "SecretAccessKey"), *t = json_object_get(root, "Token");
        remember(json_string_value(k), json_string_length(k), key, sizeof(key));
        remember(json_string_value(t), json_string_length(t), token, sizeof(token));
        json_decref(root);
        rc = lfs_s3_json_creds_parse(body, len, FUZZ_NOW, &secret, &lifetime, &err);
    }
    if (rc == 0) {
        LFS_FUZZ_CHECK(secret != NULL && lifetime > 0);
        int newlines = 0;
        for (const char *p = secret; *p != '\0'; p++) {
            newlines += *p == '\n';
            LFS_FUZZ_CHECK(*p == '\n' || (*p > ' ' && *p < 0x7f));
        }
        LFS_FUZZ_CHECK(newlines == 2 && secret[0] != '\n' && strstr(secret, "\n\n") == NULL);
        free(secret);
    } else {
        LFS_FUZZ_CHECK(rc == -1 && err.status == 502 && err.message[0] != '\0');
        LFS_FUZZ_CHECK(key[0] == '\0' || strstr(err.message, key) == NULL);
        LFS_FUZZ_CHECK(token[0] == '\0' || strstr(err.message, token) == NULL);
    }
    return 0;
}
