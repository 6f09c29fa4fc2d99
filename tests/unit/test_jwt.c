/* Unit tests of the jwt provider (auth/jwt.c, jose.c, token_cache.c) and the pre-authorized
 * action tokens (auth/preauth.c). Keys are generated at test time with OpenSSL; tokens are
 * minted with libjwt (an independent implementation) or, for what libjwt cannot make
 * (PS256, alg none, duplicate claims, malformed parts), by hand with OpenSSL here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/token_cache.h"

#define NOW ((time_t)1700000000)
#define OID "6adada03e86b154be00e25f288fcadc27aef06c47f12f88e3e1985c502803d1b"
#define OID2 "0000000000000000000000000000000000000000000000000000000000000001"
#define SECRET "0123456789abcdef0123456789abcdef-test-only"
#define OPTS_PATH "AUTH_PROVIDERS[0].options"

static EVP_PKEY *rsa_key, *rsa_other, *ec256_key, *ec384_key, *ec521_key;
static char *rsa_pub, *rsa_priv, *other_priv, *other_pub, *ec256_pub, *ec256_priv, *ec384_pub,
    *ec384_priv, *ec521_pub, *ec521_priv;
static h2o_mem_pool_t pool;

/* ---- keys and token minting (test side) ---- */

static char *pem_of(EVP_PKEY *key, int private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    if (private)
        assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec256_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ec521_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    if (!rsa_key || !rsa_other || !ec256_key || !ec384_key || !ec521_key)
        return -1;
    rsa_pub = pem_of(rsa_key, 0);
    rsa_priv = pem_of(rsa_key, 1);
    other_pub = pem_of(rsa_other, 0);
    other_priv = pem_of(rsa_other, 1);
    ec256_pub = pem_of(ec256_key, 0);
    ec256_priv = pem_of(ec256_key, 1);
    ec384_pub = pem_of(ec384_key, 0);
    ec384_priv = pem_of(ec384_key, 1);
    ec521_pub = pem_of(ec521_key, 0);
    ec521_priv = pem_of(ec521_key, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec256_key);
    EVP_PKEY_free(ec384_key);
    EVP_PKEY_free(ec521_key);
    char *pems[] = {rsa_pub,    rsa_priv,  other_priv, other_pub, ec256_pub,
                    ec256_priv, ec384_pub, ec384_priv, ec521_pub, ec521_priv};
    for (size_t i = 0; i < sizeof(pems) / sizeof(pems[0]); i++)
        free(pems[i]);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    h2o_mem_init_pool(&pool);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h2o_mem_clear_pool(&pool);
    return 0;
}

/* Strings the tests keep are freed at the end of each test. */
#define MAX_KEPT 64
static char *kept[MAX_KEPT];
static size_t nkept;

static char *keep(char *s)
{
    assert_non_null(s);
    assert_true(nkept < MAX_KEPT);
    kept[nkept++] = s;
    return s;
}

static int free_kept(void **state)
{
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    nkept = 0;
    return teardown(state);
}

/* Mints with libjwt. payload is JSON text; kid may be NULL. The result is kept. */
static char *mint(jwt_alg_t alg, const char *key, size_t keylen, const char *kid,
                  const char *payload)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, payload), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen), 0);
    char *token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return keep(token);
}

static char *mint_rs(const char *payload)
{
    return mint(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), NULL, payload);
}

/* base64url without padding, malloc'd (test-side, independent of jose.c). */
static char *b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* "b64(header).b64(payload)" from raw segment texts (either may already be encoded when
 * raw_* is set). */
static char *signing_input(const char *header, const char *payload, int raw_payload)
{
    char *h = b64url(header, strlen(header));
    char *p = raw_payload ? strdup(payload) : b64url(payload, strlen(payload));
    char *out;
    assert_true(asprintf(&out, "%s.%s", h, p) > 0);
    free(h);
    free(p);
    return out;
}

static char *join_sig(char *input, const unsigned char *sig, size_t siglen)
{
    char *s = b64url(sig, siglen), *out;
    assert_true(asprintf(&out, "%s.%s", input, s) > 0);
    free(s);
    free(input);
    return keep(out);
}

/* HS256 by hand, for payloads libjwt will not produce. */
static char *mint_hs_raw(const char *header, const char *payload, int raw_payload)
{
    char *input = signing_input(header, payload, raw_payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)input, strlen(input), mac, &n);
    return join_sig(input, mac, n);
}

/* PS256 by hand (libjwt 1.10.2 has no RSA-PSS). */
static char *mint_ps256(EVP_PKEY *key, const char *payload)
{
    char *input = signing_input("{\"alg\":\"PS256\",\"typ\":\"JWT\"}", payload, 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    return join_sig(input, sig, siglen);
}

/* A payload with the usual claims; extra is spliced in (",\"k\":v" or ""). Kept. */
static char *claims(long exp_offset, const char *extra)
{
    char *out;
    assert_true(asprintf(&out,
                         "{\"sub\":\"user-1\",\"name\":\"User One\",\"email\":\"u@example.com\","
                         "\"exp\":%ld,\"iat\":%ld,\"scopes\":[\"obj:org/repo/*:read\","
                         "\"obj:a/b/nested/*:write\"]%s}",
                         (long)NOW + exp_offset, (long)NOW - 10, extra) > 0);
    return keep(out);
}

/* ---- providers and requests ---- */

static struct lfs_auth *provider(json_t *options)
{
    struct lfs_auth *auth = NULL;
    struct lfs_error err = {0};
    const struct lfs_auth_ops *ops = lfs_auth_find("giftless.auth.jwt:factory");
    assert_ptr_equal(ops, &lfs_auth_jwt_ops);
    if (ops->create(options, OPTS_PATH, &auth, &err) < 0)
        fail_msg("create failed: %s", err.message);
    json_decref(options);
    return auth;
}

static struct lfs_auth *rs256_provider(void)
{
    return provider(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key", rsa_pub));
}

/* Expects creating a provider from options to fail with a message starting with prefix. */
static void expect_config_error(json_t *options, const char *prefix)
{
    json_t *list =
        json_pack("[{s:s, s:o}]", "factory", "giftless.auth.jwt:factory", "options", options);
    struct lfs_auth_chain chain;
    struct lfs_error err = {0};
    assert_int_equal(lfs_auth_chain_create(list, "AUTH_PROVIDERS", &chain, &err), -1);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", err.message, prefix);
    assert_int_equal(err.status, 500);
    json_decref(list);
}

static int auth_req(struct lfs_auth *auth, const char *const *headers, size_t n, const char *query,
                    time_t now, struct lfs_identity *id, struct lfs_error *err)
{
    h2o_iovec_t values[8];
    for (size_t i = 0; i < n; i++)
        values[i] = h2o_iovec_init(headers[i], strlen(headers[i]));
    struct lfs_auth_request req = {.authorization = values,
                                   .nauthorization = n,
                                   .query_jwt = query ? h2o_iovec_init(query, strlen(query))
                                                      : h2o_iovec_init(NULL, 0),
                                   .now = now};
    *err = (struct lfs_error){0};
    memset(id, 0, sizeof(*id));
    return auth->ops->authenticate(auth, &req, &pool, id, err);
}

static char *bearer(const char *token)
{
    char *out;
    assert_true(asprintf(&out, "Bearer %s", token) > 0);
    return keep(out);
}

static char *basic(const char *user, const char *password)
{
    char *plain, *out;
    assert_true(asprintf(&plain, "%s:%s", user, password) > 0);
    char *enc = malloc(4 * ((strlen(plain) + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)enc, (unsigned char *)plain, (int)strlen(plain));
    assert_true(asprintf(&out, "Basic %s", enc) > 0);
    free(plain);
    free(enc);
    return keep(out);
}

/* Authenticates with one Bearer header at NOW. */
static int auth_bearer(struct lfs_auth *auth, const char *token, struct lfs_identity *id,
                       struct lfs_error *err)
{
    const char *h[] = {bearer(token)};
    return auth_req(auth, h, 1, NULL, NOW, id, err);
}

static void expect_reject(struct lfs_auth *auth, const char *token, const char *fragment)
{
    struct lfs_identity id;
    struct lfs_error err;
    assert_int_equal(auth_bearer(auth, token, &id, &err), -1);
    assert_int_equal(err.status, 401);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
    /* never echo the token */
    assert_null(strstr(err.message, token));
}

static void expect_pass(struct lfs_auth *auth, const char *token)
{
    struct lfs_identity id;
    struct lfs_error err;
    assert_int_equal(auth_bearer(auth, token, &id, &err), 0);
}

static void expect_accept(struct lfs_auth *auth, const char *token)
{
    struct lfs_identity id;
    struct lfs_error err;
    int r = auth_bearer(auth, token, &id, &err);
    if (r != 1)
        fail_msg("rejected (%d): %s", r, err.message);
    assert_string_equal(id.id, "user-1");
}

/* ---- tests ---- */

static void test_rs256_identity(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    struct lfs_identity id;
    struct lfs_error err;
    assert_int_equal(auth_bearer(auth, mint_rs(claims(300, "")), &id, &err), 1);
    assert_string_equal(id.id, "user-1");
    assert_string_equal(id.name, "User One");
    assert_string_equal(id.email, "u@example.com");
    assert_int_equal(id.expires, NOW + 300);
    assert_int_equal(id.ngrants, 2);
    /* verify -> read-meta, read-only scope cannot write, nested org path */
    assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ));
    assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ_META));
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "org", "repo", NULL, LFS_PERM_WRITE));
    assert_true(lfs_identity_allows(&id, "a/b", "nested", NULL, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a/b", "nested", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "org", "other", OID, LFS_PERM_READ));
    assert_false(lfs_identity_is_action_token(&id));

    /* name defaults to sub; no email; no scopes = allowed nothing */
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"sub\":\"bob\",\"exp\":%ld}", (long)NOW + 60);
    assert_int_equal(auth_bearer(auth, mint_rs(payload), &id, &err), 1);
    assert_string_equal(id.name, "bob");
    assert_null(id.email);
    assert_int_equal(id.ngrants, 0);
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ_META));
    /* a numeric sub becomes its decimal text; a missing one an empty id */
    snprintf(payload, sizeof(payload), "{\"sub\":42,\"exp\":%ld}", (long)NOW + 60);
    assert_int_equal(auth_bearer(auth, mint_rs(payload), &id, &err), 1);
    assert_string_equal(id.id, "42");
    snprintf(payload, sizeof(payload), "{\"exp\":%ld}", (long)NOW + 60);
    assert_int_equal(auth_bearer(auth, mint_rs(payload), &id, &err), 1);
    assert_string_equal(id.id, "");
    snprintf(payload, sizeof(payload), "{\"sub\":[1],\"exp\":%ld}", (long)NOW + 60);
    expect_reject(auth, mint_rs(payload), "sub");
    auth->ops->destroy(auth);
}

