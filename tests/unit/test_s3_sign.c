/* Unit tests for storage/s3_sign.c: every case of the aws-c-auth SigV4 suite
 * (tests/unit/data/aws/aws-c-auth-v4, see SOURCE.txt), in both header and query (presigned)
 * form, must reproduce the expected canonical request, string to sign, signature and
 * Authorization header byte for byte; so must the S3 documentation's presigned GET and its
 * header-signed ranged GET (aws_docs_s3_examples.json). Plus lifetime bounds, refused line
 * breaks, the session token in presigned URLs, and the shared credentials file reader; and the
 * s3 backend through its ops: URLs for both addressing styles, the signed checksum and content
 * type of uploads, download disposition, regions, option errors and the credential chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "common/util.h"
#include "storage/s3_sign.h"
#include "storage/storage.h"
#include "vectors.h"

#ifndef LFS_TEST_DATA_DIR
#define LFS_TEST_DATA_DIR "tests/unit/data"
#endif
#define SUITE LFS_TEST_DATA_DIR "/aws/aws-c-auth-v4"

/* ---- helpers ---- */

/* dir/name's text (NUL-terminated, malloc'd), or NULL when it does not exist. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    size_t n;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (access(path, R_OK) != 0)
        return NULL;
    return read_file(path, len != NULL ? len : &n);
}

static time_t parse_timestamp(const char *s)
{
    struct tm tm = {0};
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

static const char *jstr(const json_t *t, const char *name)
{
    const json_t *v = json_object_get(t, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A request of the suite (request.txt), split into what lfs_s3_sign takes. */
struct raw_request {
    char method[16];
    char path[256];
    char host[256];
    struct lfs_s3_param query[16], headers[16];
    size_t nquery, nheaders;
    char *body;
    size_t body_len;
    char store[4096]; /* the strings the params point into */
    size_t used;
};

static char *keep(struct raw_request *r, const char *s, size_t n)
{
    assert_true(r->used + n + 1 <= sizeof(r->store));
    char *out = r->store + r->used;
    memcpy(out, s, n);
    out[n] = '\0';
    r->used += n + 1;
    return out;
}

/* Percent-decoded copy (the suite writes some query parameters encoded). */
static char *keep_decoded(struct raw_request *r, const char *s, size_t n)
{
    char tmp[1024];
    assert_true(n < sizeof(tmp));
    size_t d = lfs_url_decode(s, n, tmp);
    assert_true(d != (size_t)-1);
    return keep(r, tmp, d);
}

static void parse_request(char *text, struct raw_request *r)
{
    memset(r, 0, sizeof(*r));
    char *line_end = strchr(text, '\n');
    assert_non_null(line_end);
    char *sp1 = strchr(text, ' '), *sp2 = strstr(text, " HTTP/1.1");
    assert_non_null(sp1);
    assert_non_null(sp2);
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp1 - text), text);
    char *target = sp1 + 1, *q = memchr(target, '?', (size_t)(sp2 - target));
    char *path_end = q != NULL ? q : sp2;
    snprintf(r->path, sizeof(r->path), "%.*s", (int)(path_end - target), target);
    if (q != NULL) {
        for (char *p = q + 1; p < sp2;) {
            char *amp = memchr(p, '&', (size_t)(sp2 - p));
            char *e = amp != NULL ? amp : sp2;
            char *eq = memchr(p, '=', (size_t)(e - p));
            r->query[r->nquery].name = keep_decoded(r, p, (size_t)((eq != NULL ? eq : e) - p));
            r->query[r->nquery].value =
                eq != NULL ? keep_decoded(r, eq + 1, (size_t)(e - eq - 1)) : keep(r, "", 0);
            r->nquery++;
            p = e + 1;
        }
    }
    /* Header lines; a line starting with a blank continues the previous value (obs-fold,
     * which HTTP replaces with a space). An empty line starts the body. */
    char *p = line_end + 1;
    char value[1024];
    int last = -1;
    while (*p != '\0') {
        char *e = strchr(p, '\n');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n == 0) {
            r->body = e + 1;
            r->body_len = strlen(r->body);
            break;
        }
        if ((*p == ' ' || *p == '\t') && last >= 0) {
            snprintf(value, sizeof(value), "%s %.*s", r->headers[last].value, (int)n, p);
            r->headers[last].value = keep(r, value, strlen(value));
        } else {
            char *colon = memchr(p, ':', n);
            assert_non_null(colon);
            if ((size_t)(colon - p) == 4 && strncasecmp(p, "host", 4) == 0) {
                snprintf(r->host, sizeof(r->host), "%.*s", (int)(n - 5), colon + 1);
                last = -1;
            } else {
                assert_true(r->nheaders < 16);
                r->headers[r->nheaders].name = keep(r, p, (size_t)(colon - p));
                r->headers[r->nheaders].value = keep(r, colon + 1, n - (size_t)(colon - p) - 1);
                last = (int)r->nheaders++;
            }
        }
        p = e != NULL ? e + 1 : p + n;
    }
}

