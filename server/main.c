/* lfsgate's entry point: command line, configuration (exit 2 before listening when it is
 * bad), one listening socket per worker thread (SO_REUSEPORT, so the kernel spreads
 * connections), one h2o event loop per thread, and signal handling in the main thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <malloc.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/metrics.h"
#include "storage/storage.h"
#include "config/config.h"
#include "server/http.h"
#include "server/logs.h"
#include "server/scrub.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds: whole allocation stacks (the slow unwinder), because libh2o is built without
 * frame pointers and the fast unwinder stops inside it; tests/lsan.supp can then name only
 * h2o's start-up functions and still see a leak of lfsgate's own. ASAN_OPTIONS adds to this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}
#endif

/* Request bodies up to this size are buffered in memory; larger ones spill to spool_dir. */
#define BODY_MEMORY_MAX (4u << 20)

static atomic_bool stopping;
/* The app workers adopt at their next loop turn; replaced by SIGHUP. Guarded by app_lock. */
static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lfs_app *current_app;
static atomic_uint app_generation;

static void usage(FILE *out)
{
    fprintf(out, "Usage: lfsgate [OPTIONS]\n"
                 "A Git LFS server: batch API, JWT auth, local and cloud storage.\n\n"
                 "  --config FILE     giftless-format YAML config (else $LFSGATE_CONFIG_FILE or\n"
                 "                    $GIFTLESS_CONFIG_FILE; $GIFTLESS_CONFIG_STR and\n"
                 "                    $GIFTLESS_CONFIG_<KEY>_... are merged over it)\n"
                 "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080)\n"
                 "  --threads N       worker threads (default: one per CPU)\n"
                 "  --check-config    validate the configuration and exit (0 ok, 2 bad)\n"
                 "  --version         print the version and exit\n"
                 "  --help            print this help and exit\n\n"
                 "lfsgate scrub [--config FILE] [--repo ORG_PATH/REPO] [--json] [--quarantine]\n"
                 "  checks that every stored object hashes to its oid (lfsgate scrub --help)\n\n"
                 "Without any configuration lfsgate serves anonymous read-write access from\n"
                 "./lfs-storage on 127.0.0.1:8080, for local use only.\n");
}

static int open_listener(const char *host, int port_number, bool first, struct lfs_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", port_number);
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return lfs_error_set(err, 500, "cannot resolve listen address \"%s\": %s", host,
                             gai_strerror(rc));
    /* SO_REUSEPORT spreads connections over the workers, but it would also let another
     * process of the same user bind this port and silently take half the connections. So
     * the first socket probes the address without it: a port in use is an error. */
    if (first) {
        int probe = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int yes = 1;
        if (probe >= 0) {
            setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
            if (bind(probe, res->ai_addr, res->ai_addrlen) < 0) {
                int e = errno;
                close(probe);
                freeaddrinfo(res);
                return lfs_error_set(err, 500, "cannot listen on %s:%d: %s", host, port_number,
                                     strerror(e));
            }
            close(probe);
        }
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return lfs_error_set(err, 500, "cannot listen on %s:%d: %s", host, port_number,
                             strerror(e));
    }
    freeaddrinfo(res);
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    struct lfs_worker *w = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        lfs_guard_accept(&w->accept_ctx, sock);
    else
        lfs_guard_accept_failed(listener, errno);
}

static void on_metrics_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    struct lfs_worker *w = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        lfs_guard_accept(&w->metrics_accept_ctx, sock);
    else
        lfs_guard_accept_failed(listener, errno);
}

/* Switches the worker to the newest app after a reload; requests already running keep the
 * app they started with. */
static void adopt_app(struct lfs_worker *w)
{
    unsigned gen = atomic_load(&app_generation);
    if (gen == w->app_generation)
        return;
    pthread_mutex_lock(&app_lock);
    struct lfs_app *old = w->app;
    w->app = current_app;
    lfs_app_retain(w->app);
    w->app_generation = gen;
    w->ready_at = 0;
    pthread_mutex_unlock(&app_lock);
    lfs_app_release(old);
}

static h2o_socket_t *start_listener(struct lfs_worker *w, int fd)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(w->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = w;
    h2o_socket_read_start(sock, fd == w->metrics_fd ? on_metrics_accept : on_accept);
    return sock;
}