static void test_time_claims(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider(); /* leeway 10 (giftless default) */
    expect_reject(auth, mint_rs(claims(-10, "")), "expired");
    expect_reject(auth, mint_rs(claims(-3600, "")), "expired");
    expect_accept(auth, mint_rs(claims(-5, ""))); /* inside the leeway */
    char extra[64];
    snprintf(extra, sizeof(extra), ",\"nbf\":%ld", (long)NOW + 11);
    expect_reject(auth, mint_rs(claims(300, extra)), "not valid yet");
    snprintf(extra, sizeof(extra), ",\"nbf\":%ld", (long)NOW + 5);
    expect_accept(auth, mint_rs(claims(300, extra)));
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"sub\":\"user-1\",\"exp\":%ld,\"iat\":%ld}",
             (long)NOW + 300, (long)NOW + 60);
    expect_reject(auth, mint_rs(payload), "issued in the future");
    snprintf(payload, sizeof(payload), "{\"sub\":\"user-1\",\"iat\":%ld}", (long)NOW);
    expect_reject(auth, mint_rs(payload), "no expiry");
    expect_reject(auth, mint_rs("{\"sub\":\"user-1\",\"exp\":\"tomorrow\"}"), "\"exp\"");
    snprintf(payload, sizeof(payload), "{\"sub\":\"user-1\",\"exp\":%ld.5}", (long)NOW + 100);
    expect_accept(auth, mint_rs(payload)); /* NumericDate may be fractional */
    expect_accept(auth, mint_rs("{\"sub\":\"user-1\",\"exp\":1e300}"));
    auth->ops->destroy(auth);

    auth = provider(
        json_pack("{s:s, s:s, s:i}", "algorithm", "RS256", "public_key", rsa_pub, "leeway", 0));
    expect_reject(auth, mint_rs(claims(0, "")), "expired");
    expect_accept(auth, mint_rs(claims(1, "")));
    auth->ops->destroy(auth);
}

static void test_audience_and_issuer(void **state)
{
    (void)state;
    struct lfs_auth *auth =
        provider(json_pack("{s:s, s:s, s:s, s:s}", "algorithm", "RS256", "public_key", rsa_pub,
                           "audience", "lfs", "issuer", "https://portal.example"));
    const char *iss = ",\"iss\":\"https://portal.example\"";
    char extra[128];
    snprintf(extra, sizeof(extra), "%s,\"aud\":\"lfs\"", iss);
    expect_accept(auth, mint_rs(claims(300, extra)));
    snprintf(extra, sizeof(extra), "%s,\"aud\":[\"other\",\"lfs\"]", iss);
    expect_accept(auth, mint_rs(claims(300, extra)));
    snprintf(extra, sizeof(extra), "%s,\"aud\":\"other\"", iss);
    expect_reject(auth, mint_rs(claims(300, extra)), "audience does not match");
    snprintf(extra, sizeof(extra), "%s,\"aud\":[\"x\",\"y\"]", iss);
    expect_reject(auth, mint_rs(claims(300, extra)), "audience does not match");
    expect_reject(auth, mint_rs(claims(300, iss)), "no audience");
    expect_reject(auth, mint_rs(claims(300, ",\"aud\":\"lfs\",\"iss\":\"https://evil\"")),
                  "issuer does not match");
    expect_reject(auth, mint_rs(claims(300, ",\"aud\":\"lfs\"")), "issuer does not match");
    auth->ops->destroy(auth);

    /* a list of audiences in the config; a token aud without a configured audience */
    auth = provider(json_pack("{s:s, s:s, s:[s, s]}", "algorithm", "RS256", "public_key", rsa_pub,
                              "audience", "a1", "a2"));
    expect_accept(auth, mint_rs(claims(300, ",\"aud\":[\"a2\"]")));
    expect_reject(auth, mint_rs(claims(300, ",\"aud\":\"a3\"")), "audience does not match");
    auth->ops->destroy(auth);
    auth = rs256_provider();
    expect_reject(auth, mint_rs(claims(300, ",\"aud\":\"lfs\"")), "no audience is configured");
    auth->ops->destroy(auth);
}

