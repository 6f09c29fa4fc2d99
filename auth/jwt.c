/* The jwt auth provider (giftless.auth.jwt:factory): accepts JWTs from the Authorization
 * header (Bearer, or Basic with user `_jwt` and the token as password) and the ?jwt= query
 * parameter, verifies them against the one configured key and algorithm (jose.c), checks the
 * time, issuer and audience claims, and turns sub/name/email/scopes into an identity
 * (scope.c). Verified tokens are cached (token_cache.c). The same code, built in preauth
 * mode, mints and accepts the action tokens of preauth.c.
 *
 * Which provider a token belongs to follows giftless: a token that is not a JWT, or whose
 * `kid` differs from the configured key_id, is not ours (the next provider is tried); a JWT
 * of ours that fails any check is a 401. A JWT is "three base64url parts whose first decodes
 * to a JSON object with a string `alg`". Options are read once on the main thread; the
 * provider is then read-only and shared by every worker thread.
 *
 * Options (giftless names and defaults): algorithm (HS256; HS256/384/512, RS256/384/512,
 * PS256/384/512, ES256/384/512), public_key / public_key_file (PEM; RS*, PS*, ES*),
 * private_key / private_key_file (the HS* secret, or a PEM private key that lets the
 * provider sign; a *_file wins over the inline value), leeway (10 s, for exp/nbf/iat),
 * key_id (kid to answer to; any when unset), issuer, audience (a string or a list; when
 * unset, tokens carrying `aud` are refused, as RFC 7519 and PyJWT do), basic_auth_user
 * ("_jwt"; null or "" disables Basic), default_lifetime (60 s, for minting). lfsgate's own:
 * token_cache_size (entries of the verified-token cache, default LFS_AUTH_JWT_CACHE_ENTRIES;
 * 0 turns the cache off, e.g. to measure it; unused by the action-token provider) and
 * token_cache_bytes (its memory bound, a size such as "16M", default
 * LFS_AUTH_JWT_CACHE_BYTES).
 *
 * Minting runs for every href of a batch answer, so what does not change between tokens is
 * prepared once: the encoded header (which also lets verification skip parsing a header
 * byte-identical to ours) and the iss/aud claims; the rest of the claims is written straight
 * into the request pool rather than through a jansson tree. */
#include "auth/jwt.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/jose.h"
#include "auth/scope.h"
#include "auth/token_cache.h"
#include "common/json_read.h"
#include "common/log.h"
#include "config/config.h"

#define DEFAULT_ALGORITHM "HS256"
#define DEFAULT_LEEWAY 10   /* giftless's JWTAuthenticator.DEFAULT_LEEWAY */
#define DEFAULT_LIFETIME 60 /* giftless's default_lifetime */
#define DEFAULT_BASIC_USER "_jwt"
#define PREAUTH_KEY_ID "giftless-internal-jwt-key"
#define GIFTLESS_PLACEHOLDER_KEY "change-me"
#define GENERATED_SECRET_LEN 32
#define MAX_HEADER_B64 1024 /* encoded JOSE header */
#define MAX_KEY_FILE (256 * 1024)
#define MIN_HMAC_SECRET 32 /* RFC 7518 section 3.2 */

struct lfs_auth_jwt {
    struct lfs_auth base;
    struct lfs_auth_jose_key key;
    long leeway;
    long default_lifetime;
    char *key_id;     /* NULL: any kid */
    char *issuer;     /* NULL: not checked */
    char **audiences; /* NULL: tokens must carry no aud */
    size_t naudiences;
    char *basic_user; /* NULL: Basic not inspected */
    bool preauth;
    size_t cache_size;                  /* token_cache_size; 0: no cache */
    size_t cache_bytes;                 /* token_cache_bytes */
    struct lfs_auth_token_cache *cache; /* NULL in preauth mode */
    /* The header tokens are minted with, base64url-encoded and followed by '.' (the start of
     * every signing input), and the end of their claims: ,"iss":...,"aud":... or "". */
    char *header64;
    size_t header64_len;
    char *claims_tail;
    size_t claims_tail_len;
};

/* ---- options ---- */

/* Reads a whole key file (bounded). Returns 0 and a malloc'd buffer, or -1 and err. */
static int read_file(const char *file, const char *what, char **data, size_t *len,
                     struct lfs_error *err)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return lfs_error_set(err, 500, "config: %s: cannot read \"%s\": %s", what, file,
                             strerror(errno));
    char *buf = malloc(MAX_KEY_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_KEY_FILE + 1, f) : 0;
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return lfs_error_set(err, 500, "config: %s: cannot read \"%s\"", what, file);
    }
    if (n > MAX_KEY_FILE) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return lfs_error_set(err, 500, "config: %s: \"%s\" is larger than %d bytes", what, file,
                             MAX_KEY_FILE);
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Reads option `name` or `name`_file (the file wins when set, as giftless). *data is NULL
 * when neither is set; what receives the option path used. */
