/* Unit tests for storage/gcs_sign.c: every path-style case of Google's V4 signing conformance
 * vectors (tests/unit/data/gcs/v4_signatures.json, copied from googleapis/conformance-tests,
 * see SOURCE.txt) must reproduce the expected canonical request, string to sign and URL byte
 * for byte, both signed here and signed elsewhere (lfs_gcs_sign_begin, a signature as IAM
 * signBlob returns it, lfs_gcs_sign_end); plus key parsing errors, lifetime bounds, a non-default
 * port in the signed host, a check that the signature verifies with the key's public half, and the
 * gcs backend's own use of it (object names, endpoint forms, download disposition, option errors,
 * workload identity options). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/gcs_sign.h"
#include "storage/storage.h"
#include "vectors.h"

#ifndef LFS_TEST_DATA_DIR
#define LFS_TEST_DATA_DIR "tests/unit/data"
#endif
#define DATA(name) LFS_TEST_DATA_DIR "/gcs/" name

/* ---- helpers ---- */

static struct lfs_gcs_key *load_key(void)
{
    size_t len;
    char *text = read_file(DATA("test_service_account.not-a-test.json"), &len);
    struct lfs_gcs_key *key = NULL;
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_key_parse(text, len, &key, &err), 0);
    free(text);
    return key;
}

/* The test key's RSA key, as a remote signer (IAM signBlob) holds it. */
static EVP_PKEY *load_pkey(void)
{
    size_t len;
    char *text = read_file(DATA("test_service_account.not-a-test.json"), &len);
    json_t *sa = json_loads(text, 0, NULL);
    free(text);
    BIO *bio = BIO_new_mem_buf(json_string_value(json_object_get(sa, "private_key")), -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(pkey);
    BIO_free(bio);
    json_decref(sa);
    return pkey;
}

/* The URL of `in` signed the way workload identity does it: lfs_gcs_sign_begin, the string to
 * sign signed elsewhere (here with OpenSSL and the test key), lfs_gcs_sign_end. */
static void sign_remotely(EVP_PKEY *pkey, const struct lfs_gcs_sign_input *in,
                          struct lfs_gcs_signed *out)
{
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_sign_begin("test-iam-credentials@dummy-project-id.iam."
                                        "gserviceaccount.com",
                                        in, out, &err),
                     0);
    const char *tail = strstr(out->url, "&X-Goog-Signature=");
    assert_non_null(tail);
    assert_string_equal(tail, "&X-Goog-Signature="); /* nothing after it yet */
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->string_to_sign,
                                    strlen(out->string_to_sign)),
                     1);
    EVP_MD_CTX_free(md);
    assert_int_equal(lfs_gcs_sign_end(out, sig, siglen, &err), 0);
}

static int parse_error(const char *json, struct lfs_error *err)
{
    struct lfs_gcs_key *key = NULL;
    int rc = lfs_gcs_key_parse(json, strlen(json), &key, err);
    lfs_gcs_key_free(key);
    return rc;
}

