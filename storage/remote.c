/* Pieces the storage backends share (storage/remote.h): the per-thread slice timer, the
 * SHA-256 check of an upload and the sliced hashing of a body before a remote backend sends
 * it, the streamed ranged GET behind the remote backends' open, the completion of a HEAD or
 * an upload, giftless's object names and lock names, the lock calls of the remote stores
 * (create, read, delete, and listing then reading, on a struct lfs_storage_lock_store), the
 * bits of the stores' answers they read alike, and what lfsgate scrub needs of a remote store
 * (a listing cursor, the reading of an S3-shaped listing page, the copy-then-delete of a
 * quarantine). A backend keeps what is its own: where the name goes in its URLs, how it signs
 * and starts requests, its conditional headers, and how it words the errors of its store. All
 * request-scoped state here is owned
 * by the request pool. */
#include "storage/remote.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Bytes hashed per turn of the event loop before an upload. */
#define REMOTE_HASH_SLICE (8u << 20)
/* Download buffer between the HTTP client and the reader (twice the client's largest
 * delivery). */
#define REMOTE_STREAM_BUFFER (512u << 10)

/* ---- slices of work on the loop ---- */

static __thread h2o_timeout_t slice_timeout;
static __thread h2o_loop_t *slice_loop;

h2o_timeout_t *lfs_storage_slice_timeout(h2o_loop_t *loop)
{
    if (slice_loop != loop) {
        h2o_timeout_init(loop, &slice_timeout, 1);
        slice_loop = loop;
    }
    return &slice_timeout;
}

void lfs_storage_slice_thread_cleanup(void)
{
    if (slice_loop != NULL)
        h2o_timeout_dispose(slice_loop, &slice_timeout);
    slice_loop = NULL;
}

/* ---- the SHA-256 check of an upload ---- */

EVP_MD_CTX *lfs_storage_sha256_new(struct lfs_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1)
        return md;
    EVP_MD_CTX_free(md);
    lfs_error_set(err, 500, "out of memory");
    return NULL;
}

int lfs_storage_check_sha256(EVP_MD_CTX *md, const char *oid, struct lfs_error *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(md, digest, &dlen);
    lfs_hex_encode(digest, dlen, hex);
    if (strcmp(hex, oid) == 0)
        return 0;
    return lfs_error_set(err, 422,
                         "uploaded data does not match its oid: expected sha256 %s, got %s; "
                         "nothing was stored",
                         oid, hex);
}

/* A body being hashed, owned by the request pool. */
struct verify {
    h2o_timeout_entry_t slice;
    h2o_loop_t *loop;
    EVP_MD_CTX *md;
    h2o_iovec_t body;
    size_t done;
    const char *oid;
    lfs_storage_done_cb cb;
    void *arg;
};

static void verify_release(struct verify *v)
{
    if (h2o_timeout_is_linked(&v->slice))
        h2o_timeout_unlink(&v->slice);
    if (v->md != NULL)
        EVP_MD_CTX_free(v->md);
    v->md = NULL;
}

static void verify_dispose(void *p)
{
    verify_release(p);
}

static void verify_finish(struct verify *v, const struct lfs_error *err)
{
    verify_release(v);
    v->cb(v->arg, err);
}

/* Hashes up to REMOTE_HASH_SLICE bytes, then yields to the loop; checks once all is hashed. */
static void verify_slice(h2o_timeout_entry_t *entry)
{
    struct verify *v = H2O_STRUCT_FROM_MEMBER(struct verify, slice, entry);
    size_t n = v->body.len - v->done;
    if (n > REMOTE_HASH_SLICE)
        n = REMOTE_HASH_SLICE;
    EVP_DigestUpdate(v->md, v->body.base + v->done, n);
    v->done += n;
    if (v->done < v->body.len) {
        h2o_timeout_link(v->loop, lfs_storage_slice_timeout(v->loop), &v->slice);
        return;
    }
    struct lfs_error err = {0};
    verify_finish(v, lfs_storage_check_sha256(v->md, v->oid, &err) < 0 ? &err : NULL);
}

void lfs_storage_verify_body(struct lfs_io *io, h2o_iovec_t body, const char *oid,
                             lfs_storage_done_cb cb, void *arg)
{
    struct verify *v = h2o_mem_alloc_shared(io->pool, sizeof(*v), verify_dispose);
    *v = (struct verify){.slice = {.cb = verify_slice},
                         .loop = io->ctx->loop,
                         .body = body,
                         .oid = h2o_strdup(io->pool, oid, SIZE_MAX).base,
                         .cb = cb,
                         .arg = arg};
    struct lfs_error err;
    if ((v->md = lfs_storage_sha256_new(&err)) == NULL) {
        verify_finish(v, &err);
        return;
    }
    verify_slice(&v->slice);
}

/* ---- one operation on one object of a remote store ---- */

/* op with its object name copied into pool. */
static struct lfs_storage_remote_op op_copy(const struct lfs_storage_remote_op *op,
                                            h2o_mem_pool_t *pool)
{
    struct lfs_storage_remote_op copy = *op;
    copy.object = h2o_strdup(pool, op->object, SIZE_MAX).base;
    return copy;
}

/* ---- stat: a HEAD of the object ---- */

struct lfs_storage_http_stat {
    struct lfs_storage_remote_op op;
    lfs_storage_stat_cb cb;
    void *arg;
};

struct lfs_storage_http_stat *lfs_storage_http_stat_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_stat_cb cb, void *arg)
{
    struct lfs_storage_http_stat *s = h2o_mem_alloc_pool(io->pool, sizeof(*s));
    *s = (struct lfs_storage_http_stat){.op = op_copy(op, io->pool), .cb = cb, .arg = arg};
    return s;
}

struct lfs_storage_http_list {
    struct lfs_storage_remote_op op;
    h2o_mem_pool_t *pool;
    lfs_storage_listing_parse_fn parse;
    lfs_storage_list_cb cb;
    void *arg;
};

struct lfs_storage_http_list *lfs_storage_http_list_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_listing_parse_fn parse,
                                                        lfs_storage_list_cb cb, void *arg)
{
    struct lfs_storage_http_list *l = h2o_mem_alloc_pool(io->pool, sizeof(*l));
    *l = (struct lfs_storage_http_list){
        .op = op_copy(op, io->pool), .pool = io->pool, .parse = parse, .cb = cb, .arg = arg};
    return l;
}