static int read_key_option(const json_t *opts, const char *path, const char *name, char **data,
                           size_t *len, char *what, size_t whatsize, struct lfs_error *err)
{
    char file_key[32];
    const char *file = NULL, *value = NULL;
    snprintf(file_key, sizeof(file_key), "%s_file", name);
    *data = NULL;
    *len = 0;
    if (lfs_config_get_string(opts, path, file_key, NULL, &file, err) < 0 ||
        lfs_config_get_string(opts, path, name, NULL, &value, err) < 0)
        return -1;
    if (file != NULL && file[0] != '\0') {
        lfs_config_path(what, whatsize, path, file_key);
        return read_file(file, what, data, len, err);
    }
    lfs_config_path(what, whatsize, path, name);
    if (value == NULL)
        return 0;
    *len = strlen(value);
    if ((*data = malloc(*len + 1)) == NULL)
        return lfs_error_set(err, 500, "out of memory");
    memcpy(*data, value, *len + 1);
    return 0;
}

static void free_secret(char *data, size_t len)
{
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    free(data);
}

/* Loads the key material for j->key.alg from the options. */
static int load_keys(struct lfs_auth_jwt *j, const json_t *opts, const char *path,
                     struct lfs_error *err)
{
    char pub_what[256], priv_what[256];
    char *pub = NULL, *priv = NULL;
    size_t pub_len = 0, priv_len = 0;
    int ret = -1;
    if (read_key_option(opts, path, "public_key", &pub, &pub_len, pub_what, sizeof(pub_what), err) <
            0 ||
        read_key_option(opts, path, "private_key", &priv, &priv_len, priv_what, sizeof(priv_what),
                        err) < 0)
        goto done;
    const struct lfs_auth_jose_alg *alg = j->key.alg;
    /* giftless's defaults carry private_key "change-me", so every config merged into them
     * has it unless it sets a key: a public placeholder must never sign, whatever the
     * algorithm. */
    bool placeholder = j->preauth && priv != NULL && strcmp(priv, GIFTLESS_PLACEHOLDER_KEY) == 0;
    if (placeholder) {
        free_secret(priv, priv_len);
        priv = NULL;
        priv_len = 0;
    }
    if (alg->family == LFS_AUTH_JOSE_HMAC) {
        if (j->preauth && priv == NULL) {
            unsigned char secret[GENERATED_SECRET_LEN];
            if (RAND_bytes(secret, sizeof(secret)) != 1) {
                lfs_error_set(err, 500, "cannot generate a random action token key");
                goto done;
            }
            ret = lfs_auth_jose_key_set_secret(&j->key, (const char *)secret, sizeof(secret),
                                               priv_what, err);
            OPENSSL_cleanse(secret, sizeof(secret));
            lfs_log(LFS_LOG_WARN,
                    "%s: %s; using a random key generated at startup: action tokens minted "
                    "by another replica (or before a restart) will be rejected; set a shared "
                    "secret",
                    priv_what,
                    placeholder
                        ? "is giftless's public placeholder \"change-me\", never used to sign"
                        : "not set");
            goto done;
        }
        if (priv == NULL) {
            lfs_error_set(err, 500, "config: %s: a shared secret is required for algorithm %s%s",
                          priv_what, alg->name,
                          pub != NULL ? " (a public_key is set: is the algorithm wrong?)" : "");
            goto done;
        }
        if ((ret = lfs_auth_jose_key_set_secret(&j->key, priv, priv_len, priv_what, err)) == 0 &&
            priv_len < MIN_HMAC_SECRET)
            lfs_log(LFS_LOG_WARN, "%s: the %s secret is shorter than %d bytes (RFC 7518)",
                    priv_what, alg->name, MIN_HMAC_SECRET);
        goto done;
    }
    if (priv != NULL &&
        lfs_auth_jose_key_load_pem(&j->key, priv, priv_len, true, priv_what, err) < 0)
        goto done;
    if (pub != NULL) {
        if (lfs_auth_jose_key_load_pem(&j->key, pub, pub_len, false, pub_what, err) < 0)
            goto done;
        if (j->key.sign_key != NULL && EVP_PKEY_eq(j->key.verify_key, j->key.sign_key) != 1) {
            lfs_error_set(err, 500, "config: %s: does not match %s", pub_what, priv_what);
            goto done;
        }
    } else if (j->key.sign_key != NULL) {
        EVP_PKEY_up_ref(j->key.sign_key); /* verify with the private key's public half */
        j->key.verify_key = j->key.sign_key;
    } else {
        lfs_error_set(err, 500, "config: %s: a public key is required for algorithm %s", pub_what,
                      alg->name);
        goto done;
    }
    if (j->preauth && j->key.sign_key == NULL) {
        lfs_error_set(err, 500,
                      "config: %s: a private key is required to sign action tokens "
                      "with %s%s",
                      priv_what, alg->name,
                      placeholder ? " (giftless's placeholder \"change-me\" is not a key)" : "");
        goto done;
    }
    ret = 0;
done:
    free_secret(pub, pub_len);
    free_secret(priv, priv_len);
    return ret;
}