static void stop_listener(h2o_socket_t **sock)
{
    if (*sock == NULL)
        return;
    h2o_socket_read_stop(*sock);
    h2o_socket_close(*sock);
    *sock = NULL;
}

static void *worker_main(void *arg)
{
    struct lfs_worker *w = arg;
    w->listener = start_listener(w, w->listen_fd);
    if (w->metrics_fd >= 0)
        w->metrics_listener = start_listener(w, w->metrics_fd);
    lfs_guard_worker_start(&w->guard, &w->ctx);
    while (!atomic_load(&stopping)) {
        h2o_evloop_run(w->ctx.loop, 200); /* -1 on EINTR: just go round */
        adopt_app(w);
    }
    /* Graceful stop: no new connections; the loop runs until every request has finished and
     * every connection is gone (an upload whose body is still arriving is a connection
     * without a request yet), or the deadline passes. */
    stop_listener(&w->listener);
    stop_listener(&w->metrics_listener);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += w->shutdown_timeout;
    while (w->inflight > 0 || !h2o_linklist_is_empty(&w->ctx.http1._conns) ||
           !h2o_linklist_is_empty(&w->ctx.http2._conns)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            lfs_log(LFS_LOG_WARN,
                    "worker %d: %d requests still running at the shutdown deadline; closing",
                    w->index, w->inflight);
            break;
        }
        h2o_evloop_run(w->ctx.loop, 100);
    }
    lfs_guard_worker_stop(&w->guard);
    lfs_auth_thread_cleanup();
    lfs_storage_thread_cleanup();
    lfs_logs_thread_flush();
    /* The context and loop are left to process exit: h2o 2.2.5 asserts when a context is
     * disposed while connection timers are still linked (tests/lsan.supp lists them). */
    return NULL;
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* Loads the configuration and builds the app: the same path at startup and on SIGHUP.
 * Returns a new app (one reference) or NULL with err (a bad config). */
static struct lfs_app *load_app(const char *config_file, const struct lfs_app_overrides *ov,
                                struct lfs_config_origin *origin, struct lfs_error *err)
{
    json_t *config, *defaults = lfs_app_giftless_defaults();
    int loaded = lfs_config_load(defaults, config_file, lfs_config_getenv, &config, origin, err);
    json_decref(defaults);
    if (loaded < 0)
        return NULL;
    /* nothing configured at all: lfsgate's built-in local mode (anonymous read-write,
     * loopback only) rather than giftless's defaults */
    bool builtin = origin->file[0] == '\0' && !origin->from_env_string && origin->overrides == 0;
    if (builtin) {
        json_decref(config);
        config = lfs_app_builtin_config();
    }
    struct lfs_app *app = calloc(1, sizeof(*app));
    if (app == NULL) {
        json_decref(config);
        lfs_error_set(err, 500, "out of memory");
        return NULL;
    }
    int rc = lfs_app_create(config, builtin, ov, app, err);
    json_decref(config);
    if (rc < 0) {
        free(app);
        return NULL;
    }
    if (builtin && !is_loopback(app->settings.listen_host)) {
        lfs_error_set(err, 500,
                      "the built-in configuration gives anonymous read-write access and listens "
                      "on loopback only; write a config file (see README) to listen on %s",
                      app->settings.listen_host);
        lfs_app_release(app);
        return NULL;
    }
    return app;
}

/* `lfsgate scrub` loads the configuration as the server does, without overrides. */
static struct lfs_app *load_app_for_scrub(const char *config_file, struct lfs_error *err)
{
    struct lfs_app_overrides ov = {0};
    struct lfs_config_origin origin;
    return load_app(config_file, &ov, &origin, err);
}

