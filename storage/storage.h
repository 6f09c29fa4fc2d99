/* Storage backends: where objects live. One const struct lfs_storage_ops per backend,
 * selected by name or giftless class string (storage_class). Operations that may do I/O
 * are asynchronous in shape: they take the request's struct lfs_io and a callback that is
 * called exactly once, on the loop thread (a local backend may call it before returning).
 * An operation is cancelled when the request pool is disposed: its callback is then never
 * called and whatever it holds is released. */
#ifndef LFS_STORAGE_STORAGE_H
#define LFS_STORAGE_STORAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "common/error.h"

/* Which object: all parts already validated by server/ (safe path segments, 64-hex oid). */
struct lfs_object_key {
    const char *org_path; /* may contain '/' */
    const char *repo;
    const char *oid;
};

/* The request an operation runs for: its loop (through ctx) and the pool that owns it. */
struct lfs_io {
    h2o_context_t *ctx;
    h2o_mem_pool_t *pool;
};

/* size >= 0: stored with that size; size == -1 and err == NULL: not stored; err != NULL: the
 * store could not answer (err->status 502/503/504 and a message naming the store). */
typedef void (*lfs_storage_stat_cb)(void *arg, int64_t size, const struct lfs_error *err);
/* err == NULL on success. */
typedef void (*lfs_storage_done_cb)(void *arg, const struct lfs_error *err);

/* A sequential byte stream over part of an object (a download). */
struct lfs_storage_stream;
/* n > 0 bytes read into buf; n == 0 end of stream; n < 0 failure with err. */
typedef void (*lfs_storage_read_cb)(void *arg, ssize_t n, const struct lfs_error *err);
typedef void (*lfs_storage_open_cb)(void *arg, struct lfs_storage_stream *stream,
                                    const struct lfs_error *err);

struct lfs_storage_stream_ops {
    /* Reads up to cap bytes into buf. One read at a time. */
    void (*read)(struct lfs_storage_stream *stream, char *buf, size_t cap, lfs_storage_read_cb cb,
                 void *arg);
};

/* Every backend's stream embeds this first; it is allocated from the request pool and
 * released (fd closed, transfer cancelled) by the pool's dispose callback. */
struct lfs_storage_stream {
    const struct lfs_storage_stream_ops *ops;
};

/* What a signed URL is for, and the details that go into it. */
enum lfs_sign_op { LFS_SIGN_UPLOAD, LFS_SIGN_DOWNLOAD };

struct lfs_sign_request {
    enum lfs_sign_op op;
    long lifetime; /* seconds the URL stays valid (the action's expires_in) */
    time_t now;
    int64_t size;             /* the object's size as the client declared it */
    const char *filename;     /* download: Content-Disposition filename, or NULL */
    const char *disposition;  /* "attachment" / "inline", or NULL */
    const char *content_type; /* upload: type to store, or NULL */
};

/* A request the client makes straight to the store: a signed URL (sign), or one request of a
 * multipart plan (an href NULL means there is no such request). Everything in the pool. */
struct lfs_storage_request {
    const char *method; /* NULL: the action's default (parts: PUT; others: POST) */
    const char *href;
    const char *const *header; /* NULL-terminated name, value, name, value...; or NULL */
    const char *body;          /* NULL: none */
};

/* ---- multipart uploads (giftless's multipart-basic transfer) ----
 * The client sends the object in parts straight to the store, then the commit request that
 * assembles them. The shapes below are store-neutral: Azure (Put Block, Put Block List,
 * Delete Blob) fills them today; S3 (UploadPart with an upload id, CompleteMultipartUpload,
 * AbortMultipartUpload) and GCS (XML multipart API) fit the same plan. */

/* What the client is to upload. */
struct lfs_multipart_request {
    long lifetime; /* seconds every signed request stays valid */
    time_t now;
    int64_t size;             /* the object's size as the client declared it */
    uint64_t part_size;       /* largest part wanted (the store may raise it to fit its limits) */
    const char *filename;     /* x-filename / extra.filename, or NULL */
    const char *content_type; /* type to store, or NULL (then from filename, if known) */
};

/* One part: bytes [pos, pos + size) of the object, sent as the request's body. */
struct lfs_multipart_part {
    uint64_t pos;
    uint64_t size;
    struct lfs_storage_request request;
    const char *want_digest; /* digest the store checks, e.g. "contentMD5" (RFC 3230), or NULL */
};

/* A multipart upload as the client performs it: init (if any), the parts still missing, in
 * order, then commit; abort discards what was uploaded. Everything lives in the request pool. */
struct lfs_multipart_plan {
    struct lfs_storage_request init;
    struct lfs_multipart_part *parts;
    size_t nparts; /* parts still to send (0 when every part is already in the store) */
    size_t total;  /* parts of the whole object */
    struct lfs_storage_request commit;
    struct lfs_storage_request abort;
};

