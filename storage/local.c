/* Local disk backend (giftless.storage.local_storage:LocalStorage): objects live at
 * <path>/<org_path>/<repo>/<oid>, the giftless layout, so an existing giftless store is
 * served as is. An upload is written to a hidden temporary file in the object's own
 * directory (same filesystem), hashed while it is written, and renamed into place only after
 * its SHA-256 matches the oid and it has been synced: readers never see a partial object.
 * A body taken whole is written on the loop thread in slices, spaced by the thread's slice
 * timer (storage/remote.h), so one large upload does not stall the others; a body the server
 * receives a piece at a time (put_open, see server/guard.c) is written as each piece arrives.
 * A large upload is hashed by a helper thread of its own, reading back what the loop thread
 * has written, so hashing and writing overlap.
 * The writer holds an exclusive flock on its temporary file until the rename, so a process
 * starting later can tell a file abandoned by a killed process (no lock, older than its own
 * start) from one another live process sharing the directory is still writing: the first
 * create of each root sweeps the abandoned ones away (local_sweep_temp_files). */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "storage/remote.h"

/* Bytes written and hashed per write(2), and per turn of the event loop. */
#define LOCAL_WRITE_CHUNK (1u << 20)
#define LOCAL_SLICE (8u << 20)
/* What the helper thread maps and hashes at a time (at most; aligned to it). */
#define LOCAL_HASH_WINDOW (8u << 20)
/* Bodies from this size on are hashed on a helper thread (below, starting a thread costs more
 * than it saves). */
#define LOCAL_HASHER_MIN (8u << 20)

struct lfs_storage_local {
    struct lfs_storage base;
    char root[PATH_MAX];
};

/* Builds "<root>/<org_path>/<repo>" (+ "/<oid>" when with_oid). The parts were validated by
 * server/ (lfs_segments_valid, lfs_oid_valid); checked again here because a path outside
 * the root must be impossible whatever the caller does. */
/* Starts path with "<root>/<org_path>/<repo>"; false when a part is not a valid segment. */
static bool repo_path(const struct lfs_storage_local *st, const char *org_path, const char *repo,
                      struct lfs_strbuf *path)
{
    if (!lfs_segments_valid(org_path, strlen(org_path)) || !lfs_segment_valid(repo, strlen(repo)))
        return false;
    lfs_strbuf_adds(path, st->root);
    lfs_strbuf_add(path, "/", 1);
    lfs_strbuf_adds(path, org_path);
    lfs_strbuf_add(path, "/", 1);
    lfs_strbuf_adds(path, repo);
    return true;
}

static int object_path(const struct lfs_storage_local *st, const struct lfs_object_key *key,
                       bool with_oid, char *buf, size_t size, struct lfs_error *err)
{
    struct lfs_strbuf path = {.buf = buf, .cap = size};
    if (!repo_path(st, key->org_path, key->repo, &path) ||
        !lfs_oid_valid(key->oid, strlen(key->oid)))
        return lfs_error_set(err, 422, "invalid object key");
    if (with_oid) {
        lfs_strbuf_add(&path, "/", 1);
        lfs_strbuf_adds(&path, key->oid);
    }
    if (path.overflow)
        return lfs_error_set(err, 422, "object path too long");
    return 0;
}

/* The status of a failed write to the store: 507 when the filesystem is full (the client may
 * retry once space is freed), 503 for an I/O error of the disk, 500 for anything else (a
 * permission, a path: the configuration). errno as the failing call left it. */
static int write_error(struct lfs_error *err, const char *what, const char *oid)
{
    int e = errno;
    if (e == ENOSPC || e == EDQUOT)
        return lfs_error_set(err, 507,
                             "local storage: cannot %s object %s: %s; the storage directory's "
                             "filesystem is full, free space there and retry",
                             what, oid, strerror(e));
    return lfs_error_set(err, e == EIO ? 503 : 500, "local storage: cannot %s object %s: %s", what,
                         oid, strerror(e));
}

/* mkdir -p of an absolute path, for directories under the root. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r < 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- startup sweep of abandoned temporary files ----
 * nftw(3) has no user argument, and create runs on the main thread only: the walk's state is
 * file-static. */
static struct {
    struct timespec cutoff; /* files modified at or after this are left alone */
    unsigned long removed;
    unsigned long long bytes;
    unsigned long busy; /* locked by a live writer */
} sweep;

/* Roots already swept by this process: a reload (SIGHUP) recreates the backend and must not
 * walk a large store again. Main thread only. */
#define SWEPT_MAX 16
static char swept_roots[SWEPT_MAX][PATH_MAX];
static unsigned swept_count;

/* The name local_put gives its temporary files: "." + oid + "." + mkostemp's six letters or
 * digits. Nothing else in the store is ever removed. */
