/* Per-thread metric blocks. A thread's block is created on its first update and linked into
 * a global list (under a mutex, once per thread); updates after that touch only the thread's
 * own block with relaxed atomics, so a scrape from another thread reads whole values. */
#include "common/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[LFS_METRICS_NBUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
static const char *const route_names[LFS_METRICS_NROUTES] = {
    "batch", "upload", "download", "verify", "locks", "health", "metrics", "other"};
static const char *const result_names[LFS_METRICS_NOBJ_RESULTS] = {"action", "present", "error"};
static const char *const outcome_names[LFS_METRICS_NOUTCOMES] = {"ok", "failed"};
static const char *const refusal_names[LFS_METRICS_NREFUSALS] = {"framing", "busy", "slow", "space",
                                                                 "connections"};
static const char *const lock_event_names[LFS_METRICS_NLOCK_EVENTS] = {
    "created", "conflict", "removed", "force_removed", "listed"};

struct histogram {
    _Atomic uint64_t buckets[LFS_METRICS_NBUCKETS]; /* non-cumulative; last is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

struct block {
    struct block *next;
    _Atomic uint64_t requests[LFS_METRICS_NROUTES][600]; /* by status code */
    struct histogram duration[LFS_METRICS_NROUTES];
    _Atomic uint64_t batch_objects[2][LFS_METRICS_NOBJ_RESULTS];
    _Atomic uint64_t storage_calls[LFS_METRICS_NBACKENDS][LFS_METRICS_NOUTCOMES];
    struct histogram storage_latency[LFS_METRICS_NBACKENDS];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic int64_t inflight;
    _Atomic uint64_t refusals[LFS_METRICS_NREFUSALS];
    _Atomic uint64_t lock_events[LFS_METRICS_NLOCK_EVENTS];
};

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *blocks;
static __thread struct block *mine;
/* Backend names are static strings from the ops tables; slots are claimed once. */
static const char *_Atomic backend_names[LFS_METRICS_NBACKENDS];
static void (*_Atomic token_cache_reader)(uint64_t *, uint64_t *);
static char *(*_Atomic auth_renderer)(size_t *);

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

static struct block *my_block(void)
{
    if (mine != NULL)
        return mine;
    /* Blocks live as long as the process: a thread that exits keeps its counts. */
    mine = calloc(1, sizeof(*mine));
    if (mine == NULL)
        abort();
    pthread_mutex_lock(&blocks_lock);
    mine->next = blocks;
    blocks = mine;
    pthread_mutex_unlock(&blocks_lock);
    return mine;
}

static void observe(struct histogram *h, double seconds)
{
    size_t i = 0;
    while (i < LFS_METRICS_NBUCKETS - 1 && seconds > bucket_bounds[i])
        i++;
    ADD(h->buckets[i], 1);
    ADD(h->count, 1);
    ADD(h->sum_us, (uint64_t)(seconds * 1e6));
}

void lfs_metrics_request(enum lfs_metrics_route route, int status, double seconds)
{
    struct block *b = my_block();
    if (status < 0 || status >= 600)
        status = 0;
    ADD(b->requests[route][status], 1);
    observe(&b->duration[route], seconds);
}

void lfs_metrics_batch_object(int upload, enum lfs_metrics_batch_result result)
{
    ADD(my_block()->batch_objects[upload ? 1 : 0][result], 1);
}

static int backend_slot(const char *name)
{
    for (int i = 0; i < LFS_METRICS_NBACKENDS; i++) {
        const char *cur = atomic_load(&backend_names[i]);
        if (cur == NULL) {
            const char *expected = NULL;
            if (atomic_compare_exchange_strong(&backend_names[i], &expected, name))
                return i;
            cur = expected;
        }
        if (strcmp(cur, name) == 0)
            return i;
    }
    return LFS_METRICS_NBACKENDS - 1;
}

void lfs_metrics_storage_call(const char *backend, enum lfs_metrics_outcome outcome, double seconds)
{
    struct block *b = my_block();
    int slot = backend_slot(backend);
    ADD(b->storage_calls[slot][outcome], 1);
    observe(&b->storage_latency[slot], seconds);
}

void lfs_metrics_bytes(uint64_t in, uint64_t out)
{
    struct block *b = my_block();
    if (in)
        ADD(b->bytes_in, in);
    if (out)
        ADD(b->bytes_out, out);
}