void lfs_storage_http_list_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err)
{
    struct lfs_storage_http_list *l = arg;
    struct lfs_error e = {0};
    struct lfs_storage_listing *listing = h2o_mem_alloc_pool(l->pool, sizeof(*listing));
    if (err != NULL) {
        l->cb(l->arg, NULL, err);
    } else if (res->status != 200) {
        l->op.status_error(l->op.ctx, &e, res, l->op.what, l->op.object);
        l->cb(l->arg, NULL, &e);
    } else if (l->parse(res->body.base, res->body.len, l->op.object, l->pool, listing) < 0) {
        lfs_error_set(&e, 502, "%s answered %s of \"%s\" with no valid listing", l->op.store,
                      l->op.what, l->op.object);
        l->cb(l->arg, NULL, &e);
    } else {
        l->cb(l->arg, listing, NULL);
    }
}

void lfs_storage_http_stat_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err)
{
    struct lfs_storage_http_stat *s = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        s->cb(s->arg, -1, err);
    } else if (res->status == 200 && res->content_length >= 0) {
        s->cb(s->arg, res->content_length, NULL);
    } else if (res->status == 404) {
        s->cb(s->arg, -1, NULL);
    } else {
        if (res->status == 200)
            lfs_error_set(&e, 502, "%s sent no size for object \"%s\"", s->op.store, s->op.object);
        else
            s->op.status_error(s->op.ctx, &e, res, s->op.what, s->op.object);
        s->cb(s->arg, -1, &e);
    }
}

/* ---- a call whose answer is only success or failure ---- */

struct lfs_storage_http_done {
    struct lfs_storage_remote_op op;
    lfs_storage_done_cb cb;
    void *arg;
};

struct lfs_storage_http_done *lfs_storage_http_done_new(struct lfs_io *io,
                                                        const struct lfs_storage_remote_op *op,
                                                        lfs_storage_done_cb cb, void *arg)
{
    struct lfs_storage_http_done *d = h2o_mem_alloc_pool(io->pool, sizeof(*d));
    *d = (struct lfs_storage_http_done){.op = op_copy(op, io->pool), .cb = cb, .arg = arg};
    return d;
}

void lfs_storage_http_done_on_done(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err)
{
    struct lfs_storage_http_done *d = arg;
    struct lfs_error e = {0};
    if (err != NULL) {
        d->cb(d->arg, err);
    } else if (res->status >= 200 && res->status < 300) {
        d->cb(d->arg, NULL);
    } else {
        d->op.status_error(d->op.ctx, &e, res, d->op.what, d->op.object);
        d->cb(d->arg, &e);
    }
}

/* ---- open: a ranged GET streamed to the reader ---- */

struct lfs_storage_http_stream {
    struct lfs_storage_stream base;
    h2o_timeout_entry_t kick;
    h2o_context_t *ctx;
    struct lfs_http_call *call;
    struct lfs_storage_remote_op op;
    char *buf;
    size_t cap, start, end;
    size_t want; /* size of the delivery refused while paused */
    bool paused, opened, done;
    bool whole; /* a 200 with the whole object: aborted once the range was in */
    uint64_t offset, expected, received;
    struct lfs_error err; /* status != 0: the transfer failed */
    char errbody[2048];
    size_t errlen;
    lfs_storage_open_cb open_cb;
    void *open_arg;
    /* the pending read, when rcb != NULL */
    char *rbuf;
    size_t rcap;
    lfs_storage_read_cb rcb;
    void *rarg;
    char range[64];
};

static void stream_dispose(void *p)
{
    struct lfs_storage_http_stream *s = p;
    if (h2o_timeout_is_linked(&s->kick))
        h2o_timeout_unlink(&s->kick);
    free(s->buf);
    s->buf = NULL;
}

static void stream_schedule(struct lfs_storage_http_stream *s)
{
    if (!h2o_timeout_is_linked(&s->kick))
        h2o_timeout_link(s->ctx->loop, &s->ctx->zero_timeout, &s->kick);
}

/* Serves the pending read if data (or the end) is there. */
static void stream_serve(struct lfs_storage_http_stream *s)
{
    if (s->rcb == NULL)
        return;
    lfs_storage_read_cb cb = s->rcb;
    void *arg = s->rarg;
    size_t avail = s->end - s->start;
    if (avail > 0) {
        size_t n = avail < s->rcap ? avail : s->rcap;
        memcpy(s->rbuf, s->buf + s->start, n);
        s->start += n;
        if (s->start == s->end)
            s->start = s->end = 0;
        s->rcb = NULL;
        /* Resume before the callback: the client may deliver more at once, into buf. */
        if (s->paused && s->cap - (s->end - s->start) >= s->want) {
            s->paused = false;
            lfs_http_resume(s->call);
        }
        cb(arg, (ssize_t)n, NULL);
    } else if (s->done) {
        s->rcb = NULL;
        if (s->err.status != 0)
            cb(arg, -1, &s->err);
        else
            cb(arg, 0, NULL);
    }
}

static void stream_kick(h2o_timeout_entry_t *entry)
{
    struct lfs_storage_http_stream *s =
        H2O_STRUCT_FROM_MEMBER(struct lfs_storage_http_stream, kick, entry);
    if (!s->opened) {
        if (s->done && s->err.status != 0) {
            s->opened = true;
            s->open_cb(s->open_arg, NULL, &s->err);
        } else if (s->end > s->start || s->done) {
            s->opened = true;
            s->open_cb(s->open_arg, &s->base, NULL);
        }
        return;
    }
    stream_serve(s);
}

static void stream_read(struct lfs_storage_stream *stream, char *buf, size_t cap,
                        lfs_storage_read_cb cb, void *arg)
{
    struct lfs_storage_http_stream *s = (struct lfs_storage_http_stream *)stream;
    s->rbuf = buf;
    s->rcap = cap;
    s->rcb = cb;
    s->rarg = arg;
    stream_serve(s);
}