/* SIGHUP: build the new app beside the old one; a bad config keeps the old one serving. */
static void reload(const char *config_file, const struct lfs_app_overrides *ov,
                   const struct lfs_settings *fixed)
{
    struct lfs_config_origin origin;
    struct lfs_error err = {0};
    struct lfs_app *app = load_app(config_file, ov, &origin, &err);
    if (app == NULL) {
        lfs_log(LFS_LOG_ERROR, "reload refused, the running configuration stays: %s", err.message);
        return;
    }
    const struct lfs_settings *s = &app->settings;
    if (strcmp(s->listen_host, fixed->listen_host) != 0 || s->listen_port != fixed->listen_port ||
        s->threads != fixed->threads || s->max_upload_size != fixed->max_upload_size ||
        s->request_timeout != fixed->request_timeout ||
        strcmp(s->spool_dir, fixed->spool_dir) != 0 || s->metrics_port != fixed->metrics_port)
        lfs_log(LFS_LOG_WARN, "reload: listen addresses, threads, max_upload_size, "
                              "request_timeout and spool_dir take effect only after a restart");
    lfs_log_set_level(s->debug ? LFS_LOG_DEBUG : LFS_LOG_INFO);
    pthread_mutex_lock(&app_lock);
    struct lfs_app *old = current_app;
    current_app = app;
    atomic_fetch_add(&app_generation, 1);
    pthread_mutex_unlock(&app_lock);
    lfs_app_release(old);
    lfs_log(LFS_LOG_INFO, "configuration reloaded%s%s", origin.file[0] ? " from " : "",
            origin.file);
}

static void register_handler(h2o_globalconf_t *conf, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_hostconf_t *host =
        h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;
}

