/* The auth provider registry (name or giftless factory string -> ops) and the provider
 * chain built from AUTH_PROVIDERS. Adding a provider means adding its ops to `providers`. */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/plugin.h"
#include "config/config.h"

extern const struct lfs_auth_ops lfs_auth_anon_read_only_ops, lfs_auth_anon_read_write_ops;
extern const struct lfs_auth_ops lfs_auth_jwt_ops;

static const struct lfs_auth_ops *const providers[] = {
    &lfs_auth_anon_read_only_ops,
    &lfs_auth_anon_read_write_ops,
    &lfs_auth_jwt_ops,
    &lfs_auth_github_ops,
};

#define NPROVIDERS (sizeof(providers) / sizeof(providers[0]))

/* Credentials one request may carry (server/ allows 8 Authorization headers, plus ?jwt=). */
#define MAX_CREDENTIALS 16

const struct lfs_auth_ops *lfs_auth_find(const char *name)
{
    return lfs_plugin_find((const void *const *)providers, NPROVIDERS, name);
}

const char *lfs_auth_list_names(char *buf, size_t size)
{
    return lfs_plugin_list((const void *const *)providers, NPROVIDERS, buf, size);
}

/* Reads one AUTH_PROVIDERS entry: "factory" or {factory: "...", options: {...}}. */
static int create_entry(const json_t *entry, const char *path, struct lfs_auth **out,
                        struct lfs_error *err)
{
    const char *factory = NULL;
    const json_t *options = NULL;
    char opath[256];
    if (json_is_string(entry)) {
        factory = json_string_value(entry);
    } else if (json_is_object(entry)) {
        static const char *const keys[] = {"factory", "options", NULL};
        if (lfs_config_check_keys(entry, path, keys, err) < 0 ||
            lfs_config_get_string(entry, path, "factory", NULL, &factory, err) < 0 ||
            lfs_config_get_object(entry, path, "options", &options, err) < 0)
            return -1;
        if (factory == NULL)
            return lfs_error_set(err, 500, "config: %s.factory: required key is missing", path);
    } else {
        return lfs_error_set(err, 500,
                             "config: %s: expected a factory string or a mapping with "
                             "\"factory\" and \"options\"",
                             path);
    }
    const struct lfs_auth_ops *ops = lfs_auth_find(factory);
    if (ops == NULL) {
        char names[512];
        return lfs_error_set(
            err, 500, "config: %s: unknown auth provider \"%s\"; valid: %s",
            json_is_string(entry) ? path : lfs_config_path(opath, sizeof(opath), path, "factory"),
            factory, lfs_auth_list_names(names, sizeof(names)));
    }
    return ops->create(options, lfs_config_path(opath, sizeof(opath), path, "options"), out, err);
}

int lfs_auth_chain_create(const json_t *list, const char *path, struct lfs_auth_chain *out,
                          struct lfs_error *err)
{
    *out = (struct lfs_auth_chain){0};
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return lfs_error_set(err, 500, "config: %s: expected a list of auth providers", path);
    out->providers = calloc(json_array_size(list) + 1, sizeof(*out->providers));
    if (out->providers == NULL)
        return lfs_error_set(err, 500, "out of memory");
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        char epath[256];
        snprintf(epath, sizeof(epath), "%s[%zu]", path, i);
        if (create_entry(entry, epath, &out->providers[out->count], err) < 0) {
            lfs_auth_chain_destroy(out);
            return -1;
        }
        out->count++;
    }
    return 0;
}

void lfs_auth_chain_destroy(struct lfs_auth_chain *chain)
{
    for (size_t i = 0; i < chain->count; i++)
        chain->providers[i]->ops->destroy(chain->providers[i]);
    free(chain->providers);
    *chain = (struct lfs_auth_chain){0};
}

int lfs_auth_chain_prepend(struct lfs_auth_chain *chain, struct lfs_auth *provider,
                           struct lfs_error *err)
{
    struct lfs_auth **p = realloc(chain->providers, (chain->count + 2) * sizeof(*p));
    if (p == NULL)
        return lfs_error_set(err, 500, "out of memory");
    memmove(p + 1, p, chain->count * sizeof(*p));
    p[0] = provider;
    chain->providers = p;
    chain->count++;
    return 0;
}

/* The request with only credential k: Authorization value k, or ?jwt= for k == n. */
static struct lfs_auth_request one_credential(const struct lfs_auth_request *req, size_t k)
{
    struct lfs_auth_request one = {
        .now = req->now, .org_path = req->org_path, .repo = req->repo, .wait = req->wait};
    if (k < req->nauthorization) {
        one.authorization = &req->authorization[k];
        one.nauthorization = 1;
    } else {
        one.query_jwt = req->query_jwt;
    }
    return one;
}

/* Providers in order, each shown the credentials no earlier provider refused, one at a time.
 * One at a time so that a credential a provider refused (an expired action token) is
 * never shown to a later provider that might judge it differently (a user provider with
 * the same key and a longer leeway would take it for a user token), while the other
 * credentials still get their chance. */
int lfs_auth_chain_authenticate(const struct lfs_auth_chain *chain,
                                const struct lfs_auth_request *req, h2o_mem_pool_t *pool,
                                struct lfs_identity *out, struct lfs_error *err)
{
    size_t ncred = req->nauthorization + (req->query_jwt.base != NULL ? 1 : 0);
    if (ncred > MAX_CREDENTIALS)
        return lfs_error_set(err, 401, "too many credentials (at most %d)", MAX_CREDENTIALS);
    bool refused[MAX_CREDENTIALS] = {false}, any_refused = false;
    struct lfs_error first = {0};
    for (size_t i = 0; i < chain->count; i++) {
        struct lfs_auth *p = chain->providers[i];
        if (p->ops->without_credentials) {
            /* anonymous access: never in place of a refused credential */
            if (any_refused)
                continue;
            int r = p->ops->authenticate(p, req, pool, out, err);
            if (r != 0)
                return r;
            continue;
        }
        for (size_t k = 0; k < ncred; k++) {
            if (refused[k])
                continue;
            struct lfs_auth_request one = one_credential(req, k);
            struct lfs_error e = {0};
            int r = p->ops->authenticate(p, &one, pool, out, &e);
            if (r == 1 || r == LFS_AUTH_PENDING)
                return r;
            if (r < 0) {
                refused[k] = true;
                if (!any_refused)
                    first = e;
                any_refused = true;
            }
        }
    }
    if (!any_refused)
        return 0;
    if (err != NULL)
        *err = first;
    return -1;
}