void lfs_metrics_refusal(enum lfs_metrics_refusal why)
{
    ADD(my_block()->refusals[why], 1);
}

void lfs_metrics_lock(enum lfs_metrics_lock_event event)
{
    ADD(my_block()->lock_events[event], 1);
}

void lfs_metrics_inflight(int delta)
{
    ADD(my_block()->inflight, delta);
}

void lfs_metrics_set_token_cache_reader(void (*reader)(uint64_t *hits, uint64_t *misses))
{
    atomic_store(&token_cache_reader, reader);
}

void lfs_metrics_set_auth_renderer(char *(*render)(size_t *len))
{
    atomic_store(&auth_renderer, render);
}

/* A growing output buffer. */
struct out {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *nb = realloc(o->buf, cap);
        if (nb == NULL)
            return;
        o->buf = nb;
        o->cap = cap;
    }
}

static void sum_histogram(struct histogram *into, const struct histogram *h)
{
    for (int i = 0; i < LFS_METRICS_NBUCKETS; i++)
        into->buckets[i] += GET(h->buckets[i]);
    into->count += GET(h->count);
    into->sum_us += GET(h->sum_us);
}

static void put_histogram(struct out *o, const char *name, const char *labels,
                          const struct histogram *h)
{
    uint64_t cumulative = 0;
    for (int i = 0; i < LFS_METRICS_NBUCKETS; i++) {
        cumulative += h->buckets[i];
        if (i < LFS_METRICS_NBUCKETS - 1)
            put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bucket_bounds[i],
                (unsigned long long)cumulative);
        else
            put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                (unsigned long long)cumulative);
    }
    put(o, "%s_sum{%s} %.6f\n", name, labels, (double)h->sum_us / 1e6);
    put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

