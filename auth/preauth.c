/* Pre-authorized action tokens (PRE_AUTHORIZED_ACTION_PROVIDER): the jwt provider built in
 * preauth mode (jwt.c) mints a short token for each href that points back at lfsgate, scoped
 * to one object and one action and living exactly as long as the action, and the same
 * provider, prepended to the auth chain, accepts them. Built once on the main thread; mint
 * and authenticate then run on any worker thread. */
#include "auth/auth.h"

#include <stdlib.h>

#include "auth/jwt.h"
#include "config/config.h"

/* The provider belongs to its struct lfs_preauth, not to the chain it is prepended to. */
static void preauth_provider_destroy(struct lfs_auth *auth)
{
    (void)auth;
}

static const struct lfs_auth_ops preauth_ops = {
    .name = "jwt (pre-authorized actions)",
    .factories = NULL,
    .create = NULL, /* built by lfs_preauth_create only */
    .destroy = preauth_provider_destroy,
    .authenticate = lfs_auth_jwt_authenticate,
};

int lfs_preauth_create(const json_t *value, const char *path, struct lfs_preauth **out,
                       struct lfs_error *err)
{
    const char *factory = NULL;
    const json_t *options = NULL;
    char fpath[256], opath[256];
    *out = NULL;
    if (value == NULL || json_is_null(value))
        return 0;
    lfs_config_path(fpath, sizeof(fpath), path, "factory");
    lfs_config_path(opath, sizeof(opath), path, "options");
    if (json_is_string(value)) {
        factory = json_string_value(value);
        lfs_config_path(fpath, sizeof(fpath), path, "");
    } else if (json_is_object(value)) {
        static const char *const keys[] = {"factory", "options", NULL};
        if (lfs_config_check_keys(value, path, keys, err) < 0 ||
            lfs_config_get_string(value, path, "factory", NULL, &factory, err) < 0 ||
            lfs_config_get_object(value, path, "options", &options, err) < 0)
            return -1;
        if (factory == NULL)
            return lfs_error_set(err, 500, "config: %s: required key is missing", fpath);
    } else {
        return lfs_error_set(err, 500,
                             "config: %s: expected null, a factory string or a mapping with "
                             "\"factory\" and \"options\"",
                             path);
    }
    if (lfs_auth_find(factory) != &lfs_auth_jwt_ops)
        return lfs_error_set(err, 500,
                             "config: %s: \"%s\" cannot mint action tokens; use "
                             "giftless.auth.jwt:factory, or null to turn them off",
                             fpath, factory);
    struct lfs_preauth *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return lfs_error_set(err, 500, "out of memory");
    if (lfs_auth_jwt_build(options, opath, true, &preauth_ops, &p->provider, err) < 0) {
        free(p);
        return -1;
    }
    p->mint = lfs_auth_jwt_mint;
    *out = p;
    return 0;
}

void lfs_preauth_destroy(struct lfs_preauth *preauth)
{
    if (preauth == NULL)
        return;
    lfs_auth_jwt_free(preauth->provider);
    free(preauth);
}
