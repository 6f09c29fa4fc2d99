/* Unit tests for storage/local.c on a real h2o event loop and a temporary directory: the
 * giftless layout <path>/<org_path>/<repo>/<oid>; put with a matching body (stored, no
 * leftover temporary file), with a wrong body (422, nothing stored, no temporary file),
 * empty and > 8 MiB bodies (sliced over loop turns); concurrent puts of one object; a put
 * cancelled by clearing its request pool; stat and ranged reads; invalid keys; create with
 * an unusable path (error names the key path); the lock ops: create only if absent, read,
 * delete only the version read (a stale one leaves a newer lock alone), paged listing, keys
 * that are not lock names refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/storage.h"

#define CONFIG_PATH "TRANSFER_ADAPTERS.basic.options.storage_options"
#define MIB (1024u * 1024u)
#define BIG_SIZE (20 * MIB + 12345) /* three 8 MiB slices */
#define LOOP_TURNS 1000

/* One h2o context for the whole file, as a worker thread has. */
static h2o_globalconf_t conf;
static h2o_context_t ctx;

struct fixture {
    char dir[512];
    struct lfs_storage *st;
};

/* What a callback reported. */
struct result {
    int calls;
    int status; /* 0: success */
    char message[LFS_ERROR_MESSAGE_MAX];
    int64_t size;
};

static char *big_body; /* BIG_SIZE bytes of a pattern */
static char big_oid[LFS_OID_LEN + 1];

static void sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    lfs_hex_encode(md, mdlen, out);
}

static int group_setup(void **state)
{
    (void)state;
    h2o_config_init(&conf);
    h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_context_init(&ctx, h2o_evloop_create(), &conf);
    big_body = malloc(BIG_SIZE);
    if (big_body == NULL)
        return -1;
    for (size_t i = 0; i < BIG_SIZE; i++)
        big_body[i] = (char)(i * 7 + (i >> 13));
    sha256_hex(big_body, BIG_SIZE, big_oid);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    lfs_storage_thread_cleanup(); /* the slice timer is bound to this loop */
    h2o_evloop_t *loop = ctx.loop;
    h2o_context_dispose(&ctx);
    h2o_evloop_destroy(loop);
    h2o_config_dispose(&conf);
    free(big_body);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct lfs_storage *create_storage(const char *dir, struct lfs_error *err)
{
    const struct lfs_storage_ops *ops = lfs_storage_find("local");
    assert_non_null(ops);
    json_t *options = json_pack("{s:s}", "path", dir);
    struct lfs_storage *st = NULL;
    int rc = ops->create(options, CONFIG_PATH, &st, err);
    json_decref(options);
    if (rc < 0) {
        assert_int_equal(rc, -1);
        return NULL;
    }
    assert_int_equal(rc, 0);
    assert_non_null(st);
    return st;
}

static int setup(void **state)
{
    struct fixture *f = test_calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 400)
        tmp = "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/lfsgate-test-XXXXXX", tmp);
    if (mkdtemp(f->dir) == NULL)
        return -1;
    struct lfs_error err = {0};
    f->st = create_storage(f->dir, &err);
    if (f->st == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->st != NULL)
        f->st->ops->destroy(f->st);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    test_free(f);
    return 0;
}

static void on_done(void *arg, const struct lfs_error *err)
{
    struct result *r = arg;
    r->calls++;
    r->status = err != NULL ? err->status : 0;
    if (err != NULL)
        snprintf(r->message, sizeof(r->message), "%s", err->message);
}

static void on_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    struct result *r = arg;
    on_done(arg, err);
    r->size = size;
}

/* Runs the loop until every result has been called back, at most LOOP_TURNS turns. */
static void run_until_done(struct result *results, size_t n)
{
    for (int turn = 0; turn < LOOP_TURNS; turn++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += results[i].calls > 0;
        if (done == n)
            return;
        h2o_evloop_run(ctx.loop, 10);
    }
    fail_msg("callbacks did not fire within %d loop turns", LOOP_TURNS);
}

static void run_turns(int n)
{
    for (int i = 0; i < n; i++)
        h2o_evloop_run(ctx.loop, 1);
}

static void repo_dir(const struct fixture *f, const struct lfs_object_key *key, char *buf,
                     size_t size)
{
    snprintf(buf, size, "%s/%s/%s", f->dir, key->org_path, key->repo);
}

