/* The github auth provider (giftless.auth.github:factory): the caller's GitHub token, sent as
 * the Basic password (git's credential helpers) or as a Bearer token, is checked against the
 * GitHub REST API, and the caller gets the LFS rights its permission on <org>/<repo> gives:
 * admin or write -> read, write and verify; read -> read and verify; anything else -> none.
 *
 * Unlike giftless, no worker thread ever waits for GitHub. A request whose answer is not cached
 * joins (or starts) a lookup on its worker's loop through the asynchronous HTTP client
 * (storage/http_client.h) and returns LFS_AUTH_PENDING; when the lookup completes every request
 * waiting on it is resumed and the chain runs again, answered from the outcome the lookup left
 * in the request's wait. Requests with the same token and repository share one lookup, on
 * any worker thread: it runs on the loop of the thread that needed it first, and requests of
 * other threads wait in their own thread's list until that thread's h2o receiver is told the
 * lookup ended (as storage/gcs_iam.c shares its token fetch). A lookup lives in a pool of its
 * own, kept while at least one request waits on it (so a client going away does not cancel
 * the others' lookup; the last one leaving does). GitHub App installation tokens are looked
 * up in the org's installations and the repositories the installation reaches.
 *
 * Two caches, both keyed by SHA-256 hashes (never the token itself) and shared by the worker
 * threads (auth/token_cache.h): the user a token belongs to (/user; token_max_size entries),
 * and the identity with its grant on one repository (auth_max_size entries, for auth_write_ttl
 * seconds when it may write, auth_other_ttl otherwise). GitHub's rate-limit answers become a
 * 503 with Retry-After naming GitHub (and that token's lookups are not tried until then); GitHub
 * down is a 503 naming GitHub; cached identities keep working meanwhile. No token is logged,
 * put in a message or a metric. */
#include "auth/github.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jose.h"
#include "auth/token_cache.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "config/config.h"
#include "storage/http_client.h"

#define DEFAULT_API_URL "https://api.github.com"
#define DEFAULT_API_VERSION "2022-11-28"
#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_READ_TIMEOUT 10.0
#define MAX_TOKEN 1024
#define MAX_BASIC_USER 256
/* Bytes the cached identities of one cache may hold: tiny entries (one grant each). */
#define CACHE_BYTES (4 * 1024 * 1024)
/* A rate limit without Retry-After or X-RateLimit-Reset is waited out this long. */
#define DEFAULT_RETRY_AFTER 60
#define MAX_RETRY_AFTER 3600
/* Pages of /installation/repositories followed at most (100 repositories each). */
#define MAX_PAGES 50
#define TOKEN_REFUSED                                                                              \
    "GitHub did not accept the token (HTTP 401); use a valid, unexpired GitHub token as the "      \
    "password"

enum gh_endpoint { EP_USER, EP_PERMISSION, EP_INSTALLATIONS, EP_INSTALLATION_REPOS, EP_COUNT };
static const char *const endpoint_names[EP_COUNT] = {
    "user", "collaborator_permission", "org_installations", "installation_repositories"};

enum gh_outcome { OUT_OK, OUT_UNAUTHORIZED, OUT_DENIED, OUT_RATE_LIMITED, OUT_ERROR, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"ok", "unauthorized", "denied", "rate_limited",
                                                     "error"};

/* Process-wide counters for /metrics. */
static _Atomic unsigned long long calls[EP_COUNT][OUT_COUNT];
static _Atomic unsigned long long cache_hits, cache_misses;
/* Tokens GitHub rate limits (its limits are per user or installation, not per server), with
 * the time (time(NULL) seconds) until which their lookups are answered 503 without a call.
 * A full table forgets the limit that ends first. */
#define LIMITED_SLOTS 64
static struct {
    pthread_mutex_t mu;
    struct {
        unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN]; /* SHA-256 of the token */
        long long until;
    } slots[LIMITED_SLOTS];
} limited = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Seconds the token (by its key) is still rate limited, 0 when it is not. Any thread. */
static long limited_for(const unsigned char *key)
{
    long long now = (long long)time(NULL), left = 0;
    pthread_mutex_lock(&limited.mu);
    for (size_t i = 0; i < LIMITED_SLOTS; i++)
        if (limited.slots[i].until > now &&
            CRYPTO_memcmp(limited.slots[i].key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN) == 0)
            left = limited.slots[i].until - now;
    pthread_mutex_unlock(&limited.mu);
    return (long)left;
}

static void limited_set(const unsigned char *key, long long until)
{
    size_t pick = 0;
    pthread_mutex_lock(&limited.mu);
    for (size_t i = 0; i < LIMITED_SLOTS; i++) {
        if (CRYPTO_memcmp(limited.slots[i].key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN) == 0) {
            pick = i;
            break;
        }
        if (limited.slots[i].until < limited.slots[pick].until)
            pick = i;
    }
    memcpy(limited.slots[pick].key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN);
    limited.slots[pick].until = until;
    pthread_mutex_unlock(&limited.mu);
}

struct lfs_auth_github {
    struct lfs_auth base;
    /* The app's reference and one per lookup: a lookup that outlives its requests (another
     * thread's waiters went away after a reload) still finds its caches. */
    _Atomic int refs;
    char *api_url;        /* without a trailing '/' */
    char *version_header; /* "X-GitHub-Api-Version: ..." or NULL (api_version: null) */
    long timeout_ms;
    json_t *restrict_to; /* {org: [repo, ...] | null}, own reference; NULL: every org */
    struct lfs_auth_token_cache *users, *grants;
    long token_ttl, auth_write_ttl, auth_other_ttl;
};

struct gh_thread;

/* One lookup in flight: /user (unless the user is cached), then the collaborator permission.
 * Runs on the loop of the thread that started it (its owner), in a malloc'd pool of its own. */
struct gh_lookup {
    h2o_linklist_t link;        /* the owner's lookups */
    h2o_linklist_t flight_link; /* flights.list; guarded by flights.mu */
    uint64_t seq;
    int remote_waiters; /* waiters on other threads; guarded by flights.mu */
    struct gh_thread *owner;
    struct lfs_auth_github *gh;
    h2o_mem_pool_t pool;
    unsigned char user_key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    unsigned char grant_key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    char *auth_header; /* "Authorization: Bearer <token>", wiped when the lookup ends */
    const char *org, *repo;
    const char *basic_user; /* the Basic user name, "" for Bearer: names an app installation */
    struct lfs_identity user;
    /* GitHub App installation tokens: the installation's rights, whether they cover all the
     * org's repositories, and the pages of /installation/repositories read so far. */
    unsigned app_perms;
    bool app_all;
    int pages;
    h2o_linklist_t waiters; /* the owner's requests waiting on it (struct gh_waiter.link) */
    bool completing;
};

/* One request waiting for (or answered by) a lookup; owned by the request pool. A waiter on
 * its own thread's lookup gets the outcome itself; one on another thread's lookup (remote)
 * waits in its thread's `remote` list and is resumed from that thread's receiver: a success
 * is then found in the cache, a failure in flights.failed. */