/* The file's text without one trailing newline run (the suite's files vary). */
static char *expected(const char *dir, const char *name)
{
    char *s = slurp(dir, name, NULL);
    assert_non_null(s);
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* The value of "Authorization:" in a signed request file, or NULL. */
static char *authorization_of(char *signed_request)
{
    char *a = strstr(signed_request, "\nAuthorization:");
    if (a == NULL)
        return NULL;
    a += strlen("\nAuthorization:");
    a[strcspn(a, "\r\n")] = '\0';
    return a;
}

/* Runs one case of the suite in one form; returns after the checks (fails on a mismatch). */
static void run_case(const char *dir, const char *desc, bool presign)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    json_error_t jerr;
    char ctxpath[1024];
    snprintf(ctxpath, sizeof(ctxpath), "%s/context.json", dir);
    json_t *ctx = json_load_file(ctxpath, 0, &jerr);
    assert_non_null(ctx);
    const json_t *creds = json_object_get(ctx, "credentials");
    bool omit_token = json_is_true(json_object_get(ctx, "omit_session_token"));
    /* omit_session_token: the token is added after signing, so it is not signed at all. */
    struct lfs_s3_credentials cred = {
        .access_key_id = jstr(creds, "access_key_id"),
        .secret_access_key = jstr(creds, "secret_access_key"),
        .session_token = omit_token ? NULL : jstr(creds, "token"),
    };
    char *text = slurp(dir, "request.txt", NULL);
    assert_non_null(text);
    struct raw_request r;
    parse_request(text, &r);
    char body_hash[65];
    bool sign_body = json_is_true(json_object_get(ctx, "sign_body"));
    if (sign_body) {
        unsigned char md[32];
        SHA256((const unsigned char *)r.body, r.body_len, md);
        lfs_hex_encode(md, 32, body_hash);
    }
    struct lfs_s3_sign_input in = {
        .method = r.method,
        .host = r.host,
        .path = r.path,
        .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
        .query = r.query,
        .nquery = r.nquery,
        .headers = r.headers,
        .nheaders = r.nheaders,
        .payload_hash = sign_body ? body_hash : NULL,
        .content_sha256_header = sign_body,
        .region = jstr(ctx, "region"),
        .service = jstr(ctx, "service"),
        .now = parse_timestamp(jstr(ctx, "timestamp")),
        .expires =
            presign ? (long)json_integer_value(json_object_get(ctx, "expiration_in_seconds")) : 0,
    };
    struct lfs_s3_signed out;
    struct lfs_error err = {0};
    if (lfs_s3_sign(&cred, &in, &pool, &out, &err) < 0) {
        print_error("vector \"%s\": %s\n", desc, err.message);
        fail();
    }
    const char *form = presign ? "query-" : "header-";
    char name[64], what[96];
    const char *parts[] = {"canonical-request.txt", "string-to-sign.txt", "signature.txt"};
    const char *got[] = {out.canonical_request, out.string_to_sign, out.signature};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%s", form, parts[i]);
        snprintf(what, sizeof(what), "%s", name);
        char *want = expected(dir, name);
        expect_same(what, desc, want, got[i]);
        free(want);
    }
    char *signed_request =
        expected(dir, presign ? "query-signed-request.txt" : "header-signed-request.txt");
    if (presign) {
        /* The suite orders the URL's parameters its own way, and leaves some of them
         * unencoded: each of ours, decoded, is in it, decoded. */
        assert_non_null(strstr(signed_request, out.signature));
        char *q = strdup(out.query), *decoded_request = strdup(signed_request);
        decoded_request[lfs_url_decode(signed_request, strlen(signed_request), decoded_request)] =
            '\0';
        char *save = NULL;
        for (char *p = strtok_r(q, "&", &save); p != NULL; p = strtok_r(NULL, "&", &save)) {
            p[lfs_url_decode(p, strlen(p), p)] = '\0';
            if (strstr(decoded_request, p) == NULL) {
                print_error("vector \"%s\": query parameter %s not in the signed URL\n", desc, p);
                fail();
            }
        }
        free(decoded_request);
        free(q);
    } else {
        const char *want = authorization_of(signed_request);
        assert_non_null(want);
        expect_same("Authorization header", desc, want, out.authorization);
    }
    free(signed_request);
    free(text);
    json_decref(ctx);
    h2o_mem_clear_pool(&pool);
}

