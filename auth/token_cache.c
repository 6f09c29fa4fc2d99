/* The verified-token cache of the jwt provider (see token_cache.h). Each of 16 shards has a
 * mutex, a chained hash table and an LRU list; the shard and bucket come from the key, which
 * is already a SHA-256, so no further hashing is needed. An entry is one malloc block: the
 * entry, then the identity's grants, then its strings; lookups copy that identity into the
 * request pool while the shard is locked. Each shard has its share of the byte budget as
 * well as of the entries: an entry is accounted at the size malloc really gave it plus the
 * allocator's header, and least recently used entries are evicted until a new one fits; an
 * entry larger than ENTRY_SHARE of a shard's budget is not cached at all (so one huge
 * identity cannot empty a shard). Hit and miss counts are process-wide atomics read by
 * lfs_auth_token_cache_stats (for metrics). */
#include "auth/token_cache.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/scope.h"

#define NSHARDS 16
/* An entry may use at most 1/ENTRY_SHARE of its shard's byte budget. */
#define ENTRY_SHARE 8
/* What malloc keeps beside each block (glibc: one size word), counted with the entry. */
#define MALLOC_OVERHEAD sizeof(size_t)

struct entry {
    unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    time_t valid_until;
    size_t bytes;                 /* accounted size of this block */
    struct lfs_identity identity; /* points into the same block */
    struct entry *hash_next;
    struct entry *lru_prev, *lru_next;
};

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count, capacity;
    size_t bytes, max_bytes; /* accounted bytes of the entries, and the shard's budget */
    struct entry lru;        /* sentinel: lru.lru_next is the most recently used */
};

struct lfs_auth_token_cache {
    long max_ttl;
    struct shard shards[NSHARDS];
};

static atomic_ullong total_hits, total_misses;

void lfs_auth_token_cache_stats(unsigned long long *hits, unsigned long long *misses)
{
    *hits = atomic_load_explicit(&total_hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&total_misses, memory_order_relaxed);
}

struct lfs_auth_token_cache *lfs_auth_token_cache_create(size_t capacity, size_t max_bytes,
                                                         long max_ttl)
{
    struct lfs_auth_token_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t shard_bytes = max_bytes / NSHARDS;
    c->max_ttl = max_ttl;
    size_t per_shard = (capacity + NSHARDS - 1) / NSHARDS, nb = 8;
    if (per_shard == 0)
        per_shard = 1;
    while (nb < 2 * per_shard)
        nb *= 2;
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->capacity = per_shard;
        s->max_bytes = shard_bytes;
        s->nbuckets = nb;
        s->lru.lru_next = s->lru.lru_prev = &s->lru;
        if ((s->buckets = calloc(nb, sizeof(*s->buckets))) == NULL) {
            lfs_auth_token_cache_destroy(c);
            return NULL;
        }
    }
    return c;
}

void lfs_auth_token_cache_destroy(struct lfs_auth_token_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &cache->shards[i];
        if (s->buckets != NULL) {
            for (struct entry *e = s->lru.lru_next, *next; e != &s->lru; e = next) {
                next = e->lru_next;
                free(e);
            }
            free(s->buckets);
        }
        pthread_mutex_destroy(&s->lock);
    }
    free(cache);
}

/* SHA-256 fetched from the provider once: EVP_sha256() makes every digest look the
 * algorithm up again (OpenSSL 3's implicit fetch: locks and a hash table), which was half
 * the cost of a cache hit. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void lfs_auth_token_cache_key(const char *token, size_t len,
                              unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN])
{
    unsigned int n = 0;
    pthread_once(&sha256_once, fetch_sha256);
    EVP_Digest(token, len, key, &n, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL);
}

static uint64_t key_bits(const unsigned char *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return h;
}

static struct shard *shard_of(struct lfs_auth_token_cache *c, const unsigned char *key)
{
    return &c->shards[key_bits(key) % NSHARDS];
}

static struct entry **bucket_of(struct shard *s, const unsigned char *key)
{
    return &s->buckets[(key_bits(key) / NSHARDS) & (s->nbuckets - 1)];
}

/* Finds the entry and the link pointing at it. Shard locked. */
static struct entry **find(struct shard *s, const unsigned char *key)
{
    struct entry **link = bucket_of(s, key);
    while (*link != NULL && CRYPTO_memcmp((*link)->key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN) != 0)
        link = &(*link)->hash_next;
    return link;
}

