/* Unit tests for storage/http_client.c on a real h2o event loop against a real HTTP/1.1
 * upstream: a small threaded server started inside the test on a free loopback port (one
 * thread per connection, keep-alive, counts accepted connections). Its paths choose the
 * behaviour: /ok, /delay/<ms>, /status/<code>, /big/<bytes> (a position-dependent pattern),
 * /close (closes mid-body), /hang (never answers), PUT /put (answers the body's SHA-256),
 * PUT /slowput (reads the body slowly).
 * Covers concurrency (100 HEADs in about one round trip), keep-alive reuse, collected and
 * streamed (paused/resumed) bodies, uploads, timeouts, refused and broken connections,
 * cancellation by pool disposal (also from inside on_data) and URL queries kept out of
 * error messages. Run it under ASan too: cancellation must not leak. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "storage/http_client.h"

#define LOOP_TURNS 3000 /* x 10 ms at most per wait */

/* ---- the upstream ---- */

struct upstream {
    int listen_fd;
    int port;
    pthread_t accept_thread;
    atomic_int accepted;
    atomic_int requests;
    atomic_int in_flight, max_in_flight;
    atomic_bool stop;
    pthread_mutex_t lock;
    struct conn **conns;
    size_t nconns, capconns;
    /* the last PUT */
    atomic_bool put_saw_expect;
    atomic_long put_len;
};

struct conn {
    struct upstream *up;
    int fd;
    pthread_t thread;
};

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 7) ^ (i >> 9) ^ (i >> 17));
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_head(int fd, int status, const char *extra, long long content_length)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %lld\r\n%sConnection: keep-alive\r\n\r\n",
                     status, content_length, extra != NULL ? extra : "");
    return send_all(fd, head, (size_t)n);
}

/* Sleeps ms, waking early when the server stops. */
static void nap(struct upstream *up, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&up->stop); waited += 5)
        usleep(5000);
}

static void note_in_flight(struct upstream *up, int delta)
{
    int now = atomic_fetch_add(&up->in_flight, delta) + delta;
    int max = atomic_load(&up->max_in_flight);
    while (now > max && !atomic_compare_exchange_weak(&up->max_in_flight, &max, now))
        ;
}