/* Counts hidden (temporary) files in the object's directory; 0 if it does not exist. */
static int temp_files(const struct fixture *f, const struct lfs_object_key *key)
{
    char dir[PATH_MAX];
    repo_dir(f, key, dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Reads the stored object file; returns its size or -1 if missing. *out is malloc'ed. */
static long read_object(const struct fixture *f, const struct lfs_object_key *key, char **out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/%s/%s", f->dir, key->org_path, key->repo, key->oid);
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    struct stat sb;
    assert_int_equal(fstat(fileno(fp), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    *out = malloc((size_t)sb.st_size + 1);
    assert_non_null(*out);
    assert_int_equal(fread(*out, 1, (size_t)sb.st_size, fp), (size_t)sb.st_size);
    fclose(fp);
    return (long)sb.st_size;
}

static bool object_exists(const struct fixture *f, const struct lfs_object_key *key)
{
    char *data;
    long n = read_object(f, key, &data);
    free(data);
    return n >= 0;
}

/* Puts body under key with its own request pool and runs the loop until done. */
static struct result put_sync(struct fixture *f, const struct lfs_object_key *key, const char *body,
                              size_t len)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct result r = {0};
    f->st->ops->put(f->st, &io, key, h2o_iovec_init(body, len), on_done, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.calls, 1);
    h2o_mem_clear_pool(&pool);
    return r;
}

static void test_put_stores_object(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("hello\n", 6, oid);
    struct lfs_object_key key = {.org_path = "group/sub", .repo = "repo", .oid = oid};

    struct result r = put_sync(f, &key, "hello\n", 6);
    assert_int_equal(r.status, 0);

    char *data;
    assert_int_equal(read_object(f, &key, &data), 6);
    assert_memory_equal(data, "hello\n", 6);
    free(data);
    assert_int_equal(temp_files(f, &key), 0);

    /* the giftless layout, and nothing else in the repository directory */
    char dir[1024];
    repo_dir(f, &key, dir, sizeof(dir));
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            assert_string_equal(e->d_name, oid);
            entries++;
        }
    closedir(d);
    assert_int_equal(entries, 1);

    /* stored files are readable by others (giftless and backups) */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, oid);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
}

static void test_put_empty_object(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("", 0, oid);
    assert_string_equal(oid, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};
    struct result r = put_sync(f, &key, "", 0);
    assert_int_equal(r.status, 0);
    char *data;
    assert_int_equal(read_object(f, &key, &data), 0);
    free(data);
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_put_hash_mismatch(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("hello\n", 6, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};

    struct result r = put_sync(f, &key, "hellO\n", 6);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.message, oid));
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);

    /* a truncated body is a mismatch too */
    r = put_sync(f, &key, "hello", 5);
    assert_int_equal(r.status, 422);
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_put_mismatch_keeps_existing(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("good", 4, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};
    assert_int_equal(put_sync(f, &key, "good", 4).status, 0);
    assert_int_equal(put_sync(f, &key, "evil", 4).status, 422);
    char *data;
    assert_int_equal(read_object(f, &key, &data), 4);
    assert_memory_equal(data, "good", 4);
    free(data);
    assert_int_equal(temp_files(f, &key), 0);
    /* storing it again is fine */
    assert_int_equal(put_sync(f, &key, "good", 4).status, 0);
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_put_large_body(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "org", .repo = "big", .oid = big_oid};
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct result r = {0};
    f->st->ops->put(f->st, &io, &key, h2o_iovec_init(big_body, BIG_SIZE), on_done, &r);
    /* more than one slice: not finished before the loop runs, and not visible yet */
    assert_int_equal(r.calls, 0);
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 1);
    run_until_done(&r, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    h2o_mem_clear_pool(&pool);

    char *data;
    assert_int_equal(read_object(f, &key, &data), BIG_SIZE);
    char got[LFS_OID_LEN + 1];
    sha256_hex(data, BIG_SIZE, got);
    free(data);
    assert_string_equal(got, big_oid);
    assert_int_equal(temp_files(f, &key), 0);
}

/* Slicing is there so that one large upload does not stall the loop's other connections:
 * after each slice the loop must get a turn (poll sockets) before the next slice runs. */
static void test_put_yields_between_slices(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "org", .repo = "yield", .oid = big_oid};
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct result r = {0};
    f->st->ops->put(f->st, &io, &key, h2o_iovec_init(big_body, BIG_SIZE), on_done, &r);
    assert_int_equal(r.calls, 0);
    /* one turn of the loop writes at most one more slice: three are needed */
    h2o_evloop_run(ctx.loop, 0);
    int calls_after_one_turn = r.calls;
    run_until_done(&r, 1);
    h2o_mem_clear_pool(&pool);
    assert_int_equal(r.status, 0);
    assert_int_equal(temp_files(f, &key), 0);
    if (calls_after_one_turn != 0)
        fail_msg("a %u-byte put finished within one loop turn: the slices do not yield to "
                 "the loop, so the upload stalls every other connection of the thread",
                 BIG_SIZE);
}