static void test_forged_tokens(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    const char *payload = claims(300, "");
    /* signed with another key */
    expect_reject(auth, mint(JWT_ALG_RS256, other_priv, strlen(other_priv), NULL, payload),
                  "signature is invalid");
    /* alg none, with and without a signature part */
    char *input = signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, 0), *none;
    assert_true(asprintf(&none, "%s.", input) > 0);
    free(input);
    expect_reject(auth, keep(none), "algorithm \"none\" is not the configured \"RS256\"");
    /* HS256 whose secret is the RSA public key PEM (accepted by bare libjwt decode) */
    expect_reject(auth, mint(JWT_ALG_HS256, rsa_pub, strlen(rsa_pub), NULL, payload),
                  "algorithm \"HS256\" is not the configured \"RS256\"");
    /* tampered payload: keep header and signature, change the claims */
    char *good = mint_rs(payload);
    char *evil_payload =
        b64url("{\"sub\":\"user-1\",\"exp\":9999999999,\"scopes\":\"obj:*\"}",
               strlen("{\"sub\":\"user-1\",\"exp\":9999999999,\"scopes\":\"obj:*\"}"));
    const char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    if (dot1 == NULL || dot2 == NULL)
        fail_msg("minted token has no dots: %s", good);
    char *tampered;
    assert_true(asprintf(&tampered, "%.*s.%s%s", (int)(dot1 - good), good, evil_payload, dot2) > 0);
    free(evil_payload);
    expect_reject(auth, keep(tampered), "signature is invalid");
    /* a flipped signature character; a truncated signature; a signature that is not base64 */
    char *flipped = keep(strdup(good));
    char *c = strrchr(flipped, '.') + 10;
    *c = *c == 'A' ? 'B' : 'A';
    expect_reject(auth, flipped, "signature is invalid");
    char *truncated = keep(strndup(good, strlen(good) - 4));
    expect_reject(auth, truncated, "signature is invalid");
    char *notb64 = keep(strdup(good));
    strcpy(strrchr(notb64, '.') + 1, "@@@@");
    expect_reject(auth, notb64, "signature is invalid");
    /* a critical header extension we do not understand */
    jwt_t *jwt;
    jwt_new(&jwt);
    jwt_add_grants_json(jwt, payload);
    jwt_add_header(jwt, "crit", "exp");
    jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)rsa_priv, (int)strlen(rsa_priv));
    expect_reject(auth, keep(jwt_encode_str(jwt)), "crit");
    jwt_free(jwt);
    expect_accept(auth, good);
    auth->ops->destroy(auth);
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    struct lfs_auth *auth = provider(json_pack("{s:s}", "private_key", SECRET)); /* HS256 */
    /* not JWTs at all: not ours, the next provider decides */
    expect_pass(auth, "garbage");
    expect_pass(auth, "a.b");
    expect_pass(auth, "a.b.c");
    expect_pass(auth, "a.b.c.d");
    expect_pass(auth, "....");
    expect_pass(auth, "");
    expect_pass(auth, keep(signing_input("{\"typ\":\"JWT\"}", "{}", 0))); /* no alg, no sig */
    char *noalg = mint_hs_raw("{\"typ\":\"JWT\"}", "{\"exp\":9999999999}", 0);
    expect_pass(auth, noalg);
    expect_pass(auth, keep(signing_input("[1,2]", "{}", 0)));
    /* ours but broken: 401 */
    const char *h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    expect_reject(auth, mint_hs_raw(h, "!!!!", 1), "payload is malformed");
    expect_reject(auth, mint_hs_raw(h, "not json", 0), "payload is malformed");
    expect_reject(auth, mint_hs_raw(h, "[1]", 0), "payload is malformed");
    expect_reject(auth, mint_hs_raw(h, "{\"exp\":9999999999,\"exp\":1}", 0),
                  "payload is malformed"); /* duplicate claims */
    expect_reject(auth, mint_hs_raw(h, "{\"exp\":9999999999,\"scopes\":{\"a\":1}}", 0), "scopes");
    expect_reject(auth, mint_hs_raw(h, "{\"exp\":9999999999,\"scopes\":[\"obj:*\",7]}", 0),
                  "scopes");
    /* duplicate header members make it not a JWT we recognise */
    expect_pass(auth, mint_hs_raw("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", 0));
    char *ok = mint_hs_raw(h, "{\"sub\":\"user-1\",\"exp\":9999999999}", 0);
    expect_accept(auth, ok);
    /* base64 with padding or the standard alphabet is not base64url */
    char *padded;
    assert_true(asprintf(&padded, "%s=", ok) > 0);
    expect_reject(auth, keep(padded), "signature is invalid");
    auth->ops->destroy(auth);
}

/* A payload {"sub":SUB,"name":NAME,"email":EMAIL,"exp":...} (raw JSON fragments), HS256. */
static char *hs_token(const char *sub, const char *name, const char *email)
{
    char *payload;
    assert_true(asprintf(&payload, "{\"sub\":%s,\"name\":%s,\"email\":%s,\"exp\":%ld}", sub, name,
                         email, (long)NOW + 300) > 0);
    return mint_hs_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", keep(payload), 0);
}

/* A JSON string of `prefix` followed by n copies of `unit` (kept). */
static char *json_repeat(const char *prefix, const char *unit, size_t n)
{
    size_t plen = strlen(prefix), ulen = strlen(unit);
    char *out = malloc(plen + n * ulen + 3), *o = out;
    *o++ = '"';
    memcpy(o, prefix, plen);
    o += plen;
    for (size_t i = 0; i < n; i++, o += ulen)
        memcpy(o, unit, ulen);
    *o++ = '"';
    *o = '\0';
    return keep(out);
}

static bool utf8_valid(const char *s)
{
    json_t *v = json_string(s); /* jansson validates UTF-8 */
    json_decref(v);
    return v != NULL;
}

/* Issue #12: claims are bounded when copied into an identity (sub refused over 256 bytes,
 * name cut on a character boundary, a long email dropped), and any byte in a claim either
 * yields a valid UTF-8 identity or a 401, never a crash. */
static void test_claim_bounds(void **state)
{
    (void)state;
    struct lfs_auth *auth = provider(json_pack("{s:s}", "private_key", SECRET)); /* HS256 */
    struct lfs_identity id;
    struct lfs_error err;
    const char *mail = "\"u@example.com\"";
    /* sub: 256 bytes pass, 257 and the issue's 'a' + 300 x U+00E9 (601 bytes) are refused */
    assert_int_equal(
        auth_bearer(auth, hs_token(json_repeat("", "s", 256), "\"n\"", mail), &id, &err), 1);
    assert_int_equal(strlen(id.id), 256);
    expect_reject(auth, hs_token(json_repeat("", "s", 257), "\"n\"", mail),
                  "\"sub\" is longer than 256 bytes");
    expect_reject(auth, hs_token(json_repeat("a", "\xc3\xa9", 300), "\"n\"", mail),
                  "\"sub\" is longer than 256 bytes");
    /* name: cut at 256 bytes, never inside a character */
    assert_int_equal(
        auth_bearer(auth, hs_token("\"u\"", json_repeat("a", "\xc3\xa9", 300), mail), &id, &err),
        1);
    assert_int_equal(strlen(id.name), 255); /* 'a' + 127 x 2 bytes; a 128th would end at 257 */
    assert_true(utf8_valid(id.name));
    assert_int_equal(
        auth_bearer(auth, hs_token("\"u\"", json_repeat("", "\xe2\x82\xac", 200), mail), &id, &err),
        1);
    assert_int_equal(strlen(id.name), 255); /* 85 x 3 bytes */
    assert_true(utf8_valid(id.name));
    /* email: over 254 bytes is dropped */
    assert_int_equal(
        auth_bearer(auth, hs_token("\"u\"", "\"n\"", json_repeat("u@", "x", 300)), &id, &err), 1);
    assert_null(id.email);
    assert_string_equal(id.name, "n");

    /* raw bytes that are not UTF-8, in any claim: refused as malformed */
    expect_reject(auth, hs_token("\"\xff\xfe\"", "\"n\"", mail), "payload is malformed");
    expect_reject(auth, hs_token("\"u\"", "\"\xc3\"", mail), "payload is malformed");
    expect_reject(auth, hs_token("\"u\"", "\"n\"", "\"\xed\xa0\x80@x\""), "payload is malformed");
    /* escapes that are no character, or NUL: refused the same way */
    expect_reject(auth, hs_token("\"\\ud800\"", "\"n\"", mail), "payload is malformed");
    expect_reject(auth, hs_token("\"a\\u0000b\"", "\"n\"", mail), "payload is malformed");
    /* control characters and non-ASCII that are valid: kept as they are */
    assert_int_equal(auth_bearer(auth,
                                 hs_token("\"\\u0001\\n\\u001f\xc3\xa9\\u007f\"", "\"\\r\"", mail),
                                 &id, &err),
                     1);
    assert_string_equal(id.id, "\x01\n\x1f\xc3\xa9\x7f");
    assert_string_equal(id.name, "\r");
    /* the same in scopes: odd grants that match no route, the plain one still works */
    char *payload;
    assert_true(asprintf(&payload,
                         "{\"sub\":\"u\",\"exp\":%ld,\"scopes\":[\"obj:\\u0001/\xc3\xa9/*:write\","
                         "\"obj:\\n\\u007f\","
                         "\"obj:org/repo/*:read\"]}",
                         (long)NOW + 300) > 0);
    assert_int_equal(
        auth_bearer(auth, mint_hs_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", keep(payload), 0), &id,
                    &err),
        1);
    assert_true(lfs_identity_allows(&id, "org", "repo", NULL, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "org", "repo", NULL, LFS_PERM_WRITE));
    expect_reject(auth, hs_token("\"u\"", "\"n\"", "\"m\", \"scopes\": [\"obj:\xff/*\"]"),
                  "payload is malformed");
    auth->ops->destroy(auth);
}

