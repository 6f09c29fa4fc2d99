/* Fuzz target: what the stores' credential code reads from services and files it does not
 * control: the GCE metadata server's token answer (lfs_gcs_token_parse), IAM signBlob answers
 * (lfs_gcs_signblob_parse), service-account key files (lfs_gcs_key_parse), AWS shared
 * credentials files (lfs_s3_profile_parse) and Azure connection strings
 * (lfs_azure_parse_connection_string). The first byte picks the parser: 't', 's', 'k', 'p'
 * (then a line with the profile name) or 'c'. Properties: a failure has the documented
 * status and a message, and never quotes the secret (AccountKey, aws_secret_access_key);
 * a token is printable ASCII with a positive lifetime; a signature fits its buffer; a
 * profile's keys are set; an account has an http(s) endpoint and a key that fits. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "storage/azure_sign.h"
#include "storage/gcs_iam.h"
#include "storage/gcs_sign.h"
#include "storage/s3_sign.h"

/* The value after `name` up to `stop` or the end of the line, in buf; "" when absent, or
 * too short or too plain to be told apart from the message's own words. */
static void secret_value(const char *text, const char *name, char stop, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *at = strcasestr(text, name);
    if (at == NULL)
        return;
    at += strlen(name);
    while (*at == ' ' || *at == '\t' || *at == '=')
        at++;
    size_t n = strcspn(at, "\r\n");
    const char *s = memchr(at, stop, n);
    if (s != NULL)
        n = (size_t)(s - at);
    while (n > 0 && (at[n - 1] == ' ' || at[n - 1] == '\t'))
        n--;
    bool digit = false, letter = false;
    for (size_t i = 0; i < n; i++) {
        digit |= isdigit((unsigned char)at[i]) != 0;
        letter |= isalpha((unsigned char)at[i]) != 0;
    }
    /* Like a real key (letters and digits): a value such as "UseDevelopmentStorage" may
     * rightly appear in a message as the name of another pair. */
    if (n >= 12 && n < size && digit && letter) {
        memcpy(buf, at, n);
        buf[n] = '\0';
    }
}

static void check_error(const struct lfs_error *err, int status, const char *secret)
{
    LFS_FUZZ_CHECK(err->status == status && err->message[0] != '\0');
    if (secret[0] != '\0' && strstr(err->message, secret) != NULL)
        fprintf(stderr, "the message quotes the secret: %s\n", err->message);
    LFS_FUZZ_CHECK(secret[0] == '\0' || strstr(err->message, secret) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct lfs_fuzz_part rest = {(const char *)data + 1, size - 1};
    char *text = lfs_fuzz_strdup(rest);
    struct lfs_error err = {0};
    char secret[512];
    switch (data[0]) {
    case 't': {
        char *token = NULL;
        long expires_in = 0;
        if (lfs_gcs_token_parse(rest.base, rest.len, &token, &expires_in, &err) == 0) {
            LFS_FUZZ_CHECK(token != NULL && token[0] != '\0' && expires_in > 0);
            for (const char *p = token; *p != '\0'; p++)
                LFS_FUZZ_CHECK(*p > ' ' && *p < 0x7f);
            free(token);
        } else {
            check_error(&err, 502, "");
        }
        break;
    }
    case 's': {
        unsigned char sig[LFS_GCS_MAX_SIGNATURE];
        size_t siglen = 0;
        if (lfs_gcs_signblob_parse(rest.base, rest.len, sig, &siglen, &err) == 0)
            LFS_FUZZ_CHECK(siglen > 0 && siglen <= sizeof(sig));
        else
            check_error(&err, 502, "");
        break;
    }
    case 'k': {
        struct lfs_gcs_key *key = NULL;
        if (lfs_gcs_key_parse(rest.base, rest.len, &key, &err) == 0) {
            LFS_FUZZ_CHECK(lfs_gcs_key_email(key) != NULL);
            lfs_gcs_key_free(key);
        } else {
            check_error(&err, 500, "");
        }
        break;
    }
    case 'p': {
        struct lfs_fuzz_part parts[2];
        if (lfs_fuzz_split((const uint8_t *)rest.base, rest.len, "\n", 1, parts, 2) < 2)
            break;
        char *profile = lfs_fuzz_strdup(parts[0]);
        static struct lfs_s3_profile out;
        secret_value(text, "aws_secret_access_key", '\0', secret, sizeof(secret));
        int rc = lfs_s3_profile_parse(parts[1].base, parts[1].len, profile, &out, &err);
        LFS_FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == 1)
            LFS_FUZZ_CHECK(out.access_key_id[0] != '\0' && out.secret_access_key[0] != '\0');
        if (rc < 0)
            check_error(&err, 500, secret);
        free(profile);
        break;
    }
    case 'c': {
        static struct lfs_azure_account account;
        secret_value(text, "AccountKey", ';', secret, sizeof(secret));
        if (lfs_azure_parse_connection_string(text, &account, &err) == 0) {
            LFS_FUZZ_CHECK(strncmp(account.endpoint, "http://", 7) == 0 ||
                           strncmp(account.endpoint, "https://", 8) == 0);
            LFS_FUZZ_CHECK(account.key_len <= sizeof(account.key));
        } else {
            check_error(&err, 500, secret);
        }
        break;
    }
    default: break;
    }
    free(text);
    return 0;
}