static void test_put_large_mismatch(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("something else", 14, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "big", .oid = oid};
    struct result r = put_sync(f, &key, big_body, BIG_SIZE);
    assert_int_equal(r.status, 422);
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_concurrent_puts(void **state)
{
    struct fixture *f = *state;
    enum { N = 5 };
    struct lfs_object_key key = {.org_path = "a/b/c", .repo = "repo", .oid = big_oid};
    h2o_mem_pool_t pools[N];
    struct result results[N];
    memset(results, 0, sizeof(results));
    /* all five started before the loop runs: their slices interleave */
    for (int i = 0; i < N; i++) {
        h2o_mem_init_pool(&pools[i]);
        struct lfs_io io = {.ctx = &ctx, .pool = &pools[i]};
        f->st->ops->put(f->st, &io, &key, h2o_iovec_init(big_body, BIG_SIZE), on_done, &results[i]);
    }
    assert_int_equal(temp_files(f, &key), N);
    run_until_done(results, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i].calls, 1);
        assert_int_equal(results[i].status, 0);
        h2o_mem_clear_pool(&pools[i]);
    }
    char *data;
    assert_int_equal(read_object(f, &key, &data), BIG_SIZE);
    assert_memory_equal(data, big_body, BIG_SIZE);
    free(data);
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_concurrent_puts_small(void **state)
{
    struct fixture *f = *state;
    enum { N = 5 };
    char oid[LFS_OID_LEN + 1];
    sha256_hex("small", 5, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};
    h2o_mem_pool_t pools[N];
    struct result results[N];
    memset(results, 0, sizeof(results));
    for (int i = 0; i < N; i++) {
        h2o_mem_init_pool(&pools[i]);
        struct lfs_io io = {.ctx = &ctx, .pool = &pools[i]};
        f->st->ops->put(f->st, &io, &key, h2o_iovec_init("small", 5), on_done, &results[i]);
    }
    run_until_done(results, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i].calls, 1);
        assert_int_equal(results[i].status, 0);
        h2o_mem_clear_pool(&pools[i]);
    }
    char *data;
    assert_int_equal(read_object(f, &key, &data), 5);
    assert_memory_equal(data, "small", 5);
    free(data);
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_put_cancelled(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = big_oid};
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct result r = {0};
    f->st->ops->put(f->st, &io, &key, h2o_iovec_init(big_body, BIG_SIZE), on_done, &r);
    assert_int_equal(r.calls, 0);
    assert_int_equal(temp_files(f, &key), 1);
    /* the client went away: the request pool is disposed */
    h2o_mem_clear_pool(&pool);
    assert_int_equal(temp_files(f, &key), 0);
    run_turns(20);
    assert_int_equal(r.calls, 0);
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);

    /* the same after one turn of the loop */
    h2o_mem_init_pool(&pool);
    f->st->ops->put(f->st, &io, &key, h2o_iovec_init(big_body, BIG_SIZE), on_done, &r);
    h2o_evloop_run(ctx.loop, 0);
    if (r.calls == 0) {
        h2o_mem_clear_pool(&pool);
        run_turns(20);
        assert_int_equal(r.calls, 0);
        assert_false(object_exists(f, &key));
    } else {
        /* finished within the turn (see test_put_yields_between_slices) */
        assert_int_equal(r.status, 0);
        h2o_mem_clear_pool(&pool);
    }
    assert_int_equal(temp_files(f, &key), 0);
}

/* ---- put_open: a body written in pieces as it arrives ---- */

/* Writes body[0..len) through a writer in uneven pieces (1 byte, a page less one, then
 * `piece` bytes at a time). Returns 0, or the status of the first failed write. */
static int write_pieces(struct lfs_storage_writer *w, const char *body, size_t len, size_t piece)
{
    size_t off = 0, first[] = {1, 4095};
    for (size_t i = 0; off < len; i++) {
        size_t n = i < 2 ? first[i] : piece;
        if (n > len - off)
            n = len - off;
        struct lfs_error err = {0};
        if (w->ops->write(w, body + off, n, &err) < 0)
            return err.status;
        off += n;
    }
    return 0;
}

/* put_open, write_pieces, commit, run the loop until done. */
static struct result writer_sync(struct fixture *f, const struct lfs_object_key *key,
                                 const char *body, size_t len, int64_t size_hint)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct result r = {0};
    struct lfs_storage_writer *w = NULL;
    struct lfs_error err = {0};
    assert_int_equal(f->st->ops->put_open(f->st, &io, key, size_hint, &w, &err), 0);
    assert_non_null(w);
    assert_int_equal(write_pieces(w, body, len, 300000), 0);
    /* everything written, nothing visible before the commit */
    assert_false(object_exists(f, key));
    assert_int_equal(temp_files(f, key), 1);
    w->ops->commit(w, on_done, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.calls, 1);
    h2o_mem_clear_pool(&pool);
    return r;
}

static void test_writer_stores_object(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "org/sub", .repo = "pieces", .oid = big_oid};
    /* hashed by the helper thread (large hint), then by the loop thread (small hint) */
    int64_t hints[] = {BIG_SIZE, 0};
    for (size_t i = 0; i < 2; i++) {
        struct result r = writer_sync(f, &key, big_body, BIG_SIZE, hints[i]);
        assert_int_equal(r.status, 0);
        char *data;
        assert_int_equal(read_object(f, &key, &data), BIG_SIZE);
        assert_memory_equal(data, big_body, BIG_SIZE);
        free(data);
        assert_int_equal(temp_files(f, &key), 0);
        char path[PATH_MAX];
        repo_dir(f, &key, path, sizeof(path) - LFS_OID_LEN - 2);
        strcat(path, "/");
        strcat(path, big_oid);
        assert_int_equal(unlink(path), 0);
    }
}

static void test_writer_hash_mismatch(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("something else", 14, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "pieces", .oid = oid};
    struct result r = writer_sync(f, &key, big_body, BIG_SIZE, BIG_SIZE);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.message, big_oid)); /* says what the data hashed to */
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);
    /* a body shorter than the object it claims to be hashes to something else too */
    key.oid = big_oid;
    r = writer_sync(f, &key, big_body, BIG_SIZE - 1, BIG_SIZE);
    assert_int_equal(r.status, 422);
    assert_false(object_exists(f, &key));
    assert_int_equal(temp_files(f, &key), 0);
}

/* The client goes away mid-body, or while the hash is awaited: the pool is disposed, the
 * helper thread joined, the temporary file removed, and no callback runs. */