static void test_size_limits(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    /* a real 200 KB token of ours: refused cleanly, never verified */
    size_t big = 200 * 1024;
    char *filler = malloc(big + 1);
    memset(filler, 'x', big);
    filler[big] = '\0';
    char *payload;
    assert_true(asprintf(&payload, "{\"sub\":\"user-1\",\"exp\":%ld,\"pad\":\"%s\"}",
                         (long)NOW + 300, filler) > 0);
    free(filler);
    keep(payload);
    char *token = mint_rs(payload);
    assert_true(strlen(token) > big);
    expect_reject(auth, token, "too large");
    /* 200 KB of junk: not a JWT */
    char *junk = keep(malloc(big + 1));
    memset(junk, 'A', big);
    junk[big] = '\0';
    expect_pass(auth, junk);
    /* the same in a Basic password for our user: 401; for another user: not ours */
    struct lfs_identity id;
    struct lfs_error err;
    const char *h1[] = {basic("_jwt", token)};
    assert_int_equal(auth_req(auth, h1, 1, NULL, NOW, &id, &err), -1);
    assert_non_null(strstr(err.message, "too large"));
    const char *h2[] = {basic("someone", token)};
    assert_int_equal(auth_req(auth, h2, 1, NULL, NOW, &id, &err), 0);
    /* in the query */
    assert_int_equal(auth_req(auth, NULL, 0, token, NOW, &id, &err), -1);
    /* just under the limit is fine */
    size_t fill = (LFS_AUTH_JWT_MAX_TOKEN - 600) / 4 * 3;
    filler = malloc(fill + 1);
    memset(filler, 'y', fill);
    filler[fill] = '\0';
    assert_true(asprintf(&payload, "{\"sub\":\"user-1\",\"exp\":%ld,\"p\":\"%s\"}", (long)NOW + 300,
                         filler) > 0);
    free(filler);
    keep(payload);
    token = mint_rs(payload);
    assert_true(strlen(token) <= LFS_AUTH_JWT_MAX_TOKEN);
    expect_accept(auth, token);
    auth->ops->destroy(auth);
}

static void test_key_id(void **state)
{
    (void)state;
    struct lfs_auth *auth = provider(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256",
                                               "public_key", rsa_pub, "key_id", "portal-1"));
    const char *payload = claims(300, "");
    expect_accept(auth, mint(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "portal-1", payload));
    /* another kid, or none: some other provider's token, even when invalid for us */
    expect_pass(auth, mint(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "portal-2", payload));
    expect_pass(auth, mint_rs(payload));
    expect_pass(auth, mint(JWT_ALG_RS256, other_priv, strlen(other_priv), "other", payload));
    /* our kid but the wrong key: ours, invalid */
    expect_reject(auth, mint(JWT_ALG_RS256, other_priv, strlen(other_priv), "portal-1", payload),
                  "signature is invalid");
    auth->ops->destroy(auth);
}

static void test_token_sources(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    struct lfs_identity id;
    struct lfs_error err;
    char *good = mint_rs(claims(300, ""));
    char *expired = mint_rs(claims(-100, ""));
    char *other = mint(JWT_ALG_RS256, other_priv, strlen(other_priv), NULL, claims(300, ""));

    /* two Authorization headers (git-lfs action header + http.extraHeader): the valid wins */
    const char *two[] = {bearer(other), bearer(good)};
    assert_int_equal(auth_req(auth, two, 2, NULL, NOW, &id, &err), 1);
    assert_string_equal(id.id, "user-1");
    const char *two_b[] = {bearer(good), bearer(expired)};
    assert_int_equal(auth_req(auth, two_b, 2, NULL, NOW, &id, &err), 1);
    const char *mixed[] = {basic("alice", "password"), bearer(good)};
    assert_int_equal(auth_req(auth, mixed, 2, NULL, NOW, &id, &err), 1);
    /* none valid: the first failure decides */
    const char *bad[] = {bearer(expired), bearer(other)};
    assert_int_equal(auth_req(auth, bad, 2, NULL, NOW, &id, &err), -1);
    assert_non_null(strstr(err.message, "expired"));
    /* case-insensitive scheme, extra spaces */
    char *spaced;
    assert_true(asprintf(&spaced, "  bearer   %s  ", good) > 0);
    const char *sp[] = {keep(spaced)};
    assert_int_equal(auth_req(auth, sp, 1, NULL, NOW, &id, &err), 1);
    /* Basic _jwt:<token> */
    const char *b[] = {basic("_jwt", good)};
    assert_int_equal(auth_req(auth, b, 1, NULL, NOW, &id, &err), 1);
    const char *b2[] = {basic("_jwt", expired)};
    assert_int_equal(auth_req(auth, b2, 1, NULL, NOW, &id, &err), -1);
    const char *b3[] = {basic("alice", good), "Basic !!!", "Basic", "Digest x=1", "Bearer"};
    assert_int_equal(auth_req(auth, b3, 5, NULL, NOW, &id, &err), 0);
    /* ?jwt= */
    assert_int_equal(auth_req(auth, NULL, 0, good, NOW, &id, &err), 1);
    assert_int_equal(auth_req(auth, NULL, 0, expired, NOW, &id, &err), -1);
    /* header first, then the query */
    const char *other_h[] = {bearer(other)};
    assert_int_equal(auth_req(auth, other_h, 1, good, NOW, &id, &err), 1);
    /* nothing at all */
    assert_int_equal(auth_req(auth, NULL, 0, NULL, NOW, &id, &err), 0);
    auth->ops->destroy(auth);

    /* basic_auth_user: null turns Basic off; another name can be configured */
    auth = provider(json_pack("{s:s, s:s, s:n}", "algorithm", "RS256", "public_key", rsa_pub,
                              "basic_auth_user"));
    assert_int_equal(auth_req(auth, b, 1, NULL, NOW, &id, &err), 0);
    auth->ops->destroy(auth);
    auth = provider(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256", "public_key", rsa_pub,
                              "basic_auth_user", "token"));
    assert_int_equal(auth_req(auth, b, 1, NULL, NOW, &id, &err), 0);
    const char *b4[] = {basic("token", good)};
    assert_int_equal(auth_req(auth, b4, 1, NULL, NOW, &id, &err), 1);
    auth->ops->destroy(auth);
}

static void test_algorithms(void **state)
{
    (void)state;
    const char *payload = claims(300, "");
    struct {
        const char *alg;
        jwt_alg_t jalg;
        const char *pub, *priv;
    } cases[] = {
        {"RS384", JWT_ALG_RS384, rsa_pub, rsa_priv},
        {"RS512", JWT_ALG_RS512, rsa_pub, rsa_priv},
        {"ES256", JWT_ALG_ES256, ec256_pub, ec256_priv},
        {"ES384", JWT_ALG_ES384, ec384_pub, ec384_priv},
        {"ES512", JWT_ALG_ES512, ec521_pub, ec521_priv},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lfs_auth *auth = provider(
            json_pack("{s:s, s:s}", "algorithm", cases[i].alg, "public_key", cases[i].pub));
        expect_accept(auth,
                      mint(cases[i].jalg, cases[i].priv, strlen(cases[i].priv), NULL, payload));
        /* the same key under the RS256 / ES256 name is still the wrong alg */
        expect_reject(auth,
                      mint(cases[i].jalg == JWT_ALG_RS384 ? JWT_ALG_RS512 : JWT_ALG_RS256, rsa_priv,
                           strlen(rsa_priv), NULL, payload),
                      "is not the configured");
        auth->ops->destroy(auth);
    }
    /* HS256/384/512 */
    jwt_alg_t hs[] = {JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512};
    const char *hs_names[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < 3; i++) {
        struct lfs_auth *auth =
            provider(json_pack("{s:s, s:s}", "algorithm", hs_names[i], "private_key", SECRET));
        expect_accept(auth, mint(hs[i], SECRET, strlen(SECRET), NULL, payload));
        expect_reject(auth, mint(hs[i], "another secret of enough length!!", 33, NULL, payload),
                      "signature is invalid");
        auth->ops->destroy(auth);
    }
    /* PS256 (verified with OpenSSL; minted by hand) */
    struct lfs_auth *auth =
        provider(json_pack("{s:s, s:s}", "algorithm", "PS256", "public_key", rsa_pub));
    expect_accept(auth, mint_ps256(rsa_key, payload));
    expect_reject(auth, mint_ps256(rsa_other, payload), "signature is invalid");
    expect_reject(auth, mint_rs(payload), "algorithm \"RS256\" is not the configured \"PS256\"");
    auth->ops->destroy(auth);
    /* a private key alone is enough to verify (its public half is used) */
    auth = provider(json_pack("{s:s, s:s}", "algorithm", "ES256", "private_key", ec256_priv));
    expect_accept(auth, mint(JWT_ALG_ES256, ec256_priv, strlen(ec256_priv), NULL, payload));
    auth->ops->destroy(auth);
}

static void test_key_files(void **state)
{
    (void)state;
    char path[] = "/tmp/lfsgate-test-jwt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rsa_pub, strlen(rsa_pub)), (ssize_t)strlen(rsa_pub));
    close(fd);
    /* the file wins over the inline value, as giftless */
    struct lfs_auth *auth = provider(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256",
                                               "public_key_file", path, "public_key", other_pub));
    expect_accept(auth, mint_rs(claims(300, "")));
    auth->ops->destroy(auth);
    unlink(path);
    expect_config_error(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key_file", path),
                        "config: AUTH_PROVIDERS[0].options.public_key_file: cannot read");
}

