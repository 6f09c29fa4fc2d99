/* What the File Locking API (server/locks.c) reads from outside: the paths, lock ids, cursors
 * and limits of its requests (JSON bodies and query parameters), a body's "ref", and the lock
 * content it stored itself but reads back from a store any replica (or anyone with access to
 * the store) may have written. Exposed so that tests/fuzz can feed them what no git-lfs
 * sends. */
#ifndef LFS_SERVER_LOCKS_H
#define LFS_SERVER_LOCKS_H

#include <h2o/memory.h>
#include <jansson.h>
#include <stdbool.h>

#define LFS_LOCKS_PATH_MAX 1024
#define LFS_LOCKS_REFSPEC_MAX 1024
#define LFS_LOCKS_LIMIT_MAX 1000

/* A lock as stored (JSON) and as answered; strings in a pool. */
struct lfs_lock {
    const char *id, *path, *locked_at, *owner_name, *owner_id;
};

/* What is wrong with a lock path (a static message), or NULL for a repository-relative path
 * as git writes it: 1..LFS_LOCKS_PATH_MAX bytes, no NUL or control character, no leading or
 * trailing '/', no empty, "." or ".." segment. Any thread. */
const char *lfs_locks_path_problem(const char *p, size_t len);

/* True when id has the shape of the lock ids locks.c makes. Any thread. */
bool lfs_locks_id_valid(const char *id);

/* True when cursor is a page cursor locks.c hands out: the store name of a lock of this
 * repository (LFS_LOCK_NAME_LEN lowercase hex digits), nothing that names another path in
 * the store. Any thread. */
bool lfs_locks_cursor_valid(const char *cursor);

/* The `limit` query parameter: digits only, 1..LFS_LOCKS_LIMIT_MAX; NULL gives the default
 * (100). Returns -1 when invalid. Any thread. */
long lfs_locks_parse_limit(const char *s);

/* What is wrong with a request body's "ref" (a static message), or NULL when it is absent,
 * null, or {"name": a string of at most LFS_LOCKS_REFSPEC_MAX bytes}. Any thread. */
const char *lfs_locks_ref_problem(const json_t *body);

/* Parses a stored lock into *out, strings copied into the pool. Returns 0, or -1 when it is
 * not one (a damaged file is skipped, not served). Any thread. */
int lfs_locks_lock_parse(h2o_iovec_t content, h2o_mem_pool_t *pool, struct lfs_lock *out);

/* The stored form of l (JSON with its owner's id), in the pool, its length in *len. Returns
 * NULL when out of memory. Any thread. */
char *lfs_locks_lock_store(const struct lfs_lock *l, h2o_mem_pool_t *pool, size_t *len);

#endif
