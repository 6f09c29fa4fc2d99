/* The application: everything built from the configuration that the worker threads share
 * read-only (settings, auth chain, pre-authorized action tokens, transfer adapters). */
#ifndef LFS_SERVER_APP_H
#define LFS_SERVER_APP_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/auth.h"
#include "server/cors.h"
#include "transfer/transfer.h"

/* werkzeug.middleware.proxy_fix:ProxyFix: how many proxies to trust per X-Forwarded-*
 * header; 0 = ignore that header. All zero unless MIDDLEWARE configures it. */
struct lfs_proxy_fix {
    int x_for, x_proto, x_host, x_port, x_prefix;
    int forwarded; /* RFC 7239 Forwarded: proxies trusted for proto= and host= (SERVER section) */
};

/* Our own SERVER section. */
/* SERVER.max_connections when not configured: far above what one replica serves well, far
 * below what exhausts its file descriptors (it is lowered to fit RLIMIT_NOFILE at startup). */
#define LFS_DEFAULT_MAX_CONNECTIONS 10000

struct lfs_settings {
    char listen_host[256];
    int listen_port;
    int threads;                 /* worker threads, >= 1 */
    long long max_upload_size;   /* bytes; larger request bodies get 413 */
    long long max_batch_objects; /* more objects in one batch get 413 */
    long long max_batch_body;    /* bytes of batch/verify JSON accepted */
    long long request_timeout;   /* seconds to receive a request, body included */
    char spool_dir[1024];        /* where large request bodies spill to disk */
    long long receive_budget;    /* bytes of bodies received at once, all workers; 0 = no cap */
    long long min_receive_rate;  /* bytes/s a body must keep up after receive_grace; 0 = off */
    long long receive_grace;     /* seconds */
    long long max_connections;   /* connections open at once, all workers (and the metrics
                                  * listener); more are answered 503 and closed */
    bool legacy_endpoints;       /* /<org>/<repo>/objects/... routes */
    bool access_log;             /* a JSON line per request on stdout */
    bool activity_log;           /* "_type": "ActivityLog" lines on stdout */
    long long shutdown_timeout;  /* seconds SIGTERM waits for requests in progress */
    char metrics_host[256];      /* separate listener for /metrics; "" = on the main one */
    int metrics_port;
    bool debug;
    struct lfs_proxy_fix proxy_fix;
    bool activity_log_grants; /* also a line per object granted in a batch (default: counts) */
};

struct lfs_app {
    _Atomic int refs; /* the main thread, each worker thread and each request hold one */
    struct lfs_settings settings;
    struct lfs_auth_chain auth;
    struct lfs_preauth *preauth; /* NULL when PRE_AUTHORIZED_ACTION_PROVIDER is null */
    struct lfs_transfer_set transfers;
    struct lfs_transfer *objects; /* adapter serving objects/storage and verify routes */
    struct lfs_cors cors;
    bool builtin_config; /* started without any config: anonymous read-write */
    /* Where locks are kept (server/locks.c); NULL: locking is off and the locks routes answer
     * a JSON 404. Either the basic adapter's storage or locks_owned. */
    struct lfs_storage *locks;
    struct lfs_storage *locks_owned; /* built from LOCKS.storage_class; destroyed with the app */
};

/* Command-line values that override the config file (NULL / 0 = not given). */
struct lfs_app_overrides {
    const char *listen;
    int threads;
};

/* Takes and drops a reference; the last release destroys and frees the app (which must
 * have been malloc'd). Any thread. */
void lfs_app_retain(struct lfs_app *app);
void lfs_app_release(struct lfs_app *app);

/* Builds the app from the effective config. Every error names its key path and means the
 * config is bad (the caller exits with status 2). Main thread. */
int lfs_app_create(const json_t *config, bool builtin, const struct lfs_app_overrides *overrides,
                   struct lfs_app *app, struct lfs_error *err);
void lfs_app_destroy(struct lfs_app *app);

/* The configuration used when no config file, GIFTLESS_CONFIG_STR or override is given:
 * anonymous read-write, local storage in ./lfs-storage, loopback only. New reference. */
json_t *lfs_app_builtin_config(void);

/* giftless's default configuration (giftless/config.py), which lfs_config_load merges every
 * config layer into. New reference. */
json_t *lfs_app_giftless_defaults(void);

#endif
