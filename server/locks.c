/* The File Locking API (POST locks, GET locks, POST locks/verify, POST locks/<id>/unlock),
 * under the current and the legacy routes, kept in the storage backend through its lock ops
 * (storage/storage.h) so that every replica sharing the store agrees on every lock with no
 * server of its own. One lock per path: its store name is the first LFS_LOCK_NAME_LEN hex
 * digits of the path's SHA-256, so the store's create-if-absent decides the winner of a race.
 * A lock id is that name, '-', and 24 random hex digits: it finds the lock with one read, and
 * it never names two locks over time, so an unlock with a stale id cannot remove a newer lock
 * on the same path (the store deletes only the version that was read). With LOCKS: false, or
 * a storage without lock ops, every route answers a JSON 404, which git-lfs reads as "no
 * locking" (a 405 would make it warn on every push). Loop thread of the request. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_write.h"
#include "common/metrics.h"
#include "common/util.h"
#include "server/http.h"
#include "server/locks.h"
#include "server/logs.h"

#define LOCK_RANDOM_HEX 24
#define LOCK_ID_LEN (LFS_LOCK_NAME_LEN + 1 + LOCK_RANDOM_HEX)
#define LIMIT_DEFAULT 100
#define LIMIT_MAX LFS_LOCKS_LIMIT_MAX
#define REFSPEC_MAX LFS_LOCKS_REFSPEC_MAX
#define CREATE_ATTEMPTS 3 /* a lock seen taken, then gone when read: try again this often */

/* One locks request in progress, in the request pool. */
struct locks_op {
    struct lfs_request *r;
    struct lfs_storage *st;
    struct lfs_lock_key key;
    char name[LFS_LOCK_NAME_LEN + 1];
    struct lfs_lock lock;  /* create: the new lock; unlock: the lock read */
    h2o_iovec_t content;   /* create: what is stored */
    const char *filter_id; /* GET: the id asked for, or NULL */
    const char *filter_path;
    size_t limit;
    bool verify;
    bool force;
    int attempts;
};

/* ---- validation ---- */

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

const char *lfs_locks_path_problem(const char *p, size_t len)
{
    if (len == 0 || len > LFS_LOCKS_PATH_MAX)
        return "\"path\" must be 1 to 1024 bytes";
    if (strlen(p) != len)
        return "\"path\" must not contain NUL";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return "\"path\" must not contain control characters";
    const char *seg = p;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t slen = (size_t)(p + i - seg);
        if (slen == 0)
            return "\"path\" must be relative to the repository root, without empty segments "
                   "(no leading, trailing or double \"/\")";
        if ((slen == 1 && seg[0] == '.') || (slen == 2 && seg[0] == '.' && seg[1] == '.'))
            return "\"path\" must not contain \".\" or \"..\" segments";
        seg = p + i + 1;
    }
    return NULL;
}

bool lfs_locks_id_valid(const char *id)
{
    return strlen(id) == LOCK_ID_LEN && is_hex(id, LFS_LOCK_NAME_LEN) &&
           id[LFS_LOCK_NAME_LEN] == '-' && is_hex(id + LFS_LOCK_NAME_LEN + 1, LOCK_RANDOM_HEX);
}

/* The lock's store name: the first LFS_LOCK_NAME_LEN hex digits of SHA-256(path). */
static void path_name(const char *path, char *name)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_Digest(path, strlen(path), md, &mdlen, EVP_sha256(), NULL);
    lfs_hex_encode(md, mdlen, hex);
    memcpy(name, hex, LFS_LOCK_NAME_LEN);
    name[LFS_LOCK_NAME_LEN] = '\0';
}

long lfs_locks_parse_limit(const char *s)
{
    if (s == NULL)
        return LIMIT_DEFAULT;
    size_t n = strlen(s);
    if (n == 0 || n > 4 || strspn(s, "0123456789") != n)
        return -1;
    long v = strtol(s, NULL, 10);
    return v >= 1 && v <= LIMIT_MAX ? v : -1;
}