/* The answer of sign: out != NULL on success (valid until the pool goes); otherwise err. */
typedef void (*lfs_storage_sign_cb)(void *arg, const struct lfs_storage_request *out,
                                    const struct lfs_error *err);

/* plan != NULL on success (valid until the pool goes); otherwise err (502/503/504 naming the
 * store when it could not be asked). */
typedef void (*lfs_storage_multipart_cb)(void *arg, const struct lfs_multipart_plan *plan,
                                         const struct lfs_error *err);

/* What a listing of one repository's objects found (see the list operation). */
struct lfs_storage_listing {
    size_t n;
    const char *const *oids; /* strcmp order; only names that are valid oids */
    const int64_t *sizes;
    /* true: the repository holds nothing else. false: the store had more, and the listing
     * covers exactly the oids that sort (strcmp) at or before `last`. */
    bool complete;
    const char *last;
};

/* listing != NULL on success (valid until the pool goes); otherwise err. */
typedef void (*lfs_storage_list_cb)(void *arg, const struct lfs_storage_listing *listing,
                                    const struct lfs_error *err);

/* ---- locks (the File Locking API, server/locks.c) ----
 * A lock is one small object per locked path, kept in the store itself so that every replica
 * sharing the store agrees on it: <org_path>/<repo>/locks/<name>.lock, where name is
 * LFS_LOCK_NAME_LEN lowercase hex digits (server/ derives it from the locked path). An oid is
 * 64 hex digits and sits directly under the repository, so no object name can ever be a lock
 * name, and no lock appears in an object listing. Each backend uses its own conditional
 * primitives: create only if absent, delete only if unchanged since it was read. */
#define LFS_LOCK_NAME_LEN 40
#define LFS_LOCK_CONTENT_MAX 4096 /* bytes of one lock's content */

struct lfs_lock_key {
    const char *org_path; /* as struct lfs_object_key */
    const char *repo;
    const char *name; /* LFS_LOCK_NAME_LEN lowercase hex; list: start after it, or NULL */
};

/* One stored lock. Everything lives in the request pool. */
struct lfs_lock_record {
    const char *name;
    h2o_iovec_t content;
    /* Opaque to server/: what lock_delete needs to delete exactly this version and no later
     * lock at the same name (Azure: the ETag; GCS: the generation; local: the content). */
    const char *version;
};

/* A page of a repository's locks, in name order. */
struct lfs_lock_page {
    size_t n;
    const struct lfs_lock_record *records;
    const char *next; /* NULL: nothing after these; otherwise the name to list after */
};

/* lock_create: result 1 created, 0 a lock already has that name. lock_delete: 1 deleted, 0
 * absent or changed since its version was read. Otherwise err (result -1). */
typedef void (*lfs_storage_lock_done_cb)(void *arg, int result, const struct lfs_error *err);
/* record NULL and err NULL: no such lock. record valid until the pool goes. */
typedef void (*lfs_storage_lock_read_cb)(void *arg, const struct lfs_lock_record *record,
                                         const struct lfs_error *err);
/* page valid until the pool goes; NULL with err on failure. */
typedef void (*lfs_storage_lock_list_cb)(void *arg, const struct lfs_lock_page *page,
                                         const struct lfs_error *err);

/* ---- uploads received a piece at a time (put_open) ----
 * A writer takes an object's bytes in order as they arrive from the client, so a large upload
 * is written while it is received instead of after. It is owned by the request pool: disposed
 * before commit finished, it removes whatever it wrote and nothing becomes visible. */
struct lfs_storage_writer;

struct lfs_storage_writer_ops {
    /* Appends n bytes. Returns 0, or -1 with err (507 out of space, 500 otherwise); after a
     * failure only the pool's disposal is left to do. Loop thread. */
    int (*write)(struct lfs_storage_writer *writer, const char *p, size_t n, struct lfs_error *err);
    /* Everything was written: makes the object visible once its SHA-256 equals the oid and it
     * is durable, as put does (422 on a mismatch, nothing stored). cb once, on this loop
     * thread (never if the pool is disposed first). */
    void (*commit)(struct lfs_storage_writer *writer, lfs_storage_done_cb cb, void *arg);
};

struct lfs_storage_writer {
    const struct lfs_storage_writer_ops *ops;
};

enum lfs_storage_caps {
    LFS_STORAGE_STREAMING = 1u << 0,   /* put/open: objects through this server */
    LFS_STORAGE_SIGNED_URLS = 1u << 1, /* clients talk to the store directly */
    LFS_STORAGE_MULTIPART = 1u << 2,
};

struct lfs_storage;

/* One stored object found by a scan; strings in the page's pool. */
struct lfs_storage_scan_entry {
    const char *org_path;
    const char *repo;
    const char *oid;
    int64_t size; /* what the store says */
};

