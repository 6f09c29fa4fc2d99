/* JWS signing and verification for the jwt provider, directly on OpenSSL 3 with keys parsed
 * once at startup (see jose.h for why not libjwt), plus the base64 codecs tokens need. Keys
 * are loaded on the main thread; verify and sign only read them, from any thread. */
#include "auth/jose.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#define MIN_RSA_BITS 2048 /* RFC 7518 section 3.3 */

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
    if ((key->secret = malloc(len)) == NULL)
        return lfs_error_set(err, 500, "out of memory");
    memcpy(key->secret, secret, len);
    key->secret_len = len;
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
    case LFS_AUTH_JOSE_HMAC:
        break;
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
        if (HMAC(alg->md(), key->secret, (int)key->secret_len, (const unsigned char *)input, len,
                 mac, &maclen) == NULL)
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

int lfs_auth_jose_sign(const struct lfs_auth_jose_key *key, const char *input, size_t len,
                       unsigned char *sig, size_t *siglen)
{
    const struct lfs_auth_jose_alg *alg = key->alg;
    if (alg->family == LFS_AUTH_JOSE_HMAC) {
        unsigned int n = 0;
        if (key->secret == NULL || HMAC(alg->md(), key->secret, (int)key->secret_len,
                                        (const unsigned char *)input, len, sig, &n) == NULL)
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
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18];
        out[o++] = b64url_chars[(v >> 12) & 63];
        out[o++] = b64url_chars[(v >> 6) & 63];
        out[o++] = b64url_chars[v & 63];
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

/* Value of one base64 character in the url (url = true) or standard alphabet, or -1. */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Decodes unpadded base64 in[0..len); rejects non-canonical trailing bits. */
static size_t b64_decode(const char *in, size_t len, unsigned char *out, bool url)
{
    if (len % 4 == 1)
        return (size_t)-1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i], url);
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
    if (acc != 0) /* leftover bits must be zero */
        return (size_t)-1;
    return o;
}

size_t lfs_auth_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    return b64_decode(in, len, out, true);
}

size_t lfs_auth_base64_decode(const char *in, size_t len, unsigned char *out)
{
    size_t pad = 0;
    while (len % 4 == 0 && pad < 2 && len > pad && in[len - 1 - pad] == '=')
        pad++;
    return b64_decode(in, len - pad, out, false);
}
