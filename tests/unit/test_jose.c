/* Unit tests of the primitives action tokens are minted and checked with (auth/jose.c) and of
 * the minting itself (auth/jwt.c): the base64 codecs and the JSON string writer are compared
 * with independent implementations (OpenSSL's base64, a plain bit-by-bit decoder, jansson),
 * the HMAC built from precomputed digest states with OpenSSL's one-shot HMAC(), and minted
 * tokens with the header and claims jansson used to write, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/auth.h"
#include "auth/jose.h"
#include "auth/jwt.h"

#define OID "6adada03e86b154be00e25f288fcadc27aef06c47f12f88e3e1985c502803d1b"
#define SECRET "0123456789abcdef0123456789abcdef-test-only"

static h2o_mem_pool_t pool;

/* Deterministic pseudo-random bytes (xorshift), so a failure can be replayed. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* ---- base64 ---- */

static void test_base64url_encode(void **state)
{
    (void)state;
    unsigned char in[300];
    char ours[410], ref[410];
    for (size_t len = 0; len <= sizeof(in); len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)rnd();
        size_t n = lfs_auth_base64url_encode(in, len, ours);
        assert_int_equal(n, strlen(ours));
        /* OpenSSL's standard alphabet with padding, turned into unpadded base64url */
        int m = EVP_EncodeBlock((unsigned char *)ref, in, (int)len);
        while (m > 0 && ref[m - 1] == '=')
            ref[--m] = '\0';
        for (int i = 0; i < m; i++)
            ref[i] = ref[i] == '+' ? '-' : ref[i] == '/' ? '_' : ref[i];
        assert_string_equal(ours, ref);
        unsigned char back[300];
        assert_int_equal(lfs_auth_base64url_decode(ours, n, back), len);
        assert_memory_equal(back, in, len);
    }
}

/* The decoder lfsgate had before (one character at a time), as the reference. */
static size_t reference_decode(const char *in, size_t len, unsigned char *out, int url)
{
    if (len % 4 == 1)
        return (size_t)-1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v = c >= 'A' && c <= 'Z'     ? c - 'A'
                : c >= 'a' && c <= 'z'   ? c - 'a' + 26
                : c >= '0' && c <= '9'   ? c - '0' + 52
                : c == (url ? '-' : '+') ? 62
                : c == (url ? '_' : '/') ? 63
                                         : -1;
        if (v < 0)
            return (size_t)-1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc != 0 ? (size_t)-1 : o;
}

static void test_base64_decode_strict(void **state)
{
    (void)state;
    /* valid characters of both alphabets, ones with non-zero low bits, and strangers */
    static const char chars[] = "AQRwxz09-_+/=!. \x80";
    char in[16];
    unsigned char ours[16], ref[16];
    for (int round = 0; round < 200000; round++) {
        size_t len = rnd() % 14;
        for (size_t i = 0; i < len; i++)
            in[i] = chars[rnd() % (sizeof(chars) - 1)];
        size_t a = lfs_auth_base64url_decode(in, len, ours);
        size_t b = reference_decode(in, len, ref, 1);
        assert_int_equal(a, b);
        if (a != (size_t)-1)
            assert_memory_equal(ours, ref, a);
        /* standard alphabet: padding is stripped first, when the length is a multiple of 4 */
        size_t pad = 0;
        while (len % 4 == 0 && pad < 2 && len > pad && in[len - 1 - pad] == '=')
            pad++;
        a = lfs_auth_base64_decode(in, len, ours);
        b = reference_decode(in, len - pad, ref, 0);
        assert_int_equal(a, b);
        if (a != (size_t)-1)
            assert_memory_equal(ours, ref, a);
    }
    unsigned char out[8];
    assert_int_equal(lfs_auth_base64_decode("dXNlcjpwdw==", 12, out), 7);
    assert_memory_equal(out, "user:pw", 7);
    assert_int_equal(lfs_auth_base64url_decode("QR", 2, out), (size_t)-1); /* stray bits */
    assert_int_equal(lfs_auth_base64url_decode("QQ", 2, out), 1);
    assert_int_equal(lfs_auth_base64url_decode("QUJD", 4, out), 3);
    assert_int_equal(lfs_auth_base64url_decode("QUJDR", 5, out), (size_t)-1);
}