static void test_writer_cancelled(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "org", .repo = "pieces", .oid = big_oid};
    for (int committed = 0; committed < 2; committed++) {
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        struct lfs_io io = {.ctx = &ctx, .pool = &pool};
        struct result r = {0};
        struct lfs_storage_writer *w = NULL;
        struct lfs_error err = {0};
        assert_int_equal(f->st->ops->put_open(f->st, &io, &key, BIG_SIZE, &w, &err), 0);
        size_t len = committed ? BIG_SIZE : BIG_SIZE / 2;
        assert_int_equal(write_pieces(w, big_body, len, 1 << 20), 0);
        if (committed)
            w->ops->commit(w, on_done, &r);
        if (r.calls == 0) {
            assert_int_equal(temp_files(f, &key), 1);
            h2o_mem_clear_pool(&pool);
            run_turns(20);
            assert_int_equal(r.calls, 0);
            assert_false(object_exists(f, &key));
        } else {
            /* the helper had hashed it all already: committed at once */
            assert_int_equal(r.status, 0);
            h2o_mem_clear_pool(&pool);
            assert_true(object_exists(f, &key));
        }
        assert_int_equal(temp_files(f, &key), 0);
    }
}

static void test_writer_invalid_key(void **state)
{
    struct fixture *f = *state;
    struct lfs_object_key key = {.org_path = "../escape", .repo = "repo", .oid = big_oid};
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct lfs_storage_writer *w = NULL;
    struct lfs_error err = {0};
    assert_int_equal(f->st->ops->put_open(f->st, &io, &key, 10, &w, &err), -1);
    assert_null(w);
    assert_true(err.status >= 400 && err.status < 500);
    h2o_mem_clear_pool(&pool);
    assert_int_equal(temp_files(f, &key), 0);
}

static void test_stat(void **state)
{
    struct fixture *f = *state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    char oid[LFS_OID_LEN + 1];
    sha256_hex("12345", 5, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};

    /* missing: neither the object nor its directories exist */
    struct result r = {0};
    f->st->ops->stat(f->st, &io, &key, on_stat, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.size, -1);

    assert_int_equal(put_sync(f, &key, "12345", 5).status, 0);
    r = (struct result){0};
    f->st->ops->stat(f->st, &io, &key, on_stat, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.size, 5);

    /* the same oid in another repository is another object */
    struct lfs_object_key other = {.org_path = "org", .repo = "other", .oid = oid};
    r = (struct result){0};
    f->st->ops->stat(f->st, &io, &other, on_stat, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.size, -1);

    /* a directory where the object would be is not an object */
    char oid2[LFS_OID_LEN + 1], path[PATH_MAX];
    sha256_hex("dir", 3, oid2);
    snprintf(path, sizeof(path), "%s/org/repo/%s", f->dir, oid2);
    assert_int_equal(mkdir(path, 0755), 0);
    struct lfs_object_key dirkey = {.org_path = "org", .repo = "repo", .oid = oid2};
    r = (struct result){0};
    f->st->ops->stat(f->st, &io, &dirkey, on_stat, &r);
    run_until_done(&r, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.size, -1);
    h2o_mem_clear_pool(&pool);
}

struct read_state {
    struct lfs_storage_stream *stream;
    int opened;
    int open_status;
    ssize_t n;
    int reads;
    int read_status;
};

static void on_open(void *arg, struct lfs_storage_stream *stream, const struct lfs_error *err)
{
    struct read_state *rs = arg;
    rs->opened++;
    rs->stream = stream;
    rs->open_status = err != NULL ? err->status : 0;
}

static void on_read(void *arg, ssize_t n, const struct lfs_error *err)
{
    struct read_state *rs = arg;
    rs->reads++;
    rs->n = n;
    rs->read_status = err != NULL ? err->status : 0;
}

static void run_until(const int *counter, int target)
{
    for (int turn = 0; *counter < target && turn < LOOP_TURNS; turn++)
        h2o_evloop_run(ctx.loop, 10);
    assert_int_equal(*counter, target);
}

/* Opens [offset, offset + length) and reads it all in chunks of at most cap bytes. */
static size_t read_range(struct fixture *f, const struct lfs_object_key *key, uint64_t offset,
                         uint64_t length, size_t cap, char *out, int *nreads)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct read_state rs = {0};
    f->st->ops->open(f->st, &io, key, offset, length, on_open, &rs);
    run_until(&rs.opened, 1);
    assert_int_equal(rs.open_status, 0);
    assert_non_null(rs.stream);
    size_t total = 0;
    *nreads = 0;
    for (;;) {
        int before = rs.reads;
        rs.stream->ops->read(rs.stream, out + total, cap, on_read, &rs);
        run_until(&rs.reads, before + 1);
        assert_int_equal(rs.read_status, 0);
        assert_true(rs.n >= 0);
        if (rs.n == 0)
            break;
        assert_true((size_t)rs.n <= cap);
        total += (size_t)rs.n;
        (*nreads)++;
        assert_true(total <= length);
    }
    h2o_mem_clear_pool(&pool);
    return total;
}