static void test_aws_c_auth_suite(void **state)
{
    (void)state;
    DIR *d = opendir(SUITE);
    assert_non_null(d);
    size_t cases = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", SUITE, e->d_name);
        char *ctx = slurp(dir, "context.json", NULL);
        if (ctx == NULL)
            continue; /* SOURCE.txt */
        free(ctx);
        run_case(dir, e->d_name, false);
        run_case(dir, e->d_name, true);
        cases++;
    }
    closedir(d);
    /* Every case of the suite as copied (38), none skipped. */
    assert_int_equal(cases, 38);
}

/* ---- the S3 documentation's examples ---- */

static void test_s3_docs_examples(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    json_t *root = json_load_file(LFS_TEST_DATA_DIR "/aws/aws_docs_s3_examples.json", 0, NULL);
    assert_non_null(root);

    const json_t *ex = json_object_get(root, "presignedGetObject");
    struct lfs_s3_credentials cred = {.access_key_id = jstr(ex, "accessKeyId"),
                                      .secret_access_key = jstr(ex, "secretAccessKey")};
    struct tm tm = {0};
    assert_non_null(strptime(jstr(ex, "timestamp"), "%Y%m%dT%H%M%SZ", &tm));
    struct lfs_s3_sign_input in = {
        .method = "GET",
        .host = "examplebucket.s3.amazonaws.com",
        .path = "/test.txt",
        .payload_hash = LFS_S3_UNSIGNED_PAYLOAD,
        .region = jstr(ex, "region"),
        .service = jstr(ex, "service"),
        .now = timegm(&tm),
        .expires = (long)json_integer_value(json_object_get(ex, "expires")),
    };
    struct lfs_s3_signed out;
    struct lfs_error err = {0};
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    expect_same("canonical request", "presignedGetObject", jstr(ex, "canonicalRequest"),
                out.canonical_request);
    expect_same("string to sign", "presignedGetObject", jstr(ex, "stringToSign"),
                out.string_to_sign);
    expect_same("signature", "presignedGetObject", jstr(ex, "signature"), out.signature);
    char url[2048];
    snprintf(url, sizeof(url), "https://%s%s?%s", in.host, out.encoded_path, out.query);
    expect_same("URL", "presignedGetObject", jstr(ex, "url"), url);

    /* Header authorization of a ranged GET, with x-amz-content-sha256 signed. */
    ex = json_object_get(root, "headerAuthGetObjectRange");
    const json_t *h = json_object_get(ex, "headers");
    struct lfs_s3_param range[] = {{"Range", jstr(h, "range")}};
    in = (struct lfs_s3_sign_input){
        .method = jstr(ex, "method"),
        .host = jstr(h, "host"),
        .path = jstr(ex, "path"),
        .headers = range,
        .nheaders = 1,
        .payload_hash = jstr(h, "x-amz-content-sha256"),
        .content_sha256_header = true,
        .region = "us-east-1",
        .service = "s3",
        .now = timegm(&tm),
    };
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    assert_string_equal(out.amz_date, jstr(h, "x-amz-date"));
    /* The docs write the header without the blanks after the commas; both forms are valid. */
    char want[512];
    const char *a = jstr(ex, "authorization");
    size_t n = 0;
    for (; *a != '\0' && n + 2 < sizeof(want); a++) {
        want[n++] = *a;
        if (*a == ',')
            want[n++] = ' ';
    }
    want[n] = '\0';
    expect_same("Authorization", "headerAuthGetObjectRange", want, out.authorization);
    json_decref(root);
    h2o_mem_clear_pool(&pool);
}

/* ---- what lfsgate itself signs ---- */

