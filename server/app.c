/* Builds struct lfs_app from the effective config tree: our SERVER section, giftless's
 * top-level keys (LEGACY_ENDPOINTS, DEBUG, MIDDLEWARE), the auth chain, the pre-authorized
 * action provider and the transfer adapters. Every value is validated here, before the
 * server listens; errors name the key path. */
#include "server/app.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"

#define PROXY_FIX_CLASS "werkzeug.middleware.proxy_fix:ProxyFix"
#define CORS_CLASS "wsgi_cors_middleware:CorsMiddleware"

json_t *lfs_app_builtin_config(void)
{
    /* Anonymous read-write: action tokens would add nothing, so none are minted. */
    return json_pack("{s:[s], s:{s:{s:s, s:{s:s, s:{s:s}}}}, s:n}", "AUTH_PROVIDERS",
                     "giftless.auth.allow_anon:read_write", "TRANSFER_ADAPTERS", "basic", "factory",
                     "giftless.transfer.basic_streaming:factory", "options", "storage_class",
                     "giftless.storage.local_storage:LocalStorage", "storage_options", "path",
                     "lfs-storage", "PRE_AUTHORIZED_ACTION_PROVIDER");
}

json_t *lfs_app_giftless_defaults(void)
{
    /* giftless/config.py's default_config, key for key: each config layer is merged into it
     * (lfs_config_load), so a layer may set one leaf and keep the rest, e.g. only
     * PRE_AUTHORIZED_ACTION_PROVIDER.options.private_key. The placeholder key "change-me" is
     * never used to sign: the jwt provider replaces it with a random key (auth/jwt.c). */
    return json_pack("{s:b, s:b, s:b,"
                     " s:{s:{s:s, s:{s:s, s:{s:s}, s:i}}},"
                     " s:[s],"
                     " s:{s:s, s:{s:s, s:s, s:n, s:n, s:n, s:i, s:s}},"
                     " s:[]}",
                     "TESTING", 0, "DEBUG", 0, "LEGACY_ENDPOINTS", 1, "TRANSFER_ADAPTERS", "basic",
                     "factory", "giftless.transfer.basic_streaming:factory", "options",
                     "storage_class", "giftless.storage.local_storage:LocalStorage",
                     "storage_options", "path", "lfs-storage", "action_lifetime", 900,
                     "AUTH_PROVIDERS", "giftless.auth.allow_anon:read_only",
                     "PRE_AUTHORIZED_ACTION_PROVIDER", "factory", "giftless.auth.jwt:factory",
                     "options", "algorithm", "HS256", "private_key", "change-me",
                     "private_key_file", "public_key", "public_key_file", "default_lifetime", 60,
                     "key_id", "giftless-internal-jwt-key", "MIDDLEWARE");
}

/* Splits "host:port", "[v6]:port" or ":port" (all interfaces). */
static int parse_listen(const char *value, const char *path, struct lfs_settings *s,
                        struct lfs_error *err)
{
    const char *colon = strrchr(value, ':');
    const char *host = value;
    size_t hlen = colon ? (size_t)(colon - value) : 0;
    if (colon == NULL || colon[1] == '\0')
        return lfs_error_set(err, 500,
                             "config: %s: expected HOST:PORT, e.g. 127.0.0.1:8080, got \"%s\"",
                             path, value);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
        host++, hlen -= 2;
    if (hlen >= sizeof(s->listen_host))
        return lfs_error_set(err, 500, "config: %s: host name too long", path);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return lfs_error_set(err, 500, "config: %s: port must be from 1 to 65535, got \"%s\"", path,
                             colon + 1);
    memcpy(s->listen_host, host, hlen);
    s->listen_host[hlen] = '\0';
    if (hlen == 0)
        strcpy(s->listen_host, "0.0.0.0");
    s->listen_port = (int)port;
    return 0;
}

