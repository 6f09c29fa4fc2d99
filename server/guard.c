/* The receive guard: what must be checked about an HTTP/1 request before h2o 2.2.5 reads its
 * body, and what bounds the bodies being received before any route or credential is known.
 *
 * h2o 2.2.5 reads a whole request body before it calls a handler, and it frames the body on
 * its own terms: the first of two Content-Length headers wins, and Transfer-Encoding wins over
 * Content-Length. A proxy in front that frames the other way would be desynchronised from
 * lfsgate (request smuggling). And every body, authenticated or not, is buffered in full.
 *
 * The only hook h2o 2.2.5 gives before the body is the socket's read callback: the HTTP/1
 * connection (re)arms it with h2o_socket_read_start() for each request. This file defines
 * h2o_socket_read_start itself; the library's internal calls go through its PLT and reach this
 * definition (symbol interposition, checked at startup), which forwards to the library's own
 * (dlsym RTLD_NEXT) with a guard callback in front of the HTTP/1 reader:
 * - head guard: once the request head is complete, parse it with h2o's own parser
 *   (picohttpparser's phr_parse_request, exported by libh2o, so both agree on every byte) and
 *   refuse, before h2o sees it, a repeated Content-Length or Transfer-Encoding, or both at
 *   once (400, connection closed); then admit the body against the receive budget (503 with
 *   Retry-After when the bytes being received across all workers would pass it);
 * - body guard: nothing per read; the sweep below watches the body;
 * - direct bodies: an object upload over 4 MiB is not left to h2o at all; its body is kept
 *   back and handed to the upload handler a read at a time (section "bodies the handler
 *   reads as they arrive").
 * A refusal is written straight to the socket (nothing of this request was answered yet),
 * the socket's write side is shut, and the rest of what the client sends is drained until it
 * closes, so the client reads the answer instead of a reset.
 *
 * A body stops counting when it is handed to lfsgate (lfs_guard_body_received). A sweep on
 * each worker every SWEEP_MS walks the worker's HTTP/1 requests (h2o's own
 * foreach_request): it recomputes the bytes this worker is receiving (declared body sizes of
 * requests whose body has not been handed over yet, or what has arrived of a chunked one),
 * which corrects whatever a connection that died mid-body left counted, and cuts the connections
 * whose body arrives slower than SERVER.min_receive_rate after SERVER.receive_grace seconds (as
 * Apache's mod_reqtimeout MinRate), with shutdown(2), so h2o closes them as a client
 * disconnect. HTTP/2 streams are not covered: h2o 2.2.5 bounds them only by
 * max_upload_size and the idle timeout.
 *
 * The connection cap (SERVER.max_connections) counts the connections accepted from lfsgate's
 * listeners across all workers: an fd is marked when its connection is accepted and unmarked
 * when h2o closes the socket, which this file interposes the same way (h2o_socket_close). A
 * connection past the cap gets a 503 and is closed at once, so idle and slow clients cannot
 * take every file descriptor; out of descriptors anyway, the accept failure sheds one waiting
 * connection at a time instead of spinning on a listener that stays readable. */

#include "server/guard.h"

#include <assert.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <strings.h>
#include <sys/time.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <h2o/http1.h>

#include "common/json_write.h"
#include "common/log.h"
#include "common/metrics.h"

/* picohttpparser, as compiled into libh2o 2.2.5 (it exports the symbols; the Debian package
 * ships no header for them). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

#define SWEEP_MS 500
#define MAX_HEADERS 100                      /* H2O_MAX_HEADERS */
#define MAX_HEAD (8192 + 4096 * MAX_HEADERS) /* H2O_MAX_REQLEN: h2o gives up beyond */
#define DRAIN_MAX (1 << 20) /* bytes read from a refused client before the socket is cut */
#define RETRY_AFTER "5"     /* seconds */

typedef void (*read_start_fn)(h2o_socket_t *, h2o_socket_cb);
typedef void (*close_fn)(h2o_socket_t *);

static read_start_fn real_read_start;
static close_fn real_close;
/* h2o's HTTP/1 reader (reqread_on_read), learnt from the first accepted connection. */
static _Atomic(h2o_socket_cb) http1_read_cb;
static __thread bool accepting;
/* Bytes this worker's head guard admitted since its last sweep, and bytes of bodies handed to
 * a handler since then (both already applied to receiving_total). */
static __thread long long admitted, released;

static struct lfs_guard_settings settings;
/* Bytes being received across all workers: each worker adds its own share. */
static _Atomic long long receiving_total;

static void guard_on_head_read(h2o_socket_t *sock, const char *err);
static void guard_on_body_read(h2o_socket_t *sock, const char *err);
static void guard_on_refused_read(h2o_socket_t *sock, const char *err);
static void direct_on_socket_reuse(h2o_socket_t *sock, bool closing);

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    real_read_start = (read_start_fn)dlsym(RTLD_NEXT, "h2o_socket_read_start");
    real_close = (close_fn)dlsym(RTLD_NEXT, "h2o_socket_close");
}

