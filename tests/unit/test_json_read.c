/* Unit tests for common/json_read.c and common/json_write.c: documents the reader must accept
 * and refuse (RFC 8259 grammar, UTF-8, escapes, surrogates, depth), decoded strings and
 * numbers, the pull API on nested values, a differential run against jansson over thousands
 * of mutated documents (same verdict, same decoded strings), and writer output read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>

#include "common/json_read.h"
#include "common/json_write.h"

/* 0 when text[0..len) is one valid JSON value (any kind) for the reader, else -1. */
static int valid(const char *text, size_t len)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, text, len, &pool);
    int rc = lfs_json_skip(&r) == 0 && lfs_json_read_end(&r) == 0 ? 0 : -1;
    if (rc < 0)
        assert_true(r.error[0] != '\0'); /* every refusal says why */
    h2o_mem_clear_pool(&pool);
    return rc;
}

static int valid_str(const char *text)
{
    return valid(text, strlen(text));
}

static void test_accepts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5e+10",
        "-1E-2",
        "0.0",
        "true",
        "false",
        "null",
        "\"\"",
        " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : null } \n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20AC\\ud83d\\ude00\"",
        "\"caf\xc3\xa9\"",
        "\"\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\xef\xbf\xbf\"",
        "\"\xf4\x8f\xbf\xbf\"",
        "99999999999999999999999999",
        "1e999",
        "[[[[[[[[[[]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        print_message("accept: %s\n", ok[i]);
        assert_int_equal(valid_str(ok[i]), 0);
    }
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[",
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "[,1]",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{'a':1}",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "0x10",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"a\nb\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83d\\u0041\"",
        "\"\\u0000\"",
        "\"\xc0\x80\"",
        "\"\xc1\xbf\"",
        "\"\xe0\x80\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf0\x80\x80\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xff\"",
        "\"\x80\"",
        "\"\xc3\"",
        "\"\xe2\x82\"",
        "{} {}",
        "[] x",
        "1 2",
        "{\"a\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("refuse: %s\n", bad[i]);
        assert_int_equal(valid_str(bad[i]), -1);
    }
    /* a NUL byte outside and inside a string */
    assert_int_equal(valid("[1,\0 2]", 7), -1);
    assert_int_equal(valid("\"a\0b\"", 5), -1);
}

static void test_depth(void **state)
{
    (void)state;
    char text[2 * (LFS_JSON_MAX_DEPTH + 1) + 1];
    for (int depth = LFS_JSON_MAX_DEPTH; depth <= LFS_JSON_MAX_DEPTH + 1; depth++) {
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        assert_int_equal(valid(text, 2 * (size_t)depth), depth <= LFS_JSON_MAX_DEPTH ? 0 : -1);
    }
    /* a hostile body of a million brackets is refused at the limit, not by the stack */
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    assert_int_equal(valid(deep, n), -1);
    free(deep);
}

static void test_pull_api(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    const char *text = "{\"n\": -42, \"big\": 18446744073709551616, \"r\": 2.5, \"s\": "
                       "\"a\\u00e9\\ud83d\\ude00\", \"l\": [true, null, {\"k\": \"v\"}]}";
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, text, strlen(text), &pool);
    const char *key, *s;
    size_t klen, slen;
    int64_t v;
    bool is_int, b;
    assert_int_equal(lfs_json_object_begin(&r), 0);
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 1);
    assert_string_equal(key, "n");
    assert_int_equal(lfs_json_peek(&r), LFS_JSON_NUMBER);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_true(is_int);
    assert_true(v == -42);
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 1);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_false(is_int); /* beyond int64 */
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 1);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_false(is_int);
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 1);
    assert_int_equal(lfs_json_read_string(&r, &s, &slen), 0);
    assert_int_equal(slen, 7);
    assert_memory_equal(s, "a\xc3\xa9\xf0\x9f\x98\x80", 8);
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 1);
    assert_string_equal(key, "l");
    assert_int_equal(lfs_json_array_begin(&r), 0);
    assert_int_equal(lfs_json_array_next(&r), 1);
    assert_int_equal(lfs_json_read_bool(&r, &b), 0);
    assert_true(b);
    assert_int_equal(lfs_json_array_next(&r), 1);
    /* the wrong type is an error that names what was expected */
    struct lfs_json_reader copy = r;
    assert_int_equal(lfs_json_read_string(&copy, &s, &slen), -1);
    assert_non_null(strstr(copy.error, "expected a string, found null"));
    assert_int_equal(lfs_json_read_null(&r), 0);
    assert_int_equal(lfs_json_array_next(&r), 1);
    assert_int_equal(lfs_json_skip(&r), 0);
    assert_int_equal(lfs_json_array_next(&r), 0);
    assert_int_equal(lfs_json_object_next(&r, &key, &klen), 0);
    assert_int_equal(lfs_json_read_end(&r), 0);
    /* the int64 limits */
    lfs_json_reader_init(&r, "-9223372036854775808", 20, &pool);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_true(is_int && v == INT64_MIN);
    lfs_json_reader_init(&r, "9223372036854775807", 19, &pool);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_true(is_int && v == INT64_MAX);
    lfs_json_reader_init(&r, "-9223372036854775809", 20, &pool);
    assert_int_equal(lfs_json_read_number(&r, &v, &is_int), 0);
    assert_false(is_int);
    h2o_mem_clear_pool(&pool);
}

/* xorshift: the same mutations on every run, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Decoded value of a top-level string for the reader (NULL when it refuses). */
static const char *reader_string(const char *text, size_t len, h2o_mem_pool_t *pool, size_t *n)
{
    struct lfs_json_reader r;
    lfs_json_reader_init(&r, text, len, pool);
    const char *s;
    if (lfs_json_peek(&r) != LFS_JSON_STRING || lfs_json_read_string(&r, &s, n) < 0 ||
        lfs_json_read_end(&r) < 0)
        return NULL;
    return s;
}