struct lfs_storage_scan_page {
    size_t n;
    const struct lfs_storage_scan_entry *entries;
    bool done; /* no more pages */
};

/* A scan's cursor (what is left to enumerate); backend-defined. */
struct lfs_storage_scan;

/* page != NULL on success (valid until the pool goes); otherwise err. */
typedef void (*lfs_storage_scan_cb)(void *arg, const struct lfs_storage_scan_page *page,
                                    const struct lfs_error *err);

/* Begins with the members of struct lfs_plugin_names (common/plugin.h): name, aliases. */
struct lfs_storage_ops {
    const char *name;           /* "local", "azure", "gcs", "s3" */
    const char *const *classes; /* NULL-terminated giftless storage_class strings */
    unsigned caps;              /* enum lfs_storage_caps */
    /* Builds the backend from storage_options; `path` names them in messages. Checks what it
     * can at startup (directory writable, keys parse). Main thread. */
    int (*create)(const json_t *options, const char *path, struct lfs_storage **out,
                  struct lfs_error *err);
    void (*destroy)(struct lfs_storage *storage);
    /* Size of a stored object, or missing. Any worker thread. */
    void (*stat)(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                 lfs_storage_stat_cb cb, void *arg);
    /* Stores `body` as the object, making it visible only once its SHA-256 equals key->oid and
     * it is durable; on mismatch fails with 422 and stores nothing. Concurrent puts of the
     * same object each succeed and leave one intact copy. body must stay valid until cb. */
    void (*put)(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                h2o_iovec_t body, lfs_storage_done_cb cb, void *arg);
    /* Starts an upload whose body arrives in pieces (see struct lfs_storage_writer): size is
     * what the client declared (a hint for how to write it). Returns 0 with *out (owned by
     * io->pool), or -1 with err. NULL for backends that take bodies only whole. Loop thread. */
    int (*put_open)(struct lfs_storage *storage, struct lfs_io *io,
                    const struct lfs_object_key *key, int64_t size, struct lfs_storage_writer **out,
                    struct lfs_error *err);
    /* Opens bytes [offset, offset + length) of a stored object (the caller stat'ed it).
     * The stream is owned by io->pool. */
    void (*open)(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                 uint64_t offset, uint64_t length, lfs_storage_open_cb cb, void *arg);
    /* Signs a URL for the client to upload or download the object directly (backends with
     * LFS_STORAGE_SIGNED_URLS; NULL otherwise) and calls cb once with it (its strings in
     * io->pool) or with err. With a key at hand it is CPU only and cb runs before this
     * returns; GCS with workload identity asks IAM signBlob, and cb runs later on this loop
     * thread (never, if io->pool is disposed first). Any worker thread. */
    void (*sign)(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                 const struct lfs_sign_request *request, lfs_storage_sign_cb cb, void *arg);
    /* Plans a multipart upload of the object (backends with LFS_STORAGE_MULTIPART; NULL
     * otherwise): the parts the client still has to send straight to the store (parts the
     * store already holds from an interrupted upload are left out), and the requests that
     * commit or abort the upload. May ask the store (Azure: its uncommitted blocks; S3: create
     * or find the upload id). The plan lives in io->pool. Any worker thread. */
    void (*multipart_plan)(
        struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
        const struct lfs_multipart_request *request, lfs_storage_multipart_cb cb,
        void *arg); /* Lists the objects of key->org_path/key->repo (key->oid unused), at most
                     * `limit` of them, in name order, with their sizes: one request that can answer
                     * for many objects of a batch at once. NULL for backends where a stat is as
                     * cheap (local). Any worker thread. */
    void (*list)(struct lfs_storage *storage, struct lfs_io *io, const struct lfs_object_key *key,
                 size_t limit, lfs_storage_list_cb cb, void *arg);
    /* Lock ops (see struct lfs_lock_key); all four NULL for a backend without them. Any worker
     * thread; the callback runs on it, once (never if io->pool is disposed first). */
    /* Stores `content` (at most LFS_LOCK_CONTENT_MAX bytes, valid until cb) under key->name
     * only if no lock has that name: of concurrent creates, across processes and replicas,
     * exactly one gets result 1. A reader never sees partial content. */
    void (*lock_create)(struct lfs_storage *storage, struct lfs_io *io,
                        const struct lfs_lock_key *key, h2o_iovec_t content,
                        lfs_storage_lock_done_cb cb, void *arg);
    /* Reads the lock named key->name. */
    void (*lock_read)(struct lfs_storage *storage, struct lfs_io *io,
                      const struct lfs_lock_key *key, lfs_storage_lock_read_cb cb, void *arg);
    /* Deletes the lock named key->name only if it is still the one `version` came from. */
    void (*lock_delete)(struct lfs_storage *storage, struct lfs_io *io,
                        const struct lfs_lock_key *key, const char *version,
                        lfs_storage_lock_done_cb cb, void *arg);
    /* Up to `limit` (>= 1) locks of the repository whose names sort after key->name (all
     * when NULL), in name order, with their content; a bounded number of store requests,
     * issued concurrently where the store needs one per lock. */
    void (*lock_list)(struct lfs_storage *storage, struct lfs_io *io,
                      const struct lfs_lock_key *key, size_t limit, lfs_storage_lock_list_cb cb,
                      void *arg);
    /* Completes the multipart upload of the object whose parts the client has sent, for stores
     * whose plan has no commit request the client could send (S3: CompleteMultipartUpload
     * needs the parts' ETags, which only the store knows, so lfsgate lists them). Called by
     * verify when the object is missing: cb(arg, NULL) when the upload was completed or there
     * was none (the caller looks again), cb(arg, err) when its parts do not make an object of
     * `size` bytes (422) or the store failed. NULL for other backends. Any worker thread. */
    void (*multipart_complete)(struct lfs_storage *storage, struct lfs_io *io,
                               const struct lfs_object_key *key, int64_t size,
                               lfs_storage_done_cb cb, void *arg);
    /* ---- scanning what is stored (lfsgate scrub); NULL for a backend that cannot ---- */
    /* Starts an enumeration of every stored object, or of one repository's (org_path and repo
     * both non-NULL; a repository nested below it is not included). The cursor is malloc'd:
     * scan_close frees it. Returns 0, or -1 with err (422 for an invalid name). Any thread. */
    int (*scan_open)(struct lfs_storage *storage, const char *org_path, const char *repo,
                     struct lfs_storage_scan **out, struct lfs_error *err);
    /* The next page of objects (page->n == 0 and page->done: the end), its strings in
     * io->pool; names that are not objects (temporary files, quarantined objects) are left
     * out. One call at a time per cursor. Loop thread. */
    void (*scan_next)(struct lfs_storage_scan *scan, struct lfs_io *io, lfs_storage_scan_cb cb,
                      void *arg);
    void (*scan_close)(struct lfs_storage_scan *scan);
    /* Moves a stored object aside, where no operation of this backend finds it (stat then
     * says missing, so the next batch asks for an upload) but an operator can look at it.
     * Loop thread. */
    void (*quarantine)(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, lfs_storage_done_cb cb,
                       void *arg); /* A remote store whose lock ops are storage/remote.c's
                                    * lfs_storage_remote_lock_*: how it sends lock calls
                                    * (storage/remote.h). NULL otherwise. */
    const struct lfs_storage_lock_store *lock_store;
};