/* ---- JSON strings ---- */

/* Checks lfs_auth_json_string against json_dumps on s[0..len). */
static void check_json_string(const char *s, size_t len)
{
    size_t cap = LFS_AUTH_JSON_STRING_MAX(len);
    char *ours = malloc(cap); /* exactly the documented room: ASan sees any overrun */
    size_t n = lfs_auth_json_string(s, len, ours);
    json_t *str = json_stringn(s, len);
    if (str == NULL) {
        if (n != (size_t)-1)
            fail_msg("accepted what jansson refuses (%zu bytes, first %02x)", len,
                     len ? (unsigned char)s[0] : 0);
    } else {
        char *ref = json_dumps(str, JSON_ENCODE_ANY | JSON_COMPACT);
        if (n == (size_t)-1)
            fail_msg("refused what jansson accepts: %s", ref);
        assert_int_equal(n, strlen(ref));
        assert_memory_equal(ours, ref, n);
        free(ref);
    }
    json_decref(str);
    free(ours);
}

static void test_json_string(void **state)
{
    (void)state;
    static const char *const fixed[] = {"",
                                        "plain",
                                        "a\"b\\c/d",
                                        "tab\there\nnew\rline\bback\fform",
                                        "\x01\x1f\x7f",
                                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* é € 😀 */
                                        "\xc3",
                                        "\xc0\x80",
                                        "\xe0\x80\x80",
                                        "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80",
                                        "\xf5\x80",
                                        "\xff",
                                        "a\xe2\x82",
                                        "\x80"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_json_string(fixed[i], strlen(fixed[i]));
    check_json_string("nul\0inside", 10);
    /* every single byte, and random strings of bytes around the UTF-8 boundaries */
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        check_json_string(&b, 1);
    }
    static const unsigned char bytes[] = {0x00, 0x01, 0x1f, 0x20, '"',  '\\', '/',  'a',  0x7f,
                                          0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                          0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    char s[12];
    for (int round = 0; round < 100000; round++) {
        size_t len = rnd() % sizeof(s);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)bytes[rnd() % sizeof(bytes)];
        check_json_string(s, len);
    }
}

/* ---- HMAC ---- */