/* Mutations of seed documents (byte flips, insertions of JSON-significant bytes, deletions,
 * truncations) must get the same verdict from the reader and from jansson, except where
 * jansson refuses numbers it cannot store (which are valid JSON); strings must decode to the
 * same bytes. */
static void test_differential_jansson(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"operation\": \"upload\", \"transfers\": [\"basic\"], \"ref\": {\"name\": "
        "\"refs/heads/main\"}, \"objects\": [{\"oid\": "
        "\"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\", \"size\": 3, "
        "\"extra\": {\"filename\": \"caf\xc3\xa9 \\u00e9.txt\"}}], \"hash_algo\": \"sha256\"}",
        "[1, -2.5e3, true, false, null, \"\\ud83d\\ude00\\n\\t\", {\"a\": [[], {}]}]",
        "\"\\u0041\\u00e9\\u20ac\\ud834\\udd1e \xf0\x9f\x98\x80 \xe2\x82\xac\"",
    };
    static const char significant[] = "{}[]\",:\\u0123456789.eE+-tfnl \x80\xc3\xed\xf0";
    size_t checked = 0, agreed_valid = 0;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        size_t slen = strlen(seeds[s]);
        for (int round = 0; round < 3000; round++) {
            char buf[512];
            size_t len = slen;
            memcpy(buf, seeds[s], len);
            int edits = 1 + (int)(rng() % 3);
            for (int e = 0; e < edits && len > 0; e++) {
                size_t at = rng() % len;
                switch (rng() % 4) {
                case 0: buf[at] = significant[rng() % (sizeof(significant) - 1)]; break;
                case 1:
                    if (len < sizeof(buf) - 1) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = significant[rng() % (sizeof(significant) - 1)];
                        len++;
                    }
                    break;
                case 2:
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                    break;
                case 3: len = at; break;
                }
            }
            json_error_t jerr;
            json_t *j = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
            if (j == NULL && (strstr(jerr.text, "too big") || strstr(jerr.text, "overflow")))
                continue;
            int ours = valid(buf, len);
            if ((j != NULL) != (ours == 0))
                fail_msg("verdicts differ (jansson: %s, reader: %s) on: %.*s",
                         j ? "valid" : jerr.text, ours == 0 ? "valid" : "invalid", (int)len, buf);
            checked++;
            if (j != NULL && json_is_string(j)) {
                size_t n = 0;
                const char *d = reader_string(buf, len, &pool, &n);
                assert_non_null(d);
                assert_int_equal(n, json_string_length(j));
                assert_memory_equal(d, json_string_value(j), n);
            }
            agreed_valid += j != NULL;
            json_decref(j);
        }
    }
    h2o_mem_clear_pool(&pool);
    print_message("%zu mutated documents, %zu of them valid\n", checked, agreed_valid);
    assert_true(checked > 8000);
    assert_true(agreed_valid > 100); /* the run also exercises the accepting paths */
}

/* What the writer writes, jansson reads back with the same values. */
static void test_writer_roundtrip(void **state)
{
    (void)state;
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "s");
    lfs_json_string(&w, "q\"b\\s\n\x01\x1f caf\xc3\xa9", 14);
    lfs_json_key(&w, "n");
    lfs_json_int(&w, INT64_MIN);
    lfs_json_key(&w, "m");
    lfs_json_int(&w, INT64_MAX);
    lfs_json_key(&w, "z");
    lfs_json_int(&w, 0);
    lfs_json_key(&w, "l");
    lfs_json_begin_array(&w);
    lfs_json_bool(&w, true);
    lfs_json_null(&w);
    lfs_json_cstring(&w, NULL);
    lfs_json_begin_object(&w);
    lfs_json_end_object(&w);
    lfs_json_raw(&w, "[1,2]", 5);
    lfs_json_end_array(&w);
    /* a long string moves the text from the inline buffer to the heap */
    char big[5000];
    memset(big, 'x', sizeof(big));
    lfs_json_key(&w, "big");
    lfs_json_string(&w, big, sizeof(big));
    lfs_json_end_object(&w);
    size_t len = 0;
    char *text = lfs_json_writer_take(&w, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %.200s", jerr.text, text);
    assert_int_equal(json_string_length(json_object_get(j, "s")), 14);
    assert_memory_equal(json_string_value(json_object_get(j, "s")), "q\"b\\s\n\x01\x1f caf\xc3\xa9",
                        14);
    assert_true(json_integer_value(json_object_get(j, "n")) == INT64_MIN);
    assert_true(json_integer_value(json_object_get(j, "m")) == INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(j, "z")), 0);
    const json_t *l = json_object_get(j, "l");
    assert_int_equal(json_array_size(l), 5);
    assert_true(json_is_true(json_array_get(l, 0)));
    assert_true(json_is_null(json_array_get(l, 2)));
    assert_int_equal(json_array_size(json_array_get(l, 4)), 2);
    assert_int_equal(json_string_length(json_object_get(j, "big")), sizeof(big));
    json_decref(j);
    free(text);
    /* into a pool, from the inline buffer */
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    lfs_json_writer_init(&w);
    lfs_json_begin_array(&w);
    lfs_json_int(&w, -7);
    lfs_json_int(&w, 12);
    lfs_json_end_array(&w);
    const char *p = lfs_json_writer_take_pool(&w, &pool, &len);
    lfs_json_writer_free(&w);
    assert_string_equal(p, "[-7,12]");
    assert_int_equal(len, 7);
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_pull_api),
        cmocka_unit_test(test_differential_jansson),
        cmocka_unit_test(test_writer_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