/* ---- stored form ---- */

static const char *pool_strdup(h2o_mem_pool_t *pool, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = h2o_mem_alloc_pool(pool, n);
    memcpy(d, s, n);
    return d;
}

int lfs_locks_lock_parse(h2o_iovec_t content, h2o_mem_pool_t *pool, struct lfs_lock *out)
{
    *out = (struct lfs_lock){0};
    json_t *j = json_loadb(content.base, content.len, JSON_REJECT_DUPLICATES, NULL);
    const char *id, *path, *at, *name, *owner_id;
    int rc = json_unpack(j, "{s:s, s:s, s:s, s:{s:s}, s:s}", "id", &id, "path", &path, "locked_at",
                         &at, "owner", "name", &name, "owner_id", &owner_id);
    if (rc == 0 && lfs_locks_id_valid(id))
        *out =
            (struct lfs_lock){pool_strdup(pool, id), pool_strdup(pool, path), pool_strdup(pool, at),
                              pool_strdup(pool, name), pool_strdup(pool, owner_id)};
    json_decref(j);
    return rc == 0 && out->id != NULL ? 0 : -1;
}

/* The lock as the API shows it: id, path, locked_at, owner.name (not the owner's id). */
static void lock_write(struct lfs_json_writer *w, const struct lfs_lock *l)
{
    lfs_json_begin_object(w);
    lfs_json_key(w, "id");
    lfs_json_cstring(w, l->id);
    lfs_json_key(w, "path");
    lfs_json_cstring(w, l->path);
    lfs_json_key(w, "locked_at");
    lfs_json_cstring(w, l->locked_at);
    lfs_json_key(w, "owner");
    lfs_json_begin_object(w);
    lfs_json_key(w, "name");
    lfs_json_cstring(w, l->owner_name);
    lfs_json_end_object(w);
    lfs_json_end_object(w);
}

/* {"lock": l} plus a message and the request id when message is not NULL. */
static void send_lock(struct lfs_request *r, int status, const struct lfs_lock *l,
                      const char *message)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "lock");
    lock_write(&w, l);
    if (message != NULL)
        lfs_http_write_message(r, &w, message);
    lfs_json_end_object(&w);
    lfs_http_send_writer(r, status, &w);
}

/* Activity-log line: who (from the request), org path, repo, and the lock in the message. */
static void log_lock(struct locks_op *op, const char *action, const char *result)
{
    char msg[LFS_LOCKS_PATH_MAX + 256];
    snprintf(msg, sizeof(msg), "lock %s on path \"%s\" (owner \"%s\")", op->lock.id, op->lock.path,
             op->lock.owner_name);
    lfs_log_activity(op->r, action, NULL, -1, result, msg);
}

static struct lfs_io op_io(struct locks_op *op)
{
    return (struct lfs_io){.ctx = op->r->req->conn->ctx, .pool = &op->r->req->pool};
}

/* ---- create ---- */

static void create_try(struct locks_op *op);

static void on_conflict_read(void *arg, const struct lfs_lock_record *rec,
                             const struct lfs_error *err)
{
    struct locks_op *op = arg;
    struct lfs_lock existing = {0};
    if (err != NULL) {
        lfs_http_send_lfs_error(op->r, err);
        return;
    }
    if (rec == NULL) { /* unlocked between our create and this read */
        if (++op->attempts < CREATE_ATTEMPTS) {
            create_try(op);
            return;
        }
        lfs_http_send_error(op->r, 503, "the lock on \"%s\" keeps changing; try again",
                            op->lock.path);
        return;
    }
    if (lfs_locks_lock_parse(rec->content, &op->r->req->pool, &existing) < 0) {
        lfs_http_send_error(op->r, 500,
                            "the lock stored for \"%s\" is damaged; an administrator must remove "
                            "it from the store",
                            op->lock.path);
        return;
    }
    lfs_metrics_lock(LFS_METRICS_LOCK_CONFLICT);
    char msg[LFS_LOCKS_PATH_MAX + 128];
    snprintf(msg, sizeof(msg), "\"%s\" is already locked by %s", existing.path,
             existing.owner_name);
    send_lock(op->r, 409, &existing, msg);
}