static void test_hmac_matches_openssl(void **state)
{
    (void)state;
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    static const size_t secret_lens[] = {1, 31, 32, 63, 64, 65, 127, 128, 129, 300};
    static const size_t prefix_lens[] = {0, 10, 64, 83, 130};
    unsigned char secret[300], input[400];
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (unsigned char)('a' + rnd() % 26);
    for (size_t a = 0; a < 3; a++) {
        for (size_t s = 0; s < sizeof(secret_lens) / sizeof(secret_lens[0]); s++) {
            for (size_t p = 0; p < sizeof(prefix_lens) / sizeof(prefix_lens[0]); p++) {
                struct lfs_auth_jose_key key = {.alg = lfs_auth_jose_alg_find(algs[a])};
                struct lfs_error err = {0};
                assert_non_null(key.alg);
                assert_int_equal(lfs_auth_jose_key_set_secret(&key, (const char *)secret,
                                                              secret_lens[s], "test", &err),
                                 0);
                for (size_t i = 0; i < sizeof(input); i++)
                    input[i] = (unsigned char)rnd();
                if (prefix_lens[p] > 0)
                    assert_int_equal(
                        lfs_auth_jose_key_set_prefix(&key, (const char *)input, prefix_lens[p]), 0);
                for (size_t len = 0; len <= sizeof(input); len += 1 + rnd() % 23) {
                    /* inputs that start with the prefix (first half) and ones that do not */
                    if (len == sizeof(input) / 2)
                        input[0] ^= 1;
                    unsigned char ours[LFS_AUTH_JOSE_MAX_SIG], ref[EVP_MAX_MD_SIZE];
                    size_t n = 0;
                    unsigned int m = 0;
                    assert_int_equal(lfs_auth_jose_sign(&key, (const char *)input, len, ours, &n),
                                     0);
                    assert_non_null(
                        HMAC(key.alg->md(), secret, (int)secret_lens[s], input, len, ref, &m));
                    assert_int_equal(n, m);
                    assert_int_equal(n, lfs_auth_jose_sig_max(&key));
                    assert_memory_equal(ours, ref, n);
                    assert_true(lfs_auth_jose_verify(&key, (const char *)input, len, ours, n));
                    ours[n / 2] ^= 0x40;
                    assert_false(lfs_auth_jose_verify(&key, (const char *)input, len, ours, n));
                    ours[n / 2] ^= 0x40;
                    assert_false(lfs_auth_jose_verify(&key, (const char *)input, len, ours, n - 1));
                }
                lfs_auth_jose_key_clear(&key);
                assert_null(key.hmac);
                assert_null(key.secret);
            }
        }
    }
    /* no secret: no HMAC */
    struct lfs_auth_jose_key none = {.alg = lfs_auth_jose_alg_find("HS256")};
    unsigned char sig[LFS_AUTH_JOSE_MAX_SIG];
    size_t n;
    assert_int_equal(lfs_auth_jose_sign(&none, "x", 1, sig, &n), -1);
    assert_false(lfs_auth_jose_verify(&none, "x", 1, sig, 32));
    assert_int_equal(lfs_auth_jose_key_set_prefix(&none, "x", 1), 0);
}

/* ---- minting ---- */

static struct lfs_preauth *preauth(json_t *options)
{
    struct lfs_preauth *p = NULL;
    struct lfs_error err = {0};
    json_t *value =
        json_pack("{s:s, s:o}", "factory", "giftless.auth.jwt:factory", "options", options);
    if (lfs_preauth_create(value, "PRE_AUTHORIZED_ACTION_PROVIDER", &p, &err) < 0)
        fail_msg("preauth: %s", err.message);
    json_decref(value);
    return p;
}

/* Decodes one base64url part of a token into a NUL-terminated malloc'd string. */
static char *decode_part(const char *p, size_t len)
{
    char *out = malloc(len * 3 / 4 + 2);
    size_t n = lfs_auth_base64url_decode(p, len, (unsigned char *)out);
    assert_true(n != (size_t)-1);
    out[n] = '\0';
    return out;
}

/* Compares s with json_dumps(v) and frees v. */
static void assert_json_text(const char *s, json_t *v)
{
    assert_non_null(v);
    char *ref = json_dumps(v, JSON_COMPACT);
    if (strcmp(s, ref) != 0)
        fail_msg("minted:\n  %s\njansson:\n  %s", s, ref);
    free(ref);
    json_decref(v);
}

/* Mints a token for id and checks it is, byte for byte, the token the jansson-based minting
 * wrote (header, claims in order and escaping), that its HMAC is right, and that the provider
 * accepts it back with the same identity. */