static time_t parse_timestamp(const char *s)
{
    struct tm tm = {0};
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

/* "http://localhost:8080" -> scheme "http", authority "localhost:8080"; no scheme: def. */
static void split_endpoint(const char *endpoint, const char *def_scheme, char *scheme,
                           char *authority)
{
    const char *sep = strstr(endpoint, "://");
    if (sep != NULL) {
        snprintf(scheme, 16, "%.*s", (int)(sep - endpoint), endpoint);
        snprintf(authority, 256, "%s", sep + 3);
    } else {
        snprintf(scheme, 16, "%s", def_scheme);
        snprintf(authority, 256, "%s", endpoint);
    }
}

static const char *str(const json_t *t, const char *name)
{
    const json_t *v = json_object_get(t, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- conformance vectors ---- */

static void test_conformance_vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(DATA("v4_signatures.json"), 0, &jerr);
    assert_non_null(root);
    const json_t *tests = json_object_get(root, "signingV4Tests");
    assert_true(json_is_array(tests));
    struct lfs_gcs_key *key = load_key();
    EVP_PKEY *pkey = load_pkey();
    size_t checked = 0, path_style = 0;
    size_t i;
    const json_t *t;
    json_array_foreach(tests, i, t)
    {
        const char *desc = str(t, "description");
        const char *style = str(t, "urlStyle");
        const char *bucket = str(t, "bucket"), *object = str(t, "object");
        const char *scheme_field = str(t, "scheme") ? str(t, "scheme") : "https";
        char scheme[16], authority[256], host[256], path[1024], base_url[300];

        /* Where the client libraries send the request (the precedence the vectors encode:
         * hostname, then client endpoint, then emulator host, then universe domain). */
        if (str(t, "hostname") != NULL)
            split_endpoint(str(t, "hostname"), scheme_field, scheme, authority);
        else if (str(t, "clientEndpoint") != NULL)
            split_endpoint(str(t, "clientEndpoint"), scheme_field, scheme, authority);
        else if (str(t, "emulatorHostname") != NULL)
            split_endpoint(str(t, "emulatorHostname"), scheme_field, scheme, authority);
        else if (str(t, "universeDomain") != NULL)
            snprintf(authority, sizeof(authority), "storage.%s", str(t, "universeDomain")),
                snprintf(scheme, sizeof(scheme), "%s", scheme_field);
        else
            snprintf(authority, sizeof(authority), "storage.googleapis.com"),
                snprintf(scheme, sizeof(scheme), "%s", scheme_field);

        bool path_style_case = style == NULL || strcmp(style, "PATH_STYLE") == 0;
        if (path_style_case) {
            snprintf(path, sizeof(path), "/%s%s%s", bucket, object ? "/" : "",
                     object ? object : "");
        } else if (strcmp(style, "VIRTUAL_HOSTED_STYLE") == 0 && str(t, "universeDomain") == NULL) {
            /* Also covered, although not required. */
            snprintf(authority, sizeof(authority), "%s.storage.googleapis.com", bucket);
            snprintf(path, sizeof(path), "/%s", object ? object : "");
        } else if (strcmp(style, "BUCKET_BOUND_HOSTNAME") == 0) {
            snprintf(authority, sizeof(authority), "%s", str(t, "bucketBoundHostname"));
            snprintf(path, sizeof(path), "/%s", object ? object : "");
        } else {
            /* "Universe domain with virtual hosted style" contradicts itself (its URL and
             * its canonical host disagree): skipped. */
            continue;
        }
        /* The URL keeps the port the caller gave; the vectors sign the host without it
         * (the libraries strip it). lfsgate signs what the client sends instead: see
         * test_signed_host_port. */
        snprintf(base_url, sizeof(base_url), "%s://%s", scheme, authority);
        snprintf(host, sizeof(host), "%s", authority);
        char *colon = strrchr(host, ':');
        if (colon != NULL)
            *colon = '\0';

        struct lfs_gcs_param headers[16], query[16];
        size_t nh = 0, nq = 0;
        const char *name;
        const json_t *value;
        json_object_foreach((json_t *)json_object_get(t, "headers"), name, value)
        {
            assert_true(nh < 16);
            headers[nh++] = (struct lfs_gcs_param){name, json_string_value(value)};
        }
        json_object_foreach((json_t *)json_object_get(t, "queryParameters"), name, value)
        {
            assert_true(nq < 16);
            query[nq++] = (struct lfs_gcs_param){name, json_string_value(value)};
        }
        struct lfs_gcs_sign_input in = {
            .method = str(t, "method"),
            .base_url = base_url,
            .host = host,
            .path = path,
            .now = parse_timestamp(str(t, "timestamp")),
            .expires = (long)json_integer_value(json_object_get(t, "expiration")),
            .headers = headers,
            .nheaders = nh,
            .query = query,
            .nquery = nq,
        };
        struct lfs_gcs_signed out;
        struct lfs_error err = {0};
        if (lfs_gcs_sign(key, &in, &out, &err) < 0) {
            print_error("vector \"%s\": %s\n", desc, err.message);
            fail();
        }
        expect_same("canonical request", desc, str(t, "expectedCanonicalRequest"),
                    out.canonical_request);
        expect_same("string to sign", desc, str(t, "expectedStringToSign"), out.string_to_sign);
        expect_same("URL", desc, str(t, "expectedUrl"), out.url);
        lfs_gcs_signed_free(&out);
        /* The same URL when the signature comes from a remote signer. */
        sign_remotely(pkey, &in, &out);
        expect_same("URL signed remotely", desc, str(t, "expectedUrl"), out.url);
        lfs_gcs_signed_free(&out);
        checked++;
        path_style += path_style_case;
    }
    /* 25 of the 29 vectors are path style; 3 more (virtual-hosted, bucket-bound) pass too. */
    assert_int_equal(path_style, 25);
    assert_int_equal(checked, 28);
    EVP_PKEY_free(pkey);
    lfs_gcs_key_free(key);
    json_decref(root);
}

/* ---- what lfsgate itself signs ---- */

static void test_signed_host_port(void **state)
{
    (void)state;
    struct lfs_gcs_key *key = load_key();
    struct lfs_gcs_param q[] = {{"response-content-disposition", "attachment; filename=\"a b\""}};
    struct lfs_gcs_sign_input in = {
        .method = "GET",
        .base_url = "http://127.0.0.1:9023",
        .host = "127.0.0.1:9023",
        .path = "/bucket/pre/org/sub/repo/ab",
        .now = 1700000000,
        .expires = 900,
        .query = q,
        .nquery = 1,
    };
    struct lfs_gcs_signed out;
    struct lfs_error err = {0};
    assert_int_equal(lfs_gcs_sign(key, &in, &out, &err), 0);
    assert_non_null(
        strstr(out.canonical_request, "\nhost:127.0.0.1:9023\n\nhost\nUNSIGNED-PAYLOAD"));
    assert_non_null(strstr(out.url, "http://127.0.0.1:9023/bucket/pre/org/sub/repo/ab?"));
    assert_non_null(strstr(out.url, "&X-Goog-Expires=900&"));
    assert_non_null(strstr(out.url, "&X-Goog-SignedHeaders=host&response-content-disposition="
                                    "attachment%3B%20filename%3D%22a%20b%22&X-Goog-Signature="));

    /* The signature verifies with the public half of the key over the string to sign. */
    EVP_PKEY *pkey = load_pkey();
    const char *hex = strstr(out.url, "X-Goog-Signature=") + strlen("X-Goog-Signature=");
    assert_int_equal(strlen(hex), 512);
    unsigned char sig[256];
    for (size_t i = 0; i < 256; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        sig[i] = (unsigned char)v;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, sizeof(sig),
                                      (const unsigned char *)out.string_to_sign,
                                      strlen(out.string_to_sign)),
                     1);
    /* ... and not over anything else. */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, sizeof(sig), (const unsigned char *)"x", 1), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    lfs_gcs_signed_free(&out);
    lfs_gcs_key_free(key);
}

