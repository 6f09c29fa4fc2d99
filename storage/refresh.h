/* A secret that expires and is fetched again in the background, shared by every worker thread:
 * the GCS access token from the metadata server (storage/gcs_iam.c), the temporary AWS keys
 * from STS, a container endpoint or IMDS (storage/s3.c). At most one fetch per secret is in
 * flight across all threads, run asynchronously on the loop of the thread that needed it
 * first; requests that need the secret while none is usable wait on their own loop and are
 * resumed there. A held secret is handed out until shortly before it expires (never after)
 * and fetched again from half its life on, so requests rarely wait. Internal to storage/. */
#ifndef LFS_STORAGE_REFRESH_H
#define LFS_STORAGE_REFRESH_H

#include "common/error.h"
#include "storage/storage.h"

struct lfs_refresh;

/* Starts fetching a new secret on io (its pool is the refresher's own, released by
 * lfs_refresh_done: a client going away must not cancel everyone's fetch). The fetcher calls
 * lfs_refresh_done exactly once, on this loop thread, possibly before returning; ctx is the
 * one given to lfs_refresh_open. */
typedef void (*lfs_refresh_fetch_fn)(struct lfs_refresh *r, struct lfs_io *io, void *ctx);

/* The refresher named `key` (what identifies the source, e.g. its URL): the one opened before
 * under that key, with the secret it holds, or a new one that fetches with fetch(ctx). `what`
 * names the secret in messages ("gcs storage: the access token from the metadata server").
 * keep_s > 0: a secret is handed out only while it has that long to live (at most a quarter of
 * its life), for secrets that sign things that must outlive the call, such as URLs.
 * Refreshers live as long as the process (a reload finds its own again). *reused tells whether
 * it existed already: the caller then keeps (and frees) its ctx. Returns 0, or -1 with err 500
 * (out of memory, too many refreshers). Main thread (startup and reload). */
int lfs_refresh_open(const char *key, const char *what, lfs_refresh_fetch_fn fetch, void *ctx,
                     long keep_s, struct lfs_refresh **out, bool *reused, struct lfs_error *err);

/* Completes the fetch in flight (called by the fetcher, on its loop thread): secret (malloc'd,
 * taken; printable ASCII) valid for lifetime_s > 0 seconds, or secret NULL and err (whose
 * status and message the waiters get; the message must name the source, never the secret).
 * Releases the fetch's pool: the fetcher must not touch it afterwards. */
void lfs_refresh_done(struct lfs_refresh *r, char *secret, long lifetime_s,
                      const struct lfs_error *err);

/* secret: a copy in the request pool; or NULL with err. */
typedef void (*lfs_refresh_cb)(void *arg, const char *secret, const struct lfs_error *err);

/* Calls cb once, on this loop thread, with a secret valid for a while yet: at once (before
 * returning) while the held one is fresh, starting a background fetch once it is past half its
 * life; otherwise after the one fetch in flight across all threads (started here if there is
 * none) completes. Disposing io->pool first cancels the wait (no callback). Loop thread. */
void lfs_refresh_get(struct lfs_refresh *r, struct lfs_io *io, lfs_refresh_cb cb, void *arg);

/* Releases the calling thread's part of every refresher (its wake-up receivers, a fetch it
 * runs: the other threads' waiters then get an error). Call before lfs_http_thread_cleanup,
 * with no request of the thread in progress. */
void lfs_refresh_thread_cleanup(void);

#endif
