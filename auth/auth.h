/* Identity and permissions, and the auth provider plugins that produce identities from a
 * request's credentials. A provider is one const struct lfs_auth_ops selected by name
 * (short name or giftless factory string) from AUTH_PROVIDERS; providers are tried in
 * order and the first that recognises a credential decides. */
#ifndef LFS_AUTH_AUTH_H
#define LFS_AUTH_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>

#include "common/error.h"

/* Permissions, as giftless: read implies read-meta for the scope grammar, but each bit is
 * checked on its own here. */
enum lfs_perm {
    LFS_PERM_READ_META = 1u << 0, /* verify, existence */
    LFS_PERM_READ = 1u << 1,      /* download */
    LFS_PERM_WRITE = 1u << 2,     /* upload */
};
#define LFS_PERM_ALL (LFS_PERM_READ_META | LFS_PERM_READ | LFS_PERM_WRITE)

/* One rule: `perms` on objects matching all three parts. A NULL part is a wildcard.
 * org_path is matched whole ("a/b" matches only "a/b"). */
struct lfs_grant {
    const char *org_path;
    const char *repo;
    const char *oid;
    unsigned perms;
    /* Set on grants from a pre-authorized action token (see lfs_identity_is_action_token). */
    bool action_token;
};

/* Who is asking and what they may do. Strings and grants live in the request pool (or, for
 * cached identities, as long as the provider's cache entry; see the provider). */
struct lfs_identity {
    const char *id;    /* `sub`, or "anonymous"; never NULL once authenticated */
    const char *name;  /* display name; defaults to id */
    const char *email; /* may be NULL */
    const struct lfs_grant *grants;
    size_t ngrants;
    time_t expires; /* 0 = no expiry */
};

/* True when some grant gives `perm` (one or more bits, all required) on the object.
 * oid NULL asks for the right on the whole repository: only grants whose oid is a wildcard
 * count. Any thread. */
bool lfs_identity_allows(const struct lfs_identity *identity, const char *org_path,
                         const char *repo, const char *oid, unsigned perm);

struct lfs_auth_wait;

/* Credentials of one request, as server/ extracted them. All views into the request;
 * nothing is owned. */
struct lfs_auth_request {
    const h2o_iovec_t *authorization; /* every Authorization header value, in order */
    size_t nauthorization;
    h2o_iovec_t query_jwt; /* ?jwt= value, percent-decoded; base NULL when absent */
    time_t now;
    /* The repository the request is for (the route's), NULL for routes without one.
     * Providers that ask a remote service what the caller may do there (github) need it;
     * the others ignore it. */
    const char *org_path;
    const char *repo;
    /* Lets a provider answer later (LFS_AUTH_PENDING); NULL when the caller cannot wait. */
    struct lfs_auth_wait *wait;
};

/* What authenticate returns when the answer needs a remote lookup: the provider started (or
 * joined) one on the loop of wait->ctx and will call wait->resume(wait->arg) exactly once, on
 * that loop thread, when it completed (before authenticate returned only when the lookup
 * failed at once, e.g. a malformed API URL: the caller must do nothing after a
 * LFS_AUTH_PENDING but return). The caller then
 * runs the chain again with the same wait, and the provider answers from the outcome it kept
 * in wait->provider_state. Disposing the request pool first cancels the wait (no call). */
#define LFS_AUTH_PENDING 2

/* One request's hold on asynchronous providers. Allocated by the caller from the request pool
 * and zeroed, then ctx, resume and arg set; reused for every run of the chain of the request. */
struct lfs_auth_wait {
    struct st_h2o_context_t *ctx; /* the worker's context: lookups run on its loop */
    void (*resume)(void *arg);
    void *arg;
    void *provider_state; /* the provider's, in the request pool */
    /* Out: with a 503 because the remote service is rate limiting us, the seconds to send as
     * Retry-After (0: none). */
    int retry_after;
};

struct lfs_auth;

/* Begins with the members of struct lfs_plugin_names (common/plugin.h): name, aliases. */
struct lfs_auth_ops {
    const char *name;             /* native name, e.g. "allow_anon:read_only", "jwt" */
    const char *const *factories; /* NULL-terminated giftless factory strings it answers to */
    /* Builds a provider from its `options` mapping (may be NULL); `path` is the options' key
     * path for messages. Returns 0 and *out, or -1 and err. Main thread, at startup. */
    int (*create)(const json_t *options, const char *path, struct lfs_auth **out,
                  struct lfs_error *err);
    void (*destroy)(struct lfs_auth *auth);
    /* Returns 1 and fills *out when it accepts a credential; 0 when the request carries no
     * credential it recognises (the next provider is tried); -1 when a credential is its own
     * but invalid (err->status 401 and a message saying what is wrong, never the token; a
     * provider that asks a remote service may answer 403, a 4xx for a repository it cannot
     * serve, or 503 when the service is down); LFS_AUTH_PENDING (see there).
     * Allocates from pool. Called concurrently from every worker thread. */
    int (*authenticate)(struct lfs_auth *auth, const struct lfs_auth_request *req,
                        h2o_mem_pool_t *pool, struct lfs_identity *out, struct lfs_error *err);
    /* True for providers that accept a request without looking at its credentials
     * (anonymous access): the chain skips them once a credential was rejected, so that a
     * bad token is answered 401 rather than served as anonymous. */
    bool without_credentials;
};

/* Every provider embeds this as its first member. */
struct lfs_auth {
    const struct lfs_auth_ops *ops;
};

/* Looks up a provider by native name or giftless factory string; NULL if unknown. */
const struct lfs_auth_ops *lfs_auth_find(const char *name);

