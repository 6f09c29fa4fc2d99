/* What the storage backends share beyond the public storage.h API, mostly for the remote
 * ones (azure.c, gcs.c, s3.c) that talk to their store through the event-loop HTTP client: the
 * per-thread timer that spaces CPU-heavy slices of work (local.c uses it too), the SHA-256
 * check every put makes before anything becomes visible, hashing a body in slices before it
 * is uploaded, a ranged GET streamed to the reader through a bounded buffer, the lock calls
 * every remote store makes alike, the small pieces of an answer every store formats alike, and
 * the scan and quarantine of lfsgate scrub. Internal to storage/: server/ sees only storage.h.
 * Everything here runs on the loop thread of the request it serves. */
#ifndef LFS_STORAGE_REMOTE_H
#define LFS_STORAGE_REMOTE_H

#include <openssl/evp.h>
#include <stdint.h>

#include "common/error.h"
#include "storage/http_client.h"
#include "storage/storage.h"

/* ---- slices of work on the loop ---- */

/* The calling thread's 1 ms timer for the next slice of a long job (hashing, writing), bound
 * to `loop` on first use (and re-bound when the thread's loop changes). Not
 * ctx->zero_timeout: h2o 2.2.5 runs an entry re-linked to a 0 ms timeout again in the same
 * loop turn, so other connections would not get a turn between slices. The timer belongs to
 * the thread; lfs_storage_slice_thread_cleanup releases it. Loop thread. */
h2o_timeout_t *lfs_storage_slice_timeout(h2o_loop_t *loop);

/* Releases the calling thread's slice timer (no-op if it never had one); called by
 * lfs_storage_thread_cleanup, once no request of the thread is in progress. */
void lfs_storage_slice_thread_cleanup(void);

/* ---- the SHA-256 check of an upload ---- */

/* A new SHA-256 context (the caller frees it with EVP_MD_CTX_free), or NULL with err 500 "out
 * of memory". Any thread. */
EVP_MD_CTX *lfs_storage_sha256_new(struct lfs_error *err);

/* Finalises md (a SHA-256 context that has seen the whole body) and compares the digest with
 * oid (64 lowercase hex digits). Returns 0 when they are equal; otherwise -1 with err 422
 * "uploaded data does not match its oid: ...; nothing was stored". md stays the caller's
 * (finalised: free it or re-initialise it). Any thread. */
int lfs_storage_check_sha256(EVP_MD_CTX *md, const char *oid, struct lfs_error *err);

/* Hashes body (already in memory and valid until cb) in slices of 8 MiB, one per loop turn
 * on the slice timer, and calls cb(arg, NULL) when its SHA-256 is oid, or cb(arg, err) with
 * the 422 of lfs_storage_check_sha256 (500 when no digest context can be had). The first
 * slice is hashed before this returns, so for a small body cb may be called before it
 * returns. The work is owned by io->pool: disposing the pool stops it and cb is never
 * called. Loop thread. */
void lfs_storage_verify_body(struct lfs_io *io, h2o_iovec_t body, const char *oid,
                             lfs_storage_done_cb cb, void *arg);

/* ---- one operation on one object of a remote store ---- */

/* How a backend words a final answer of its store that is neither success nor an expected
 * 404: fills err (502, or 503 when the store is busy or down) with a message naming the store,
 * `what` was asked (e.g. "HEAD", "download") and `object`. res->body is the error body (what
 * was collected of it). ctx is the backend's own (its storage). */
typedef void (*lfs_storage_status_error_fn)(const void *ctx, struct lfs_error *err,
                                            const struct lfs_http_response *res, const char *what,
                                            const char *object);

/* What the shared code needs to word the failures of one operation on one object. */
struct lfs_storage_remote_op {
    const char *store;  /* names the store in messages, e.g. "azure storage" */
    const char *what;   /* the operation, for status_error: "HEAD", "GET", "lookup" */
    const char *object; /* names the object in messages (blob name, oid); copied */
    lfs_storage_status_error_fn status_error;
    const void *ctx; /* status_error's ctx; must outlive the request */
};

/* ---- stat: a HEAD of the object ---- */

struct lfs_storage_http_stat;

/* Prepares a stat answered by a HEAD the backend signs and starts itself, with
 * lfs_storage_http_stat_on_done as its callback and the result as its arg. Lives in io->pool.
 * Loop thread. */
struct lfs_storage_http_stat *lfs_storage_http_stat_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_stat_cb cb, void *arg);