static int load_audience(struct lfs_auth_jwt *j, const json_t *opts, const char *path,
                         struct lfs_error *err)
{
    const json_t *v = opts ? json_object_get(opts, "audience") : NULL;
    char apath[256];
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if ((j->audiences = calloc(n + 1, sizeof(char *))) == NULL)
            return lfs_error_set(err, 500, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const json_t *item = json_array_get(v, i);
            if (!json_is_string(item) || json_string_length(item) == 0)
                return lfs_error_set(err, 500, "config: %s[%zu]: expected a non-empty string",
                                     lfs_config_path(apath, sizeof(apath), path, "audience"), i);
            if ((j->audiences[j->naudiences++] = strdup(json_string_value(item))) == NULL)
                return lfs_error_set(err, 500, "out of memory");
        }
        if (n == 0)
            return lfs_error_set(err, 500, "config: %s: empty audience list",
                                 lfs_config_path(apath, sizeof(apath), path, "audience"));
        return 0;
    }
    const char *aud = NULL;
    if (lfs_config_get_string(opts, path, "audience", NULL, &aud, err) < 0)
        return -1;
    if (aud == NULL || aud[0] == '\0')
        return 0;
    if ((j->audiences = calloc(2, sizeof(char *))) == NULL ||
        (j->audiences[0] = strdup(aud)) == NULL)
        return lfs_error_set(err, 500, "out of memory");
    j->naudiences = 1;
    return 0;
}

static int load_options(struct lfs_auth_jwt *j, const json_t *opts, const char *path,
                        struct lfs_error *err)
{
    static const char *const keys[] = {"algorithm",
                                       "public_key",
                                       "public_key_file",
                                       "private_key",
                                       "private_key_file",
                                       "leeway",
                                       "key_id",
                                       "issuer",
                                       "audience",
                                       "basic_auth_user",
                                       "default_lifetime",
                                       "token_cache_size",
                                       "token_cache_bytes",
                                       NULL};
    char kpath[256];
    const char *alg_name, *key_id, *issuer, *basic_user;
    long long leeway, lifetime, cache_size, cache_bytes;
    if (opts != NULL && !json_is_null(opts) && !json_is_object(opts))
        return lfs_error_set(err, 500, "config: %s: expected a mapping of options", path);
    if (opts != NULL && json_is_null(opts))
        opts = NULL;
    if (lfs_config_check_keys(opts, path, keys, err) < 0 ||
        lfs_config_get_string(opts, path, "algorithm", DEFAULT_ALGORITHM, &alg_name, err) < 0 ||
        lfs_config_get_int(opts, path, "leeway", DEFAULT_LEEWAY, 0, 3600, &leeway, err) < 0 ||
        lfs_config_get_int(opts, path, "default_lifetime", DEFAULT_LIFETIME, 1, 7 * 86400,
                           &lifetime, err) < 0 ||
        lfs_config_get_int(opts, path, "token_cache_size", LFS_AUTH_JWT_CACHE_ENTRIES, 0,
                           LFS_AUTH_JWT_CACHE_MAX_ENTRIES, &cache_size, err) < 0 ||
        lfs_config_get_size(opts, path, "token_cache_bytes", LFS_AUTH_JWT_CACHE_BYTES,
                            LFS_AUTH_JWT_CACHE_MIN_BYTES, LFS_AUTH_JWT_CACHE_MAX_BYTES,
                            &cache_bytes, err) < 0 ||
        lfs_config_get_string(opts, path, "key_id", j->preauth ? PREAUTH_KEY_ID : NULL, &key_id,
                              err) < 0 ||
        lfs_config_get_string(opts, path, "issuer", NULL, &issuer, err) < 0 ||
        lfs_config_get_string(opts, path, "basic_auth_user", DEFAULT_BASIC_USER, &basic_user, err) <
            0)
        return -1;
    if ((j->key.alg = lfs_auth_jose_alg_find(alg_name)) == NULL)
        return lfs_error_set(err, 500, "config: %s: unsupported algorithm \"%s\"; valid: %s",
                             lfs_config_path(kpath, sizeof(kpath), path, "algorithm"), alg_name,
                             lfs_auth_jose_alg_names());
    /* basic_auth_user: null (or "") turns Basic off; a missing key means the default. */
    const json_t *bu = opts ? json_object_get(opts, "basic_auth_user") : NULL;
    if ((bu != NULL && json_is_null(bu)) || basic_user == NULL || basic_user[0] == '\0')
        basic_user = NULL;
    j->leeway = (long)leeway;
    j->default_lifetime = (long)lifetime;
    j->cache_size = (size_t)cache_size;
    j->cache_bytes = (size_t)cache_bytes;
    if (key_id != NULL && key_id[0] == '\0')
        key_id = j->preauth ? PREAUTH_KEY_ID : NULL;
    if (issuer != NULL && issuer[0] == '\0')
        issuer = NULL;
    if ((key_id && !(j->key_id = strdup(key_id))) || (issuer && !(j->issuer = strdup(issuer))) ||
        (basic_user && !(j->basic_user = strdup(basic_user))))
        return lfs_error_set(err, 500, "out of memory");
    if (load_audience(j, opts, path, err) < 0)
        return -1;
    return load_keys(j, opts, path, err);
}

/* ---- writing claims ---- */

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define PUT_LITERAL(o, lit) put(o, lit, sizeof(lit) - 1)