struct gh_waiter {
    h2o_linklist_t link;
    struct gh_lookup *lookup; /* own thread's lookup, NULL once answered or when remote */
    uint64_t seq;             /* remote: the lookup's seq */
    bool remote;
    const struct lfs_auth_github *gh;
    unsigned char grant_key[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    h2o_mem_pool_t *pool;
    struct lfs_auth_wait *wait;
    bool done;
    int rc;
    struct lfs_identity identity;
    struct lfs_error err;
};

/* A worker thread's part: the lookups it runs, its requests waiting on other threads'
 * lookups, and the receiver through which those threads wake it (h2o 2.2.5: a message must
 * not be sent again while queued, hence wake_sent). */
struct gh_thread {
    h2o_linklist_t link; /* flights.threads; guarded by flights.mu */
    h2o_context_t *ctx;
    h2o_multithread_receiver_t receiver;
    h2o_multithread_message_t wake;
    bool wake_sent;  /* guarded by flights.mu */
    bool has_remote; /* guarded by flights.mu */
    h2o_linklist_t lookups;
    h2o_linklist_t remote;
};

static __thread struct gh_thread *gh_thread;

#define OUTCOME_SLOTS 64

/* A finished lookup's outcome kept for its waiters on other threads: the identity (rc 1) in
 * one malloc'd block (identity_blob), or err. Not the cache: with a cache of size or TTL 0
 * they would otherwise find nothing and look up again. */
struct gh_result {
    uint64_t seq;
    int rc;
    struct lfs_error err;
    struct lfs_identity identity;
    void *blob;
};

/* Every lookup in flight across the threads, so one (token, repository) has one lookup. */
static struct {
    pthread_mutex_t mu;
    h2o_linklist_t threads;
    h2o_linklist_t list;
    uint64_t seq;
    struct gh_result outcomes[OUTCOME_SLOTS]; /* recent ones, by seq % OUTCOME_SLOTS */
} flights = {.mu = PTHREAD_MUTEX_INITIALIZER,
             .threads = {&flights.threads, &flights.threads},
             .list = {&flights.list, &flights.list}};

/* ---- options ---- */

/* api_timeout: seconds, or [connect, read] as giftless (requests) takes it. The HTTP client
 * has one deadline per call: their sum. */
static int read_timeout(const json_t *opts, const char *path, long *ms, struct lfs_error *err)
{
    const json_t *v = json_object_get(opts, "api_timeout");
    double total = DEFAULT_CONNECT_TIMEOUT + DEFAULT_READ_TIMEOUT;
    if (v != NULL && !json_is_null(v)) {
        if (json_is_number(v)) {
            total = json_number_value(v);
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_number(json_array_get(v, 0)) && json_is_number(json_array_get(v, 1))) {
            total =
                json_number_value(json_array_get(v, 0)) + json_number_value(json_array_get(v, 1));
        } else {
            return lfs_error_set(err, 500,
                                 "config: %s.api_timeout: expected seconds or [connect, read] "
                                 "seconds",
                                 path);
        }
        if (!(total > 0 && total <= 600))
            return lfs_error_set(err, 500,
                                 "config: %s.api_timeout: expected a total from above 0 to 600 "
                                 "seconds",
                                 path);
    }
    *ms = (long)(total * 1000);
    return 0;
}

/* restrict_to: {org: [repo, ...] | null}. */
static int read_restrict_to(struct lfs_auth_github *gh, const json_t *opts, const char *path,
                            struct lfs_error *err)
{
    const json_t *v = json_object_get(opts, "restrict_to");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return lfs_error_set(err, 500,
                             "config: %s.restrict_to: expected a mapping of organizations to a "
                             "list of repositories or null",
                             path);
    const char *org;
    const json_t *repos;
    json_object_foreach((json_t *)v, org, repos)
    {
        if (json_is_null(repos))
            continue;
        if (!json_is_array(repos))
            return lfs_error_set(err, 500,
                                 "config: %s.restrict_to.%s: expected a list of repositories or "
                                 "null (every repository of the organization)",
                                 path, org);
        size_t i;
        const json_t *r;
        json_array_foreach(repos, i, r)
        {
            if (!json_is_string(r))
                return lfs_error_set(err, 500,
                                     "config: %s.restrict_to.%s[%zu]: expected a repository name",
                                     path, org, i);
        }
    }
    gh->restrict_to = json_deep_copy(v);
    return gh->restrict_to != NULL ? 0 : lfs_error_set(err, 500, "out of memory");
}

/* A TTL in seconds as giftless takes it (a number >= 0, fractions allowed), rounded up to
 * whole seconds (the caches' unit). */
static int read_ttl(const json_t *cache, const char *path, const char *key, long def, long *out,
                    struct lfs_error *err)
{
    const json_t *v = json_object_get(cache, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!(d >= 0 && d <= 86400.0 * 7))
        return lfs_error_set(err, 500, "config: %s.%s: expected seconds from 0 to 604800", path,
                             key);
    *out = (long)d;
    if ((double)*out < d)
        (*out)++;
    return 0;
}

/* cache: giftless's sizes and TTLs; a size of 0 caches nothing (as giftless's LRU caches of
 * size 0), a TTL of 0 keeps nothing. user_max_size (older giftless) is accepted: lfsgate keeps
 * a token's user in the token cache. */
static int read_cache(struct lfs_auth_github *gh, const json_t *opts, const char *path,
                      struct lfs_error *err)
{
    const json_t *cache = NULL;
    char cpath[256];
    static const char *const keys[] = {"token_max_size", "auth_max_size", "auth_write_ttl",
                                       "auth_other_ttl", "user_max_size", NULL};
    long long token_max = 32, auth_max = 32, user_max = 32;
    if (lfs_config_get_object(opts, path, "cache", &cache, err) < 0)
        return -1;
    lfs_config_path(cpath, sizeof(cpath), path, "cache");
    if (cache != NULL &&
        (lfs_config_check_keys(cache, cpath, keys, err) < 0 ||
         lfs_config_get_int(cache, cpath, "token_max_size", 32, 0, 1000000, &token_max, err) < 0 ||
         lfs_config_get_int(cache, cpath, "auth_max_size", 32, 0, 1000000, &auth_max, err) < 0 ||
         lfs_config_get_int(cache, cpath, "user_max_size", 32, 0, 1000000, &user_max, err) < 0))
        return -1;
    if (read_ttl(cache, cpath, "auth_write_ttl", 900, &gh->auth_write_ttl, err) < 0 ||
        read_ttl(cache, cpath, "auth_other_ttl", 30, &gh->auth_other_ttl, err) < 0)
        return -1;
    /* A token's user does not change; the entry only needs to outlive the grants made with
     * it, and a revoked token is noticed by the permission call that follows an expiry. */
    gh->token_ttl =
        gh->auth_write_ttl > gh->auth_other_ttl ? gh->auth_write_ttl : gh->auth_other_ttl;
    if ((token_max > 0 && gh->token_ttl > 0 &&
         (gh->users = lfs_auth_token_cache_create((size_t)token_max, CACHE_BYTES, gh->token_ttl)) ==
             NULL) ||
        (auth_max > 0 && gh->token_ttl > 0 &&
         (gh->grants = lfs_auth_token_cache_create((size_t)auth_max, CACHE_BYTES, gh->token_ttl)) ==
             NULL))
        return lfs_error_set(err, 500, "out of memory");
    return 0;
}

static void gh_destroy(struct lfs_auth *auth)
{
    struct lfs_auth_github *gh = (struct lfs_auth_github *)auth;
    if (gh == NULL || atomic_fetch_sub(&gh->refs, 1) > 1)
        return;
    free(gh->api_url);
    free(gh->version_header);
    json_decref(gh->restrict_to);
    if (gh->users != NULL)
        lfs_auth_token_cache_destroy(gh->users);
    if (gh->grants != NULL)
        lfs_auth_token_cache_destroy(gh->grants);
    free(gh);
}

static char *render_metrics(size_t *len);

static int gh_create(const json_t *opts, const char *path, struct lfs_auth **out,
                     struct lfs_error *err)
{
    static const char *const keys[] = {"api_url",     "api_version", "api_timeout",
                                       "restrict_to", "cache",       NULL};
    if (opts != NULL && lfs_config_check_keys(opts, path, keys, err) < 0)
        return -1;
    struct lfs_auth_github *gh = calloc(1, sizeof(*gh));
    if (gh == NULL)
        return lfs_error_set(err, 500, "out of memory");
    gh->base.ops = &lfs_auth_github_ops;
    atomic_init(&gh->refs, 1);
    const char *api_url = NULL, *version = NULL;
    const json_t *vj = json_object_get(opts, "api_version");
    if (lfs_config_get_string(opts, path, "api_url", DEFAULT_API_URL, &api_url, err) < 0 ||
        lfs_config_get_string(opts, path, "api_version", DEFAULT_API_VERSION, &version, err) < 0 ||
        read_timeout(opts, path, &gh->timeout_ms, err) < 0 ||
        read_restrict_to(gh, opts, path, err) < 0 || read_cache(gh, opts, path, err) < 0)
        goto fail;
    /* a host is required: "https://" without one would leave "https:" as the prefix that
     * Link next pages must start with, which every https URL does */
    size_t scheme = strncmp(api_url, "https://", 8) == 0  ? 8
                    : strncmp(api_url, "http://", 7) == 0 ? 7
                                                          : 0;
    if (scheme == 0 || api_url[scheme] == '\0' || api_url[scheme] == '/') {
        lfs_error_set(err, 500,
                      "config: %s.api_url: expected an http(s) URL such as %s (GitHub "
                      "Enterprise: https://<host>/api/v3)",
                      path, DEFAULT_API_URL);
        goto fail;
    }
    if ((gh->api_url = strdup(api_url)) == NULL)
        goto oom;
    size_t n = strlen(gh->api_url);
    while (n > 0 && gh->api_url[n - 1] == '/')
        gh->api_url[--n] = '\0';
    /* api_version: null sends no version header (giftless's meaning). */
    if (!(vj != NULL && json_is_null(vj))) {
        for (const char *p = version; *p; p++)
            if (*p < 0x21 || *p > 0x7e) {
                lfs_error_set(err, 500,
                              "config: %s.api_version: expected a version such as %s, without "
                              "spaces or control characters",
                              path, DEFAULT_API_VERSION);
                goto fail;
            }
        size_t vn = strlen(version) + sizeof("X-GitHub-Api-Version: ");
        if ((gh->version_header = malloc(vn)) == NULL)
            goto oom;
        snprintf(gh->version_header, vn, "X-GitHub-Api-Version: %s", version);
    }
    if (lfs_http_client_load(path, err) < 0)
        goto fail;
    lfs_metrics_set_auth_renderer(render_metrics);
    *out = &gh->base;
    return 0;
oom:
    lfs_error_set(err, 500, "out of memory");
fail:
    gh_destroy(&gh->base);
    return -1;
}

/* ---- credentials ---- */

/* GitHub tokens are printable ASCII without spaces (ghp_..., github_pat_..., ghs_..., and the
 * 40-hex classic ones); nothing else may go into the Authorization line we send. */
static bool token_chars_valid(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (t[i] < 0x21 || t[i] > 0x7e)
            return false;
    return true;
}

/* A JWT (three base64url parts, a JSON header first) is the jwt provider's, whatever the
 * order of AUTH_PROVIDERS: no GitHub token has that shape. */
static bool jwt_shaped(const char *t, size_t len)
{
    const char *d1 = memchr(t, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t)) : NULL;
    return len > 3 && memcmp(t, "eyJ", 3) == 0 && d2 != NULL &&
           memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)) == NULL;
}