static void test_presign_token_and_bounds(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_s3_credentials cred = {"AKIDEXAMPLE", "secret", "tok/en+="};
    struct lfs_s3_param hdr[] = {{"x-amz-checksum-sha256", "abc="}};
    struct lfs_s3_sign_input in = {
        .method = "PUT",
        .host = "127.0.0.1:9000",
        .path = "/bucket/pre fix/o~k",
        .headers = hdr,
        .nheaders = 1,
        .payload_hash = LFS_S3_UNSIGNED_PAYLOAD,
        .region = "eu-west-1",
        .service = "s3",
        .now = 1700000000,
        .expires = 900,
    };
    struct lfs_s3_signed out;
    struct lfs_error err = {0};
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    assert_string_equal(out.encoded_path, "/bucket/pre%20fix/o~k");
    assert_null(out.authorization);
    /* The token is signed into the URL, encoded; the checksum header is a signed header. */
    assert_non_null(strstr(out.query, "&X-Amz-Security-Token=tok%2Fen%2B%3D&"));
    assert_non_null(
        strstr(out.query, "&X-Amz-SignedHeaders=host%3Bx-amz-checksum-sha256&X-Amz-Signature="));
    assert_non_null(strstr(out.canonical_request, "\nhost:127.0.0.1:9000\nx-amz-checksum-sha256:"
                                                  "abc=\n\nhost;x-amz-checksum-sha256\n"
                                                  "UNSIGNED-PAYLOAD"));
    assert_non_null(strstr(out.query, "X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fs3%2F"
                                      "aws4_request&"));
    /* Another secret gives another signature over the same string to sign. */
    char first[65];
    snprintf(first, sizeof(first), "%s", out.signature);
    cred.secret_access_key = "secreT";
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    assert_string_not_equal(first, out.signature);

    /* Header auth: the token is a signed header, not a query parameter. */
    in.expires = 0;
    in.content_sha256_header = true;
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    assert_string_equal(out.query, "");
    assert_non_null(strstr(out.authorization, "SignedHeaders=host;x-amz-checksum-sha256;"
                                              "x-amz-content-sha256;x-amz-date;"
                                              "x-amz-security-token, Signature="));
    assert_non_null(strstr(out.canonical_request, "\nx-amz-security-token:tok/en+=\n"));

    /* Lifetimes: 1..604800. */
    in.expires = 604801;
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), -1);
    assert_non_null(strstr(err.message, "604800"));
    in.expires = -1;
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), -1);
    in.expires = 604800;
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), 0);
    assert_non_null(strstr(out.query, "X-Amz-Expires=604800&"));
    /* No line can be smuggled into the canonical request, and the message quotes nothing. */
    struct lfs_s3_param bad[] = {{"x-amz-meta-a", "v\nhost:evil"}};
    in.headers = bad;
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), -1);
    assert_null(strstr(err.message, "evil"));
    in.headers = hdr;
    in.host = "a\r\nb";
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), -1);
    in.host = "h";
    cred.session_token = "t\nx";
    assert_int_equal(lfs_s3_sign(&cred, &in, &pool, &out, &err), -1);
    h2o_mem_clear_pool(&pool);
}

/* ---- the shared credentials file ---- */

static void test_profile_parse(void **state)
{
    (void)state;
    const char *file = "# comment\n"
                       "[default]\n"
                       "aws_access_key_id = AKIDDEFAULT\n"
                       "aws_secret_access_key=secretdefault  \r\n"
                       "\n"
                       "[ ci ]\n"
                       "; another comment\n"
                       "AWS_ACCESS_KEY_ID = AKIDCI\n"
                       "aws_secret_access_key = secretci\n"
                       "aws_session_token = tokenci\n"
                       "region = eu-west-1\n"
                       "[role]\n"
                       "role_arn = arn:aws:iam::1:role/x\n"
                       "source_profile = default\n"
                       "[half]\n"
                       "aws_access_key_id = AKIDHALF\n";
    struct lfs_s3_profile p;
    struct lfs_error err = {0};
    assert_int_equal(lfs_s3_profile_parse(file, strlen(file), "default", &p, &err), 1);
    assert_string_equal(p.access_key_id, "AKIDDEFAULT");
    assert_string_equal(p.secret_access_key, "secretdefault");
    assert_string_equal(p.session_token, "");
    assert_int_equal(lfs_s3_profile_parse(file, strlen(file), "ci", &p, &err), 1);
    assert_string_equal(p.access_key_id, "AKIDCI");
    assert_string_equal(p.secret_access_key, "secretci");
    assert_string_equal(p.session_token, "tokenci");
    assert_int_equal(lfs_s3_profile_parse(file, strlen(file), "nope", &p, &err), 0);
    assert_int_equal(lfs_s3_profile_parse(file, strlen(file), "role", &p, &err), -1);
    assert_non_null(strstr(err.message, "role_arn"));
    assert_int_equal(lfs_s3_profile_parse(file, strlen(file), "half", &p, &err), -1);
    assert_non_null(strstr(err.message, "aws_secret_access_key"));
    assert_null(strstr(err.message, "AKIDHALF"));
    assert_string_equal(p.access_key_id, "");
    /* Only the given length is read. */
    assert_int_equal(lfs_s3_profile_parse(file, 40, "default", &p, &err), -1);
}

