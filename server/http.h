/* The HTTP side of the server: per-thread worker state, the per-request context, and the
 * helpers every handler uses to authenticate, build public URLs and answer (JSON bodies and
 * JSON errors with the LFS media type). Only server/ renders HTTP. */
#ifndef LFS_SERVER_HTTP_H
#define LFS_SERVER_HTTP_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"
#include "server/app.h"
#include "server/guard.h"
#include "server/route.h"

#define LFS_MEDIA_TYPE "application/vnd.git-lfs+json"

/* One worker thread: its own loop and h2o context; the app is shared read-only. */
struct lfs_worker {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_accept_ctx_t metrics_accept_ctx;
    struct lfs_app *app; /* this thread's reference; swapped on reload (SIGHUP) */
    unsigned app_generation;
    h2o_socket_t *listener, *metrics_listener;
    int listen_fd, metrics_fd;  /* metrics_fd < 0: no separate metrics listener here */
    int inflight;               /* requests not yet freed */
    long long shutdown_timeout; /* seconds, set before `stopping` is raised */
    /* /readyz result, cached so probes cost at most one storage check every few seconds */
    time_t ready_at;
    int ready_status;
    char ready_message[LFS_ERROR_MESSAGE_MAX];
    int index;
    uint64_t request_seq;
    uint32_t id_salt; /* random, so request ids differ across restarts and replicas */
    struct lfs_guard_worker guard;
};

/* One request, allocated from its pool; its dispose callback records metrics, writes the
 * access log and drops the app reference. */
struct lfs_request {
    h2o_req_t *req;
    struct lfs_worker *worker;
    struct lfs_app *app; /* referenced for the request's lifetime */
    struct timespec started;
    int metrics_route; /* enum lfs_metrics_route */
    struct lfs_route route;
    struct lfs_identity identity;
    char request_id[40];
    /* Lets a remote provider (github) make authentication wait: the handler is run again
     * from its start when the lookup completed. Filled on first use (ctx NULL before). */
    struct lfs_auth_wait auth_wait;
};

/* The receive guard's direct_route (server/guard.h): true when path is an object's URL and
 * the adapter serving objects takes uploads in pieces (its storage has put_open). The
 * worker's thread. */
bool lfs_http_direct_route(h2o_context_t *ctx, const char *path, size_t len);

/* Sends a JSON error {"message", "request_id"} with the LFS media type; 401 adds
 * LFS-Authenticate. Loop thread. */
void lfs_http_send_error(struct lfs_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same from a struct lfs_error (status 0 is treated as 500). */
void lfs_http_send_lfs_error(struct lfs_request *r, const struct lfs_error *err);
/* Writes the "message" and "request_id" members of an LFS error answer into the object w
 * has open (the error body, or a lock answer that also explains itself). Nothing to free;
 * loop thread. */
struct lfs_json_writer;
void lfs_http_write_message(const struct lfs_request *r, struct lfs_json_writer *w,
                            const char *message);
/* Sends what w holds as the JSON body and frees w; when w failed (out of memory), a static
 * 500 body instead, so an answer can always be sent. Loop thread. */
void lfs_http_send_writer(struct lfs_request *r, int status, struct lfs_json_writer *w);
/* Sends buf[0..len), JSON text that lives as long as the request (its pool, or static), with
 * the LFS media type. */
void lfs_http_send_json_text(struct lfs_request *r, int status, char *buf, size_t len);

/* Authenticates the request with the app's chain and checks `perm` on the route's repository
 * (oid NULL) or object. Returns 0 when allowed (r->identity filled); otherwise answers 401 or
 * 403 itself and returns -1. */
int lfs_http_authorize(struct lfs_request *r, unsigned perm, const char *oid);
/* Authenticates only (fills r->identity); answers 401 and returns -1 on failure (a remote
 * provider's refusal keeps its status: 403, 404, or 503 with Retry-After). Also returns -1,
 * without answering, when a remote provider must look the credential up first: the route's
 * handler is then called again from its start once the lookup completed, so a handler does
 * nothing before authenticating that it could not do twice. Loop thread. */
int lfs_http_authenticate(struct lfs_request *r);

/* Public URL of the route's LFS endpoint ("<scheme>://<host><prefix>/<org>/<repo>.git/info/lfs"),
 * honouring X-Forwarded-* only as far as the ProxyFix settings trust them. Allocated from the
 * request pool. Returns NULL after answering 400 for a hostile Host or forwarded value. */
const char *lfs_http_base_url(struct lfs_request *r);

/* Returns the value of the first header `name` (a token), or {NULL, 0}. */
h2o_iovec_t lfs_http_header(h2o_req_t *req, const h2o_token_t *name);
/* The same for a header without an h2o token; name in lowercase. */
h2o_iovec_t lfs_http_header_str(h2o_req_t *req, const char *name);
/* Returns the percent-decoded value of query parameter `name` from the pool, or NULL. */
const char *lfs_http_query_param(struct lfs_request *r, const char *name);

/* False (after answering 406) when Accept names neither the LFS media type, JSON nor a
 * wildcard. */
bool lfs_http_accepts_json(struct lfs_request *r);

/* Route handlers (batch.c, objects.c, locks.c). Each answers the request. */
void lfs_handle_batch(struct lfs_request *r);
void lfs_handle_object(struct lfs_request *r);
void lfs_handle_verify(struct lfs_request *r);
void lfs_handle_locks(struct lfs_request *r);

/* The h2o entry point registered on "/": routes and dispatches. */
int lfs_http_on_request(h2o_handler_t *self, h2o_req_t *req);
/* The entry point of the separate metrics listener (SERVER.metrics_listen). */
int lfs_http_on_metrics_request(h2o_handler_t *self, h2o_req_t *req);

/* Computes the public scheme/host/prefix for a request: exposed for unit tests.
 * Returns 0 or -1 with err 400. Strings from pool. */
int lfs_http_public_origin(h2o_mem_pool_t *pool, const struct lfs_proxy_fix *pf, const char *scheme,
                           h2o_iovec_t authority, const h2o_headers_t *headers, const char **origin,
                           struct lfs_error *err);

/* Parses a Range header value against an object of `size` bytes (objects.c): returns 1 with
 * [*start, *end] for a satisfiable single range "bytes=a-b", "bytes=a-" or "bytes=-n", 0 to
 * ignore the header (absent, malformed, several ranges: the whole object is sent), -1 when
 * it cannot be satisfied (416). Any thread. */
int lfs_http_parse_range(h2o_iovec_t v, uint64_t size, uint64_t *start, uint64_t *end);

#endif