char *lfs_metrics_render(size_t *len)
{
    struct block *total = calloc(1, sizeof(*total));
    struct out o = {.buf = malloc(16384), .cap = 16384};
    if (total == NULL || o.buf == NULL) {
        free(total);
        free(o.buf);
        return NULL;
    }
    pthread_mutex_lock(&blocks_lock);
    for (struct block *b = blocks; b != NULL; b = b->next) {
        for (int r = 0; r < LFS_METRICS_NROUTES; r++) {
            for (int s = 0; s < 600; s++)
                total->requests[r][s] += GET(b->requests[r][s]);
            sum_histogram(&total->duration[r], &b->duration[r]);
        }
        for (int u = 0; u < 2; u++)
            for (int k = 0; k < LFS_METRICS_NOBJ_RESULTS; k++)
                total->batch_objects[u][k] += GET(b->batch_objects[u][k]);
        for (int i = 0; i < LFS_METRICS_NBACKENDS; i++) {
            for (int k = 0; k < LFS_METRICS_NOUTCOMES; k++)
                total->storage_calls[i][k] += GET(b->storage_calls[i][k]);
            sum_histogram(&total->storage_latency[i], &b->storage_latency[i]);
        }
        total->bytes_in += GET(b->bytes_in);
        total->bytes_out += GET(b->bytes_out);
        total->inflight += GET(b->inflight);
        for (int k = 0; k < LFS_METRICS_NREFUSALS; k++)
            total->refusals[k] += GET(b->refusals[k]);
        for (int k = 0; k < LFS_METRICS_NLOCK_EVENTS; k++)
            total->lock_events[k] += GET(b->lock_events[k]);
    }
    pthread_mutex_unlock(&blocks_lock);

    put(&o, "# HELP lfsgate_requests_total HTTP requests by route and status.\n"
            "# TYPE lfsgate_requests_total counter\n");
    for (int r = 0; r < LFS_METRICS_NROUTES; r++)
        for (int s = 0; s < 600; s++)
            if (total->requests[r][s] != 0)
                put(&o, "lfsgate_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route_names[r],
                    s, (unsigned long long)total->requests[r][s]);
    put(&o, "# HELP lfsgate_request_duration_seconds Time from request to last byte.\n"
            "# TYPE lfsgate_request_duration_seconds histogram\n");
    for (int r = 0; r < LFS_METRICS_NROUTES; r++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
        if (total->duration[r].count != 0)
            put_histogram(&o, "lfsgate_request_duration_seconds", labels, &total->duration[r]);
    }
    put(&o, "# HELP lfsgate_batch_objects_total Batch objects by operation and result.\n"
            "# TYPE lfsgate_batch_objects_total counter\n");
    for (int u = 0; u < 2; u++)
        for (int k = 0; k < LFS_METRICS_NOBJ_RESULTS; k++)
            put(&o, "lfsgate_batch_objects_total{operation=\"%s\",result=\"%s\"} %llu\n",
                u ? "upload" : "download", result_names[k],
                (unsigned long long)total->batch_objects[u][k]);
    put(&o, "# HELP lfsgate_storage_calls_total Calls to storage backends by outcome.\n"
            "# TYPE lfsgate_storage_calls_total counter\n");
    for (int i = 0; i < LFS_METRICS_NBACKENDS; i++) {
        const char *name = atomic_load(&backend_names[i]);
        if (name == NULL)
            continue;
        for (int k = 0; k < LFS_METRICS_NOUTCOMES; k++)
            put(&o, "lfsgate_storage_calls_total{backend=\"%s\",outcome=\"%s\"} %llu\n", name,
                outcome_names[k], (unsigned long long)total->storage_calls[i][k]);
    }
    put(&o, "# HELP lfsgate_storage_call_duration_seconds Storage call latency.\n"
            "# TYPE lfsgate_storage_call_duration_seconds histogram\n");
    for (int i = 0; i < LFS_METRICS_NBACKENDS; i++) {
        const char *name = atomic_load(&backend_names[i]);
        char labels[64];
        if (name == NULL)
            continue;
        snprintf(labels, sizeof(labels), "backend=\"%s\"", name);
        put_histogram(&o, "lfsgate_storage_call_duration_seconds", labels,
                      &total->storage_latency[i]);
    }
    put(&o,
        "# HELP lfsgate_bytes_received_total Object bytes received.\n"
        "# TYPE lfsgate_bytes_received_total counter\nlfsgate_bytes_received_total %llu\n"
        "# HELP lfsgate_bytes_sent_total Object bytes sent.\n"
        "# TYPE lfsgate_bytes_sent_total counter\nlfsgate_bytes_sent_total %llu\n"
        "# HELP lfsgate_requests_in_flight Requests being served.\n"
        "# TYPE lfsgate_requests_in_flight gauge\nlfsgate_requests_in_flight %lld\n",
        (unsigned long long)total->bytes_in, (unsigned long long)total->bytes_out,
        (long long)total->inflight);
    put(&o, "# HELP lfsgate_requests_refused_total Requests refused or cut before any handler "
            "(server/guard.c).\n# TYPE lfsgate_requests_refused_total counter\n");
    for (int k = 0; k < LFS_METRICS_NREFUSALS; k++)
        put(&o, "lfsgate_requests_refused_total{reason=\"%s\"} %llu\n", refusal_names[k],
            (unsigned long long)total->refusals[k]);
    put(&o, "# HELP lfsgate_lock_events_total File Locking API outcomes (server/locks.c).\n"
            "# TYPE lfsgate_lock_events_total counter\n");
    for (int k = 0; k < LFS_METRICS_NLOCK_EVENTS; k++)
        put(&o, "lfsgate_lock_events_total{event=\"%s\"} %llu\n", lock_event_names[k],
            (unsigned long long)total->lock_events[k]);
    void (*reader)(uint64_t *, uint64_t *) = atomic_load(&token_cache_reader);
    if (reader != NULL) {
        uint64_t hits = 0, misses = 0;
        reader(&hits, &misses);
        put(&o,
            "# HELP lfsgate_token_cache_hits_total Verified-token cache hits.\n"
            "# TYPE lfsgate_token_cache_hits_total counter\nlfsgate_token_cache_hits_total %llu\n"
            "# HELP lfsgate_token_cache_misses_total Verified-token cache misses.\n"
            "# TYPE lfsgate_token_cache_misses_total counter\n"
            "lfsgate_token_cache_misses_total %llu\n",
            (unsigned long long)hits, (unsigned long long)misses);
    }
    char *(*render)(size_t *) = atomic_load(&auth_renderer);
    size_t alen = 0;
    char *auth_text = render != NULL ? render(&alen) : NULL;
    if (auth_text != NULL)
        put(&o, "%.*s", (int)alen, auth_text);
    free(auth_text);
    free(total);
    *len = o.len;
    return o.buf;
}