static void test_config_errors(void **state)
{
    (void)state;
    const char *p = "config: AUTH_PROVIDERS[0].options.";
    char want[256];
#define EXPECT(opts, suffix)                                                                       \
    do {                                                                                           \
        snprintf(want, sizeof(want), "%s%s", p, suffix);                                           \
        expect_config_error(opts, want);                                                           \
    } while (0)
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "RS257", "public_key", rsa_pub),
           "algorithm: unsupported algorithm \"RS257\"; valid: HS256");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "none", "public_key", rsa_pub),
           "algorithm: unsupported algorithm");
    EXPECT(json_pack("{s:s}", "algorithm", "RS256"), "public_key: a public key is required");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key", "not a key"),
           "public_key: not a PEM public key");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key", ec256_pub),
           "public_key: RS256 needs an RSA key, got EC");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "ES256", "public_key", rsa_pub),
           "public_key: ES256 needs an EC key on curve prime256v1, got RSA");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "ES256", "public_key", ec384_pub),
           "public_key: ES256 needs an EC key on curve prime256v1, got curve \"secp384r1\"");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "ES384", "private_key", ec256_priv),
           "private_key: ES384 needs an EC key");
    EXPECT(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256", "public_key", rsa_pub, "private_key",
                     other_priv),
           "public_key: does not match");
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "RS256", "private_key", rsa_pub),
           "private_key: not a PEM private key");
    EXPECT(json_pack("{}"), "private_key: a shared secret is required for algorithm HS256");
    EXPECT(json_pack("{s:s}", "public_key", rsa_pub),
           "private_key: a shared secret is required for algorithm HS256 (a public_key is set");
    EXPECT(json_pack("{s:s}", "private_key", ""), "private_key: the HS256 secret is empty");
    EXPECT(json_pack("{s:s}", "private_key", rsa_pub), "private_key: HS256 needs a shared secret");
    EXPECT(json_pack("{s:s, s:s}", "private_key", SECRET, "lifetime", "1"),
           "lifetime: unknown key");
    EXPECT(json_pack("{s:s, s:s}", "private_key", SECRET, "leeway", "soon"), "leeway: ");
    EXPECT(json_pack("{s:s, s:i}", "private_key", SECRET, "leeway", -1), "leeway: ");
    EXPECT(json_pack("{s:s, s:i}", "private_key", SECRET, "issuer", 3), "issuer: expected");
    EXPECT(json_pack("{s:s, s:[i]}", "private_key", SECRET, "audience", 3), "audience[0]: ");
    EXPECT(json_pack("{s:i}", "private_key", 7), "private_key: expected");
    /* a small RSA key */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *small_pub = pem_of(small, 0);
    EXPECT(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key", small_pub),
           "public_key: RSA key of 1024 bits is too small");
    free(small_pub);
    EVP_PKEY_free(small);
#undef EXPECT
    /* an error never quotes the key */
    json_t *list = json_pack("[{s:s, s:{s:s, s:s}}]", "factory", "jwt", "options", "algorithm",
                             "RS256", "public_key", "-----BEGIN PUBLIC KEY-----\nSECRETSTUFF\n");
    struct lfs_auth_chain chain;
    struct lfs_error err = {0};
    assert_int_equal(lfs_auth_chain_create(list, "AUTH_PROVIDERS", &chain, &err), -1);
    assert_null(strstr(err.message, "SECRETSTUFF"));
    json_decref(list);
}

static void test_cache(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    struct lfs_identity id;
    struct lfs_error err;
    unsigned long long hits0, misses0, hits, misses;
    char *token = mint_rs(claims(300, ""));
    lfs_auth_token_cache_stats(&hits0, &misses0);
    assert_int_equal(auth_bearer(auth, token, &id, &err), 1);
    lfs_auth_token_cache_stats(&hits, &misses);
    assert_int_equal(hits, hits0);
    assert_int_equal(misses, misses0 + 1);
    /* the second use is a hit, with an identity of its own in the request pool */
    h2o_mem_clear_pool(&pool);
    assert_int_equal(auth_bearer(auth, token, &id, &err), 1);
    lfs_auth_token_cache_stats(&hits, &misses);
    assert_int_equal(hits, hits0 + 1);
    assert_string_equal(id.id, "user-1");
    assert_string_equal(id.name, "User One");
    assert_string_equal(id.email, "u@example.com");
    assert_int_equal(id.expires, NOW + 300);
    assert_int_equal(id.ngrants, 2);
    assert_string_equal(id.grants[1].org_path, "a/b");
    assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_WRITE));
    /* never a token it has not verified: same header and claims, another signature */
    char *forged = keep(strdup(token));
    char *c = strrchr(forged, '.') + 5;
    *c = *c == 'Q' ? 'R' : 'Q';
    expect_reject(auth, forged, "signature is invalid");
    const char *payload = strchr(token, '.') + 1;
    (void)payload;
    char *other = mint(JWT_ALG_RS256, other_priv, strlen(other_priv), NULL, claims(300, ""));
    expect_reject(auth, other, "signature is invalid");
    /* expiry still applies to cached tokens */
    const char *h[] = {bearer(token)};
    assert_int_equal(auth_req(auth, h, 1, NULL, NOW + 299, &id, &err), 1);
    assert_int_equal(auth_req(auth, h, 1, NULL, NOW + 310, &id, &err), -1);
    assert_non_null(strstr(err.message, "expired"));
    /* a cached token is not another provider's: a second provider verifies for itself */
    struct lfs_auth *auth2 =
        provider(json_pack("{s:s, s:s}", "algorithm", "RS256", "public_key", other_pub));
    expect_reject(auth2, token, "signature is invalid");
    auth2->ops->destroy(auth2);
    auth->ops->destroy(auth);
}

static void test_cache_off(void **state)
{
    (void)state;
    /* token_cache_size: 0 turns the cache off: every use is verified, none is counted */
    struct lfs_auth *auth = provider(json_pack("{s:s, s:s, s:i}", "algorithm", "RS256",
                                               "public_key", rsa_pub, "token_cache_size", 0));
    struct lfs_identity id;
    struct lfs_error err;
    unsigned long long hits0, misses0, hits, misses;
    char *token = mint_rs(claims(300, ""));
    lfs_auth_token_cache_stats(&hits0, &misses0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(auth_bearer(auth, token, &id, &err), 1);
        assert_string_equal(id.id, "user-1");
    }
    lfs_auth_token_cache_stats(&hits, &misses);
    assert_int_equal(hits, hits0);
    assert_int_equal(misses, misses0);
    const char *h[] = {bearer(token)};
    assert_int_equal(auth_req(auth, h, 1, NULL, NOW + 310, &id, &err), -1);
    assert_non_null(strstr(err.message, "expired"));
    auth->ops->destroy(auth);
    /* a small cache works; a negative or huge size, or a string, is a config error */
    auth = provider(json_pack("{s:s, s:s, s:i}", "algorithm", "RS256", "public_key", rsa_pub,
                              "token_cache_size", 1));
    assert_int_equal(auth_bearer(auth, token, &id, &err), 1);
    assert_int_equal(auth_bearer(auth, token, &id, &err), 1);
    auth->ops->destroy(auth);
    expect_config_error(json_pack("{s:s, s:s, s:i}", "algorithm", "RS256", "public_key", rsa_pub,
                                  "token_cache_size", -1),
                        "config: AUTH_PROVIDERS[0].options.token_cache_size");
    expect_config_error(json_pack("{s:s, s:s, s:I}", "algorithm", "RS256", "public_key", rsa_pub,
                                  "token_cache_size",
                                  (json_int_t)LFS_AUTH_JWT_CACHE_MAX_ENTRIES + 1),
                        "config: AUTH_PROVIDERS[0].options.token_cache_size");
    expect_config_error(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256", "public_key", rsa_pub,
                                  "token_cache_size", "big"),
                        "config: AUTH_PROVIDERS[0].options.token_cache_size");
}