/* Finds the token in one Authorization value: 1 with *tok and the Basic user name (NUL-ended,
 * "" for Bearer) in *user, 0 when the value is not ours (no credential, another scheme, the
 * jwt provider's Basic user "_jwt" or a JWT). */
static int credential_token(h2o_iovec_t value, h2o_mem_pool_t *pool, const char **tok, size_t *len,
                            const char **user)
{
    *user = "";
    const char *p = value.base, *end = value.base + value.len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *scheme = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    size_t scheme_len = (size_t)(p - scheme);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    if (n == 0)
        return 0;
    if ((scheme_len == 6 && strncasecmp(scheme, "Bearer", 6) == 0) ||
        (scheme_len == 5 && strncasecmp(scheme, "token", 5) == 0)) {
        *tok = p;
        *len = n;
    } else if (scheme_len == 5 && strncasecmp(scheme, "Basic", 5) == 0) {
        if (n > (MAX_TOKEN + MAX_BASIC_USER + 1 + 2) / 3 * 4)
            return 0;
        unsigned char *buf = h2o_mem_alloc_pool(pool, n * 3 / 4 + 1);
        size_t dn = lfs_auth_base64_decode(p, n, buf);
        const unsigned char *colon = dn == (size_t)-1 ? NULL : memchr(buf, ':', dn);
        if (colon == NULL)
            return 0;
        size_t ulen = (size_t)(colon - buf);
        if (ulen == 4 && memcmp(buf, "_jwt", 4) == 0)
            return 0;
        *user = ulen <= MAX_BASIC_USER ? h2o_strdup(pool, (const char *)buf, ulen).base : "";
        *tok = (const char *)colon + 1;
        *len = dn - ulen - 1;
    } else {
        return 0;
    }
    return *len > 0 && !jwt_shaped(*tok, *len);
}

/* restrict_to allows org/repo. */
static bool restrict_allows(const struct lfs_auth_github *gh, const char *org, const char *repo)
{
    if (gh->restrict_to == NULL)
        return true;
    const json_t *repos = json_object_get(gh->restrict_to, org);
    if (repos == NULL)
        return false;
    if (json_is_null(repos) || json_array_size(repos) == 0)
        return true; /* null or an empty list: every repository of the org (giftless) */
    size_t i;
    const json_t *r;
    json_array_foreach(repos, i, r)
    {
        if (strcmp(json_string_value(r), repo) == 0)
            return true;
    }
    return false;
}

static void grant_key(const char *tok, size_t len, const char *user, const char *org,
                      const char *repo, unsigned char key[LFS_AUTH_TOKEN_CACHE_KEY_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    /* NUL separators: no (token, user, org, repo) can hash as another's. The Basic user name
     * is part of it because it names the installation of an app token. */
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, tok, len) != 1 || EVP_DigestUpdate(md, "", 1) != 1 ||
        EVP_DigestUpdate(md, user, strlen(user) + 1) != 1 ||
        EVP_DigestUpdate(md, org, strlen(org) + 1) != 1 ||
        EVP_DigestUpdate(md, repo, strlen(repo) + 1) != 1 || EVP_DigestFinal_ex(md, key, &n) != 1) {
        /* No digest: a key no lookup can share, so nothing is answered for another token. */
        memset(key, 0, LFS_AUTH_TOKEN_CACHE_KEY_LEN);
        lfs_auth_token_cache_key(tok, len, key);
        key[0] ^= 0x5a;
    }
    EVP_MD_CTX_free(md);
}