/* Writes v in decimal (as jansson's %lld) at o; returns the end. */
static char *put_int(char *o, long long v)
{
    char digits[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *o++ = '-';
    while (n > 0)
        *o++ = digits[--n];
    return o;
}

/* Writes key (`,"name":`, key_len bytes) and value as a JSON string at o (room for
 * key_len + LFS_AUTH_JSON_STRING_MAX(strlen(value))); returns the end, or NULL when o is NULL
 * or value is not UTF-8, so that calls chain. */
static char *put_string_claim(char *o, const char *key, size_t key_len, const char *value)
{
    if (o == NULL)
        return NULL;
    o = put(o, key, key_len);
    size_t n = lfs_auth_json_string(value, strlen(value), o);
    return n == (size_t)-1 ? NULL : o + n;
}
#define STRING_CLAIM(o, name, value) put_string_claim(o, ",\"" name "\":", sizeof(name) + 3, value)

/* Compact JSON text of v, base64url-encoded and followed by '.', malloc'd. */
static char *encode_header(const json_t *v, size_t *len)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *out = malloc((n + 2) / 3 * 4 + 2);
    if (out != NULL) {
        *len = lfs_auth_base64url_encode((const unsigned char *)text, n, out);
        out[(*len)++] = '.';
        out[*len] = '\0';
    }
    free(text);
    return out;
}

/* Prepares what every minted token shares: the header {"alg", "typ", "kid" when key_id is
 * set} (as jansson writes it) and the iss/aud claims. The key then starts its HMAC past the
 * header. Also done for providers that never mint: the header serves verification. */
static int prepare_mint(struct lfs_auth_jwt *j, struct lfs_error *err)
{
    json_t *header = json_pack("{s:s, s:s}", "alg", j->key.alg->name, "typ", "JWT");
    if (header != NULL && j->key_id != NULL &&
        json_object_set_new(header, "kid", json_string(j->key_id)) < 0) {
        json_decref(header);
        header = NULL;
    }
    if (header != NULL)
        j->header64 = encode_header(header, &j->header64_len);
    json_decref(header);
    const char *iss = j->issuer, *aud = j->naudiences ? j->audiences[0] : NULL;
    size_t cap = 1 + (iss ? 7 + LFS_AUTH_JSON_STRING_MAX(strlen(iss)) : 0) +
                 (aud ? 7 + LFS_AUTH_JSON_STRING_MAX(strlen(aud)) : 0);
    char *tail = malloc(cap), *o = tail;
    if (j->header64 == NULL || tail == NULL) {
        free(tail);
        return lfs_error_set(err, 500, "out of memory");
    }
    if (iss != NULL)
        o = STRING_CLAIM(o, "iss", iss);
    if (aud != NULL)
        o = STRING_CLAIM(o, "aud", aud);
    if (o == NULL) {
        /* not UTF-8: jansson refused such a claim, so minting keeps failing as it did */
        free(tail);
        tail = NULL;
    } else {
        *o = '\0';
        j->claims_tail_len = (size_t)(o - tail);
    }
    j->claims_tail = tail;
    if (lfs_auth_jose_key_set_prefix(&j->key, j->header64, j->header64_len) < 0)
        return lfs_error_set(err, 500, "out of memory");
    return 0;
}

int lfs_auth_jwt_build(const json_t *options, const char *path, bool preauth,
                       const struct lfs_auth_ops *ops, struct lfs_auth **out, struct lfs_error *err)
{
    struct lfs_auth_jwt *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return lfs_error_set(err, 500, "out of memory");
    j->base.ops = ops;
    j->preauth = preauth;
    if (load_options(j, options, path, err) < 0 || prepare_mint(j, err) < 0) {
        lfs_auth_jwt_free(&j->base);
        return -1;
    }
    if (!preauth && j->cache_size > 0 &&
        (j->cache = lfs_auth_token_cache_create(j->cache_size, j->cache_bytes,
                                                LFS_AUTH_JWT_CACHE_MAX_TTL)) == NULL) {
        lfs_auth_jwt_free(&j->base);
        return lfs_error_set(err, 500, "out of memory");
    }
    *out = &j->base;
    return 0;
}

void lfs_auth_jwt_free(struct lfs_auth *auth)
{
    struct lfs_auth_jwt *j = (struct lfs_auth_jwt *)auth;
    if (j == NULL)
        return;
    lfs_auth_jose_key_clear(&j->key);
    free(j->key_id);
    free(j->issuer);
    for (size_t i = 0; i < j->naudiences; i++)
        free(j->audiences[i]);
    free(j->audiences);
    free(j->basic_user);
    lfs_auth_token_cache_destroy(j->cache);
    free(j->header64);
    free(j->claims_tail);
    free(j);
}

/* ---- verification ---- */