static void test_cache_bounds(void **state)
{
    (void)state;
    struct lfs_auth *auth =
        provider(json_pack("{s:s, s:s}", "algorithm", "HS256", "private_key", SECRET));
    struct lfs_identity id;
    struct lfs_error err;
    /* many distinct tokens: the cache stays bounded and the newest are still served */
    char payload[128];
    for (int i = 0; i < LFS_AUTH_JWT_CACHE_ENTRIES + 500; i++) {
        snprintf(payload, sizeof(payload), "{\"sub\":\"u%d\",\"exp\":%ld}", i, (long)NOW + 300);
        jwt_t *jwt;
        jwt_new(&jwt);
        jwt_add_grants_json(jwt, payload);
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET));
        char *t = jwt_encode_str(jwt);
        jwt_free(jwt);
        const char *h[] = {NULL};
        char *hv;
        assert_true(asprintf(&hv, "Bearer %s", t) > 0);
        h[0] = hv;
        assert_int_equal(auth_req(auth, h, 1, NULL, NOW, &id, &err), 1);
        free(hv);
        free(t);
        if (i % 256 == 0)
            h2o_mem_clear_pool(&pool);
    }
    auth->ops->destroy(auth);
}

/* An identity with `ngrants` grants on distinct repositories (strings from pool). */
static struct lfs_identity big_identity(const char *sub, size_t ngrants)
{
    struct lfs_grant *grants = h2o_mem_alloc_pool(&pool, ngrants * sizeof(*grants));
    for (size_t i = 0; i < ngrants; i++) {
        char *repo = h2o_mem_alloc_pool(&pool, 48);
        snprintf(repo, 48, "repository-with-a-long-name-%zu", i);
        grants[i] = (struct lfs_grant){.org_path = "org/team", .repo = repo, .perms = LFS_PERM_ALL};
    }
    return (struct lfs_identity){.id = sub, .name = sub, .grants = grants, .ngrants = ngrants};
}

static void cache_key_of(size_t i, unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN])
{
    char text[32];
    int n = snprintf(text, sizeof(text), "token-%zu", i);
    lfs_auth_token_cache_key(text, (size_t)n, key);
}

/* Issue #12: 6,000 tokens of ~300 scopes each held ~50 MB in a cache bounded in entries
 * only. The accounted bytes now never exceed the budget, and small entries still hit. */
static void test_cache_byte_bound(void **state)
{
    (void)state;
    const size_t budget = (size_t)LFS_AUTH_JWT_CACHE_BYTES;
    struct lfs_auth_token_cache *c = lfs_auth_token_cache_create(100000, budget, 600);
    assert_non_null(c);
    unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    struct lfs_identity big = big_identity("big-user", 300), out;
    size_t entries = 0, max_bytes = 0;
    for (size_t i = 0; i < 6000; i++) {
        cache_key_of(i, key);
        lfs_auth_token_cache_put(c, key, NOW, NOW + 300, &big);
        size_t bytes = lfs_auth_token_cache_bytes(c, &entries);
        assert_true(bytes <= budget);
        if (bytes > max_bytes)
            max_bytes = bytes;
    }
    /* the big identities were cached (~20 KB each), just not all of them */
    assert_true(max_bytes > budget / 2);
    assert_true(entries > 100 && entries < 6000);
    /* the most recent one is still there, whole */
    assert_int_equal(lfs_auth_token_cache_get(c, key, NOW, &pool, &out), 1);
    assert_int_equal(out.ngrants, 300);
    assert_string_equal(out.grants[299].repo, "repository-with-a-long-name-299");
    h2o_mem_clear_pool(&pool);

    /* small entries evict the big ones and then hit */
    struct lfs_identity small = {.id = "small-user", .name = "small-user"};
    for (size_t i = 10000; i < 10500; i++) {
        cache_key_of(i, key);
        lfs_auth_token_cache_put(c, key, NOW, NOW + 300, &small);
        assert_true(lfs_auth_token_cache_bytes(c, NULL) <= budget);
    }
    for (size_t i = 10000; i < 10500; i++) {
        cache_key_of(i, key);
        assert_int_equal(lfs_auth_token_cache_get(c, key, NOW, &pool, &out), 1);
        assert_string_equal(out.id, "small-user");
    }
    h2o_mem_clear_pool(&pool);

    /* an identity over the per-entry cap (budget / 128) is not cached, and evicts nothing */
    struct lfs_identity huge = big_identity("huge-user", 3000);
    size_t before = lfs_auth_token_cache_bytes(c, &entries), entries_after;
    cache_key_of(20000, key);
    lfs_auth_token_cache_put(c, key, NOW, NOW + 300, &huge);
    assert_int_equal(lfs_auth_token_cache_get(c, key, NOW, &pool, &out), 0);
    assert_int_equal(lfs_auth_token_cache_bytes(c, &entries_after), before);
    assert_int_equal(entries_after, entries);
    lfs_auth_token_cache_destroy(c);
    h2o_mem_clear_pool(&pool);
}

/* token_cache_bytes: a size, within bounds. */
static void test_cache_bytes_option(void **state)
{
    (void)state;
    struct lfs_auth *auth = provider(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256",
                                               "public_key", rsa_pub, "token_cache_bytes", "2M"));
    char *token = mint_rs(claims(300, ""));
    expect_accept(auth, token);
    expect_accept(auth, token);
    auth->ops->destroy(auth);
    static const char *const bad[] = {"1K", "65G", "-1", "lots"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_config_error(json_pack("{s:s, s:s, s:s}", "algorithm", "RS256", "public_key",
                                      rsa_pub, "token_cache_bytes", bad[i]),
                            "config: AUTH_PROVIDERS[0].options.token_cache_bytes");
}

/* ---- pre-authorized action tokens ---- */

static struct lfs_preauth *preauth(json_t *value)
{
    struct lfs_preauth *p = NULL;
    struct lfs_error err = {0};
    if (lfs_preauth_create(value, "PRE_AUTHORIZED_ACTION_PROVIDER", &p, &err) < 0)
        fail_msg("preauth: %s", err.message);
    json_decref(value);
    return p;
}

static const char *mint_action(struct lfs_preauth *p, const char *org, const char *repo,
                               const char *oid, unsigned perms, long lifetime)
{
    struct lfs_identity user = {.id = "user-1", .name = "User One", .email = "u@example.com"};
    const char *token = NULL;
    struct lfs_error err = {0};
    if (p->mint(p->provider, &user, org, repo, oid, perms, lifetime, &pool, &token, &err) < 0)
        fail_msg("mint: %s", err.message);
    return token;
}

static void test_preauth_mint_and_accept(void **state)
{
    (void)state;
    struct lfs_preauth *p = preauth(json_pack("{s:s, s:{s:s, s:s, s:n}}", "factory",
                                              "giftless.auth.jwt:factory", "options", "algorithm",
                                              "HS256", "private_key", SECRET, "private_key_file"));
    struct lfs_identity id;
    struct lfs_error err;
    time_t now = time(NULL);

    const char *up = mint_action(p, "a/b", "repo", OID, LFS_PERM_WRITE, 900);
    const char *h[] = {bearer(up)};
    assert_int_equal(auth_req(p->provider, h, 1, NULL, now, &id, &err), 1);
    assert_string_equal(id.id, "user-1");
    /* only what the action needs is minted: the name defaults to the sub, no email */
    assert_string_equal(id.name, "user-1");
    assert_null(id.email);
    assert_true(lfs_identity_is_action_token(&id));
    assert_true(lfs_identity_allows(&id, "a/b", "repo", OID, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a/b", "repo", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "a/b", "repo", OID2, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a/b", "other", OID, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a", "b", OID, LFS_PERM_WRITE));
    assert_false(lfs_identity_allows(&id, "a/b", "repo", NULL, LFS_PERM_WRITE)); /* batch */
    /* the lifetime is the action's, not giftless's 60 s */
    assert_true(id.expires >= now + 900 && id.expires <= now + 902);
    assert_int_equal(auth_req(p->provider, h, 1, NULL, now + 905, &id, &err), 1); /* leeway */
    assert_int_equal(auth_req(p->provider, h, 1, NULL, now + 911, &id, &err), -1);

    /* download token in ?jwt=, verify token: read-meta only */
    const char *down = mint_action(p, "org", "repo", OID, LFS_PERM_READ, 3600);
    assert_int_equal(auth_req(p->provider, NULL, 0, down, now, &id, &err), 1);
    assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ));
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_WRITE));
    const char *ver = mint_action(p, "org", "repo", OID, LFS_PERM_READ_META, 43200);
    const char *hv[] = {bearer(ver)};
    assert_int_equal(auth_req(p->provider, hv, 1, NULL, now, &id, &err), 1);
    assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ_META));
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ));

    /* the action token plus the user's own token (extraHeader): the action token is found */
    const char *two[] = {bearer(mint_rs(claims(300, ""))), bearer(up)};
    assert_int_equal(auth_req(p->provider, two, 2, NULL, now, &id, &err), 1);
    assert_true(lfs_identity_allows(&id, "a/b", "repo", OID, LFS_PERM_WRITE));

    /* a token with the action key but wider scopes grants nothing (exact objects only) */
    jwt_t *jwt;
    jwt_new(&jwt);
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"x\",\"exp\":%ld,\"scopes\":[\"obj:*\",\"obj:org/repo/*\"]}",
             (long)now + 60);
    jwt_add_grants_json(jwt, payload);
    jwt_add_header(jwt, "kid", "giftless-internal-jwt-key");
    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET));
    char *wide = keep(jwt_encode_str(jwt));
    jwt_free(jwt);
    const char *hw[] = {bearer(wide)};
    assert_int_equal(auth_req(p->provider, hw, 1, NULL, now, &id, &err), 1);
    assert_int_equal(id.ngrants, 0);
    assert_false(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ_META));

    /* invalid names are never minted */
    const char *token = NULL;
    struct lfs_identity user = {.id = "u", .name = "u"};
    assert_int_equal(
        p->mint(p->provider, &user, "org", "repo", "*", LFS_PERM_READ, 60, &pool, &token, &err),
        -1);
    assert_int_equal(
        p->mint(p->provider, &user, "org", "re:po", OID, LFS_PERM_READ, 60, &pool, &token, &err),
        -1);
    lfs_preauth_destroy(p);
}