static void test_expires_bounds(void **state)
{
    (void)state;
    struct lfs_gcs_key *key = load_key();
    struct lfs_gcs_sign_input in = {
        .method = "PUT",
        .base_url = "https://storage.googleapis.com",
        .host = "storage.googleapis.com",
        .path = "/b/o",
        .now = 1700000000,
    };
    struct lfs_gcs_signed out;
    struct lfs_error err = {0};
    in.expires = 0;
    assert_int_equal(lfs_gcs_sign(key, &in, &out, &err), -1);
    assert_null(out.url);
    in.expires = 604801;
    assert_int_equal(lfs_gcs_sign(key, &in, &out, &err), -1);
    assert_non_null(strstr(err.message, "604800"));
    in.expires = 604800;
    assert_int_equal(lfs_gcs_sign(key, &in, &out, &err), 0);
    assert_non_null(strstr(out.url, "X-Goog-Expires=604800"));
    lfs_gcs_signed_free(&out);
    /* A remote signer's answer that is not an RSA signature leaves the URL unsigned. */
    in.expires = 60;
    assert_int_equal(lfs_gcs_sign_begin("a@b.c", &in, &out, &err), 0);
    unsigned char big[LFS_GCS_MAX_SIGNATURE + 1] = {0};
    assert_int_equal(lfs_gcs_sign_end(&out, big, 0, &err), -1);
    assert_int_equal(lfs_gcs_sign_end(&out, big, sizeof(big), &err), -1);
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(out.url, "X-Goog-Credential=a%40b.c%2F20231114%2Fauto%2Fstorage"));
    assert_string_equal(strstr(out.url, "&X-Goog-Signature="), "&X-Goog-Signature=");
    assert_int_equal(lfs_gcs_sign_end(&out, big, 2, &err), 0);
    assert_string_equal(strstr(out.url, "&X-Goog-Signature="), "&X-Goog-Signature=0000");
    lfs_gcs_signed_free(&out);
    /* Header values cannot smuggle lines into the canonical request. */
    struct lfs_gcs_param h[] = {{"x-goog-meta-a", "v\nhost:evil"}};
    in.headers = h;
    in.nheaders = 1;
    assert_int_equal(lfs_gcs_sign(key, &in, &out, &err), -1);
    lfs_gcs_key_free(key);
}

