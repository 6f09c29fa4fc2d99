/* JWS primitives for the jwt provider, on OpenSSL: base64url, JSON string escaping for the
 * claims lfsgate writes, the algorithm table, key loading with checks that the key fits the
 * algorithm, and signing / verification with a key parsed once at startup. libjwt 1.10.2 is
 * not used on the request path: it re-parses the PEM key on every call, trusts the token's
 * `alg`, and compares HMACs with strcmp. */
#ifndef LFS_AUTH_JOSE_H
#define LFS_AUTH_JOSE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "common/error.h"

enum lfs_auth_jose_family {
    LFS_AUTH_JOSE_HMAC,
    LFS_AUTH_JOSE_RSA,
    LFS_AUTH_JOSE_RSA_PSS,
    LFS_AUTH_JOSE_EC
};

struct lfs_auth_jose_alg {
    const char *name; /* "RS256" */
    enum lfs_auth_jose_family family;
    const EVP_MD *(*md)(void);
    const char *curve;    /* EC group name (ES*), else NULL */
    size_t ec_coord_size; /* bytes of r and of s in the JOSE signature (ES*) */
};

/* The algorithm named `name` exactly (static), or NULL. Any thread. */
const struct lfs_auth_jose_alg *lfs_auth_jose_alg_find(const char *name);

/* "HS256, HS384, ..." for "valid values" messages. Static string. */
const char *lfs_auth_jose_alg_names(void);

/* Precomputed HMAC states of an HS* key (jose.c). */
struct lfs_auth_jose_hmac;

/* A key ready for one algorithm. Shared read-only by every worker thread once built. */
struct lfs_auth_jose_key {
    const struct lfs_auth_jose_alg *alg;
    unsigned char *secret; /* HMAC secret (HS*), malloc'd */
    size_t secret_len;
    struct lfs_auth_jose_hmac *hmac; /* set with the secret (HS*), else NULL */
    EVP_PKEY *verify_key;            /* public key (RS*, PS*, ES*) */
    EVP_PKEY *sign_key;              /* private key when one was configured, else NULL */
};

/* Sets key->secret to a copy of secret[0..len) and precomputes the HMAC states signing and
 * verification start from. Refuses an empty secret and a PEM key (the classic
 * HS256-with-the-public-key confusion); err names the option as `what`. Returns 0 / -1 (500).
 * Main thread. */
int lfs_auth_jose_key_set_secret(struct lfs_auth_jose_key *key, const char *secret, size_t len,
                                 const char *what, struct lfs_error *err);

/* Declares the prefix most signing inputs start with (the encoded JOSE header and its '.'):
 * for an HS* key its hash blocks are absorbed once here, and inputs that begin with it skip
 * them. Only a speed-up: any input still signs and verifies the same. No-op for other keys.
 * Returns 0, or -1 when out of memory. Main thread, after the secret is set. */
int lfs_auth_jose_key_set_prefix(struct lfs_auth_jose_key *key, const char *prefix, size_t len);

/* Parses a PEM public key (SubjectPublicKeyInfo or PKCS#1; a private key is accepted too and
 * only its public half kept) into key->verify_key, or with `private` a PEM private key
 * (never prompts for a passphrase) into key->sign_key. Checks it fits key->alg: RSA of at
 * least 2048 bits for RS* and PS*, EC on the algorithm's curve for ES*. err names `what`.
 * Returns 0 / -1 (500). Main thread. */
int lfs_auth_jose_key_load_pem(struct lfs_auth_jose_key *key, const char *pem, size_t len,
                               bool private, const char *what, struct lfs_error *err);

/* Frees what the key owns (the secret is cleansed first); keeps key->alg. Main thread, once
 * no worker uses the key. */
void lfs_auth_jose_key_clear(struct lfs_auth_jose_key *key);

/* Largest signature any supported algorithm produces (RSA 16384 bits). */
#define LFS_AUTH_JOSE_MAX_SIG 2048

/* True when sig[0..siglen) is key's signature of input[0..len). HMACs are compared in
 * constant time. Any thread. */
bool lfs_auth_jose_verify(const struct lfs_auth_jose_key *key, const char *input, size_t len,
                          const unsigned char *sig, size_t siglen);

/* Largest signature key makes (the digest size for HS*, the modulus for RS* and PS*, 2 r||s
 * coordinates for ES*); LFS_AUTH_JOSE_MAX_SIG when it cannot sign. Any thread. */
size_t lfs_auth_jose_sig_max(const struct lfs_auth_jose_key *key);

/* Signs input[0..len) into sig (LFS_AUTH_JOSE_MAX_SIG bytes) in JOSE form (r||s for ES*).
 * Needs the secret or sign_key. Returns 0 and *siglen, or -1. Any thread. */
int lfs_auth_jose_sign(const struct lfs_auth_jose_key *key, const char *input, size_t len,
                       unsigned char *sig, size_t *siglen);

/* base64url without padding: writes 4 * ceil(len / 3) bytes at most and a NUL into the
 * caller's out; returns the length written. Any thread (as the two decoders below). */
size_t lfs_auth_base64url_encode(const unsigned char *in, size_t len, char *out);

/* Strict base64url decode (no padding, no other characters, unused bits zero) of
 * in[0..len) into out (capacity len * 3 / 4 + 1). Returns the decoded length, or
 * (size_t)-1 when the input is not canonical base64url. */
size_t lfs_auth_base64url_decode(const char *in, size_t len, unsigned char *out);

/* Standard base64 (as HTTP Basic uses; padding optional) decode into out (capacity
 * len * 3 / 4 + 1). Returns the decoded length or (size_t)-1. */
size_t lfs_auth_base64_decode(const char *in, size_t len, unsigned char *out);

/* Most bytes lfs_auth_json_string writes for a len-byte string. */
#define LFS_AUTH_JSON_STRING_MAX(len) (6 * (size_t)(len) + 2)

/* Writes s[0..len) as a JSON string literal (quotes included, no NUL) into out, which has room
 * for LFS_AUTH_JSON_STRING_MAX(len) bytes, escaped byte for byte as jansson's json_dumps does
 * (", \ and control characters; UTF-8 and '/' as they are). Returns the length written, or
 * (size_t)-1 when s is not valid UTF-8 (which jansson refuses too). Any thread. */
size_t lfs_auth_json_string(const char *s, size_t len, char *out);

#endif