static bool is_temp_name(const char *name)
{
    if (strlen(name) != 1 + LFS_OID_LEN + 1 + 6 || name[0] != '.' || name[1 + LFS_OID_LEN] != '.' ||
        !lfs_oid_valid(name + 1, LFS_OID_LEN))
        return false;
    for (const char *p = name + 2 + LFS_OID_LEN; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static bool older_than_cutoff(const struct stat *sb)
{
    return sb->st_mtim.tv_sec < sweep.cutoff.tv_sec || (sb->st_mtim.tv_sec == sweep.cutoff.tv_sec &&
                                                        sb->st_mtim.tv_nsec < sweep.cutoff.tv_nsec);
}

static int sweep_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    if (type != FTW_F || !is_temp_name(path + ftw->base) || !older_than_cutoff(sb))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    /* A writer holds LOCK_EX from just after creating the file until it is renamed into
     * place: a lock we can take means its writer is gone. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        sweep.busy++;
        close(fd);
        return 0;
    }
    if (unlink(path) == 0) {
        sweep.removed++;
        sweep.bytes += (unsigned long long)sb->st_blocks * 512u;
    } else if (errno != ENOENT) {
        lfs_log(LFS_LOG_WARN, "local storage: cannot remove abandoned temporary file %s: %s", path,
                strerror(errno));
    }
    close(fd);
    return 0;
}

/* Removes the temporary files of uploads interrupted by a crash or kill -9 of an earlier
 * process (they would pile up otherwise), once per root and process. Main thread. */
static void local_sweep_temp_files(const char *root)
{
    for (unsigned i = 0; i < swept_count; i++)
        if (strcmp(swept_roots[i], root) == 0)
            return;
    if (swept_count < SWEPT_MAX)
        snprintf(swept_roots[swept_count++], PATH_MAX, "%s", root);
    memset(&sweep, 0, sizeof(sweep));
    clock_gettime(CLOCK_REALTIME, &sweep.cutoff);
    if (nftw(root, sweep_entry, 16, FTW_PHYS | FTW_MOUNT) < 0)
        lfs_log(LFS_LOG_WARN, "local storage: cannot walk %s for abandoned temporary files: %s",
                root, strerror(errno));
    if (sweep.removed > 0 || sweep.busy > 0)
        lfs_log(LFS_LOG_INFO,
                "local storage: removed %lu temporary files of interrupted uploads (%llu bytes) "
                "from %s; %lu in use by another process left alone",
                sweep.removed, sweep.bytes, root, sweep.busy);
}

static int local_create(const json_t *options, const char *path, struct lfs_storage **out,
                        struct lfs_error *err)
{
    static const char *const keys[] = {"path", NULL};
    const char *dir;
    if (lfs_config_check_keys(options, path, keys, err) < 0 ||
        lfs_config_get_string(options, path, "path", "lfs-storage", &dir, err) < 0)
        return -1;
    char buf[PATH_MAX];
    if (dir[0] == '\0' || strlen(dir) >= sizeof(buf) - 1)
        return lfs_error_set(err, 500, "config: %s.path: expected a directory path", path);
    if (dir[0] == '/') {
        snprintf(buf, sizeof(buf), "%s", dir);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL ||
            snprintf(buf, sizeof(buf), "%s/%s", cwd, dir) >= (int)sizeof(buf))
            return lfs_error_set(err, 500, "config: %s.path: path too long", path);
    }
    if (make_dirs(buf) < 0 || access(buf, W_OK | X_OK) < 0)
        return lfs_error_set(err, 500,
                             "config: %s.path: cannot use \"%s\" as the storage directory: %s; "
                             "create it or give a writable path",
                             path, buf, strerror(errno));
    struct lfs_storage_local *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return lfs_error_set(err, 500, "out of memory");
    extern const struct lfs_storage_ops lfs_storage_local_ops;
    st->base.ops = &lfs_storage_local_ops;
    if (realpath(buf, st->root) == NULL)
        snprintf(st->root, sizeof(st->root), "%s", buf);
    if (lfs_storage_cleanup_allowed())
        local_sweep_temp_files(st->root);
    *out = &st->base;
    return 0;
}

static void local_destroy(struct lfs_storage *storage)
{
    free(storage);
}

static void local_stat(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, lfs_storage_stat_cb cb, void *arg)
{
    (void)io;
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char path[PATH_MAX];
    struct stat sb;
    if (object_path(st, key, true, path, sizeof(path), &err) < 0) {
        cb(arg, -1, &err);
    } else if (stat(path, &sb) == 0) {
        cb(arg, S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1, NULL);
    } else if (errno == ENOENT || errno == ENOTDIR) {
        cb(arg, -1, NULL);
    } else {
        lfs_error_set(&err, 500, "local storage: cannot read object %s: %s", key->oid,
                      strerror(errno));
        cb(arg, -1, &err);
    }
}

/* A helper thread hashing what the loop thread has written to the temporary file, mapping it
 * (from the page cache, where it was just written) up to the length the loop thread has
 * published: hashing and writing overlap instead of adding up (SHA-256 of 1 GiB is ~1 s of
 * CPU, writing it ~0.5 s of system time), and what is hashed is what the file holds. The loop
 * thread joins the helper before the fd or md can go. */
struct put_hasher {
    pthread_t thread;
    int fd;
    EVP_MD_CTX *md;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t written;   /* under mu: bytes the loop thread has written */
    bool end, stop;   /* under mu: nothing more will be written / give up */
    int error;        /* helper only until done: errno of a failed mapping, or 0 */
    atomic_bool done; /* helper -> loop thread: md has seen everything (or it stopped) */
};

static void *hasher_main(void *arg)
{
    struct put_hasher *h = arg;
    size_t off = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->stop && !h->end && h->written == off)
            pthread_cond_wait(&h->cv, &h->mu);
        size_t avail = h->written;
        bool stop = h->stop, end = h->end;
        pthread_mutex_unlock(&h->mu);
        if (stop || (end && off == avail))
            break;
        /* Mapped rather than read: the pages are in the page cache, where the loop thread's
         * write(2) just put them, and SHA-256 reads them there without a copy (a 1 GiB upload
         * took ~7% less time than with pread(2) into a buffer). Nothing truncates the file
         * while it is mapped: it is this upload's own, under its flock. */
        size_t base = off & ~(size_t)(LOCAL_HASH_WINDOW - 1);
        size_t end_at = avail < base + LOCAL_HASH_WINDOW ? avail : base + LOCAL_HASH_WINDOW;
        void *map =
            mmap(NULL, end_at - base, PROT_READ, MAP_SHARED | MAP_POPULATE, h->fd, (off_t)base);
        if (map == MAP_FAILED) {
            h->error = errno;
            break;
        }
        EVP_DigestUpdate(h->md, (const char *)map + (off - base), end_at - off);
        munmap(map, end_at - base);
        off = end_at;
    }
    atomic_store(&h->done, true);
    return NULL;
}