/* Serves the requests of one connection; returns when it closes or the server stops. */
static void *conn_main(void *p)
{
    struct conn *c = p;
    struct upstream *up = c->up;
    int fd = c->fd;
    static __thread char buf[65536];
    size_t have = 0;

    for (;;) {
        /* read one request head */
        char *end;
        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            if (have == sizeof(buf))
                goto out;
            ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char method[16], target[2048];
        if (sscanf(buf, "%15s %2047s", method, target) != 2)
            goto out;
        char *q = strchr(target, '?');
        if (q != NULL)
            *q = '\0';
        long long content_length = 0;
        bool expect = false;
        for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
            if (strncasecmp(line, "Content-Length:", 15) == 0)
                content_length = atoll(line + 15);
            else if (strncasecmp(line, "Expect:", 7) == 0)
                expect = true;
        }
        bool head_only = strcmp(method, "HEAD") == 0;
        atomic_fetch_add(&up->requests, 1);
        note_in_flight(up, 1);

        /* the request body (only PUT has one here) */
        size_t used = head_len;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        long long left = content_length;
        size_t take = have - used < (unsigned long long)left ? have - used : (size_t)left;
        EVP_DigestUpdate(md, buf + used, take);
        used += take;
        left -= (long long)take;
        memmove(buf, buf + used, have - used);
        have -= used;
        static __thread char body[65536];
        while (left > 0) {
            ssize_t n =
                recv(fd, body, left < (long long)sizeof(body) ? (size_t)left : sizeof(body), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                EVP_MD_CTX_free(md);
                note_in_flight(up, -1);
                goto out;
            }
            EVP_DigestUpdate(md, body, (size_t)n);
            left -= n;
            if (strcmp(target, "/slowput") == 0)
                nap(up, 10); /* a store that reads slowly: the upload stays in flight */
        }
        unsigned char digest[32];
        EVP_DigestFinal_ex(md, digest, NULL);
        EVP_MD_CTX_free(md);

        int rc = 0;
        if (strcmp(method, "PUT") == 0 && strcmp(target, "/put") == 0) {
            atomic_store(&up->put_saw_expect, expect);
            atomic_store(&up->put_len, (long)content_length);
            char hex[65];
            for (int i = 0; i < 32; i++)
                sprintf(hex + 2 * i, "%02x", digest[i]);
            rc = send_head(fd, 201, NULL, 64);
            if (rc == 0)
                rc = send_all(fd, hex, 64);
        } else if (strcmp(target, "/ok") == 0) {
            rc = send_head(fd, 200,
                           "ETag: \"etag-1\"\r\nContent-Type: text/plain\r\n"
                           "x-ms-request-id: req-42\r\n",
                           5);
            if (rc == 0 && !head_only)
                rc = send_all(fd, "hello", 5);
        } else if (strncmp(target, "/delay/", 7) == 0) {
            nap(up, atoi(target + 7));
            rc = send_head(fd, 200, NULL, 7);
            if (rc == 0 && !head_only)
                rc = send_all(fd, "delayed", 7);
        } else if (strncmp(target, "/status/", 8) == 0) {
            rc = send_head(fd, atoi(target + 8), NULL, 10);
            if (rc == 0 && !head_only)
                rc = send_all(fd, "error body", 10);
        } else if (strncmp(target, "/big/", 5) == 0) {
            size_t total = (size_t)atoll(target + 5);
            rc = send_head(fd, 200, "Content-Type: application/octet-stream\r\n", (long long)total);
            for (size_t off = 0; rc == 0 && !head_only && off < total;) {
                size_t n = total - off < sizeof(body) ? total - off : sizeof(body);
                for (size_t i = 0; i < n; i++)
                    body[i] = (char)pattern(off + i);
                rc = send_all(fd, body, n);
                off += n;
            }
        } else if (strcmp(target, "/close") == 0) {
            send_head(fd, 200, NULL, 100000);
            send_all(fd, "0123456789", 10);
            rc = -1;
        } else if (strcmp(target, "/hang") == 0) {
            /* never answer: wait for the client to give up and close */
            while (!atomic_load(&up->stop)) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                if (poll(&pfd, 1, 20) > 0)
                    break;
            }
            rc = -1;
        } else {
            rc = send_head(fd, 404, NULL, 0);
        }
        note_in_flight(up, -1);
        if (rc != 0)
            goto out;
    }
out:
    pthread_mutex_lock(&up->lock);
    shutdown(fd, SHUT_RDWR);
    close(fd);
    c->fd = -1;
    pthread_mutex_unlock(&up->lock);
    return NULL;
}

