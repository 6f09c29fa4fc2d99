/* Outbound HTTP for the remote storage backends (azure, gcs, s3): libcurl's multi interface
 * driven by the worker thread's own h2o event loop, so a batch can fan out one request per
 * object at once without extra threads and without blocking the loop. Each worker thread
 * lazily gets one CURLM (thread-local) whose connection cache gives keep-alive across
 * requests; curl's sockets are watched through h2o sockets that never read (curl does), and
 * curl's single timer is mapped onto two h2o timeouts. A request lives in a malloc'ed
 * transfer; the request pool only holds a small handle whose dispose callback cancels the
 * transfer, so an HTTP/2 stream reset never leaves a transfer running or a callback pointing
 * at freed memory. The quirks of h2o 2.2.5 and libcurl 7.88 this works around are described
 * where they bite (see also the architecture notes). */
#include "storage/http_client.h"

#include "storage/curl_api.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef LFSGATE_VERSION
#define LFSGATE_VERSION "dev"
#endif

#define HTTP_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_CONNECT_TIMEOUT_MS 5000L
#define HTTP_MAX_CONNECTS 256L
#define HTTP_COLLECT_CAP (1u << 20)
/* Receive buffer for streamed downloads and send buffer for uploads: bigger than curl's
 * defaults (16 KiB / 64 KiB) to cut the number of loop turns for multi-MiB objects. */
#define HTTP_STREAM_BUFFER (256L << 10)
/* How often curl may ask for a 0 ms timer within one loop turn before it is given 1 ms. */
#define HTTP_ZERO_TIMER_BURST 16

struct lfs_http_thread {
    CURLM *multi;
    h2o_loop_t *loop;
    /* h2o 2.2.5 expects every entry of one h2o_timeout_t to share its duration (entries are
     * kept in arrival order and only the first is checked). curl's timer is either "now" or a
     * delay: a fixed 0 ms timeout for the former, and a second one, only ever holding our one
     * entry, whose duration is set while that entry is unlinked. Rewriting the duration of a
     * single shared timeout made h2o_timeout_run spin (measured: millions of fires). */
    h2o_timeout_t zero_timeout;
    h2o_timeout_t delay_timeout;
    h2o_timeout_entry_t curl_zero_entry;
    h2o_timeout_entry_t curl_delay_entry;
    h2o_timeout_entry_t deferred_entry; /* on zero_timeout: runs the deferred list */
    uint64_t zero_tick;                 /* loop time of the last curl_zero_entry fire */
    unsigned zero_fires;                /* fires at zero_tick */
    h2o_linklist_t transfers;           /* every transfer of this thread */
    h2o_linklist_t deferred;            /* transfers with work that cannot run inside curl */
    h2o_linklist_t socks;               /* every curl socket we watch */
    /* > 0 while user code runs inside a curl callback (on_data): curl then refuses multi
     * calls (CURLM_RECURSIVE_API_CALL), so adds, removals and resumes are deferred. */
    unsigned callback_depth;
};

/* One curl socket watched by the loop (curl_multi_assign'ed to its fd). */
struct lfs_http_sock {
    h2o_linklist_t link;
    struct lfs_http_thread *th;
    h2o_socket_t *sock;
    curl_socket_t fd;
    int what; /* CURL_POLL_IN / _OUT / _INOUT as curl last asked */
};

struct lfs_http_transfer {
    h2o_linklist_t link;          /* th->transfers */
    h2o_linklist_t deferred_link; /* th->deferred */
    struct lfs_http_thread *th;
    struct lfs_http_call *call; /* NULL once the pool is gone: never call back, never touch
                                   the pool or the request body again */
    CURL *easy;
    struct curl_slist *headers;
    bool in_multi;
    bool paused;        /* on_data returned 1 */
    bool resume_wanted; /* lfs_http_resume called where curl could not be entered */
    bool aborted;       /* on_data returned -1 */
    bool no_status;     /* body data came without a status line libcurl understood */
    h2o_iovec_t body;
    size_t body_off;
    long timeout_ms;
    int (*on_data)(void *arg, long status, const char *data, size_t len);
    lfs_http_cb cb;
    void *arg;
    char *collected;
    size_t collected_len, collected_cap;
    int64_t content_length;
    char *etag, *content_type, *request_id;
    char *retry_after, *ratelimit_remaining, *ratelimit_reset, *link_header;
    char *store;
    char *generation;
    char *target; /* "METHOD scheme://host[:port]/path": no userinfo, query or fragment */
};