/* ---- identities ---- */

static const char *pool_dup(h2o_mem_pool_t *pool, const char *s)
{
    return s == NULL ? NULL : h2o_strdup(pool, s, SIZE_MAX).base;
}

static void identity_copy(h2o_mem_pool_t *pool, const struct lfs_identity *in,
                          struct lfs_identity *out)
{
    *out = (struct lfs_identity){
        .id = pool_dup(pool, in->id),
        .name = pool_dup(pool, in->name),
        .email = pool_dup(pool, in->email),
        .expires = in->expires,
    };
    if (in->ngrants > 0) {
        struct lfs_grant *g = h2o_mem_alloc_pool(pool, in->ngrants * sizeof(*g));
        for (size_t i = 0; i < in->ngrants; i++)
            g[i] = (struct lfs_grant){.org_path = pool_dup(pool, in->grants[i].org_path),
                                      .repo = pool_dup(pool, in->grants[i].repo),
                                      .perms = in->grants[i].perms};
        out->grants = g;
        out->ngrants = in->ngrants;
    }
}

/* A copy of `in` in one malloc'd block (returned; the caller frees it), *out pointing into
 * it; NULL when out of memory. */
static void *identity_blob(const struct lfs_identity *in, struct lfs_identity *out)
{
    const char *strs[3] = {in->id, in->name, in->email};
    size_t size = in->ngrants * sizeof(struct lfs_grant);
    for (size_t i = 0; i < 3; i++)
        size += strs[i] != NULL ? strlen(strs[i]) + 1 : 0;
    for (size_t i = 0; i < in->ngrants; i++)
        size += (in->grants[i].org_path ? strlen(in->grants[i].org_path) + 1 : 0) +
                (in->grants[i].repo ? strlen(in->grants[i].repo) + 1 : 0);
    char *blob = malloc(size > 0 ? size : 1);
    if (blob == NULL)
        return NULL;
    struct lfs_grant *grants = (struct lfs_grant *)blob;
    char *p = blob + in->ngrants * sizeof(struct lfs_grant);
#define PUT(dst, src)                                                                              \
    do {                                                                                           \
        if ((src) == NULL) {                                                                       \
            (dst) = NULL;                                                                          \
        } else {                                                                                   \
            size_t n_ = strlen(src) + 1;                                                           \
            memcpy(p, (src), n_);                                                                  \
            (dst) = p;                                                                             \
            p += n_;                                                                               \
        }                                                                                          \
    } while (0)
    *out = (struct lfs_identity){.expires = in->expires, .ngrants = in->ngrants};
    PUT(out->id, in->id);
    PUT(out->name, in->name);
    PUT(out->email, in->email);
    for (size_t i = 0; i < in->ngrants; i++) {
        grants[i] = (struct lfs_grant){.perms = in->grants[i].perms};
        PUT(grants[i].org_path, in->grants[i].org_path);
        PUT(grants[i].repo, in->grants[i].repo);
    }
#undef PUT
    out->grants = in->ngrants > 0 ? grants : NULL;
    return blob;
}

/* GitHub's permission name -> LFS rights, as giftless. */
unsigned lfs_auth_github_perms(const char *permission)
{
    if (permission == NULL)
        return 0;
    if (strcmp(permission, "admin") == 0 || strcmp(permission, "write") == 0)
        return LFS_PERM_ALL;
    if (strcmp(permission, "read") == 0)
        return LFS_PERM_READ | LFS_PERM_READ_META;
    return 0;
}

/* ---- lookups ---- */

/* Frees a lookup already out of flights.list (cancelling its call, if any). Owner thread. */
static void lookup_free(struct gh_lookup *l)
{
    if (h2o_linklist_is_linked(&l->link))
        h2o_linklist_unlink(&l->link);
    if (l->auth_header != NULL)
        OPENSSL_cleanse(l->auth_header, strlen(l->auth_header));
    h2o_mem_clear_pool(&l->pool);
    gh_destroy(&l->gh->base);
    free(l);
}

/* The lookup in flight with seq, or NULL. Under flights.mu. */
static struct gh_lookup *flight_by_seq(uint64_t seq)
{
    for (h2o_linklist_t *n = flights.list.next; n != &flights.list; n = n->next) {
        struct gh_lookup *l = H2O_STRUCT_FROM_MEMBER(struct gh_lookup, flight_link, n);
        if (l->seq == seq)
            return l;
    }
    return NULL;
}

static void waiter_dispose(void *p)
{
    struct gh_waiter *w = p;
    struct gh_lookup *l = w->lookup;
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
    if (w->remote) {
        pthread_mutex_lock(&flights.mu);
        struct gh_lookup *f = w->done ? NULL : flight_by_seq(w->seq);
        if (f != NULL)
            f->remote_waiters--;
        pthread_mutex_unlock(&flights.mu);
        return;
    }
    if (l == NULL || l->completing || !h2o_linklist_is_empty(&l->waiters))
        return;
    /* The last request of this thread waiting went away: unless another thread's request
     * waits too, nobody needs the answer (a cancelled HTTP call goes with the pool). */
    pthread_mutex_lock(&flights.mu);
    bool cancel = l->remote_waiters == 0;
    if (cancel)
        h2o_linklist_unlink(&l->flight_link);
    pthread_mutex_unlock(&flights.mu);
    if (cancel)
        lookup_free(l);
}

/* Ends the lookup: its failure is recorded for remote waiters and their threads are woken;
 * every local waiter gets the outcome (identity from the lookup's pool when rc is 1, else
 * err) and is resumed; then the lookup is freed. Owner thread. */
static void lookup_finish(struct gh_lookup *l, int rc, const struct lfs_identity *identity,
                          const struct lfs_error *err)
{
    l->completing = true;
    pthread_mutex_lock(&flights.mu);
    h2o_linklist_unlink(&l->flight_link);
    if (l->remote_waiters > 0) {
        struct gh_result *o = &flights.outcomes[l->seq % OUTCOME_SLOTS];
        free(o->blob);
        *o = (struct gh_result){.seq = l->seq, .rc = rc};
        if (rc != 1)
            o->err = *err;
        else if ((o->blob = identity_blob(identity, &o->identity)) == NULL)
            o->seq = 0; /* out of memory: its waiters run the chain again */
    }
    for (h2o_linklist_t *n = flights.threads.next; n != &flights.threads; n = n->next) {
        struct gh_thread *t = H2O_STRUCT_FROM_MEMBER(struct gh_thread, link, n);
        if (t != l->owner && t->has_remote && !t->wake_sent) {
            t->wake_sent = true;
            h2o_multithread_send_message(&t->receiver, &t->wake);
        }
    }
    pthread_mutex_unlock(&flights.mu);
    while (!h2o_linklist_is_empty(&l->waiters)) {
        /* The first each time: a resumed request may end and dispose others. */
        struct gh_waiter *w = H2O_STRUCT_FROM_MEMBER(struct gh_waiter, link, l->waiters.next);
        h2o_linklist_unlink(&w->link);
        w->lookup = NULL;
        w->done = true;
        w->rc = rc;
        if (rc == 1)
            identity_copy(w->pool, identity, &w->identity);
        else
            w->err = *err;
        w->wait->resume(w->wait->arg);
    }
    lookup_free(l);
}