static void *accept_main(void *p)
{
    struct upstream *up = p;
    for (;;) {
        int fd = accept(up->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        if (atomic_load(&up->stop)) {
            close(fd);
            return NULL;
        }
        atomic_fetch_add(&up->accepted, 1);
        pthread_mutex_lock(&up->lock);
        if (up->nconns == up->capconns) {
            up->capconns = up->capconns != 0 ? up->capconns * 2 : 64;
            up->conns = realloc(up->conns, up->capconns * sizeof(*up->conns));
        }
        /* each connection thread keeps a pointer to its own entry: allocated separately */
        struct conn *c = calloc(1, sizeof(*c));
        c->up = up;
        c->fd = fd;
        up->conns[up->nconns++] = c;
        pthread_create(&c->thread, NULL, conn_main, c);
        pthread_mutex_unlock(&up->lock);
    }
}

static void upstream_start(struct upstream *up)
{
    memset(up, 0, sizeof(*up));
    pthread_mutex_init(&up->lock, NULL);
    up->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(up->listen_fd >= 0);
    int one = 1;
    setsockopt(up->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(up->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(up->listen_fd, 512), 0);
    socklen_t len = sizeof(sin);
    getsockname(up->listen_fd, (struct sockaddr *)&sin, &len);
    up->port = ntohs(sin.sin_port);
    pthread_create(&up->accept_thread, NULL, accept_main, up);
}

static void upstream_stop(struct upstream *up)
{
    atomic_store(&up->stop, true);
    shutdown(up->listen_fd, SHUT_RDWR);
    pthread_join(up->accept_thread, NULL);
    close(up->listen_fd);
    struct conn **list = up->conns;
    pthread_mutex_lock(&up->lock);
    for (size_t i = 0; i < up->nconns; i++)
        if (list[i]->fd >= 0)
            shutdown(list[i]->fd, SHUT_RDWR);
    pthread_mutex_unlock(&up->lock);
    for (size_t i = 0; i < up->nconns; i++) {
        pthread_join(list[i]->thread, NULL);
        free(list[i]);
    }
    free(list);
    pthread_mutex_destroy(&up->lock);
}

/* ---- the loop and the client ---- */

static h2o_globalconf_t conf;
static h2o_context_t ctx;
static struct upstream up;

struct fixture {
    h2o_mem_pool_t pool;
    struct lfs_io io;
};

/* One loop for the whole group (h2o 2.2.5's h2o_context_dispose does not free the context's
 * message queue); the client's per-thread state and the upstream are per test. */
static int group_setup(void **state)
{
    (void)state;
    h2o_config_init(&conf);
    h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_context_init(&ctx, h2o_evloop_create(), &conf);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h2o_evloop_t *loop = ctx.loop;
    h2o_context_dispose(&ctx);
    h2o_evloop_destroy(loop);
    h2o_config_dispose(&conf);
    return 0;
}

static int setup(void **state)
{
    upstream_start(&up);
    struct fixture *f = calloc(1, sizeof(*f));
    h2o_mem_init_pool(&f->pool);
    f->io.ctx = &ctx;
    f->io.pool = &f->pool;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    h2o_mem_clear_pool(&f->pool);
    /* closes the kept-alive connections; must run before the loop goes (the client's
     * sockets and timeouts live on it) */
    lfs_http_thread_cleanup();
    for (int i = 0; i < 3; i++) /* lets h2o free the sockets it released */
        h2o_evloop_run(ctx.loop, 0);
    upstream_stop(&up);
    free(f);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void url(char *buf, size_t size, const char *path)
{
    snprintf(buf, size, "http://127.0.0.1:%d%s", up.port, path);
}

/* What a callback saw, copied out of pool memory that may be gone after the callback. */
struct result {
    int calls;
    long status;
    int64_t content_length;
    int err_status;
    char message[LFS_ERROR_MESSAGE_MAX];
    char etag[64], content_type[64], request_id[64];
    char *body;
    size_t body_len;
    uint64_t done_at;
};

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void on_result(void *arg, const struct lfs_http_response *response,
                      const struct lfs_error *err)
{
    struct result *r = arg;
    r->calls++;
    r->done_at = now_ms();
    assert_non_null(response);
    r->status = response->status;
    r->content_length = response->content_length;
    copy_str(r->etag, sizeof(r->etag), response->etag);
    copy_str(r->content_type, sizeof(r->content_type), response->content_type);
    copy_str(r->request_id, sizeof(r->request_id), response->request_id);
    free(r->body);
    r->body = malloc(response->body.len + 1);
    memcpy(r->body, response->body.base, response->body.len);
    r->body_len = response->body.len;
    r->err_status = err != NULL ? err->status : 0;
    copy_str(r->message, sizeof(r->message), err != NULL ? err->message : NULL);
}

static void run_until_calls(struct result *results, size_t n)
{
    for (int turn = 0; turn < LOOP_TURNS; turn++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += results[i].calls != 0;
        if (done == n)
            return;
        h2o_evloop_run(ctx.loop, 10);
    }
    fail_msg("callbacks did not fire within %d loop turns", LOOP_TURNS);
}

static void run_for(uint64_t ms)
{
    uint64_t until = now_ms() + ms;
    for (int turn = 0; turn < LOOP_TURNS && now_ms() < until; turn++)
        h2o_evloop_run(ctx.loop, 10);
}

static struct lfs_http_call *fetch(struct fixture *f, const char *method, const char *path,
                                   struct result *r)
{
    char u[256];
    url(u, sizeof(u), path);
    struct lfs_http_request req = {.method = method, .url = u, .store = "test storage"};
    return lfs_http_fetch(&f->io, &req, on_result, r);
}

static void free_results(struct result *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].body);
}

/* ---- tests ---- */

/* 100 HEADs against an upstream that takes 100 ms for each: concurrent, so the batch takes
 * about one round trip (a sequential client would need 10 s). A second batch reuses the
 * connections the first one opened (the cache must not shrink between batches). */
static void test_concurrent_heads(void **state)
{
    struct fixture *f = *state;
    enum { N = 100 };
    static struct result r[N];
    memset(r, 0, sizeof(r));
    uint64_t start = now_ms();
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/delay/100?n=%d", i);
        assert_non_null(fetch(f, "HEAD", path, &r[i]));
    }
    run_until_calls(r, N);
    uint64_t elapsed = now_ms() - start;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].err_status, 0);
        assert_int_equal(r[i].status, 200);
        assert_int_equal(r[i].content_length, 7);
        assert_int_equal(r[i].body_len, 0);
    }
    assert_true(atomic_load(&up.max_in_flight) >= N / 2);
    if (elapsed >= 1000)
        fail_msg("100 HEADs at 100 ms each took %llu ms: not concurrent",
                 (unsigned long long)elapsed);

    int accepted = atomic_load(&up.accepted);
    free_results(r, N);
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++)
        assert_non_null(fetch(f, "HEAD", "/delay/10", &r[i]));
    run_until_calls(r, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].status, 200);
    int again = atomic_load(&up.accepted) - accepted;
    if (again > N / 10)
        fail_msg("second batch opened %d new connections: kept-alive ones were dropped", again);
    free_results(r, N);
}