static void lru_unlink(struct entry *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push_front(struct shard *s, struct entry *e)
{
    e->lru_next = s->lru.lru_next;
    e->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = e;
    s->lru.lru_next = e;
}

/* Unlinks and frees e; link is the hash link pointing at it. Shard locked. */
static void remove_entry(struct shard *s, struct entry **link, struct entry *e)
{
    *link = e->hash_next;
    lru_unlink(e);
    s->count--;
    s->bytes -= e->bytes;
    free(e);
}

static size_t str_size(const char *s)
{
    return s == NULL ? 0 : strlen(s) + 1;
}

/* Bytes needed for the identity's grants and strings after an aligned start. */
static size_t identity_size(const struct lfs_identity *id)
{
    size_t n = id->ngrants * sizeof(struct lfs_grant) + str_size(id->id) + str_size(id->name) +
               str_size(id->email);
    for (size_t i = 0; i < id->ngrants; i++)
        n += str_size(id->grants[i].org_path) + str_size(id->grants[i].repo) +
             str_size(id->grants[i].oid);
    return n;
}

static const char *put_str(char **cursor, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *out = memcpy(*cursor, s, n);
    *cursor += n;
    return out;
}

/* Deep-copies src into block (identity_size(src) bytes, aligned for struct lfs_grant). */
static void identity_copy(const struct lfs_identity *src, void *block, struct lfs_identity *dst)
{
    struct lfs_grant *grants = block;
    char *cursor = (char *)(grants + src->ngrants);
    *dst = *src;
    dst->id = put_str(&cursor, src->id);
    dst->name = put_str(&cursor, src->name);
    dst->email = put_str(&cursor, src->email);
    for (size_t i = 0; i < src->ngrants; i++) {
        grants[i] = src->grants[i];
        grants[i].org_path = put_str(&cursor, src->grants[i].org_path);
        grants[i].repo = put_str(&cursor, src->grants[i].repo);
        grants[i].oid = put_str(&cursor, src->grants[i].oid);
    }
    dst->grants = src->ngrants ? grants : NULL;
}

int lfs_auth_token_cache_get(struct lfs_auth_token_cache *cache, const unsigned char *key,
                             time_t now, h2o_mem_pool_t *pool, struct lfs_identity *out)
{
    struct shard *s = shard_of(cache, key);
    int hit = 0;
    pthread_mutex_lock(&s->lock);
    struct entry **link = find(s, key), *e = *link;
    if (e != NULL && now >= e->valid_until) {
        remove_entry(s, link, e);
    } else if (e != NULL) {
        lru_unlink(e);
        lru_push_front(s, e);
        identity_copy(&e->identity, lfs_scope_pool_alloc(pool, identity_size(&e->identity)), out);
        hit = 1;
    }
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add_explicit(hit ? &total_hits : &total_misses, 1, memory_order_relaxed);
    return hit;
}

void lfs_auth_token_cache_put(struct lfs_auth_token_cache *cache, const unsigned char *key,
                              time_t now, time_t valid_until, const struct lfs_identity *identity)
{
    if (valid_until > now + cache->max_ttl)
        valid_until = now + cache->max_ttl;
    if (valid_until <= now)
        return;
    struct shard *s = shard_of(cache, key);
    size_t size = sizeof(struct entry) + identity_size(identity);
    /* Checked before allocating: s->max_bytes does not change after creation. */
    if (size + MALLOC_OVERHEAD > s->max_bytes / ENTRY_SHARE)
        return;
    struct entry *e = malloc(size);
    if (e == NULL)
        return;
    e->bytes = malloc_usable_size(e) + MALLOC_OVERHEAD;
    if (e->bytes > s->max_bytes / ENTRY_SHARE) {
        free(e);
        return;
    }
    memcpy(e->key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN);
    e->valid_until = valid_until;
    identity_copy(identity, e + 1, &e->identity);
    pthread_mutex_lock(&s->lock);
    struct entry **link = find(s, key);
    if (*link != NULL)
        remove_entry(s, link, *link);
    /* e fits the budget alone (checked above), so this ends with room for it. */
    while (s->count > 0 && (s->count >= s->capacity || s->bytes + e->bytes > s->max_bytes)) {
        struct entry *victim = s->lru.lru_prev;
        remove_entry(s, find(s, victim->key), victim);
    }
    link = bucket_of(s, key);
    e->hash_next = *link;
    *link = e;
    lru_push_front(s, e);
    s->count++;
    s->bytes += e->bytes;
    pthread_mutex_unlock(&s->lock);
}

size_t lfs_auth_token_cache_bytes(struct lfs_auth_token_cache *cache, size_t *entries)
{
    size_t bytes = 0, n = 0;
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &cache->shards[i];
        pthread_mutex_lock(&s->lock);
        bytes += s->bytes;
        n += s->count;
        pthread_mutex_unlock(&s->lock);
    }
    if (entries != NULL)
        *entries = n;
    return bytes;
}