struct lfs_http_call {
    struct lfs_http_transfer *t; /* NULL once completed or cancelled */
    h2o_mem_pool_t *pool;
};

static __thread struct lfs_http_thread *http_thread;
static void check_multi_info(struct lfs_http_thread *th);
static void finish(struct lfs_http_transfer *t, CURLcode result);
static void resume_now(struct lfs_http_transfer *t);

/* ---- sockets: curl's fds as h2o sockets ---- */

static void drive(struct lfs_http_thread *th, curl_socket_t fd, int ev_bitmask)
{
    int running;
    lfs_curl.multi_socket_action(th->multi, fd, ev_bitmask, &running);
    check_multi_info(th);
}

static void on_sock_readable(h2o_socket_t *sock, const char *err)
{
    struct lfs_http_sock *s = sock->data;
    /* s may be freed inside curl (CURL_POLL_REMOVE): copy what we need first. */
    struct lfs_http_thread *th = s->th;
    curl_socket_t fd = s->fd;
    drive(th, fd, CURL_CSELECT_IN | (err != NULL ? CURL_CSELECT_ERR : 0));
}

static void on_sock_writable(h2o_socket_t *sock, const char *err)
{
    struct lfs_http_sock *s = sock->data;
    /* h2o 2.2.5 cannot withdraw a notify_write: when curl switched from OUT to IN the armed
     * notification still fires once. Ignore it. */
    if ((s->what & CURL_POLL_OUT) == 0)
        return;
    /* notify_write is one-shot (h2o clears _cb.write before calling us): re-arm while curl
     * still wants OUT, before curl runs, so a REMOVE inside curl finds it armed and clears it. */
    h2o_socket_notify_write(sock, on_sock_writable);
    struct lfs_http_thread *th = s->th;
    curl_socket_t fd = s->fd;
    drive(th, fd, CURL_CSELECT_OUT | (err != NULL ? CURL_CSELECT_ERR : 0));
}

/* Stops watching a socket without closing it: curl owns the fd and closes it itself. */
static void sock_detach(struct lfs_http_sock *s)
{
    h2o_socket_export_t info;
    if (h2o_socket_is_reading(s->sock))
        h2o_socket_read_stop(s->sock);
    /* h2o_socket_export asserts that no write is pending, and 2.2.5 has no call to cancel a
     * notify_write: drop the callback by hand. The export marks the socket disposed, so a
     * notification already queued for this loop turn is skipped by h2o. */
    s->sock->_cb.write = NULL;
    if (h2o_socket_export(s->sock, &info) == 0)
        h2o_buffer_dispose(&info.input); /* nothing in it (DONT_READ); not dispose_export,
                                            which would close curl's fd */
    h2o_linklist_unlink(&s->link);
    free(s);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct lfs_http_thread *th = userp;
    struct lfs_http_sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL)
            sock_detach(s);
        return 0;
    }
    if (s == NULL) {
        if ((s = calloc(1, sizeof(*s))) == NULL)
            return -1;
        /* Without DONT_READ h2o would read the socket itself and curl would never see the
         * bytes; with it, h2o only tells us the fd is readable. */
        s->sock = h2o_evloop_socket_create(th->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        s->sock->data = s;
        s->th = th;
        s->fd = fd;
        h2o_linklist_insert(&th->socks, &s->link);
        lfs_curl.multi_assign(th->multi, fd, s);
    }
    s->what = what;
    if ((what & CURL_POLL_IN) != 0) {
        if (!h2o_socket_is_reading(s->sock))
            h2o_socket_read_start(s->sock, on_sock_readable);
    } else if (h2o_socket_is_reading(s->sock)) {
        h2o_socket_read_stop(s->sock);
    }
    /* notify_write asserts none is armed: an armed one left over from an earlier OUT serves. */
    if ((what & CURL_POLL_OUT) != 0 && !h2o_socket_is_writing(s->sock))
        h2o_socket_notify_write(s->sock, on_sock_writable);
    return 0;
}