/* Sequential GETs, each started from the previous one's callback, share one connection. */
struct chain {
    struct fixture *f;
    int left;
    struct result last;
};

static void on_chain(void *arg, const struct lfs_http_response *response,
                     const struct lfs_error *err)
{
    struct chain *c = arg;
    assert_null(err);
    assert_int_equal(response->status, 200);
    assert_int_equal(response->body.len, 5);
    assert_memory_equal(response->body.base, "hello", 5);
    assert_string_equal(response->etag, "\"etag-1\"");
    assert_string_equal(response->content_type, "text/plain");
    assert_string_equal(response->request_id, "req-42");
    assert_int_equal(response->content_length, 5);
    if (--c->left > 0) {
        char u[256];
        url(u, sizeof(u), "/ok");
        struct lfs_http_request req = {.method = "GET", .url = u, .store = "test storage"};
        assert_non_null(lfs_http_fetch(&c->f->io, &req, on_chain, c));
    } else {
        c->last.calls = 1;
    }
}

static void test_keepalive_sequential(void **state)
{
    struct fixture *f = *state;
    struct chain c = {.f = f, .left = 20};
    char u[256];
    url(u, sizeof(u), "/ok");
    struct lfs_http_request req = {.method = "GET", .url = u, .store = "test storage"};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_chain, &c));
    run_until_calls(&c.last, 1);
    assert_int_equal(c.left, 0);
    assert_int_equal(atomic_load(&up.requests), 20);
    if (atomic_load(&up.accepted) > 2)
        fail_msg("20 sequential requests opened %d connections", atomic_load(&up.accepted));
}