static int parse_server(const json_t *server, const struct lfs_app_overrides *ov,
                        struct lfs_settings *s, struct lfs_error *err)
{
    static const char *const keys[] = {"listen",           "threads",
                                       "max_upload_size",  "max_batch_objects",
                                       "max_batch_body",   "request_timeout",
                                       "spool_dir",        "receive_budget",
                                       "min_receive_rate", "receive_grace",
                                       "trust_forwarded",  "access_log",
                                       "activity_log",     "shutdown_timeout",
                                       "metrics_listen",   "log_grants",
                                       "max_connections",  NULL};
    const char *listen, *spool, *metrics;
    long long threads, forwarded;
    const char *tmpdir = getenv("TMPDIR");
    if (lfs_config_check_keys(server, "SERVER", keys, err) < 0 ||
        lfs_config_get_string(server, "SERVER", "listen", "127.0.0.1:8080", &listen, err) < 0 ||
        lfs_config_get_int(server, "SERVER", "threads", 0, 0, 256, &threads, err) < 0 ||
        lfs_config_get_size(server, "SERVER", "max_upload_size", 5LL << 30, 1, 1LL << 42,
                            &s->max_upload_size, err) < 0 ||
        lfs_config_get_int(server, "SERVER", "max_batch_objects", 1000, 1, 100000,
                           &s->max_batch_objects, err) < 0 ||
        lfs_config_get_size(server, "SERVER", "max_batch_body", 10LL << 20, 1024, 1LL << 30,
                            &s->max_batch_body, err) < 0 ||
        lfs_config_get_int(server, "SERVER", "request_timeout", 600, 1, 86400, &s->request_timeout,
                           err) < 0 ||
        lfs_config_get_string(server, "SERVER", "spool_dir",
                              tmpdir != NULL && tmpdir[0] != '\0' ? tmpdir : "/tmp", &spool,
                              err) < 0 ||
        lfs_config_get_size(server, "SERVER", "receive_budget", 2LL << 30, 0, 1LL << 50,
                            &s->receive_budget, err) < 0 ||
        lfs_config_get_size(server, "SERVER", "min_receive_rate", 1024, 0, 1LL << 40,
                            &s->min_receive_rate, err) < 0 ||
        lfs_config_get_int(server, "SERVER", "receive_grace", 20, 1, 3600, &s->receive_grace, err) <
            0 ||
        lfs_config_get_int(server, "SERVER", "trust_forwarded", 0, 0, 16, &forwarded, err) < 0 ||
        lfs_config_get_bool(server, "SERVER", "access_log", true, &s->access_log, err) < 0 ||
        lfs_config_get_bool(server, "SERVER", "activity_log", true, &s->activity_log, err) < 0 ||
        lfs_config_get_bool(server, "SERVER", "log_grants", false, &s->activity_log_grants, err) <
            0 ||
        lfs_config_get_int(server, "SERVER", "shutdown_timeout", 25, 0, 3600, &s->shutdown_timeout,
                           err) < 0 ||
        lfs_config_get_string(server, "SERVER", "metrics_listen", NULL, &metrics, err) < 0 ||
        lfs_config_get_int(server, "SERVER", "max_connections", LFS_DEFAULT_MAX_CONNECTIONS, 1,
                           1000000, &s->max_connections, err) < 0)
        return -1;
    if (metrics != NULL) {
        struct lfs_settings m;
        if (parse_listen(metrics, "SERVER.metrics_listen", &m, err) < 0)
            return -1;
        memcpy(s->metrics_host, m.listen_host, sizeof(s->metrics_host));
        s->metrics_port = m.listen_port;
    }
    s->proxy_fix.forwarded = (int)forwarded;
    if (ov != NULL && ov->listen != NULL) {
        if (parse_listen(ov->listen, "--listen", s, err) < 0)
            return -1;
    } else if (parse_listen(listen, "SERVER.listen", s, err) < 0) {
        return -1;
    }
    if (ov != NULL && ov->threads > 0)
        threads = ov->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? n : 1;
    }
    s->threads = (int)threads;
    if (strlen(spool) >= sizeof(s->spool_dir) - 32 || access(spool, W_OK | X_OK) < 0)
        return lfs_error_set(err, 500,
                             "config: SERVER.spool_dir: \"%s\" is not a writable directory; large "
                             "uploads are spooled there",
                             spool);
    snprintf(s->spool_dir, sizeof(s->spool_dir), "%s", spool);
    return 0;
}