static char *pool_strndup(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* Reads a NumericDate claim. Returns 1 and *value when present, 0 when absent, -1 and err
 * when not a number. Values are clamped so they convert to time_t safely. */
static int numeric_claim(const json_t *payload, const char *name, double *value,
                         struct lfs_error *err)
{
    const json_t *v = json_object_get(payload, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return lfs_error_set(err, 401, "token claim \"%s\" must be a number", name);
    *value = json_number_value(v);
    if (*value > 1e15)
        *value = 1e15;
    if (*value < -1e15)
        *value = -1e15;
    return 1;
}

static bool audience_matches(const struct lfs_auth_jwt *j, const json_t *aud)
{
    for (size_t i = 0; i < j->naudiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), j->audiences[i]) == 0)
            return true;
        size_t k;
        const json_t *item;
        json_array_foreach(aud, k, item)
        {
            if (json_is_string(item) && strcmp(json_string_value(item), j->audiences[i]) == 0)
                return true;
        }
    }
    return false;
}

/* Checks exp, nbf, iat, iss and aud. Sets *exp. */
static int check_claims(const struct lfs_auth_jwt *j, const json_t *payload, time_t now,
                        double *exp, struct lfs_error *err)
{
    double nbf = 0, iat = 0, leeway = (double)j->leeway, t = (double)now;
    int r;
    if ((r = numeric_claim(payload, "exp", exp, err)) < 0)
        return -1;
    if (r == 0)
        return lfs_error_set(err, 401, "token has no expiry (\"exp\")");
    if (t >= *exp + leeway)
        return lfs_error_set(err, 401, "token has expired");
    if ((r = numeric_claim(payload, "nbf", &nbf, err)) < 0)
        return -1;
    if (r == 1 && nbf > t + leeway)
        return lfs_error_set(err, 401, "token is not valid yet (\"nbf\")");
    if ((r = numeric_claim(payload, "iat", &iat, err)) < 0)
        return -1;
    if (r == 1 && iat > t + leeway)
        return lfs_error_set(err, 401, "token was issued in the future (\"iat\")");
    if (j->issuer != NULL) {
        const json_t *iss = json_object_get(payload, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), j->issuer) != 0)
            return lfs_error_set(err, 401, "token issuer does not match");
    }
    const json_t *aud = json_object_get(payload, "aud");
    if (j->naudiences > 0) {
        if (aud == NULL)
            return lfs_error_set(err, 401, "token has no audience (\"aud\")");
        if (!audience_matches(j, aud))
            return lfs_error_set(err, 401, "token audience does not match");
    } else if (aud != NULL) {
        /* RFC 7519 4.1.3 (and PyJWT, hence giftless): an audience we cannot check is a
         * token meant for someone else. */
        return lfs_error_set(err, 401,
                             "token has an audience (\"aud\") but no audience is "
                             "configured");
    }
    return 0;
}

static time_t to_time(double v)
{
    return v <= 0 ? 0 : (time_t)v;
}

/* Length of the longest prefix of s[0..len) (valid UTF-8) of at most max bytes that ends on
 * a character boundary. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Builds the identity (strings and grants in pool) from verified claims.
 *
 * Any byte may arrive in a claim, but jansson validates UTF-8 while parsing and refuses
 * \u0000 (no JSON_ALLOW_NUL), so a payload whose strings are not valid UTF-8 never gets here:
 * it is refused as malformed (401). Strings here are valid UTF-8 without NUL; control
 * characters are kept (they are escaped wherever they are written).
 *
 * What is copied is bounded, so that an identity stays small in logs, in messages and in
 * the action tokens minted from it: a sub over LFS_AUTH_JWT_MAX_SUB bytes is refused rather
 * than cut, because sub is the identity: two long subs that share a prefix would silently
 * become one user. name is display only and is cut on a character boundary at
 * LFS_AUTH_JWT_MAX_NAME bytes; an email over LFS_AUTH_JWT_MAX_EMAIL bytes (RFC 5321's limit
 * for a path) is no deliverable address and is dropped rather than cut into another one. */
static int build_identity(const struct lfs_auth_jwt *j, const json_t *payload, double exp,
                          h2o_mem_pool_t *pool, struct lfs_identity *out, struct lfs_error *err)
{
    const json_t *sub = json_object_get(payload, "sub"), *name = json_object_get(payload, "name"),
                 *email = json_object_get(payload, "email");
    *out = (struct lfs_identity){.expires = to_time(exp)};
    if (json_is_string(sub)) {
        if (json_string_length(sub) > LFS_AUTH_JWT_MAX_SUB)
            return lfs_error_set(err, 401,
                                 "token claim \"sub\" is longer than %d bytes; ask the token "
                                 "issuer for a shorter subject",
                                 LFS_AUTH_JWT_MAX_SUB);
        out->id = pool_strndup(pool, json_string_value(sub), json_string_length(sub));
    } else if (json_is_integer(sub)) {
        char num[32];
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(sub));
        out->id = pool_strndup(pool, num, (size_t)n);
    } else if (sub == NULL || json_is_null(sub)) {
        out->id = "";
    } else {
        return lfs_error_set(err, 401, "token claim \"sub\" must be a string");
    }
    out->name = json_is_string(name)
                    ? pool_strndup(pool, json_string_value(name),
                                   utf8_prefix(json_string_value(name), json_string_length(name),
                                               LFS_AUTH_JWT_MAX_NAME))
                    : out->id;
    if (json_is_string(email) && json_string_length(email) <= LFS_AUTH_JWT_MAX_EMAIL)
        out->email = pool_strndup(pool, json_string_value(email), json_string_length(email));
    struct lfs_grant *grants;
    size_t n;
    if (lfs_scope_parse_claim(json_object_get(payload, "scopes"), lfs_scope_pool_alloc, pool,
                              &grants, &n, err) < 0)
        return -1;
    if (j->preauth) {
        /* An action token names one object: drop anything wider, mark the rest. */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (grants[i].org_path == NULL || grants[i].repo == NULL || grants[i].oid == NULL)
                continue;
            grants[kept] = grants[i];
            grants[kept++].action_token = true;
        }
        n = kept;
    }
    out->grants = n ? grants : NULL;
    out->ngrants = n;
    return 0;
}