/* The HEAD's callback (lfs_http_cb): cb(arg, size, NULL) for a 200 with a Content-Length,
 * cb(arg, -1, NULL) for a 404, cb(arg, -1, err) when the call failed, for a 200 without a size
 * (502) and for any other answer (op->status_error). */
void lfs_storage_http_stat_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err);

/* ---- list: one listing of a repository's objects ---- */

/* Reads a store's listing answer for the objects under `prefix` into out, in the pool
 * (lfs_azure_parse_listing, lfs_s3_parse_listing). Returns 0, or -1 for an answer that is
 * not such a listing. */
typedef int (*lfs_storage_listing_parse_fn)(const char *body, size_t len, const char *prefix,
                                            h2o_mem_pool_t *pool, struct lfs_storage_listing *out);

struct lfs_storage_http_list;

/* Prepares a list answered by one listing call the backend signs and starts itself, with
 * lfs_storage_http_list_on_done as its callback and the result as its arg; op->object is the
 * prefix listed. Lives in io->pool. Loop thread. */
struct lfs_storage_http_list *lfs_storage_http_list_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_listing_parse_fn parse,
                                                        lfs_storage_list_cb cb, void *arg);

/* The listing call's callback (lfs_http_cb): cb(arg, listing, NULL) for a 200 that parses,
 * cb(arg, NULL, err) when the call failed, for any other answer (op->status_error) and for
 * one that does not parse (502). */
void lfs_storage_http_list_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err);

/* ---- a call whose answer is only success or failure (an upload) ---- */

struct lfs_storage_http_done;

/* Prepares the completion of a call whose 2xx answer means done (a PUT), with
 * lfs_storage_http_done_on_done as its callback and the result as its arg. Lives in io->pool.
 * Loop thread. */
struct lfs_storage_http_done *lfs_storage_http_done_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_done_cb cb, void *arg);

/* The call's callback (lfs_http_cb): cb(arg, NULL) for a 2xx, cb(arg, err) when the call failed
 * and for any other answer (op->status_error). */
void lfs_storage_http_done_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err);

/* ---- open: a ranged GET streamed to the reader ---- */

/* A download from a remote store: a struct lfs_storage_stream (what open hands out) fed by
 * one HTTP GET the backend signs and starts itself. Data from the HTTP client lands in a
 * bounded buffer (512 KiB, grown to one delivery if a delivery is larger) and the reader
 * takes it from there; when a delivery does not fit the transfer is paused and resumed once
 * it would. The opener and the reader are called back from a zero-timeout "kick" (or
 * synchronously from read), never from inside the HTTP client's callbacks, so the client is
 * never re-entered from its own on_data. */
struct lfs_storage_http_stream;

/* Creates the stream for bytes [offset, offset + length) of the object (the caller stat'ed
 * it) in io->pool (the pool's disposal frees its buffer and cancels its kick; the HTTP call,
 * in the same pool, is cancelled with it). Returns it for the backend to start its GET with
 * lfs_storage_http_stream_on_data and lfs_storage_http_stream_on_done (arg: the stream) and
 * hand the call over with lfs_storage_http_stream_started; cb is then called once, from the
 * kick, with the stream when the first data (or the end) is there, or with the error that
 * ended the transfer. Returns NULL when there is nothing to fetch: cb has then been called
 * before this returned, with an open stream at its end (length 0) or with err 500 (out of
 * memory). Loop thread. */
struct lfs_storage_http_stream *lfs_storage_http_stream_new(struct lfs_io *io,
                                                            const struct lfs_storage_remote_op *op,
                                                            uint64_t offset, uint64_t length,
                                                            lfs_storage_open_cb cb, void *arg);

/* The value of the GET's range header ("bytes=<first>-<last>"), owned by the stream. */
const char *lfs_storage_http_stream_range(const struct lfs_storage_http_stream *s);

/* The GET's deadline in ms: allows a reader as slow as 100 kB/s. */
long lfs_storage_http_stream_timeout_ms(const struct lfs_storage_http_stream *s);

/* The GET's on_data and completion callback (struct lfs_http_request.on_data, lfs_http_cb),
 * with the stream as their arg. A 206, or a 200 when the range starts at 0 (a store that
 * sends the whole object: the bytes asked for are kept and the transfer is aborted), is data;
 * a 200 for a range past 0 fails 502; 404 fails 404 "object ... does not exist"; other
 * answers go through op->status_error; a body longer or shorter than asked fails 502. */
int lfs_storage_http_stream_on_data(void *arg, long status, const char *data, size_t len);
void lfs_storage_http_stream_on_done(void *arg, const struct lfs_http_response *res,
                                     const struct lfs_error *err);