/* The metrics reader wants uint64_t; auth/ counts in unsigned long long. */
static void token_cache_reader(uint64_t *hits, uint64_t *misses)
{
    unsigned long long h, m;
    lfs_auth_token_cache_stats(&h, &m);
    *hits = h;
    *misses = m;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"listen", required_argument, NULL, 'l'},
                                            {"threads", required_argument, NULL, 't'},
                                            {"check-config", no_argument, NULL, 'k'},
                                            {"version", no_argument, NULL, 'V'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    if (argc > 1 && strcmp(argv[1], "scrub") == 0)
        return lfs_scrub_main(argc - 1, argv + 1, load_app_for_scrub);
    struct lfs_app_overrides ov = {0};
    const char *config_file = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:t:kVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_file = optarg; break;
        case 'l': ov.listen = optarg; break;
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 256) {
                fprintf(stderr, "lfsgate: --threads: expected a number from 1 to 256\n");
                return 2;
            }
            ov.threads = (int)n;
            break;
        }
        case 'k': check_only = true; break;
        case 'V': printf("lfsgate %s\n", LFSGATE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lfsgate: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct lfs_config_origin origin;
    struct lfs_error err = {0};
    lfs_storage_set_cleanup(!check_only);
    struct lfs_app *app = load_app(config_file, &ov, &origin, &err);
    if (app == NULL) {
        fprintf(stderr, "lfsgate: %s\n", err.message);
        return 2;
    }
    if (check_only) {
        printf("lfsgate: configuration OK%s%s\n", origin.file[0] ? ": " : "", origin.file);
        lfs_app_release(app);
        return 0;
    }
    lfs_log_set_level(app->settings.debug ? LFS_LOG_DEBUG : LFS_LOG_INFO);
    lfs_metrics_set_token_cache_reader(token_cache_reader);

    /* h2o settings that have no configurator here (see architecture notes). These are fixed
     * for the life of the process: a reload cannot change them. */
    /* A copy: a reload replaces the app, but these settings stay for the process's life. */
    static struct lfs_settings fixed;
    fixed = app->settings;
    const struct lfs_settings *st = &fixed;
    h2o_globalconf_t globalconf, metrics_conf;
    h2o_config_init(&globalconf);
    globalconf.max_request_entity_size = (size_t)st->max_upload_size;
    globalconf.http1.req_timeout = (uint64_t)st->request_timeout * 1000;
    globalconf.http2.idle_timeout = (uint64_t)st->request_timeout * 1000;
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("lfsgate"));
    snprintf(h2o_socket_buffer_mmap_settings.fn_template,
             sizeof(h2o_socket_buffer_mmap_settings.fn_template), "%s/lfsgate-body.XXXXXX",
             st->spool_dir);
    /* Bodies larger than this spill to a file in spool_dir instead of growing in memory
     * (h2o's default is 32 MiB): memory stays small with many uploads arriving at once. */
    h2o_socket_buffer_mmap_settings.threshold = BODY_MEMORY_MAX;
    /* glibc raises its mmap threshold after large blocks are freed, then keeps later large
     * blocks in the heap, where freeing them gives nothing back: pin it. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* Pinning the mmap threshold also pins the trim threshold at glibc's 128 KiB, and a
     * worker's arena then gave back the top of its heap after most requests: a 100-object
     * batch (a 110 KB answer, freed with the request's pool) paid ~9 madvise calls and the
     * page faults to take the pages back on the next request. Freed heap up to this much is
     * kept for reuse, per arena; blocks of 256 KiB or more are still mapped and unmapped. */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    struct lfs_guard_settings gs = {.max_upload_size = st->max_upload_size,
                                    .receive_budget = st->receive_budget,
                                    .min_receive_rate = st->min_receive_rate,
                                    .receive_grace = st->receive_grace,
                                    .request_timeout = st->request_timeout,
                                    .spool_dir = st->spool_dir,
                                    .max_connections = st->max_connections,
                                    /* what h2o would spool: read as it arrives instead */
                                    .direct_min = BODY_MEMORY_MAX + 1,
                                    .direct_route = lfs_http_direct_route};
    if (lfs_guard_init(&gs, &err) < 0) {
        fprintf(stderr, "lfsgate: %s\n", err.message);
        return 1;
    }
    register_handler(&globalconf, lfs_http_on_request);
    h2o_config_init(&metrics_conf);
    metrics_conf.server_name = globalconf.server_name;
    register_handler(&metrics_conf, lfs_http_on_metrics_request);

    int nthreads = st->threads;
    struct lfs_worker *workers = calloc((size_t)nthreads, sizeof(*workers));
    for (int i = 0; i < nthreads; i++) {
        workers[i].metrics_fd = -1;
        workers[i].listen_fd = open_listener(st->listen_host, st->listen_port, i == 0, &err);
        if (workers[i].listen_fd < 0) {
            fprintf(stderr, "lfsgate: %s\n", err.message);
            return 1;
        }
    }
    /* One metrics listener is plenty: it lives on the first worker. */
    if (st->metrics_port != 0 && (workers[0].metrics_fd = open_listener(
                                      st->metrics_host, st->metrics_port, true, &err)) < 0) {
        fprintf(stderr, "lfsgate: SERVER.metrics_listen: %s\n", err.message);
        return 1;
    }

    /* Signals go to the main thread only: block them before starting the workers. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    current_app = app;
    pthread_t *threads = calloc((size_t)nthreads, sizeof(*threads));
    for (int i = 0; i < nthreads; i++) {
        struct lfs_worker *w = &workers[i];
        w->app = app;
        lfs_app_retain(app);
        w->index = i;
        w->shutdown_timeout = st->shutdown_timeout;
        RAND_bytes((unsigned char *)&w->id_salt, sizeof(w->id_salt));
        h2o_context_init(&w->ctx, h2o_evloop_create(), &globalconf);
        w->accept_ctx.ctx = &w->ctx;
        w->accept_ctx.hosts = globalconf.hosts;
        w->metrics_accept_ctx.ctx = &w->ctx;
        w->metrics_accept_ctx.hosts = metrics_conf.hosts;
        pthread_create(&threads[i], NULL, worker_main, w);
    }
    lfs_log(LFS_LOG_INFO, "listening on http://%s:%d with %d worker threads; config: %s%s",
            st->listen_host, st->listen_port, nthreads,
            origin.file[0]        ? origin.file
            : app->builtin_config ? "built-in"
                                  : "environment",
            origin.from_env_string ? " + GIFTLESS_CONFIG_STR" : "");
    if (st->metrics_port != 0)
        lfs_log(LFS_LOG_INFO, "metrics on http://%s:%d/metrics", st->metrics_host,
                st->metrics_port);
    if (app->builtin_config)
        lfs_log(LFS_LOG_WARN, "built-in configuration: anonymous read-write access, objects in "
                              "./lfs-storage, loopback only; pass --config for anything else");

    for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig != SIGHUP)
            break;
        reload(config_file, &ov, st);
    }
    /* Workers read the deadline when they stop; a reload may have changed it. */
    pthread_mutex_lock(&app_lock);
    long long timeout = current_app->settings.shutdown_timeout;
    pthread_mutex_unlock(&app_lock);
    lfs_log(LFS_LOG_INFO,
            "stopping: no new connections; waiting up to %llds for connections in progress",
            timeout);
    for (int i = 0; i < nthreads; i++)
        workers[i].shutdown_timeout = timeout;
    atomic_store(&stopping, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    lfs_log(LFS_LOG_INFO, "stopped");
    for (int i = 0; i < nthreads; i++)
        lfs_app_release(workers[i].app);
    free(threads);
    free(workers);
    lfs_app_release(current_app);
    return 0;
}