static void test_key_errors(void **state)
{
    (void)state;
    struct lfs_error err = {0};
    assert_int_equal(parse_error("{not json", &err), -1);
    assert_non_null(strstr(err.message, "invalid JSON"));
    assert_int_equal(parse_error("[1]", &err), -1);
    assert_int_equal(parse_error("{\"private_key\": \"x\"}", &err), -1);
    assert_non_null(strstr(err.message, "client_email"));
    assert_int_equal(parse_error("{\"client_email\": \"a@b\"}", &err), -1);
    assert_non_null(strstr(err.message, "private_key"));
    assert_int_equal(parse_error("{\"type\": \"authorized_user\", \"client_email\": \"a@b\", "
                                 "\"private_key\": \"x\"}",
                                 &err),
                     -1);
    assert_non_null(strstr(err.message, "service_account"));
    /* A private key that is not PEM: the message does not quote it. */
    assert_int_equal(
        parse_error("{\"client_email\": \"a@b\", \"private_key\": \"SECRETSTUFF\"}", &err), -1);
    assert_non_null(strstr(err.message, "not a PEM private key"));
    assert_null(strstr(err.message, "SECRETSTUFF"));

    /* An EC key is refused: GOOG4-RSA-SHA256 needs RSA. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long n = BIO_get_mem_data(bio, &pem);
    json_t *doc = json_pack("{s:s, s:s%}", "client_email", "a@b", "private_key", pem, (size_t)n);
    char *text = json_dumps(doc, 0);
    assert_int_equal(parse_error(text, &err), -1);
    assert_non_null(strstr(err.message, "not an RSA key"));
    free(text);
    json_decref(doc);
    BIO_free(bio);
    EVP_PKEY_free(ec);

    struct lfs_gcs_key *key = load_key();
    assert_string_equal(lfs_gcs_key_email(key),
                        "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com");
    lfs_gcs_key_free(key);
}

/* ---- the gcs backend (storage/gcs.c) through its ops ---- */

#define OID64 "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

static int create_gcs(const char *json, struct lfs_storage **out, struct lfs_error *err)
{
    const struct lfs_storage_ops *ops =
        lfs_storage_find("giftless.storage.google_cloud:GoogleCloudStorage");
    assert_non_null(ops);
    assert_ptr_equal(ops, lfs_storage_find("gcs"));
    char *text = NULL;
    /* KEY in the JSON stands for the test key file. */
    const char *at = strstr(json, "KEY");
    if (at != NULL) {
        size_t n = strlen(json) + strlen(DATA("test_service_account.not-a-test.json")) + 1;
        text = malloc(n);
        snprintf(text, n, "%.*s%s%s", (int)(at - json), json,
                 DATA("test_service_account.not-a-test.json"), at + 3);
    }
    json_t *options = json_loads(text != NULL ? text : json, 0, NULL);
    free(text);
    assert_non_null(options);
    int rc = ops->create(options, "A.storage_options", out, err);
    json_decref(options);
    return rc;
}

/* What a sign operation answered. */
struct signed_answer {
    int calls;
    const char *href;
    const char *const *header;
    struct lfs_error err;
};

static void on_signed(void *arg, const struct lfs_storage_request *out, const struct lfs_error *err)
{
    struct signed_answer *a = arg;
    a->calls++;
    if (out != NULL) {
        a->href = out->href;
        a->header = out->header;
    } else {
        a->err = *err;
    }
}

static const char *sign_href(struct lfs_storage *st, enum lfs_sign_op op, const char *filename,
                             const char *disposition, h2o_mem_pool_t *pool)
{
    struct lfs_object_key key = {.org_path = "group/sub", .repo = "repo", .oid = OID64};
    struct lfs_sign_request req = {.op = op,
                                   .lifetime = 900,
                                   .now = 1700000000,
                                   .size = 5,
                                   .filename = filename,
                                   .disposition = disposition};
    struct signed_answer answer = {0};
    /* With a key, signing is CPU work: the answer comes before sign returns (no loop). */
    struct lfs_io io = {.ctx = NULL, .pool = pool};
    st->ops->sign(st, &io, &key, &req, on_signed, &answer);
    assert_int_equal(answer.calls, 1);
    assert_int_equal(answer.err.status, 0);
    assert_null(answer.header);
    return answer.href;
}

static void test_backend_sign(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    assert_int_equal(create_gcs("{\"project_name\": \"p\", \"bucket_name\": \"my-bucket\", "
                                "\"account_key_file\": \"KEY\", \"path_prefix\": \"/lfs/v1/\"}",
                                &st, &err),
                     0);
    const char *href = sign_href(st, LFS_SIGN_UPLOAD, NULL, NULL, &pool);
    assert_non_null(strstr(href,
                           "https://storage.googleapis.com/my-bucket/lfs/v1/group/sub/repo/" OID64
                           "?X-Goog-Algorithm=GOOG4-RSA-SHA256&"));
    assert_non_null(strstr(href, "&X-Goog-Date=20231114T221320Z&X-Goog-Expires=900&"
                                 "X-Goog-SignedHeaders=host&X-Goog-Signature="));
    href = sign_href(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool);
    assert_null(strstr(href, "response-content-disposition"));
    href = sign_href(st, LFS_SIGN_DOWNLOAD, "a\"b.csv", NULL, &pool);
    assert_non_null(strstr(href,
                           "&response-content-disposition=attachment%3B%20filename%3D%22a_b.csv"
                           "%22%3B%20filename%2A%3DUTF-8%27%27a%2522b.csv&X-Goog-Signature="));
    href = sign_href(st, LFS_SIGN_DOWNLOAD, NULL, "inline", &pool);
    assert_non_null(strstr(href, "&response-content-disposition=inline&"));
    st->ops->destroy(st);

    /* The endpoint: a default port is left out, others kept (and signed: see above). */
    static const char *const endpoints[][2] = {
        {"https://storage.googleapis.com:443/", "https://storage.googleapis.com/b-1/group/"},
        {"http://127.0.0.1:80", "http://127.0.0.1/b-1/group/"},
        {"http://127.0.0.1:9000", "http://127.0.0.1:9000/b-1/group/"},
        {"https://[::1]:8443", "https://[::1]:8443/b-1/group/"},
    };
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"bucket_name\": \"b-1\", \"account_key_file\": \"KEY\", \"endpoint\": \"%s\"}",
                 endpoints[i][0]);
        assert_int_equal(create_gcs(json, &st, &err), 0);
        href = sign_href(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool);
        assert_memory_equal(href, endpoints[i][1], strlen(endpoints[i][1]));
        st->ops->destroy(st);
    }
    h2o_mem_clear_pool(&pool);
}