/* ---- the s3 backend (storage/s3.c) through its ops ---- */

/* sha256("foo"), and the same 32 bytes in base64 (the x-amz-checksum-sha256 of the upload). */
#define OID64 "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define OID64_B64 "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="

static void clear_aws_env(void)
{
    const char *vars[] = {"AWS_ACCESS_KEY_ID",
                          "AWS_SECRET_ACCESS_KEY",
                          "AWS_SESSION_TOKEN",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "AWS_PROFILE",
                          "AWS_REGION",
                          "AWS_DEFAULT_REGION",
                          "AWS_WEB_IDENTITY_TOKEN_FILE",
                          "AWS_ROLE_ARN",
                          "AWS_ROLE_SESSION_NAME",
                          "AWS_STS_ENDPOINT",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                          "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    /* Otherwise IMDS, the last source, would always be "found". */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", "/nonexistent-home-for-s3-test", 1);
}

static int create_s3(const char *json, struct lfs_storage **out, struct lfs_error *err)
{
    const struct lfs_storage_ops *ops =
        lfs_storage_find("giftless.storage.amazon_s3:AmazonS3Storage");
    assert_non_null(ops);
    assert_ptr_equal(ops, lfs_storage_find("s3"));
    json_t *options = json_loads(json, 0, NULL);
    assert_non_null(options);
    int rc = ops->create(options, "A.storage_options", out, err);
    json_decref(options);
    return rc;
}

struct signed_url {
    struct lfs_storage_request *out;
    int *calls;
};

static void on_signed(void *arg, const struct lfs_storage_request *out, const struct lfs_error *err)
{
    struct signed_url *a = arg;
    (*a->calls)++;
    if (err != NULL)
        fail_msg("sign: %s", err->message);
    *a->out = *out;
}

static struct lfs_storage_request sign_object(struct lfs_storage *st, enum lfs_sign_op op,
                                              const char *filename, const char *content_type,
                                              h2o_mem_pool_t *pool)
{
    struct lfs_object_key key = {.org_path = "group/sub", .repo = "repo", .oid = OID64};
    struct lfs_sign_request req = {.op = op,
                                   .lifetime = 900,
                                   .now = 1700000000,
                                   .size = 3,
                                   .filename = filename,
                                   .content_type = content_type};
    struct lfs_storage_request url = {0};
    /* Signing with a key is CPU work: the answer comes before sign returns (no loop). */
    struct lfs_io io = {.ctx = NULL, .pool = pool};
    int calls = 0;
    struct signed_url answer = {.out = &url, .calls = &calls};
    st->ops->sign(st, &io, &key, &req, on_signed, &answer);
    assert_int_equal(calls, 1);
    return url;
}