/* ----------------------------------------------------------------------------------------
 * the connection cap */

static _Atomic long long open_connections;
/* counted[fd] != 0: the connection on fd was accepted and counted. Sized to RLIMIT_NOFILE at
 * init; process lifetime. */
static _Atomic unsigned char *counted;
static size_t counted_size;
/* Descriptors kept free for what a connection needs besides its socket (store connections,
 * spool files, logs). */
#define FD_RESERVE 128
#define LOG_EVERY_S 10

/* Logs at most once every LOG_EVERY_S seconds per *last (any thread), with how many events
 * were not logged in between. */
static bool log_due(_Atomic long long *last, _Atomic long long *skipped, long long *n_skipped)
{
    long long now = (long long)time(NULL), prev = atomic_load(last);
    if (now - prev < LOG_EVERY_S || !atomic_compare_exchange_strong(last, &prev, now)) {
        atomic_fetch_add(skipped, 1);
        return false;
    }
    *n_skipped = atomic_exchange(skipped, 0);
    return true;
}

/* h2o names its spool files "lfsgate-body.XXXXXX" (server/main.c sets the template) and
 * unlinks each right after mkstemp; a process killed between the two leaves the file behind.
 * Removes such files older than this call (the startup): another live process's file exists
 * for microseconds only. Main thread, at startup. */
static void sweep_spool(const char *dir)
{
    static const char prefix[] = "lfsgate-body.";
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    unsigned long removed = 0;
    unsigned long long bytes = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) != 0 ||
            strlen(e->d_name) != sizeof(prefix) - 1 + 6 ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
            sb.st_mtim.tv_sec > start.tv_sec ||
            (sb.st_mtim.tv_sec == start.tv_sec && sb.st_mtim.tv_nsec >= start.tv_nsec))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
            removed++;
            bytes += (unsigned long long)sb.st_blocks * 512u;
        }
    }
    closedir(d);
    if (removed > 0)
        lfs_log(LFS_LOG_INFO,
                "removed %lu request body files left in %s by an interrupted process (%llu bytes)",
                removed, dir, bytes);
}

static int init_connection_cap(struct lfs_error *err)
{
    if (settings.max_connections <= 0)
        return 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        rl.rlim_cur = 1 << 20;
    if (rl.rlim_cur > (1 << 24))
        rl.rlim_cur = 1 << 24;
    long long usable = (long long)rl.rlim_cur - FD_RESERVE;
    if (usable < 16)
        usable = 16;
    if (settings.max_connections > usable) {
        lfs_log(LFS_LOG_INFO,
                "SERVER.max_connections: %lld lowered to %lld to fit the open files limit "
                "(ulimit -n %llu, %d kept for other use); raise the limit for more",
                settings.max_connections, usable, (unsigned long long)rl.rlim_cur, FD_RESERVE);
        settings.max_connections = usable;
    }
    counted_size = (size_t)rl.rlim_cur;
    counted = calloc(counted_size, 1);
    if (counted == NULL)
        return lfs_error_set(err, 500, "out of memory");
    return 0;
}

