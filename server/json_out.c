/* See json_out.h. A walk over the tree that feeds common/json_write.c, which owns the
 * escaping and the buffer. */
#include "server/json_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "common/json_write.h"

static void render(struct lfs_json_writer *w, const json_t *v)
{
    char num[40];
    int n;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        lfs_json_begin_object(w);
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            lfs_json_key(w, json_object_iter_key(it));
            render(w, json_object_iter_value(it));
        }
        lfs_json_end_object(w);
        break;
    case JSON_ARRAY:
        lfs_json_begin_array(w);
        for (size_t i = 0; i < json_array_size(v); i++)
            render(w, json_array_get(v, i));
        lfs_json_end_array(w);
        break;
    case JSON_STRING: lfs_json_string(w, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lfs_json_int(w, (int64_t)json_integer_value(v)); break;
    case JSON_REAL:
        if (!isfinite(json_real_value(v))) {
            w->failed = true;
            break;
        }
        n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        lfs_json_raw(w, num, (size_t)n);
        break;
    case JSON_TRUE:
    case JSON_FALSE: lfs_json_bool(w, json_is_true(v)); break;
    case JSON_NULL: lfs_json_null(w); break;
    }
}

char *lfs_json_render(const json_t *value, size_t *len)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    render(&w, value);
    return lfs_json_writer_take(&w, len);
}

void lfs_json_render_into(struct lfs_json_writer *w, const json_t *value)
{
    render(w, value);
}