static void check_mint(struct lfs_preauth *p, const char *kid, const char *iss, const char *aud,
                       const struct lfs_identity *id, long lifetime, long expected_lifetime)
{
    const char *token = NULL;
    struct lfs_error err = {0};
    time_t before = time(NULL);
    if (p->mint(p->provider, id, "org/sub", "repo", OID, LFS_PERM_WRITE | LFS_PERM_READ_META,
                lifetime, &pool, &token, &err) < 0)
        fail_msg("mint: %s", err.message);
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));

    char *header = decode_part(token, (size_t)(dot1 - token));
    json_t *h = json_pack("{s:s, s:s}", "alg", "HS256", "typ", "JWT");
    if (kid != NULL)
        json_object_set_new(h, "kid", json_string(kid));
    assert_json_text(header, h);

    char *claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    json_t *parsed = json_loads(claims, 0, NULL);
    assert_non_null(parsed);
    json_int_t iat = json_integer_value(json_object_get(parsed, "iat"));
    json_decref(parsed);
    assert_true(iat >= before && iat <= time(NULL));
    json_t *c = json_pack("{s:I, s:I, s:I, s:s, s:s}", "exp", iat + expected_lifetime, "iat", iat,
                          "nbf", iat, "sub", id->id ? id->id : "", "scopes",
                          "obj:org/sub/repo/" OID ":verify,write");
    /* Only what the action needs: no name or email, whatever the identity holds (a large
     * claim must not make the token too large to be accepted back). */
    if (iss)
        json_object_set_new(c, "iss", json_string(iss));
    if (aud)
        json_object_set_new(c, "aud", json_string(aud));
    assert_json_text(claims, c);

    unsigned char mac[EVP_MAX_MD_SIZE], sig[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)token,
         (size_t)(dot2 - token), mac, &maclen);
    assert_int_equal(lfs_auth_base64url_decode(dot2 + 1, strlen(dot2 + 1), sig), maclen);
    assert_memory_equal(sig, mac, maclen);

    char *auth;
    assert_true(asprintf(&auth, "Bearer %s", token) > 0);
    h2o_iovec_t hv = h2o_iovec_init(auth, strlen(auth));
    struct lfs_auth_request req = {.authorization = &hv, .nauthorization = 1, .now = iat};
    struct lfs_identity back;
    assert_int_equal(p->provider->ops->authenticate(p->provider, &req, &pool, &back, &err), 1);
    assert_string_equal(back.id, id->id ? id->id : "");
    assert_string_equal(back.name, back.id);
    assert_null(back.email);
    assert_true(lfs_identity_allows(&back, "org/sub", "repo", OID, LFS_PERM_WRITE));
    assert_true(lfs_identity_allows(&back, "org/sub", "repo", OID, LFS_PERM_READ_META));
    assert_false(lfs_identity_allows(&back, "org/sub", "repo", OID, LFS_PERM_READ));
    free(auth);
    free(header);
    free(claims);
}

static void test_mint_format(void **state)
{
    (void)state;
    static const struct lfs_identity ids[] = {
        {.id = "anonymous", .name = "anonymous"},
        {.id = "user-1", .name = "User One", .email = "u@example.com"},
        {.id = NULL},
        {.id = "quote\" back\\slash /slash", .name = "new\nline\ttab\x01\x1f\x7f"},
        {.id = "caf\xc3\xa9", .name = "\xe2\x82\xac\xf0\x9f\x98\x80", .email = "\"@x"},
    };
    struct lfs_preauth *p = preauth(json_pack("{s:s}", "private_key", SECRET));
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        check_mint(p, "giftless-internal-jwt-key", NULL, NULL, &ids[i], 900, 900);
    lfs_preauth_destroy(p);

    /* issuer, audience and a key id that all need escaping */
    const char *kid = "kid \"1\"\\", *iss = "https://issuer/\"x\"", *aud = "aud\t\xc3\xa9";
    p = preauth(json_pack("{s:s, s:s, s:s, s:s, s:i}", "private_key", SECRET, "key_id", kid,
                          "issuer", iss, "audience", aud, "default_lifetime", 77));
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        check_mint(p, kid, iss, aud, &ids[i], 3600, 3600);
    check_mint(p, kid, iss, aud, &ids[1], 0, 77); /* lifetime 0: default_lifetime */

    /* a sub that is not UTF-8: jansson refused to put it in the claims, and so does the
     * writer (the token would name another identity) */
    static const char *const bad[] = {"\xff", "a\xc3", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lfs_identity id = {.id = bad[i], .name = "u"};
        const char *token = NULL;
        struct lfs_error err = {0};
        assert_int_equal(
            p->mint(p->provider, &id, "org", "repo", OID, LFS_PERM_READ, 60, &pool, &token, &err),
            -1);
        assert_int_equal(err.status, 500);
        assert_string_equal(err.message, "cannot mint an action token");
    }
    lfs_preauth_destroy(p);
}