/* Issue #12: a user token with a 2.9 KB sub gave an upload token over the 8 KiB limit.
 * Now the sub is bounded and only sub, scope and times are minted: even the largest sub,
 * escaped 6 bytes per byte, gives a small token that the provider accepts back. */
static void test_preauth_token_size(void **state)
{
    (void)state;
    struct lfs_preauth *p =
        preauth(json_pack("{s:s, s:{s:s}}", "factory", "jwt", "options", "private_key", SECRET));
    char sub[LFS_AUTH_JWT_MAX_SUB + 1], name[4096];
    memset(sub, '\x01', LFS_AUTH_JWT_MAX_SUB);
    sub[LFS_AUTH_JWT_MAX_SUB] = '\0';
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct lfs_identity user = {.id = sub, .name = name, .email = name};
    const char *token = NULL;
    struct lfs_error err = {0};
    assert_int_equal(p->mint(p->provider, &user, "org/with/a/deep/path", "repo", OID,
                             LFS_PERM_WRITE, 3600, &pool, &token, &err),
                     0);
    assert_true(strlen(token) < 2600);
    const char *h[] = {bearer(token)};
    struct lfs_identity id;
    assert_int_equal(auth_req(p->provider, h, 1, NULL, time(NULL), &id, &err), 1);
    assert_string_equal(id.id, sub);
    assert_true(lfs_identity_allows(&id, "org/with/a/deep/path", "repo", OID, LFS_PERM_WRITE));
    lfs_preauth_destroy(p);
}

/* Builds a chain from the AUTH_PROVIDERS list (consumed) with an HS256 preauth provider
 * (key SECRET) prepended, as the app does. Destroy the chain, then the preauth. */
static struct lfs_preauth *chain_with_preauth(json_t *list, struct lfs_auth_chain *chain)
{
    struct lfs_error err = {0};
    assert_int_equal(lfs_auth_chain_create(list, "AUTH_PROVIDERS", chain, &err), 0);
    json_decref(list);
    struct lfs_preauth *p =
        preauth(json_pack("{s:s, s:{s:s}}", "factory", "jwt", "options", "private_key", SECRET));
    assert_int_equal(lfs_auth_chain_prepend(chain, p->provider, &err), 0);
    return p;
}

static void test_preauth_in_chain(void **state)
{
    (void)state;
    struct lfs_auth_chain chain;
    struct lfs_error err = {0};
    struct lfs_preauth *p =
        chain_with_preauth(json_pack("[{s:s, s:{s:s, s:s}}, s]", "factory",
                                     "giftless.auth.jwt:factory", "options", "algorithm", "RS256",
                                     "public_key", rsa_pub, "giftless.auth.allow_anon:read_only"),
                           &chain);
    time_t now = time(NULL);
    struct lfs_identity id;
    h2o_iovec_t hv[2];
    struct lfs_auth_request req = {.authorization = hv, .now = now};

    /* an action token: accepted by the preauth provider */
    const char *up = mint_action(p, "org", "repo", OID, LFS_PERM_WRITE, 900);
    hv[0] = h2o_iovec_init(bearer(up), strlen(bearer(up)));
    req.nauthorization = 1;
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), 1);
    assert_true(lfs_identity_is_action_token(&id));
    /* a user token (no kid): passed on by the preauth provider, accepted by jwt */
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"sub\":\"user-1\",\"exp\":%ld,\"scopes\":\"obj:org/*\"}",
             (long)now + 60);
    char *user = mint_rs(keep(strdup(payload)));
    hv[0] = h2o_iovec_init(bearer(user), strlen(bearer(user)));
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), 1);
    assert_false(lfs_identity_is_action_token(&id));
    assert_true(lfs_identity_allows(&id, "org", "repo", NULL, LFS_PERM_WRITE));
    /* an action token shown to the user provider alone: not valid there */
    struct lfs_identity id2;
    struct lfs_error err2;
    assert_int_equal(auth_bearer(chain.providers[1], up, &id2, &err2), -1);
    /* no credentials: anonymous */
    req.nauthorization = 0;
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), 1);
    assert_string_equal(id.id, "anonymous");

    /* issue #12: an expired action token beside a valid user token (git-lfs sends both): the
     * user token wins, in either order, although the preauth provider (first in the chain)
     * rejects the action token */
    const char *expired = mint_action(p, "org", "repo", OID, LFS_PERM_WRITE, 1);
    snprintf(payload, sizeof(payload), "{\"sub\":\"user-2\",\"exp\":%ld,\"scopes\":\"obj:org/*\"}",
             (long)now + 600);
    char *user2 = bearer(mint_rs(keep(strdup(payload))));
    req.now = now + 100;
    req.nauthorization = 2;
    for (int order = 0; order < 2; order++) {
        hv[order] = h2o_iovec_init(bearer(expired), strlen(bearer(expired)));
        hv[1 - order] = h2o_iovec_init(user2, strlen(user2));
        memset(&id, 0, sizeof(id));
        if (lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err) != 1)
            fail_msg("order %d: %s", order, err.message);
        assert_string_equal(id.id, "user-2");
        assert_false(lfs_identity_is_action_token(&id));
        assert_true(lfs_identity_allows(&id, "org", "repo", NULL, LFS_PERM_WRITE));
    }
    /* the expired action token alone: 401 with its own reason, not anonymous access */
    req.nauthorization = 1;
    hv[0] = h2o_iovec_init(bearer(expired), strlen(bearer(expired)));
    err = (struct lfs_error){0};
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), -1);
    assert_int_equal(err.status, 401);
    assert_non_null(strstr(err.message, "expired"));
    /* a rejected user token beside an expired action token: still 401, the first reason */
    char *forged = keep(strdup(user2));
    forged[strlen(forged) - 3] = forged[strlen(forged) - 3] == 'A' ? 'B' : 'A';
    hv[1] = h2o_iovec_init(forged, strlen(forged));
    req.nauthorization = 2;
    err = (struct lfs_error){0};
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), -1);
    assert_non_null(strstr(err.message, "expired"));
    /* a rejected user token alone: 401 from the jwt provider, not anonymous */
    hv[0] = hv[1];
    req.nauthorization = 1;
    err = (struct lfs_error){0};
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), -1);
    assert_non_null(strstr(err.message, "signature"));
    /* the chain does not free the preauth provider; lfs_preauth_destroy does */
    lfs_auth_chain_destroy(&chain);
    lfs_preauth_destroy(p);
}

/* A credential the preauth provider rejected is not shown to the user provider: with the
 * same HS256 key and a longer leeway, the user provider would otherwise take an expired
 * action token for a user token (without the action_token mark, so it could renew itself
 * on the batch API). */
static void test_chain_rejected_credential_not_retried(void **state)
{
    (void)state;
    struct lfs_auth_chain chain;
    struct lfs_error err = {0};
    struct lfs_preauth *p =
        chain_with_preauth(json_pack("[{s:s, s:{s:s, s:s, s:i}}]", "factory", "jwt", "options",
                                     "algorithm", "HS256", "private_key", SECRET, "leeway", 3600),
                           &chain);
    time_t now = time(NULL);
    const char *up = bearer(mint_action(p, "org", "repo", OID, LFS_PERM_WRITE, 1));
    h2o_iovec_t hv[1] = {h2o_iovec_init(up, strlen(up))};
    struct lfs_auth_request req = {.authorization = hv, .nauthorization = 1, .now = now};
    struct lfs_identity id;
    /* valid: the preauth provider takes it, marked */
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), 1);
    assert_true(lfs_identity_is_action_token(&id));
    /* expired for the preauth provider (leeway 10 s), not for the user provider (1 h) */
    req.now = now + 100;
    assert_int_equal(
        auth_req(chain.providers[1], (const char *[]){up}, 1, NULL, req.now, &id, &err),
        1); /* what the user provider alone would do */
    err = (struct lfs_error){0};
    assert_int_equal(lfs_auth_chain_authenticate(&chain, &req, &pool, &id, &err), -1);
    assert_non_null(strstr(err.message, "expired"));
    lfs_auth_chain_destroy(&chain);
    lfs_preauth_destroy(p);
}

