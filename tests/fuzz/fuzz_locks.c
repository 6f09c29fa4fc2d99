/* Fuzz target: what the File Locking API (server/locks.c) reads from outside. The input is
 * read three ways: as a request body (JSON: create {path, ref}, verify {cursor, limit, ref},
 * unlock {force, ref}), as lines of query values (path, id, cursor, limit, refspec as
 * ?path=&id=&cursor=&limit=&refspec= and the id in the URL carry them), and as lock content
 * read back from a store. Properties: a path accepted is repository-relative (no leading '/',
 * no "." or ".." segment), without NUL or control characters, of at most 1024 bytes; an
 * accepted cursor is a lock name only (hex, no '/', so it cannot reach into another
 * repository); an accepted limit is 1..1000; an accepted id starts with a lock name; a
 * stored lock written back in its stored form parses to the same lock. */
#include <h2o/memory.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server/locks.h"
#include "storage/storage.h"

static void check_path(const char *p, size_t len)
{
    if (lfs_locks_path_problem(p, len) != NULL)
        return;
    LFS_FUZZ_CHECK(len >= 1 && len <= LFS_LOCKS_PATH_MAX && memchr(p, '\0', len) == NULL);
    LFS_FUZZ_CHECK(p[0] != '/' && p[len - 1] != '/');
    for (size_t i = 0; i < len; i++)
        LFS_FUZZ_CHECK((unsigned char)p[i] >= 0x20 && p[i] != 0x7f);
    for (const char *seg = p; seg != NULL;) {
        const char *end = memchr(seg, '/', len - (size_t)(seg - p));
        size_t n = end != NULL ? (size_t)(end - seg) : len - (size_t)(seg - p);
        LFS_FUZZ_CHECK(n > 0 && !(n == 1 && seg[0] == '.') && !(n == 2 && !memcmp(seg, "..", 2)));
        seg = end != NULL ? end + 1 : NULL;
    }
}

static bool lock_equal(const struct lfs_lock *a, const struct lfs_lock *b)
{
    return !strcmp(a->id, b->id) && !strcmp(a->path, b->path) &&
           !strcmp(a->locked_at, b->locked_at) && !strcmp(a->owner_name, b->owner_name) &&
           !strcmp(a->owner_id, b->owner_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(body)) {
        lfs_locks_ref_problem(body); /* a message or NULL: both fine, a crash is not */
        const json_t *path = json_object_get(body, "path");
        if (json_is_string(path))
            check_path(json_string_value(path), json_string_length(path));
    }
    json_decref(body);

    struct lfs_fuzz_part lines[5];
    size_t n = lfs_fuzz_split(data, size, "\n", 1, lines, 5);
    for (size_t i = 0; i < n; i++) {
        char *v = lfs_fuzz_strdup(lines[i]); /* NUL-terminated, as the query decoder gives */
        check_path(v, lines[i].len);
        if (lfs_locks_cursor_valid(v)) {
            LFS_FUZZ_CHECK(strlen(v) == LFS_LOCK_NAME_LEN);
            LFS_FUZZ_CHECK(strspn(v, "0123456789abcdef") == LFS_LOCK_NAME_LEN);
        }
        if (lfs_locks_id_valid(v)) {
            char name[LFS_LOCK_NAME_LEN + 1];
            memcpy(name, v, LFS_LOCK_NAME_LEN);
            name[LFS_LOCK_NAME_LEN] = '\0';
            LFS_FUZZ_CHECK(lfs_locks_cursor_valid(name) && v[LFS_LOCK_NAME_LEN] == '-');
        }
        long limit = lfs_locks_parse_limit(v);
        LFS_FUZZ_CHECK(limit == -1 || (limit >= 1 && limit <= LFS_LOCKS_LIMIT_MAX));
        free(v);
    }

    struct lfs_lock lock, again;
    if (lfs_locks_lock_parse(h2o_iovec_init(data, size), &pool, &lock) == 0) {
        LFS_FUZZ_CHECK(lfs_locks_id_valid(lock.id));
        size_t len = 0;
        char *stored = lfs_locks_lock_store(&lock, &pool, &len);
        LFS_FUZZ_CHECK(stored != NULL);
        LFS_FUZZ_CHECK(lfs_locks_lock_parse(h2o_iovec_init(stored, len), &pool, &again) == 0);
        LFS_FUZZ_CHECK(lock_equal(&lock, &again));
    }
    h2o_mem_clear_pool(&pool);
    return 0;
}