/* Hands over the GET the backend started (what lfs_http_fetch returned, NULL included), for
 * the stream to resume it after a pause. Call right after starting it. */
void lfs_storage_http_stream_started(struct lfs_storage_http_stream *s, struct lfs_http_call *call);

/* Fails the stream before its GET could start (e.g. the request could not be signed): cb is
 * called with err before this returns, and the stream is not to be used again. */
void lfs_storage_http_stream_fail(struct lfs_storage_http_stream *s, const struct lfs_error *err);

/* ---- object names ---- */

/* A path_prefix option without leading and trailing '/' into *out (malloc'd). Returns 0, 1
 * when it is not usable as a name prefix (empty, "." or ".." segments, control characters or
 * '\\'), or -1 when out of memory. Any thread. */
int lfs_storage_prefix_normalize(const char *in, char **out);

/* "[prefix/]<org_path>/<repo>/<oid>", giftless's object name, in the pool; prefix as
 * lfs_storage_prefix_normalize leaves it. The parts were validated by server/; checked again
 * because a name outside the repository's space must be impossible whatever the caller does:
 * NULL with err 422 "invalid object key". Any thread. */
const char *lfs_storage_object_name(const char *prefix, const struct lfs_object_key *key,
                                    h2o_mem_pool_t *pool, struct lfs_error *err);

/* ---- lock names (storage.h, struct lfs_lock_key) ---- */

/* True when name is LFS_LOCK_NAME_LEN lowercase hex digits. Any thread. */
bool lfs_storage_lock_name_valid(const char *name);

/* "[prefix/]<org_path>/<repo>/locks/" and, when with_name, "<key->name>.lock" after it, in the
 * pool; NULL with err 422 "invalid lock key" when a part is not valid. Any thread. */
const char *lfs_storage_lock_name(const char *prefix, const struct lfs_lock_key *key,
                                  bool with_name, h2o_mem_pool_t *pool, struct lfs_error *err);

/* The outcome of a lock call to a remote store: 1 for a 2xx answer; 0 for the status `no1` or
 * `no2` (the name taken, the version gone, no such lock: 0 when unused); -1 with *out
 * otherwise (err as it came, or op->status_error's wording of the answer). Loop thread. */
int lfs_storage_lock_outcome(const struct lfs_storage_remote_op *op,
                             const struct lfs_http_response *res, const struct lfs_error *err,
                             long no1, long no2, struct lfs_error *out);
/* "[prefix/]<org_path>/<repo>/", the names of a repository's objects begin with, in the pool
 * (a listing's prefix). NULL with err 422 for an invalid repository name. Any thread. */
const char *lfs_storage_repo_prefix(const char *prefix, const struct lfs_object_key *key,
                                    h2o_mem_pool_t *pool, struct lfs_error *err);

/* ---- small pieces of the stores' answers ---- */

/* Deadline in ms of an upload of len bytes whose body is already here: allows the store
 * 1 MB/s, plus a minute. */
long lfs_storage_upload_timeout_ms(size_t len);

/* The <Code> of an XML error body ("AuthenticationFailed", "SignatureDoesNotMatch") into code
 * (letters and digits only, at most size - 1 of them), "" when there is none. Only the code:
 * the other fields may quote the string to sign. Any thread. */
void lfs_storage_xml_error_code(h2o_iovec_t body, char *code, size_t size);

/* The text between the first <tag> and the </tag> after it in body[0..len): true with *start
 * and *n, false when there is no such element. The text is as it stands (entities not
 * decoded). Any thread. */
bool lfs_storage_xml_field(const char *body, size_t len, const char *tag, const char **start,
                           size_t *n);

/* Answers a sign op at once with a synchronous signer's result: out when rc is 0, err
 * otherwise. For backends that sign locally (azure, s3). Loop thread. */
void lfs_storage_sign_now(int rc, const struct lfs_storage_request *out,
                          const struct lfs_error *err, lfs_storage_sign_cb cb, void *arg);

/* ---- locks on a remote store (storage.h, struct lfs_lock_key) ----
 * The flow every remote store shares: a lock call named and checked the same way, its answer
 * mapped through lfs_storage_lock_outcome, a read made into a record; and, for stores whose
 * listing does not carry a lock's content (GCS, S3), a listing of the locks' prefix followed by
 * a read per listed lock, at most LFS_STORAGE_LOCK_READS at once. What differs per store (the
 * conditional headers, where the version comes from, the listing call) is in its
 * struct lfs_storage_lock_store. */

