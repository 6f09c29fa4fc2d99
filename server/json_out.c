/* See json_out.h. Strings are copied in runs between the characters JSON must escape. */
#include "server/json_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static bool reserve(struct out *o, size_t n)
{
    if (o->failed)
        return false;
    if (o->len + n <= o->cap)
        return true;
    size_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n + 256;
    char *nb = realloc(o->buf, cap);
    if (nb == NULL) {
        o->failed = true;
        return false;
    }
    o->buf = nb;
    o->cap = cap;
    return true;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (reserve(o, n)) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

static void put_string(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
    /* Bytes that need an escape: control characters, '"' and '\\'. A table keeps the scan of
     * the long plain runs (hrefs, tokens) to a load and a test per byte. */
    static const unsigned char special[256] = {
        [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
    };
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!special[c])
            continue;
        put(o, s + run, i - run);
        run = i + 1;
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
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        put(o, esc, elen);
    }
    put(o, s + run, n - run);
    put(o, "\"", 1);
}

static void render(struct out *o, const json_t *v)
{
    char num[40];
    int n;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        put(o, "{", 1);
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                put(o, ",", 1);
            first = false;
            const char *key = json_object_iter_key(it);
            put_string(o, key, strlen(key));
            put(o, ":", 1);
            render(o, json_object_iter_value(it));
        }
        put(o, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                put(o, ",", 1);
            render(o, json_array_get(v, i));
        }
        put(o, "]", 1);
        break;
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(o, num, (size_t)n);
        break;
    case JSON_REAL:
        if (!isfinite(json_real_value(v))) {
            o->failed = true;
            break;
        }
        n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        put(o, num, (size_t)n);
        break;
    case JSON_TRUE:
        put(o, "true", 4);
        break;
    case JSON_FALSE:
        put(o, "false", 5);
        break;
    case JSON_NULL:
        put(o, "null", 4);
        break;
    }
}

char *lfs_json_render(const json_t *value, size_t *len)
{
    struct out o = {.buf = malloc(4096), .cap = 4096};
    if (o.buf == NULL)
        return NULL;
    render(&o, value);
    if (!reserve(&o, 1)) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    *len = o.len;
    return o.buf;
}