/* ---- curl's timer on h2o timeouts ---- */

static void on_curl_zero_timeout(h2o_timeout_entry_t *entry)
{
    struct lfs_http_thread *th =
        H2O_STRUCT_FROM_MEMBER(struct lfs_http_thread, curl_zero_entry, entry);
    uint64_t now = h2o_now(th->loop);
    if (th->zero_tick != now) {
        th->zero_tick = now;
        th->zero_fires = 0;
    }
    th->zero_fires++;
    drive(th, CURL_SOCKET_TIMEOUT, 0);
}

static void on_curl_delay_timeout(h2o_timeout_entry_t *entry)
{
    struct lfs_http_thread *th =
        H2O_STRUCT_FROM_MEMBER(struct lfs_http_thread, curl_delay_entry, entry);
    drive(th, CURL_SOCKET_TIMEOUT, 0);
}

/* curl's timer callback must not call back into curl: it only (re)arms a timeout, whose
 * callback then calls curl_multi_socket_action. */
static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    struct lfs_http_thread *th = userp;
    if (h2o_timeout_is_linked(&th->curl_zero_entry))
        h2o_timeout_unlink(&th->curl_zero_entry);
    if (h2o_timeout_is_linked(&th->curl_delay_entry))
        h2o_timeout_unlink(&th->curl_delay_entry);
    if (ms < 0)
        return 0;
    /* A 0 ms entry linked from inside its own callback runs again in the same
     * h2o_timeout_run (the loop's clock does not move meanwhile). Should curl keep asking for
     * "now", let the loop breathe after a burst instead of spinning. */
    if (ms == 0 &&
        !(th->zero_tick == h2o_now(th->loop) && th->zero_fires >= HTTP_ZERO_TIMER_BURST)) {
        h2o_timeout_link(th->loop, &th->zero_timeout, &th->curl_zero_entry);
    } else {
        th->delay_timeout.timeout = ms > 0 ? (uint64_t)ms : 1;
        h2o_timeout_link(th->loop, &th->delay_timeout, &th->curl_delay_entry);
    }
    return 0;
}

/* ---- transfers ---- */

static void transfer_destroy(struct lfs_http_transfer *t)
{
    if (h2o_linklist_is_linked(&t->deferred_link))
        h2o_linklist_unlink(&t->deferred_link);
    h2o_linklist_unlink(&t->link);
    if (t->in_multi)
        lfs_curl.multi_remove_handle(t->th->multi, t->easy);
    lfs_curl.easy_cleanup(t->easy);
    lfs_curl.slist_free_all(t->headers);
    free(t->collected);
    free(t->etag);
    free(t->content_type);
    free(t->request_id);
    free(t->generation);
    free(t->retry_after);
    free(t->ratelimit_remaining);
    free(t->ratelimit_reset);
    free(t->link_header);
    free(t->store);
    free(t->target);
    free(t);
}

static void defer(struct lfs_http_transfer *t)
{
    struct lfs_http_thread *th = t->th;
    if (!h2o_linklist_is_linked(&t->deferred_link))
        h2o_linklist_insert(&th->deferred, &t->deferred_link);
    if (!h2o_timeout_is_linked(&th->deferred_entry))
        h2o_timeout_link(th->loop, &th->zero_timeout, &th->deferred_entry);
}

/* Work that could not be done inside a curl callback, done from the loop. */
static void on_deferred(h2o_timeout_entry_t *entry)
{
    struct lfs_http_thread *th =
        H2O_STRUCT_FROM_MEMBER(struct lfs_http_thread, deferred_entry, entry);
    /* Take the first entry each time: a callback below may cancel or add others. */
    while (!h2o_linklist_is_empty(&th->deferred)) {
        struct lfs_http_transfer *t =
            H2O_STRUCT_FROM_MEMBER(struct lfs_http_transfer, deferred_link, th->deferred.next);
        h2o_linklist_unlink(&t->deferred_link);
        if (t->call == NULL) {
            transfer_destroy(t);
        } else if (!t->in_multi) {
            CURLMcode mc = lfs_curl.multi_add_handle(th->multi, t->easy);
            if (mc == CURLM_OK)
                t->in_multi = true;
            else
                finish(t, CURLE_FAILED_INIT);
        } else if (t->aborted) {
            finish(t, CURLE_WRITE_ERROR);
        } else if (t->resume_wanted) {
            resume_now(t);
        }
    }
    check_multi_info(th);
}

