/* Local disk backend (giftless.storage.local_storage:LocalStorage): objects live at
 * <path>/<org_path>/<repo>/<oid>, the giftless layout, so an existing giftless store is
 * served as is. An upload is written to a hidden temporary file in the object's own
 * directory (same filesystem), hashed while it is written, and renamed into place only after
 * its SHA-256 matches the oid and it has been synced: readers never see a partial object.
 * Work is done on the loop thread in slices, spaced by the thread's slice timer
 * (storage/remote.h), so one large upload does not stall the others. */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "storage/remote.h"

/* Bytes written and hashed per write(2), and per turn of the event loop. */
#define LOCAL_WRITE_CHUNK (1u << 20)
#define LOCAL_SLICE (8u << 20)

struct lfs_storage_local {
    struct lfs_storage base;
    char root[PATH_MAX];
};

/* Builds "<root>/<org_path>/<repo>" (+ "/<oid>" when with_oid). The parts were validated by
 * server/ (lfs_segments_valid, lfs_oid_valid); checked again here because a path outside
 * the root must be impossible whatever the caller does. */
static int object_path(const struct lfs_storage_local *st, const struct lfs_object_key *key,
                       bool with_oid, char *buf, size_t size, struct lfs_error *err)
{
    if (!lfs_segments_valid(key->org_path, strlen(key->org_path)) ||
        !lfs_segment_valid(key->repo, strlen(key->repo)) ||
        !lfs_oid_valid(key->oid, strlen(key->oid)))
        return lfs_error_set(err, 422, "invalid object key");
    struct lfs_strbuf path = {.buf = buf, .cap = size};
    lfs_strbuf_adds(&path, st->root);
    lfs_strbuf_add(&path, "/", 1);
    lfs_strbuf_adds(&path, key->org_path);
    lfs_strbuf_add(&path, "/", 1);
    lfs_strbuf_adds(&path, key->repo);
    if (with_oid) {
        lfs_strbuf_add(&path, "/", 1);
        lfs_strbuf_adds(&path, key->oid);
    }
    if (path.overflow)
        return lfs_error_set(err, 422, "object path too long");
    return 0;
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

/* One upload in progress. Owned by the request pool: dispose() removes the temporary file
 * if the request goes away before the upload finished. */
struct local_put {
    h2o_timeout_entry_t slice;
    h2o_context_t *ctx;
    EVP_MD_CTX *md;
    int fd;
    bool tmp_exists;
    h2o_iovec_t body;
    size_t done;
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
static void put_commit(struct local_put *put)
{
    struct lfs_error err = {0};
    if (lfs_storage_check_sha256(put->md, put->oid, &err) < 0) {
        put_finish(put, &err);
        return;
    }
    if (fchmod(put->fd, 0644) < 0 || fdatasync(put->fd) < 0 || close(put->fd) < 0) {
        put->fd = -1;
        lfs_error_set(&err, 507, "local storage: cannot write object %s: %s", put->oid,
                      strerror(errno));
        put_finish(put, &err);
        return;
    }
    put->fd = -1;
    if (rename(put->tmp_path, put->final_path) < 0) {
        lfs_error_set(&err, 500, "local storage: cannot store object %s: %s", put->oid,
                      strerror(errno));
        put_finish(put, &err);
        return;
    }
    put->tmp_exists = false;
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

/* Writes and hashes up to LOCAL_SLICE bytes, then yields to the loop. */
static void put_slice(h2o_timeout_entry_t *entry)
{
    struct local_put *put = H2O_STRUCT_FROM_MEMBER(struct local_put, slice, entry);
    size_t end = put->done + LOCAL_SLICE;
    if (end > put->body.len)
        end = put->body.len;
    while (put->done < end) {
        size_t n = end - put->done;
        if (n > LOCAL_WRITE_CHUNK)
            n = LOCAL_WRITE_CHUNK;
        ssize_t w = write(put->fd, put->body.base + put->done, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            struct lfs_error err;
            lfs_error_set(&err, errno == ENOSPC ? 507 : 500,
                          "local storage: cannot write object %s: %s", put->oid, strerror(errno));
            put_finish(put, &err);
            return;
        }
        EVP_DigestUpdate(put->md, put->body.base + put->done, (size_t)w);
        /* Start write-back now so the final fdatasync has little left to wait for. */
        sync_file_range(put->fd, (off_t)put->done, w, SYNC_FILE_RANGE_WRITE);
        put->done += (size_t)w;
    }
    if (put->done < put->body.len) {
        h2o_timeout_link(put->ctx->loop, lfs_storage_slice_timeout(put->ctx->loop), &put->slice);
        return;
    }
    put_commit(put);
}

static void local_put(struct lfs_storage *storage, struct lfs_io *io,
                      const struct lfs_object_key *key, h2o_iovec_t body, lfs_storage_done_cb cb,
                      void *arg)
{
    struct lfs_storage_local *st = (struct lfs_storage_local *)storage;
    struct local_put *put = h2o_mem_alloc_shared(io->pool, sizeof(*put), put_dispose);
    memset(put, 0, sizeof(*put));
    put->fd = -1;
    put->ctx = io->ctx;
    put->body = body;
    put->cb = cb;
    put->arg = arg;
    put->slice.cb = put_slice;
    struct lfs_error err = {0};
    char dir[PATH_MAX];
    if (object_path(st, key, false, dir, sizeof(dir), &err) < 0 ||
        object_path(st, key, true, put->final_path, sizeof(put->final_path), &err) < 0) {
        put_finish(put, &err);
        return;
    }
    snprintf(put->oid, sizeof(put->oid), "%s", key->oid);
    if (snprintf(put->tmp_path, sizeof(put->tmp_path), "%s/.%s.XXXXXX", dir, key->oid) >=
        (int)sizeof(put->tmp_path)) {
        lfs_error_set(&err, 422, "object path too long");
        put_finish(put, &err);
        return;
    }
    if (make_dirs(dir) < 0 || (put->fd = mkostemp(put->tmp_path, O_CLOEXEC)) < 0) {
        lfs_error_set(&err, errno == ENOSPC ? 507 : 500,
                      "local storage: cannot create object %s: %s", key->oid, strerror(errno));
        put_finish(put, &err);
        return;
    }
    put->tmp_exists = true;
    if ((put->md = lfs_storage_sha256_new(&err)) == NULL) {
        put_finish(put, &err);
        return;
    }
    put_slice(&put->slice);
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
    .open = local_open,
    .scan_open = local_scan_open,
    .scan_next = local_scan_next,
    .scan_close = local_scan_close,
    .quarantine = local_quarantine,
};