static void test_backend_sign(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    clear_aws_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};

    /* An S3-compatible store: path style by default, the port kept in the signed host. */
    assert_int_equal(create_s3("{\"bucket_name\": \"lfs-bucket\", \"path_prefix\": \"/lfs/v1/\", "
                               "\"endpoint\": \"http://127.0.0.1:9000/\"}",
                               &st, &err),
                     0);
    assert_true(st->ops->caps & LFS_STORAGE_SIGNED_URLS);
    struct lfs_storage_request up = sign_object(st, LFS_SIGN_UPLOAD, NULL, NULL, &pool);
    const char *base = "http://127.0.0.1:9000/lfs-bucket/lfs/v1/group/sub/repo/" OID64 "?";
    assert_memory_equal(up.href, base, strlen(base));
    assert_non_null(strstr(up.href, "X-Amz-Credential=AKIDTEST%2F20231114%2Fus-east-1%2Fs3%2F"
                                    "aws4_request&X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&"
                                    "X-Amz-SignedHeaders=host%3Bx-amz-checksum-sha256&"
                                    "X-Amz-Signature="));
    assert_null(strstr(up.href, "Security-Token"));
    assert_null(up.method);
    /* The client sends the checksum S3 verifies: the oid's bytes in base64. */
    assert_non_null(up.header);
    assert_string_equal(up.header[0], "x-amz-checksum-sha256");
    assert_string_equal(up.header[1], OID64_B64);
    assert_null(up.header[2]);
    /* A content type the client names is signed and sent too. */
    up = sign_object(st, LFS_SIGN_UPLOAD, NULL, "text/csv", &pool);
    assert_non_null(
        strstr(up.href, "X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256&"));
    assert_string_equal(up.header[2], "Content-Type");
    assert_string_equal(up.header[3], "text/csv");
    /* Downloads: a GET, with the filename as a signed response-content-disposition. */
    struct lfs_storage_request down = sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool);
    assert_memory_equal(down.href, base, strlen(base));
    assert_non_null(strstr(down.href, "X-Amz-SignedHeaders=host&X-Amz-Signature="));
    assert_null(down.header);
    down = sign_object(st, LFS_SIGN_DOWNLOAD, "a b.csv", NULL, &pool);
    assert_non_null(strstr(down.href, "&response-content-disposition=attachment%3B%20filename%3D%"
                                      "22a%20b.csv%22%3B%20filename%2A%3DUTF-8%27%27a%2520b.csv&"));
    /* The two signatures differ (the disposition is signed). */
    assert_string_not_equal(
        strstr(down.href, "X-Amz-Signature="),
        strstr(sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool).href, "X-Amz-Signature="));
    st->ops->destroy(st);

    /* AWS: virtual-hosted style at the regional endpoint; region and token from the
     * environment; the checksum can be turned off for stores that do not check it. */
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzE/token+", 1);
    assert_int_equal(
        create_s3("{\"bucket_name\": \"lfs-bucket\", \"checksum_sha256\": false}", &st, &err), 0);
    up = sign_object(st, LFS_SIGN_UPLOAD, NULL, NULL, &pool);
    base = "https://lfs-bucket.s3.eu-west-1.amazonaws.com/group/sub/repo/" OID64 "?";
    assert_memory_equal(up.href, base, strlen(base));
    assert_non_null(strstr(up.href, "%2Feu-west-1%2Fs3%2F"));
    assert_non_null(strstr(up.href, "&X-Amz-Security-Token=FQoGZXIvYXdzE%2Ftoken%2B&"));
    assert_non_null(strstr(up.href, "X-Amz-SignedHeaders=host&"));
    assert_null(up.header);
    st->ops->destroy(st);
    /* AWS_REGION wins over AWS_DEFAULT_REGION, the option over both; path style on AWS. */
    setenv("AWS_REGION", "ap-south-1", 1);
    assert_int_equal(create_s3("{\"bucket_name\": \"lfs-bucket\"}", &st, &err), 0);
    up = sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool);
    assert_memory_equal(up.href, "https://lfs-bucket.s3.ap-south-1.amazonaws.com/",
                        strlen("https://lfs-bucket.s3.ap-south-1.amazonaws.com/"));
    st->ops->destroy(st);
    assert_int_equal(create_s3("{\"bucket_name\": \"lfs-bucket\", \"region\": \"us-west-2\", "
                               "\"addressing_style\": \"path\"}",
                               &st, &err),
                     0);
    up = sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool);
    assert_memory_equal(up.href, "https://s3.us-west-2.amazonaws.com/lfs-bucket/group/",
                        strlen("https://s3.us-west-2.amazonaws.com/lfs-bucket/group/"));
    st->ops->destroy(st);
    clear_aws_env();
    h2o_mem_clear_pool(&pool);
}

/* create fails with a message matching `want`. */
static void expect_config_error(const char *json, const char *want)
{
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    assert_int_equal(create_s3(json, &st, &err), -1);
    if (strstr(err.message, want) == NULL) {
        print_error("expected \"%s\" in \"%s\"\n", want, err.message);
        fail();
    }
    assert_int_equal(err.status, 500);
    assert_null(strstr(err.message, "secret-test-key"));
}

static void test_backend_config_errors(void **state)
{
    (void)state;
    clear_aws_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    expect_config_error("{}", "A.storage_options.bucket_name: required key is missing");
    expect_config_error("{\"bucket_name\": \"Bad_Bucket\"}",
                        "A.storage_options.bucket_name: \"Bad_Bucket\" is not a valid bucket");
    expect_config_error("{\"bucket_name\": \"b-1\", \"endpoint\": \"ftp://example.com\"}",
                        "A.storage_options.endpoint: expected http(s)://host[:port]");
    expect_config_error("{\"bucket_name\": \"b-1\", \"endpoint\": \"http://h/path\"}",
                        "A.storage_options.endpoint: expected");
    /* multipart_threshold within S3's part sizes: 5 MiB..5 GiB */
    expect_config_error("{\"bucket_name\": \"b-1\", \"multipart_threshold\": \"1M\"}",
                        "A.storage_options.multipart_threshold");
    expect_config_error("{\"bucket_name\": \"b-1\", \"multipart_threshold\": \"6G\"}",
                        "A.storage_options.multipart_threshold");
    expect_config_error("{\"bucket_name\": \"b-1\", \"endpoint\": \"http://u:p@h\"}",
                        "A.storage_options.endpoint: expected");
    expect_config_error("{\"bucket_name\": \"b-1\", \"addressing_style\": \"dns\"}",
                        "A.storage_options.addressing_style: expected \"path\" or \"virtual\"");
    expect_config_error("{\"bucket_name\": \"b-1\", \"region\": \"EU West\"}",
                        "A.storage_options.region: \"EU West\" is not a region name");
    expect_config_error("{\"bucket_name\": \"b-1\", \"path_prefix\": \"a/../b\"}",
                        "A.storage_options.path_prefix: \"a/../b\" is not a usable key prefix");
    expect_config_error("{\"bucket_name\": \"b-1\", \"request_timeout\": 0}",
                        "A.storage_options.request_timeout");
    expect_config_error("{\"bucket_name\": \"b-1\", \"bucket\": \"x\"}", "unknown key");

    /* Credentials: half a key pair in the environment. */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "A.storage_options: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
                        "is not");
    clear_aws_env();
}

