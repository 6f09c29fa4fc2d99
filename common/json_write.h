/* A compact JSON writer into one growing buffer: the batch answer and the actions of its
 * objects are written with it directly, without building a tree first (building and freeing
 * a jansson tree was about a third of a small batch's instructions). Commas are placed by the
 * writer; the caller keeps keys and values in order. Any thread; one writer per thread. */
#ifndef LFS_COMMON_JSON_WRITE_H
#define LFS_COMMON_JSON_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_h2o_mem_pool_t; /* h2o_mem_pool_t */

struct lfs_json_writer {
    char *buf; /* `inline_buf` until it outgrows it, then malloc'd */
    size_t len, cap;
    bool failed;     /* out of memory: everything written since is dropped */
    bool need_comma; /* a value ended at this level: the next key or element needs a ',' */
    char inline_buf[1024];
    struct st_h2o_mem_pool_t *pool; /* lfs_json_writer_init_pool: buf lives in this pool */
};

/* Starts an empty writer; nothing is allocated until the text outgrows 1 KiB. */
void lfs_json_writer_init(struct lfs_json_writer *w);

/* Starts an empty writer whose text is written straight into pool memory of cap bytes
 * (grown in the pool, by copying, should the text outgrow it): size cap for the whole answer
 * and nothing is copied, lfs_json_writer_take_pool from the same pool hands the text over as
 * it is, and nothing goes through malloc but the pool's own block. Same thread as the pool. */
void lfs_json_writer_init_pool(struct lfs_json_writer *w, struct st_h2o_mem_pool_t *pool,
                               size_t cap);

/* Releases what the writer allocated. Safe after lfs_json_writer_take*. */
void lfs_json_writer_free(struct lfs_json_writer *w);

void lfs_json_begin_object(struct lfs_json_writer *w);
void lfs_json_end_object(struct lfs_json_writer *w);
void lfs_json_begin_array(struct lfs_json_writer *w);
void lfs_json_end_array(struct lfs_json_writer *w);

/* An object key (NUL-terminated); the value written next belongs to it. */
void lfs_json_key(struct lfs_json_writer *w, const char *key);

/* s[0..n) as a JSON string, escaped as lfs_json_escape does: valid JSON and UTF-8 whatever
 * s holds. */
void lfs_json_string(struct lfs_json_writer *w, const char *s, size_t n);
/* A NUL-terminated string, or null when s is NULL. */
void lfs_json_cstring(struct lfs_json_writer *w, const char *s);
void lfs_json_int(struct lfs_json_writer *w, int64_t v);
void lfs_json_bool(struct lfs_json_writer *w, bool v);
void lfs_json_null(struct lfs_json_writer *w);
/* A value that is already JSON text (e.g. a fragment written earlier), as one value. */
void lfs_json_raw(struct lfs_json_writer *w, const char *text, size_t n);
/* Escapes s[0..n) as the inside of a JSON string into dst[0..cap): '"', '\\', control
 * characters and DEL escaped, each byte that is not part of well-formed UTF-8 written as
 * \uFFFD, so the result is valid JSON and valid UTF-8 whatever s holds. Stops before a
 * character or an escape that would not fit; *used gets the number of bytes of s consumed.
 * Returns the number of bytes written (no NUL). Any thread. */
size_t lfs_json_escape(char *dst, size_t cap, const char *s, size_t n, size_t *used);

/* Low level, for a writer that renders other kinds of values: plain bytes, no comma. */
void lfs_json_append(struct lfs_json_writer *w, const char *s, size_t n);

/* The text written so far, NUL-terminated, copied into pool (not copied when the writer
 * already writes into that pool: lfs_json_writer_init_pool); *len gets its length. Returns
 * NULL when memory ran out (while writing or now). The writer stays usable and must still be
 * freed. Pool memory lives as long as the pool. */
char *lfs_json_writer_take_pool(struct lfs_json_writer *w, struct st_h2o_mem_pool_t *pool,
                                size_t *len);

/* The text written so far, NUL-terminated, as a malloc'd string the caller frees; the writer
 * is left empty (and needs no free). NULL when memory ran out. */
char *lfs_json_writer_take(struct lfs_json_writer *w, size_t *len);

#endif
