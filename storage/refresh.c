/* Secrets refreshed in the background and shared by the worker threads (storage/refresh.h).
 *
 * Each refresher is one per process and source: a mutex guards it and at most one fetch is in
 * flight across all threads, run on the loop of the thread that needed it first with a pool of
 * its own. Requests that need the secret while none is usable wait on their own thread's list;
 * the fetching thread wakes the other threads through each one's h2o_multithread receiver on
 * its context's queue (h2o 2.2.5: a message must not be re-sent while queued, hence
 * wake_sent), so every waiter is resumed on its own loop. A held secret is used until shortly
 * before it expires and fetched again from half its life on. Refreshers sit in a fixed table
 * that lives as long as the process, so a thread's part never points at a freed refresher,
 * whatever a reload does. Nothing here logs a secret. */
#include "storage/refresh.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refreshers a process may open: one per credential source a configuration names. */
#define REFRESH_MAX 16

struct refresh_thread;

struct lfs_refresh {
    pthread_mutex_t mu;
    char *key;
    char *what;
    lfs_refresh_fetch_fn fetch;
    void *ctx;
    uint64_t keep_ms; /* life a secret handed out must have left (lfs_refresh_open) */
    char *secret;
    uint64_t expiry, usable_until, refresh_at; /* monotonic ms */
    bool fetching;
    uint64_t started; /* fetches started */
    uint64_t done;    /* fetches completed; the last one's error in done_err (status 0: ok) */
    struct lfs_error done_err;
    h2o_linklist_t threads;         /* struct refresh_thread.link */
    struct refresh_thread *fetcher; /* the thread running the fetch in flight */
};

static struct {
    pthread_mutex_t mu;
    size_t n;
    struct lfs_refresh slots[REFRESH_MAX];
} table = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* A worker thread's part of one refresher; `link`, `wake_sent` and `has_waiters` are guarded
 * by the refresher's mu, the rest is the thread's own. */
struct refresh_thread {
    h2o_linklist_t link;
    struct lfs_refresh *r;
    struct refresh_thread *next; /* the thread's other parts */
    h2o_context_t *ctx;
    h2o_multithread_receiver_t receiver;
    h2o_multithread_message_t wake;
    bool wake_sent;
    bool has_waiters;
    h2o_linklist_t waiters;
    h2o_mem_pool_t *fetch_pool; /* the fetch this thread runs, or NULL */
};

static __thread struct refresh_thread *thread_parts;