static void test_preauth_keys(void **state)
{
    (void)state;
    struct lfs_preauth *p = NULL;
    struct lfs_error err = {0};
    /* null: off */
    assert_int_equal(lfs_preauth_create(json_null(), "PRE_AUTHORIZED_ACTION_PROVIDER", &p, &err),
                     0);
    assert_null(p);
    assert_int_equal(lfs_preauth_create(NULL, "PRE_AUTHORIZED_ACTION_PROVIDER", &p, &err), 0);
    assert_null(p);
    /* no key, or giftless's "change-me": a random key each, so two replicas disagree */
    struct lfs_preauth *a = preauth(json_string("giftless.auth.jwt:factory"));
    struct lfs_preauth *b = preauth(
        json_pack("{s:s, s:{s:s, s:s, s:n, s:i, s:s}}", "factory", "giftless.auth.jwt:factory",
                  "options", "algorithm", "HS256", "private_key", "change-me", "public_key",
                  "default_lifetime", 60, "key_id", "giftless-internal-jwt-key"));
    time_t now = time(NULL);
    struct lfs_identity id;
    const char *ta = mint_action(a, "org", "repo", OID, LFS_PERM_READ, 60);
    const char *h[] = {bearer(ta)};
    assert_int_equal(auth_req(a->provider, h, 1, NULL, now, &id, &err), 1);
    assert_int_equal(auth_req(b->provider, h, 1, NULL, now, &id, &err), -1);
    /* a token giftless would mint with "change-me" is refused */
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"sub\":\"x\",\"exp\":%ld,\"scopes\":\"obj:o/r/%s\"}",
             (long)now + 60, OID);
    char *forged = mint(JWT_ALG_HS256, "change-me", 9, "giftless-internal-jwt-key", payload);
    const char *hf[] = {bearer(forged)};
    assert_int_equal(auth_req(b->provider, hf, 1, NULL, now, &id, &err), -1);
    lfs_preauth_destroy(a);
    lfs_preauth_destroy(b);

    /* lifetime <= 0 uses default_lifetime */
    p = preauth(json_pack("{s:s, s:{s:s, s:i}}", "factory", "jwt", "options", "private_key", SECRET,
                          "default_lifetime", 120));
    const char *t = mint_action(p, "org", "repo", OID, LFS_PERM_READ, 0);
    const char *ht[] = {bearer(t)};
    assert_int_equal(auth_req(p->provider, ht, 1, NULL, now, &id, &err), 1);
    assert_true(id.expires >= now + 120 && id.expires <= now + 122);
    lfs_preauth_destroy(p);

    /* RS256 action tokens need the private key, and then work */
    p = preauth(json_pack("{s:s, s:{s:s, s:s}}", "factory", "jwt", "options", "algorithm", "RS256",
                          "private_key", rsa_priv));
    t = mint_action(p, "org", "repo", OID, LFS_PERM_WRITE, 60);
    const char *hr[] = {bearer(t)};
    assert_int_equal(auth_req(p->provider, hr, 1, NULL, now, &id, &err), 1);
    lfs_preauth_destroy(p);
    struct {
        json_t *value;
        const char *prefix;
    } bad[] = {
        {json_pack("{s:s, s:{s:s, s:s}}", "factory", "jwt", "options", "algorithm", "RS256",
                   "public_key", rsa_pub),
         "config: PRE_AUTHORIZED_ACTION_PROVIDER.options.private_key: a private key is required"},
        {json_pack("{s:s}", "factory", "giftless.auth.allow_anon:read_only"),
         "config: PRE_AUTHORIZED_ACTION_PROVIDER.factory: \"giftless.auth.allow_anon:read_only\" "
         "cannot mint"},
        {json_pack("{s:s}", "factory", "nope"), "config: PRE_AUTHORIZED_ACTION_PROVIDER.factory:"},
        {json_pack("{s:{}}", "options"),
         "config: PRE_AUTHORIZED_ACTION_PROVIDER.factory: required key is missing"},
        {json_pack("{s:s, s:s}", "factory", "jwt", "extra", "x"),
         "config: PRE_AUTHORIZED_ACTION_PROVIDER.extra: unknown key"},
        {json_integer(3), "config: PRE_AUTHORIZED_ACTION_PROVIDER: expected null"},
        {json_pack("{s:s, s:{s:s}}", "factory", "jwt", "options", "algorithm", "XS1"),
         "config: PRE_AUTHORIZED_ACTION_PROVIDER.options.algorithm: unsupported"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = NULL;
        err = (struct lfs_error){0};
        assert_int_equal(
            lfs_preauth_create(bad[i].value, "PRE_AUTHORIZED_ACTION_PROVIDER", &p, &err), -1);
        assert_null(p);
        if (strncmp(err.message, bad[i].prefix, strlen(bad[i].prefix)) != 0)
            fail_msg("message \"%s\" does not start with \"%s\"", err.message, bad[i].prefix);
        json_decref(bad[i].value);
    }
    lfs_preauth_destroy(NULL);
}

/* ---- concurrency: every worker thread shares one provider and its cache ---- */

/* h2o keeps a per-thread recycle bin of pool chunks that is never emptied when a thread ends
 * (workers live forever in the server); tell LeakSanitizer that those are not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

#define NTHREADS 8
#define NTOKENS 16

struct worker {
    struct lfs_auth *auth;
    char **tokens;
    char **subs;
    atomic_int *failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    h2o_mem_pool_t wpool;
    h2o_mem_init_pool(&wpool);
    for (int i = 0; i < 400; i++) {
        size_t k = (size_t)(i * 7 + (int)(uintptr_t)pthread_self()) % NTOKENS;
        h2o_iovec_t hv = h2o_iovec_init(w->tokens[k], strlen(w->tokens[k]));
        struct lfs_auth_request req = {.authorization = &hv, .nauthorization = 1, .now = NOW};
        struct lfs_identity id;
        struct lfs_error err = {0};
        if (w->auth->ops->authenticate(w->auth, &req, &wpool, &id, &err) != 1 ||
            strcmp(id.id, w->subs[k]) != 0 || id.ngrants != 1 ||
            !lfs_identity_allows(&id, "org", w->subs[k], OID, LFS_PERM_WRITE))
            atomic_fetch_add(w->failures, 1);
        if (i % 64 == 0)
            h2o_mem_clear_pool(&wpool);
    }
    h2o_mem_clear_pool(&wpool);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct lfs_auth *auth = rs256_provider();
    char *tokens[NTOKENS], *subs[NTOKENS];
    for (size_t k = 0; k < NTOKENS; k++) {
        char payload[256];
        assert_true(asprintf(&subs[k], "user-%zu", k) > 0);
        keep(subs[k]);
        snprintf(payload, sizeof(payload),
                 "{\"sub\":\"%s\",\"exp\":%ld,\"scopes\":\"obj:org/%s/*:write\"}", subs[k],
                 (long)NOW + 300, subs[k]);
        tokens[k] = bearer(mint_rs(payload));
    }
    atomic_int failures = 0;
    struct worker w = {auth, tokens, subs, &failures};
    pthread_t threads[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &w), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(threads[t], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    auth->ops->destroy(auth);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, free_kept)
    const struct CMUnitTest tests[] = {
        T(test_rs256_identity),
        T(test_time_claims),
        T(test_audience_and_issuer),
        T(test_forged_tokens),
        T(test_malformed_tokens),
        T(test_size_limits),
        T(test_key_id),
        T(test_token_sources),
        T(test_algorithms),
        T(test_key_files),
        T(test_config_errors),
        T(test_cache),
        T(test_cache_off),
        T(test_cache_bounds),
        T(test_cache_byte_bound),
        T(test_cache_bytes_option),
        T(test_claim_bounds),
        T(test_preauth_token_size),
        T(test_preauth_mint_and_accept),
        T(test_preauth_in_chain),
        T(test_chain_rejected_credential_not_retried),
        T(test_preauth_keys),
        T(test_concurrent),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