static const struct lfs_storage_stream_ops http_stream_ops = {.read = stream_read};

struct lfs_storage_http_stream *lfs_storage_http_stream_new(struct lfs_io *io,
                                                            const struct lfs_storage_remote_op *op,
                                                            uint64_t offset, uint64_t length,
                                                            lfs_storage_open_cb cb, void *arg)
{
    struct lfs_storage_http_stream *s = h2o_mem_alloc_shared(io->pool, sizeof(*s), stream_dispose);
    memset(s, 0, sizeof(*s));
    s->base.ops = &http_stream_ops;
    s->kick.cb = stream_kick;
    s->ctx = io->ctx;
    s->op = op_copy(op, io->pool);
    s->offset = offset;
    s->expected = length;
    s->open_cb = cb;
    s->open_arg = arg;
    if (length == 0) {
        s->done = s->opened = true;
        cb(arg, &s->base, NULL);
        return NULL;
    }
    s->cap = REMOTE_STREAM_BUFFER;
    if ((s->buf = malloc(s->cap)) == NULL) {
        struct lfs_error err;
        lfs_error_set(&err, 500, "out of memory");
        lfs_storage_http_stream_fail(s, &err);
        return NULL;
    }
    snprintf(s->range, sizeof(s->range), "bytes=%" PRIu64 "-%" PRIu64, offset, offset + length - 1);
    return s;
}

const char *lfs_storage_http_stream_range(const struct lfs_storage_http_stream *s)
{
    return s->range;
}

long lfs_storage_http_stream_timeout_ms(const struct lfs_storage_http_stream *s)
{
    return 60000 + (long)(s->expected / 100);
}

void lfs_storage_http_stream_started(struct lfs_storage_http_stream *s, struct lfs_http_call *call)
{
    /* NULL when the call already ended: its callback has run. */
    s->call = call;
}

void lfs_storage_http_stream_fail(struct lfs_storage_http_stream *s, const struct lfs_error *err)
{
    s->opened = true;
    s->open_cb(s->open_arg, NULL, err);
}

int lfs_storage_http_stream_on_data(void *arg, long status, const char *data, size_t len)
{
    struct lfs_storage_http_stream *s = arg;
    if (status != 200 && status != 206) {
        /* An error answer: its body is kept for the message. */
        size_t room = sizeof(s->errbody) - s->errlen;
        if (len < room)
            room = len;
        memcpy(s->errbody + s->errlen, data, room);
        s->errlen += room;
        return 0;
    }
    if (status == 200 && s->offset != 0) {
        lfs_error_set(&s->err, 502, "%s ignored the range asked of object \"%s\"", s->op.store,
                      s->op.object);
        return -1;
    }
    if (s->received + len > s->expected) {
        /* A 200 for the whole object when a prefix was asked: keep what was asked. */
        if (status == 200 && s->received < s->expected) {
            len = (size_t)(s->expected - s->received);
            s->whole = true;
        } else {
            lfs_error_set(&s->err, 502, "%s: object \"%s\" is longer than expected", s->op.store,
                          s->op.object);
            return -1;
        }
    }
    if (s->start > 0 && s->cap - s->end < len) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    if (s->cap - s->end < len) {
        if (s->end > 0) {
            s->paused = true;
            s->want = len;
            stream_schedule(s);
            return 1;
        }
        /* Empty and still too small for one delivery: grow to it. */
        char *nb = realloc(s->buf, len);
        if (nb == NULL) {
            lfs_error_set(&s->err, 500, "out of memory");
            return -1;
        }
        s->buf = nb;
        s->cap = len;
    }
    memcpy(s->buf + s->end, data, len);
    s->end += len;
    s->received += len;
    stream_schedule(s);
    return s->whole ? -1 : 0;
}

void lfs_storage_http_stream_on_done(void *arg, const struct lfs_http_response *res,
                                     const struct lfs_error *err)
{
    struct lfs_storage_http_stream *s = arg;
    s->done = true;
    s->paused = false;
    s->call = NULL;
    if (s->whole && s->received == s->expected) {
        /* we aborted on purpose once we had everything */
    } else if (s->err.status != 0) {
        /* our own reason for aborting */
    } else if (err != NULL) {
        s->err = *err;
    } else if (res->status == 404) {
        lfs_error_set(&s->err, 404, "object \"%s\" does not exist in %s", s->op.object,
                      s->op.store);
    } else if (res->status != 200 && res->status != 206) {
        struct lfs_http_response copy = *res;
        copy.body = h2o_iovec_init(s->errbody, s->errlen);
        s->op.status_error(s->op.ctx, &s->err, &copy, s->op.what, s->op.object);
    } else if (s->received != s->expected) {
        lfs_error_set(&s->err, 502,
                      "%s: object \"%s\" ended after %" PRIu64 " of %" PRIu64 " bytes", s->op.store,
                      s->op.object, s->received, s->expected);
    }
    stream_schedule(s);
}

/* ---- small pieces of the stores' answers ---- */

long lfs_storage_upload_timeout_ms(size_t len)
{
    return 60000 + (long)(len / 1000);
}

