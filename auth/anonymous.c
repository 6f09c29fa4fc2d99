/* Anonymous access (giftless.auth.allow_anon:read_only / :read_write): every request gets
 * the same identity, read-only or read-write on every repository. Listed last in a chain it
 * is the fallback for requests without credentials. */
#include "auth/auth.h"

#include <stdlib.h>

struct lfs_auth_anonymous {
    struct lfs_auth base;
    struct lfs_grant grant;
};

static int anonymous_create(const json_t *options, const char *path, unsigned perms,
                            const struct lfs_auth_ops *ops, struct lfs_auth **out,
                            struct lfs_error *err)
{
    if (options != NULL && !json_is_null(options) &&
        !(json_is_object(options) && json_object_size(options) == 0))
        return lfs_error_set(err, 500, "config: %s: anonymous providers take no options", path);
    struct lfs_auth_anonymous *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return lfs_error_set(err, 500, "out of memory");
    a->base.ops = ops;
    a->grant.perms = perms;
    *out = &a->base;
    return 0;
}

static void anonymous_destroy(struct lfs_auth *auth)
{
    free(auth);
}

static int anonymous_authenticate(struct lfs_auth *auth, const struct lfs_auth_request *req,
                                  h2o_mem_pool_t *pool, struct lfs_identity *out,
                                  struct lfs_error *err)
{
    (void)req, (void)pool, (void)err;
    struct lfs_auth_anonymous *a = (struct lfs_auth_anonymous *)auth;
    *out = (struct lfs_identity){
        .id = "anonymous", .name = "anonymous", .grants = &a->grant, .ngrants = 1};
    return 1;
}

extern const struct lfs_auth_ops lfs_auth_anon_read_only_ops, lfs_auth_anon_read_write_ops;

static int read_only_create(const json_t *options, const char *path, struct lfs_auth **out,
                            struct lfs_error *err)
{
    return anonymous_create(options, path, LFS_PERM_READ | LFS_PERM_READ_META,
                            &lfs_auth_anon_read_only_ops, out, err);
}

static int read_write_create(const json_t *options, const char *path, struct lfs_auth **out,
                             struct lfs_error *err)
{
    return anonymous_create(options, path, LFS_PERM_ALL, &lfs_auth_anon_read_write_ops, out, err);
}

const struct lfs_auth_ops lfs_auth_anon_read_only_ops = {
    .name = "allow_anon:read_only",
    .factories = (const char *const[]){"giftless.auth.allow_anon:read_only", NULL},
    .create = read_only_create,
    .destroy = anonymous_destroy,
    .authenticate = anonymous_authenticate,
    .without_credentials = true,
};

const struct lfs_auth_ops lfs_auth_anon_read_write_ops = {
    .name = "allow_anon:read_write",
    .factories = (const char *const[]){"giftless.auth.allow_anon:read_write", NULL},
    .create = read_write_create,
    .destroy = anonymous_destroy,
    .authenticate = anonymous_authenticate,
    .without_credentials = true,
};