static size_t on_body_read(char *buf, size_t size, size_t nitems, void *userp)
{
    struct lfs_http_transfer *t = userp;
    if (t->call == NULL) /* the request body may be gone with the pool */
        return CURL_READFUNC_ABORT;
    size_t n = size * nitems, left = t->body.len - t->body_off;
    if (n > left)
        n = left;
    memcpy(buf, t->body.base + t->body_off, n);
    t->body_off += n;
    return n;
}

/* curl rewinds the body when it resends the request, e.g. after a kept-alive connection
 * turned out to be closed by the store; without this such a retry fails. */
static int on_body_seek(void *userp, curl_off_t offset, int origin)
{
    struct lfs_http_transfer *t = userp;
    if (t->call == NULL || origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->body.len)
        return CURL_SEEKFUNC_CANTSEEK;
    t->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static char *dup_value(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s != NULL) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

static void set_value(char **slot, const char *p, size_t len)
{
    free(*slot);
    *slot = dup_value(p, len);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userp)
{
    struct lfs_http_transfer *t = userp;
    size_t len = size * nitems;
    /* A status line starts each response, including interim 1xx ones: keep only the last. */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        t->content_length = -1;
        free(t->etag);
        free(t->content_type);
        free(t->request_id);
        free(t->generation);
        t->etag = t->content_type = t->request_id = t->generation = NULL;
        free(t->retry_after);
        free(t->ratelimit_remaining);
        free(t->ratelimit_reset);
        free(t->link_header);
        t->retry_after = t->ratelimit_remaining = t->ratelimit_reset = t->link_header = NULL;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL)
        return len;
    size_t name_len = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
#define NAME_IS(lit) (name_len == sizeof(lit) - 1 && strncasecmp(buf, lit, name_len) == 0)
    if (NAME_IS("content-length")) {
        char tmp[32], *stop;
        if (vlen > 0 && vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            errno = 0;
            long long n = strtoll(tmp, &stop, 10);
            if (errno == 0 && *stop == '\0' && n >= 0)
                t->content_length = n;
        }
    } else if (NAME_IS("etag")) {
        set_value(&t->etag, v, vlen);
    } else if (NAME_IS("content-type")) {
        set_value(&t->content_type, v, vlen);
    } else if (NAME_IS("x-ms-request-id") || NAME_IS("x-goog-request-id") ||
               NAME_IS("x-amz-request-id")) {
        set_value(&t->request_id, v, vlen);
    } else if (NAME_IS("x-goog-generation")) {
        set_value(&t->generation, v, vlen);
    } else if (NAME_IS("retry-after")) {
        set_value(&t->retry_after, v, vlen);
    } else if (NAME_IS("x-ratelimit-remaining")) {
        set_value(&t->ratelimit_remaining, v, vlen);
    } else if (NAME_IS("x-ratelimit-reset")) {
        set_value(&t->ratelimit_reset, v, vlen);
    } else if (NAME_IS("link")) {
        set_value(&t->link_header, v, vlen);
    }
#undef NAME_IS
    return len;
}

