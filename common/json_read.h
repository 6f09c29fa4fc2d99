/* A pull reader for JSON request bodies: the caller walks the document in order, asking for
 * the value it expects next, and skips what it does not know. Nothing is built but the
 * strings it asks for (decoded, in the request pool), so a batch request costs about what
 * reading its bytes costs; jansson built and freed a tree of hash tables per request.
 * The whole text is validated as RFC 8259 JSON (UTF-8, escapes, no lone surrogates, no
 * "\u0000", nesting at most LFS_JSON_MAX_DEPTH), including the values that are skipped.
 * Duplicate keys are the caller's to refuse for the keys it reads. Any thread. */
#ifndef LFS_COMMON_JSON_READ_H
#define LFS_COMMON_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LFS_JSON_MAX_DEPTH 64

struct st_h2o_mem_pool_t; /* h2o_mem_pool_t */

enum lfs_json_type {
    LFS_JSON_INVALID, /* end of text, or a byte no value starts with */
    LFS_JSON_NULL,
    LFS_JSON_BOOL,
    LFS_JSON_NUMBER,
    LFS_JSON_STRING,
    LFS_JSON_ARRAY,
    LFS_JSON_OBJECT,
};

struct lfs_json_reader {
    const char *start, *p, *end;
    struct st_h2o_mem_pool_t *pool;
    int depth;
    bool first;     /* the container just opened: no ',' before its first member */
    char error[96]; /* the first syntax error, with its byte offset; "" while there is none */
};

/* Reads text[0..len); decoded strings go to pool. */
void lfs_json_reader_init(struct lfs_json_reader *r, const char *text, size_t len,
                          struct st_h2o_mem_pool_t *pool);

/* The type of the next value (after whitespace), judged by its first byte; reads nothing. */
enum lfs_json_type lfs_json_peek(struct lfs_json_reader *r);

/* Each reader below returns 0 and moves past the value, or -1 with r->error set (a syntax
 * error, or not the type asked for). */

/* A string, decoded, NUL-terminated, in the pool. */
int lfs_json_read_string(struct lfs_json_reader *r, const char **s, size_t *len);
/* A number. *is_int is false for a fraction, an exponent, or an integer outside int64_t
 * (then *v is 0): well-formed JSON the caller may still refuse as a value. */
int lfs_json_read_number(struct lfs_json_reader *r, int64_t *v, bool *is_int);
int lfs_json_read_bool(struct lfs_json_reader *r, bool *v);
int lfs_json_read_null(struct lfs_json_reader *r);
/* Any value, validated and dropped. */
int lfs_json_skip(struct lfs_json_reader *r);

/* Objects: lfs_json_object_begin, then lfs_json_object_next until it returns 0. Each 1
 * leaves the reader at the member's value, which the caller must read or skip before the
 * next call; *key is decoded into the pool. Returns 1 (a member), 0 (the object ended) or -1
 * (syntax error). Arrays likewise, without keys. */
int lfs_json_object_begin(struct lfs_json_reader *r);
int lfs_json_object_next(struct lfs_json_reader *r, const char **key, size_t *keylen);
int lfs_json_array_begin(struct lfs_json_reader *r);
int lfs_json_array_next(struct lfs_json_reader *r);

/* 0 when only whitespace is left, -1 with r->error otherwise. */
int lfs_json_read_end(struct lfs_json_reader *r);

#endif