/* The members of a JOSE header that matter here. */
struct jose_header {
    const char *alg;
    const char *kid; /* NULL when absent or not a string */
    bool crit;
};

/* Parses the JOSE header (with the pull reader: every user token that reaches a provider it
 * is not for, e.g. the action-token provider first in the chain, has its header read).
 * Returns 1 and *header when tok looks like a JWT (three parts, a JSON object header with
 * one string alg), else 0. Strings go to pool. */
static int parse_header(const char *tok, size_t hlen, h2o_mem_pool_t *pool,
                        struct jose_header *header)
{
    unsigned char buf[MAX_HEADER_B64 * 3 / 4 + 1];
    if (hlen == 0 || hlen > MAX_HEADER_B64)
        return 0;
    size_t n = lfs_auth_base64url_decode(tok, hlen, buf);
    if (n == (size_t)-1)
        return 0;
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, (const char *)buf, n, pool);
    *header = (struct jose_header){0};
    const char *key;
    size_t klen, len;
    bool has_kid = false;
    int rc;
    if (lfs_json_object_begin(&r) < 0)
        return 0;
    while ((rc = lfs_json_object_next(&r, &key, &klen)) == 1) {
        if (strcmp(key, "alg") == 0 || strcmp(key, "kid") == 0) {
            bool alg = key[0] == 'a';
            if (alg ? header->alg != NULL : has_kid)
                return 0; /* twice: ambiguous, not a token of ours */
            has_kid |= !alg;
            const char **out = alg ? &header->alg : &header->kid;
            if (lfs_json_peek(&r) == LFS_JSON_STRING) {
                if (lfs_json_read_string(&r, out, &len) < 0)
                    return 0;
            } else if (alg || lfs_json_skip(&r) < 0) {
                return 0;
            }
        } else {
            header->crit |= strcmp(key, "crit") == 0;
            if (lfs_json_skip(&r) < 0)
                return 0;
        }
    }
    return rc == 0 && lfs_json_read_end(&r) == 0 && header->alg != NULL;
}

/* Names the token's alg in a message only when it is short and plain. */
static const char *printable_alg(const char *alg)
{
    size_t n = strlen(alg);
    if (n == 0 || n > 16)
        return "?";
    for (size_t i = 0; i < n; i++)
        if (!((alg[i] >= 'A' && alg[i] <= 'Z') || (alg[i] >= 'a' && alg[i] <= 'z') ||
              (alg[i] >= '0' && alg[i] <= '9')))
            return "?";
    return alg;
}