static void collect(struct lfs_http_transfer *t, const char *data, size_t len)
{
    /* Beyond the cap the rest is dropped (and the request still succeeds): the collected
     * body is for small answers (error XML, JSON), never for objects. */
    size_t room = HTTP_COLLECT_CAP - t->collected_len;
    if (len > room)
        len = room;
    if (len == 0)
        return;
    if (t->collected_len + len > t->collected_cap) {
        size_t cap = t->collected_cap != 0 ? t->collected_cap : 16384;
        if (t->collected_cap == 0 && t->content_length > 0 &&
            t->content_length <= (int64_t)HTTP_COLLECT_CAP)
            cap = (size_t)t->content_length;
        while (cap < t->collected_len + len)
            cap *= 2;
        if (cap > HTTP_COLLECT_CAP)
            cap = HTTP_COLLECT_CAP;
        char *p = realloc(t->collected, cap);
        if (p == NULL)
            return;
        t->collected = p;
        t->collected_cap = cap;
    }
    memcpy(t->collected + t->collected_len, data, len);
    t->collected_len += len;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct lfs_http_transfer *t = userp;
    size_t len = size * nmemb;
    if (t->call == NULL || t->aborted)
        return CURL_WRITEFUNC_ERROR;
    if (t->on_data == NULL) {
        collect(t, data, len);
        return len;
    }
    long status = 0;
    lfs_curl.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 100 || status > 999) { /* see finish: not an answer a reader can judge */
        t->no_status = true;
        return CURL_WRITEFUNC_ERROR;
    }
    struct lfs_http_thread *th = t->th;
    th->callback_depth++;
    int r = t->on_data(t->arg, status, data, len);
    th->callback_depth--;
    if (t->call == NULL) /* the pool went away inside on_data; t waits on the deferred list */
        return CURL_WRITEFUNC_ERROR;
    if (r < 0) {
        t->aborted = true;
        return CURL_WRITEFUNC_ERROR;
    }
    if (r > 0) {
        /* curl keeps the chunk and hands it over again after lfs_curl.easy_pause(CONT). */
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    return len;
}

static const char *store_name(const struct lfs_http_transfer *t)
{
    return t->store != NULL ? t->store : "remote storage";
}

static void describe_error(struct lfs_http_transfer *t, CURLcode result, struct lfs_error *err)
{
    const char *store = store_name(t);
    if (t->aborted) {
        lfs_error_set(err, 502, "%s: response abandoned by its reader (while %s)", store,
                      t->target);
        return;
    }
    if (result == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t us = 0;
        lfs_curl.easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us);
        lfs_error_set(err, 504, "%s timed out after %ld ms (while %s)", store, (long)(us / 1000),
                      t->target);
        return;
    }
    /* curl's error buffer may quote the URL (and with it a signed query): build the message
     * from errno or curl's fixed per-code text instead. */
    long os_errno = 0;
    lfs_curl.easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
    const char *reason = lfs_curl.easy_strerror(result);
    bool unreachable = result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST ||
                       result == CURLE_COULDNT_RESOLVE_PROXY;
    if (os_errno != 0 && (unreachable || result == CURLE_RECV_ERROR || result == CURLE_SEND_ERROR))
        reason = strerror((int)os_errno);
    lfs_error_set(err, 502, "%s %s: %s (while %s)", store,
                  unreachable ? "unreachable" : "connection failed", reason, t->target);
}

static const char *pool_strdup(h2o_mem_pool_t *pool, const char *s)
{
    return s != NULL ? h2o_strdup(pool, s, SIZE_MAX).base : NULL;
}

/* Completes a transfer that is on a live call: curl state is released BEFORE the callback,
 * which may start new fetches or dispose the pool (and so everything but what it gets). */
static void finish(struct lfs_http_transfer *t, CURLcode result)
{
    struct lfs_http_call *call = t->call;
    if (call == NULL) {
        transfer_destroy(t);
        return;
    }
    h2o_mem_pool_t *pool = call->pool;
    struct lfs_http_response response = {.content_length = -1};
    struct lfs_error error = {0};
    lfs_curl.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &response.status);
    /* libcurl can end a transfer without an error yet without a status line it understood
     * (code 0 for a garbled one, found by tests/fuzz): that is no answer, so it gets an err as
     * the contract says, rather than a "status 0" answer the backends would misreport. */
    bool no_status = t->no_status || (result == CURLE_OK && !t->aborted &&
                                      (response.status < 100 || response.status > 999));
    bool failed = result != CURLE_OK || t->aborted || no_status;
    response.content_length = t->content_length;
    response.etag = pool_strdup(pool, t->etag);
    response.content_type = pool_strdup(pool, t->content_type);
    response.request_id = pool_strdup(pool, t->request_id);
    response.generation = pool_strdup(pool, t->generation);
    response.retry_after = pool_strdup(pool, t->retry_after);
    response.ratelimit_remaining = pool_strdup(pool, t->ratelimit_remaining);
    response.ratelimit_reset = pool_strdup(pool, t->ratelimit_reset);
    response.link = pool_strdup(pool, t->link_header);
    if (t->collected_len != 0) {
        char *p = h2o_mem_alloc_pool(pool, t->collected_len + 1);
        memcpy(p, t->collected, t->collected_len);
        p[t->collected_len] = '\0';
        response.body = h2o_iovec_init(p, t->collected_len);
    } else {
        response.body = h2o_iovec_init("", 0);
    }
    if (no_status)
        lfs_error_set(&error, 502, "%s answered without a valid HTTP status line (while %s)",
                      store_name(t), t->target);
    else if (failed)
        describe_error(t, result, &error);

    lfs_http_cb cb = t->cb;
    void *arg = t->arg;
    call->t = NULL;
    t->call = NULL;
    transfer_destroy(t);
    cb(arg, &response, failed ? &error : NULL);
}