static void test_open_read_ranges(void **state)
{
    struct fixture *f = *state;
    char body[1000], oid[LFS_OID_LEN + 1];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    sha256_hex(body, sizeof(body), oid);
    struct lfs_object_key key = {.org_path = "o/p", .repo = "r", .oid = oid};
    assert_int_equal(put_sync(f, &key, body, sizeof(body)).status, 0);

    char out[1100];
    int nreads;
    /* whole object in chunks of 300 */
    assert_int_equal(read_range(f, &key, 0, 1000, 300, out, &nreads), 1000);
    assert_memory_equal(out, body, 1000);
    assert_int_equal(nreads, 4);
    /* a middle range, with room for more */
    assert_int_equal(read_range(f, &key, 10, 20, 500, out, &nreads), 20);
    assert_memory_equal(out, body + 10, 20);
    assert_int_equal(nreads, 1);
    /* the tail (Range: bytes=990-) */
    assert_int_equal(read_range(f, &key, 990, 10, 4096, out, &nreads), 10);
    assert_memory_equal(out, body + 990, 10);
    /* one byte at a time */
    assert_int_equal(read_range(f, &key, 500, 3, 1, out, &nreads), 3);
    assert_memory_equal(out, body + 500, 3);
    assert_int_equal(nreads, 3);
    /* an empty range ends at once */
    assert_int_equal(read_range(f, &key, 1000, 0, 100, out, &nreads), 0);
    assert_int_equal(nreads, 0);
}

static void test_open_short_object_fails(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("abc", 3, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};
    assert_int_equal(put_sync(f, &key, "abc", 3).status, 0);
    /* asking for more than is stored (file changed under us) is an error, not a hang */
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct read_state rs = {0};
    f->st->ops->open(f->st, &io, &key, 0, 10, on_open, &rs);
    run_until(&rs.opened, 1);
    assert_int_equal(rs.open_status, 0);
    char buf[16];
    rs.stream->ops->read(rs.stream, buf, sizeof(buf), on_read, &rs);
    run_until(&rs.reads, 1);
    assert_int_equal(rs.n, 3);
    rs.stream->ops->read(rs.stream, buf, sizeof(buf), on_read, &rs);
    run_until(&rs.reads, 2);
    assert_true(rs.n < 0);
    assert_int_equal(rs.read_status, 500);
    h2o_mem_clear_pool(&pool);
}

static void test_open_missing(void **state)
{
    struct fixture *f = *state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    char oid[LFS_OID_LEN + 1];
    sha256_hex("nope", 4, oid);
    struct lfs_object_key key = {.org_path = "org", .repo = "repo", .oid = oid};
    struct read_state rs = {0};
    f->st->ops->open(f->st, &io, &key, 0, 4, on_open, &rs);
    run_until(&rs.opened, 1);
    assert_int_equal(rs.open_status, 404);
    assert_null(rs.stream);
    h2o_mem_clear_pool(&pool);
}

static void test_invalid_keys(void **state)
{
    struct fixture *f = *state;
    char oid[LFS_OID_LEN + 1];
    sha256_hex("x", 1, oid);
    static const struct {
        const char *org, *repo, *oid;
    } bad[] = {
        {"..", "repo", NULL},    {"org/..", "repo", NULL}, {"org", "..", NULL},
        {"org", "a/b", NULL},    {"/abs", "repo", NULL},   {"", "repo", NULL},
        {"org", "repo", "../x"}, {"org", "repo", ""},      {"org//x", "repo", NULL},
    };
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lfs_object_key key = {bad[i].org, bad[i].repo, bad[i].oid ? bad[i].oid : oid};
        print_message("key %s/%s/%s\n", key.org_path, key.repo, key.oid);
        struct result r = {0};
        f->st->ops->put(f->st, &io, &key, h2o_iovec_init("x", 1), on_done, &r);
        run_until_done(&r, 1);
        assert_int_equal(r.status, 422);
        r = (struct result){0};
        f->st->ops->stat(f->st, &io, &key, on_stat, &r);
        run_until_done(&r, 1);
        assert_int_equal(r.status, 422);
        struct read_state rs = {0};
        f->st->ops->open(f->st, &io, &key, 0, 1, on_open, &rs);
        run_until(&rs.opened, 1);
        assert_int_equal(rs.open_status, 422);
        assert_null(rs.stream);
    }
    h2o_mem_clear_pool(&pool);
    /* nothing was created, inside or next to the root */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            fail_msg("unexpected entry %s in the storage root", e->d_name);
    closedir(d);
}

static void test_create_makes_directory(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/new/nested/store", f->dir);
    struct lfs_error err = {0};
    struct lfs_storage *st = create_storage(path, &err);
    assert_non_null(st);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    st->ops->destroy(st);
}

