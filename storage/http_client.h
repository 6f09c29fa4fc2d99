/* Outbound HTTP for remote storage backends: one libcurl multi handle per worker thread,
 * driven by that thread's h2o event loop (no extra threads, no blocking the loop). A batch
 * fans out one request per object at once and completes in about one round trip.
 * Every request has a deadline; every callback is called exactly once, on the loop thread,
 * unless the request's pool is disposed first (then never, and the transfer is cancelled). */
#ifndef LFS_STORAGE_HTTP_CLIENT_H
#define LFS_STORAGE_HTTP_CLIENT_H

#include <stdint.h>
#include <sys/types.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "common/error.h"
#include "storage/storage.h"

#define LFS_HTTP_MAX_HEADERS 16

/* Loads libcurl for a remote backend being configured at `path` (storage/curl_api.h), so a
 * missing library is a config error rather than a failure of the first request. Returns 0,
 * or -1 with err naming path. Any thread. */
int lfs_http_client_load(const char *path, struct lfs_error *err);

/* One outbound request. All pointers need only live until lfs_http_fetch returns (the
 * client copies what it keeps), except body.base, which must stay valid until the callback
 * (or the pool's disposal). */
struct lfs_http_request {
    const char *method; /* "GET", "HEAD", "PUT", "DELETE", ... */
    const char *url;
    const char *headers[LFS_HTTP_MAX_HEADERS]; /* "Name: value" lines, NULL-terminated */
    h2o_iovec_t body;                          /* request body (PUT/POST), may be empty */
    /* Whole-request deadline, including time spent paused; 0 = 30 s. Streaming callers size
     * it for the object. */
    long timeout_ms;
    /* Names the store in error messages, e.g. "azure storage" gives
     * "azure storage unreachable: Connection refused (while HEAD https://host/path)";
     * NULL = "remote storage". */
    const char *store;
    /* Response body, as it arrives, with the response status; NULL to collect it (up to
     * 1 MiB, the rest dropped without error) into response.body. Gets the same arg as the
     * callback. Return 0 when the data was consumed; 1 to pause: the data was NOT consumed
     * and is delivered again after lfs_http_resume (possibly from inside that call); -1 to
     * abort (the callback then gets err 502). It may start other fetches (they start on the
     * next loop turn) and may dispose the pool (then no callback). */
    int (*on_data)(void *arg, long status, const char *data, size_t len);
};

struct lfs_http_response {
    long status;            /* HTTP status; 0 when no response arrived (see err) */
    int64_t content_length; /* -1 when unknown */
    h2o_iovec_t body;       /* collected body when on_data was NULL (pool memory) */
    const char *etag;       /* response header values of interest, pool memory or NULL */
    const char *content_type;
    const char *request_id; /* x-ms-request-id / x-goog-request-id / x-amz-request-id */
    const char *generation; /* x-goog-generation (GCS: the object's version) */
    /* Rate limiting and pagination of REST APIs (the GitHub auth provider): Retry-After,
     * X-RateLimit-Remaining, X-RateLimit-Reset and Link, pool memory or NULL. */
    const char *retry_after;
    const char *ratelimit_remaining;
    const char *ratelimit_reset;
    const char *link;
};

struct lfs_http_call;

/* err == NULL when a response arrived (any status); otherwise err->status is 502 (could not
 * connect or the connection failed) or 504 (deadline passed), with a message naming
 * request->store, never the URL's query (it may hold a signature). response is never NULL
 * (with err, status may be 0 and the other fields empty). Called after the client let go of
 * the request: the callback may start fetches or dispose the pool. */
typedef void (*lfs_http_cb)(void *arg, const struct lfs_http_response *response,
                            const struct lfs_error *err);

/* Starts the request on io's loop. The call is owned by io->pool: disposing the pool cancels
 * the transfer (no callback). Returns the call (for lfs_http_resume), or NULL after calling
 * cb with an error synchronously (URL not http(s), out of memory). Loop thread; a thread's
 * client is bound to one loop (a second loop gets err 500 while the first has requests in
 * flight). */
struct lfs_http_call *lfs_http_fetch(struct lfs_io *io, const struct lfs_http_request *request,
                                     lfs_http_cb cb, void *arg);

/* Resumes a call whose on_data returned 1 (no-op otherwise, or once it completed); on_data
 * may run before this returns. Loop thread. */
void lfs_http_resume(struct lfs_http_call *call);

/* Releases the calling thread's multi handle and connection cache; call once when a worker
 * thread's loop stops, before the loop is destroyed, never from a callback. Requests still in
 * flight are dropped without callback. */
void lfs_http_thread_cleanup(void);

#endif