/* Answers 503 on a connection past the cap and closes it. */
static void refuse_connection(h2o_socket_t *sock)
{
    static _Atomic long long last_log, skipped;
    char body[300], res[600];
    int blen = snprintf(body, sizeof(body),
                        "{\"message\":\"the server has as many connections open as it accepts "
                        "(SERVER.max_connections = %lld); retry after the Retry-After seconds\"}",
                        settings.max_connections);
    int n =
        snprintf(res, sizeof(res),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                 "application/vnd.git-lfs+json\r\nContent-Length: %d\r\nRetry-After: " RETRY_AFTER
                 "\r\nConnection: close\r\n\r\n%s",
                 blen, body);
    int fd = h2o_socket_get_fd(sock);
    ssize_t w = send(fd, res, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    real_close(sock);
    lfs_metrics_refusal(LFS_METRICS_REFUSED_CONNS);
    long long quiet;
    if (log_due(&last_log, &skipped, &quiet))
        lfs_log(LFS_LOG_WARN,
                "connection refused: %lld connections open, SERVER.max_connections reached "
                "(%lld more refused since the last such message)",
                atomic_load(&open_connections), quiet);
}

/* A descriptor each worker holds from its start, given up for a moment to accept and close
 * one waiting connection when the process has no other. */
static __thread int spare_fd = -1;
/* Listeners this worker stopped reading because not even the spare was left; the next sweep
 * starts them again. */
#define MAX_PAUSED 4
static __thread struct {
    h2o_socket_t *sock;
    h2o_socket_cb cb;
} paused[MAX_PAUSED];

/* A listener closed while paused (graceful stop) must not be started again. */
static void forget_paused(h2o_socket_t *sock)
{
    for (int i = 0; i < MAX_PAUSED; i++)
        if (paused[i].sock == sock)
            paused[i].sock = NULL;
}

static void resume_listeners(void)
{
    for (int i = 0; i < MAX_PAUSED; i++) {
        if (paused[i].sock != NULL)
            real_read_start(paused[i].sock, paused[i].cb);
        paused[i].sock = NULL;
    }
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void lfs_guard_accept_failed(h2o_socket_t *listener, int error)
{
    static _Atomic long long last_log, skipped;
    if (error != EMFILE && error != ENFILE)
        return; /* EAGAIN (another worker took it), ECONNABORTED...: nothing to do */
    bool shed = false;
    if (spare_fd >= 0) {
        close(spare_fd);
        int fd = accept4(h2o_socket_get_fd(listener), NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            shed = true;
        }
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (!shed) {
        /* The listener stays readable while the connection waits: stop reading it until the
         * next sweep rather than spin. */
        for (int i = 0; i < MAX_PAUSED; i++) {
            if (paused[i].sock == NULL) {
                paused[i].sock = listener;
                paused[i].cb = listener->_cb.read;
                h2o_socket_read_stop(listener);
                break;
            }
        }
    }
    long long quiet;
    if (log_due(&last_log, &skipped, &quiet))
        lfs_log(LFS_LOG_ERROR,
                "cannot accept connections: %s; %lld connections open; %s (%lld more such "
                "failures since the last message); raise the open files limit (ulimit -n) or "
                "lower SERVER.max_connections",
                strerror(error), atomic_load(&open_connections),
                shed ? "a waiting connection was closed" : "connections wait in the backlog",
                quiet);
}

/* The interposed close: every h2o_socket_close in the process comes here. */
void h2o_socket_close(h2o_socket_t *sock)
{
    pthread_once(&resolve_once, resolve);
    int fd = h2o_socket_get_fd(sock);
    if (counted != NULL && fd >= 0 && (size_t)fd < counted_size && atomic_exchange(&counted[fd], 0))
        atomic_fetch_sub(&open_connections, 1);
    forget_paused(sock);
    direct_on_socket_reuse(sock, true);
    real_close(sock);
}

int lfs_guard_init(const struct lfs_guard_settings *s, struct lfs_error *err)
{
    settings = *s;
    pthread_once(&resolve_once, resolve);
    if (real_read_start == NULL || real_read_start == h2o_socket_read_start)
        return lfs_error_set(err, 500,
                             "internal error: cannot reach libh2o's h2o_socket_read_start (lfsgate "
                             "must be linked against the shared libh2o-evloop)");
    if (real_close == NULL || real_close == h2o_socket_close)
        return lfs_error_set(err, 500,
                             "internal error: cannot reach libh2o's h2o_socket_close (lfsgate "
                             "must be linked against the shared libh2o-evloop)");
    if (settings.spool_dir != NULL)
        sweep_spool(settings.spool_dir);
    return init_connection_cap(err);
}

/* ----------------------------------------------------------------------------------------
 * the head of a request, parsed as h2o will parse it */

struct head {
    size_t len;               /* bytes of the head, body excluded */
    long long content_length; /* -1: none */
    bool chunked;
    bool expect_continue;
    bool expect_other; /* an Expect other than 100-continue (h2o answers 417) */
    bool upgrade;
    int minor_version;
    h2o_iovec_t method, path;  /* into the parsed buffer */
    char *content_length_name; /* into the parsed buffer; NULL: none */
    const char *refusal;       /* a framing error: the request must be refused */
};

static bool name_is(const struct phr_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* Returns 1 with *hd filled when the head in buf[0..len) is complete, 0 when more is needed
 * or h2o will refuse it itself (it answers 400 for what its parser rejects). */
static int parse_head(const char *buf, size_t len, struct head *hd)
{
    const char *method, *path;
    size_t method_len, path_len, nheaders = MAX_HEADERS;
    int minor;
    struct phr_header headers[MAX_HEADERS];
    int n = phr_parse_request(buf, len < MAX_HEAD ? len : MAX_HEAD, &method, &method_len, &path,
                              &path_len, &minor, headers, &nheaders, 0);
    if (n <= 0)
        return 0;
    *hd = (struct head){.len = (size_t)n,
                        .content_length = -1,
                        .minor_version = minor,
                        .method = h2o_iovec_init(method, method_len),
                        .path = h2o_iovec_init(path, path_len)};
    int cl = 0, te = 0;
    for (size_t i = 0; i < nheaders; i++) {
        const struct phr_header *h = &headers[i];
        if (h->name == NULL)
            continue; /* an obsolete line folding: h2o joins it to the previous value */
        if (name_is(h, "content-length")) {
            cl++;
            hd->content_length_name = (char *)h->name;
            char digits[24];
            size_t k = 0;
            for (; k < h->value_len && k < sizeof(digits) - 1; k++)
                digits[k] = h->value[k];
            digits[k] = '\0';
            char *end;
            long long v = k > 0 && k < 20 ? strtoll(digits, &end, 10) : -1;
            hd->content_length = v >= 0 && *end == '\0' ? v : -1;
        } else if (name_is(h, "transfer-encoding")) {
            te++;
            hd->chunked = h->value_len == 7 && strncasecmp(h->value, "chunked", 7) == 0;
        } else if (name_is(h, "expect")) {
            hd->expect_continue = true;
            hd->expect_other |=
                !(h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0);
        } else if (name_is(h, "upgrade")) {
            hd->upgrade = true;
        }
    }
    if (cl > 1)
        hd->refusal = "the request has more than one Content-Length header; send exactly one";
    else if (te > 1)
        hd->refusal = "the request has more than one Transfer-Encoding header; send one "
                      "\"Transfer-Encoding: chunked\"";
    else if (cl > 0 && te > 0)
        hd->refusal = "the request has both Content-Length and Transfer-Encoding; send one of them";
    return 1;
}

/* What the head guard admits a body at: its Content-Length. A chunked body has no size up
 * front; the sweep counts what of it has arrived. */
static long long admitted_size(const struct head *hd)
{
    return hd->chunked || hd->content_length < 0 ? 0 : hd->content_length;
}

/* ----------------------------------------------------------------------------------------
 * refusals */

/* Answers status with a JSON message straight on the socket, shuts its write side and drains
 * what the client still sends until it closes (h2o then closes the connection). */
static void refuse(h2o_socket_t *sock, int status, const char *reason, const char *message,
                   enum lfs_metrics_refusal why)
{
    char body[512], res[1024];
    size_t used, blen = 0;
    memcpy(body, "{\"message\":\"", 12);
    blen = 12 + lfs_json_escape(body + 12, sizeof(body) - 15, message, strlen(message), &used);
    memcpy(body + blen, "\"}", 2);
    blen += 2;
    int n = snprintf(res, sizeof(res),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/vnd.git-lfs+json\r\n"
                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%.*s",
                     status, reason, blen, status == 503 ? "Retry-After: " RETRY_AFTER "\r\n" : "",
                     (int)blen, body);
    int fd = h2o_socket_get_fd(sock);
    /* Best effort: a small answer on a socket that has written nothing for this request. */
    ssize_t w = send(fd, res, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    h2o_buffer_consume(&sock->input, sock->input->size);
    sock->bytes_read = 0; /* counts what is drained from now on */
    real_read_start(sock, guard_on_refused_read);
    lfs_metrics_refusal(why);
}

static void guard_on_refused_read(h2o_socket_t *sock, const char *err)
{
    if (err == NULL) {
        h2o_buffer_consume(&sock->input, sock->input->size);
        if (sock->bytes_read <= DRAIN_MAX)
            return;
        /* Still sending: stop listening to it. */
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
        return;
    }
    /* Closed: h2o's reader closes the connection (it never saw this request). */
    atomic_load (&http1_read_cb)(sock, err);
}

/* Cuts a connection whose body arrives slower than SERVER.min_receive_rate: h2o (or the
 * handler reading it) sees the end of input and closes it as a client disconnect. */
static void slow_body_cut(h2o_socket_t *sock, long long received, long long size,
                          uint64_t elapsed_ms)
{
    lfs_log(LFS_LOG_WARN,
            "closing a connection whose request body arrives slower than "
            "SERVER.min_receive_rate (%lld bytes/s): %lld of %lld bytes in %llu s",
            settings.min_receive_rate, received, size, (unsigned long long)(elapsed_ms / 1000));
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    lfs_metrics_refusal(LFS_METRICS_REFUSED_SLOW);
}

/* ----------------------------------------------------------------------------------------
 * bodies the handler reads as they arrive
 *
 * h2o 2.2.5 calls a handler only once the whole body is in the socket's input buffer, which
 * past 4 MiB is a file it maps and grows in spool_dir: every byte of a large upload was
 * written twice, and nothing of the upload's own work could start before its last byte.
 * For a request the head guard finds eligible (an HTTP/1.1 PUT with a Content-Length of at
 * least settings.direct_min, within max_upload_size, to a path settings.direct_route
 * accepts: an object upload to a store that can take a body in pieces), the head guard
 * renames the Content-Length header in the input (same length, so the head parses the same
 * otherwise), and h2o dispatches the request as one without a body. The handler asks
 * lfs_guard_direct_length whether its body was kept back, and reads it with
 * lfs_guard_direct_read: the socket's input is swapped for a buffer of this file's (h2o's
 * keeps the head, which the request's method, path and headers point into), each read is
 * handed to the handler and the buffer reused, and once the declared length has arrived h2o's
 * input is put back holding the head only, which h2o consumes after the answer as usual.
 * Only the declared length is read: bytes past it (a pipelined request) cannot be given back,
 * so the connection is then closed after the answer. A handler that answers without reading
 * the body gets it drained first (lfs_guard_direct_pending, called by server/http.c before it
 * answers), so the client reads the answer, as when h2o read the body; a client waiting for
 * "100 Continue" is answered at once and the connection closed instead. */

#define DIRECT_READ_BUF (256 * 1024)

struct direct_body {
    struct direct_body *next;
    h2o_socket_t *sock;
    h2o_req_t *req;          /* the request, once the handler reads the body */
    h2o_buffer_t *h2o_input; /* h2o's input while the body goes into this one's */
    size_t head_len;
    long long length, received;
    uint64_t begun_ms;
    bool expect_continue;
    bool reading;  /* lfs_guard_direct_read was called */
    bool writing;  /* "100 Continue" being written */
    bool complete; /* every byte arrived (the end waits for the write, if any) */
    bool discard;  /* the handler wants no more of it */
    bool cut;      /* the sweep shut the connection down */
    lfs_guard_direct_data_cb on_data;
    lfs_guard_direct_end_cb on_end;
    void *arg;
};

/* This worker's bodies kept back from h2o (few at a time: a list). */
static __thread struct direct_body *direct_bodies;
/* The buffers direct bodies are read into: never mapped to a file, never recycled (so any
 * thread may use it); each body's buffer is allocated once and reused for every read. */
static h2o_buffer_prototype_t direct_prototype = {.allocator = {.max = 0},
                                                  ._initial_buf = {.capacity = DIRECT_READ_BUF}};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct direct_body *direct_find(h2o_socket_t *sock)
{
    for (struct direct_body *d = direct_bodies; d != NULL; d = d->next)
        if (d->sock == sock)
            return d;
    return NULL;
}

/* Unlinks and frees d, giving the socket h2o's input back if this had swapped it. */
static void direct_forget(struct direct_body *d)
{
    for (struct direct_body **p = &direct_bodies; *p != NULL; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    if (d->h2o_input != NULL) {
        h2o_buffer_dispose(&d->sock->input);
        d->sock->input = d->h2o_input;
    }
    if (settings.receive_budget > 0 && d->length > 0) {
        released += d->length; /* the sweep stops counting it too */
        atomic_fetch_sub(&receiving_total, d->length);
    }
    free(d);
}

static bool direct_eligible(h2o_socket_t *sock, const struct head *hd)
{
    if (settings.direct_min <= 0 || settings.direct_route == NULL || hd->refusal != NULL ||
        hd->chunked || hd->content_length < settings.direct_min ||
        hd->content_length > settings.max_upload_size || hd->content_length_name == NULL ||
        hd->minor_version != 1 || hd->upgrade || hd->expect_other ||
        !h2o_memis(hd->method.base, hd->method.len, H2O_STRLIT("PUT")) || sock->data == NULL ||
        direct_find(sock) != NULL)
        return false;
    const char *q = memchr(hd->path.base, '?', hd->path.len);
    size_t plen = q != NULL ? (size_t)(q - hd->path.base) : hd->path.len;
    h2o_conn_t *conn = sock->data; /* h2o's HTTP/1 connection begins with its h2o_conn_t */
    return settings.direct_route(conn->ctx, hd->path.base, plen);
}

/* Keeps the body of the request whose head is hd back from h2o. */
static void direct_begin(h2o_socket_t *sock, const struct head *hd)
{
    struct direct_body *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;                                     /* h2o reads the body as usual */
    static const char renamed[] = "Lfsgate-Length"; /* as long as "Content-Length" */
    _Static_assert(sizeof(renamed) == sizeof("Content-Length"), "same length");
    memcpy(hd->content_length_name, renamed, sizeof(renamed) - 1);
    *d = (struct direct_body){.next = direct_bodies,
                              .sock = sock,
                              .head_len = hd->len,
                              .length = hd->content_length,
                              .begun_ms = now_ms(),
                              .expect_continue = hd->expect_continue};
    direct_bodies = d;
}

long long lfs_guard_direct_length(h2o_req_t *req)
{
    h2o_socket_t *sock = req->version < 0x200 ? req->conn->callbacks->get_socket(req->conn) : NULL;
    struct direct_body *d = sock != NULL ? direct_find(sock) : NULL;
    return d != NULL && !d->reading ? d->length : -1;
}

/* Every byte arrived and "100 Continue" (if any) is written: gives h2o its input back and
 * tells the handler. */
static void direct_end(struct direct_body *d)
{
    h2o_socket_read_stop(d->sock);
    lfs_guard_direct_end_cb cb = d->on_end;
    void *arg = d->arg;
    direct_forget(d);
    cb(arg, true);
}

/* Hands what the buffer holds of the body to the handler, and ends when all is there. */
static void direct_take(struct direct_body *d)
{
    h2o_buffer_t *in = d->sock->input;
    size_t n = in->size;
    if ((long long)n > d->length - d->received) {
        n = (size_t)(d->length - d->received);
        d->req->http1_is_persistent = 0; /* a pipelined request: see above */
    }
    if (n > 0 && !d->discard && d->on_data(d->arg, in->bytes, n) < 0)
        d->discard = true;
    d->received += (long long)n;
    /* Emptied rather than consumed: h2o_buffer_consume would free it, and the next read
     * allocate it again. */
    in->size = 0;
    in->bytes = in->_buf;
    if (d->received == d->length) {
        d->complete = true;
        if (!d->writing)
            direct_end(d);
    }
}

static void direct_on_read(h2o_socket_t *sock, const char *err)
{
    struct direct_body *d = direct_find(sock);
    if (d == NULL) {
        h2o_socket_read_stop(sock); /* cannot happen: the body's end stops reading */
        return;
    }
    if (err == NULL) {
        direct_take(d);
        return;
    }
    /* The client went away (or the sweep cut it): the handler learns it, then h2o closes the
     * connection as a client disconnect, which disposes the request. */
    h2o_socket_read_stop(sock);
    lfs_guard_direct_end_cb cb = d->on_end;
    void *arg = d->arg;
    direct_forget(d);
    cb(arg, false);
    atomic_load (&http1_read_cb)(sock, err);
}

static void direct_on_continue_written(h2o_socket_t *sock, const char *err)
{
    struct direct_body *d = direct_find(sock);
    if (d == NULL)
        return;
    d->writing = false;
    if (err != NULL)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR); /* the read side sees it next */
    else if (d->complete)
        direct_end(d);
}

void lfs_guard_direct_read(h2o_req_t *req, lfs_guard_direct_data_cb on_data,
                           lfs_guard_direct_end_cb on_end, void *arg)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    struct direct_body *d = direct_find(sock);
    assert(d != NULL && !d->reading);
    d->reading = true;
    d->req = req;
    d->on_data = on_data;
    d->on_end = on_end;
    d->arg = arg;
    d->discard = on_data == NULL;
    /* What arrived with the head is in h2o's input, behind it: take it from there, and leave
     * h2o's input holding the head alone. */
    h2o_buffer_t *own;
    h2o_buffer_init(&own, &direct_prototype);
    d->h2o_input = sock->input;
    sock->input = own;
    h2o_buffer_t *in = d->h2o_input;
    size_t early = in->size - d->head_len;
    if (early > 0) {
        size_t n = (long long)early > d->length ? (size_t)d->length : early;
        if (early > n)
            req->http1_is_persistent = 0;
        if (!d->discard && d->on_data(arg, in->bytes + d->head_len, n) < 0)
            d->discard = true;
        d->received = (long long)n;
        in->size = d->head_len;
    }
    if (d->expect_continue && d->received == 0) {
        static h2o_iovec_t res = {H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n")};
        d->writing = true;
        h2o_socket_write(sock, &res, 1, direct_on_continue_written);
    }
    if (d->received == d->length) {
        d->complete = true;
        if (!d->writing)
            direct_end(d);
        return;
    }
    real_read_start(sock, direct_on_read);
}

bool lfs_guard_direct_pending(h2o_req_t *req)
{
    if (req->version >= 0x200)
        return false;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    struct direct_body *d = sock != NULL ? direct_find(sock) : NULL;
    if (d == NULL || d->reading)
        return false;
    if (d->expect_continue && (size_t)(sock->input->size) == d->head_len) {
        /* The client waits for a go-ahead that will not come: answer now, and close the
         * connection after (its body is never read). */
        req->http1_is_persistent = 0;
        direct_forget(d);
        return false;
    }
    return true;
}

/* h2o arms its reader for the next request, or closes the socket: a body kept back that the
 * handler never read is still on the connection, which must then not be read as a request. */
static void direct_on_socket_reuse(h2o_socket_t *sock, bool closing)
{
    struct direct_body *d = direct_find(sock);
    if (d == NULL)
        return;
    if (!closing)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    direct_forget(d);
}

/* The sweep's part: bodies being read count against the budget at their declared length, and
 * one arriving slower than min_receive_rate is cut as h2o's are. */
static void direct_sweep(long long *receiving, uint64_t now)
{
    for (struct direct_body *d = direct_bodies; d != NULL; d = d->next) {
        *receiving += d->length;
        if (d->cut)
            continue; /* its reader sees the end of input at its next read */
        uint64_t elapsed = now - d->begun_ms;
        if (settings.request_timeout > 0 && elapsed > (uint64_t)settings.request_timeout * 1000) {
            /* What h2o's own timeout does for the bodies it reads. */
            lfs_log(LFS_LOG_WARN,
                    "closing a connection whose request body did not arrive within "
                    "SERVER.request_timeout (%lld s): %lld of %lld bytes",
                    settings.request_timeout, d->received, d->length);
            shutdown(h2o_socket_get_fd(d->sock), SHUT_RDWR);
            d->cut = true;
        } else if (settings.min_receive_rate > 0 &&
                   elapsed >
                       (uint64_t)settings.receive_grace * 1000 +
                           (uint64_t)d->received * 1000 / (uint64_t)settings.min_receive_rate) {
            slow_body_cut(d->sock, d->received, d->length, elapsed);
            d->cut = true;
        }
    }
}

/* ----------------------------------------------------------------------------------------
 * the head guard */

/* A body larger than h2o's memory threshold spills to a file in spool_dir, which h2o reserves
 * with posix_fallocate as it grows (doubling, so up to about twice the body). When that fails
 * h2o can only drop the connection, and the client sees a reset with no reason: refuse such a
 * body up front with a 507 when spool_dir has less than twice its size free. Several bodies
 * arriving at once can still exhaust the space between these checks. */
static bool spool_too_full(long long size)
{
    if (settings.spool_dir == NULL || size <= (long long)h2o_socket_buffer_mmap_settings.threshold)
        return false;
    struct statvfs vfs;
    if (statvfs(settings.spool_dir, &vfs) < 0)
        return false; /* cannot tell: h2o's own reservation decides */
    return (unsigned long long)vfs.f_bavail * vfs.f_frsize < 2ull * (unsigned long long)size;
}

/* Checks a complete head in the socket's input. Returns 0 when h2o may go on (and switches
 * the socket to the body guard), -1 when the request was refused, 1 when the head is not
 * complete yet. */
static int check_head(h2o_socket_t *sock)
{
    struct head hd;
    if (sock->input->size == 0 || !parse_head(sock->input->bytes, sock->input->size, &hd))
        return 1;
    if (hd.refusal != NULL) {
        refuse(sock, 400, "Bad Request", hd.refusal, LFS_METRICS_REFUSED_FRAMING);
        return -1;
    }
    long long size = admitted_size(&hd);
    bool direct = direct_eligible(sock, &hd); /* never spooled */
    if (!direct && spool_too_full(size)) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "no space to receive this %lld-byte body: the server's spool directory "
                 "(SERVER.spool_dir) is full; retry later, or ask the operator to free space there",
                 size);
        refuse(sock, 507, "Insufficient Storage", msg, LFS_METRICS_REFUSED_SPACE);
        return -1;
    }
    if (size > 0 && settings.receive_budget > 0) {
        long long now = atomic_load(&receiving_total);
        /* One body is always admitted when nothing else is being received: a budget smaller
         * than max_upload_size must not make large uploads impossible. */
        if (now > 0 && now + size > settings.receive_budget) {
            refuse(sock, 503, "Service Unavailable",
                   "the server is receiving as many request bodies as it accepts at once "
                   "(SERVER.receive_budget); retry after the Retry-After seconds",
                   LFS_METRICS_REFUSED_BUSY);
            return -1;
        }
        /* Counted until the next sweep recounts this worker's requests. */
        atomic_fetch_add(&receiving_total, size);
        admitted += size;
    }
    real_read_start(sock, guard_on_body_read);
    if (direct)
        direct_begin(sock, &hd);
    return 0;
}

static void guard_on_head_read(h2o_socket_t *sock, const char *err)
{
    if (err == NULL && check_head(sock) < 0)
        return;
    atomic_load (&http1_read_cb)(sock, err);
}

static void guard_on_body_read(h2o_socket_t *sock, const char *err)
{
    atomic_load (&http1_read_cb)(sock, err);
}

/* The interposed entry point: every h2o_socket_read_start in the process comes here, from
 * libh2o's own code as well as from lfsgate's. */
void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    pthread_once(&resolve_once, resolve); /* before lfs_guard_init too (unit tests) */
    h2o_socket_cb http1 = atomic_load(&http1_read_cb);
    if (http1 == NULL && accepting) {
        /* The first HTTP/1 connection: h2o_http1_accept arms its reader here. */
        atomic_compare_exchange_strong(&http1_read_cb, &http1, cb);
        http1 = cb;
    }
    if (cb != http1 || http1 == NULL) {
        real_read_start(sock, cb);
        return;
    }
    /* h2o arms its reader for a new request (keep-alive: a pipelined head may already be in
     * the input), or again after answering "100 Continue" (the head was admitted then). The
     * two cannot be told apart from here when a pipelined head asks for 100 Continue, so the
     * framing is checked in both cases and only the admission is skipped: such a body is
     * counted by the next sweep. */
    direct_on_socket_reuse(sock, false);
    struct head hd;
    if (sock->input->size != 0 && parse_head(sock->input->bytes, sock->input->size, &hd) &&
        hd.expect_continue && sock->input->size == hd.len) {
        real_read_start(sock, guard_on_body_read);
        if (hd.refusal != NULL)
            refuse(sock, 400, "Bad Request", hd.refusal, LFS_METRICS_REFUSED_FRAMING);
        return;
    }
    real_read_start(sock, guard_on_head_read);
    check_head(sock);
}

void lfs_guard_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock)
{
    if (counted != NULL) {
        int fd = h2o_socket_get_fd(sock);
        if (atomic_load(&open_connections) >= settings.max_connections) {
            refuse_connection(sock);
            return;
        }
        if (fd >= 0 && (size_t)fd < counted_size && !atomic_exchange(&counted[fd], 1))
            atomic_fetch_add(&open_connections, 1);
    }
    accepting = true;
    h2o_accept(ctx, sock);
    accepting = false;
}

void lfs_guard_body_received(h2o_req_t *req)
{
    if (settings.receive_budget <= 0 || req->entity.base == NULL || req->version >= 0x200)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    struct head hd;
    if (sock == NULL || !parse_head(sock->input->bytes, sock->input->size, &hd))
        return;
    long long size = admitted_size(&hd);
    if (size > 0) {
        released += size;
        atomic_fetch_sub(&receiving_total, size);
    }
}

/* ----------------------------------------------------------------------------------------
 * the sweep */

struct sweep {
    long long receiving;
    uint64_t now_ms;
};

static int sweep_request(h2o_req_t *req, void *arg)
{
    struct sweep *sw = arg;
    /* In the body: the head was parsed and the body not handed over yet. */
    if (req->timestamps.request_body_begin_at.tv_sec == 0 || req->entity.base != NULL)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL)
        return 0;
    struct head hd;
    if (!parse_head(sock->input->bytes, sock->input->size, &hd))
        return 0;
    long long received = (long long)(sock->input->size - hd.len);
    long long size = admitted_size(&hd);
    sw->receiving += size > received ? size : received;
    if (settings.min_receive_rate <= 0)
        return 0;
    const struct timeval *t0 = &req->timestamps.request_body_begin_at;
    uint64_t begun_ms = (uint64_t)t0->tv_sec * 1000 + (uint64_t)t0->tv_usec / 1000;
    uint64_t allowed_ms = (uint64_t)settings.receive_grace * 1000 +
                          (uint64_t)received * 1000 / (uint64_t)settings.min_receive_rate;
    if (sw->now_ms > begun_ms + allowed_ms)
        slow_body_cut(sock, received, size, sw->now_ms - begun_ms);
    return 0;
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    struct lfs_guard_worker *g = H2O_STRUCT_FROM_MEMBER(struct lfs_guard_worker, entry, entry);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct sweep sw = {.now_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000};
    resume_listeners();
    H2O_HTTP1_CALLBACKS.foreach_request(g->ctx, sweep_request, &sw);
    direct_sweep(&sw.receiving, sw.now_ms);
    /* Replace this worker's share (and what its head guard added since) with the recount. */
    atomic_fetch_add(&receiving_total, sw.receiving - (g->counted + admitted - released));
    g->counted = sw.receiving;
    admitted = released = 0;
    h2o_timeout_link(g->ctx->loop, &g->timeout, &g->entry);
}

void lfs_guard_worker_start(struct lfs_guard_worker *g, h2o_context_t *ctx)
{
    *g = (struct lfs_guard_worker){.ctx = ctx};
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    h2o_timeout_init(ctx->loop, &g->timeout, SWEEP_MS);
    g->entry.cb = on_sweep;
    h2o_timeout_link(ctx->loop, &g->timeout, &g->entry);
}

void lfs_guard_worker_stop(struct lfs_guard_worker *g)
{
    if (g->ctx == NULL)
        return;
    h2o_timeout_unlink(&g->entry);
    h2o_timeout_dispose(g->ctx->loop, &g->timeout);
    atomic_fetch_sub(&receiving_total, g->counted + admitted - released);
    admitted = released = 0;
    g->ctx = NULL;
    for (int i = 0; i < MAX_PAUSED; i++)
        paused[i].sock = NULL; /* the listeners are closed by now */
    if (spare_fd >= 0)
        close(spare_fd);
    spare_fd = -1;
}
