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
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "config/config.h"
#include "server/http.h"

static atomic_bool stopping;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lfsgate [OPTIONS]\n"
            "A Git LFS server: batch API, JWT auth, local and cloud storage.\n\n"
            "  --config FILE     giftless-format YAML config (else $LFSGATE_CONFIG_FILE or\n"
            "                    $GIFTLESS_CONFIG_FILE; $GIFTLESS_CONFIG_STR and\n"
            "                    $GIFTLESS_CONFIG_<KEY>_... are merged over it)\n"
            "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080)\n"
            "  --threads N       worker threads (default: one per CPU)\n"
            "  --check-config    validate the configuration and exit (0 ok, 2 bad)\n"
            "  --version         print the version and exit\n"
            "  --help            print this help and exit\n\n"
            "Without any configuration lfsgate serves anonymous read-write access from\n"
            "./lfs-storage on 127.0.0.1:8080, for local use only.\n");
}

static int open_listener(const struct lfs_settings *s, struct lfs_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", s->listen_port);
    int rc = getaddrinfo(s->listen_host, port, &hints, &res);
    if (rc != 0)
        return lfs_error_set(err, 500, "cannot resolve listen address \"%s\": %s", s->listen_host,
                             gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return lfs_error_set(err, 500, "cannot listen on %s:%d: %s", s->listen_host,
                             s->listen_port, strerror(e));
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
        h2o_accept(&w->accept_ctx, sock);
}

static void *worker_main(void *arg)
{
    struct lfs_worker *w = arg;
    w->listener = h2o_evloop_socket_create(w->ctx.loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    while (!atomic_load(&stopping))
        h2o_evloop_run(w->ctx.loop, 200); /* -1 on EINTR: just go round */
    h2o_socket_read_stop(w->listener);
    h2o_socket_close(w->listener);
    return NULL;
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'}, {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct lfs_app_overrides ov = {0};
    const char *config_file = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:t:kVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'l':
            ov.listen = optarg;
            break;
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
        case 'k':
            check_only = true;
            break;
        case 'V':
            printf("lfsgate %s\n", LFSGATE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lfsgate: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct lfs_error err = {0};
    struct lfs_config_origin origin;
    json_t *config;
    if (lfs_config_load(NULL, config_file, env_lookup, &config, &origin, &err) < 0) {
        fprintf(stderr, "lfsgate: %s\n", err.message);
        return 2;
    }
    bool builtin = origin.file[0] == '\0' && !origin.from_env_string && origin.overrides == 0;
    if (builtin) {
        json_decref(config);
        config = lfs_app_builtin_config();
    }
    lfs_app_apply_defaults(config);
    struct lfs_app app;
    if (lfs_app_create(config, builtin, &ov, &app, &err) < 0) {
        fprintf(stderr, "lfsgate: %s\n", err.message);
        json_decref(config);
        return 2;
    }
    json_decref(config);
    if (builtin && !is_loopback(app.settings.listen_host)) {
        fprintf(stderr, "lfsgate: the built-in configuration gives anonymous read-write access "
                        "and listens on loopback only; write a config file (see README) to "
                        "listen on %s\n",
                app.settings.listen_host);
        lfs_app_destroy(&app);
        return 2;
    }
    if (check_only) {
        printf("lfsgate: configuration OK%s%s\n", origin.file[0] ? ": " : "", origin.file);
        lfs_app_destroy(&app);
        return 0;
    }
    lfs_log_set_level(app.settings.debug ? LFS_LOG_DEBUG : LFS_LOG_INFO);

    /* h2o settings that have no configurator here (see architecture notes). */
    h2o_globalconf_t globalconf;
    h2o_config_init(&globalconf);
    globalconf.max_request_entity_size = (size_t)app.settings.max_upload_size;
    globalconf.http1.req_timeout = (uint64_t)app.settings.request_timeout * 1000;
    globalconf.http2.idle_timeout = (uint64_t)app.settings.request_timeout * 1000;
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("lfsgate"));
    snprintf(h2o_socket_buffer_mmap_settings.fn_template,
             sizeof(h2o_socket_buffer_mmap_settings.fn_template), "%s/lfsgate-body.XXXXXX",
             app.settings.spool_dir);
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = lfs_http_on_request;

    int nthreads = app.settings.threads;
    struct lfs_worker *workers = calloc((size_t)nthreads, sizeof(*workers));
    for (int i = 0; i < nthreads; i++) {
        workers[i].listen_fd = open_listener(&app.settings, &err);
        if (workers[i].listen_fd < 0) {
            fprintf(stderr, "lfsgate: %s\n", err.message);
            return 1;
        }
    }

    /* Signals go to the main thread only: block them before starting the workers. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_t *threads = calloc((size_t)nthreads, sizeof(*threads));
    for (int i = 0; i < nthreads; i++) {
        struct lfs_worker *w = &workers[i];
        w->app = &app;
        w->index = i;
        RAND_bytes((unsigned char *)&w->id_salt, sizeof(w->id_salt));
        h2o_context_init(&w->ctx, h2o_evloop_create(), &globalconf);
        w->accept_ctx.ctx = &w->ctx;
        w->accept_ctx.hosts = globalconf.hosts;
        pthread_create(&threads[i], NULL, worker_main, w);
    }
    lfs_log(LFS_LOG_INFO, "listening on http://%s:%d with %d worker threads; config: %s%s",
            app.settings.listen_host, app.settings.listen_port, nthreads,
            origin.file[0] ? origin.file : builtin ? "built-in" : "environment",
            origin.from_env_string ? " + GIFTLESS_CONFIG_STR" : "");
    if (builtin)
        lfs_log(LFS_LOG_WARN, "built-in configuration: anonymous read-write access, objects in "
                              "./lfs-storage, loopback only; pass --config for anything else");

    int sig = 0;
    sigwait(&sigs, &sig);
    lfs_log(LFS_LOG_INFO, "signal %d: stopping", sig);
    atomic_store(&stopping, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    free(workers);
    lfs_app_destroy(&app);
    return 0;
}