static void on_created(void *arg, int result, const struct lfs_error *err)
{
    struct locks_op *op = arg;
    if (err != NULL) {
        lfs_http_send_lfs_error(op->r, err);
        return;
    }
    if (result == 0) {
        struct lfs_io io = op_io(op);
        op->st->ops->lock_read(op->st, &io, &op->key, on_conflict_read, op);
        return;
    }
    lfs_metrics_lock(LFS_METRICS_LOCK_CREATED);
    log_lock(op, "lock", "created");
    send_lock(op->r, 201, &op->lock, NULL);
}

static void create_try(struct locks_op *op)
{
    struct lfs_io io = op_io(op);
    op->st->ops->lock_create(op->st, &io, &op->key, op->content, on_created, op);
}

/* Fills op->lock with a fresh id for the caller and op->content with its stored form.
 * Returns 0, or -1 with err. */
char *lfs_locks_lock_store(const struct lfs_lock *l, h2o_mem_pool_t *pool, size_t *len)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "id");
    lfs_json_cstring(&w, l->id);
    lfs_json_key(&w, "path");
    lfs_json_cstring(&w, l->path);
    lfs_json_key(&w, "locked_at");
    lfs_json_cstring(&w, l->locked_at);
    lfs_json_key(&w, "owner");
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "name");
    lfs_json_cstring(&w, l->owner_name);
    lfs_json_end_object(&w);
    lfs_json_key(&w, "owner_id");
    lfs_json_cstring(&w, l->owner_id);
    lfs_json_end_object(&w);
    char *text = lfs_json_writer_take_pool(&w, pool, len);
    lfs_json_writer_free(&w);
    return text;
}