/* Starts hashing fd's content into md on a helper thread. Returns the hasher, or NULL when
 * no thread could be started (the caller then hashes as it writes). Loop thread. */
static struct put_hasher *hasher_start(int fd, EVP_MD_CTX *md)
{
    struct put_hasher *h = malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->fd = fd;
    h->md = md;
    h->written = 0;
    h->end = h->stop = false;
    h->error = 0;
    atomic_init(&h->done, false);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, hasher_main, h) != 0) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return NULL;
    }
    return h;
}

/* Publishes how much is written, and whether that is all (end) or the helper is to give up
 * (stop). Loop thread. */
static void hasher_tell(struct put_hasher *h, size_t written, bool end, bool stop)
{
    pthread_mutex_lock(&h->mu);
    h->written = written;
    h->end |= end;
    h->stop |= stop;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Joins the helper (told to stop first when stop) and frees it. Returns 0, or the errno of a
 * failed mapping of the file. Loop thread. */
static int hasher_join(struct put_hasher *h, bool stop)
{
    if (stop)
        hasher_tell(h, h->written, false, true);
    pthread_join(h->thread, NULL);
    int error = h->error;
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
    return error;
}

/* One upload in progress, taken whole (put: the body in memory) or in pieces (put_open: the
 * writer). Owned by the request pool: dispose() removes the temporary file if the request
 * goes away before the upload finished. */
struct local_put {
    struct lfs_storage_writer writer;
    h2o_timeout_entry_t slice;
    h2o_context_t *ctx;
    EVP_MD_CTX *md;
    struct put_hasher *hasher; /* NULL: the loop thread hashes as it writes */
    int fd;
    bool tmp_exists;
    h2o_iovec_t body; /* put: the whole body */
    size_t written;
    char oid[LFS_OID_LEN + 1];
    char tmp_path[PATH_MAX];
    char final_path[PATH_MAX];
    lfs_storage_done_cb cb;
    void *arg;
};

static void put_release(struct local_put *put)
{
    if (h2o_timeout_is_linked(&put->slice))
        h2o_timeout_unlink(&put->slice);
    if (put->hasher != NULL) /* before the fd and md go */
        hasher_join(put->hasher, true);
    put->hasher = NULL;
    if (put->fd >= 0)
        close(put->fd);
    put->fd = -1;
    if (put->tmp_exists)
        unlink(put->tmp_path);
    put->tmp_exists = false;
    if (put->md != NULL)
        EVP_MD_CTX_free(put->md);
    put->md = NULL;
}

static void put_dispose(void *p)
{
    put_release(p);
}

static void put_finish(struct local_put *put, const struct lfs_error *err)
{
    lfs_storage_done_cb cb = put->cb;
    void *arg = put->arg;
    put_release(put);
    cb(arg, err);
}

/* Checks the hash, makes the file durable and renames it into place. */
static void put_rename(struct local_put *put)
{
    struct lfs_error err = {0};
    if (lfs_storage_check_sha256(put->md, put->oid, &err) < 0) {
        put_finish(put, &err);
        return;
    }
    if (fchmod(put->fd, 0644) < 0 || fdatasync(put->fd) < 0) {
        write_error(&err, "write", put->oid);
        put_finish(put, &err);
        return;
    }
    /* The fd, and with it the lock that keeps another process's startup sweep away, stays
     * open until the file has its final name. */
    if (rename(put->tmp_path, put->final_path) < 0) {
        write_error(&err, "store", put->oid);
        put_finish(put, &err);
        return;
    }
    put->tmp_exists = false;
    close(put->fd);
    put->fd = -1;
    /* Make the rename itself durable. */
    char *slash = strrchr(put->final_path, '/');
    *slash = '\0';
    int dfd = open(put->final_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    put_finish(put, NULL);
}

/* All is written: waits (a slice timer at a time) for the helper to finish hashing. */
static void put_wait_hash(h2o_timeout_entry_t *entry)
{
    struct local_put *put = H2O_STRUCT_FROM_MEMBER(struct local_put, slice, entry);
    if (put->hasher != NULL) {
        if (!atomic_load(&put->hasher->done)) {
            h2o_timeout_link(put->ctx->loop, lfs_storage_slice_timeout(put->ctx->loop),
                             &put->slice);
            return;
        }
        int error = hasher_join(put->hasher, false);
        put->hasher = NULL;
        if (error != 0) {
            struct lfs_error err;
            errno = error;
            write_error(&err, "read back", put->oid);
            put_finish(put, &err);
            return;
        }
    }
    put_rename(put);
}

/* Writes n bytes at the end of the temporary file and hashes them (or has the helper do it).
 * Returns 0, or -1 with err. */
static int put_write(struct local_put *put, const char *p, size_t n, struct lfs_error *err)
{
    while (n > 0) {
        ssize_t w = write(put->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC; /* write(2) returns 0 for a non-empty buffer only when full */
            return write_error(err, "write", put->oid);
        }
        if (put->hasher == NULL)
            EVP_DigestUpdate(put->md, p, (size_t)w);
        /* Start write-back now so the final fdatasync has little left to wait for. */
        sync_file_range(put->fd, (off_t)put->written, w, SYNC_FILE_RANGE_WRITE);
        put->written += (size_t)w;
        p += w;
        n -= (size_t)w;
    }
    if (put->hasher != NULL)
        hasher_tell(put->hasher, put->written, false, false);
    return 0;
}

/* The writer's commit, and the end of a whole-body put. */
static void put_commit(struct local_put *put, lfs_storage_done_cb cb, void *arg)
{
    put->cb = cb;
    put->arg = arg;
    if (put->hasher != NULL)
        hasher_tell(put->hasher, put->written, true, false);
    put->slice.cb = put_wait_hash;
    put_wait_hash(&put->slice);
}

/* Creates the temporary file of an upload of about `size` bytes, owned by io->pool. Returns
 * the upload, or NULL with err. */
static struct local_put *put_create(struct lfs_storage *storage, struct lfs_io *io,
                                    const struct lfs_object_key *key, int64_t size,
                                    struct lfs_error *err)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct local_put *put = h2o_mem_alloc_shared(io->pool, sizeof(*put), put_dispose);
    memset(put, 0, sizeof(*put));
    put->fd = -1;
    put->ctx = io->ctx;
    char dir[PATH_MAX];
    if (object_path(st, key, false, dir, sizeof(dir), err) < 0 ||
        object_path(st, key, true, put->final_path, sizeof(put->final_path), err) < 0)
        return NULL;
    snprintf(put->oid, sizeof(put->oid), "%s", key->oid);
    if (snprintf(put->tmp_path, sizeof(put->tmp_path), "%s/.%s.XXXXXX", dir, key->oid) >=
        (int)sizeof(put->tmp_path)) {
        lfs_error_set(err, 422, "object path too long");
        return NULL;
    }
    if (make_dirs(dir) < 0 || (put->fd = mkostemp(put->tmp_path, O_CLOEXEC)) < 0) {
        write_error(err, "create", key->oid);
        return NULL;
    }
    put->tmp_exists = true;
    /* Tells a sweep in another process that this file is alive (see local_sweep_temp_files);
     * the file is new and private, so the lock is free. */
    flock(put->fd, LOCK_EX | LOCK_NB);
    if ((put->md = lfs_storage_sha256_new(err)) == NULL)
        return NULL;
    if (size >= (int64_t)LOCAL_HASHER_MIN)
        put->hasher = hasher_start(put->fd, put->md);
    return put;
}

/* Writes up to LOCAL_SLICE bytes of a whole body, then yields to the loop. */
static void put_slice(h2o_timeout_entry_t *entry)
{
    struct local_put *put = H2O_STRUCT_FROM_MEMBER(struct local_put, slice, entry);
    size_t end = put->written + LOCAL_SLICE;
    if (end > put->body.len)
        end = put->body.len;
    while (put->written < end) { /* put_write writes all it is given, or fails */
        size_t n = end - put->written;
        if (n > LOCAL_WRITE_CHUNK)
            n = LOCAL_WRITE_CHUNK;
        struct lfs_error err;
        if (put_write(put, put->body.base + put->written, n, &err) < 0) {
            put_finish(put, &err);
            return;
        }
    }
    if (put->written < put->body.len) {
        h2o_timeout_link(put->ctx->loop, lfs_storage_slice_timeout(put->ctx->loop), &put->slice);
        return;
    }
    put_commit(put, put->cb, put->arg);
}

static void local_put(struct lfs_storage *storage, struct lfs_io *io,
                      const struct lfs_object_key *key, h2o_iovec_t body, lfs_storage_done_cb cb,
                      void *arg)
{
    struct lfs_error err = {0};
    struct local_put *put = put_create(storage, io, key, (int64_t)body.len, &err);
    if (put == NULL) {
        cb(arg, &err);
        return;
    }
    put->body = body;
    put->cb = cb;
    put->arg = arg;
    put->slice.cb = put_slice;
    put_slice(&put->slice);
}

static int writer_write(struct lfs_storage_writer *writer, const char *p, size_t n,
                        struct lfs_error *err)
{
    return put_write((struct local_put *)writer, p, n, err);
}

static void writer_commit(struct lfs_storage_writer *writer, lfs_storage_done_cb cb, void *arg)
{
    put_commit((struct local_put *)writer, cb, arg);
}

static const struct lfs_storage_writer_ops local_writer_ops = {.write = writer_write,
                                                               .commit = writer_commit};

static int local_put_open(struct lfs_storage *storage, struct lfs_io *io,
                          const struct lfs_object_key *key, int64_t size,
                          struct lfs_storage_writer **out, struct lfs_error *err)
{
    struct local_put *put = put_create(storage, io, key, size, err);
    if (put == NULL)
        return -1;
    put->writer.ops = &local_writer_ops;
    *out = &put->writer;
    return 0;
}

/* A download in progress: an open fd and what is left of the range. */
struct local_stream {
    struct lfs_storage_stream base;
    int fd;
    uint64_t offset;
    uint64_t remaining;
};

static void stream_dispose(void *p)
{
    struct local_stream *s = p;
    if (s->fd >= 0)
        close(s->fd);
}

static void stream_read(struct lfs_storage_stream *stream, char *buf, size_t cap,
                        lfs_storage_read_cb cb, void *arg)
{
    struct local_stream *s = (struct local_stream *)stream;
    if (cap > s->remaining)
        cap = (size_t)s->remaining;
    if (cap == 0) {
        cb(arg, 0, NULL);
        return;
    }
    ssize_t n;
    do
        n = pread(s->fd, buf, cap, (off_t)s->offset);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        struct lfs_error err;
        lfs_error_set(&err, 500, "local storage: cannot read object: %s",
                      n == 0 ? "object is shorter than its size" : strerror(errno));
        cb(arg, -1, &err);
        return;
    }
    s->offset += (uint64_t)n;
    s->remaining -= (uint64_t)n;
    cb(arg, n, NULL);
}

