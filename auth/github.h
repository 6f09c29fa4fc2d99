/* What auth/github.c reads from the GitHub REST API's answers, apart from the lookups that
 * send the calls: the JSON of /user, of the collaborator permission query, of an org's
 * installations and of /installation/repositories, the Link header's next page and the
 * rate-limit headers. Exposed so that tests/fuzz can feed them answers no GitHub sends. */
#ifndef LFS_AUTH_GITHUB_H
#define LFS_AUTH_GITHUB_H

#include <stdbool.h>

#include "auth/auth.h"
#include "storage/http_client.h"

/* The installation an app installation token belongs to, as GET /orgs/{org}/installations
 * lists it. */
struct lfs_auth_github_installation {
    const char *slug; /* app_slug when it is a valid path segment, else NULL */
    unsigned perms;   /* what its "contents" permission gives (LFS_PERM_*), 0 for nothing */
    bool all;         /* installed on all the org's repositories */
};

/* The LFS rights a GitHub permission gives: admin or write -> all; read -> read and
 * read-meta; anything else (NULL included) -> 0. Any thread. */
unsigned lfs_auth_github_perms(const char *permission);

/* Reads a /user answer into *out (id: the login, a valid path segment; name: the name, or the
 * login when it has none; email or NULL; no grants), strings in the pool. Returns 0, or -1
 * when the answer has no usable "login". Any thread. */
int lfs_auth_github_user_parse(h2o_iovec_t body, h2o_mem_pool_t *pool, struct lfs_identity *out);

/* Reads a collaborator permission answer into *perms (lfs_auth_github_perms of its
 * "permission"). Returns 0, or -1 when it has no "permission" string. Any thread. */
int lfs_auth_github_permission_parse(h2o_iovec_t body, unsigned *perms);

/* Finds in an installations answer the installation the Basic user names (its id, app id,
 * client id or app slug) into *out, strings in the pool. Returns true when one does. Any
 * thread. */
bool lfs_auth_github_installation_find(h2o_iovec_t body, const char *basic_user,
                                       h2o_mem_pool_t *pool,
                                       struct lfs_auth_github_installation *out);

/* Whether a page of /installation/repositories lists a repository of org `org` that is
 * `repo` (any of org's when `all`). Any thread. */
bool lfs_auth_github_repositories_find(h2o_iovec_t body, const char *org, const char *repo,
                                       bool all);

/* The URL of rel="next" in a Link header, when it is on api_url's origin and under its path
 * (the token goes nowhere else); NULL otherwise. Into the pool. Any thread. */
const char *lfs_auth_github_next_link(h2o_mem_pool_t *pool, const char *link, const char *api_url);

/* A 403 or 429 that GitHub means as a rate limit (primary: X-RateLimit-Remaining 0;
 * secondary: Retry-After). Returns the seconds to wait (1..3600), or 0 when it is not one.
 * Any thread. */
long lfs_auth_github_rate_limit(const struct lfs_http_response *res);

#endif