static void test_create_unusable_path(void **state)
{
    struct fixture *f = *state;
    /* a regular file on the way: not creatable, even for root */
    char file[1024], path[PATH_MAX];
    snprintf(file, sizeof(file), "%s/a-file", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/sub", file);
    struct lfs_error err = {0};
    assert_null(create_storage(path, &err));
    assert_true(err.status != 0);
    assert_non_null(strstr(err.message, CONFIG_PATH ".path"));
    assert_non_null(strstr(err.message, path));
    /* the file itself is not a directory */
    err = (struct lfs_error){0};
    assert_null(create_storage(file, &err));
    assert_non_null(strstr(err.message, CONFIG_PATH ".path"));
}

static void test_create_bad_options(void **state)
{
    (void)state;
    const struct lfs_storage_ops *ops = lfs_storage_find("local");
    struct lfs_storage *st = NULL;
    struct lfs_error err = {0};
    json_t *options = json_pack("{s:i}", "path", 5);
    assert_int_equal(ops->create(options, CONFIG_PATH, &st, &err), -1);
    assert_non_null(strstr(err.message, CONFIG_PATH ".path"));
    json_decref(options);

    err = (struct lfs_error){0};
    options = json_pack("{s:s, s:s}", "path", "/tmp", "bucket", "x");
    assert_int_equal(ops->create(options, CONFIG_PATH, &st, &err), -1);
    assert_non_null(strstr(err.message, CONFIG_PATH ".bucket"));
    json_decref(options);

    err = (struct lfs_error){0};
    options = json_pack("{s:s}", "path", "");
    assert_int_equal(ops->create(options, CONFIG_PATH, &st, &err), -1);
    assert_non_null(strstr(err.message, CONFIG_PATH ".path"));
    json_decref(options);

    /* found by its giftless class too */
    assert_ptr_equal(lfs_storage_find("giftless.storage.local_storage:LocalStorage"), ops);
}

/* ---- locks ---- */

struct lock_result {
    int calls;
    int result;
    int status;
    char content[LFS_LOCK_CONTENT_MAX + 1];
    char version[LFS_LOCK_CONTENT_MAX + 1];
    bool found;
    size_t n;
    char names[8][LFS_LOCK_NAME_LEN + 1];
    char next[LFS_LOCK_NAME_LEN + 1];
};

static void on_lock_done(void *arg, int result, const struct lfs_error *err)
{
    struct lock_result *r = arg;
    r->calls++;
    r->result = result;
    r->status = err != NULL ? err->status : 0;
}

static void on_lock_read(void *arg, const struct lfs_lock_record *rec, const struct lfs_error *err)
{
    struct lock_result *r = arg;
    r->calls++;
    r->status = err != NULL ? err->status : 0;
    r->found = rec != NULL;
    if (rec != NULL) {
        snprintf(r->content, sizeof(r->content), "%.*s", (int)rec->content.len, rec->content.base);
        snprintf(r->version, sizeof(r->version), "%s", rec->version);
    }
}

static void on_lock_list(void *arg, const struct lfs_lock_page *page, const struct lfs_error *err)
{
    struct lock_result *r = arg;
    r->calls++;
    r->status = err != NULL ? err->status : 0;
    if (page == NULL)
        return;
    r->n = page->n;
    for (size_t i = 0; i < page->n && i < 8; i++)
        snprintf(r->names[i], sizeof(r->names[i]), "%s", page->records[i].name);
    snprintf(r->next, sizeof(r->next), "%s", page->next != NULL ? page->next : "");
}

static const struct lfs_lock_key lock_key = {
    .org_path = "org/team", .repo = "repo", .name = "0123456789abcdef0123456789abcdef01234567"};

static struct lock_result lock_op(struct fixture *f, char op, const struct lfs_lock_key *key,
                                  const char *arg)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct lock_result r = {0};
    if (op == 'c')
        f->st->ops->lock_create(f->st, &io, key, h2o_iovec_init(arg, strlen(arg)), on_lock_done,
                                &r);
    else if (op == 'r')
        f->st->ops->lock_read(f->st, &io, key, on_lock_read, &r);
    else if (op == 'd')
        f->st->ops->lock_delete(f->st, &io, key, arg, on_lock_done, &r);
    else
        f->st->ops->lock_list(f->st, &io, key, (size_t)atoi(arg), on_lock_list, &r);
    /* Local lock ops answer before returning: nothing is left for the loop. */
    assert_int_equal(r.calls, 1);
    h2o_mem_clear_pool(&pool);
    return r;
}

static void test_lock_create_read_delete(void **state)
{
    struct fixture *f = *state;
    struct lock_result r = lock_op(f, 'c', &lock_key, "{\"id\":\"first\"}");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.result, 1);
    /* taken: the first content stays */
    r = lock_op(f, 'c', &lock_key, "{\"id\":\"second\"}");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.result, 0);
    r = lock_op(f, 'r', &lock_key, NULL);
    assert_true(r.found);
    assert_string_equal(r.content, "{\"id\":\"first\"}");
    char first_version[sizeof(r.version)];
    snprintf(first_version, sizeof(first_version), "%s", r.version);
    /* another version: not deleted */
    r = lock_op(f, 'd', &lock_key, "{\"id\":\"second\"}");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.result, 0);
    assert_true(lock_op(f, 'r', &lock_key, NULL).found);
    r = lock_op(f, 'd', &lock_key, first_version);
    assert_int_equal(r.result, 1);
    assert_false(lock_op(f, 'r', &lock_key, NULL).found);
    /* a stale version never removes a newer lock at the same name */
    assert_int_equal(lock_op(f, 'c', &lock_key, "{\"id\":\"third\"}").result, 1);
    assert_int_equal(lock_op(f, 'd', &lock_key, first_version).result, 0);
    r = lock_op(f, 'r', &lock_key, NULL);
    assert_string_equal(r.content, "{\"id\":\"third\"}");
    /* no temporary file is left, and the locks sit under locks/, apart from the objects */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/org/team/repo/locks/%s.lock", f->dir, lock_key.name);
    assert_int_equal(access(path, F_OK), 0);
    struct lfs_object_key lkey = {.org_path = "org/team/repo", .repo = "locks", .oid = big_oid};
    assert_int_equal(temp_files(f, &lkey), 0);
    struct result sr = {0};
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct lfs_object_key key = {.org_path = "org/team", .repo = "repo", .oid = big_oid};
    f->st->ops->stat(f->st, &io, &key, on_stat, &sr);
    assert_int_equal(sr.size, -1);
    h2o_mem_clear_pool(&pool);
}

