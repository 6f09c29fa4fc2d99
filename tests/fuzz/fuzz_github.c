/* Fuzz target: what the github auth provider (auth/github.c) reads from GitHub API answers:
 * the JSON of /user, of the collaborator permission query, of an org's installations and of
 * /installation/repositories, the Link header's next page and the rate-limit headers. Input:
 * lines "api_url", "Link header", "Retry-After", "X-RateLimit-Remaining", "X-RateLimit-Reset",
 * "HTTP status", "Basic user", "org/repo", then the body, read as each of the four answers.
 * An api_url the config would refuse (not http(s)://) is replaced by GitHub's.
 * Properties: a next page URL is on api_url's origin, under its path (or there is none); a
 * user has a login that is a valid path segment and a name; a rate limit is 0 or 1..3600 s,
 * and 0 for a status other than 403 and 429; rights are only ever those of the permissions. */
#include <h2o/memory.h>
#include <stdlib.h>
#include <string.h>

#include "auth/github.h"
#include "common/util.h"
#include "fuzz.h"

enum { API_URL, LINK, RETRY, REMAINING, RESET, STATUS, USER, REPO, BODY, NPARTS };

/* "scheme://authority" of url into buf; false when url has no such prefix with a host. */
static bool origin(const char *url, char *buf, size_t size)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return false;
    size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#\\");
    if (n == (size_t)(sep + 3 - url) || n >= size)
        return false;
    memcpy(buf, url, n);
    buf[n] = '\0';
    return true;
}

static void next_page(const char *api_url, const char *link, h2o_mem_pool_t *pool)
{
    const char *next = lfs_auth_github_next_link(pool, link, api_url);
    if (next == NULL)
        return;
    char a[2048], b[2048];
    size_t alen = strlen(api_url);
    LFS_FUZZ_CHECK(origin(api_url, a, sizeof(a)) && origin(next, b, sizeof(b)));
    LFS_FUZZ_CHECK(strcmp(a, b) == 0);
    LFS_FUZZ_CHECK(strncmp(next, api_url, alen) == 0 && next[alen] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lfs_fuzz_part parts[NPARTS];
    if (lfs_fuzz_split(data, size, "\n", 1, parts, NPARTS) < NPARTS)
        return 0;
    char *s[NPARTS - 1];
    for (int i = 0; i < BODY; i++)
        s[i] = lfs_fuzz_strdup(parts[i]);
    const char *api_url = s[API_URL];
    size_t alen = strlen(api_url);
    if ((strncmp(api_url, "https://", 8) != 0 && strncmp(api_url, "http://", 7) != 0) ||
        api_url[alen - 1] == '/')
        api_url = "https://api.github.com";
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    next_page(api_url, s[LINK], &pool);

    struct lfs_http_response res = {.status = strtol(s[STATUS], NULL, 10),
                                    .retry_after = s[RETRY][0] ? s[RETRY] : NULL,
                                    .ratelimit_remaining = s[REMAINING][0] ? s[REMAINING] : NULL,
                                    .ratelimit_reset = s[RESET][0] ? s[RESET] : NULL};
    long wait = lfs_auth_github_rate_limit(&res);
    LFS_FUZZ_CHECK(wait == 0 || (wait >= 1 && wait <= 3600));
    LFS_FUZZ_CHECK(wait == 0 || res.status == 403 || res.status == 429);

    h2o_iovec_t body = h2o_iovec_init(parts[BODY].base, parts[BODY].len);
    struct lfs_identity user = {0};
    if (lfs_auth_github_user_parse(body, &pool, &user) == 0) {
        LFS_FUZZ_CHECK(lfs_segment_valid(user.id, strlen(user.id)));
        LFS_FUZZ_CHECK(user.name != NULL && user.name[0] != '\0' && user.grants == NULL);
    }
    unsigned perms = 0;
    if (lfs_auth_github_permission_parse(body, &perms) < 0)
        LFS_FUZZ_CHECK(perms == 0);
    LFS_FUZZ_CHECK(perms == 0 || perms == LFS_PERM_ALL ||
                   perms == (LFS_PERM_READ | LFS_PERM_READ_META));
    struct lfs_auth_github_installation inst;
    if (lfs_auth_github_installation_find(body, s[USER], &pool, &inst)) {
        LFS_FUZZ_CHECK(inst.slug == NULL || lfs_segment_valid(inst.slug, strlen(inst.slug)));
        LFS_FUZZ_CHECK(inst.perms == 0 || inst.perms == LFS_PERM_ALL ||
                       inst.perms == (LFS_PERM_READ | LFS_PERM_READ_META));
    } else {
        LFS_FUZZ_CHECK(inst.slug == NULL && inst.perms == 0 && !inst.all);
    }
    char *slash = strchr(s[REPO], '/');
    if (slash != NULL) {
        *slash = '\0';
        bool one = lfs_auth_github_repositories_find(body, s[REPO], slash + 1, false);
        bool any = lfs_auth_github_repositories_find(body, s[REPO], slash + 1, true);
        LFS_FUZZ_CHECK(!one || any); /* all the org's repositories include this one */
    }
    h2o_mem_clear_pool(&pool);
    for (int i = 0; i < BODY; i++)
        free(s[i]);
    return 0;
}
