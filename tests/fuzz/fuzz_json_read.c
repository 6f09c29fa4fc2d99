/* Fuzz target: the JSON pull reader (common/json_read.c). Property: it agrees with jansson on
 * what is valid JSON, and on a valid text the values it reads (walked with the pull API as the
 * handlers walk requests) equal the values jansson parses, string bytes and integers included.
 * Where the two differ by design the comparison is skipped: numbers jansson cannot store
 * ("too big", "overflow"), nesting past the reader's LFS_JSON_MAX_DEPTH, and NUL bytes (which
 * jansson takes for the end of the text; the reader must refuse them). */
#define H2O_USE_LIBUV 0
#include <h2o/memory.h>
#include <jansson.h>
#include <string.h>

#include "common/json_read.h"
#include "fuzz.h"

/* Stands for a number that is not an int64 (fraction, exponent, out of range), which the
 * reader does not convert: any jansson real matches it. */
static json_t *real_marker;

/* Reads the next value with the pull API into a jansson value (objects: the last of
 * duplicate keys wins, as in jansson). Returns a new reference, or NULL on a syntax error. */
static json_t *read_value(struct lfs_json_reader *r)
{
    const char *s;
    size_t len;
    int64_t v;
    bool b, is_int;
    json_t *out;
    switch (lfs_json_peek(r)) {
    case LFS_JSON_NULL: return lfs_json_read_null(r) == 0 ? json_null() : NULL;
    case LFS_JSON_BOOL: return lfs_json_read_bool(r, &b) == 0 ? json_boolean(b) : NULL;
    case LFS_JSON_NUMBER:
        if (lfs_json_read_number(r, &v, &is_int) < 0)
            return NULL;
        return is_int ? json_integer(v) : json_incref(real_marker);
    case LFS_JSON_STRING:
        if (lfs_json_read_string(r, &s, &len) < 0)
            return NULL;
        LFS_FUZZ_CHECK(s[len] == '\0' && strlen(s) == len); /* no NUL inside ("\u0000") */
        return json_stringn_nocheck(s, len);
    case LFS_JSON_ARRAY:
        if (lfs_json_array_begin(r) < 0)
            return NULL;
        out = json_array();
        for (int rc; (rc = lfs_json_array_next(r)) != 0;) {
            json_t *item = rc > 0 ? read_value(r) : NULL;
            if (item == NULL) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, item);
        }
        return out;
    case LFS_JSON_OBJECT:
        if (lfs_json_object_begin(r) < 0)
            return NULL;
        out = json_object();
        for (int rc; (rc = lfs_json_object_next(r, &s, &len)) != 0;) {
            json_t *item = rc > 0 ? read_value(r) : NULL;
            if (item == NULL) {
                json_decref(out);
                return NULL;
            }
            LFS_FUZZ_CHECK(strlen(s) == len);
            json_object_set_new_nocheck(out, s, item);
        }
        return out;
    case LFS_JSON_INVALID: break;
    }
    lfs_json_skip(r); /* sets the error */
    return NULL;
}

/* True when ours (from read_value) holds the same values as theirs (from jansson). */
static bool same(const json_t *ours, const json_t *theirs)
{
    if (json_is_real(theirs))
        return ours == real_marker;
    if (json_typeof(ours) != json_typeof(theirs))
        return false;
    size_t i;
    const char *key;
    const json_t *v;
    switch (json_typeof(theirs)) {
    case JSON_STRING:
        return json_string_length(ours) == json_string_length(theirs) &&
               memcmp(json_string_value(ours), json_string_value(theirs),
                      json_string_length(ours)) == 0;
    case JSON_INTEGER: return json_integer_value(ours) == json_integer_value(theirs);
    case JSON_ARRAY:
        if (json_array_size(ours) != json_array_size(theirs))
            return false;
        json_array_foreach(theirs, i, v)
        {
            if (!same(json_array_get(ours, i), v))
                return false;
        }
        return true;
    case JSON_OBJECT:
        if (json_object_size(ours) != json_object_size(theirs))
            return false;
        json_object_foreach((json_t *)theirs, key, v)
        {
            const json_t *o = json_object_get(ours, key);
            if (o == NULL || !same(o, v))
                return false;
        }
        return true;
    default: return true; /* true, false, null: the type says it all */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (real_marker == NULL)
        real_marker = json_object();
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, (const char *)data, size, &pool);
    json_t *ours = read_value(&r);
    if (ours != NULL && lfs_json_read_end(&r) < 0) {
        json_decref(ours);
        ours = NULL;
    }
    LFS_FUZZ_CHECK(ours != NULL || r.error[0] != '\0'); /* every refusal says why */

    json_error_t jerr;
    json_t *theirs = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    bool jansson_limit = theirs == NULL && (strstr(jerr.text, "too big") != NULL ||
                                            strstr(jerr.text, "overflow") != NULL);
    bool depth_limit = ours == NULL && strstr(r.error, "nested deeper") != NULL;
    /* jansson takes a NUL byte for the end of the text ("0\0" is valid to it); in JSON a NUL
     * is never valid, not even inside a string, so the reader must refuse it. */
    bool has_nul = memchr(data, 0, size) != NULL;
    if (has_nul)
        LFS_FUZZ_CHECK(ours == NULL);
    if (!jansson_limit && !depth_limit && !has_nul) {
        if ((ours != NULL) != (theirs != NULL)) {
            fprintf(stderr, "verdicts differ: jansson %s, reader %s\n",
                    theirs != NULL ? "valid" : jerr.text, ours != NULL ? "valid" : r.error);
            abort();
        }
        LFS_FUZZ_CHECK(ours == NULL || same(ours, theirs));
    }
    json_decref(ours);
    json_decref(theirs);
    h2o_mem_clear_pool(&pool);
    return 0;
}