static const struct lfs_storage_stream_ops local_stream_ops = {.read = stream_read};

static void local_open(struct lfs_storage *storage, struct lfs_io *io,
                       const struct lfs_object_key *key, uint64_t offset, uint64_t length,
                       lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char path[PATH_MAX];
    if (object_path(st, key, true, path, sizeof(path), &err) < 0) {
        cb(arg, NULL, &err);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lfs_error_set(&err, errno == ENOENT ? 404 : 500, "local storage: cannot open object %s: %s",
                      key->oid, strerror(errno));
        cb(arg, NULL, &err);
        return;
    }
    posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_SEQUENTIAL);
    struct local_stream *s = h2o_mem_alloc_shared(io->pool, sizeof(*s), stream_dispose);
    *s = (struct local_stream){
        .base.ops = &local_stream_ops, .fd = fd, .offset = offset, .remaining = length};
    cb(arg, &s->base, NULL);
}

/* ---- locks ----
 * <root>/<org_path>/<repo>/locks/<name>.lock, one file per lock. Create: the content is
 * written and synced in a hidden temporary file, then link()ed to the final name, which fails
 * with EEXIST when the name is taken: atomic across processes sharing the directory (a volume
 * mounted by several pods), and a reader never sees a partial lock. Delete-if-unchanged: under
 * an exclusive flock() of the locks directory the file is read, compared with the version
 * (its content, which holds a lock id that is never reused) and unlinked; creators need no
 * flock because link() never replaces a file, so nothing can change between the compare and
 * the unlink except another deleter, which the flock excludes. */

