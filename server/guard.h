/* The receive guard (guard.c): HTTP/1 framing checks before h2o reads a body, a budget on the
 * bytes being received across all workers, and a minimum receive rate for bodies. */
#ifndef LFS_SERVER_GUARD_H
#define LFS_SERVER_GUARD_H

#include <stdbool.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "common/error.h"

struct lfs_guard_settings {
    long long max_upload_size;  /* bodies larger than this get 413 from h2o */
    long long receive_budget;   /* bytes being received at once, all workers; 0 = no cap */
    long long min_receive_rate; /* bytes/s a body must keep up after the grace; 0 = off */
    long long receive_grace;    /* seconds before the rate applies */
    long long request_timeout;  /* seconds a request may take to arrive, body included */
    const char *spool_dir;      /* where large bodies spill; NULL: its free space is not checked */
    long long max_connections;  /* connections open at once, all workers; 0 = no cap */
    /* HTTP/1.1 PUT bodies of at least direct_min bytes (0 = none) to a path direct_route
     * accepts (ctx: the connection's worker; path without the query) are kept back from h2o
     * and read by the handler as they arrive (lfs_guard_direct_read). direct_route runs on
     * the worker's thread. */
    long long direct_min;
    bool (*direct_route)(h2o_context_t *ctx, const char *path, size_t len);
};

/* One per worker thread: its sweep timer and its share of the bytes being received. */
struct lfs_guard_worker {
    h2o_context_t *ctx;
    h2o_timeout_t timeout;
    h2o_timeout_entry_t entry;
    long long counted; /* this worker's share of the total at its last sweep */
};

/* Takes the settings (fixed for the process's life), checks that the interposition of
 * h2o_socket_read_start and h2o_socket_close works, and removes the spool files a killed
 * process left in spool_dir. Returns 0, or -1 with err. Main thread, before any worker. */
int lfs_guard_init(const struct lfs_guard_settings *s, struct lfs_error *err);

/* h2o_accept for a connection from one of lfsgate's listeners, with the guard in front of
 * its HTTP/1 reader; past SERVER.max_connections open connections it answers 503 and closes
 * the new one instead. Worker thread. */
void lfs_guard_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock);

/* The accept(2) of a listener failed with `error` (listener: h2o's socket for it). Out of file
 * descriptors (EMFILE/ENFILE), one waiting connection is shed (closed at once) so the listener
 * does not spin, and the failure is logged at most once every 10 s. Worker thread. */
void lfs_guard_accept_failed(h2o_socket_t *listener, int error);

/* A request's body has been received and handed to lfsgate: its admitted size stops counting
 * against the budget now rather than at the next sweep. The request's worker thread. */
void lfs_guard_body_received(h2o_req_t *req);

/* A piece of a body read with lfs_guard_direct_read. Returns 0, or -1 to have the rest
 * read and dropped. */
typedef int (*lfs_guard_direct_data_cb)(void *arg, const char *p, size_t n);
/* The body ended: complete, every declared byte was handed over and the request may be
 * answered; otherwise the client went away (or was cut for being slow) and the connection is
 * being closed: nothing may be answered, and the request is disposed right after. */
typedef void (*lfs_guard_direct_end_cb)(void *arg, bool complete);

/* The declared length of req's body if the guard kept it back from h2o for the handler to
 * read (req->entity is then empty), -1 otherwise. The request's worker thread. */
long long lfs_guard_direct_length(h2o_req_t *req);

/* Reads req's kept-back body (lfs_guard_direct_length >= 0; once per request): on_data with
 * each piece as it arrives (on_data NULL: the body is dropped), then on_end once. Sends
 * "100 Continue" first when the client asked for it. Either callback may run before this
 * returns. The request's worker thread. */
void lfs_guard_direct_read(h2o_req_t *req, lfs_guard_direct_data_cb on_data,
                           lfs_guard_direct_end_cb on_end, void *arg);

/* About to answer req: true when its body was kept back and not read, so the caller must read
 * it (lfs_guard_direct_read with on_data NULL) before it answers. False also when the client
 * waits for "100 Continue": the answer then goes at once and the connection closes after. The
 * request's worker thread. */
bool lfs_guard_direct_pending(h2o_req_t *req);

/* Starts and stops the worker's sweep (every 500 ms). The worker's thread. */
void lfs_guard_worker_start(struct lfs_guard_worker *g, h2o_context_t *ctx);
void lfs_guard_worker_stop(struct lfs_guard_worker *g);

#endif
