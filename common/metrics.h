/* Process metrics for /metrics (Prometheus text format). Every thread counts into its own
 * block (no locks, no shared cache lines on the hot path); a scrape adds the blocks up. */
#ifndef LFS_COMMON_METRICS_H
#define LFS_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum lfs_metrics_route {
    LFS_METRICS_BATCH,
    LFS_METRICS_UPLOAD,
    LFS_METRICS_DOWNLOAD,
    LFS_METRICS_VERIFY,
    LFS_METRICS_LOCKS,
    LFS_METRICS_HEALTH,
    LFS_METRICS_METRICS,
    LFS_METRICS_OTHER,
    LFS_METRICS_NROUTES
};

enum lfs_metrics_batch_result {
    LFS_METRICS_OBJ_ACTION,  /* got actions */
    LFS_METRICS_OBJ_PRESENT, /* upload of an object already stored: nothing to do */
    LFS_METRICS_OBJ_ERROR,
    LFS_METRICS_NOBJ_RESULTS
};

/* Why the receive guard (server/guard.c) refused or cut a request before any handler. */
enum lfs_metrics_refusal {
    LFS_METRICS_REFUSED_FRAMING, /* ambiguous Content-Length / Transfer-Encoding: 400 */
    LFS_METRICS_REFUSED_BUSY,    /* receive budget reached: 503 */
    LFS_METRICS_REFUSED_SLOW,    /* body slower than the minimum rate: connection cut */
    LFS_METRICS_REFUSED_SPACE,   /* spool_dir too full for the body: 507 */
    LFS_METRICS_REFUSED_CONNS,   /* SERVER.max_connections reached: 503, closed */
    LFS_METRICS_NREFUSALS
};

enum lfs_metrics_outcome { LFS_METRICS_OK, LFS_METRICS_FAILED, LFS_METRICS_NOUTCOMES };

#define LFS_METRICS_NBUCKETS 13
#define LFS_METRICS_NBACKENDS 8

/* A request finished: route, HTTP status, seconds from start to the last byte. */
void lfs_metrics_request(enum lfs_metrics_route route, int status, double seconds);
/* One object of a batch got its result (upload = 1 for upload batches). */
void lfs_metrics_batch_object(int upload, enum lfs_metrics_batch_result result);
/* A call to a storage backend (name as in its ops) finished. */
void lfs_metrics_storage_call(const char *backend, enum lfs_metrics_outcome outcome,
                              double seconds);
/* The receive guard refused or cut one request. Any thread. */
void lfs_metrics_refusal(enum lfs_metrics_refusal why);
/* Body bytes received (uploads) and sent (downloads). */
void lfs_metrics_bytes(uint64_t in, uint64_t out);
/* Requests in progress (+1 at start, -1 when the request is freed). */
void lfs_metrics_inflight(int delta);

/* Token cache counters come from auth/; a provider registers a reader once at startup. */
void lfs_metrics_set_token_cache_reader(void (*reader)(uint64_t *hits, uint64_t *misses));

/* What a File Locking API request did (server/locks.c). */
enum lfs_metrics_lock_event {
    LFS_METRICS_LOCK_CREATED,
    LFS_METRICS_LOCK_CONFLICT, /* the path was locked already: 409 */
    LFS_METRICS_LOCK_REMOVED,
    LFS_METRICS_LOCK_FORCE_REMOVED, /* someone else's lock, removed with force */
    LFS_METRICS_LOCK_LISTED,        /* a GET locks or locks/verify answered */
    LFS_METRICS_NLOCK_EVENTS
};
/* Counts one lock event. Any thread. */
void lfs_metrics_lock(enum lfs_metrics_lock_event event);
/* A remote auth provider's counters (github: API calls by endpoint and outcome, its cache):
 * `render` returns complete Prometheus text (HELP/TYPE lines included) in a malloc'd buffer
 * of *len bytes, appended to every scrape; NULL when out of memory. Registered once at
 * startup; render is called from any thread. */
void lfs_metrics_set_auth_renderer(char *(*render)(size_t *len));

/* Renders all metrics into a malloc'd buffer (*len bytes). Caller frees. Any thread. */
char *lfs_metrics_render(size_t *len);

#endif