void lfs_storage_xml_error_code(h2o_iovec_t body, char *code, size_t size)
{
    code[0] = '\0';
    if (body.base == NULL || body.len == 0)
        return;
    size_t at = h2o_strstr(body.base, body.len, H2O_STRLIT("<Code>"));
    if (at == SIZE_MAX)
        return;
    const char *b = body.base + at + 6, *end = body.base + body.len;
    size_t i = 0;
    while (b < end && i + 1 < size &&
           ((*b >= 'A' && *b <= 'Z') || (*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9')))
        code[i++] = *b++;
    code[i] = '\0';
}

bool lfs_storage_xml_field(const char *body, size_t len, const char *tag, const char **start,
                           size_t *n)
{
    char open[64], close[64];
    int on = snprintf(open, sizeof(open), "<%s>", tag);
    int cn = snprintf(close, sizeof(close), "</%s>", tag);
    if (body == NULL || on <= 0 || (size_t)on >= sizeof(open) || (size_t)cn >= sizeof(close))
        return false;
    size_t a = h2o_strstr(body, len, open, (size_t)on);
    if (a == SIZE_MAX)
        return false;
    a += (size_t)on;
    size_t b = h2o_strstr(body + a, len - a, close, (size_t)cn);
    if (b == SIZE_MAX)
        return false;
    *start = body + a;
    *n = b;
    return true;
}

/* ---- object names ---- */

int lfs_storage_prefix_normalize(const char *in, char **out)
{
    while (*in == '/')
        in++;
    size_t len = strlen(in);
    while (len > 0 && in[len - 1] == '/')
        len--;
    char *p = strndup(in, len);
    if (p == NULL)
        return -1;
    for (const char *seg = p; len > 0;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
        bool bad =
            n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
        for (size_t i = 0; i < n && !bad; i++)
            bad = (unsigned char)seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '\\';
        if (bad) {
            free(p);
            return 1;
        }
        if (slash == NULL)
            break;
        seg = slash + 1;
    }
    *out = p;
    return 0;
}

/* "[prefix/]<org_path>/<repo>/" into a pool buffer with `more` bytes to spare. */
static struct lfs_strbuf repo_prefix(const char *prefix, const char *org_path, const char *repo,
                                     size_t more, h2o_mem_pool_t *pool)
{
    size_t n = strlen(prefix) + strlen(org_path) + strlen(repo) + more + 4;
    struct lfs_strbuf b = {.buf = h2o_mem_alloc_pool(pool, n), .cap = n};
    if (prefix[0] != '\0') {
        lfs_strbuf_adds(&b, prefix);
        lfs_strbuf_add(&b, "/", 1);
    }
    lfs_strbuf_adds(&b, org_path);
    lfs_strbuf_add(&b, "/", 1);
    lfs_strbuf_adds(&b, repo);
    lfs_strbuf_add(&b, "/", 1);
    return b;
}

const char *lfs_storage_repo_prefix(const char *prefix, const struct lfs_object_key *key,
                                    h2o_mem_pool_t *pool, struct lfs_error *err)
{
    if (!lfs_segments_valid(key->org_path, strlen(key->org_path)) ||
        !lfs_segment_valid(key->repo, strlen(key->repo))) {
        lfs_error_set(err, 422, "invalid repository name");
        return NULL;
    }
    return repo_prefix(prefix, key->org_path, key->repo, 0, pool).buf;
}

const char *lfs_storage_object_name(const char *prefix, const struct lfs_object_key *key,
                                    h2o_mem_pool_t *pool, struct lfs_error *err)
{
    if (!lfs_segments_valid(key->org_path, strlen(key->org_path)) ||
        !lfs_segment_valid(key->repo, strlen(key->repo)) ||
        !lfs_oid_valid(key->oid, strlen(key->oid))) {
        lfs_error_set(err, 422, "invalid object key");
        return NULL;
    }
    struct lfs_strbuf b = repo_prefix(prefix, key->org_path, key->repo, LFS_OID_LEN, pool);
    lfs_strbuf_adds(&b, key->oid);
    return b.buf;
}

bool lfs_storage_lock_name_valid(const char *name)
{
    size_t i = 0;
    for (; name[i] != '\0'; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return i == LFS_LOCK_NAME_LEN;
}

const char *lfs_storage_lock_name(const char *prefix, const struct lfs_lock_key *key,
                                  bool with_name, h2o_mem_pool_t *pool, struct lfs_error *err)
{
    if (!lfs_segments_valid(key->org_path, strlen(key->org_path)) ||
        !lfs_segment_valid(key->repo, strlen(key->repo)) ||
        (with_name && !lfs_storage_lock_name_valid(key->name))) {
        lfs_error_set(err, 422, "invalid lock key");
        return NULL;
    }
    struct lfs_strbuf b =
        repo_prefix(prefix, key->org_path, key->repo, LFS_LOCK_NAME_LEN + 16, pool);
    lfs_strbuf_add(&b, "locks/", 6);
    if (with_name) {
        lfs_strbuf_adds(&b, key->name);
        lfs_strbuf_add(&b, ".lock", 5);
    }
    return b.buf;
}

int lfs_storage_lock_outcome(const struct lfs_storage_remote_op *op,
                             const struct lfs_http_response *res, const struct lfs_error *err,
                             long no1, long no2, struct lfs_error *out)
{
    if (err != NULL) {
        *out = *err;
        return -1;
    }
    if (res->status >= 200 && res->status < 300)
        return 1;
    if (res->status != 0 && (res->status == no1 || res->status == no2))
        return 0;
    op->status_error(op->ctx, out, res, op->what, op->object);
    return -1;
}

void lfs_storage_sign_now(int rc, const struct lfs_storage_request *out,
                          const struct lfs_error *err, lfs_storage_sign_cb cb, void *arg)
{
    if (rc < 0)
        cb(arg, NULL, err);
    else
        cb(arg, out, NULL);
}

/* ---- locks on a remote store ---- */

/* One lock call, or one listing with its reads, in the request pool. */
struct remote_lock {
    const struct lfs_storage_lock_store *s;
    void *ctx;
    struct lfs_io io;
    const char *object; /* the lock's name, or the locks' prefix when listing */
    lfs_storage_lock_done_cb done;
    lfs_storage_lock_read_cb read;
    lfs_storage_lock_list_cb list;
    void *arg;
    /* listing */
    size_t limit, started, pending;
    struct lfs_lock_page page;
    struct lfs_lock_record *recs;
    const char *last_listed; /* the last lock name of the listing */
    bool failed;
    struct lfs_error err;
};

/* The call on key's lock (with_name) or the listing of its repository's locks (key->name, when
 * set, checked), or NULL with err 422. */
static struct remote_lock *remote_lock_new(struct lfs_storage *storage, struct lfs_io *io,
                                           const struct lfs_lock_key *key, bool with_name,
                                           void *arg, struct lfs_error *err)
{
    const struct lfs_storage_lock_store *s = storage->ops->lock_store;
    const char *prefix = s->prefix(storage);
    const char *object = with_name ? lfs_storage_lock_name(prefix, key, true, io->pool, err)
                                   : lfs_storage_lock_list_prefix(prefix, key, io->pool, err);
    if (object == NULL)
        return NULL;
    struct remote_lock *l = h2o_mem_alloc_pool(io->pool, sizeof(*l));
    *l = (struct remote_lock){.s = s, .ctx = storage, .io = *io, .object = object, .arg = arg};
    return l;
}

/* lfs_storage_lock_outcome of a `verb` call on `object` (a lock of l), worded by the store. */
static int remote_lock_outcome(const struct remote_lock *l, enum lfs_storage_lock_verb verb,
                               const char *object, const struct lfs_http_response *res,
                               const struct lfs_error *err, long no1, long no2,
                               struct lfs_error *out)
{
    struct lfs_storage_remote_op op = {.store = l->s->store,
                                       .what = l->s->what[verb],
                                       .object = object,
                                       .status_error = l->s->status_error,
                                       .ctx = l->ctx};
    return lfs_storage_lock_outcome(&op, res, err, no1, no2, out);
}

static void on_remote_lock_created(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err)
{
    struct remote_lock *l = arg;
    struct lfs_error e = {0};
    int rc = remote_lock_outcome(l, LFS_STORAGE_LOCK_CREATE, l->object, res, err, l->s->taken[0],
                                 l->s->taken[1], &e);
    l->done(l->arg, rc, rc < 0 ? &e : NULL);
}

void lfs_storage_remote_lock_create(struct lfs_storage *storage, struct lfs_io *io,
                                    const struct lfs_lock_key *key, h2o_iovec_t content,
                                    lfs_storage_lock_done_cb cb, void *arg)
{
    struct lfs_error err = {0};
    struct remote_lock *l = remote_lock_new(storage, io, key, true, arg, &err);
    if (l == NULL || content.len > LFS_LOCK_CONTENT_MAX) {
        if (l != NULL)
            lfs_error_set(&err, 422, "lock content too large");
        cb(arg, -1, &err);
        return;
    }
    l->done = cb;
    l->s->send(storage, io, LFS_STORAGE_LOCK_CREATE, l->object, NULL, content,
               on_remote_lock_created, l);
}

/* The record of a READ of the lock `object`: 1 with *rec, 0 when absent, -1 with e. */
static int remote_lock_record(const struct remote_lock *l, const char *object,
                              const struct lfs_http_response *res, const struct lfs_error *err,
                              struct lfs_lock_record *rec, struct lfs_error *e)
{
    int rc = remote_lock_outcome(l, LFS_STORAGE_LOCK_READ, object, res, err, 404, 0, e);
    const char *version = rc == 1 ? l->s->version_of(res) : NULL;
    if (rc == 1 && (version == NULL || res->body.len > LFS_LOCK_CONTENT_MAX)) {
        lfs_error_set(e, 502,
                      "%s answered the read of lock \"%s\" without %s, or with more than a lock",
                      l->s->store, object, l->s->version_name);
        rc = -1;
    }
    if (rc == 1) {
        const char *slash = strrchr(object, '/');
        *rec = (struct lfs_lock_record){
            .name = h2o_strdup(l->io.pool, slash + 1, LFS_LOCK_NAME_LEN).base,
            .content = res->body.base != NULL ? res->body : h2o_iovec_init("", 0),
            .version = version};
    }
    return rc;
}

static void on_remote_lock_read(void *arg, const struct lfs_http_response *res,
                                const struct lfs_error *err)
{
    struct remote_lock *l = arg;
    struct lfs_error e = {0};
    struct lfs_lock_record *rec = h2o_mem_alloc_pool(l->io.pool, sizeof(*rec));
    int rc = remote_lock_record(l, l->object, res, err, rec, &e);
    l->read(l->arg, rc == 1 ? rec : NULL, rc < 0 ? &e : NULL);
}

void lfs_storage_remote_lock_read(struct lfs_storage *storage, struct lfs_io *io,
                                  const struct lfs_lock_key *key, lfs_storage_lock_read_cb cb,
                                  void *arg)
{
    struct lfs_error err = {0};
    struct remote_lock *l = remote_lock_new(storage, io, key, true, arg, &err);
    if (l == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    l->read = cb;
    l->s->send(storage, io, LFS_STORAGE_LOCK_READ, l->object, NULL, h2o_iovec_init(NULL, 0),
               on_remote_lock_read, l);
}

static void on_remote_lock_deleted(void *arg, const struct lfs_http_response *res,
                                   const struct lfs_error *err)
{
    struct remote_lock *l = arg;
    struct lfs_error e = {0};
    int rc = remote_lock_outcome(l, LFS_STORAGE_LOCK_DELETE, l->object, res, err, 404, 412, &e);
    l->done(l->arg, rc, rc < 0 ? &e : NULL);
}

void lfs_storage_remote_lock_delete(struct lfs_storage *storage, struct lfs_io *io,
                                    const struct lfs_lock_key *key, const char *version,
                                    lfs_storage_lock_done_cb cb, void *arg)
{
    struct lfs_error err = {0};
    struct remote_lock *l = remote_lock_new(storage, io, key, true, arg, &err);
    if (l == NULL || !l->s->version_valid(version)) {
        if (l != NULL)
            lfs_error_set(&err, 422, "invalid lock version");
        cb(arg, -1, &err);
        return;
    }
    l->done = cb;
    l->s->send(storage, io, LFS_STORAGE_LOCK_DELETE, l->object,
               h2o_strdup(io->pool, version, SIZE_MAX).base, h2o_iovec_init(NULL, 0),
               on_remote_lock_deleted, l);
}

const char *lfs_storage_header_line(h2o_mem_pool_t *pool, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = h2o_mem_alloc_pool(pool, n);
    snprintf(line, n, "%s: %s", name, value);
    return line;
}

bool lfs_storage_lock_etag_valid(const char *version)
{
    size_t n = strlen(version);
    return n > 0 && n <= 128 && strpbrk(version, "\r\n") == NULL;
}

const char *lfs_storage_lock_list_prefix(const char *prefix, const struct lfs_lock_key *key,
                                         h2o_mem_pool_t *pool, struct lfs_error *err)
{
    const char *object = lfs_storage_lock_name(prefix, key, false, pool, err);
    if (object != NULL && key->name != NULL && !lfs_storage_lock_name_valid(key->name)) {
        lfs_error_set(err, 422, "invalid lock key");
        return NULL;
    }
    return object;
}

/* ---- listing, then a read per listed lock ---- */

/* One read of a listed lock. */
struct remote_lock_get {
    struct remote_lock *list;
    size_t slot;
    const char *object;
};

static void remote_lock_list_finish(struct remote_lock *l)
{
    if (l->failed) {
        l->list(l->arg, NULL, &l->err);
        return;
    }
    /* Locks removed between the listing and their read leave a hole: close it. */
    size_t n = 0;
    for (size_t i = 0; i < l->page.n; i++)
        if (l->recs[i].name != NULL)
            l->recs[n++] = l->recs[i];
    l->page.n = n;
    l->page.records = l->recs;
    if (l->page.next != NULL) /* more to come: after the last name listed, read or not */
        l->page.next = l->last_listed;
    l->list(l->arg, &l->page, NULL);
}

static void remote_lock_read_next(struct remote_lock *l);

static void on_listed_lock(void *arg, const struct lfs_http_response *res,
                           const struct lfs_error *err)
{
    struct remote_lock_get *g = arg;
    struct remote_lock *l = g->list;
    struct lfs_error e = {0};
    int rc = remote_lock_record(l, g->object, res, err, &l->recs[g->slot], &e);
    if (rc < 0 && !l->failed) {
        l->failed = true;
        l->err = e;
    }
    if (rc != 1)
        l->recs[g->slot].name = NULL;
    l->pending--;
    if (l->started < l->page.n && !l->failed)
        remote_lock_read_next(l);
    else if (l->pending == 0)
        remote_lock_list_finish(l);
}

/* Starts the read of the next listed lock. */
static void remote_lock_read_next(struct remote_lock *l)
{
    size_t i = l->started++;
    struct remote_lock_get *g = h2o_mem_alloc_pool(l->io.pool, sizeof(*g));
    size_t olen = strlen(l->object) + LFS_LOCK_NAME_LEN + 6;
    char *object = h2o_mem_alloc_pool(l->io.pool, olen);
    snprintf(object, olen, "%s%s.lock", l->object, l->recs[i].name);
    *g = (struct remote_lock_get){.list = l, .slot = i, .object = object};
    l->pending++;
    l->s->send(l->ctx, &l->io, LFS_STORAGE_LOCK_READ, object, NULL, h2o_iovec_init(NULL, 0),
               on_listed_lock, g);
}

static void on_remote_lock_list(void *arg, const struct lfs_http_response *res,
                                const struct lfs_error *err)
{
    struct remote_lock *l = arg;
    struct lfs_error e = {0};
    struct lfs_storage_remote_op op = {.store = l->s->store,
                                       .what = "lock listing",
                                       .object = l->object,
                                       .status_error = l->s->status_error,
                                       .ctx = l->ctx};
    if (lfs_storage_lock_outcome(&op, res, err, 0, 0, &e) < 0) {
        l->list(l->arg, NULL, &e);
        return;
    }
    h2o_iovec_t xml = res->body.base != NULL ? res->body : h2o_iovec_init("", 0);
    if (h2o_strstr(xml.base, xml.len, H2O_STRLIT("<ListBucketResult")) == SIZE_MAX) {
        lfs_error_set(&e, 502, "%s answered the listing of %s with no listing", l->s->store,
                      l->object);
        l->list(l->arg, NULL, &e);
        return;
    }
    l->recs = h2o_mem_alloc_pool(l->io.pool, (l->limit + 1) * sizeof(*l->recs));
    const char *p = xml.base, *end = xml.base + xml.len;
    size_t plen = strlen(l->object);
    while (l->page.n < l->limit) {
        size_t at = h2o_strstr(p, (size_t)(end - p), H2O_STRLIT("<Key>"));
        if (at == SIZE_MAX)
            break;
        const char *k = p + at + 5;
        size_t kend = h2o_strstr(k, (size_t)(end - k), H2O_STRLIT("</Key>"));
        if (kend == SIZE_MAX)
            break;
        p = k + kend;
        /* "<prefix><40 hex>.lock": other names under locks/ are not locks. */
        if (kend != plen + LFS_LOCK_NAME_LEN + 5 || memcmp(k, l->object, plen) != 0 ||
            memcmp(k + plen + LFS_LOCK_NAME_LEN, ".lock", 5) != 0)
            continue;
        char *name = h2o_mem_alloc_pool(l->io.pool, LFS_LOCK_NAME_LEN + 1);
        memcpy(name, k + plen, LFS_LOCK_NAME_LEN);
        name[LFS_LOCK_NAME_LEN] = '\0';
        if (!lfs_storage_lock_name_valid(name))
            continue;
        l->recs[l->page.n++] = (struct lfs_lock_record){.name = name};
        l->last_listed = name;
    }
    bool truncated =
        h2o_strstr(xml.base, xml.len, H2O_STRLIT("<IsTruncated>true</IsTruncated>")) != SIZE_MAX;
    l->page.next = truncated || h2o_strstr(p, (size_t)(end - p), H2O_STRLIT("<Key>")) != SIZE_MAX
                       ? "" /* set in remote_lock_list_finish */
                       : NULL;
    if (l->page.n == 0) {
        l->page.next = NULL;
        remote_lock_list_finish(l);
        return;
    }
    while (l->started < l->page.n && l->pending < LFS_STORAGE_LOCK_READS && !l->failed)
        remote_lock_read_next(l);
}

void lfs_storage_remote_lock_list(struct lfs_storage *storage, struct lfs_io *io,
                                  const struct lfs_lock_key *key, size_t limit,
                                  lfs_storage_lock_list_cb cb, void *arg)
{
    struct lfs_error err = {0};
    struct remote_lock *l = remote_lock_new(storage, io, key, false, arg, &err);
    if (l == NULL) {
        cb(arg, NULL, &err);
        return;
    }
    const char *object = l->object;
    l->list = cb;
    l->limit = limit < 1 ? 1 : limit > l->s->list_max ? l->s->list_max : limit;
    const char *after = NULL;
    if (key->name != NULL) {
        size_t alen = strlen(object) + LFS_LOCK_NAME_LEN + 6;
        char *a = h2o_mem_alloc_pool(io->pool, alen);
        snprintf(a, alen, "%s%s.lock", object, key->name);
        after = a;
    }
    l->s->send_list(storage, io, object, after, l->limit, on_remote_lock_list, l);
}

/* ---- scanning a remote store and moving objects aside (lfsgate scrub) ---- */

void lfs_storage_scan_cursor_close(struct lfs_storage_scan *scan)
{
    struct lfs_storage_scan_cursor *c = (struct lfs_storage_scan_cursor *)scan;
    if (c == NULL)
        return;
    free(c->prefix);
    free(c->marker);
    free(c->org_path);
    free(c->repo);
    free(c);
}

int lfs_storage_scan_cursor_open(struct lfs_storage *storage, const char *path_prefix,
                                 const char *org_path, const char *repo,
                                 struct lfs_storage_scan **out, struct lfs_error *err)
{
    if (org_path != NULL &&
        (!lfs_segments_valid(org_path, strlen(org_path)) || !lfs_segment_valid(repo, strlen(repo))))
        return lfs_error_set(err, 422, "invalid repository name \"%s/%s\"", org_path, repo);
    struct lfs_storage_scan_cursor *c = calloc(1, sizeof(*c));
    size_t n = strlen(path_prefix) + (org_path ? strlen(org_path) + strlen(repo) : 0) + 4;
    struct lfs_strbuf b = {.buf = malloc(n), .cap = n};
    if (c != NULL)
        *c = (struct lfs_storage_scan_cursor){.storage = storage, .prefix = b.buf};
    if (c == NULL || b.buf == NULL ||
        (org_path != NULL &&
         ((c->org_path = strdup(org_path)) == NULL || (c->repo = strdup(repo)) == NULL))) {
        if (c == NULL)
            free(b.buf);
        lfs_storage_scan_cursor_close((struct lfs_storage_scan *)c);
        return lfs_error_set(err, 500, "out of memory");
    }
    b.buf[0] = '\0'; /* "" for a whole store without a path_prefix */
    if (path_prefix[0] != '\0') {
        lfs_strbuf_adds(&b, path_prefix);
        lfs_strbuf_add(&b, "/", 1);
    }
    if (org_path != NULL) {
        lfs_strbuf_adds(&b, org_path);
        lfs_strbuf_add(&b, "/", 1);
        lfs_strbuf_adds(&b, repo);
        lfs_strbuf_add(&b, "/", 1);
    }
    *out = (struct lfs_storage_scan *)c;
    return 0;
}

bool lfs_storage_scan_entry(const struct lfs_storage_scan_cursor *c, const char *name, int64_t size,
                            h2o_mem_pool_t *pool, struct lfs_storage_scan_entry *e)
{
    if (c->org_path != NULL) {
        if (!lfs_oid_valid(name, strlen(name)) || size < 0)
            return false;
        *e = (struct lfs_storage_scan_entry){
            .org_path = c->org_path, .repo = c->repo, .oid = name, .size = size};
        return true;
    }
    size_t len = strlen(name);
    if (strncmp(name, LFS_STORAGE_QUARANTINE_DIR "/", sizeof(LFS_STORAGE_QUARANTINE_DIR)) == 0 ||
        len < LFS_OID_LEN + 4 || size < 0)
        return false;
    const char *oid = name + len - LFS_OID_LEN;
    char *copy = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(copy, name, len + 1);
    copy[len - LFS_OID_LEN - 1] = '\0';
    char *slash = strrchr(copy, '/');
    if (oid[-1] != '/' || !lfs_oid_valid(oid, LFS_OID_LEN) || slash == NULL)
        return false;
    *slash = '\0';
    if (!lfs_segments_valid(copy, strlen(copy)) || !lfs_segment_valid(slash + 1, strlen(slash + 1)))
        return false;
    *e = (struct lfs_storage_scan_entry){
        .org_path = copy, .repo = slash + 1, .oid = oid, .size = size};
    return true;
}

bool lfs_storage_scan_end(const struct lfs_storage_scan_cursor *c, lfs_storage_scan_cb cb,
                          void *arg)
{
    static const struct lfs_storage_scan_page end = {.done = true};
    if (!c->done)
        return false;
    cb(arg, &end, NULL);
    return true;
}

struct lfs_storage_xml_scan {
    struct lfs_storage_scan_cursor *c;
    h2o_mem_pool_t *pool;
    struct lfs_storage_remote_op op;
    const char *next_tag;
    lfs_storage_scan_cb cb;
    void *arg;
};

struct lfs_storage_xml_scan *lfs_storage_xml_scan_new(struct lfs_io *io,
                                                      struct lfs_storage_scan_cursor *c,
                                                      const struct lfs_storage_remote_op *op,
                                                      const char *next_tag, lfs_storage_scan_cb cb,
                                                      void *arg)
{
    struct lfs_storage_xml_scan *x = h2o_mem_alloc_pool(io->pool, sizeof(*x));
    *x = (struct lfs_storage_xml_scan){.c = c,
                                       .pool = io->pool,
                                       .op = op_copy(op, io->pool),
                                       .next_tag = next_tag,
                                       .cb = cb,
                                       .arg = arg};
    return x;
}

/* XML text with its five predefined entities decoded, malloc'd (a continuation marker is sent
 * back as the name it stands for); NULL when out of memory. */
static char *xml_text(const char *s, size_t n)
{
    static const char *const ent[][2] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; out != NULL && i < n;) {
        size_t k = 0;
        while (k < 5 && (s[i] != '&' || strncmp(s + i, ent[k][0], strlen(ent[k][0])) != 0 ||
                         i + strlen(ent[k][0]) > n))
            k++;
        if (k < 5) {
            *o++ = ent[k][1][0];
            i += strlen(ent[k][0]);
        } else {
            *o++ = s[i++];
        }
    }
    if (out != NULL)
        *o = '\0';
    return out;
}

void lfs_storage_xml_scan_on_done(void *arg, const struct lfs_http_response *res,
                                  const struct lfs_error *err)
{
    struct lfs_storage_xml_scan *x = arg;
    struct lfs_storage_scan_cursor *c = x->c;
    struct lfs_error e = {0};
    if (err != NULL) {
        x->cb(x->arg, NULL, err);
        return;
    }
    if (res->status != 200) {
        x->op.status_error(x->op.ctx, &e, res, x->op.what, x->op.object);
        x->cb(x->arg, NULL, &e);
        return;
    }
    const char *p = res->body.base != NULL ? res->body.base : "", *end = p + res->body.len;
    if (h2o_strstr(p, res->body.len, H2O_STRLIT("<ListBucketResult")) == SIZE_MAX)
        goto invalid;
    size_t cap = 16, plen = strlen(c->prefix);
    struct lfs_storage_scan_entry *entries = h2o_mem_alloc_pool(x->pool, cap * sizeof(*entries));
    struct lfs_storage_scan_page *page = h2o_mem_alloc_pool(x->pool, sizeof(*page));
    *page = (struct lfs_storage_scan_page){0};
    const char *last = NULL;
    size_t last_len = 0, at;
    while ((at = h2o_strstr(p, (size_t)(end - p), H2O_STRLIT("<Contents>"))) != SIZE_MAX) {
        const char *item = p + at, *key, *size;
        size_t close = h2o_strstr(item, (size_t)(end - item), H2O_STRLIT("</Contents>")), klen,
               slen;
        if (close == SIZE_MAX || !lfs_storage_xml_field(item, close, "Key", &key, &klen) ||
            !lfs_storage_xml_field(item, close, "Size", &size, &slen))
            goto invalid;
        p = item + close;
        last = key;
        last_len = klen;
        char num[24];
        int64_t sz = -1;
        if (slen > 0 && slen < sizeof(num) && strspn(size, "0123456789") >= slen) {
            memcpy(num, size, slen);
            num[slen] = '\0';
            sz = strtoll(num, NULL, 10);
        }
        if (klen <= plen || memcmp(key, c->prefix, plen) != 0)
            continue;
        if (page->n == cap) {
            struct lfs_storage_scan_entry *more =
                h2o_mem_alloc_pool(x->pool, 2 * cap * sizeof(*more));
            memcpy(more, entries, cap * sizeof(*more));
            entries = more;
            cap *= 2;
        }
        /* names of objects need no entity decoding: an escaped name is not giftless's */
        char *name = h2o_mem_alloc_pool(x->pool, klen - plen + 1);
        memcpy(name, key + plen, klen - plen);
        name[klen - plen] = '\0';
        page->n += lfs_storage_scan_entry(c, name, sz, x->pool, &entries[page->n]);
    }
    page->entries = entries;
    const char *flag, *next;
    size_t flen, nlen;
    bool truncated =
        lfs_storage_xml_field(res->body.base, res->body.len, "IsTruncated", &flag, &flen) &&
        flen == 4 && memcmp(flag, "true", 4) == 0;
    char *marker = NULL;
    if (truncated) {
        if (!lfs_storage_xml_field(res->body.base, res->body.len, x->next_tag, &next, &nlen) ||
            nlen == 0) {
            if (strcmp(x->next_tag, "NextMarker") != 0 || last == NULL)
                goto invalid;
            next = last;
            nlen = last_len;
        }
        /* an empty marker would restart the scan, one with a NUL would be cut short: either
         * would list the same names again and again */
        if (nlen == 0 || memchr(next, '\0', nlen) != NULL)
            goto invalid;
        if ((marker = xml_text(next, nlen)) == NULL) {
            lfs_error_set(&e, 500, "out of memory");
            x->cb(x->arg, NULL, &e);
            return;
        }
    }
    free(c->marker);
    c->marker = marker;
    page->done = c->done = !truncated;
    x->cb(x->arg, page, NULL);
    return;
invalid:
    lfs_error_set(&e, 502, "%s answered the listing of \"%s\" with no valid listing", x->op.store,
                  c->prefix);
    x->cb(x->arg, NULL, &e);
}

struct lfs_storage_quarantine *
lfs_storage_quarantine_new(struct lfs_io *io, struct lfs_storage *storage, const char *path_prefix,
                           const struct lfs_object_key *key, const struct lfs_storage_remote_op *op,
                           void (*send_delete)(struct lfs_storage_quarantine *q),
                           lfs_storage_done_cb cb, void *arg)
{
    struct lfs_error err = {0};
    struct lfs_storage_quarantine *q = h2o_mem_alloc_pool(io->pool, sizeof(*q));
    *q = (struct lfs_storage_quarantine){
        .io = *io, .storage = storage, .send_delete = send_delete, .op = *op, .cb = cb, .arg = arg};
    size_t n = strlen(path_prefix) + sizeof(LFS_STORAGE_QUARANTINE_DIR) + 2;
    char *aside_prefix = h2o_mem_alloc_pool(io->pool, n);
    snprintf(aside_prefix, n, "%s%s" LFS_STORAGE_QUARANTINE_DIR, path_prefix,
             path_prefix[0] ? "/" : "");
    if ((q->object = lfs_storage_object_name(path_prefix, key, io->pool, &err)) == NULL ||
        (q->aside = lfs_storage_object_name(aside_prefix, key, io->pool, &err)) == NULL) {
        cb(arg, &err);
        return NULL;
    }
    q->op.what = "copy to quarantine";
    q->op.object = q->aside;
    return q;
}

/* The copy's end: the delete next, or cb with the copy's failure. */
static void quarantine_copied(void *arg, const struct lfs_error *err)
{
    struct lfs_storage_quarantine *q = arg;
    if (err != NULL)
        q->cb(q->arg, err);
    else
        q->send_delete(q);
}

void lfs_storage_quarantine_on_copied(void *arg, const struct lfs_http_response *res,
                                      const struct lfs_error *err)
{
    struct lfs_storage_quarantine *q = arg;
    lfs_storage_http_done_on_done(lfs_storage_http_done_new(&q->io, &q->op, quarantine_copied, q),
                                  res, err);
}

struct lfs_storage_http_done *lfs_storage_quarantine_delete_done(struct lfs_storage_quarantine *q)
{
    struct lfs_storage_remote_op op = q->op;
    op.what = "delete after quarantine";
    op.object = q->object;
    return lfs_storage_http_done_new(&q->io, &op, q->cb, q->arg);
}