static void check_pattern(const char *p, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)p[i] != pattern(off + i))
            fail_msg("byte %zu differs", off + i);
}

/* Collected bodies: whole up to 1 MiB, cut at 1 MiB beyond (still a success); error
 * statuses are responses, not errors. */
static void test_get_collected(void **state)
{
    struct fixture *f = *state;
    struct result r[3] = {0};
    assert_non_null(fetch(f, "GET", "/big/200000", &r[0]));
    assert_non_null(fetch(f, "GET", "/big/3145728", &r[1]));
    assert_non_null(fetch(f, "GET", "/status/500", &r[2]));
    run_until_calls(r, 3);

    assert_int_equal(r[0].err_status, 0);
    assert_int_equal(r[0].status, 200);
    assert_int_equal(r[0].body_len, 200000);
    assert_int_equal(r[0].content_length, 200000);
    assert_string_equal(r[0].content_type, "application/octet-stream");
    check_pattern(r[0].body, 0, r[0].body_len);

    assert_int_equal(r[1].err_status, 0);
    assert_int_equal(r[1].status, 200);
    assert_int_equal(r[1].content_length, 3145728);
    assert_int_equal(r[1].body_len, 1u << 20);
    check_pattern(r[1].body, 0, r[1].body_len);

    assert_int_equal(r[2].err_status, 0);
    assert_int_equal(r[2].status, 500);
    assert_int_equal(r[2].body_len, 10);
    assert_memory_equal(r[2].body, "error body", 10);
    free_results(r, 3);
}

/* Streaming: on_data pauses every other chunk (the chunk comes again after resume, which
 * may hand it over from inside lfs_http_resume); all bytes arrive, in order. */
struct stream {
    struct result r; /* first: the same arg goes to on_data and to the callback */
    size_t received;
    int chunks, pauses;
    bool pause_next, paused;
    long status;
    bool bad_order;
};

static int on_stream_data(void *arg, long status, const char *data, size_t len)
{
    struct stream *s = arg;
    s->status = status;
    if (s->pause_next) {
        s->pause_next = false;
        s->paused = true;
        s->pauses++;
        return 1;
    }
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)data[i] != pattern(s->received + i))
            s->bad_order = true;
    s->received += len;
    s->chunks++;
    s->pause_next = true;
    return 0;
}

static void test_stream_pause_resume(void **state)
{
    struct fixture *f = *state;
    enum { SIZE = 6 * 1024 * 1024 + 123 };
    struct stream s = {.pause_next = true};
    char u[256], path[64];
    snprintf(path, sizeof(path), "/big/%d", SIZE);
    url(u, sizeof(u), path);
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "test storage", .on_data = on_stream_data};
    struct lfs_http_call *call = lfs_http_fetch(&f->io, &req, on_result, &s);
    assert_non_null(call);
    struct result *r = &s.r;
    for (int turn = 0; turn < 20 * LOOP_TURNS && r->calls == 0; turn++) {
        h2o_evloop_run(ctx.loop, 10);
        if (s.paused) {
            s.paused = false; /* before resuming: it may pause again from inside */
            lfs_http_resume(call);
        }
    }
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err_status, 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(s.status, 200);
    assert_int_equal(r->content_length, SIZE);
    assert_int_equal(r->body_len, 0);
    assert_int_equal(s.received, SIZE);
    assert_false(s.bad_order);
    assert_true(s.pauses > 1);
    free(r->body);
}