/* A request waiting for the secret, owned by its pool. */
struct refresh_waiter {
    h2o_linklist_t link;
    uint64_t fetch; /* the fetch whose outcome answers it */
    h2o_mem_pool_t *pool;
    lfs_refresh_cb cb;
    void *arg;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lfs_refresh_open(const char *key, const char *what, lfs_refresh_fetch_fn fetch, void *ctx,
                     long keep_s, struct lfs_refresh **out, bool *reused, struct lfs_error *err)
{
    pthread_mutex_lock(&table.mu);
    for (size_t i = 0; i < table.n; i++) {
        if (strcmp(table.slots[i].key, key) == 0) {
            pthread_mutex_unlock(&table.mu);
            *out = &table.slots[i];
            *reused = true;
            return 0;
        }
    }
    if (table.n == REFRESH_MAX) {
        pthread_mutex_unlock(&table.mu);
        return lfs_error_set(err, 500,
                             "more than %d distinct credential sources configured since start; "
                             "restart lfsgate",
                             REFRESH_MAX);
    }
    struct lfs_refresh *r = &table.slots[table.n];
    char *k = strdup(key), *w = strdup(what);
    if (k == NULL || w == NULL) {
        pthread_mutex_unlock(&table.mu);
        free(k);
        free(w);
        return lfs_error_set(err, 500, "out of memory");
    }
    *r = (struct lfs_refresh){.key = k,
                              .what = w,
                              .fetch = fetch,
                              .ctx = ctx,
                              .keep_ms = keep_s > 0 ? (uint64_t)keep_s * 1000 : 0};
    pthread_mutex_init(&r->mu, NULL);
    h2o_linklist_init_anchor(&r->threads);
    table.n++;
    pthread_mutex_unlock(&table.mu);
    *out = r;
    *reused = false;
    return 0;
}

static void waiter_dispose(void *p)
{
    struct refresh_waiter *w = p;
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* Answers this thread's waiters whose fetch has completed: all of them while a secret is valid,
 * else those whose fetch failed (the others wait for the fetch in flight). */
static void wake_waiters(struct refresh_thread *th)
{
    struct lfs_refresh *r = th->r;
    h2o_linklist_t ready;
    h2o_linklist_init_anchor(&ready);
    h2o_linklist_insert_list(&ready, &th->waiters);
    pthread_mutex_lock(&r->mu);
    char *secret = r->secret != NULL && now_ms() < r->expiry ? strdup(r->secret) : NULL;
    uint64_t done = r->done;
    struct lfs_error err = r->done_err;
    pthread_mutex_unlock(&r->mu);
    if (secret == NULL && err.status == 0)
        lfs_error_set(&err, 503, "%s expired before it could be used; check this host's clock",
                      r->what);
    /* Take the first each time: a callback may dispose other waiters' pools. */
    while (!h2o_linklist_is_empty(&ready)) {
        struct refresh_waiter *w = H2O_STRUCT_FROM_MEMBER(struct refresh_waiter, link, ready.next);
        h2o_linklist_unlink(&w->link);
        if (secret != NULL)
            w->cb(w->arg, h2o_strdup(w->pool, secret, SIZE_MAX).base, NULL);
        else if (w->fetch <= done)
            w->cb(w->arg, NULL, &err);
        else
            h2o_linklist_insert(&th->waiters, &w->link);
    }
    if (secret != NULL)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    pthread_mutex_lock(&r->mu);
    th->has_waiters = !h2o_linklist_is_empty(&th->waiters);
    pthread_mutex_unlock(&r->mu);
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct refresh_thread *th = H2O_STRUCT_FROM_MEMBER(struct refresh_thread, receiver, receiver);
    pthread_mutex_lock(&th->r->mu);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    th->wake_sent = false;
    pthread_mutex_unlock(&th->r->mu);
    wake_waiters(th);
}

/* Records the outcome of the fetch in flight (secret NULL: failed with err) and wakes the other
 * threads that have waiters. Takes secret. */
static void fetch_complete(struct refresh_thread *th, char *secret, long lifetime_s,
                           const struct lfs_error *err)
{
    struct lfs_refresh *r = th->r;
    uint64_t now = now_ms();
    pthread_mutex_lock(&r->mu);
    if (secret != NULL) {
        if (r->secret != NULL)
            OPENSSL_cleanse(r->secret, strlen(r->secret));
        free(r->secret);
        r->secret = secret;
        uint64_t life = (uint64_t)lifetime_s * 1000;
        r->expiry = now + life;
        /* Used until a minute (a quarter of a short life) before it expires, so the calls made
         * with it still carry a valid secret, or until keep_ms (at most a quarter of its life)
         * before; fetched again from half its life, or from 5 minutes before expiry when that
         * comes first, and at the latest one margin before it stops being handed out. */
        uint64_t margin = life / 4 < 60000 ? life / 4 : 60000;
        uint64_t keep = r->keep_ms < life / 4 ? r->keep_ms : life / 4;
        if (keep > margin)
            margin = keep;
        r->usable_until = r->expiry - margin;
        r->refresh_at =
            now + (lifetime_s > 300 && life - 300000 < life / 2 ? life - 300000 : life / 2);
        if (r->refresh_at > r->usable_until - margin)
            r->refresh_at = r->usable_until - margin;
        r->done_err = (struct lfs_error){0};
    } else {
        r->done_err = *err;
    }
    r->done = r->started;
    r->fetching = false;
    r->fetcher = NULL;
    for (h2o_linklist_t *l = r->threads.next; l != &r->threads; l = l->next) {
        struct refresh_thread *t = H2O_STRUCT_FROM_MEMBER(struct refresh_thread, link, l);
        if (t != th && t->has_waiters && !t->wake_sent) {
            t->wake_sent = true;
            h2o_multithread_send_message(&t->receiver, &t->wake);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void fetch_release(struct refresh_thread *th)
{
    h2o_mem_clear_pool(th->fetch_pool);
    free(th->fetch_pool);
    th->fetch_pool = NULL;
}

void lfs_refresh_done(struct lfs_refresh *r, char *secret, long lifetime_s,
                      const struct lfs_error *err)
{
    pthread_mutex_lock(&r->mu);
    struct refresh_thread *th = r->fetcher;
    pthread_mutex_unlock(&r->mu);
    if (th == NULL) { /* no fetch in flight: nothing to complete */
        if (secret != NULL)
            OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        return;
    }
    fetch_release(th);
    fetch_complete(th, secret, lifetime_s, err);
    wake_waiters(th);
}

/* Starts the fetch this thread was chosen to run (r->fetching already set). */
static void fetch_start(struct refresh_thread *th)
{
    struct lfs_refresh *r = th->r;
    pthread_mutex_lock(&r->mu);
    r->fetcher = th;
    pthread_mutex_unlock(&r->mu);
    if ((th->fetch_pool = malloc(sizeof(*th->fetch_pool))) == NULL) {
        struct lfs_error err;
        lfs_error_set(&err, 503, "%s: out of memory fetching it", r->what);
        fetch_complete(th, NULL, 0, &err);
        wake_waiters(th);
        return;
    }
    h2o_mem_init_pool(th->fetch_pool);
    struct lfs_io io = {.ctx = th->ctx, .pool = th->fetch_pool};
    r->fetch(r, &io, r->ctx);
}

static void part_release(struct refresh_thread *th)
{
    struct lfs_refresh *r = th->r;
    if (th->fetch_pool != NULL) {
        /* Dropping our fetch: the other threads' waiters get an error instead of waiting on
         * it forever. Ours are dropped without callback (their requests are ending too). */
        fetch_release(th);
        struct lfs_error err;
        lfs_error_set(&err, 503, "%s: the worker thread fetching it stopped; retry", r->what);
        fetch_complete(th, NULL, 0, &err);
    }
    pthread_mutex_lock(&r->mu);
    h2o_linklist_unlink(&th->link);
    pthread_mutex_unlock(&r->mu);
    /* No thread sends to us any more: drop a wake-up still queued, then the receiver. */
    if (h2o_linklist_is_linked(&th->wake.link))
        h2o_linklist_unlink(&th->wake.link);
    h2o_multithread_unregister_receiver(th->ctx->queue, &th->receiver);
    while (!h2o_linklist_is_empty(&th->waiters))
        h2o_linklist_unlink(th->waiters.next);
    free(th);
}

void lfs_refresh_thread_cleanup(void)
{
    struct refresh_thread *th = thread_parts;
    thread_parts = NULL;
    while (th != NULL) {
        struct refresh_thread *next = th->next;
        part_release(th);
        th = next;
    }
}

static struct refresh_thread *part_get(struct lfs_refresh *r, h2o_context_t *ctx)
{
    for (struct refresh_thread *th = thread_parts; th != NULL; th = th->next)
        if (th->r == r && th->ctx == ctx)
            return th;
    /* A thread that moved on to another context (tests do) starts afresh. */
    if (thread_parts != NULL && thread_parts->ctx != ctx)
        lfs_refresh_thread_cleanup();
    struct refresh_thread *th = calloc(1, sizeof(*th));
    if (th == NULL)
        return NULL;
    th->r = r;
    th->ctx = ctx;
    h2o_linklist_init_anchor(&th->waiters);
    h2o_multithread_register_receiver(ctx->queue, &th->receiver, on_wake);
    pthread_mutex_lock(&r->mu);
    h2o_linklist_insert(&r->threads, &th->link);
    pthread_mutex_unlock(&r->mu);
    th->next = thread_parts;
    thread_parts = th;
    return th;
}

void lfs_refresh_get(struct lfs_refresh *r, struct lfs_io *io, lfs_refresh_cb cb, void *arg)
{
    struct refresh_thread *th = part_get(r, io->ctx);
    if (th == NULL) {
        struct lfs_error err;
        lfs_error_set(&err, 503, "%s: out of memory waiting for it", r->what);
        cb(arg, NULL, &err);
        return;
    }
    uint64_t now = now_ms();
    pthread_mutex_lock(&r->mu);
    if (r->secret != NULL && now < r->usable_until) {
        const char *secret = h2o_strdup(io->pool, r->secret, SIZE_MAX).base;
        bool refresh = now >= r->refresh_at && !r->fetching;
        if (refresh) {
            r->fetching = true;
            r->started++;
        }
        pthread_mutex_unlock(&r->mu);
        if (refresh)
            fetch_start(th);
        cb(arg, secret, NULL);
        return;
    }
    bool start = !r->fetching;
    if (start) {
        r->fetching = true;
        r->started++;
    }
    struct refresh_waiter *w = h2o_mem_alloc_shared(io->pool, sizeof(*w), waiter_dispose);
    *w = (struct refresh_waiter){.fetch = r->started, .pool = io->pool, .cb = cb, .arg = arg};
    h2o_linklist_insert(&th->waiters, &w->link);
    th->has_waiters = true;
    pthread_mutex_unlock(&r->mu);
    if (start)
        fetch_start(th);
}