/* Reads the keys of a MIDDLEWARE entry at `path`: class, args, kwargs. giftless passes args
 * positionally; lfsgate's built-in middleware read keyword arguments only, so args must be
 * empty (`usage` says what to write instead). *kwargs is NULL when absent; kpath receives
 * its key path. */
static int middleware_kwargs(const json_t *entry, const char *path, const char *usage,
                             const json_t **kwargs, char *kpath, size_t kpath_size,
                             struct lfs_error *err)
{
    static const char *const keys[] = {"class", "args", "kwargs", NULL};
    const json_t *args = json_object_get(entry, "args");
    if (lfs_config_check_keys(entry, path, keys, err) < 0 ||
        lfs_config_get_object(entry, path, "kwargs", kwargs, err) < 0)
        return -1;
    if (args != NULL && !json_is_null(args) && !(json_is_array(args) && json_array_size(args) == 0))
        return lfs_error_set(err, 500, "config: %s.args: %s", path, usage);
    lfs_config_path(kpath, kpath_size, path, "kwargs");
    return 0;
}

static int parse_proxy_fix(const json_t *kwargs, const char *kpath, struct lfs_proxy_fix *pf,
                           struct lfs_error *err)
{
    static const char *const kwarg_keys[] = {"x_for",  "x_proto",  "x_host",
                                             "x_port", "x_prefix", NULL};
    long long v[5];
    if (lfs_config_check_keys(kwargs, kpath, kwarg_keys, err) < 0)
        return -1;
    /* werkzeug's defaults: x_for=1, x_proto=1, the others 0. */
    static const long long defaults[] = {1, 1, 0, 0, 0};
    for (int i = 0; i < 5; i++)
        if (lfs_config_get_int(kwargs, kpath, kwarg_keys[i], defaults[i], 0, 16, &v[i], err) < 0)
            return -1;
    *pf = (struct lfs_proxy_fix){(int)v[0], (int)v[1], (int)v[2],
                                 (int)v[3], (int)v[4], pf->forwarded};
    return 0;
}

/* giftless's WSGI middleware that lfsgate has built in: ProxyFix, and CorsMiddleware, which
 * fills `cors` (the native CORS section is read by lfs_app_create; both at once are
 * refused there). */
static int parse_middleware(const json_t *list, struct lfs_proxy_fix *pf, struct lfs_cors *cors,
                            int *cors_index, struct lfs_error *err)
{
    *cors_index = -1;
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return lfs_error_set(err, 500, "config: MIDDLEWARE: expected a list of {class, kwargs}");
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        char path[64], kpath[256];
        const char *cls;
        const json_t *kwargs;
        snprintf(path, sizeof(path), "MIDDLEWARE[%zu]", i);
        if (!json_is_object(entry))
            return lfs_error_set(err, 500, "config: %s: expected a mapping with \"class\"", path);
        if (lfs_config_get_string(entry, path, "class", NULL, &cls, err) < 0)
            return -1;
        if (cls == NULL)
            return lfs_error_set(err, 500, "config: %s.class: required key is missing", path);
        if (strcmp(cls, PROXY_FIX_CLASS) == 0) {
            if (middleware_kwargs(entry, path,
                                  "ProxyFix takes keyword arguments only "
                                  "(kwargs: {x_for, x_proto, x_host, x_port, x_prefix})",
                                  &kwargs, kpath, sizeof(kpath), err) < 0 ||
                parse_proxy_fix(kwargs, kpath, pf, err) < 0)
                return -1;
        } else if (strcmp(cls, CORS_CLASS) == 0) {
            if (*cors_index >= 0)
                return lfs_error_set(err, 500,
                                     "config: %s.class: " CORS_CLASS
                                     " is already configured at MIDDLEWARE[%d]; keep one",
                                     path, *cors_index);
            if (middleware_kwargs(entry, path,
                                  "CorsMiddleware is read from keyword arguments only (kwargs: "
                                  "{origin, credentials, headers, methods, expose_headers, "
                                  "max_age})",
                                  &kwargs, kpath, sizeof(kpath), err) < 0 ||
                lfs_cors_create_middleware(kwargs, kpath, cors, err) < 0)
                return -1;
            *cors_index = (int)i;
        } else {
            return lfs_error_set(err, 500,
                                 "config: %s.class: unsupported middleware \"%s\"; "
                                 "supported: " PROXY_FIX_CLASS ", " CORS_CLASS,
                                 path, cls);
        }
    }
    return 0;
}

