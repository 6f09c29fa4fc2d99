/* Permission checks on an identity's grants. Kept separate from the providers so every
 * provider (anonymous, jwt, action tokens) yields the same shape and one function decides. */
#include "auth/auth.h"

#include <string.h>

static bool part_matches(const char *pattern, const char *value)
{
    if (pattern == NULL)
        return true;
    return value != NULL && strcmp(pattern, value) == 0;
}

bool lfs_identity_allows(const struct lfs_identity *identity, const char *org_path,
                         const char *repo, const char *oid, unsigned perm)
{
    if (identity == NULL || perm == 0)
        return false;
    for (size_t i = 0; i < identity->ngrants; i++) {
        const struct lfs_grant *g = &identity->grants[i];
        if ((g->perms & perm) != perm)
            continue;
        if (!part_matches(g->org_path, org_path) || !part_matches(g->repo, repo))
            continue;
        /* A repository-wide question is only answered by a repository-wide grant. */
        if (oid == NULL ? g->oid != NULL : !part_matches(g->oid, oid))
            continue;
        return true;
    }
    return false;
}

bool lfs_identity_is_action_token(const struct lfs_identity *identity)
{
    if (identity == NULL)
        return false;
    for (size_t i = 0; i < identity->ngrants; i++)
        if (identity->grants[i].action_token)
            return true;
    return false;
}