/* Reads curl's completion messages. Each message's fields are copied out before the handle
 * is removed (removal frees the message). A callback may remove other handles; curl then
 * drops their queued messages too, so every message read is for a live transfer. */
static void check_multi_info(struct lfs_http_thread *th)
{
    CURLMsg *msg;
    int left;
    while ((msg = lfs_curl.multi_info_read(th->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        char *priv = NULL;
        lfs_curl.easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        if (priv != NULL)
            finish((struct lfs_http_transfer *)(void *)priv, result);
    }
}

static void resume_now(struct lfs_http_transfer *t)
{
    t->resume_wanted = false;
    if (!t->paused)
        return;
    t->paused = false;
    /* May hand over the kept chunk synchronously, i.e. run on_data (which may pause again,
     * abort, or dispose the pool) before returning. */
    CURLcode rc = lfs_curl.easy_pause(t->easy, CURLPAUSE_CONT);
    if (t->call == NULL)
        return; /* disposed inside on_data: already on the deferred list */
    if (rc != CURLE_OK) {
        /* The chunk was refused (on_data returned -1): curl left the transfer running.
         * Fail it from the loop rather than calling back from inside lfs_http_resume. */
        t->aborted = true;
        defer(t);
    }
}

static void call_dispose(void *p)
{
    struct lfs_http_call *call = p;
    struct lfs_http_transfer *t = call->t;
    if (t == NULL)
        return;
    call->t = NULL;
    t->call = NULL;
    if (t->th->callback_depth > 0)
        defer(t); /* inside curl: it refuses curl_multi_remove_handle */
    else
        transfer_destroy(t);
}

/* ---- thread state ---- */

static struct lfs_http_thread *thread_create(h2o_loop_t *loop)
{
    struct lfs_http_thread *th = calloc(1, sizeof(*th));
    if (th == NULL)
        return NULL;
    if ((th->multi = lfs_curl.multi_init()) == NULL) {
        free(th);
        return NULL;
    }
    th->loop = loop;
    h2o_linklist_init_anchor(&th->transfers);
    h2o_linklist_init_anchor(&th->deferred);
    h2o_linklist_init_anchor(&th->socks);
    h2o_timeout_init(loop, &th->zero_timeout, 0);
    h2o_timeout_init(loop, &th->delay_timeout, 1);
    th->curl_zero_entry.cb = on_curl_zero_timeout;
    th->curl_delay_entry.cb = on_curl_delay_timeout;
    th->deferred_entry.cb = on_deferred;
    lfs_curl.multi_setopt(th->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    lfs_curl.multi_setopt(th->multi, CURLMOPT_SOCKETDATA, th);
    lfs_curl.multi_setopt(th->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    lfs_curl.multi_setopt(th->multi, CURLMOPT_TIMERDATA, th);
    /* Without it the cache is sized from the number of easy handles and shrinks between
     * batches, closing the kept-alive connections a batch just opened. */
    lfs_curl.multi_setopt(th->multi, CURLMOPT_MAXCONNECTS, HTTP_MAX_CONNECTS);
    return th;
}

void lfs_http_thread_cleanup(void)
{
    struct lfs_http_thread *th = http_thread;
    if (th == NULL)
        return;
    http_thread = NULL;
    while (!h2o_linklist_is_empty(&th->transfers)) {
        struct lfs_http_transfer *t =
            H2O_STRUCT_FROM_MEMBER(struct lfs_http_transfer, link, th->transfers.next);
        if (t->call != NULL)
            t->call->t = NULL; /* its pool's dispose becomes a no-op; no callback */
        t->call = NULL;
        transfer_destroy(t);
    }
    /* Stop watching the cached connections before curl closes their fds, and keep curl
     * from calling back into state that is going away. */
    lfs_curl.multi_setopt(th->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    lfs_curl.multi_setopt(th->multi, CURLMOPT_TIMERFUNCTION, NULL);
    while (!h2o_linklist_is_empty(&th->socks))
        sock_detach(H2O_STRUCT_FROM_MEMBER(struct lfs_http_sock, link, th->socks.next));
    lfs_curl.multi_cleanup(th->multi);
    if (h2o_timeout_is_linked(&th->curl_zero_entry))
        h2o_timeout_unlink(&th->curl_zero_entry);
    if (h2o_timeout_is_linked(&th->curl_delay_entry))
        h2o_timeout_unlink(&th->curl_delay_entry);
    if (h2o_timeout_is_linked(&th->deferred_entry))
        h2o_timeout_unlink(&th->deferred_entry);
    h2o_timeout_dispose(th->loop, &th->zero_timeout);
    h2o_timeout_dispose(th->loop, &th->delay_timeout);
    free(th);
}

int lfs_http_client_load(const char *path, struct lfs_error *err)
{
    if (lfs_curl_load(err) == 0)
        return 0;
    lfs_error_prefix(err, "config: %s: ", path);
    return -1;
}

static struct lfs_http_thread *thread_get(h2o_loop_t *loop, struct lfs_error *err)
{
    if (lfs_curl_load(err) < 0)
        return NULL;
    struct lfs_http_thread *th = http_thread;
    if (th != NULL && th->loop != loop) {
        /* One multi per thread, bound to one loop. A thread that moves on to a new loop
         * (tests do) gets a fresh one, provided nothing is in flight on the old. */
        if (!h2o_linklist_is_empty(&th->transfers)) {
            lfs_error_set(err, 500, "http client: requests in flight on another event loop");
            return NULL;
        }
        lfs_http_thread_cleanup();
        th = NULL;
    }
    if (th == NULL) {
        if ((th = thread_create(loop)) == NULL) {
            lfs_error_set(err, 502, "http client: cannot create a curl multi handle");
            return NULL;
        }
        http_thread = th;
    }
    return th;
}

/* ---- requests ---- */

/* "METHOD scheme://host[:port]/path" for messages: never the userinfo, query or fragment,
 * which may carry credentials or a signature. NULL when the URL is not http(s). */
static char *describe_target(const char *method, const char *url)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *out = NULL;
    CURLU *u = lfs_curl.url();
    if (u == NULL)
        return NULL;
    if (lfs_curl.url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        lfs_curl.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        lfs_curl.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        lfs_curl.url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto out;
    lfs_curl.url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
    size_t n = strlen(method) + strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) +
               strlen(path) + 8;
    if ((out = malloc(n)) != NULL)
        snprintf(out, n, "%s %s://%s%s%s%s", method, scheme, host, port ? ":" : "",
                 port ? port : "", path);
out:
    lfs_curl.free(scheme);
    lfs_curl.free(host);
    lfs_curl.free(port);
    lfs_curl.free(path);
    lfs_curl.url_cleanup(u);
    return out;
}

static bool is_http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0;
}

static int setup_easy(struct lfs_http_transfer *t, const char *method,
                      const struct lfs_http_request *request)
{
    CURL *e = t->easy;
    bool ok = true;
#define SET(opt, val) ok = ok && lfs_curl.easy_setopt(e, opt, val) == CURLE_OK
    SET(CURLOPT_PRIVATE, (void *)t);
    SET(CURLOPT_URL, request->url); /* curl copies strings it is given */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, t->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        t->timeout_ms < HTTP_CONNECT_TIMEOUT_MS ? t->timeout_ms : HTTP_CONNECT_TIMEOUT_MS);
    SET(CURLOPT_USERAGENT, "lfsgate/" LFSGATE_VERSION);
    /* curl 7.88 fails the second request on a reused cleartext HTTP/2 connection, and
     * plain-http stores (Azurite, test servers) speak HTTP/1.1 anyway. */
    if (is_http_url(request->url))
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)t);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, (void *)t);
    if (request->on_data != NULL)
        SET(CURLOPT_BUFFERSIZE, HTTP_STREAM_BUFFER);

    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && request->body.len == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (request->body.len != 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        /* Upload mode streams the caller's buffer (possibly a 1 GiB mmap) through a read
         * callback, a chunk at a time, with a Content-Length. POSTFIELDS would also avoid a
         * copy but adds a form Content-Type. */
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)request->body.len);
        SET(CURLOPT_READFUNCTION, on_body_read);
        SET(CURLOPT_READDATA, (void *)t);
        SET(CURLOPT_SEEKFUNCTION, on_body_seek);
        SET(CURLOPT_SEEKDATA, (void *)t);
        SET(CURLOPT_UPLOAD_BUFFERSIZE, HTTP_STREAM_BUFFER);
        if (strcmp(method, "PUT") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    if (!ok)
        return -1;

    for (size_t i = 0; i < LFS_HTTP_MAX_HEADERS && request->headers[i] != NULL; i++) {
        struct curl_slist *l = lfs_curl.slist_append(t->headers, request->headers[i]);
        if (l == NULL)
            return -1;
        t->headers = l;
    }
    /* curl sends "Expect: 100-continue" for uploads over 1 MiB and then waits up to a second
     * for an interim answer that some stores never send: an empty Expect header disables it. */
    struct curl_slist *l = lfs_curl.slist_append(t->headers, "Expect:");
    if (l == NULL)
        return -1;
    t->headers = l;
    return lfs_curl.easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK ? 0 : -1;
}