static int new_lock(struct locks_op *op, const char *path, struct lfs_error *err)
{
    struct lfs_request *r = op->r;
    h2o_mem_pool_t *pool = &r->req->pool;
    unsigned char rnd[LOCK_RANDOM_HEX / 2];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return lfs_error_set(err, 503, "no random bytes for a lock id; try again");
    char *id = h2o_mem_alloc_pool(pool, LOCK_ID_LEN + 1);
    memcpy(id, op->name, LFS_LOCK_NAME_LEN);
    id[LFS_LOCK_NAME_LEN] = '-';
    lfs_hex_encode(rnd, sizeof(rnd), id + LFS_LOCK_NAME_LEN + 1);
    char *at = h2o_mem_alloc_pool(pool, 32);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(at, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *name = r->identity.name != NULL ? r->identity.name : r->identity.id;
    op->lock = (struct lfs_lock){id, path, at, name, r->identity.id};
    size_t len = 0;
    char *text = lfs_locks_lock_store(&op->lock, pool, &len);
    if (text == NULL)
        return lfs_error_set(err, 500, "out of memory while writing the lock; try again");
    if (len > LFS_LOCK_CONTENT_MAX)
        return lfs_error_set(err, 422,
                             "the lock would take %zu bytes, more than %d: the path and the "
                             "owner's name and id are too long together",
                             len, LFS_LOCK_CONTENT_MAX);
    op->content = h2o_iovec_init(text, len);
    return 0;
}

/* ---- request bodies ---- */

const char *lfs_locks_ref_problem(const json_t *body)
{
    const json_t *ref = json_object_get(body, "ref");
    const json_t *name = json_object_get(ref, "name");
    if (ref == NULL || json_is_null(ref) ||
        (json_is_object(ref) &&
         (name == NULL || (json_is_string(name) && json_string_length(name) <= REFSPEC_MAX))))
        return NULL;
    return "\"ref\" must be an object {\"name\": \"refs/...\"} (at most 1024 bytes) or null";
}

/* Parses the JSON object body; NULL after answering 4xx. New reference. */
static json_t *read_body(struct lfs_request *r, bool required)
{
    h2o_req_t *req = r->req;
    if ((long long)req->entity.len > r->app->settings.max_batch_body) {
        lfs_http_send_error(r, 413, "locks request body too large: at most %lld bytes",
                            r->app->settings.max_batch_body);
        return NULL;
    }
    if (req->entity.len == 0 && !required)
        return json_object();
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base ? req->entity.base : "", req->entity.len,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        lfs_http_send_error(r, 400, "request body is not valid JSON: %s (line %d, column %d)",
                            jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        lfs_http_send_error(r, 422, "request body must be a JSON object");
        return NULL;
    }
    const char *problem = lfs_locks_ref_problem(body);
    if (problem != NULL) {
        json_decref(body);
        lfs_http_send_error(r, 422, "%s", problem);
        return NULL;
    }
    return body;
}

/* ---- permissions ---- */

/* Write on the whole repository, or on some of its objects (a scope per object): enough to
 * lock a path and remove one's own lock. */
static bool may_write_some(const struct lfs_identity *id, const char *org_path, const char *repo)
{
    for (size_t i = 0; i < id->ngrants; i++) {
        const struct lfs_grant *g = &id->grants[i];
        if ((g->perms & LFS_PERM_WRITE) &&
            (g->org_path == NULL || strcmp(g->org_path, org_path) == 0) &&
            (g->repo == NULL || strcmp(g->repo, repo) == 0))
            return true;
    }
    return false;
}

static int require(struct lfs_request *r, bool allowed, const char *what)
{
    if (allowed)
        return 0;
    lfs_http_send_error(r, 403, "\"%s\" may not %s in %s/%s", r->identity.id, what,
                        r->route.org_path, r->route.repo);
    return -1;
}

/* ---- POST locks ---- */

static void handle_create(struct locks_op *op)
{
    struct lfs_request *r = op->r;
    if (require(r, may_write_some(&r->identity, r->route.org_path, r->route.repo), "lock files") <
        0)
        return;
    json_t *body = read_body(r, true);
    if (body == NULL)
        return;
    const json_t *jpath = json_object_get(body, "path");
    const char *problem = json_is_string(jpath) ? lfs_locks_path_problem(json_string_value(jpath),
                                                                         json_string_length(jpath))
                                                : "\"path\" (a string) is required";
    if (problem != NULL) {
        json_decref(body);
        lfs_http_send_error(r, 422, "%s", problem);
        return;
    }
    const char *path = pool_strdup(&r->req->pool, json_string_value(jpath));
    json_decref(body);
    path_name(path, op->name);
    struct lfs_error err = {0};
    if (new_lock(op, path, &err) < 0) {
        lfs_http_send_lfs_error(r, &err);
        return;
    }
    create_try(op);
}

/* ---- GET locks, POST locks/verify ---- */

static void send_page(struct locks_op *op, const struct lfs_lock *locks, size_t n, const char *next)
{
    struct lfs_request *r = op->r;
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    if (op->verify) {
        for (int theirs = 0; theirs < 2; theirs++) {
            lfs_json_key(&w, theirs ? "theirs" : "ours");
            lfs_json_begin_array(&w);
            for (size_t i = 0; i < n; i++)
                if ((strcmp(locks[i].owner_id, r->identity.id) != 0) == theirs)
                    lock_write(&w, &locks[i]);
            lfs_json_end_array(&w);
        }
    } else {
        lfs_json_key(&w, "locks");
        lfs_json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
            lock_write(&w, &locks[i]);
        lfs_json_end_array(&w);
    }
    if (next != NULL) {
        lfs_json_key(&w, "next_cursor");
        lfs_json_cstring(&w, next);
    }
    lfs_json_end_object(&w);
    lfs_metrics_lock(LFS_METRICS_LOCK_LISTED);
    lfs_http_send_writer(r, 200, &w);
}

static void on_list(void *arg, const struct lfs_lock_page *page, const struct lfs_error *err)
{
    struct locks_op *op = arg;
    if (err != NULL) {
        lfs_http_send_lfs_error(op->r, err);
        return;
    }
    struct lfs_lock *locks = h2o_mem_alloc_pool(&op->r->req->pool, (page->n + 1) * sizeof(*locks));
    size_t n = 0;
    for (size_t i = 0; i < page->n; i++)
        if (lfs_locks_lock_parse(page->records[i].content, &op->r->req->pool, &locks[n]) == 0)
            n++;
    send_page(op, locks, n, page->next);
}

/* One lock by path or id: 0 or 1 in the answer. */
static void on_filter_read(void *arg, const struct lfs_lock_record *rec,
                           const struct lfs_error *err)
{
    struct locks_op *op = arg;
    struct lfs_lock l;
    if (err != NULL) {
        lfs_http_send_lfs_error(op->r, err);
        return;
    }
    bool found = rec != NULL && lfs_locks_lock_parse(rec->content, &op->r->req->pool, &l) == 0 &&
                 (op->filter_id == NULL || strcmp(l.id, op->filter_id) == 0) &&
                 (op->filter_path == NULL || strcmp(l.path, op->filter_path) == 0);
    send_page(op, &l, found ? 1 : 0, NULL);
}

static void list_start(struct locks_op *op, const char *cursor)
{
    struct lfs_io io = op_io(op);
    if (op->filter_path != NULL || op->filter_id != NULL) {
        if (op->filter_path != NULL)
            path_name(op->filter_path, op->name);
        else
            memcpy(op->name, op->filter_id, LFS_LOCK_NAME_LEN);
        op->name[LFS_LOCK_NAME_LEN] = '\0';
        if (op->filter_id != NULL && memcmp(op->name, op->filter_id, LFS_LOCK_NAME_LEN) != 0) {
            send_page(op, NULL, 0, NULL); /* that id cannot be a lock on that path */
            return;
        }
        op->st->ops->lock_read(op->st, &io, &op->key, on_filter_read, op);
        return;
    }
    op->key.name = cursor;
    op->st->ops->lock_list(op->st, &io, &op->key, op->limit, on_list, op);
}

/* A cursor is the store name of the last lock of the previous page: only a name inside this
 * repository's locks, so it cannot be turned into a read of anything else. */
bool lfs_locks_cursor_valid(const char *cursor)
{
    return strlen(cursor) == LFS_LOCK_NAME_LEN && is_hex(cursor, LFS_LOCK_NAME_LEN);
}

static int check_cursor(struct lfs_request *r, const char *cursor)
{
    if (cursor == NULL || lfs_locks_cursor_valid(cursor))
        return 0;
    lfs_http_send_error(r, 400,
                        "invalid cursor: pass back the next_cursor of the previous answer "
                        "unchanged");
    return -1;
}

static void bad_limit(struct lfs_request *r)
{
    lfs_http_send_error(r, 400, "invalid limit: expected an integer from 1 to %d", LIMIT_MAX);
}

/* True when the query has the parameter but it does not decode (a NUL or a bad escape). */
static bool query_undecodable(struct lfs_request *r, const char *name, const char *value)
{
    h2o_req_t *req = r->req;
    if (value != NULL || req->query_at == SIZE_MAX)
        return false;
    char pat[32];
    snprintf(pat, sizeof(pat), "%s=", name);
    const char *q = req->path.base + req->query_at + 1;
    size_t qlen = req->path.len - req->query_at - 1, plen = strlen(pat);
    for (size_t i = 0; i + plen <= qlen; i++)
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, pat, plen) == 0)
            return true;
    return false;
}

