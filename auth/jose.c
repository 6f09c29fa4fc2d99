/* JWS signing and verification for the jwt provider, directly on OpenSSL 3 with keys parsed
 * once at startup (see jose.h for why not libjwt), plus the base64 codecs and the JSON string
 * escaping tokens need. Keys are loaded on the main thread; verify and sign only read them,
 * from any thread.
 *
 * HS* is HMAC (RFC 2104) built here on EVP digests rather than OpenSSL's one-shot HMAC():
 * that fetches the algorithm and re-hashes the padded key on every call, several times the
 * cost of hashing a token. The digest states after (key ^ ipad), after (key ^ ipad) and the
 * usual JOSE header, and after (key ^ opad) are computed once; each MAC copies one and hashes
 * only the rest. The states are never written after startup, so any thread may copy them. */
#include "auth/jose.h"

#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "common/text.h"

#define MIN_RSA_BITS 2048  /* RFC 7518 section 3.3 */
#define MAX_HMAC_BLOCK 128 /* SHA-384 and SHA-512 */

struct lfs_auth_jose_hmac {
    EVP_MD_CTX *inner;        /* absorbed (key ^ ipad) */
    EVP_MD_CTX *outer;        /* absorbed (key ^ opad) */
    EVP_MD_CTX *inner_prefix; /* absorbed (key ^ ipad) || prefix; NULL without a prefix */
    char *prefix;
    size_t prefix_len;
};

static const struct lfs_auth_jose_alg algs[] = {
    {"HS256", LFS_AUTH_JOSE_HMAC, EVP_sha256, NULL, 0},
    {"HS384", LFS_AUTH_JOSE_HMAC, EVP_sha384, NULL, 0},
    {"HS512", LFS_AUTH_JOSE_HMAC, EVP_sha512, NULL, 0},
    {"RS256", LFS_AUTH_JOSE_RSA, EVP_sha256, NULL, 0},
    {"RS384", LFS_AUTH_JOSE_RSA, EVP_sha384, NULL, 0},
    {"RS512", LFS_AUTH_JOSE_RSA, EVP_sha512, NULL, 0},
    {"PS256", LFS_AUTH_JOSE_RSA_PSS, EVP_sha256, NULL, 0},
    {"PS384", LFS_AUTH_JOSE_RSA_PSS, EVP_sha384, NULL, 0},
    {"PS512", LFS_AUTH_JOSE_RSA_PSS, EVP_sha512, NULL, 0},
    {"ES256", LFS_AUTH_JOSE_EC, EVP_sha256, "prime256v1", 32},
    {"ES384", LFS_AUTH_JOSE_EC, EVP_sha384, "secp384r1", 48},
    {"ES512", LFS_AUTH_JOSE_EC, EVP_sha512, "secp521r1", 66},
};

const struct lfs_auth_jose_alg *lfs_auth_jose_alg_find(const char *name)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    return NULL;
}

const char *lfs_auth_jose_alg_names(void)
{
    return "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512";
}

static void hmac_free(struct lfs_auth_jose_hmac *h)
{
    if (h == NULL)
        return;
    /* EVP_MD_CTX_free cleanses the digest states, which stand for the key. */
    EVP_MD_CTX_free(h->inner);
    EVP_MD_CTX_free(h->outer);
    EVP_MD_CTX_free(h->inner_prefix);
    free(h->prefix);
    free(h);
}

/* A digest context of md that has absorbed pad[0..n). */
static EVP_MD_CTX *digest_after(const EVP_MD *md, const unsigned char *pad, size_t n)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL &&
        (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, n) != 1)) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* The states HMAC(key) starts from (RFC 2104: a key longer than a block is hashed first,
 * then zero-padded to a block). NULL on failure. */