/* The adapter behind the objects/storage routes: the one configured as "basic", else the
 * first. */
static struct lfs_transfer *objects_adapter(const struct lfs_transfer_set *set)
{
    struct lfs_transfer *t = lfs_transfer_set_get(set, "basic");
    return t != NULL ? t : set->adapters[0];
}

static bool has_lock_ops(const struct lfs_storage_ops *ops)
{
    return ops->lock_create != NULL && ops->lock_read != NULL && ops->lock_delete != NULL &&
           ops->lock_list != NULL;
}

/* LOCKS: absent, null or true: the basic adapter's storage (absent or null: locking stays off,
 * with a warning, when that storage cannot keep locks; true: that is an error); false: off;
 * {storage_class, storage_options}: a storage of its own. */
static int parse_locks(const json_t *value, struct lfs_app *app, struct lfs_error *err)
{
    static const char *const keys[] = {"storage_class", "storage_options", NULL};
    app->locks = NULL;
    if (json_is_false(value))
        return 0;
    if (value == NULL || json_is_null(value) || json_is_true(value)) {
        struct lfs_transfer *basic = lfs_transfer_set_get(&app->transfers, "basic");
        struct lfs_storage *st = (basic != NULL ? basic : app->objects)->storage;
        if (has_lock_ops(st->ops)) {
            app->locks = st;
            return 0;
        }
        if (json_is_true(value))
            return lfs_error_set(err, 500,
                                 "config: LOCKS: storage \"%s\" of the basic transfer adapter "
                                 "cannot keep locks; give LOCKS.storage_class (local, azure, "
                                 "gcs, s3) or set LOCKS: false",
                                 st->ops->name);
        lfs_log(LFS_LOG_WARN,
                "locking is off: storage \"%s\" cannot keep locks (set LOCKS.storage_class to "
                "turn it on, or LOCKS: false to silence this)",
                st->ops->name);
        return 0;
    }
    if (!json_is_object(value))
        return lfs_error_set(err, 500,
                             "config: LOCKS: expected false, true or a mapping "
                             "{storage_class, storage_options}");
    const char *cls;
    const json_t *options;
    if (lfs_config_check_keys(value, "LOCKS", keys, err) < 0 ||
        lfs_config_get_string(value, "LOCKS", "storage_class", NULL, &cls, err) < 0 ||
        lfs_config_get_object(value, "LOCKS", "storage_options", &options, err) < 0)
        return -1;
    if (cls == NULL)
        return lfs_error_set(err, 500,
                             "config: LOCKS.storage_class: required key is missing (e.g. "
                             "giftless.storage.local_storage:LocalStorage)");
    const struct lfs_storage_ops *ops = lfs_storage_find(cls);
    char names[256];
    if (ops == NULL)
        return lfs_error_set(err, 500,
                             "config: LOCKS.storage_class: unknown storage \"%s\"; valid: %s", cls,
                             lfs_storage_list_names(names, sizeof(names)));
    if (!has_lock_ops(ops))
        return lfs_error_set(err, 500,
                             "config: LOCKS.storage_class: storage \"%s\" cannot keep locks; use "
                             "local, azure, gcs or s3",
                             ops->name);
    if (ops->create(options, "LOCKS.storage_options", &app->locks_owned, err) < 0)
        return -1;
    app->locks = app->locks_owned;
    return 0;
}