/* A multi-MiB PUT arrives intact, with a Content-Length and without Expect: 100-continue. */
static void test_put_body(void **state)
{
    struct fixture *f = *state;
    enum { SIZE = 5 * 1024 * 1024 + 7 };
    char *body = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        body[i] = (char)pattern(i);
    unsigned char digest[32];
    unsigned int dlen;
    EVP_Digest(body, SIZE, digest, &dlen, EVP_sha256(), NULL);
    char hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);

    char u[256];
    url(u, sizeof(u), "/put");
    struct lfs_http_request req = {
        .method = "PUT",
        .url = u,
        .store = "test storage",
        .headers = {"Content-Type: application/octet-stream", "x-ms-blob-type: BlockBlob"},
        .body = h2o_iovec_init(body, SIZE)};
    struct result r = {0};
    uint64_t start = now_ms();
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.err_status, 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, 64);
    assert_memory_equal(r.body, hex, 64);
    assert_int_equal(atomic_load(&up.put_len), SIZE);
    assert_false(atomic_load(&up.put_saw_expect));
    /* an Expect: 100-continue wait would add a second */
    assert_true(r.done_at - start < 900);
    free(r.body);

    /* an empty PUT sends Content-Length: 0 */
    memset(&r, 0, sizeof(r));
    req.body = h2o_iovec_init(NULL, 0);
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.status, 201);
    assert_memory_equal(r.body, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                        64);
    assert_int_equal(atomic_load(&up.put_len), 0);
    free(r.body);
    free(body);
}

static void assert_no_query(const char *message)
{
    if (strstr(message, "SECRET") != NULL || strstr(message, "sig=") != NULL ||
        strchr(message, '?') != NULL)
        fail_msg("error message shows the URL query: %s", message);
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    char u[256];
    url(u, sizeof(u), "/hang?sig=SECRET&se=2030");
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "azure storage", .timeout_ms = 300};
    struct result r = {0};
    uint64_t start = now_ms();
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    run_until_calls(&r, 1);
    uint64_t elapsed = r.done_at - start;
    assert_int_equal(r.err_status, 504);
    assert_int_equal(r.status, 0);
    assert_true(elapsed >= 250);
    if (elapsed > 1000)
        fail_msg("a 300 ms deadline fired after %llu ms", (unsigned long long)elapsed);
    assert_non_null(strstr(r.message, "azure storage"));
    assert_non_null(strstr(r.message, "GET http://127.0.0.1:"));
    assert_non_null(strstr(r.message, "/hang)"));
    assert_no_query(r.message);
    free(r.body);
}

static void test_connection_refused(void **state)
{
    struct fixture *f = *state;
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    char u[256];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/container/blob?sv=1&sig=SECRET",
             ntohs(sin.sin_port));
    struct lfs_http_request req = {.method = "HEAD", .url = u, .store = "azure storage"};
    struct result r = {0};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.err_status, 502);
    assert_int_equal(r.status, 0);
    char expect[256];
    snprintf(expect, sizeof(expect),
             "azure storage unreachable: Connection refused (while HEAD "
             "http://127.0.0.1:%d/container/blob)",
             ntohs(sin.sin_port));
    assert_string_equal(r.message, expect);
    assert_no_query(r.message);
    free(r.body);
}