static struct lfs_auth_jose_hmac *hmac_new(const EVP_MD *md, const unsigned char *key, size_t len)
{
    struct lfs_auth_jose_hmac *h = calloc(1, sizeof(*h));
    unsigned char k0[MAX_HMAC_BLOCK] = {0}, ipad[MAX_HMAC_BLOCK], opad[MAX_HMAC_BLOCK];
    int block = EVP_MD_get_block_size(md);
    bool ok = h != NULL && block > 0 && block <= MAX_HMAC_BLOCK;
    if (ok && len > (size_t)block) {
        unsigned int n = 0;
        ok = EVP_Digest(key, len, k0, &n, md, NULL) == 1;
    } else if (ok) {
        memcpy(k0, key, len);
    }
    if (ok) {
        for (int i = 0; i < block; i++) {
            ipad[i] = k0[i] ^ 0x36;
            opad[i] = k0[i] ^ 0x5c;
        }
        ok = (h->inner = digest_after(md, ipad, (size_t)block)) != NULL &&
             (h->outer = digest_after(md, opad, (size_t)block)) != NULL;
    }
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
    ERR_clear_error();
    if (!ok) {
        hmac_free(h);
        return NULL;
    }
    return h;
}

/* HMAC of input[0..len) into mac (EVP_MAX_MD_SIZE bytes). */
static bool hmac_compute(const struct lfs_auth_jose_hmac *h, const char *input, size_t len,
                         unsigned char *mac, unsigned int *maclen)
{
    const EVP_MD_CTX *start = h->inner;
    /* Not constant time, and need not be: both sides are public (a token's header). */
    if (h->inner_prefix != NULL && len >= h->prefix_len &&
        memcmp(input, h->prefix, h->prefix_len) == 0) {
        start = h->inner_prefix;
        input += h->prefix_len;
        len -= h->prefix_len;
    }
    unsigned char inner[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_MD_CTX_copy_ex(ctx, start) == 1 &&
              EVP_DigestUpdate(ctx, input, len) == 1 && EVP_DigestFinal_ex(ctx, inner, &n) == 1 &&
              EVP_MD_CTX_copy_ex(ctx, h->outer) == 1 && EVP_DigestUpdate(ctx, inner, n) == 1 &&
              EVP_DigestFinal_ex(ctx, mac, maclen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(inner, sizeof(inner));
    if (!ok)
        ERR_clear_error();
    return ok;
}

int lfs_auth_jose_key_set_secret(struct lfs_auth_jose_key *key, const char *secret, size_t len,
                                 const char *what, struct lfs_error *err)
{
    if (len == 0)
        return lfs_error_set(err, 500, "config: %s: the %s secret is empty", what, key->alg->name);
    if (memmem(secret, len, "-----BEGIN ", 11) != NULL)
        return lfs_error_set(err, 500,
                             "config: %s: %s needs a shared secret, not a PEM key (for a "
                             "public key use an RS*, PS* or ES* algorithm)",
                             what, key->alg->name);
    struct lfs_auth_jose_hmac *h = hmac_new(key->alg->md(), (const unsigned char *)secret, len);
    unsigned char *copy = malloc(len);
    if (h == NULL || copy == NULL) {
        hmac_free(h);
        free(copy);
        return lfs_error_set(err, 500, "config: %s: cannot prepare the %s key", what,
                             key->alg->name);
    }
    memcpy(copy, secret, len);
    if (key->secret != NULL)
        OPENSSL_cleanse(key->secret, key->secret_len);
    free(key->secret);
    hmac_free(key->hmac);
    key->secret = copy;
    key->secret_len = len;
    key->hmac = h;
    return 0;
}

int lfs_auth_jose_key_set_prefix(struct lfs_auth_jose_key *key, const char *prefix, size_t len)
{
    struct lfs_auth_jose_hmac *h = key->hmac;
    if (h == NULL)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *copy = malloc(len + 1);
    if (ctx == NULL || copy == NULL || EVP_MD_CTX_copy_ex(ctx, h->inner) != 1 ||
        EVP_DigestUpdate(ctx, prefix, len) != 1) {
        EVP_MD_CTX_free(ctx);
        free(copy);
        ERR_clear_error();
        return -1;
    }
    memcpy(copy, prefix, len);
    copy[len] = '\0';
    EVP_MD_CTX_free(h->inner_prefix);
    free(h->prefix);
    h->inner_prefix = ctx;
    h->prefix = copy;
    h->prefix_len = len;
    return 0;
}

/* OpenSSL must never prompt on the terminal for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static EVP_PKEY *decode_pem(const char *pem, size_t len, int selection)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, selection, NULL, NULL);
    if (dctx == NULL)
        return NULL;
    OSSL_DECODER_CTX_set_pem_password_cb(dctx, no_passphrase, NULL);
    const unsigned char *p = (const unsigned char *)pem;
    size_t left = len;
    if (OSSL_DECODER_from_data(dctx, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

/* Checks that pkey can serve key->alg. */
static int check_fit(const struct lfs_auth_jose_alg *alg, EVP_PKEY *pkey, const char *what,
                     struct lfs_error *err)
{
    switch (alg->family) {
    case LFS_AUTH_JOSE_RSA:
    case LFS_AUTH_JOSE_RSA_PSS:
        if (!EVP_PKEY_is_a(pkey, "RSA") &&
            !(alg->family == LFS_AUTH_JOSE_RSA_PSS && EVP_PKEY_is_a(pkey, "RSA-PSS")))
            return lfs_error_set(err, 500, "config: %s: %s needs an RSA key, got %s", what,
                                 alg->name, EVP_PKEY_get0_type_name(pkey));
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
            return lfs_error_set(err, 500,
                                 "config: %s: RSA key of %d bits is too small (at least %d)", what,
                                 EVP_PKEY_get_bits(pkey), MIN_RSA_BITS);
        return 0;
    case LFS_AUTH_JOSE_EC: {
        char group[64] = "";
        if (!EVP_PKEY_is_a(pkey, "EC"))
            return lfs_error_set(err, 500, "config: %s: %s needs an EC key on curve %s, got %s",
                                 what, alg->name, alg->curve, EVP_PKEY_get0_type_name(pkey));
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL);
        if (strcmp(group, alg->curve) != 0)
            return lfs_error_set(err, 500,
                                 "config: %s: %s needs an EC key on curve %s, got curve \"%s\"",
                                 what, alg->name, alg->curve, group);
        return 0;
    }
    case LFS_AUTH_JOSE_HMAC: break;
    }
    return lfs_error_set(err, 500, "config: %s: %s takes a secret, not a key pair", what,
                         alg->name);
}

int lfs_auth_jose_key_load_pem(struct lfs_auth_jose_key *key, const char *pem, size_t len,
                               bool private, const char *what, struct lfs_error *err)
{
    EVP_PKEY *pkey;
    if (private) {
        pkey = decode_pem(pem, len, EVP_PKEY_KEYPAIR);
    } else {
        pkey = decode_pem(pem, len, EVP_PKEY_PUBLIC_KEY);
        if (pkey == NULL)
            pkey = decode_pem(pem, len, EVP_PKEY_KEYPAIR);
    }
    ERR_clear_error();
    if (pkey == NULL)
        return lfs_error_set(err, 500,
                             "config: %s: not a PEM %s key (or it is encrypted; passphrases "
                             "are not supported)",
                             what, private ? "private" : "public");
    if (check_fit(key->alg, pkey, what, err) < 0) {
        EVP_PKEY_free(pkey);
        return -1;
    }
    EVP_PKEY **slot = private ? &key->sign_key : &key->verify_key;
    EVP_PKEY_free(*slot);
    *slot = pkey;
    return 0;
}

void lfs_auth_jose_key_clear(struct lfs_auth_jose_key *key)
{
    if (key->secret != NULL)
        OPENSSL_cleanse(key->secret, key->secret_len);
    free(key->secret);
    hmac_free(key->hmac);
    EVP_PKEY_free(key->verify_key);
    EVP_PKEY_free(key->sign_key);
    *key = (struct lfs_auth_jose_key){.alg = key->alg};
}

/* JOSE r||s -> DER ECDSA-Sig-Value. Returns the DER length written into der, or 0. */
static size_t ec_jose_to_der(const unsigned char *sig, size_t n, unsigned char *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);
    size_t len = 0;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        int need = i2d_ECDSA_SIG(es, NULL);
        if (need > 0 && (size_t)need <= cap) {
            unsigned char *p = der;
            len = (size_t)i2d_ECDSA_SIG(es, &p);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

/* DER ECDSA-Sig-Value -> JOSE r||s, each padded to n bytes. Returns 2n, or 0. */
static size_t ec_der_to_jose(const unsigned char *der, size_t len, size_t n, unsigned char *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    size_t ret = 0;
    if (es != NULL) {
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        if (BN_bn2binpad(r, out, (int)n) == (int)n && BN_bn2binpad(s, out + n, (int)n) == (int)n)
            ret = 2 * n;
        ECDSA_SIG_free(es);
    }
    return ret;
}

static bool set_pss(EVP_PKEY_CTX *pctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
}

bool lfs_auth_jose_verify(const struct lfs_auth_jose_key *key, const char *input, size_t len,
                          const unsigned char *sig, size_t siglen)
{
    const struct lfs_auth_jose_alg *alg = key->alg;
    if (alg->family == LFS_AUTH_JOSE_HMAC) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (key->hmac == NULL || !hmac_compute(key->hmac, input, len, mac, &maclen))
            return false;
        bool ok = siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return ok;
    }
    unsigned char der[2 * 66 + 16];
    if (alg->family == LFS_AUTH_JOSE_EC) {
        if (siglen != 2 * alg->ec_coord_size)
            return false;
        if ((siglen = ec_jose_to_der(sig, alg->ec_coord_size, der, sizeof(der))) == 0)
            return false;
        sig = der;
    } else if (siglen != (size_t)EVP_PKEY_get_size(key->verify_key)) {
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = ctx != NULL &&
              EVP_DigestVerifyInit(ctx, &pctx, alg->md(), NULL, key->verify_key) == 1 &&
              (alg->family != LFS_AUTH_JOSE_RSA_PSS || set_pss(pctx)) &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

size_t lfs_auth_jose_sig_max(const struct lfs_auth_jose_key *key)
{
    const struct lfs_auth_jose_alg *alg = key->alg;
    if (alg->family == LFS_AUTH_JOSE_HMAC)
        return (size_t)EVP_MD_get_size(alg->md());
    if (alg->family == LFS_AUTH_JOSE_EC)
        return 2 * alg->ec_coord_size;
    int n = key->sign_key != NULL ? EVP_PKEY_get_size(key->sign_key) : 0;
    return n > 0 && n <= LFS_AUTH_JOSE_MAX_SIG ? (size_t)n : LFS_AUTH_JOSE_MAX_SIG;
}

int lfs_auth_jose_sign(const struct lfs_auth_jose_key *key, const char *input, size_t len,
                       unsigned char *sig, size_t *siglen)
{
    const struct lfs_auth_jose_alg *alg = key->alg;
    if (alg->family == LFS_AUTH_JOSE_HMAC) {
        unsigned int n = 0; /* sig has room for EVP_MAX_MD_SIZE */
        if (key->hmac == NULL || !hmac_compute(key->hmac, input, len, sig, &n))
            return -1;
        *siglen = n;
        return 0;
    }
    if (key->sign_key == NULL)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[2 * 66 + 16];
    unsigned char *out = alg->family == LFS_AUTH_JOSE_EC ? der : sig;
    size_t outlen = alg->family == LFS_AUTH_JOSE_EC ? sizeof(der) : LFS_AUTH_JOSE_MAX_SIG;
    int ret = -1;
    if (ctx != NULL && EVP_DigestSignInit(ctx, &pctx, alg->md(), NULL, key->sign_key) == 1 &&
        (alg->family != LFS_AUTH_JOSE_RSA_PSS || set_pss(pctx)) &&
        EVP_DigestSign(ctx, NULL, &outlen, (const unsigned char *)input, len) == 1 &&
        outlen <= (alg->family == LFS_AUTH_JOSE_EC ? sizeof(der) : LFS_AUTH_JOSE_MAX_SIG) &&
        EVP_DigestSign(ctx, out, &outlen, (const unsigned char *)input, len) == 1) {
        if (alg->family != LFS_AUTH_JOSE_EC) {
            *siglen = outlen;
            ret = 0;
        } else if ((*siglen = ec_der_to_jose(der, outlen, alg->ec_coord_size, sig)) != 0) {
            ret = 0;
        }
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ret;
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t lfs_auth_base64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    /* Every minted token goes through here, so while 8 bytes can be read, 6 are taken with
     * one load and their 8 characters stored at once (char stores could alias `in`, so they
     * are gathered in a local first). */
    for (; i + 8 <= len; i += 6, o += 8) {
        uint64_t v;
        memcpy(&v, in + i, 8);
        v = be64toh(v);
        char oct[8];
        for (int k = 0; k < 8; k++)
            oct[k] = b64url_chars[(v >> (58 - 6 * k)) & 63];
        memcpy(out + o, oct, 8);
    }
    for (; i + 2 < len; i += 3, o += 4) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        char quad[4] = {b64url_chars[v >> 18], b64url_chars[(v >> 12) & 63],
                        b64url_chars[(v >> 6) & 63], b64url_chars[v & 63]};
        memcpy(out + o, quad, 4);
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
        out[o++] = b64url_chars[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* 1 + the value of each character of the url and the standard alphabet; 0 for any other
 * byte. Tables, because every token verified decodes its payload and signature. */
#define B64_COMMON_VALUES                                                                          \
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,        \
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, \
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23,            \
    ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,            \
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,            \
    ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44,            \
    ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51,            \
    ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58,            \
    ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62
static const unsigned char b64url_values[256] = {B64_COMMON_VALUES, ['-'] = 63, ['_'] = 64};
static const unsigned char b64_values[256] = {B64_COMMON_VALUES, ['+'] = 63, ['/'] = 64};

/* Decodes unpadded base64 in[0..len) (values: one of the tables above), four characters to
 * three bytes at a time; rejects non-canonical trailing bits. */
static size_t b64_decode(const char *in, size_t len, unsigned char *out,
                         const unsigned char *values)
{
    const unsigned char *p = (const unsigned char *)in;
    if (len % 4 == 1)
        return (size_t)-1;
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        /* an invalid character becomes (unsigned)-1, which sets bits above the 6 low ones */
        unsigned a = values[p[i]] - 1u, b = values[p[i + 1]] - 1u, c = values[p[i + 2]] - 1u,
                 d = values[p[i + 3]] - 1u;
        if ((a | b | c | d) > 63)
            return (size_t)-1;
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    if (i == len)
        return o;
    /* 2 characters: 12 bits, one byte and 4 bits that must be zero; 3: 18, two bytes and 2 */
    unsigned a = values[p[i]] - 1u, b = values[p[i + 1]] - 1u;
    unsigned c = len - i == 3 ? values[p[i + 2]] - 1u : 0;
    if ((a | b | c) > 63)
        return (size_t)-1;
    if (len - i == 2) {
        if (b & 15)
            return (size_t)-1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
    } else {
        if (c & 3)
            return (size_t)-1;
        unsigned v = a << 12 | b << 6 | c;
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    return o;
}

size_t lfs_auth_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    return b64_decode(in, len, out, b64url_values);
}

size_t lfs_auth_base64_decode(const char *in, size_t len, unsigned char *out)
{
    size_t pad = 0;
    while (len % 4 == 0 && pad < 2 && len > pad && in[len - 1 - pad] == '=')
        pad++;
    return b64_decode(in, len - pad, out, b64_values);
}

size_t lfs_auth_json_string(const char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u%04X */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *o = out;
    *o++ = '"';
    while (p < end) {
        /* runs of plain ASCII, the usual case, are copied as they are */
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p == end)
            break;
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = lfs_utf8_char_len(p, (size_t)(end - p));
            if (n == 0)
                return (size_t)-1;
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\': *o++ = (char)c; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        p++;
    }
    *o++ = '"';
    return (size_t)(o - out);
}