static void test_lock_list_pages(void **state)
{
    struct fixture *f = *state;
    /* empty before any lock */
    struct lock_result r = lock_op(f, 'l', &(struct lfs_lock_key){"org", "repo", NULL}, "10");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 0);
    char names[5][LFS_LOCK_NAME_LEN + 1];
    for (int i = 4; i >= 0; i--) {
        snprintf(names[i], sizeof(names[i]), "%040d", i);
        struct lfs_lock_key k = {"org", "repo", names[i]};
        assert_int_equal(lock_op(f, 'c', &k, "{}").result, 1);
    }
    struct lfs_lock_key k = {"org", "repo", NULL};
    r = lock_op(f, 'l', &k, "2");
    assert_int_equal(r.n, 2);
    assert_string_equal(r.names[0], names[0]);
    assert_string_equal(r.names[1], names[1]);
    assert_string_equal(r.next, names[1]);
    char after[LFS_LOCK_NAME_LEN + 1];
    snprintf(after, sizeof(after), "%s", r.next);
    k.name = after;
    r = lock_op(f, 'l', &k, "2");
    assert_int_equal(r.n, 2);
    assert_string_equal(r.names[0], names[2]);
    snprintf(after, sizeof(after), "%s", r.next);
    r = lock_op(f, 'l', &k, "2");
    assert_int_equal(r.n, 1);
    assert_string_equal(r.names[0], names[4]);
    assert_string_equal(r.next, "");
}