#define LFS_STORAGE_LOCK_READS 32 /* reads of listed locks in flight at once */

enum lfs_storage_lock_verb {
    LFS_STORAGE_LOCK_CREATE, /* write `body` only if no object has the name */
    LFS_STORAGE_LOCK_READ,   /* read the object and its version */
    LFS_STORAGE_LOCK_DELETE, /* delete the object only if it is still at `version` */
};

/* How one store keeps locks. Static data of the backend. */
struct lfs_storage_lock_store {
    const char *store;        /* names the store in messages */
    const char *version_name; /* in messages: "an ETag", "a generation" */
    const char *what[3];      /* the calls of each verb, in messages */
    long taken[2];            /* create's answers that mean "the name is taken" (0: unused) */
    lfs_storage_status_error_fn status_error;
    /* Signs and starts `verb` on `object` (a name from lfs_storage_lock_name) with the store's
     * precondition; version: DELETE's, else NULL; body: CREATE's. cb(arg, ...) is called once,
     * with the error when the call cannot be started. Everything given lives in io->pool. */
    void (*send)(void *ctx, struct lfs_io *io, enum lfs_storage_lock_verb verb, const char *object,
                 const char *version, h2o_iovec_t body, lfs_http_cb cb, void *arg);
    /* The version in a READ's 2xx answer, or NULL when it has none that DELETE could use. */
    const char *(*version_of)(const struct lfs_http_response *res);
    /* True when DELETE can be given version (it came from version_of, as far as can be told). */
    bool (*version_valid)(const char *version);
    /* List-then-read stores: lists up to `limit` names starting with `prefix` that sort after
     * the name `after` (NULL: from the start), cb getting an XML answer with a <Key> per name
     * and <IsTruncated>true</IsTruncated> when more follow. NULL for a store that lists locks
     * its own way (Azure). */
    void (*send_list)(void *ctx, struct lfs_io *io, const char *prefix, const char *after,
                      size_t limit, lfs_http_cb cb, void *arg);
    size_t list_max; /* the most names send_list may ask for */
    /* The storage's path_prefix, as lfs_storage_prefix_normalize leaves it. */
    const char *(*prefix)(const struct lfs_storage *storage);
};

/* The lock ops (storage.h) of a backend whose ops->lock_store is set: its storage is send's,
 * send_list's and status_error's ctx. The callbacks are called once, maybe before these return
 * (invalid key, content or version: 422). lfs_storage_remote_lock_list needs send_list. Loop
 * thread. */
void lfs_storage_remote_lock_create(struct lfs_storage *storage, struct lfs_io *io,
                                    const struct lfs_lock_key *key, h2o_iovec_t content,
                                    lfs_storage_lock_done_cb cb, void *arg);
void lfs_storage_remote_lock_read(struct lfs_storage *storage, struct lfs_io *io,
                                  const struct lfs_lock_key *key, lfs_storage_lock_read_cb cb,
                                  void *arg);
void lfs_storage_remote_lock_delete(struct lfs_storage *storage, struct lfs_io *io,
                                    const struct lfs_lock_key *key, const char *version,
                                    lfs_storage_lock_done_cb cb, void *arg);
void lfs_storage_remote_lock_list(struct lfs_storage *storage, struct lfs_io *io,
                                  const struct lfs_lock_key *key, size_t limit,
                                  lfs_storage_lock_list_cb cb, void *arg);

/* The locks' prefix of key's repository ("[prefix/]<org_path>/<repo>/locks/"), with key->name
 * checked when set: NULL with err 422 "invalid lock key" otherwise. For a store's own listing.
 * Any thread. */
const char *lfs_storage_lock_list_prefix(const char *prefix, const struct lfs_lock_key *key,
                                         h2o_mem_pool_t *pool, struct lfs_error *err);

/* The header line "<name>: <value>" in the pool (a lock call's precondition). Any thread. */
const char *lfs_storage_header_line(h2o_mem_pool_t *pool, const char *name, const char *value);

/* An ETag as DELETE's If-Match can carry it: 1..128 characters, no CR or LF. Any thread. */
bool lfs_storage_lock_etag_valid(const char *version);

/* ---- scanning a remote store and moving objects aside (lfsgate scrub) ---- */

/* Quarantined objects: "[path_prefix/]LFS_STORAGE_QUARANTINE_DIR/<org_path>/<repo>/<oid>", a
 * name no scan of the whole store reports and no object operation looks at. */
#define LFS_STORAGE_QUARANTINE_DIR ".lfsgate-quarantine"