/* Writes "a, b, c" (native names) into buf for "valid values" messages. Returns buf. */
const char *lfs_auth_list_names(char *buf, size_t size);

/* An ordered list of providers built from AUTH_PROVIDERS (a list whose entries are a factory
 * string or {factory, options}). */
struct lfs_auth_chain {
    struct lfs_auth **providers;
    size_t count;
};

/* Builds the chain from the AUTH_PROVIDERS value (`path` is "AUTH_PROVIDERS"). Errors name
 * the entry ("AUTH_PROVIDERS[1].factory: unknown auth provider \"x\"; valid: ...").
 * Main thread, at startup. */
int lfs_auth_chain_create(const json_t *providers, const char *path, struct lfs_auth_chain *out,
                          struct lfs_error *err);
void lfs_auth_chain_destroy(struct lfs_auth_chain *chain);
/* Adds an already built provider at the front (the pre-authorized action provider goes
 * first so action tokens are checked before the user-facing providers). */
int lfs_auth_chain_prepend(struct lfs_auth_chain *chain, struct lfs_auth *provider,
                           struct lfs_error *err);

/* Runs the providers in order, each on every credential (Authorization values, then ?jwt=)
 * that no earlier provider rejected. Returns 1 with *out from the first provider that
 * accepts a credential: a provider that rejects one (an expired action token beside a valid
 * user token, as git-lfs sends them) does not stop the others from accepting theirs, but a
 * rejected credential is never shown to a later provider. Returns 0 when no provider
 * recognised a credential (caller answers 401), -1 with the first rejection's err (401)
 * when some credential was rejected and none accepted (providers marked
 * without_credentials are then not consulted), or when there are more than 16 credentials.
 * Returns LFS_AUTH_PENDING when a provider must look a credential up first (run the chain
 * again once req->wait->resume was called). Any worker thread. */
int lfs_auth_chain_authenticate(const struct lfs_auth_chain *chain,
                                const struct lfs_auth_request *req, h2o_mem_pool_t *pool,
                                struct lfs_identity *out, struct lfs_error *err);

/* Pre-authorized action tokens for hrefs that point back at this server (issue: JWT).
 * mint() returns a token granting exactly `perms` on one object of one repository for
 * `lifetime` seconds; the same provider object, prepended to the chain, accepts them. */
struct lfs_preauth {
    struct lfs_auth *provider; /* the accepting side, prepended to the auth chain */
    /* Returns 0 and a NUL-terminated token allocated from pool, or -1 and err.
     * Any worker thread. */
    int (*mint)(struct lfs_auth *provider, const struct lfs_identity *identity,
                const char *org_path, const char *repo, const char *oid, unsigned perms,
                long lifetime, h2o_mem_pool_t *pool, const char **token, struct lfs_error *err);
};

/* --- JWT (auth/jwt.c, auth/preauth.c, auth/token_cache.c) --- */

/* The jwt provider: native name "jwt", factory "giftless.auth.jwt:factory". */
extern const struct lfs_auth_ops lfs_auth_jwt_ops;

/* True when the identity came from a pre-authorized action token minted by lfsgate. Such a
 * token names one object and its action only: the server must accept it on that action's
 * own endpoint (streaming upload/download, verify) and refuse it (403) on the batch API and
 * the locks API, where lfs_identity_allows alone would let it renew itself. Any thread. */
bool lfs_identity_is_action_token(const struct lfs_identity *identity);

/* Builds the pre-authorized action token provider from the PRE_AUTHORIZED_ACTION_PROVIDER
 * value (`path` is its key path for messages): JSON null or absent -> *out = NULL (action
 * hrefs then carry no token); a factory string or {factory, options} naming the jwt provider
 * (giftless.auth.jwt:factory) with giftless's options: algorithm (default HS256),
 * private_key / private_key_file, key_id (default "giftless-internal-jwt-key"), issuer,
 * audience, leeway, default_lifetime. With no private_key, or giftless's placeholder
 * "change-me", a random 32-byte secret is generated and a warning logged (replicas then
 * reject each other's action tokens). Returns 0 and *out (free with lfs_preauth_destroy),
 * or -1 and err. Main thread, at startup. */
int lfs_preauth_create(const json_t *value, const char *path, struct lfs_preauth **out,
                       struct lfs_error *err);

/* Frees the struct and its provider. The provider's own destroy op is a no-op, so it can sit
 * in a chain (lfs_auth_chain_prepend) and lfs_auth_chain_destroy leaves it alone: destroy
 * the chain first (or stop using it), then call this. NULL is fine. Main thread. */
void lfs_preauth_destroy(struct lfs_preauth *preauth);

/* Process-wide hit and miss counts of the jwt providers' verified-token caches (every
 * lookup is one or the other), for metrics. Any thread. */
void lfs_auth_token_cache_stats(unsigned long long *hits, unsigned long long *misses);

/* --- GitHub (auth/github.c) --- */

/* The github provider: native name "github", factory "giftless.auth.github:factory". A GitHub
 * token (Basic password or Bearer) is checked against the GitHub REST API, asynchronously on
 * the worker's loop, and the caller gets the rights its permission on <org>/<repo> gives. */
extern const struct lfs_auth_ops lfs_auth_github_ops;

/* Releases the calling worker thread's part of the asynchronous providers (its wake-up
 * receiver; lookups it still runs for other threads' requests end with a 503 for them).
 * Call when the worker's loop stops, with no request of the thread in progress, before
 * lfs_storage_thread_cleanup (the lookups use its HTTP client). */
void lfs_auth_thread_cleanup(void);

#endif