/* Verifies one candidate token. Returns 1 with *out, 0 when it is not ours, -1 and err. */
static int try_token(struct lfs_auth_jwt *j, const char *tok, size_t len, time_t now,
                     h2o_mem_pool_t *pool, struct lfs_identity *out, struct lfs_error *err)
{
    const char *dot1 = memchr(tok, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(tok + len - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(tok + len - dot2 - 1)) != NULL)
        return 0;
    unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    if (j->cache != NULL && len <= LFS_AUTH_JWT_MAX_TOKEN) {
        lfs_auth_token_cache_key(tok, len, key);
        if (lfs_auth_token_cache_get(j->cache, key, now, pool, out))
            return 1;
    }
    struct jose_header header;
    json_t *payload = NULL;
    size_t hlen = (size_t)(dot1 - tok);
    /* A header byte for byte the one we mint with (every action token's) has our alg, our kid
     * and no crit: the checks below would pass, so it is not decoded and parsed. */
    bool own_header = hlen + 1 == j->header64_len && hlen <= MAX_HEADER_B64 &&
                      memcmp(tok, j->header64, j->header64_len) == 0;
    int ret = -1;
    if (!own_header) {
        if (!parse_header(tok, hlen, pool, &header))
            return 0;
        if (j->key_id != NULL && (header.kid == NULL || strcmp(header.kid, j->key_id) != 0))
            return 0; /* another provider's key */
    }
    if (len > LFS_AUTH_JWT_MAX_TOKEN) {
        lfs_error_set(err, 401, "token is too large (over %d bytes)", LFS_AUTH_JWT_MAX_TOKEN);
        goto done;
    }
    if (!own_header) {
        if (strcmp(header.alg, j->key.alg->name) != 0) {
            lfs_error_set(err, 401, "token algorithm \"%s\" is not the configured \"%s\"",
                          printable_alg(header.alg), j->key.alg->name);
            goto done;
        }
        if (header.crit) {
            lfs_error_set(err, 401, "token header has unsupported critical extensions (\"crit\")");
            goto done;
        }
    }
    const char *sig_b64 = dot2 + 1;
    size_t sig_b64_len = (size_t)(tok + len - sig_b64);
    unsigned char sig[LFS_AUTH_JOSE_MAX_SIG + 4];
    size_t siglen = sig_b64_len <= (LFS_AUTH_JOSE_MAX_SIG * 4 + 2) / 3
                        ? lfs_auth_base64url_decode(sig_b64, sig_b64_len, sig)
                        : (size_t)-1;
    if (siglen == (size_t)-1 ||
        !lfs_auth_jose_verify(&j->key, tok, (size_t)(dot2 - tok), sig, siglen)) {
        lfs_error_set(err, 401, "token signature is invalid");
        goto done;
    }
    const char *p64 = dot1 + 1;
    size_t p64_len = (size_t)(dot2 - p64);
    unsigned char *pbuf = h2o_mem_alloc_pool(pool, p64_len * 3 / 4 + 1);
    size_t plen = lfs_auth_base64url_decode(p64, p64_len, pbuf);
    if (plen != (size_t)-1)
        payload = json_loadb((const char *)pbuf, plen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(payload)) {
        lfs_error_set(err, 401, "token payload is malformed");
        goto done;
    }
    double exp = 0;
    if (check_claims(j, payload, now, &exp, err) < 0 ||
        build_identity(j, payload, exp, pool, out, err) < 0)
        goto done;
    if (j->cache != NULL) {
        double until = exp + (double)j->leeway;
        lfs_auth_token_cache_put(j->cache, key, now,
                                 until > (double)now + LFS_AUTH_JWT_CACHE_MAX_TTL
                                     ? now + LFS_AUTH_JWT_CACHE_MAX_TTL
                                     : to_time(until),
                                 out);
    }
    ret = 1;
done:
    json_decref(payload);
    return ret;
}

/* Skips spaces and tabs. */
static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* Finds the token in one Authorization value. Returns 1 and tok/len, 0 when the value holds
 * no token for us, -1 and err for an oversized Basic credential of our user. */
static int token_from_header(const struct lfs_auth_jwt *j, h2o_iovec_t value, h2o_mem_pool_t *pool,
                             const char **tok, size_t *len, struct lfs_error *err)
{
    const char *p = value.base, *end = value.base + value.len;
    skip_ws(&p, end);
    const char *scheme = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    size_t scheme_len = (size_t)(p - scheme);
    skip_ws(&p, end);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t creds_len = (size_t)(end - p);
    if (creds_len == 0)
        return 0;
    if (scheme_len == 6 && strncasecmp(scheme, "Bearer", 6) == 0) {
        *tok = p;
        *len = creds_len;
        return 1;
    }
    if (!(scheme_len == 5 && strncasecmp(scheme, "Basic", 5) == 0) || j->basic_user == NULL)
        return 0;
    size_t ulen = strlen(j->basic_user);
    /* Decode a bounded prefix first: enough to see "user:" without decoding a huge value. */
    size_t max_b64 = (LFS_AUTH_JWT_MAX_TOKEN + ulen + 1 + 2) / 3 * 4;
    size_t head = creds_len > max_b64 ? (ulen + 4) / 3 * 4 + 4 : creds_len;
    unsigned char *buf = h2o_mem_alloc_pool(pool, head * 3 / 4 + 1);
    size_t n = lfs_auth_base64_decode(p, head, buf);
    if (n == (size_t)-1 || n <= ulen || memcmp(buf, j->basic_user, ulen) != 0 || buf[ulen] != ':')
        return 0;
    if (head < creds_len)
        return lfs_error_set(err, 401, "token is too large (over %d bytes)",
                             LFS_AUTH_JWT_MAX_TOKEN);
    *tok = (const char *)buf + ulen + 1;
    *len = n - ulen - 1;
    return 1;
}

int lfs_auth_jwt_authenticate(struct lfs_auth *auth, const struct lfs_auth_request *req,
                              h2o_mem_pool_t *pool, struct lfs_identity *out, struct lfs_error *err)
{
    struct lfs_auth_jwt *j = (struct lfs_auth_jwt *)auth;
    time_t now = req->now != 0 ? req->now : time(NULL);
    struct lfs_error first = {0}, e;
    /* Every Authorization value, then ?jwt=: the first token that validates wins; when none
     * does, the first token of ours that failed decides the 401. */
    for (size_t i = 0; i <= req->nauthorization; i++) {
        const char *tok = NULL;
        size_t len = 0;
        int r;
        e = (struct lfs_error){0};
        if (i < req->nauthorization) {
            r = token_from_header(j, req->authorization[i], pool, &tok, &len, &e);
        } else if (req->query_jwt.base != NULL) {
            tok = req->query_jwt.base;
            len = req->query_jwt.len;
            r = 1;
        } else {
            break;
        }
        if (r == 1)
            r = try_token(j, tok, len, now, pool, out, &e);
        if (r == 1)
            return 1;
        if (r < 0 && first.status == 0)
            first = e;
    }
    if (first.status == 0)
        return 0;
    if (err != NULL)
        *err = first;
    return -1;
}