static void test_backend_credentials(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    clear_aws_env();
    /* Nothing anywhere: every source tried is named, in the chain's order. */
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "no AWS credentials found; tried, in this order: AWS_ACCESS_KEY_ID (not "
                        "set), the shared credentials file "
                        "\"/nonexistent-home-for-s3-test/.aws/credentials\"");
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN not set), "
                        "container credentials (AWS_CONTAINER_CREDENTIALS_*_URI not set), the "
                        "instance metadata service (AWS_EC2_METADATA_DISABLED=true)");

    /* Web identity: both variables, a role ARN, an http(s) STS endpoint. */
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    setenv("AWS_ROLE_ARN", "role/r", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}", "AWS_ROLE_ARN: \"role/r\" is not a role ARN");
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "AWS_WEB_IDENTITY_TOKEN_FILE \"/var/run/token\": No such file");
    char token[] = "/tmp/test_s3_web_token.XXXXXX";
    int tfd = mkstemp(token);
    assert_true(tfd >= 0);
    close(tfd);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token, 1);
    expect_config_error("{\"bucket_name\": \"b-1\", \"sts_endpoint\": \"ftp://sts\"}",
                        "the STS endpoint (sts_endpoint): expected http(s)://host[:port]");
    assert_int_equal(create_s3("{\"bucket_name\": \"b-1\", \"region\": \"eu-west-3\"}", &st, &err),
                     0);
    st->ops->destroy(st);
    unlink(token);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");

    /* Container credentials: plain http only to the agents' addresses. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is allowed only to a "
                        "loopback address");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "bad token", 1);
    expect_config_error(
        "{\"bucket_name\": \"b-1\"}",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN holds bytes that cannot go into a header");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "good-token", 1);
    assert_int_equal(create_s3("{\"bucket_name\": \"b-1\"}", &st, &err), 0);
    st->ops->destroy(st);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

    /* IMDS: the last source, unless disabled; its endpoint overridable; used only when it
     * answers at startup (nothing listens on port 9 here), otherwise named in the error. */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT: expected http(s)://host[:port]");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}",
                        "not set), the instance metadata service at http://127.0.0.1:9 (");
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    /* The shared credentials file, the profile from AWS_PROFILE. */
    char file[] = "/tmp/test_s3_credentials.XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    const char *text = "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = "
                       "secret-test-key\n[ci]\naws_access_key_id = AKIDCI\n"
                       "aws_secret_access_key = secret-test-key\naws_session_token = TOKCI\n"
                       "[role]\nrole_arn = arn:aws:iam::1:role/r\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("AWS_SHARED_CREDENTIALS_FILE", file, 1);
    assert_int_equal(create_s3("{\"bucket_name\": \"b-1\"}", &st, &err), 0);
    assert_non_null(strstr(sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool).href,
                           "X-Amz-Credential=AKIDFILE%2F"));
    st->ops->destroy(st);
    setenv("AWS_PROFILE", "ci", 1);
    assert_int_equal(create_s3("{\"bucket_name\": \"b-1\"}", &st, &err), 0);
    const char *href = sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool).href;
    assert_non_null(strstr(href, "X-Amz-Credential=AKIDCI%2F"));
    assert_non_null(strstr(href, "X-Amz-Security-Token=TOKCI&"));
    st->ops->destroy(st);
    setenv("AWS_PROFILE", "role", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}", "gets its keys through role_arn");
    setenv("AWS_PROFILE", "nope", 1);
    expect_config_error("{\"bucket_name\": \"b-1\"}", "(no profile \"nope\")");
    /* The environment comes first. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    assert_int_equal(create_s3("{\"bucket_name\": \"b-1\"}", &st, &err), 0);
    assert_non_null(strstr(sign_object(st, LFS_SIGN_DOWNLOAD, NULL, NULL, &pool).href,
                           "X-Amz-Credential=AKIDENV%2F"));
    st->ops->destroy(st);
    unlink(file);
    clear_aws_env();
    h2o_mem_clear_pool(&pool);
}

#define S3_OID_A "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
#define S3_OID_B "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"
#define S3_ENTRY(key, size) "<Contents><Key>" key "</Key><Size>" size "</Size></Contents>"
#define S3_HEAD "<?xml version='1.0'?><ListBucketResult><Name>b</Name>"

/* ListObjectsV2 answers: oids with sizes, nested keys skipped but counted for the reach, the
 * reach itself, and every answer that cannot be trusted refused. */