/* Every backend embeds this as its first member. */
struct lfs_storage {
    const struct lfs_storage_ops *ops;
};

/* ---- reading a stored object back (storage/check.c) ---- */

struct lfs_storage_check_result {
    uint64_t bytes;  /* read */
    char sha256[65]; /* of what was read, lowercase hex */
    bool matches;    /* sha256 is the oid and bytes the size asked for */
};

/* result != NULL when the object could be read to its end; otherwise err (404 missing, 502/
 * 503/504 naming the store). */
typedef void (*lfs_storage_check_cb)(void *arg, const struct lfs_storage_check_result *result,
                                     const struct lfs_error *err);

/* Reads bytes [0, size) of a stored object through storage's open op and hashes them, in
 * chunks (one 256 KiB buffer per check). At most the thread's limit of checks read at once;
 * others wait in order. Owned by io->pool (disposing it cancels the check: cb is never
 * called). cb may run before this returns (local storage). Loop thread. */
void lfs_storage_check_content(struct lfs_storage *storage, struct lfs_io *io,
                               const struct lfs_object_key *key, int64_t size,
                               lfs_storage_check_cb cb, void *arg);
/* Sets how many content checks the calling thread runs at once (default 4). */
void lfs_storage_check_limit(unsigned max);

/* Releases what the storage backends keep per thread (timers bound to the thread's loop, the
 * HTTP client's connections, the GCS access token's wake-up receiver). Call on a worker thread
 * before its loop is destroyed or the thread ends; no request of that thread may be in progress. */
void lfs_storage_thread_cleanup(void);

/* Looks up a backend by native name or giftless storage_class; NULL if unknown. */
const struct lfs_storage_ops *lfs_storage_find(const char *name);

/* Whether a backend, when created, may clean up after earlier processes that were killed
 * (local: abandoned temporary files of interrupted uploads). Off until the server turns it on:
 * `--check-config` only reads a configuration and must change nothing in the store. Main
 * thread, before the backends are created. */
void lfs_storage_set_cleanup(bool allowed);
bool lfs_storage_cleanup_allowed(void);
/* Writes the native names, comma separated, into buf. Returns buf. */
const char *lfs_storage_list_names(char *buf, size_t size);

#endif