static void test_lock_invalid_keys(void **state)
{
    struct fixture *f = *state;
    const char *bad_names[] = {"../../../../../../../../../../etc/passwd", "0123",
                               "0123456789ABCDEF0123456789ABCDEF01234567",
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        struct lfs_lock_key k = {"org", "repo", bad_names[i]};
        assert_int_equal(lock_op(f, 'c', &k, "{}").status, 422);
        assert_int_equal(lock_op(f, 'r', &k, NULL).status, 422);
        assert_int_equal(lock_op(f, 'd', &k, "{}").status, 422);
        assert_int_equal(lock_op(f, 'l', &k, "5").status, 422);
    }
    struct lfs_lock_key k = {"org/../x", "repo", lock_key.name};
    assert_int_equal(lock_op(f, 'c', &k, "{}").status, 422);
    k = (struct lfs_lock_key){"org", "..", lock_key.name};
    assert_int_equal(lock_op(f, 'r', &k, NULL).status, 422);
    char big[LFS_LOCK_CONTENT_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(lock_op(f, 'c', &lock_key, big).status, 422);
}

/* ---- scan, content check and quarantine (lfsgate scrub, verify_content) ---- */

/* Writes data at <dir>/<rel>, making the directories. */
static void plant(const struct fixture *f, const char *rel, const char *data, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    for (char *p = path + strlen(f->dir) + 1; *p != '\0'; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

struct scan_seen {
    int calls, status;
    bool done;
    char names[8][PATH_MAX];
    int64_t sizes[8];
    size_t n;
};

static void on_scan_page(void *arg, const struct lfs_storage_scan_page *page,
                         const struct lfs_error *err)
{
    struct scan_seen *seen = arg;
    seen->calls++;
    seen->status = err != NULL ? err->status : 0;
    if (page == NULL)
        return;
    seen->done = page->done;
    for (size_t i = 0; i < page->n && seen->n < 8; i++, seen->n++) {
        const struct lfs_storage_scan_entry *e = &page->entries[i];
        snprintf(seen->names[seen->n], PATH_MAX, "%s/%s/%s", e->org_path, e->repo, e->oid);
        seen->sizes[seen->n] = e->size;
    }
}

/* Every page of a scan (org_path NULL: the whole store), names sorted. */
static void scan_all(struct fixture *f, const char *org_path, const char *repo,
                     struct scan_seen *seen)
{
    struct lfs_storage_scan *scan = NULL;
    struct lfs_error err = {0};
    memset(seen, 0, sizeof(*seen));
    assert_int_equal(f->st->ops->scan_open(f->st, org_path, repo, &scan, &err), 0);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    while (!seen->done) {
        int calls = seen->calls;
        f->st->ops->scan_next(scan, &io, on_scan_page, seen);
        assert_int_equal(seen->calls, calls + 1); /* local answers at once */
        assert_int_equal(seen->status, 0);
    }
    h2o_mem_clear_pool(&pool);
    f->st->ops->scan_close(scan);
    qsort(seen->names, seen->n, PATH_MAX, (int (*)(const void *, const void *))strcmp);
}

struct check_seen {
    int calls, status;
    struct lfs_storage_check_result result;
};

static void on_check(void *arg, const struct lfs_storage_check_result *result,
                     const struct lfs_error *err)
{
    struct check_seen *c = arg;
    c->calls++;
    c->status = err != NULL ? err->status : 0;
    if (result != NULL)
        c->result = *result;
}

/* The scan finds objects at <org_path>/<repo>/<oid> (nested org paths too) and nothing else:
 * not temporary files, names that are not oids, files above a repository or quarantined
 * objects; --repo's form lists one repository only. The content check reads an object back
 * and tells a corrupt one; quarantine moves it where neither stat nor scan finds it. */
static void test_scan_check_quarantine(void **state)
{
    struct fixture *f = *state;
    char a[LFS_OID_LEN + 1], b[LFS_OID_LEN + 1], rel[PATH_MAX];
    sha256_hex("alpha", 5, a);
    sha256_hex("bravo!", 6, b);
    snprintf(rel, sizeof(rel), "org/repo/%s", a);
    plant(f, rel, "alpha", 5);
    snprintf(rel, sizeof(rel), "org/sub/deep/%s", b);
    plant(f, rel, "bravX!", 6); /* same size, other bytes */
    snprintf(rel, sizeof(rel), "org/repo/.%s.Ab12Cd", a);
    plant(f, rel, "part", 4);
    plant(f, "org/repo/notes.txt", "x", 1);
    snprintf(rel, sizeof(rel), "org/%s", a); /* no repository level */
    plant(f, rel, "alpha", 5);
    snprintf(rel, sizeof(rel), ".lfsgate-quarantine/org/repo/%s", b);
    plant(f, rel, "old", 3);

    struct scan_seen seen;
    scan_all(f, NULL, NULL, &seen);
    assert_int_equal(seen.n, 2);
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "org/repo/%s", a);
    assert_string_equal(seen.names[0], want);
    snprintf(want, sizeof(want), "org/sub/deep/%s", b);
    assert_string_equal(seen.names[1], want);
    scan_all(f, "org", "repo", &seen);
    assert_int_equal(seen.n, 1);
    assert_true(seen.sizes[0] == 5);
    scan_all(f, "org", "nothing-here", &seen);
    assert_int_equal(seen.n, 0);
    struct lfs_storage_scan *scan = NULL;
    struct lfs_error err = {0};
    assert_int_equal(f->st->ops->scan_open(f->st, "org", "../x", &scan, &err), -1);
    assert_int_equal(err.status, 422);

    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    struct lfs_object_key ka = {.org_path = "org", .repo = "repo", .oid = a},
                          kb = {.org_path = "org/sub", .repo = "deep", .oid = b};
    struct check_seen good = {0}, bad = {0}, missing = {0};
    lfs_storage_check_content(f->st, &io, &ka, 5, on_check, &good);
    lfs_storage_check_content(f->st, &io, &kb, 6, on_check, &bad);
    struct lfs_object_key kc = {.org_path = "org", .repo = "repo", .oid = b};
    lfs_storage_check_content(f->st, &io, &kc, 6, on_check, &missing);
    for (int i = 0; i < LOOP_TURNS && good.calls + bad.calls + missing.calls < 3; i++)
        h2o_evloop_run(ctx.loop, 10);
    assert_int_equal(good.calls, 1);
    assert_int_equal(good.status, 0);
    assert_true(good.result.matches);
    assert_true(good.result.bytes == 5);
    assert_int_equal(bad.calls, 1);
    assert_false(bad.result.matches);
    assert_true(bad.result.bytes == 6);
    char bad_hash[LFS_OID_LEN + 1];
    sha256_hex("bravX!", 6, bad_hash);
    assert_string_equal(bad.result.sha256, bad_hash);
    assert_int_equal(missing.calls, 1);
    assert_int_equal(missing.status, 404);

    struct result q = {0}, st = {0};
    f->st->ops->quarantine(f->st, &io, &kb, on_done, &q);
    run_until_done(&q, 1);
    assert_int_equal(q.status, 0);
    f->st->ops->stat(f->st, &io, &kb, on_stat, &st);
    run_until_done(&st, 1);
    assert_true(st.size == -1);
    snprintf(rel, sizeof(rel), "%s/.lfsgate-quarantine/org/sub/deep/%s", f->dir, b);
    assert_int_equal(access(rel, F_OK), 0);
    scan_all(f, NULL, NULL, &seen);
    assert_int_equal(seen.n, 1);
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_stores_object),
        T(test_put_empty_object),
        T(test_put_hash_mismatch),
        T(test_put_mismatch_keeps_existing),
        T(test_put_large_body),
        T(test_put_yields_between_slices),
        T(test_put_large_mismatch),
        T(test_concurrent_puts),
        T(test_concurrent_puts_small),
        T(test_put_cancelled),
        T(test_writer_stores_object),
        T(test_writer_hash_mismatch),
        T(test_writer_cancelled),
        T(test_writer_invalid_key),
        T(test_stat),
        T(test_open_read_ranges),
        T(test_open_short_object_fails),
        T(test_open_missing),
        T(test_invalid_keys),
        T(test_create_makes_directory),
        T(test_create_unusable_path),
        T(test_create_bad_options),
        T(test_lock_create_read_delete),
        T(test_lock_list_pages),
        T(test_lock_invalid_keys),
        T(test_scan_check_quarantine),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