static void test_parse_listing(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_storage_listing l;
    const char *prefix = "pp/org/repo/";
    const char *ok =
        S3_HEAD "<IsTruncated>false</IsTruncated>" S3_ENTRY("pp/org/repo/" S3_OID_A, "5")
            S3_ENTRY("pp/org/repo/a0/nested", "1")
                S3_ENTRY("pp/org/repo/" S3_OID_B, "0") "</ListBucketResult>";
    assert_int_equal(lfs_s3_parse_listing(ok, strlen(ok), prefix, &pool, &l), 0);
    assert_true(l.complete);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.oids[0], S3_OID_A);
    assert_true(l.sizes[0] == 5);
    assert_string_equal(l.oids[1], S3_OID_B);
    assert_true(l.sizes[1] == 0);
    const char *empty = S3_HEAD "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
                                "</ListBucketResult>";
    assert_int_equal(lfs_s3_parse_listing(empty, strlen(empty), prefix, &pool, &l), 0);
    assert_true(l.complete);
    assert_int_equal(l.n, 0);
    /* truncated: reaches the last key listed, even a nested one; keys unescaped */
    const char *part =
        S3_HEAD "<IsTruncated>true</IsTruncated>" S3_ENTRY("pp/org/repo/" S3_OID_A, "5")
            S3_ENTRY("pp/org/repo/b&amp;c",
                     "1") "<NextContinuationToken>x</NextContinuationToken></ListBucketResult>";
    assert_int_equal(lfs_s3_parse_listing(part, strlen(part), prefix, &pool, &l), 0);
    assert_false(l.complete);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.last, "b&c");
    /* refused: out of order, repeated, another prefix, a bad size, no IsTruncated, not a
     * listing */
    static const char *const bad[] = {
        S3_HEAD "<IsTruncated>false</IsTruncated>" S3_ENTRY("pp/org/repo/" S3_OID_B, "1")
            S3_ENTRY("pp/org/repo/" S3_OID_A, "1") "</ListBucketResult>",
        S3_HEAD "<IsTruncated>false</IsTruncated>" S3_ENTRY("pp/org/repo/" S3_OID_A, "1")
            S3_ENTRY("pp/org/repo/" S3_OID_A, "1") "</ListBucketResult>",
        S3_HEAD "<IsTruncated>false</IsTruncated>" S3_ENTRY("pp/org/other/" S3_OID_A,
                                                            "1") "</ListBucketResult>",
        S3_HEAD "<IsTruncated>false</IsTruncated>" S3_ENTRY("pp/org/repo/" S3_OID_A,
                                                            "-1") "</ListBucketResult>",
        S3_HEAD "<IsTruncated>false</IsTruncated><Contents><Key>pp/org/repo/" S3_OID_A
                "</Key></Contents></ListBucketResult>",
        S3_HEAD S3_ENTRY("pp/org/repo/" S3_OID_A, "1") "</ListBucketResult>",
        "<Error><Code>AccessDenied</Code></Error>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (lfs_s3_parse_listing(bad[i], strlen(bad[i]), prefix, &pool, &l) != -1) {
            print_error("listing %zu accepted\n", i);
            fail();
        }
    }
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_c_auth_suite),
        cmocka_unit_test(test_s3_docs_examples),
        cmocka_unit_test(test_presign_token_and_bounds),
        cmocka_unit_test(test_profile_parse),
        cmocka_unit_test(test_backend_sign),
        cmocka_unit_test(test_backend_config_errors),
        cmocka_unit_test(test_backend_credentials),
        cmocka_unit_test(test_parse_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
