/* Reading a stored object back and hashing it: the content check of `verify_content`
 * (server/objects.c, for uploads that went straight to the store) and of `lfsgate scrub`. It
 * goes through the backend's open op, the path a download takes, in chunks of CHECK_CHUNK,
 * so memory per check is one buffer whatever the object's size. Each thread runs at most
 * `limit` checks at once (lfs_storage_check_limit); later ones wait in a queue, in order, so
 * a burst of verify requests cannot make a worker read hundreds of objects at the same time. */
#include "storage/storage.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/util.h"
#include "storage/remote.h"

#define CHECK_CHUNK (256u << 10)
#define CHECK_DEFAULT_LIMIT 4

/* The calling thread's checks: how many run, how many may, and who waits. */
static __thread unsigned running, limit = CHECK_DEFAULT_LIMIT;
static __thread h2o_linklist_t waiting; /* struct check.waiting, oldest first */

/* One check, in io->pool; its dispose callback gives the slot back (or leaves the queue)
 * when the request goes away first. */
struct check {
    struct lfs_storage *storage;
    struct lfs_io io;
    struct lfs_object_key key;
    uint64_t size;
    lfs_storage_check_cb cb;
    void *arg;
    EVP_MD_CTX *md;
    struct lfs_storage_stream *stream;
    char *buf;
    struct lfs_storage_check_result result;
    h2o_linklist_t waiting;
    bool *finished; /* set while pump runs: the callback may free the check */
    bool active, in_pump, again;
};

static void check_start(struct check *c);

/* Gives a slot back and starts the oldest waiting check. */
static void release_slot(struct check *c)
{
    if (!c->active)
        return;
    c->active = false;
    running--;
    if (running < limit && waiting.next != NULL && !h2o_linklist_is_empty(&waiting)) {
        struct check *next = H2O_STRUCT_FROM_MEMBER(struct check, waiting, waiting.next);
        h2o_linklist_unlink(&next->waiting);
        check_start(next);
    }
}

static void check_dispose(void *p)
{
    struct check *c = p;
    if (h2o_linklist_is_linked(&c->waiting))
        h2o_linklist_unlink(&c->waiting);
    if (c->md != NULL)
        EVP_MD_CTX_free(c->md);
    c->md = NULL;
    release_slot(c);
}

static void check_finish(struct check *c, const struct lfs_error *err)
{
    if (c->finished != NULL)
        *c->finished = true;
    if (c->md != NULL)
        EVP_MD_CTX_free(c->md);
    c->md = NULL;
    release_slot(c);
    c->cb(c->arg, err == NULL ? &c->result : NULL, err);
}

static void check_done(struct check *c)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(c->md, md, &mdlen);
    lfs_hex_encode(md, mdlen, c->result.sha256);
    c->result.matches = c->result.bytes == c->size && strcmp(c->result.sha256, c->key.oid) == 0;
    check_finish(c, NULL);
}

static void pump(struct check *c);

static void on_read(void *arg, ssize_t n, const struct lfs_error *err)
{
    struct check *c = arg;
    if (n < 0) {
        check_finish(c, err);
        return;
    }
    if (n == 0) {
        check_done(c);
        return;
    }
    EVP_DigestUpdate(c->md, c->buf, (size_t)n);
    c->result.bytes += (uint64_t)n;
    if (c->in_pump)
        c->again = true; /* answered inside read(): the pump loops instead of recursing */
    else
        pump(c);
}

/* Reads until a read does not answer at once (a remote store) or the object has ended. */
static void pump(struct check *c)
{
    bool finished = false;
    c->finished = &finished;
    c->in_pump = true;
    do {
        c->again = false;
        c->stream->ops->read(c->stream, c->buf, CHECK_CHUNK, on_read, c);
    } while (!finished && c->again);
    if (finished)
        return; /* c may be gone */
    c->in_pump = false;
    c->finished = NULL;
}

static void on_open(void *arg, struct lfs_storage_stream *stream, const struct lfs_error *err)
{
    struct check *c = arg;
    if (err != NULL) {
        check_finish(c, err);
        return;
    }
    c->stream = stream;
    pump(c);
}

static void check_start(struct check *c)
{
    struct lfs_error err = {0};
    c->active = true;
    running++;
    if ((c->md = lfs_storage_sha256_new(&err)) == NULL) {
        check_finish(c, &err);
        return;
    }
    c->storage->ops->open(c->storage, &c->io, &c->key, 0, c->size, on_open, c);
}

void lfs_storage_check_content(struct lfs_storage *storage, struct lfs_io *io,
                               const struct lfs_object_key *key, int64_t size,
                               lfs_storage_check_cb cb, void *arg)
{
    struct check *c = h2o_mem_alloc_shared(io->pool, sizeof(*c), check_dispose);
    *c = (struct check){.storage = storage,
                        .io = *io,
                        .key = {.org_path = h2o_strdup(io->pool, key->org_path, SIZE_MAX).base,
                                .repo = h2o_strdup(io->pool, key->repo, SIZE_MAX).base,
                                .oid = h2o_strdup(io->pool, key->oid, SIZE_MAX).base},
                        .size = size > 0 ? (uint64_t)size : 0,
                        .cb = cb,
                        .arg = arg,
                        .buf = h2o_mem_alloc_pool(io->pool, CHECK_CHUNK)};
    if (waiting.next == NULL)
        h2o_linklist_init_anchor(&waiting);
    if (running < limit) {
        check_start(c);
        return;
    }
    h2o_linklist_insert(&waiting, &c->waiting);
}

void lfs_storage_check_limit(unsigned max)
{
    limit = max > 0 ? max : 1;
}