/* Another thread finished lookups: resumes this thread's requests that waited on them, with
 * the outcome from flights.outcomes (or, when its slot was reused meanwhile, to run the chain
 * again: the cache, or a new lookup, answers). */
static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct gh_thread *th = H2O_STRUCT_FROM_MEMBER(struct gh_thread, receiver, receiver);
    h2o_linklist_t ready;
    h2o_linklist_init_anchor(&ready);
    pthread_mutex_lock(&flights.mu);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    th->wake_sent = false;
    for (h2o_linklist_t *n = th->remote.next; n != &th->remote;) {
        struct gh_waiter *w = H2O_STRUCT_FROM_MEMBER(struct gh_waiter, link, n);
        n = n->next;
        if (flight_by_seq(w->seq) != NULL)
            continue;
        h2o_linklist_unlink(&w->link);
        h2o_linklist_insert(&ready, &w->link);
        const struct gh_result *o = &flights.outcomes[w->seq % OUTCOME_SLOTS];
        w->done = o->seq == w->seq;
        if (w->done) {
            w->rc = o->rc;
            if (o->rc == 1)
                identity_copy(w->pool, &o->identity, &w->identity);
            else
                w->err = o->err;
        }
    }
    th->has_remote = !h2o_linklist_is_empty(&th->remote);
    pthread_mutex_unlock(&flights.mu);
    while (!h2o_linklist_is_empty(&ready)) {
        struct gh_waiter *w = H2O_STRUCT_FROM_MEMBER(struct gh_waiter, link, ready.next);
        h2o_linklist_unlink(&w->link);
        if (!w->done)
            w->remote = false; /* its lookup is gone: nothing to count down on disposal */
        w->wait->resume(w->wait->arg);
    }
}

static struct gh_thread *thread_get(h2o_context_t *ctx)
{
    struct gh_thread *th = gh_thread;
    if (th != NULL && th->ctx == ctx)
        return th;
    lfs_auth_thread_cleanup(); /* a thread that moved to another context starts afresh */
    if ((th = calloc(1, sizeof(*th))) == NULL)
        return NULL;
    th->ctx = ctx;
    h2o_linklist_init_anchor(&th->lookups);
    h2o_linklist_init_anchor(&th->remote);
    h2o_multithread_register_receiver(ctx->queue, &th->receiver, on_wake);
    pthread_mutex_lock(&flights.mu);
    h2o_linklist_insert(&flights.threads, &th->link);
    pthread_mutex_unlock(&flights.mu);
    gh_thread = th;
    return th;
}

void lfs_auth_thread_cleanup(void)
{
    struct gh_thread *th = gh_thread;
    if (th == NULL)
        return;
    /* Lookups still running here (for other threads' requests) end with an error for them. */
    while (!h2o_linklist_is_empty(&th->lookups)) {
        struct gh_lookup *l = H2O_STRUCT_FROM_MEMBER(struct gh_lookup, link, th->lookups.next);
        struct lfs_error err;
        lfs_error_set(&err, 503, "the worker thread asking GitHub stopped; try again");
        lookup_finish(l, -1, NULL, &err);
    }
    gh_thread = NULL;
    pthread_mutex_lock(&flights.mu);
    h2o_linklist_unlink(&th->link);
    pthread_mutex_unlock(&flights.mu);
    /* No thread sends to us any more: drop a wake-up still queued, then the receiver. */
    if (h2o_linklist_is_linked(&th->wake.link))
        h2o_linklist_unlink(&th->wake.link);
    h2o_multithread_unregister_receiver(th->ctx->queue, &th->receiver);
    while (!h2o_linklist_is_empty(&th->remote))
        h2o_linklist_unlink(th->remote.next);
    free(th);
}

static void count_call(enum gh_endpoint ep, enum gh_outcome out)
{
    atomic_fetch_add(&calls[ep][out], 1);
}

/* Ends the lookup with a failure of its own making (not GitHub's state): counts the call. */
static void lookup_fail(struct gh_lookup *l, enum gh_endpoint ep, enum gh_outcome outcome,
                        int status, const char *message)
{
    struct lfs_error err;
    count_call(ep, outcome);
    lfs_error_set(&err, status, "%s", message);
    lookup_finish(l, -1, NULL, &err);
}

static long parse_seconds(const char *s)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end == '\0' && v >= 0 ? (long)(v > 1000000000000LL ? 1000000000000LL : v) : -1;
}

long lfs_auth_github_rate_limit(const struct lfs_http_response *res)
{
    if (res->status != 403 && res->status != 429)
        return 0;
    long retry = parse_seconds(res->retry_after);
    bool exhausted = res->ratelimit_remaining != NULL && strcmp(res->ratelimit_remaining, "0") == 0;
    if (retry < 0 && !exhausted && res->status != 429)
        return 0;
    if (retry < 0) {
        long reset = parse_seconds(res->ratelimit_reset);
        time_t now = time(NULL);
        retry = reset > now ? reset - now : DEFAULT_RETRY_AFTER;
    }
    return retry < 1 ? 1 : retry > MAX_RETRY_AFTER ? MAX_RETRY_AFTER : retry;
}

/* Classifies a failed call (anything but the answers the caller handles): fills err with a
 * 503 naming GitHub, and counts the call. */
static void call_failed(struct gh_lookup *l, enum gh_endpoint ep, const char *what,
                        const struct lfs_http_response *res, const struct lfs_error *cerr,
                        struct lfs_error *err)
{
    long wait = cerr == NULL ? lfs_auth_github_rate_limit(res) : 0;
    if (wait > 0) {
        count_call(ep, OUT_RATE_LIMITED);
        limited_set(l->user_key, (long long)time(NULL) + wait);
        lfs_error_set(err, 503,
                      "GitHub API rate limit reached (HTTP %ld from %s); lfsgate cannot check "
                      "GitHub permissions for %ld s, try again after that",
                      res->status, what, wait);
        lfs_log(LFS_LOG_WARN, "github auth: rate limited by %s for %ld s", l->gh->api_url, wait);
        return;
    }
    count_call(ep, OUT_ERROR);
    if (cerr != NULL)
        lfs_error_set(err, 503, "GitHub API unreachable (%s): %s; try again later", what,
                      cerr->message);
    else
        lfs_error_set(err, 503,
                      "GitHub API answered HTTP %ld to %s; permissions cannot be checked now, "
                      "try again later",
                      res->status, what);
}

static void get(struct gh_lookup *l, const char *url, lfs_http_cb cb)
{
    struct lfs_io io = {.ctx = l->owner->ctx, .pool = &l->pool};
    struct lfs_http_request req = {
        .method = "GET",
        .url = url,
        .headers = {"Accept: application/vnd.github+json", "User-Agent: lfsgate/" LFSGATE_VERSION,
                    l->auth_header, l->gh->version_header},
        .timeout_ms = l->gh->timeout_ms,
        .store = "GitHub API",
    };
    lfs_http_fetch(&io, &req, cb, l);
}

/* Percent-encodes one path segment into the pool. */
static const char *segment(h2o_mem_pool_t *pool, const char *s)
{
    size_t n = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, 3 * n + 1);
    lfs_url_encode(s, n, out);
    return out;
}