/* Signs header.payload by hand with SECRET (HS256). */
static char *hand_token(const char *header, const char *payload)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *out = malloc((hl + pl) * 2 + 128);
    size_t n = lfs_auth_base64url_encode((const unsigned char *)header, hl, out);
    out[n++] = '.';
    n += lfs_auth_base64url_encode((const unsigned char *)payload, pl, out + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)out, n, mac, &maclen);
    out[n++] = '.';
    lfs_auth_base64url_encode(mac, maclen, out + n);
    return out;
}

static int auth_token(struct lfs_auth *auth, const char *token, struct lfs_identity *id,
                      struct lfs_error *err)
{
    char *value;
    assert_true(asprintf(&value, "Bearer %s", token) > 0);
    h2o_iovec_t hv = h2o_iovec_init(value, strlen(value));
    struct lfs_auth_request req = {.authorization = &hv, .nauthorization = 1, .now = 0};
    *err = (struct lfs_error){0};
    int r = auth->ops->authenticate(auth, &req, &pool, id, err);
    free(value);
    return r;
}

/* A header byte-identical to ours skips parsing; any other still goes through every check. */
static void test_own_header(void **state)
{
    (void)state;
    struct lfs_preauth *p = preauth(json_pack("{s:s}", "private_key", SECRET));
    struct lfs_identity id;
    struct lfs_error err;
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"x\",\"exp\":%lld,\"scopes\":\"obj:o/r/%s:read\"}",
             (long long)time(NULL) + 60, OID);
    /* ours byte for byte (not parsed, HMAC from the precomputed header state), then the same
     * header written otherwise (parsed, HMAC from the start) */
    static const char *const headers[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"giftless-internal-jwt-key\"}",
        "{\"kid\":\"giftless-internal-jwt-key\",\"alg\":\"HS256\"}",
        "{\"alg\": \"HS256\", \"typ\": \"JWT\", \"kid\": \"giftless-internal-jwt-key\"}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = hand_token(headers[i], payload);
        assert_int_equal(auth_token(p->provider, t, &id, &err), 1);
        assert_string_equal(id.id, "x");
        /* a wrong signature under our header is still refused */
        t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
        assert_int_equal(auth_token(p->provider, t, &id, &err), -1);
        assert_string_equal(err.message, "token signature is invalid");
        free(t);
    }
    /* other kid: not ours; other alg, crit: refused, as before */
    char *t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"other\"}", payload);
    assert_int_equal(auth_token(p->provider, t, &id, &err), 0);
    free(t);
    t = hand_token("{\"alg\":\"HS384\",\"kid\":\"giftless-internal-jwt-key\"}", payload);
    assert_int_equal(auth_token(p->provider, t, &id, &err), -1);
    assert_non_null(strstr(err.message, "algorithm"));
    free(t);
    t = hand_token("{\"alg\":\"HS256\",\"kid\":\"giftless-internal-jwt-key\",\"crit\":[\"x\"]}",
                   payload);
    assert_int_equal(auth_token(p->provider, t, &id, &err), -1);
    assert_non_null(strstr(err.message, "crit"));
    free(t);
    /* our header on an oversized token: the size check still applies */
    char *big = malloc(LFS_AUTH_JWT_MAX_TOKEN + 64);
    snprintf(big, LFS_AUTH_JWT_MAX_TOKEN + 64, "{\"sub\":\"%0*d\",\"exp\":%lld}",
             LFS_AUTH_JWT_MAX_TOKEN, 0, (long long)time(NULL) + 60);
    t = hand_token(headers[0], big);
    assert_int_equal(auth_token(p->provider, t, &id, &err), -1);
    assert_non_null(strstr(err.message, "too large"));
    free(t);
    free(big);
    lfs_preauth_destroy(p);
}

