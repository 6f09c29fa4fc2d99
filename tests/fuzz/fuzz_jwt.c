/* Fuzz target: JWT authentication (auth/jwt.c on auth/jose.c): Authorization values (Bearer,
 * Basic with the token as password, several headers) and ?jwt=, the compact-token split,
 * base64url, header and claims parsing, with a fixed HS256 key the corpus never signs with.
 * The first byte picks what the rest is:
 *   0 (and anything not below): lines, each an Authorization value, the last one ?jwt=.
 *       Property: no token validates (the fuzzer cannot forge an HMAC), and a refusal is a
 *       401 that says why.
 *   1: a JOSE header and a claims set (JSON, NUL-separated) that the harness encodes and
 *       signs with the key, so the claims checks and scopes (auth/scope.c) are reached.
 *       Property: an identity that validates has a sub within LFS_AUTH_JWT_MAX_SUB and
 *       grants whose parts are valid paths and oids.
 *   2: bytes for base64url. Property: encoding then decoding gives the bytes back, and a
 *       string that decodes re-encodes to itself (the decoder accepts canonical text only). */
#include <jansson.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/jose.h"
#include "auth/jwt.h"
#include "common/util.h"
#include "fuzz.h"

/* Never in the corpus: tokens there are signed with other keys, or not at all. */
static const char SECRET[] = "fuzz-harness-key-7c1f0e9a4b2d6385";
#define NOW 1700000000

static struct lfs_auth *provider;
static struct lfs_auth_jose_key sign_key;

static void init(void)
{
    json_t *options = json_pack("{s:s, s:s, s:i}", "algorithm", "HS256", "private_key", SECRET,
                                "token_cache_size", 0);
    struct lfs_error err = {0};
    LFS_FUZZ_CHECK(lfs_auth_jwt_ops.create(options, "fuzz.options", &provider, &err) == 0);
    json_decref(options);
    sign_key.alg = lfs_auth_jose_alg_find("HS256");
    LFS_FUZZ_CHECK(lfs_auth_jose_key_set_secret(&sign_key, SECRET, strlen(SECRET), "fuzz", &err) ==
                   0);
}

/* Authenticates with the given Authorization values and ?jwt= (query.base NULL: none).
 * Returns what the provider returned; checks the identity or the error. */
static int authenticate(const h2o_iovec_t *values, size_t n, h2o_iovec_t query)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_auth_request req = {
        .authorization = values, .nauthorization = n, .query_jwt = query, .now = NOW};
    struct lfs_identity id = {0};
    struct lfs_error err = {0};
    int rc = lfs_auth_jwt_authenticate(provider, &req, &pool, &id, &err);
    LFS_FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc < 0)
        LFS_FUZZ_CHECK(err.status == 401 && err.message[0] != '\0');
    if (rc == 1) {
        LFS_FUZZ_CHECK(id.id != NULL && strlen(id.id) <= LFS_AUTH_JWT_MAX_SUB);
        LFS_FUZZ_CHECK(id.name != NULL && strlen(id.name) <= LFS_AUTH_JWT_MAX_NAME);
        for (size_t i = 0; i < id.ngrants; i++) {
            const struct lfs_grant *g = &id.grants[i];
            LFS_FUZZ_CHECK(g->perms != 0);
            if (g->org_path != NULL)
                LFS_FUZZ_CHECK(lfs_segments_valid(g->org_path, strlen(g->org_path)));
            if (g->repo != NULL)
                LFS_FUZZ_CHECK(lfs_segment_valid(g->repo, strlen(g->repo)));
            if (g->oid != NULL)
                LFS_FUZZ_CHECK(lfs_oid_valid(g->oid, strlen(g->oid)));
        }
    }
    h2o_mem_clear_pool(&pool);
    return rc;
}

static void forged(const uint8_t *data, size_t size)
{
    struct lfs_fuzz_part parts[8];
    size_t n = lfs_fuzz_split(data, size, "\n", 1, parts, 8);
    h2o_iovec_t values[8];
    for (size_t i = 0; i < n; i++)
        values[i] = h2o_iovec_init(parts[i].base, parts[i].len);
    h2o_iovec_t query = n > 1 ? values[n - 1] : h2o_iovec_init(NULL, 0);
    LFS_FUZZ_CHECK(authenticate(values, n > 1 ? n - 1 : n, query) != 1);
}

static void signed_claims(const uint8_t *data, size_t size)
{
    struct lfs_fuzz_part parts[2];
    if (lfs_fuzz_split(data, size, "", 1, parts, 2) != 2 || size > LFS_AUTH_JWT_MAX_TOKEN)
        return;
    char *tok = malloc(7 + 4 * (size / 3 + 2) + 2 + (LFS_AUTH_JOSE_MAX_SIG * 4 / 3 + 4));
    LFS_FUZZ_CHECK(tok != NULL);
    size_t len = 7;
    memcpy(tok, "Bearer ", 7);
    len += lfs_auth_base64url_encode((const unsigned char *)parts[0].base, parts[0].len, tok + len);
    tok[len++] = '.';
    len += lfs_auth_base64url_encode((const unsigned char *)parts[1].base, parts[1].len, tok + len);
    unsigned char sig[LFS_AUTH_JOSE_MAX_SIG];
    size_t siglen;
    LFS_FUZZ_CHECK(lfs_auth_jose_sign(&sign_key, tok + 7, len - 7, sig, &siglen) == 0);
    tok[len++] = '.';
    len += lfs_auth_base64url_encode(sig, siglen, tok + len);
    h2o_iovec_t value = h2o_iovec_init(tok, len);
    authenticate(&value, 1, h2o_iovec_init(NULL, 0));
    free(tok);
}

static void base64url(const uint8_t *data, size_t size)
{
    char *text = malloc(4 * (size / 3 + 1) + 1);
    unsigned char *bytes = malloc(size + 1);
    LFS_FUZZ_CHECK(text != NULL && bytes != NULL);
    size_t n = lfs_auth_base64url_encode(data, size, text);
    LFS_FUZZ_CHECK(lfs_auth_base64url_decode(text, n, bytes) == size);
    LFS_FUZZ_CHECK(memcmp(bytes, data, size) == 0);
    size_t m = lfs_auth_base64url_decode((const char *)data, size, bytes);
    if (m != (size_t)-1) {
        LFS_FUZZ_CHECK(lfs_auth_base64url_encode(bytes, m, text) == size);
        LFS_FUZZ_CHECK(memcmp(text, data, size) == 0);
    }
    lfs_auth_base64_decode((const char *)data, size, bytes);
    free(text);
    free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (provider == NULL)
        init();
    if (size == 0)
        return 0;
    switch (data[0]) {
    case '1': signed_claims(data + 1, size - 1); break;
    case '2': base64url(data + 1, size - 1); break;
    default: forged(data + 1, size - 1); break;
    }
    return 0;
}