static void test_close_mid_response(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_non_null(fetch(f, "GET", "/close?sig=SECRET", &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.err_status, 502);
    assert_non_null(strstr(r.message, "test storage"));
    assert_non_null(strstr(r.message, "/close)"));
    assert_no_query(r.message);
    free(r.body);

    /* the client carries on: the next request to the same host works */
    memset(&r, 0, sizeof(r));
    assert_non_null(fetch(f, "GET", "/ok", &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_invalid_url(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct lfs_http_request req = {
        .method = "GET", .url = "file:///etc/passwd?sig=SECRET", .store = "test storage"};
    assert_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    assert_int_equal(r.calls, 1); /* synchronously */
    assert_int_equal(r.err_status, 502);
    assert_no_query(r.message);
    free(r.body);
}

/* Host names go through curl's resolver (a thread signalling over a socket the loop
 * watches), not only IP literals. */
static void test_hostname(void **state)
{
    struct fixture *f = *state;
    char u[256];
    snprintf(u, sizeof(u), "http://localhost:%d/ok", up.port);
    struct lfs_http_request req = {.method = "GET", .url = u, .store = "test storage"};
    struct result r = {0};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &r));
    run_until_calls(&r, 1);
    assert_int_equal(r.err_status, 0);
    assert_int_equal(r.status, 200);
    free(r.body);
}

/* A thread's client follows the thread to a new loop once idle, and refuses while requests
 * are in flight on the old one. */
static void test_second_loop(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_non_null(fetch(f, "GET", "/delay/200", &r));

    h2o_context_t ctx2 = {.loop = h2o_evloop_create()}; /* the client only uses ctx->loop */
    h2o_mem_pool_t pool2;
    h2o_mem_init_pool(&pool2);
    struct lfs_io io2 = {.ctx = &ctx2, .pool = &pool2};
    char u[256];
    url(u, sizeof(u), "/ok");
    struct lfs_http_request req = {.method = "GET", .url = u, .store = "test storage"};
    struct result r2 = {0};
    assert_null(lfs_http_fetch(&io2, &req, on_result, &r2));
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.err_status, 500);
    free(r2.body);

    run_until_calls(&r, 1);
    assert_int_equal(r.status, 200);
    memset(&r2, 0, sizeof(r2));
    assert_non_null(lfs_http_fetch(&io2, &req, on_result, &r2));
    for (int turn = 0; turn < LOOP_TURNS && r2.calls == 0; turn++)
        h2o_evloop_run(ctx2.loop, 10);
    assert_int_equal(r2.status, 200);
    h2o_mem_clear_pool(&pool2);
    lfs_http_thread_cleanup();
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(ctx2.loop, 0);
    h2o_evloop_destroy(ctx2.loop);
    free(r.body);
    free(r2.body);
}

/* Clearing the pool mid-flight cancels: no callback, nothing left running (ASan: no leak),
 * and the client keeps working. */
struct counted {
    struct result r; /* first: the same arg goes to on_data and to the callback */
    int data_calls;
};

static int on_stream_pause_always(void *arg, long status, const char *data, size_t len)
{
    (void)status, (void)data, (void)len;
    struct counted *c = arg;
    c->data_calls++;
    return 1;
}

static void test_cancel_by_pool(void **state)
{
    struct fixture *f = *state;
    enum { N = 20 };
    struct result r[N] = {0};
    for (int i = 0; i < N; i++)
        assert_non_null(fetch(f, i % 2 ? "GET" : "HEAD", "/delay/300", &r[i]));
    /* a paused download and a big upload in the same pool */
    char u[256], u2[256];
    url(u, sizeof(u), "/big/4000000");
    url(u2, sizeof(u2), "/slowput");
    struct counted paused = {0};
    struct result rp = {0};
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "test storage", .on_data = on_stream_pause_always};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &paused));
    size_t big = 16u << 20;
    char *body = calloc(1, big);
    struct lfs_http_request put = {
        .method = "PUT", .url = u2, .store = "test storage", .body = h2o_iovec_init(body, big)};
    assert_non_null(lfs_http_fetch(&f->io, &put, on_result, &rp));
    for (int turn = 0; turn < LOOP_TURNS && paused.data_calls == 0; turn++)
        h2o_evloop_run(ctx.loop, 10);
    run_for(50); /* the upload is under way too */
    assert_int_equal(paused.data_calls, 1);
    h2o_mem_clear_pool(&f->pool);
    free(body); /* the body may go with the pool: the client must not read it any more */
    run_for(400);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 0);
    assert_int_equal(rp.calls, 0);
    assert_int_equal(paused.r.calls, 0);

    struct result again = {0};
    assert_non_null(fetch(f, "GET", "/ok", &again));
    run_until_calls(&again, 1);
    assert_int_equal(again.status, 200);
    free(again.body);
}

/* Nothing spins while a download is paused or a connection sits idle in the cache: the
 * loop then only wakes for its 10 ms max wait (a spinning curl socket or 0 ms timer would
 * make it turn thousands of times). */