static void handle_list(struct locks_op *op)
{
    struct lfs_request *r = op->r;
    if (require(r,
                lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, NULL,
                                    LFS_PERM_READ),
                "list locks") < 0)
        return;
    static const char *const params[] = {"path", "id", "cursor", "limit", "refspec"};
    const char *v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = lfs_http_query_param(r, params[i]);
        if (query_undecodable(r, params[i], v[i])) {
            lfs_http_send_error(r, 400,
                                "query parameter \"%s\" is not a valid percent-encoded "
                                "value (a NUL or a bad escape)",
                                params[i]);
            return;
        }
    }
    const char *path = v[0], *id = v[1], *cursor = v[2], *refspec = v[4];
    long limit = lfs_locks_parse_limit(v[3]);
    const char *problem = path != NULL ? lfs_locks_path_problem(path, strlen(path)) : NULL;
    if (problem != NULL) {
        lfs_http_send_error(r, 400, "%s", problem);
        return;
    }
    if (id != NULL && !lfs_locks_id_valid(id)) {
        lfs_http_send_error(r, 400,
                            "invalid lock id: expected the \"id\" of a lock this server "
                            "returned");
        return;
    }
    if (limit < 0) {
        bad_limit(r);
        return;
    }
    if (refspec != NULL && strlen(refspec) > REFSPEC_MAX) {
        lfs_http_send_error(r, 400, "refspec too long: at most %d bytes", REFSPEC_MAX);
        return;
    }
    if (check_cursor(r, cursor) < 0)
        return;
    op->filter_path = path;
    op->filter_id = id;
    op->limit = (size_t)limit;
    list_start(op, cursor);
}