/* Builds "<root>/<org_path>/<repo>/locks" and, with a name, "/<name>.lock" after it. */
static int lock_path(const struct lfs_storage_local *st, const struct lfs_lock_key *key,
                     const char *name, char *buf, size_t size, struct lfs_error *err)
{
    struct lfs_strbuf path = {.buf = buf, .cap = size};
    if (!repo_path(st, key->org_path, key->repo, &path) ||
        (name != NULL && !lfs_storage_lock_name_valid(name)))
        return lfs_error_set(err, 422, "invalid lock key");
    lfs_strbuf_add(&path, "/locks", 6);
    if (name != NULL) {
        lfs_strbuf_add(&path, "/", 1);
        lfs_strbuf_adds(&path, name);
        lfs_strbuf_add(&path, ".lock", 5);
    }
    if (path.overflow)
        return lfs_error_set(err, 422, "lock path too long");
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* Returns 1 created, 0 taken, -1 with err. */
static int lock_create_file(const char *dir, const char *final, const char *name,
                            h2o_iovec_t content, struct lfs_error *err)
{
    char tmp[PATH_MAX], dcopy[PATH_MAX];
    snprintf(dcopy, sizeof(dcopy), "%s", dir); /* make_dirs writes into its argument */
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.lock.XXXXXX", dir, name) >= (int)sizeof(tmp))
        return lfs_error_set(err, 422, "lock path too long");
    int fd = -1;
    if (make_dirs(dcopy) < 0 || (fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return lfs_error_set(err, errno == ENOSPC ? 507 : 500,
                             "local storage: cannot create a lock in %s: %s", dir, strerror(errno));
    int rc = -1;
    if (write_all(fd, content.base, content.len) < 0 || fchmod(fd, 0644) < 0 || fdatasync(fd) < 0) {
        lfs_error_set(err, errno == ENOSPC ? 507 : 500, "local storage: cannot write a lock: %s",
                      strerror(errno));
    } else if (link(tmp, final) == 0) {
        rc = 1;
    } else if (errno == EEXIST) {
        rc = 0;
    } else {
        lfs_error_set(err, 500, "local storage: cannot store a lock: %s", strerror(errno));
    }
    close(fd);
    unlink(tmp);
    if (rc == 1)
        sync_dir(dir);
    return rc;
}

static void local_lock_create(struct lfs_storage *storage, struct lfs_io *io,
                              const struct lfs_lock_key *key, h2o_iovec_t content,
                              lfs_storage_lock_done_cb cb, void *arg)
{
    (void)io;
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char dir[PATH_MAX], final[PATH_MAX];
    int rc = -1;
    if (content.len > LFS_LOCK_CONTENT_MAX)
        lfs_error_set(&err, 422, "lock content too large");
    else if (lock_path(st, key, NULL, dir, sizeof(dir), &err) == 0 &&
             lock_path(st, key, key->name, final, sizeof(final), &err) == 0)
        rc = lock_create_file(dir, final, key->name, content, &err);
    cb(arg, rc, rc < 0 ? &err : NULL);
}

/* Reads a lock file into the pool. Returns 1 read, 0 absent, -1 with err. */
static int lock_read_file(const char *path, h2o_mem_pool_t *pool, h2o_iovec_t *out,
                          struct lfs_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return lfs_error_set(err, 500, "local storage: cannot read a lock: %s", strerror(errno));
    }
    char *buf = h2o_mem_alloc_pool(pool, LFS_LOCK_CONTENT_MAX + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, LFS_LOCK_CONTENT_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return lfs_error_set(err, 500, "local storage: cannot read a lock: %s",
                                 strerror(errno));
        }
        if (n == 0 || (len += (size_t)n) > LFS_LOCK_CONTENT_MAX)
            break;
    }
    close(fd);
    if (len > LFS_LOCK_CONTENT_MAX)
        return lfs_error_set(err, 500, "local storage: lock file %s is larger than a lock", path);
    buf[len] = '\0';
    *out = h2o_iovec_init(buf, len);
    return 1;
}

/* Fills a record; the version is the content itself. */
static void lock_record(struct lfs_lock_record *rec, const char *name, h2o_iovec_t content,
                        h2o_mem_pool_t *pool)
{
    char *n = h2o_mem_alloc_pool(pool, LFS_LOCK_NAME_LEN + 1);
    memcpy(n, name, LFS_LOCK_NAME_LEN + 1);
    *rec = (struct lfs_lock_record){.name = n, .content = content, .version = content.base};
}

static void local_lock_read(struct lfs_storage *storage, struct lfs_io *io,
                            const struct lfs_lock_key *key, lfs_storage_lock_read_cb cb, void *arg)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char path[PATH_MAX];
    h2o_iovec_t content;
    int rc = lock_path(st, key, key->name, path, sizeof(path), &err);
    if (rc == 0)
        rc = lock_read_file(path, io->pool, &content, &err);
    if (rc <= 0) {
        cb(arg, NULL, rc < 0 ? &err : NULL);
        return;
    }
    struct lfs_lock_record *rec = h2o_mem_alloc_pool(io->pool, sizeof(*rec));
    lock_record(rec, key->name, content, io->pool);
    cb(arg, rec, NULL);
}