/* ---- minting ---- */

int lfs_auth_jwt_mint(struct lfs_auth *provider, const struct lfs_identity *identity,
                      const char *org_path, const char *repo, const char *oid, unsigned perms,
                      long lifetime, h2o_mem_pool_t *pool, const char **token,
                      struct lfs_error *err)
{
    struct lfs_auth_jwt *j = (struct lfs_auth_jwt *)provider;
    char scope[1024];
    if (j->key.secret == NULL && j->key.sign_key == NULL)
        return lfs_error_set(err, 500, "this jwt provider has no key to sign tokens with");
    if (lfs_scope_format(org_path, repo, oid, perms, scope, sizeof(scope), err) < 0)
        return -1;
    /* Only what the action needs: who (sub), the one object and action (scopes), and when.
     * name and email are left out so that the token (one or two per object of a batch
     * answer) stays small whatever the user's token held; requests with it show the sub as
     * the name. */
    const char *sub = identity->id ? identity->id : "";
    long long now = (long long)time(NULL);
    long long exp = now + (lifetime > 0 ? lifetime : j->default_lifetime);
    /* The claims, in the order and form the jansson tree used to give them:
     * {"exp":E,"iat":N,"nbf":N,"sub":S,"scopes":C[,"iss":I][,"aud":U]} */
    size_t cap = 80 + 3 * 21 + LFS_AUTH_JSON_STRING_MAX(strlen(sub)) +
                 LFS_AUTH_JSON_STRING_MAX(strlen(scope)) + j->claims_tail_len;
    char stack[1024];
    char *claims = cap <= sizeof(stack) ? stack : h2o_mem_alloc_pool(pool, cap);
    char issued[24];
    size_t issued_len = (size_t)(put_int(issued, now) - issued);
    char *o = PUT_LITERAL(claims, "{\"exp\":");
    o = put_int(o, exp);
    o = PUT_LITERAL(o, ",\"iat\":");
    o = put(o, issued, issued_len);
    o = PUT_LITERAL(o, ",\"nbf\":");
    o = put(o, issued, issued_len);
    o = STRING_CLAIM(o, "sub", sub);
    /* lfs_scope_format writes only validated path segments, hex and [a-z:,/]: nothing to
     * escape */
    if (o != NULL) {
        size_t scope_len = strlen(scope);
        o = PUT_LITERAL(o, ",\"scopes\":\"");
        o = put(o, scope, scope_len);
        *o++ = '"';
    }
    if (o == NULL || j->claims_tail == NULL)
        return lfs_error_set(err, 500, "cannot mint an action token");
    o = put(o, j->claims_tail, j->claims_tail_len);
    *o++ = '}';
    size_t claims_len = (size_t)(o - claims);

    /* header64 (with its '.') . payload, signed, then . signature */
    size_t sig_max = lfs_auth_jose_sig_max(&j->key);
    /* sub is at most LFS_AUTH_JWT_MAX_SUB bytes (6x escaped) and the scope one object, so
     * only a very long configured issuer or audience can get here: say so rather than hand
     * out a token the verifier refuses. */
    size_t token_max = j->header64_len + (claims_len + 2) / 3 * 4 + 1 + (sig_max + 2) / 3 * 4;
    if (token_max > LFS_AUTH_JWT_MAX_TOKEN)
        return lfs_error_set(err, 500,
                             "an action token would be %zu bytes, over the %d accepted; "
                             "shorten the action provider's issuer or audience",
                             token_max, LFS_AUTH_JWT_MAX_TOKEN);
    char *out = h2o_mem_alloc_pool(pool, j->header64_len + (claims_len + 2) / 3 * 4 + 1 +
                                             (sig_max + 2) / 3 * 4 + 1);
    memcpy(out, j->header64, j->header64_len);
    size_t input_len =
        j->header64_len +
        lfs_auth_base64url_encode((const unsigned char *)claims, claims_len, out + j->header64_len);
    unsigned char sig[LFS_AUTH_JOSE_MAX_SIG];
    size_t siglen = 0;
    if (lfs_auth_jose_sign(&j->key, out, input_len, sig, &siglen) < 0 || siglen > sig_max)
        return lfs_error_set(err, 500, "cannot mint an action token");
    out[input_len] = '.';
    lfs_auth_base64url_encode(sig, siglen, out + input_len + 1);
    *token = out;
    return 0;
}

/* ---- the provider ---- */

static int jwt_create(const json_t *options, const char *path, struct lfs_auth **out,
                      struct lfs_error *err)
{
    return lfs_auth_jwt_build(options, path, false, &lfs_auth_jwt_ops, out, err);
}

const struct lfs_auth_ops lfs_auth_jwt_ops = {
    .name = "jwt",
    .factories = (const char *const[]){"giftless.auth.jwt:factory", NULL},
    .create = jwt_create,
    .destroy = lfs_auth_jwt_free,
    .authenticate = lfs_auth_jwt_authenticate,
};