/* Ends the lookup with l->user holding `perms` on the repository (none: an identity without
 * grants, refused 403 naming it), cached for auth_write_ttl or auth_other_ttl. */
static void lookup_grant(struct gh_lookup *l, unsigned perms)
{
    struct lfs_grant grant = {.org_path = l->org, .repo = l->repo, .perms = perms};
    struct lfs_identity id = l->user;
    id.grants = perms != 0 ? &grant : NULL;
    id.ngrants = perms != 0 ? 1 : 0;
    time_t now = time(NULL);
    long ttl = (perms & LFS_PERM_WRITE) ? l->gh->auth_write_ttl : l->gh->auth_other_ttl;
    if (l->gh->grants != NULL)
        lfs_auth_token_cache_put(l->gh->grants, l->grant_key, now, now + ttl, &id);
    lookup_finish(l, 1, &id, NULL);
}

int lfs_auth_github_permission_parse(h2o_iovec_t body, unsigned *perms)
{
    json_t *root = json_loadb(body.base, body.len, 0, NULL);
    const json_t *p = json_object_get(root, "permission");
    int rc = json_is_string(p) ? 0 : -1;
    *perms = rc == 0 ? lfs_auth_github_perms(json_string_value(p)) : 0;
    json_decref(root);
    return rc;
}

static void on_permission(void *arg, const struct lfs_http_response *res,
                          const struct lfs_error *cerr)
{
    struct gh_lookup *l = arg;
    struct lfs_error err = {0};
    unsigned perms = 0;
    if (cerr == NULL && res->status == 200) {
        if (lfs_auth_github_permission_parse(res->body, &perms) < 0) {
            lookup_fail(l, EP_PERMISSION, OUT_ERROR, 502,
                        "GitHub API answer to the collaborator permission query has no "
                        "\"permission\"; is api_url a GitHub API?");
            return;
        }
        count_call(EP_PERMISSION, OUT_OK);
    } else if (cerr == NULL && res->status == 401) {
        /* The token stopped working since its user was cached. */
        lookup_fail(l, EP_PERMISSION, OUT_UNAUTHORIZED, 401, TOKEN_REFUSED);
        return;
    } else if (cerr == NULL && (res->status == 404 || res->status == 403) &&
               lfs_auth_github_rate_limit(res) == 0) {
        /* Not a collaborator, or a repository the token cannot see: no rights (giftless). */
        count_call(EP_PERMISSION, OUT_DENIED);
    } else {
        call_failed(l, EP_PERMISSION, "the collaborator permission query", res, cerr, &err);
        lookup_finish(l, -1, NULL, &err);
        return;
    }
    lookup_grant(l, perms);
}

static void ask_permission(struct gh_lookup *l)
{
    struct lfs_strbuf url = {.buf = NULL};
    size_t cap =
        strlen(l->gh->api_url) + 3 * (strlen(l->org) + strlen(l->repo) + strlen(l->user.id)) + 64;
    url.buf = h2o_mem_alloc_pool(&l->pool, cap);
    url.cap = cap;
    url.buf[0] = '\0';
    lfs_strbuf_adds(&url, l->gh->api_url);
    lfs_strbuf_adds(&url, "/repos/");
    lfs_strbuf_adds(&url, segment(&l->pool, l->org));
    lfs_strbuf_adds(&url, "/");
    lfs_strbuf_adds(&url, segment(&l->pool, l->repo));
    lfs_strbuf_adds(&url, "/collaborators/");
    lfs_strbuf_adds(&url, segment(&l->pool, l->user.id));
    lfs_strbuf_adds(&url, "/permission");
    get(l, url.buf, on_permission);
}

/* A JSON string member copied into the pool, or NULL. */
static const char *member(h2o_mem_pool_t *pool, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? pool_dup(pool, json_string_value(v)) : NULL;
}

/* No rights: an identity without grants, refused 403 naming it. */
static void deny(struct gh_lookup *l)
{
    lookup_grant(l, 0);
}

/* Handles every answer of a call but a 200 (counted, returns false: the caller reads it):
 * 401 (the token is refused), the call's own `denied` status that is not a rate limit
 * (counted, then on_denied), GitHub failing, unreachable or rate limiting. Returns true when
 * it handled the answer. */
static bool answer_failed(struct gh_lookup *l, enum gh_endpoint ep, const char *what,
                          const struct lfs_http_response *res, const struct lfs_error *cerr,
                          long denied, void (*on_denied)(struct gh_lookup *))
{
    if (cerr == NULL && res->status == 200) {
        count_call(ep, OUT_OK);
        return false;
    }
    if (cerr == NULL && res->status == 401) {
        lookup_fail(l, ep, OUT_UNAUTHORIZED, 401, TOKEN_REFUSED);
        return true;
    }
    if (cerr == NULL && res->status == denied && lfs_auth_github_rate_limit(res) == 0) {
        count_call(ep, OUT_DENIED);
        on_denied(l);
        return true;
    }
    struct lfs_error err = {0};
    call_failed(l, ep, what, res, cerr, &err);
    lookup_finish(l, -1, NULL, &err);
    return true;
}

/* ---- GitHub App installation tokens ---- */

const char *lfs_auth_github_next_link(h2o_mem_pool_t *pool, const char *link, const char *api_url)
{
    for (const char *p = link; p != NULL && (p = strchr(p, '<')) != NULL;) {
        const char *close = strchr(p, '>');
        if (close == NULL)
            return NULL;
        const char *next = strchr(close, '<');
        size_t plen = next != NULL ? (size_t)(next - close) : strlen(close);
        size_t alen = strlen(api_url);
        if (h2o_strstr(close, plen, H2O_STRLIT("rel=\"next\"")) != SIZE_MAX &&
            (size_t)(close - p - 1) > alen && strncmp(p + 1, api_url, alen) == 0 &&
            p[1 + alen] == '/')
            return h2o_strdup(pool, p + 1, (size_t)(close - p - 1)).base;
        p = next;
    }
    return NULL;
}

static void on_repositories(void *arg, const struct lfs_http_response *res,
                            const struct lfs_error *cerr);

static void ask_repositories(struct gh_lookup *l, const char *url)
{
    l->pages++;
    get(l, url, on_repositories);
}

bool lfs_auth_github_repositories_find(h2o_iovec_t body, const char *org, const char *repo,
                                       bool all)
{
    json_t *root = json_loadb(body.base, body.len, 0, NULL);
    size_t i;
    const json_t *r;
    bool found = false;
    json_array_foreach(json_object_get(root, "repositories"), i, r)
    {
        const json_t *name = json_object_get(r, "name");
        const json_t *owner = json_object_get(json_object_get(r, "owner"), "login");
        if (!json_is_string(owner) || strcmp(json_string_value(owner), org) != 0)
            continue;
        if (all || (json_is_string(name) && strcmp(json_string_value(name), repo) == 0))
            found = true;
    }
    json_decref(root);
    return found;
}

/* A page of the repositories the installation token reaches: the repository found (or, for
 * an installation on all the org's repositories, any of the org's: the token is proven to be
 * an installation of that org) grants the installation's rights; otherwise the next page. */