static void local_lock_delete(struct lfs_storage *storage, struct lfs_io *io,
                              const struct lfs_lock_key *key, const char *version,
                              lfs_storage_lock_done_cb cb, void *arg)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char dir[PATH_MAX], path[PATH_MAX];
    if (lock_path(st, key, NULL, dir, sizeof(dir), &err) < 0 ||
        lock_path(st, key, key->name, path, sizeof(path), &err) < 0) {
        cb(arg, -1, &err);
        return;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT) {
            cb(arg, 0, NULL);
            return;
        }
        lfs_error_set(&err, 500, "local storage: cannot open the locks of %s/%s: %s", key->org_path,
                      key->repo, strerror(errno));
        cb(arg, -1, &err);
        return;
    }
    int rc;
    while ((rc = flock(dfd, LOCK_EX)) < 0 && errno == EINTR)
        ;
    h2o_iovec_t content = {0};
    if (rc < 0) {
        rc = lfs_error_set(&err, 500, "local storage: cannot lock %s: %s", dir, strerror(errno));
    } else if ((rc = lock_read_file(path, io->pool, &content, &err)) == 1) {
        if (strlen(version) != content.len || memcmp(version, content.base, content.len) != 0)
            rc = 0; /* replaced by a newer lock since it was read: leave that one alone */
        else if (unlink(path) < 0)
            rc = lfs_error_set(&err, 500, "local storage: cannot delete a lock: %s",
                               strerror(errno));
        else
            fsync(dfd);
    }
    close(dfd); /* releases the flock */
    cb(arg, rc, rc < 0 ? &err : NULL);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void local_lock_list(struct lfs_storage *storage, struct lfs_io *io,
                            const struct lfs_lock_key *key, size_t limit,
                            lfs_storage_lock_list_cb cb, void *arg)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_error err = {0};
    char dir[PATH_MAX], path[PATH_MAX];
    struct lfs_lock_page *page = h2o_mem_alloc_pool(io->pool, sizeof(*page));
    *page = (struct lfs_lock_page){0};
    if (lock_path(st, key, NULL, dir, sizeof(dir), &err) < 0 ||
        (key->name != NULL && !lfs_storage_lock_name_valid(key->name))) {
        lfs_error_set(&err, 422, "invalid lock key");
        cb(arg, NULL, &err);
        return;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            cb(arg, page, NULL);
            return;
        }
        lfs_error_set(&err, 500, "local storage: cannot list the locks of %s/%s: %s", key->org_path,
                      key->repo, strerror(errno));
        cb(arg, NULL, &err);
        return;
    }
    /* Names after the cursor, sorted; the directory holds one file per lock. */
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len != LFS_LOCK_NAME_LEN + 5 || strcmp(e->d_name + LFS_LOCK_NAME_LEN, ".lock") != 0)
            continue;
        char name[LFS_LOCK_NAME_LEN + 1];
        memcpy(name, e->d_name, LFS_LOCK_NAME_LEN);
        name[LFS_LOCK_NAME_LEN] = '\0';
        if (!lfs_storage_lock_name_valid(name) ||
            (key->name != NULL && strcmp(name, key->name) <= 0))
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char **grown = h2o_mem_alloc_pool(io->pool, ncap * sizeof(*grown));
            if (n > 0)
                memcpy(grown, names, n * sizeof(*grown));
            names = grown, cap = ncap;
        }
        names[n] = h2o_mem_alloc_pool(io->pool, LFS_LOCK_NAME_LEN + 1);
        memcpy(names[n++], name, LFS_LOCK_NAME_LEN + 1);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), compare_names);
    struct lfs_lock_record *recs =
        h2o_mem_alloc_pool(io->pool, (n < limit ? n : limit) * sizeof(*recs) + 1);
    size_t i = 0;
    for (; i < n && page->n < limit; i++) {
        h2o_iovec_t content;
        struct lfs_lock_key k = *key;
        k.name = names[i];
        int rc = lock_path(st, &k, k.name, path, sizeof(path), &err);
        if (rc == 0)
            rc = lock_read_file(path, io->pool, &content, &err);
        if (rc < 0) {
            cb(arg, NULL, &err);
            return;
        }
        if (rc == 1) /* else removed since the directory was read */
            lock_record(&recs[page->n++], names[i], content, io->pool);
    }
    page->records = recs;
    if (i < n && page->n > 0)
        page->next = recs[page->n - 1].name;
    cb(arg, page, NULL);
}