static void handle_verify(struct locks_op *op)
{
    struct lfs_request *r = op->r;
    if (require(r,
                lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, NULL,
                                    LFS_PERM_READ),
                "verify locks") < 0)
        return;
    json_t *body = read_body(r, false);
    if (body == NULL)
        return;
    const json_t *jcursor = json_object_get(body, "cursor"),
                 *jlimit = json_object_get(body, "limit");
    const char *cursor = NULL;
    long limit = LIMIT_DEFAULT;
    if (jcursor != NULL && !json_is_null(jcursor)) {
        if (!json_is_string(jcursor)) {
            json_decref(body);
            lfs_http_send_error(r, 400, "invalid cursor: expected a string");
            return;
        }
        cursor = pool_strdup(&r->req->pool, json_string_value(jcursor));
    }
    if (jlimit != NULL && !json_is_null(jlimit)) {
        json_int_t l = json_is_integer(jlimit) ? json_integer_value(jlimit) : -1;
        limit = l >= 1 && l <= LIMIT_MAX ? (long)l : -1;
    }
    json_decref(body);
    if (limit < 0) {
        bad_limit(r);
        return;
    }
    if (check_cursor(r, cursor) < 0)
        return;
    op->verify = true;
    op->limit = (size_t)limit;
    list_start(op, cursor);
}

/* ---- POST locks/<id>/unlock ---- */

static void on_deleted(void *arg, int result, const struct lfs_error *err)
{
    struct locks_op *op = arg;
    if (err != NULL) {
        lfs_http_send_lfs_error(op->r, err);
        return;
    }
    if (result == 0) {
        lfs_http_send_error(op->r, 404, "lock %s was removed or replaced meanwhile", op->lock.id);
        return;
    }
    bool theirs = strcmp(op->lock.owner_id, op->r->identity.id) != 0;
    lfs_metrics_lock(theirs ? LFS_METRICS_LOCK_FORCE_REMOVED : LFS_METRICS_LOCK_REMOVED);
    log_lock(op, theirs ? "force-unlock" : "unlock", theirs ? "force-removed" : "removed");
    send_lock(op->r, 200, &op->lock, NULL);
}