/* A scan of a remote store (what scan_open hands out as struct lfs_storage_scan): a listing
 * cursor over the store's names, a page at a time. */
struct lfs_storage_scan_cursor {
    struct lfs_storage *storage;
    char *prefix;          /* what every listed name starts with */
    char *marker;          /* the store's continuation: NULL for the first page, or when done */
    char *org_path, *repo; /* a one-repository scan's, else NULL */
    bool done;
};

/* A backend's scan_open: a cursor (malloc'd) over every object under path_prefix (org_path
 * NULL) or one repository's, into *out. Returns 0, or -1 with err (422 invalid repository
 * name, 500 out of memory). Any thread. */
int lfs_storage_scan_cursor_open(struct lfs_storage *storage, const char *path_prefix,
                                 const char *org_path, const char *repo,
                                 struct lfs_storage_scan **out, struct lfs_error *err);
/* A backend's scan_close for a cursor of lfs_storage_scan_cursor_open: frees it. */
void lfs_storage_scan_cursor_close(struct lfs_storage_scan *scan);

/* A listed name past c->prefix as an object: "<org_path>/<repo>/<oid>" (only "<oid>" in a
 * one-repository scan), with the store's size. Returns false for anything else (quarantined
 * objects, locks, names that are not giftless's). Strings in the pool or c's. Any thread. */
bool lfs_storage_scan_entry(const struct lfs_storage_scan_cursor *c, const char *name, int64_t size,
                            h2o_mem_pool_t *pool, struct lfs_storage_scan_entry *e);

/* When c is done: calls cb with the empty last page and returns true. */
bool lfs_storage_scan_end(const struct lfs_storage_scan_cursor *c, lfs_storage_scan_cb cb,
                          void *arg);

/* A page of an S3-shaped XML listing (<Contents><Key/><Size/></Contents>, <IsTruncated>, the
 * continuation in the element `next_tag`: GCS's NextMarker, S3's NextContinuationToken),
 * read into a scan page. */
struct lfs_storage_xml_scan;

/* Prepares the reading of one listing call the backend signs and starts itself, with
 * lfs_storage_xml_scan_on_done as its callback and the result as its arg. With next_tag
 * "NextMarker", a truncated page without one continues after its last key (the XML API's
 * rule). Lives in io->pool. Loop thread. */
struct lfs_storage_xml_scan *lfs_storage_xml_scan_new(struct lfs_io *io,
                                                      struct lfs_storage_scan_cursor *c,
                                                      const struct lfs_storage_remote_op *op,
                                                      const char *next_tag, lfs_storage_scan_cb cb,
                                                      void *arg);

/* The listing call's callback (lfs_http_cb): moves the cursor on and calls cb with the page;
 * cb(arg, NULL, err) when the call failed, for any other answer than 200 (op->status_error)
 * and for one that is not a listing (502). */
void lfs_storage_xml_scan_on_done(void *arg, const struct lfs_http_response *res,
                                  const struct lfs_error *err);

/* A quarantine: a copy of the object to the quarantine name, then a delete of the original,
 * each signed and started by the backend. Lives in io->pool. */
struct lfs_storage_quarantine {
    struct lfs_io io;
    struct lfs_storage *storage;
    const char *object, *aside; /* store names (path_prefix included) */
    /* Starts the DELETE of q->object with lfs_storage_http_done_on_done and
     * lfs_storage_quarantine_delete_done(q) as its callback and arg. */
    void (*send_delete)(struct lfs_storage_quarantine *q);
    struct lfs_storage_remote_op op; /* store, status_error, ctx */
    lfs_storage_done_cb cb;
    void *arg;
};

/* A quarantine of key under path_prefix, or NULL when the key is invalid: cb has then been
 * called with err 422. op gives the store's name and wording (what/object are set here).
 * Loop thread. */
struct lfs_storage_quarantine *
lfs_storage_quarantine_new(struct lfs_io *io, struct lfs_storage *storage, const char *path_prefix,
                           const struct lfs_object_key *key, const struct lfs_storage_remote_op *op,
                           void (*send_delete)(struct lfs_storage_quarantine *q),
                           lfs_storage_done_cb cb, void *arg);

/* The copy's callback (lfs_http_cb, arg q): a 2xx starts the delete; otherwise cb with err. */
void lfs_storage_quarantine_on_copied(void *arg, const struct lfs_http_response *res,
                                      const struct lfs_error *err);

/* The delete's completion (arg of lfs_storage_http_done_on_done). */
struct lfs_storage_http_done *lfs_storage_quarantine_delete_done(struct lfs_storage_quarantine *q);

#endif