/* ---- scan and quarantine (lfsgate scrub) ---- */

/* Where quarantined objects go, under the root: <root>/QUARANTINE_DIR/<org_path>/<repo>/<oid>.
 * A scan of the whole store does not enter it. */
#define QUARANTINE_DIR ".lfsgate-quarantine"
#define SCAN_PAGE 256
#define SCAN_DEPTH 64

/* A depth-first walk with one open directory per level: memory stays bounded by the depth,
 * whatever the number of objects. `rel` is the path of the innermost open directory relative
 * to the root ("" for the root itself); lens[i] is its length when level i was entered. */
struct local_scan {
    const struct lfs_storage_local *st;
    DIR *dirs[SCAN_DEPTH];
    size_t lens[SCAN_DEPTH];
    int depth;
    bool one_repo; /* only the files of the starting directory */
    char rel[PATH_MAX];
};

static int scan_push(struct local_scan *sc, const char *name, struct lfs_error *err)
{
    size_t len = strlen(sc->rel);
    if (sc->depth == SCAN_DEPTH ||
        len + strlen(name) + 2 > sizeof(sc->rel) - LFS_OID_LEN - 2) /* too deep: skipped */
        return 0;
    if (name[0] != '\0')
        snprintf(sc->rel + len, sizeof(sc->rel) - len, "%s%s", len > 0 ? "/" : "", name);
    char path[2 * PATH_MAX + 2];
    snprintf(path, sizeof(path), "%s%s%s", sc->st->root, sc->rel[0] ? "/" : "", sc->rel);
    DIR *d = opendir(path);
    if (d == NULL) {
        int e = errno;
        sc->rel[len] = '\0';
        if (e == ENOENT && sc->depth == 0)
            return 0; /* nothing stored there yet */
        return lfs_error_set(err, 500, "local storage: cannot read directory %s: %s", path,
                             strerror(e));
    }
    sc->lens[sc->depth] = len;
    sc->dirs[sc->depth++] = d;
    return 0;
}

static void scan_pop(struct local_scan *sc)
{
    closedir(sc->dirs[--sc->depth]);
    sc->rel[sc->lens[sc->depth]] = '\0';
}