static void on_repositories(void *arg, const struct lfs_http_response *res,
                            const struct lfs_error *cerr)
{
    struct gh_lookup *l = arg;
    /* 403: not an installation token (a user token sent with an app's name) */
    if (answer_failed(l, EP_INSTALLATION_REPOS, "GET /installation/repositories", res, cerr, 403,
                      deny))
        return;
    bool found = lfs_auth_github_repositories_find(res->body, l->org, l->repo, l->app_all);
    const char *next = found || l->pages >= MAX_PAGES || res->link == NULL
                           ? NULL
                           : lfs_auth_github_next_link(&l->pool, res->link, l->gh->api_url);
    if (next != NULL)
        ask_repositories(l, next);
    else
        lookup_grant(l, found ? l->app_perms : 0);
}

/* Whether the installation `inst` is the one the Basic user names: its id, app id, client
 * id or slug. */
static bool installation_named(const json_t *inst, const char *user)
{
    static const char *const keys[] = {"id", "app_id", "client_id", "app_slug"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const json_t *v = json_object_get(inst, keys[k]);
        char num[32];
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            if (strcmp(num, user) == 0)
                return true;
        } else if (json_is_string(v) && json_string_length(v) > 0 &&
                   strcmp(json_string_value(v), user) == 0) {
            return true;
        }
    }
    return false;
}

bool lfs_auth_github_installation_find(h2o_iovec_t body, const char *basic_user,
                                       h2o_mem_pool_t *pool,
                                       struct lfs_auth_github_installation *out)
{
    *out = (struct lfs_auth_github_installation){0};
    json_t *root = json_loadb(body.base, body.len, 0, NULL);
    size_t i;
    const json_t *inst, *found = NULL;
    json_array_foreach(json_object_get(root, "installations"), i, inst)
    {
        if (found == NULL && installation_named(inst, basic_user))
            found = inst;
    }
    if (found != NULL) {
        const json_t *contents = json_object_get(json_object_get(found, "permissions"), "contents");
        const json_t *selection = json_object_get(found, "repository_selection");
        const char *slug = member(pool, found, "app_slug");
        if (slug != NULL && lfs_segment_valid(slug, strlen(slug)))
            out->slug = slug;
        out->perms =
            lfs_auth_github_perms(json_is_string(contents) ? json_string_value(contents) : NULL);
        out->all = json_is_string(selection) && strcmp(json_string_value(selection), "all") == 0;
    }
    json_decref(root);
    return found != NULL;
}

static void on_installations(void *arg, const struct lfs_http_response *res,
                             const struct lfs_error *cerr)
{
    struct gh_lookup *l = arg;
    if (answer_failed(l, EP_INSTALLATIONS, "GET /orgs/{org}/installations", res, cerr, 404, deny))
        return;
    struct lfs_auth_github_installation inst;
    if (!lfs_auth_github_installation_find(res->body, l->basic_user, &l->pool, &inst)) {
        lookup_grant(l, 0); /* l->user names the app as given */
        return;
    }
    if (inst.slug != NULL) {
        size_t n = strlen(inst.slug) + sizeof("[bot]");
        char *id = h2o_mem_alloc_pool(&l->pool, n);
        snprintf(id, n, "%s[bot]", inst.slug);
        l->user = (struct lfs_identity){.id = id, .name = inst.slug};
    }
    l->app_perms = inst.perms;
    l->app_all = inst.all;
    if (l->app_perms == 0) {
        lookup_grant(l, 0);
        return;
    }
    size_t n = strlen(l->gh->api_url) + sizeof("/installation/repositories?per_page=100");
    char *url = h2o_mem_alloc_pool(&l->pool, n);
    snprintf(url, n, "%s/installation/repositories?per_page=100", l->gh->api_url);
    ask_repositories(l, url);
}

/* An installation token: the installation the Basic user names, among the org's. */
static void ask_installations(struct gh_lookup *l)
{
    if (l->basic_user[0] == '\0') {
        struct lfs_error err; /* no call made: nothing to count */
        lfs_error_set(&err, 401,
                      "a GitHub App installation token is sent as the Basic password with the "
                      "installation's id, app id, client id or app slug as the user name");
        lookup_finish(l, -1, NULL, &err);
        return;
    }
    l->user = (struct lfs_identity){.id = l->basic_user, .name = l->basic_user};
    size_t n = strlen(l->gh->api_url) + 3 * strlen(l->org) + sizeof("/orgs//installations");
    char *url = h2o_mem_alloc_pool(&l->pool, n);
    snprintf(url, n, "%s/orgs/%s/installations", l->gh->api_url, segment(&l->pool, l->org));
    get(l, url, on_installations);
}