static void expect_create_error(const char *json, const char *message)
{
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    assert_int_equal(create_gcs(json, &st, &err), -1);
    if (strstr(err.message, message) == NULL) {
        print_error("options %s: expected \"%s\" in \"%s\"\n", json, message, err.message);
        fail();
    }
    assert_null(strstr(err.message, "PRIVATE KEY"));
}

static void test_backend_options(void **state)
{
    (void)state;
    /* Workload identity: the email, the IAM endpoint and GCE_METADATA_HOST are checked. */
    expect_create_error("{\"bucket_name\": \"b-1\", \"serviceaccount_email\": \"lfs at p\"}",
                        "A.storage_options.serviceaccount_email: expected a service account's "
                        "email");
    expect_create_error("{\"bucket_name\": \"b-1\", \"serviceaccount_email\": \"a@b@c\"}",
                        "A.storage_options.serviceaccount_email: expected");
    expect_create_error("{\"bucket_name\": \"b-1\", \"serviceaccount_email\": "
                        "\"lfs@p.iam.gserviceaccount.com\", \"iam_endpoint\": \"ftp://x\"}",
                        "A.storage_options.iam_endpoint: expected http(s)://host[:port]");
    setenv("GCE_METADATA_HOST", "169.254.169.254/x", 1);
    expect_create_error("{\"bucket_name\": \"b-1\", \"serviceaccount_email\": "
                        "\"lfs@p.iam.gserviceaccount.com\"}",
                        "A.storage_options: the environment variable GCE_METADATA_HOST: expected "
                        "host[:port] of the metadata server, got \"169.254.169.254/x\"");
    setenv("GCE_METADATA_HOST", "127.0.0.1:8089", 1);
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    assert_int_equal(create_gcs("{\"bucket_name\": \"b-1\", \"serviceaccount_email\": "
                                "\"lfs@p.iam.gserviceaccount.com\", \"iam_endpoint\": "
                                "\"http://127.0.0.1:8090\"}",
                                &st, &err),
                     0);
    st->ops->destroy(st);
    unsetenv("GCE_METADATA_HOST");
    expect_create_error("{\"bucket_name\": \"b-1\"}",
                        "A.storage_options.account_key_file: required");
    expect_create_error(
        "{\"bucket_name\": \"b-1\", \"account_key_file\": \"KEY\", "
        "\"account_key_base64\": \"e30=\"}",
        "A.storage_options: give exactly one of account_key_file and account_key_base64");
    expect_create_error("{\"account_key_file\": \"KEY\"}",
                        "A.storage_options.bucket_name: required");
    expect_create_error("{\"bucket_name\": \"Bad/Bucket\", \"account_key_file\": \"KEY\"}",
                        "A.storage_options.bucket_name: \"Bad/Bucket\" is not a valid bucket name");
    expect_create_error("{\"bucket_name\": \"b-1\", \"account_key_base64\": \"e30=\"}",
                        "A.storage_options.account_key_base64: not a service-account key: missing "
                        "\"client_email\"");
    expect_create_error("{\"bucket_name\": \"b-1\", \"account_key_base64\": \"%%%\"}",
                        "A.storage_options.account_key_base64: not valid base64");
    expect_create_error("{\"bucket_name\": \"b-1\", \"account_key_file\": \"/nonexistent/k.json\"}",
                        "A.storage_options.account_key_file: cannot read \"/nonexistent/k.json\"");
    expect_create_error(
        "{\"bucket_name\": \"b-1\", \"account_key_file\": \"KEY\", \"path_prefix\": "
        "\"a/../b\"}",
        "A.storage_options.path_prefix: expected");
    expect_create_error(
        "{\"bucket_name\": \"b-1\", \"account_key_file\": \"KEY\", \"bucket\": \"x\"}",
        "A.storage_options.bucket: unknown key");
    static const char *const bad_endpoints[] = {
        "storage.googleapis.com", "ftp://x",     "https://",    "https://h/path", "https://h:0",
        "https://h:65536",        "https://u@h", "https://h:x", "https://[::1",   "https://h h",
    };
    for (size_t i = 0; i < sizeof(bad_endpoints) / sizeof(bad_endpoints[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"bucket_name\": \"b-1\", \"account_key_file\": \"KEY\", \"endpoint\": \"%s\"}",
                 bad_endpoints[i]);
        expect_create_error(json, "A.storage_options.endpoint: expected http(s)://host[:port]");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_vectors), cmocka_unit_test(test_signed_host_port),
        cmocka_unit_test(test_expires_bounds),      cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_backend_sign),        cmocka_unit_test(test_backend_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