int lfs_app_create(const json_t *config, bool builtin, const struct lfs_app_overrides *overrides,
                   struct lfs_app *app, struct lfs_error *err)
{
    static const char *const keys[] = {"AUTH_PROVIDERS",
                                       "TRANSFER_ADAPTERS",
                                       "PRE_AUTHORIZED_ACTION_PROVIDER",
                                       "MIDDLEWARE",
                                       "LEGACY_ENDPOINTS",
                                       "DEBUG",
                                       "TESTING",
                                       "SERVER",
                                       "CORS",
                                       "LOCKS",
                                       NULL};
    const json_t *server, *cors = json_object_get(config, "CORS");
    int cors_index;
    *app = (struct lfs_app){.refs = 1, .builtin_config = builtin};
    if (!json_is_object(config))
        return lfs_error_set(err, 500, "config: the top level must be a mapping");
    if (lfs_config_check_keys(config, "", keys, err) < 0 ||
        lfs_config_get_object(config, "", "SERVER", &server, err) < 0 ||
        parse_server(server, overrides, &app->settings, err) < 0 ||
        lfs_config_get_bool(config, "", "LEGACY_ENDPOINTS", true, &app->settings.legacy_endpoints,
                            err) < 0 ||
        lfs_config_get_bool(config, "", "DEBUG", false, &app->settings.debug, err) < 0 ||
        parse_middleware(json_object_get(config, "MIDDLEWARE"), &app->settings.proxy_fix,
                         &app->cors, &cors_index, err) < 0) {
        lfs_cors_destroy(&app->cors); /* a CorsMiddleware before the bad entry */
        return -1;
    }
    if (cors_index >= 0 && cors != NULL && !json_is_null(cors)) {
        lfs_cors_destroy(&app->cors);
        return lfs_error_set(err, 500,
                             "config: CORS: CORS is configured twice, here and as " CORS_CLASS
                             " at MIDDLEWARE[%d]; keep one of them",
                             cors_index);
    }
    if (cors_index < 0 && lfs_cors_create(cors, &app->cors, err) < 0)
        return -1;
    if (lfs_auth_chain_create(json_object_get(config, "AUTH_PROVIDERS"), "AUTH_PROVIDERS",
                              &app->auth, err) < 0) {
        lfs_cors_destroy(&app->cors);
        return -1;
    }
    if (lfs_preauth_create(json_object_get(config, "PRE_AUTHORIZED_ACTION_PROVIDER"),
                           "PRE_AUTHORIZED_ACTION_PROVIDER", &app->preauth, err) < 0 ||
        (app->preauth != NULL &&
         lfs_auth_chain_prepend(&app->auth, app->preauth->provider, err) < 0) ||
        lfs_transfer_set_create(json_object_get(config, "TRANSFER_ADAPTERS"), "TRANSFER_ADAPTERS",
                                &app->transfers, err) < 0) {
        lfs_app_destroy(app);
        return -1;
    }
    app->objects = objects_adapter(&app->transfers);
    if (parse_locks(json_object_get(config, "LOCKS"), app, err) < 0) {
        lfs_app_destroy(app);
        return -1;
    }
    return 0;
}

void lfs_app_retain(struct lfs_app *app)
{
    atomic_fetch_add_explicit(&app->refs, 1, memory_order_relaxed);
}

void lfs_app_release(struct lfs_app *app)
{
    if (atomic_fetch_sub_explicit(&app->refs, 1, memory_order_acq_rel) == 1) {
        lfs_app_destroy(app);
        free(app);
    }
}

void lfs_app_destroy(struct lfs_app *app)
{
    lfs_transfer_set_destroy(&app->transfers);
    /* The chain holds the action-token provider without owning it: chain first. */
    lfs_auth_chain_destroy(&app->auth);
    if (app->preauth != NULL)
        lfs_preauth_destroy(app->preauth);
    app->preauth = NULL;
    lfs_cors_destroy(&app->cors);
    if (app->locks_owned != NULL)
        app->locks_owned->ops->destroy(app->locks_owned);
    app->locks_owned = app->locks = NULL;
}
