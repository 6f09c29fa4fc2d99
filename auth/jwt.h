/* Internal interface of the jwt provider (jwt.c), shared with the pre-authorized action
 * tokens (preauth.c), which are the same provider built in "preauth" mode. Not for use
 * outside auth/: the server sees lfs_auth_jwt_ops and struct lfs_preauth only. */
#ifndef LFS_AUTH_JWT_H
#define LFS_AUTH_JWT_H

#include <stdbool.h>

#include "auth/auth.h"

/* Largest token accepted, in bytes; a larger one of ours is refused with 401. */
#define LFS_AUTH_JWT_MAX_TOKEN 8192

/* Bounds on what an identity takes from claims (see build_identity in jwt.c): a longer sub
 * is refused (401), a longer name cut on a UTF-8 character boundary, a longer email
 * dropped. */
#define LFS_AUTH_JWT_MAX_SUB 256
#define LFS_AUTH_JWT_MAX_NAME 256
#define LFS_AUTH_JWT_MAX_EMAIL 254

/* Entries (default of the token_cache_size option, and its upper bound) and lifetime bound
 * of the verified-token cache of each jwt provider. */
#define LFS_AUTH_JWT_CACHE_ENTRIES 4096
#define LFS_AUTH_JWT_CACHE_MAX_ENTRIES (1024 * 1024)
#define LFS_AUTH_JWT_CACHE_MAX_TTL 600
/* Bytes (default of the token_cache_bytes option, and its bounds) of that cache. The
 * minimum leaves each of its 16 shards room for eight identities of 8 KiB. */
#define LFS_AUTH_JWT_CACHE_BYTES (16LL * 1024 * 1024)
#define LFS_AUTH_JWT_CACHE_MIN_BYTES (1024LL * 1024)
#define LFS_AUTH_JWT_CACHE_MAX_BYTES (64LL * 1024 * 1024 * 1024)

/* Builds a jwt provider from `options` (giftless option names; see jwt.c), naming `path`
 * in errors. preauth mode: algorithm HS256 and key_id "giftless-internal-jwt-key" by
 * default, a random secret when none (or giftless's placeholder "change-me") is configured,
 * a signing key required, no cache, and only grants naming one exact object are kept, marked
 * action_token. `ops` becomes the provider's ops. Returns 0 and *out (free with
 * lfs_auth_jwt_free), or -1 and err. Main thread, at startup. */
int lfs_auth_jwt_build(const json_t *options, const char *path, bool preauth,
                       const struct lfs_auth_ops *ops, struct lfs_auth **out,
                       struct lfs_error *err);

/* Frees a provider made by lfs_auth_jwt_build. */
void lfs_auth_jwt_free(struct lfs_auth *auth);

/* The authenticate op of every jwt provider (see struct lfs_auth_ops). */
int lfs_auth_jwt_authenticate(struct lfs_auth *auth, const struct lfs_auth_request *req,
                              h2o_mem_pool_t *pool, struct lfs_identity *out,
                              struct lfs_error *err);

/* Mints a token for exactly one object (see struct lfs_preauth's mint): scope
 * obj:{org_path}/{repo}/{oid}:{actions}, sub from identity (not name or email: the token
 * carries only what the action needs), exp = now + lifetime
 * (default_lifetime when lifetime <= 0), iat = nbf = now, kid = key_id, iss/aud when
 * configured. Needs a signing key (HS* secret or private_key). Fails (500) rather than mint
 * a token over LFS_AUTH_JWT_MAX_TOKEN. Any worker thread. */
int lfs_auth_jwt_mint(struct lfs_auth *provider, const struct lfs_identity *identity,
                      const char *org_path, const char *repo, const char *oid, unsigned perms,
                      long lifetime, h2o_mem_pool_t *pool, const char **token,
                      struct lfs_error *err);

#endif