static int local_scan_open(struct lfs_storage *storage, const char *org_path, const char *repo,
                           struct lfs_storage_scan **out, struct lfs_error *err)
{
    struct local_scan *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return lfs_error_set(err, 500, "out of memory");
    sc->st = (const struct lfs_storage_local *)storage;
    if (org_path != NULL) {
        if (!lfs_segments_valid(org_path, strlen(org_path)) ||
            !lfs_segment_valid(repo, strlen(repo)) ||
            strlen(org_path) + strlen(repo) + 2 > sizeof(sc->rel) / 2) {
            free(sc);
            return lfs_error_set(err, 422, "invalid repository name \"%s/%s\"", org_path, repo);
        }
        snprintf(sc->rel, sizeof(sc->rel), "%s/%s", org_path, repo);
        sc->one_repo = true;
    }
    if (scan_push(sc, "", err) < 0) {
        free(sc);
        return -1;
    }
    *out = (struct lfs_storage_scan *)sc;
    return 0;
}

/* An object at <rel>/<name>: <rel> is "<org_path>/<repo>". Adds it to the page when the
 * names are valid. */
static void scan_add(struct local_scan *sc, int dfd, const char *name, h2o_mem_pool_t *pool,
                     struct lfs_storage_scan_entry *e, size_t *n)
{
    const char *slash = strrchr(sc->rel, '/');
    struct stat sb;
    if (slash == NULL || !lfs_oid_valid(name, strlen(name)) ||
        fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
        return;
    size_t olen = (size_t)(slash - sc->rel);
    if (!lfs_segments_valid(sc->rel, olen) || !lfs_segment_valid(slash + 1, strlen(slash + 1)))
        return;
    char *org = h2o_mem_alloc_pool(pool, strlen(sc->rel) + LFS_OID_LEN + 2);
    memcpy(org, sc->rel, olen);
    org[olen] = '\0';
    char *repo = org + olen + 1;
    strcpy(repo, slash + 1);
    char *oid = repo + strlen(repo) + 1;
    memcpy(oid, name, LFS_OID_LEN + 1);
    e[*n] = (struct lfs_storage_scan_entry){
        .org_path = org, .repo = repo, .oid = oid, .size = (int64_t)sb.st_size};
    (*n)++;
}

static void local_scan_next(struct lfs_storage_scan *scan, struct lfs_io *io,
                            lfs_storage_scan_cb cb, void *arg)
{
    struct local_scan *sc = (struct local_scan *)scan;
    struct lfs_storage_scan_entry *entries =
        h2o_mem_alloc_pool(io->pool, SCAN_PAGE * sizeof(*entries));
    struct lfs_storage_scan_page *page = h2o_mem_alloc_pool(io->pool, sizeof(*page));
    *page = (struct lfs_storage_scan_page){.entries = entries};
    struct lfs_error err = {0};
    while (page->n < SCAN_PAGE && sc->depth > 0) {
        DIR *d = sc->dirs[sc->depth - 1];
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            scan_pop(sc);
            continue;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            (sc->depth == 1 && !sc->one_repo && strcmp(name, QUARANTINE_DIR) == 0))
            continue;
        bool dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat sb;
            dir = fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
        }
        if (dir && !sc->one_repo && scan_push(sc, name, &err) < 0) {
            cb(arg, NULL, &err);
            return;
        }
        if (!dir)
            scan_add(sc, dirfd(d), name, io->pool, entries, &page->n);
    }
    page->done = sc->depth == 0;
    cb(arg, page, NULL);
}

static void local_scan_close(struct lfs_storage_scan *scan)
{
    struct local_scan *sc = (struct local_scan *)scan;
    while (sc->depth > 0)
        scan_pop(sc);
    free(sc);
}

static void local_quarantine(struct lfs_storage *storage, struct lfs_io *io,
                             const struct lfs_object_key *key, lfs_storage_done_cb cb, void *arg)
{
    (void)io;
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct lfs_storage_local aside = {.base = st->base};
    struct lfs_error err = {0};
    char from[PATH_MAX], to[PATH_MAX], dir[PATH_MAX];
    if (snprintf(aside.root, sizeof(aside.root), "%s/" QUARANTINE_DIR, st->root) >=
            (int)sizeof(aside.root) ||
        object_path(st, key, true, from, sizeof(from), &err) < 0 ||
        object_path(&aside, key, true, to, sizeof(to), &err) < 0 ||
        object_path(&aside, key, false, dir, sizeof(dir), &err) < 0) {
        lfs_error_set(&err, 422, "object path too long");
        cb(arg, &err);
        return;
    }
    if (make_dirs(dir) < 0 || rename(from, to) < 0) {
        lfs_error_set(&err, 500, "local storage: cannot move object %s to %s: %s", key->oid, to,
                      strerror(errno));
        cb(arg, &err);
        return;
    }
    cb(arg, NULL);
}

const struct lfs_storage_ops lfs_storage_local_ops = {
    .name = "local",
    .classes = (const char *const[]){"giftless.storage.local_storage:LocalStorage", NULL},
    .caps = LFS_STORAGE_STREAMING,
    .create = local_create,
    .destroy = local_destroy,
    .stat = local_stat,
    .put = local_put,
    .put_open = local_put_open,
    .open = local_open,
    .lock_create = local_lock_create,
    .lock_read = local_lock_read,
    .lock_delete = local_lock_delete,
    .lock_list = local_lock_list,
    .scan_open = local_scan_open,
    .scan_next = local_scan_next,
    .scan_close = local_scan_close,
    .quarantine = local_quarantine,
};
