/* A bounded cache of verified tokens for the jwt provider, so a busy endpoint does not pay an
 * RSA/EC verification per request. Keyed by the SHA-256 of the whole token (signature
 * included): a token is only ever found if this exact string was verified before, so the
 * cache cannot accept a token it has not verified. Entries hold a private copy of the
 * identity and live until the token expires, never longer than the cache's max_ttl.
 * Bounded in entries and in bytes (a token's identity grows with its scopes, so a bound in
 * entries alone let 6,000 tokens of ~300 scopes hold ~50 MB). Sharded (16 mutexes, LRU per
 * shard); safe from every worker thread. */
#ifndef LFS_AUTH_TOKEN_CACHE_H
#define LFS_AUTH_TOKEN_CACHE_H

#include <stddef.h>
#include <time.h>

#include "auth/auth.h"

#define LFS_AUTH_TOKEN_CACHE_KEY_LEN 32

struct lfs_auth_token_cache;

/* Creates a cache holding at most `capacity` entries (rounded up to a multiple of the shard
 * count) and at most `max_bytes` bytes of entries (split evenly over the shards; an entry is
 * accounted at its allocated size), each for at most max_ttl seconds. An identity larger
 * than 1/8 of a shard's share (max_bytes / 128) is not cached. Returns NULL when out of
 * memory. Caller frees with lfs_auth_token_cache_destroy. Main thread. */
struct lfs_auth_token_cache *lfs_auth_token_cache_create(size_t capacity, size_t max_bytes,
                                                         long max_ttl);

/* Frees the cache and every entry. No other thread may use it any more. */
void lfs_auth_token_cache_destroy(struct lfs_auth_token_cache *cache);

/* The cache key of token[0..len): its SHA-256. Any thread. */
void lfs_auth_token_cache_key(const char *token, size_t len,
                              unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN]);

/* Looks the key up at time `now`. On a hit returns 1 and a copy of the stored identity in
 * *out, allocated from pool (so a later eviction cannot free memory the request uses);
 * returns 0 on a miss, dropping the entry if it has expired. Counts a hit or a miss.
 * Any thread. */
int lfs_auth_token_cache_get(struct lfs_auth_token_cache *cache, const unsigned char *key,
                             time_t now, h2o_mem_pool_t *pool, struct lfs_identity *out);

/* Stores a copy of `identity` for a token that was just verified, valid while
 * now < valid_until (and at most max_ttl from now). Replaces an entry with the same key;
 * evicts least recently used entries of the shard until the new one fits its entry and byte
 * bounds. Silently does nothing when the identity is too large to cache, out of memory or
 * valid_until <= now. Any thread. */
void lfs_auth_token_cache_put(struct lfs_auth_token_cache *cache, const unsigned char *key,
                              time_t now, time_t valid_until, const struct lfs_identity *identity);

/* The accounted bytes of all entries, and their number in *entries (may be NULL): what the
 * byte and entry bounds apply to. For tests and metrics. Any thread. */
size_t lfs_auth_token_cache_bytes(struct lfs_auth_token_cache *cache, size_t *entries);

#endif