/* RS256, PS256 and ES256 action tokens (no HMAC states, signature sizes from the key). */
static void test_mint_asymmetric(void **state)
{
    (void)state;
    static const struct {
        const char *alg;
        int ec;
    } cases[] = {{"RS256", 0}, {"PS256", 0}, {"ES256", 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *key = cases[i].ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
        assert_non_null(key);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
        char *pem;
        long len = BIO_get_mem_data(bio, &pem);
        char *priv = strndup(pem, (size_t)len);
        BIO_free(bio);
        EVP_PKEY_free(key);
        struct lfs_preauth *p =
            preauth(json_pack("{s:s, s:s}", "algorithm", cases[i].alg, "private_key", priv));
        struct lfs_identity user = {.id = "u\"1", .name = "U"}, id;
        const char *token = NULL;
        struct lfs_error err = {0};
        for (int k = 0; k < 3; k++) {
            assert_int_equal(p->mint(p->provider, &user, "org", "repo", OID, LFS_PERM_READ, 60,
                                     &pool, &token, &err),
                             0);
            assert_int_equal(auth_token(p->provider, token, &id, &err), 1);
            assert_string_equal(id.id, "u\"1");
            assert_true(lfs_identity_allows(&id, "org", "repo", OID, LFS_PERM_READ));
        }
        lfs_preauth_destroy(p);
        free(priv);
    }
}

/* ---- concurrency: workers mint and check tokens with one shared provider ---- */

/* h2o keeps a per-thread recycle bin of pool chunks that is never emptied when a thread ends
 * (workers live forever in the server); tell LeakSanitizer that those are not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

#define NTHREADS 8
#define PER_THREAD 2000

struct worker {
    struct lfs_preauth *p;
    atomic_int *failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    h2o_mem_pool_t own;
    h2o_mem_init_pool(&own);
    for (int i = 0; i < PER_THREAD; i++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "user-%d", i);
        struct lfs_identity user = {.id = sub, .name = sub}, id;
        const char *token = NULL;
        struct lfs_error err = {0};
        char value[1024];
        if (w->p->mint(w->p->provider, &user, "org", "repo", OID, LFS_PERM_WRITE, 60, &own, &token,
                       &err) < 0 ||
            (size_t)snprintf(value, sizeof(value), "Bearer %s", token) >= sizeof(value)) {
            atomic_fetch_add(w->failures, 1);
            continue;
        }
        h2o_iovec_t hv = h2o_iovec_init(value, strlen(value));
        struct lfs_auth_request req = {.authorization = &hv, .nauthorization = 1};
        if (w->p->provider->ops->authenticate(w->p->provider, &req, &own, &id, &err) != 1 ||
            strcmp(id.id, sub) != 0)
            atomic_fetch_add(w->failures, 1);
        if (i % 64 == 63)
            h2o_mem_clear_pool(&own);
    }
    h2o_mem_clear_pool(&own);
    return NULL;
}

static void test_concurrent_mint(void **state)
{
    (void)state;
    struct lfs_preauth *p = preauth(json_pack("{s:s}", "private_key", SECRET));
    atomic_int failures = 0;
    struct worker w = {p, &failures};
    pthread_t threads[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &w), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(threads[t], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    lfs_preauth_destroy(p);
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

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_base64url_encode),     T(test_base64_decode_strict), T(test_json_string),
        T(test_hmac_matches_openssl), T(test_mint_format),          T(test_own_header),
        T(test_mint_asymmetric),      T(test_concurrent_mint),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