int lfs_auth_github_user_parse(h2o_iovec_t body, h2o_mem_pool_t *pool, struct lfs_identity *out)
{
    json_t *root = json_loadb(body.base, body.len, 0, NULL);
    const char *login = member(pool, root, "login");
    int rc = -1;
    if (login != NULL && lfs_segment_valid(login, strlen(login))) {
        const char *name = member(pool, root, "name");
        *out = (struct lfs_identity){.id = login,
                                     .name = name != NULL && *name ? name : login,
                                     .email = member(pool, root, "email")};
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static void on_user(void *arg, const struct lfs_http_response *res, const struct lfs_error *cerr)
{
    struct gh_lookup *l = arg;
    /* 403 "Resource not accessible by integration": an app installation token */
    if (answer_failed(l, EP_USER, "GET /user", res, cerr, 403, ask_installations))
        return;
    if (lfs_auth_github_user_parse(res->body, &l->pool, &l->user) < 0) {
        lookup_fail(l, EP_USER, OUT_ERROR, 502,
                    "GitHub API answer to GET /user has no usable \"login\"; is api_url a "
                    "GitHub API?");
        return;
    }
    time_t now = time(NULL);
    if (l->gh->users != NULL)
        lfs_auth_token_cache_put(l->gh->users, l->user_key, now, now + l->gh->token_ttl, &l->user);
    ask_permission(l);
}

/* The lookup in flight for (provider, key) on any thread, or NULL. Under flights.mu. */
static struct gh_lookup *flight_find(const struct lfs_auth_github *gh, const unsigned char *key)
{
    for (h2o_linklist_t *n = flights.list.next; n != &flights.list; n = n->next) {
        struct gh_lookup *l = H2O_STRUCT_FROM_MEMBER(struct gh_lookup, flight_link, n);
        if (l->gh == gh && CRYPTO_memcmp(l->grant_key, key, LFS_AUTH_TOKEN_CACHE_KEY_LEN) == 0)
            return l;
    }
    return NULL;
}

/* A new lookup owned by th, in flights.list. Under flights.mu. */
static struct gh_lookup *lookup_start(struct lfs_auth_github *gh, struct gh_thread *th,
                                      const char *tok, size_t len, const char *user,
                                      const char *org, const char *repo, const unsigned char *gkey)
{
    struct gh_lookup *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    h2o_mem_init_pool(&l->pool);
    l->gh = gh;
    atomic_fetch_add(&gh->refs, 1);
    l->owner = th;
    l->seq = ++flights.seq;
    h2o_linklist_init_anchor(&l->waiters);
    memcpy(l->grant_key, gkey, LFS_AUTH_TOKEN_CACHE_KEY_LEN);
    lfs_auth_token_cache_key(tok, len, l->user_key);
    l->org = pool_dup(&l->pool, org);
    l->repo = pool_dup(&l->pool, repo);
    l->basic_user = pool_dup(&l->pool, user);
    size_t hn = sizeof("Authorization: Bearer ") + len;
    l->auth_header = h2o_mem_alloc_pool(&l->pool, hn);
    snprintf(l->auth_header, hn, "Authorization: Bearer %.*s", (int)len, tok);
    h2o_linklist_insert(&th->lookups, &l->link);
    h2o_linklist_insert(&flights.list, &l->flight_link);
    return l;
}

/* Starts the lookup's first call: the org's installations for an installation token (ghs_),
 * else the permission when the token's user is cached, else /user. Called once
 * the first waiter is linked, so a synchronous failure finds it. */
static void lookup_run(struct gh_lookup *l, bool installation)
{
    if (installation) {
        ask_installations(l);
        return;
    }
    if (l->gh->users != NULL &&
        lfs_auth_token_cache_get(l->gh->users, l->user_key, time(NULL), &l->pool, &l->user) == 1) {
        ask_permission(l);
        return;
    }
    size_t n = strlen(l->gh->api_url) + sizeof("/user");
    char *url = h2o_mem_alloc_pool(&l->pool, n);
    snprintf(url, n, "%s/user", l->gh->api_url);
    get(l, url, on_user);
}

static int gh_authenticate(struct lfs_auth *auth, const struct lfs_auth_request *req,
                           h2o_mem_pool_t *pool, struct lfs_identity *out, struct lfs_error *err)
{
    struct lfs_auth_github *gh = (struct lfs_auth_github *)auth;
    const char *tok = NULL, *user = "";
    size_t len = 0;
    if (req->nauthorization != 1 ||
        credential_token(req->authorization[0], pool, &tok, &len, &user) == 0)
        return 0;
    if (len > MAX_TOKEN || !token_chars_valid(tok, len))
        return lfs_error_set(err, 401,
                             "the password is not a GitHub token (longer than %d bytes, or "
                             "with spaces or control characters)",
                             MAX_TOKEN);
    if (req->org_path == NULL || req->repo == NULL)
        return lfs_error_set(err, 401, "a GitHub token is checked for a repository only");
    if (strchr(req->org_path, '/') != NULL)
        return lfs_error_set(err, 404,
                             "repository \"%s/%s\" cannot be on GitHub: GitHub repositories are "
                             "<org>/<repo>, without nested groups; use the URL "
                             "<server>/<org>/<repo>.git/info/lfs",
                             req->org_path, req->repo);
    if (!restrict_allows(gh, req->org_path, req->repo))
        return lfs_error_set(err, 403,
                             "repository %s/%s is not served by this server (the GitHub "
                             "provider's restrict_to does not list it)",
                             req->org_path, req->repo);
    unsigned char gkey[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    grant_key(tok, len, user, req->org_path, req->repo, gkey);

    /* The outcome of the lookup this request waited for. */
    struct gh_waiter *w = req->wait != NULL ? req->wait->provider_state : NULL;
    if (w != NULL && w->done && w->gh == gh &&
        CRYPTO_memcmp(w->grant_key, gkey, sizeof(gkey)) == 0) {
        if (w->rc == 1) {
            *out = w->identity;
            return 1;
        }
        if (err != NULL)
            *err = w->err;
        if (w->err.status == 503) {
            unsigned char ukey[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
            lfs_auth_token_cache_key(tok, len, ukey);
            req->wait->retry_after = (int)limited_for(ukey);
        }
        return -1;
    }
    if (gh->grants != NULL &&
        lfs_auth_token_cache_get(gh->grants, gkey, req->now, pool, out) == 1) {
        atomic_fetch_add(&cache_hits, 1);
        return 1;
    }
    atomic_fetch_add(&cache_misses, 1);
    unsigned char ukey[LFS_AUTH_TOKEN_CACHE_KEY_LEN];
    lfs_auth_token_cache_key(tok, len, ukey);
    long left = limited_for(ukey);
    if (left > 0) {
        if (req->wait != NULL)
            req->wait->retry_after = (int)left;
        return lfs_error_set(err, 503,
                             "GitHub API rate limit reached for this token; lfsgate cannot check "
                             "its GitHub permissions for %ld s, try again after that",
                             left);
    }
    if (req->wait == NULL || req->wait->ctx == NULL)
        return lfs_error_set(err, 500,
                             "internal error: the GitHub provider needs an asynchronous caller");
    struct gh_thread *th = thread_get(req->wait->ctx);
    if (th == NULL)
        return lfs_error_set(err, 503, "out of memory starting a GitHub lookup; try again");
    w = h2o_mem_alloc_shared(pool, sizeof(*w), waiter_dispose);
    *w = (struct gh_waiter){.gh = gh, .pool = pool, .wait = req->wait};
    memcpy(w->grant_key, gkey, sizeof(gkey));
    pthread_mutex_lock(&flights.mu);
    struct gh_lookup *l = flight_find(gh, gkey);
    bool start = l == NULL;
    if (start &&
        (l = lookup_start(gh, th, tok, len, user, req->org_path, req->repo, gkey)) == NULL) {
        pthread_mutex_unlock(&flights.mu);
        return lfs_error_set(err, 503, "out of memory starting a GitHub lookup; try again");
    }
    if (l->owner == th) {
        w->lookup = l;
        h2o_linklist_insert(&l->waiters, &w->link);
    } else {
        /* Another thread asks GitHub already: wait for its answer. */
        w->remote = true;
        w->seq = l->seq;
        l->remote_waiters++;
        h2o_linklist_insert(&th->remote, &w->link);
        th->has_remote = true;
    }
    pthread_mutex_unlock(&flights.mu);
    req->wait->provider_state = w;
    if (start)
        lookup_run(l, len > 4 && memcmp(tok, "ghs_", 4) == 0);
    return LFS_AUTH_PENDING;
}

/* ---- metrics ---- */

static char *render_metrics(size_t *len)
{
    size_t cap = 4096;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t n = (size_t)snprintf(buf, cap,
                                "# HELP lfsgate_github_api_calls_total Calls of the GitHub auth "
                                "provider to the GitHub API, by endpoint and outcome.\n"
                                "# TYPE lfsgate_github_api_calls_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int o = 0; o < OUT_COUNT && n < cap; o++)
            n += (size_t)snprintf(buf + n, cap - n,
                                  "lfsgate_github_api_calls_total{endpoint=\"%s\",outcome=\"%s\"} "
                                  "%llu\n",
                                  endpoint_names[e], outcome_names[o],
                                  (unsigned long long)atomic_load(&calls[e][o]));
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n,
                              "# HELP lfsgate_github_cache_hits_total Requests the GitHub auth "
                              "provider answered from its cache.\n"
                              "# TYPE lfsgate_github_cache_hits_total counter\n"
                              "lfsgate_github_cache_hits_total %llu\n"
                              "# HELP lfsgate_github_cache_misses_total Requests the GitHub auth "
                              "provider had to look up.\n"
                              "# TYPE lfsgate_github_cache_misses_total counter\n"
                              "lfsgate_github_cache_misses_total %llu\n",
                              (unsigned long long)atomic_load(&cache_hits),
                              (unsigned long long)atomic_load(&cache_misses));
    *len = n < cap ? n : cap - 1;
    return buf;
}

static const char *const factories[] = {"giftless.auth.github:factory", NULL};

const struct lfs_auth_ops lfs_auth_github_ops = {
    .name = "github",
    .factories = factories,
    .create = gh_create,
    .destroy = gh_destroy,
    .authenticate = gh_authenticate,
};