static void on_unlock_read(void *arg, const struct lfs_lock_record *rec,
                           const struct lfs_error *err)
{
    struct locks_op *op = arg;
    struct lfs_request *r = op->r;
    if (err != NULL) {
        lfs_http_send_lfs_error(r, err);
        return;
    }
    if (rec == NULL || lfs_locks_lock_parse(rec->content, &r->req->pool, &op->lock) < 0 ||
        strcmp(op->lock.id, op->filter_id) != 0) {
        lfs_http_send_error(r, 404, "no lock with id %s in %s/%s", op->filter_id, r->route.org_path,
                            r->route.repo);
        return;
    }
    if (strcmp(op->lock.owner_id, r->identity.id) != 0) {
        if (!op->force) {
            lfs_http_send_error(r, 403,
                                "\"%s\" is locked by %s; only they can unlock it, or someone "
                                "with write access to the whole repository with force",
                                op->lock.path, op->lock.owner_name);
            return;
        }
        if (!lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, NULL,
                                 LFS_PERM_WRITE)) {
            lfs_http_send_error(r, 403,
                                "\"%s\" may not remove another user's lock in %s/%s: force needs "
                                "write access to the whole repository",
                                r->identity.id, r->route.org_path, r->route.repo);
            return;
        }
    }
    struct lfs_io io = op_io(op);
    op->st->ops->lock_delete(op->st, &io, &op->key, rec->version, on_deleted, op);
}

static void handle_unlock(struct locks_op *op, const char *id)
{
    struct lfs_request *r = op->r;
    if (require(r, may_write_some(&r->identity, r->route.org_path, r->route.repo), "unlock files") <
        0)
        return;
    if (!lfs_locks_id_valid(id)) {
        lfs_http_send_error(r, 404, "no lock with id %s: not an id this server returns", id);
        return;
    }
    json_t *body = read_body(r, false);
    if (body == NULL)
        return;
    const json_t *force = json_object_get(body, "force");
    if (force != NULL && !json_is_boolean(force) && !json_is_null(force)) {
        json_decref(body);
        lfs_http_send_error(r, 422, "\"force\" must be true or false");
        return;
    }
    op->force = json_is_true(force);
    json_decref(body);
    op->filter_id = pool_strdup(&r->req->pool, id);
    memcpy(op->name, id, LFS_LOCK_NAME_LEN);
    op->name[LFS_LOCK_NAME_LEN] = '\0';
    struct lfs_io io = op_io(op);
    op->st->ops->lock_read(op->st, &io, &op->key, on_unlock_read, op);
}

/* ---- dispatch ---- */

void lfs_handle_locks(struct lfs_request *r)
{
    h2o_req_t *req = r->req;
    struct lfs_storage *st = r->app->locks;
    if (st == NULL) {
        lfs_http_send_error(r, 404, "this server does not support the Git LFS locking API");
        return;
    }
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    const char *rest = r->route.locks_rest;
    const char *unlock = NULL;
    size_t rlen = strlen(rest);
    if (rlen > 8 && strcmp(rest + rlen - 7, "/unlock") == 0 &&
        memchr(rest + 1, '/', rlen - 8) == NULL) {
        char *id = h2o_mem_alloc_pool(&req->pool, rlen);
        memcpy(id, rest + 1, rlen - 8);
        id[rlen - 8] = '\0';
        unlock = id;
    }
    bool known = rest[0] == '\0' || strcmp(rest, "/verify") == 0 || unlock != NULL;
    if (!known) {
        lfs_http_send_error(r, 404,
                            "no such locks endpoint: use locks, locks/verify or "
                            "locks/<id>/unlock");
        return;
    }
    if (!(rest[0] == '\0' ? get || post : post)) {
        lfs_http_send_error(r, 405, "method \"%.*s\" is not allowed here", (int)req->method.len,
                            req->method.base);
        return;
    }
    if (!lfs_http_accepts_json(r) || lfs_http_authenticate(r) < 0)
        return;
    if (lfs_identity_is_action_token(&r->identity)) {
        lfs_http_send_error(r, 403,
                            "an action token is valid only for the action it was issued for, "
                            "not for the locks API");
        return;
    }
    struct locks_op *op = h2o_mem_alloc_pool(&req->pool, sizeof(*op));
    *op = (struct locks_op){.r = r, .st = st};
    op->key = (struct lfs_lock_key){
        .org_path = r->route.org_path, .repo = r->route.repo, .name = op->name};
    if (unlock != NULL)
        handle_unlock(op, unlock);
    else if (strcmp(rest, "/verify") == 0)
        handle_verify(op);
    else if (post)
        handle_create(op);
    else
        handle_list(op);
}
