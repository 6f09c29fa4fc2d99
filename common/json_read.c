/* See json_read.h. Strings are found with a scan for the closing quote, then decoded (or,
 * when skipped, only checked) in a second pass; a string without escapes or non-ASCII bytes
 * is one memcpy. Errors name the byte offset, which is what a client needs to find them. */
#include "common/json_read.h"

#include "common/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>

void lfs_json_reader_init(struct lfs_json_reader *r, const char *text, size_t len,
                          struct st_h2o_mem_pool_t *pool)
{
    *r = (struct lfs_json_reader){.start = text, .p = text, .end = text + len, .pool = pool};
}

__attribute__((format(printf, 2, 3))) static int fail(struct lfs_json_reader *r, const char *fmt,
                                                      ...)
{
    if (r->error[0] == '\0') {
        int n = snprintf(r->error, sizeof(r->error), "at byte %zu: ", (size_t)(r->p - r->start));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    r->p = r->end; /* nothing more is read after an error */
    return -1;
}

static inline void skip_ws(struct lfs_json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

enum lfs_json_type lfs_json_peek(struct lfs_json_reader *r)
{
    skip_ws(r);
    if (r->p == r->end)
        return LFS_JSON_INVALID;
    switch (*r->p) {
    case '{': return LFS_JSON_OBJECT;
    case '[': return LFS_JSON_ARRAY;
    case '"': return LFS_JSON_STRING;
    case 't':
    case 'f': return LFS_JSON_BOOL;
    case 'n': return LFS_JSON_NULL;
    case '-':
    case '0' ... '9': return LFS_JSON_NUMBER;
    default: return LFS_JSON_INVALID;
    }
}

static const char *type_name(enum lfs_json_type t)
{
    static const char *const names[] = {"a value",  "null",   "true or false", "a number",
                                        "a string", "a list", "an object"};
    return names[t];
}

/* Fails unless the next value has type t. */
static int expect(struct lfs_json_reader *r, enum lfs_json_type t)
{
    enum lfs_json_type got = lfs_json_peek(r);
    if (got == t)
        return 0;
    if (got == LFS_JSON_INVALID)
        return fail(r, r->p == r->end ? "unexpected end of text" : "unexpected character");
    return fail(r, "expected %s, found %s", type_name(t), type_name(got));
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads a string at r->p (which is '"'); decodes it into the pool when out != NULL. */
static int read_string(struct lfs_json_reader *r, const char **out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)r->p + 1, *end = (const unsigned char *)r->end;
    /* Pass 1: the closing quote, and whether the text is plain (no escape, all printable
     * ASCII) so that it can be copied as it is. */
    const unsigned char *q = s;
    bool plain = true;
    while (q < end && *q != '"') {
        if (*q == '\\') {
            plain = false;
            q++;
        } else if (*q < 0x20 || *q >= 0x80) {
            plain = false;
        }
        q++;
    }
    if (q >= end)
        return fail(r, "unterminated string");
    size_t raw = (size_t)(q - s);
    unsigned char *o = NULL;
    if (out != NULL)
        o = h2o_mem_alloc_pool(r->pool, raw + 1); /* decoding never makes a string longer */
    if (plain) {
        if (o != NULL)
            memcpy(o, s, raw);
        r->p = (const char *)q + 1;
        if (out != NULL) {
            o[raw] = '\0';
            *out = (const char *)o;
            *outlen = raw;
        }
        return 0;
    }
    /* Pass 2: decode and check. */
    size_t n = 0;
    for (const unsigned char *c = s; c < q;) {
        if (*c == '\\') {
            unsigned cp;
            r->p = (const char *)c;
            switch (c[1]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (q - c < 6 || hex4(c + 2, &cp) < 0)
                    return fail(r, "invalid \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(r, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (q - c < 12 || c[6] != '\\' || c[7] != 'u' || hex4(c + 8, &lo) < 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return fail(r, "high surrogate in \\u escape without its low half");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    c += 6;
                }
                if (cp == 0)
                    return fail(r, "\\u0000 is not allowed in strings");
                c += 4;
                break;
            default: return fail(r, "invalid escape");
            }
            c += 2;
            if (o != NULL)
                n += put_utf8(cp, o + n);
        } else if (*c < 0x20) {
            r->p = (const char *)c;
            return fail(r, "control character in string (escape it)");
        } else if (*c < 0x80) {
            if (o != NULL)
                o[n++] = *c;
            c++;
        } else {
            size_t len = lfs_utf8_char_len(c, (size_t)(q - c));
            if (len == 0) {
                r->p = (const char *)c;
                return fail(r, "invalid UTF-8 in string");
            }
            if (o != NULL)
                memcpy(o + n, c, len);
            n += len;
            c += len;
        }
    }
    r->p = (const char *)q + 1;
    if (out != NULL) {
        o[n] = '\0';
        *out = (const char *)o;
        *outlen = n;
    }
    return 0;
}

int lfs_json_read_string(struct lfs_json_reader *r, const char **s, size_t *len)
{
    if (expect(r, LFS_JSON_STRING) < 0)
        return -1;
    r->first = false;
    return read_string(r, s, len);
}

int lfs_json_read_number(struct lfs_json_reader *r, int64_t *v, bool *is_int)
{
    if (expect(r, LFS_JSON_NUMBER) < 0)
        return -1;
    r->first = false;
    const char *p = r->p;
    bool neg = *p == '-', integer = true;
    uint64_t u = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (neg)
        p++;
    if (p == r->end || *p < '0' || *p > '9')
        return fail(r, "invalid number");
    if (*p == '0') {
        p++;
    } else {
        for (; p < r->end && *p >= '0' && *p <= '9'; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (u > (limit - d) / 10)
                integer = false; /* too large: still a number, not an int64 */
            else
                u = u * 10 + d;
        }
    }
    if (p < r->end && *p == '.') {
        integer = false;
        if (++p == r->end || *p < '0' || *p > '9')
            return fail(r, "invalid number: digits expected after '.'");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p == r->end || *p < '0' || *p > '9')
            return fail(r, "invalid number: digits expected in the exponent");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    r->p = p;
    *is_int = integer;
    *v = !integer ? 0 : neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

static int literal(struct lfs_json_reader *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail(r, "invalid literal (expected %s)", word);
    r->p += n;
    return 0;
}

int lfs_json_read_bool(struct lfs_json_reader *r, bool *v)
{
    if (expect(r, LFS_JSON_BOOL) < 0)
        return -1;
    r->first = false;
    *v = *r->p == 't';
    return *v ? literal(r, "true", 4) : literal(r, "false", 5);
}

int lfs_json_read_null(struct lfs_json_reader *r)
{
    if (expect(r, LFS_JSON_NULL) < 0)
        return -1;
    r->first = false;
    return literal(r, "null", 4);
}

static int open_container(struct lfs_json_reader *r, enum lfs_json_type t)
{
    if (expect(r, t) < 0)
        return -1;
    if (++r->depth > LFS_JSON_MAX_DEPTH)
        return fail(r, "nested deeper than %d levels", LFS_JSON_MAX_DEPTH);
    r->p++;
    r->first = true;
    return 0;
}

/* Before a member or element: 1 when there is one, 0 when the container closed. */
static int next_item(struct lfs_json_reader *r, char close)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        r->first = false;
        return 0;
    }
    if (!r->first) {
        if (r->p == r->end || *r->p != ',')
            return fail(r, "expected ',' or '%c'", close);
        r->p++;
        skip_ws(r);
    }
    r->first = false;
    return 1;
}

int lfs_json_object_begin(struct lfs_json_reader *r)
{
    return open_container(r, LFS_JSON_OBJECT);
}

int lfs_json_object_next(struct lfs_json_reader *r, const char **key, size_t *keylen)
{
    bool first = r->first;
    int rc = next_item(r, '}');
    if (rc <= 0)
        return rc;
    if (r->p == r->end || *r->p != '"')
        return fail(r, first ? "expected a member name (a string) or '}'"
                             : "expected a member name (a string)");
    if (read_string(r, key, keylen) < 0)
        return -1;
    skip_ws(r);
    if (r->p == r->end || *r->p != ':')
        return fail(r, "expected ':' after the member name");
    r->p++;
    return 1;
}

int lfs_json_array_begin(struct lfs_json_reader *r)
{
    return open_container(r, LFS_JSON_ARRAY);
}

int lfs_json_array_next(struct lfs_json_reader *r)
{
    return next_item(r, ']');
}

int lfs_json_skip(struct lfs_json_reader *r)
{
    int64_t v;
    bool b;
    int rc;
    switch (lfs_json_peek(r)) {
    case LFS_JSON_NULL: return lfs_json_read_null(r);
    case LFS_JSON_BOOL: return lfs_json_read_bool(r, &b);
    case LFS_JSON_NUMBER: return lfs_json_read_number(r, &v, &b);
    case LFS_JSON_STRING: r->first = false; return read_string(r, NULL, NULL);
    case LFS_JSON_ARRAY:
        if (lfs_json_array_begin(r) < 0)
            return -1;
        while ((rc = lfs_json_array_next(r)) == 1)
            if (lfs_json_skip(r) < 0)
                return -1;
        return rc;
    case LFS_JSON_OBJECT:
        if (lfs_json_object_begin(r) < 0)
            return -1;
        while ((rc = lfs_json_object_next(r, NULL, NULL)) == 1)
            if (lfs_json_skip(r) < 0)
                return -1;
        return rc;
    case LFS_JSON_INVALID: break;
    }
    return expect(r, LFS_JSON_NULL); /* fails with the right message */
}

int lfs_json_read_end(struct lfs_json_reader *r)
{
    skip_ws(r);
    return r->p == r->end ? 0 : fail(r, "unexpected text after the JSON value");
}
