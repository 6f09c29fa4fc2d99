/* See json_write.h. Strings are copied in runs between the bytes JSON must escape, found
 * through a table, so long plain runs (hrefs, tokens) cost a load and a test per byte. */
#include "common/json_write.h"

#include <stdlib.h>
#include <string.h>

#include "common/text.h"

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>

void lfs_json_writer_init(struct lfs_json_writer *w)
{
    w->buf = w->inline_buf;
    w->len = 0;
    w->cap = sizeof(w->inline_buf);
    w->failed = false;
    w->need_comma = false;
    w->pool = NULL;
}

void lfs_json_writer_init_pool(struct lfs_json_writer *w, struct st_h2o_mem_pool_t *pool,
                               size_t cap)
{
    lfs_json_writer_init(w);
    w->pool = pool;
    if (cap > w->cap) {
        w->buf = h2o_mem_alloc_pool(pool, cap);
        w->cap = cap;
    }
}

void lfs_json_writer_free(struct lfs_json_writer *w)
{
    if (w->buf != w->inline_buf && w->pool == NULL)
        free(w->buf); /* pool memory goes with the pool */
    lfs_json_writer_init(w);
}

static bool reserve(struct lfs_json_writer *w, size_t n)
{
    if (w->failed)
        return false;
    if (n <= w->cap - w->len)
        return true;
    size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n + 1024;
    char *nb;
    if (w->pool != NULL)
        nb = h2o_mem_alloc_pool(w->pool, cap); /* h2o aborts rather than return NULL */
    else
        nb = w->buf == w->inline_buf ? malloc(cap) : realloc(w->buf, cap);
    if (nb == NULL) {
        w->failed = true;
        return false;
    }
    if (w->buf == w->inline_buf || w->pool != NULL)
        memcpy(nb, w->buf, w->len);
    w->buf = nb;
    w->cap = cap;
    return true;
}

void lfs_json_append(struct lfs_json_writer *w, const char *s, size_t n)
{
    if (reserve(w, n)) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}

static inline void put_char(struct lfs_json_writer *w, char c)
{
    if (reserve(w, 1))
        w->buf[w->len++] = c;
}

/* Before any value or key: the separator from the previous one at this level. */
static inline void separate(struct lfs_json_writer *w)
{
    if (w->need_comma)
        put_char(w, ',');
    w->need_comma = true;
}

void lfs_json_begin_object(struct lfs_json_writer *w)
{
    separate(w);
    put_char(w, '{');
    w->need_comma = false;
}

void lfs_json_end_object(struct lfs_json_writer *w)
{
    put_char(w, '}');
    w->need_comma = true;
}

void lfs_json_begin_array(struct lfs_json_writer *w)
{
    separate(w);
    put_char(w, '[');
    w->need_comma = false;
}

void lfs_json_end_array(struct lfs_json_writer *w)
{
    put_char(w, ']');
    w->need_comma = true;
}

size_t lfs_json_escape(char *dst, size_t cap, const char *s, size_t n, size_t *used)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
    /* 1: escaped as such; 2: the start of a multi-byte character, checked. */
    static const unsigned char special[256] = {
        [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f] = 1, [0x80 ... 0xff] = 2,
    };
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0, i = 0, run = 0;
    for (; i < n; i++) {
        unsigned char c = u[i];
        if (!special[c])
            continue;
        if (special[c] == 2) {
            size_t len = lfs_utf8_char_len(u + i, n - i);
            if (len != 0) { /* a well-formed character stays in the run */
                i += len - 1;
                continue;
            }
        }
        if (i - run > cap - out)
            break; /* the run before it does not fit: cut below */
        memcpy(dst + out, s + run, i - run);
        out += i - run;
        run = i;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            elen = 6;
            if (c >= 0x80) { /* not UTF-8: U+FFFD stands for the byte */
                memcpy(esc, "\\uFFFD", 6);
                break;
            }
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        if (elen > cap - out)
            break;
        memcpy(dst + out, esc, elen);
        out += elen;
        run = i + 1;
    }
    /* The pending run s[run..i) (i == n when all was scanned), cut on a character boundary
     * when it does not fit. */
    size_t take = i - run <= cap - out ? i - run : lfs_utf8_prefix(s + run, i - run, cap - out);
    memcpy(dst + out, s + run, take);
    *used = run + take;
    return out + take;
}

static void put_string(struct lfs_json_writer *w, const char *s, size_t n)
{
    put_char(w, '"');
    size_t done = 0;
    /* Plain text fits in one pass; each pass has room for at least one escape. */
    while (done < n && reserve(w, n - done + 16)) {
        size_t used;
        w->len += lfs_json_escape(w->buf + w->len, w->cap - w->len, s + done, n - done, &used);
        done += used;
        if (used == 0 && !reserve(w, w->cap)) /* cannot happen with 16 bytes free */
            return;
    }
    put_char(w, '"');
}

void lfs_json_key(struct lfs_json_writer *w, const char *key)
{
    separate(w);
    put_string(w, key, strlen(key));
    put_char(w, ':');
    w->need_comma = false;
}

void lfs_json_string(struct lfs_json_writer *w, const char *s, size_t n)
{
    separate(w);
    put_string(w, s, n);
}

void lfs_json_cstring(struct lfs_json_writer *w, const char *s)
{
    if (s == NULL)
        lfs_json_null(w);
    else
        lfs_json_string(w, s, strlen(s));
}

void lfs_json_int(struct lfs_json_writer *w, int64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);
    /* In unsigned arithmetic so that INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        digits[--i] = '-';
    separate(w);
    lfs_json_append(w, digits + i, sizeof(digits) - i);
}

void lfs_json_bool(struct lfs_json_writer *w, bool v)
{
    separate(w);
    lfs_json_append(w, v ? "true" : "false", v ? 4 : 5);
}

void lfs_json_null(struct lfs_json_writer *w)
{
    separate(w);
    lfs_json_append(w, "null", 4);
}

void lfs_json_raw(struct lfs_json_writer *w, const char *text, size_t n)
{
    separate(w);
    lfs_json_append(w, text, n);
}

char *lfs_json_writer_take_pool(struct lfs_json_writer *w, struct st_h2o_mem_pool_t *pool,
                                size_t *len)
{
    if (w->pool == pool && w->buf != w->inline_buf) {
        if (!reserve(w, 1))
            return NULL;
        w->buf[w->len] = '\0';
        *len = w->len;
        return w->buf;
    }
    if (w->failed)
        return NULL;
    char *out = h2o_mem_alloc_pool(pool, w->len + 1);
    memcpy(out, w->buf, w->len);
    out[w->len] = '\0';
    *len = w->len;
    return out;
}

char *lfs_json_writer_take(struct lfs_json_writer *w, size_t *len)
{
    char *out = NULL;
    if (!w->failed && reserve(w, 1)) {
        w->buf[w->len] = '\0';
        *len = w->len;
        if (w->buf == w->inline_buf || w->pool != NULL) { /* the caller frees it */
            out = malloc(w->len + 1);
            if (out != NULL)
                memcpy(out, w->buf, w->len + 1);
        } else {
            out = w->buf;
            w->buf = w->inline_buf; /* handed over */
        }
    }
    lfs_json_writer_free(w);
    return out;
}