static int count_turns(uint64_t ms)
{
    int turns = 0;
    uint64_t until = now_ms() + ms;
    while (now_ms() < until && turns < 100000) {
        h2o_evloop_run(ctx.loop, 10);
        turns++;
    }
    return turns;
}

static void test_idle_does_not_spin(void **state)
{
    struct fixture *f = *state;
    struct counted paused = {0};
    char u[256];
    url(u, sizeof(u), "/big/4000000");
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "test storage", .on_data = on_stream_pause_always};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &paused));
    for (int turn = 0; turn < LOOP_TURNS && paused.data_calls == 0; turn++)
        h2o_evloop_run(ctx.loop, 10);
    assert_int_equal(paused.data_calls, 1);
    int turns = count_turns(300);
    if (turns > 100)
        fail_msg("the loop turned %d times in 300 ms with a paused download", turns);
    assert_int_equal(paused.data_calls, 1); /* not offered again before the resume */
    h2o_mem_clear_pool(&f->pool);

    struct result r = {0};
    assert_non_null(fetch(f, "GET", "/ok", &r));
    run_until_calls(&r, 1);
    turns = count_turns(300);
    if (turns > 100)
        fail_msg("the loop turned %d times in 300 ms with an idle kept-alive connection", turns);
    free(r.body);
}

/* on_data disposes its own request pool (as a handler sending its response might): the
 * transfer stops, no callback, no use after free. */
struct dispose_in_data {
    struct result r; /* first: the same arg goes to on_data and to the callback */
    h2o_mem_pool_t *pool;
    int data_calls;
};

static int on_data_dispose(void *arg, long status, const char *data, size_t len)
{
    (void)status, (void)data, (void)len;
    struct dispose_in_data *d = arg;
    d->data_calls++;
    h2o_mem_clear_pool(d->pool);
    return 0;
}

static void test_cancel_inside_on_data(void **state)
{
    struct fixture *f = *state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct dispose_in_data d = {.pool = &pool};
    char u[256];
    url(u, sizeof(u), "/big/3000000");
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "test storage", .on_data = on_data_dispose};
    assert_non_null(lfs_http_fetch(&io, &req, on_result, &d));
    run_for(300);
    assert_int_equal(d.data_calls, 1);
    assert_int_equal(d.r.calls, 0);
    h2o_mem_clear_pool(&pool);

    struct result again = {0};
    assert_non_null(fetch(f, "GET", "/ok", &again));
    run_until_calls(&again, 1);
    assert_int_equal(again.status, 200);
    free(again.body);
}

/* on_data may start another request (curl refuses that inside its callback: the client
 * defers it) and the completion callback may too. */
struct nested {
    struct result outer; /* first: the same arg goes to on_data and to the callback */
    struct fixture *f;
    bool started;
    struct result inner;
    size_t received;
};

static int on_data_nested(void *arg, long status, const char *data, size_t len)
{
    (void)status, (void)data;
    struct nested *n = arg;
    if (!n->started) {
        n->started = true;
        assert_non_null(fetch(n->f, "GET", "/ok", &n->inner));
    }
    n->received += len;
    return 0;
}

static void test_fetch_from_on_data(void **state)
{
    struct fixture *f = *state;
    struct nested n = {.f = f};
    char u[256];
    url(u, sizeof(u), "/big/500000");
    struct lfs_http_request req = {
        .method = "GET", .url = u, .store = "test storage", .on_data = on_data_nested};
    assert_non_null(lfs_http_fetch(&f->io, &req, on_result, &n));
    run_until_calls(&n.outer, 1);
    run_until_calls(&n.inner, 1);
    assert_int_equal(n.outer.status, 200);
    assert_int_equal(n.received, 500000);
    assert_int_equal(n.inner.status, 200);
    assert_memory_equal(n.inner.body, "hello", 5);
    free(n.outer.body);
    free(n.inner.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_heads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_sequential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_collected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_mid_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_by_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_does_not_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_inside_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_from_on_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