static struct lfs_http_call *fail_now(lfs_http_cb cb, void *arg, struct lfs_error *err)
{
    struct lfs_http_response response = {.content_length = -1, .body = h2o_iovec_init("", 0)};
    cb(arg, &response, err);
    return NULL;
}

struct lfs_http_call *lfs_http_fetch(struct lfs_io *io, const struct lfs_http_request *request,
                                     lfs_http_cb cb, void *arg)
{
    struct lfs_error err = {0};
    const char *store = request->store != NULL ? request->store : "remote storage";
    struct lfs_http_thread *th = thread_get(io->ctx->loop, &err);
    if (th == NULL)
        return fail_now(cb, arg, &err);
    const char *method = request->method != NULL ? request->method : "GET";
    char *target = describe_target(method, request->url != NULL ? request->url : "");
    if (target == NULL) {
        lfs_error_set(&err, 502, "%s: invalid storage url (while %s)", store, method);
        return fail_now(cb, arg, &err);
    }

    struct lfs_http_transfer *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->easy = lfs_curl.easy_init()) == NULL ||
        (request->store != NULL && (t->store = strdup(request->store)) == NULL)) {
        lfs_error_set(&err, 502, "%s: out of memory (while %s)", store, target);
        if (t != NULL)
            free(t->store);
        free(t);
        free(target);
        return fail_now(cb, arg, &err);
    }
    t->th = th;
    t->target = target;
    t->body = request->body;
    t->timeout_ms = request->timeout_ms > 0 ? request->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    t->on_data = request->on_data;
    t->cb = cb;
    t->arg = arg;
    t->content_length = -1;
    h2o_linklist_insert(&th->transfers, &t->link);
    if (setup_easy(t, method, request) < 0) {
        lfs_error_set(&err, 502, "%s: cannot set up the request (while %s)", store, target);
        transfer_destroy(t);
        return fail_now(cb, arg, &err);
    }

    struct lfs_http_call *call = h2o_mem_alloc_shared(io->pool, sizeof(*call), call_dispose);
    call->t = t;
    call->pool = io->pool;
    t->call = call;
    if (th->callback_depth > 0) {
        defer(t); /* called from on_data: curl refuses curl_multi_add_handle there */
    } else if (lfs_curl.multi_add_handle(th->multi, t->easy) == CURLM_OK) {
        t->in_multi = true;
    } else {
        defer(t); /* retried from the loop, and reported from there if it fails again */
    }
    return call;
}

void lfs_http_resume(struct lfs_http_call *call)
{
    struct lfs_http_transfer *t = call != NULL ? call->t : NULL;
    if (t == NULL || !t->paused)
        return;
    if (t->th->callback_depth > 0 || !t->in_multi) {
        t->resume_wanted = true;
        defer(t);
        return;
    }
    resume_now(t);
}
