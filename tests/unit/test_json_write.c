/* The JSON writer and the printable-text helpers (common/json_write.c, common/text.c): every
 * string, whatever bytes it holds, must come out as valid JSON that jansson (a strict UTF-8
 * parser) reads back; valid UTF-8 must come back unchanged; bounded escaping must never split
 * a character or an escape; printable text must be valid UTF-8 without control characters
 * and cut on a character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <h2o/memory.h>
#include <jansson.h>

#include "common/error.h"
#include "common/json_write.h"
#include "common/text.h"

/* Writes {"k": s[0..n)} and parses it back with jansson; returns the decoded value. */
static json_t *round_trip(const char *s, size_t n)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "k");
    lfs_json_string(&w, s, n);
    lfs_json_end_object(&w);
    size_t len = 0;
    char *text = lfs_json_writer_take(&w, &len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (doc == NULL)
        fail_msg("not valid JSON: %s: %s", jerr.text, text);
    free(text);
    json_t *v = json_incref(json_object_get(doc, "k"));
    json_decref(doc);
    assert_true(json_is_string(v));
    return v;
}

static void test_valid_text_unchanged(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "plain",
        "q\"uote back\\slash",
        "\x01\x1f\b\f\n\r\t\x7f end",
        "caf\xc3\xa9 \xe2\x82\xac",
        "\xf0\x9d\x84\x9e clef",
        "",
        "\xef\xbf\xbd",
        "\xed\x9f\xbf",
        "\xf4\x8f\xbf\xbf",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = round_trip(cases[i], strlen(cases[i]));
        assert_int_equal(json_string_length(v), strlen(cases[i]));
        assert_memory_equal(json_string_value(v), cases[i], strlen(cases[i]));
        json_decref(v);
    }
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out; /* what jansson reads back */
    } cases[] = {
        {"G\xffT", 3, "G\xef\xbf\xbdT"},
        {"\x80", 1, "\xef\xbf\xbd"},                                 /* lone continuation */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
        {"\xf4\x90\x80\x80", 4,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* above U+10FFFF */
        {"ab\xc3", 3, "ab\xef\xbf\xbd"},                      /* cut short */
        {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
        {"a\0b", 3, "a\0b"}, /* NUL escaped as \u0000 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        struct lfs_json_writer w;
        lfs_json_writer_init(&w);
        lfs_json_string(&w, cases[i].in, cases[i].len);
        size_t len;
        char *text = lfs_json_writer_take(&w, &len);
        assert_non_null(text);
        json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (v == NULL)
            fail_msg("case %zu: not valid JSON: %s: %s", i, jerr.text, text);
        size_t want = i == 8 ? 3 : strlen(cases[i].out);
        assert_int_equal(json_string_length(v), want);
        assert_memory_equal(json_string_value(v), cases[i].out, want);
        json_decref(v);
        free(text);
    }
}

/* Every byte value at every position of a short string, and long multi-byte strings. */
static void test_every_byte(void **state)
{
    (void)state;
    char s[5] = "a_b_";
    for (int b = 0; b < 256; b++)
        for (size_t pos = 0; pos < 4; pos++) {
            char t[5];
            memcpy(t, s, 5);
            t[pos] = (char)b;
            json_decref(round_trip(t, 4));
        }
    size_t n = 3 * 5000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i += 3)
        memcpy(big + i, i % 7 == 0 ? "\xff\xfe\x01" : "\xe2\x82\xac", 3);
    json_decref(round_trip(big, n));
    free(big);
}

/* lfs_json_escape into small buffers: never more than cap, never a split character or
 * escape, and the pieces written one after the other equal the unbounded escape. */
static void test_bounded_escape(void **state)
{
    (void)state;
    const char *s = "\xe2\x82\xac\"\x01\xff\xf0\x9d\x84\x9e plain text \\ \xc3\xa9";
    size_t n = strlen(s);
    char whole[256], out[256];
    size_t used, wlen = lfs_json_escape(whole, sizeof(whole), s, n, &used);
    assert_int_equal(used, n);
    for (size_t cap = 6; cap < 40; cap++) {
        size_t done = 0, olen = 0;
        while (done < n) {
            size_t u, wrote = lfs_json_escape(out + olen, cap, s + done, n - done, &u);
            assert_true(wrote <= cap);
            assert_true(u > 0); /* 6 bytes hold any single piece */
            /* Each piece ends on a boundary: decoding it alone as a JSON string works. */
            char piece[64];
            piece[0] = '"';
            memcpy(piece + 1, out + olen, wrote);
            piece[wrote + 1] = '"';
            json_t *v = json_loadb(piece, wrote + 2, JSON_DECODE_ANY, NULL);
            assert_non_null(v);
            json_decref(v);
            olen += wrote;
            done += u;
        }
        assert_int_equal(olen, wlen);
        assert_memory_equal(out, whole, wlen);
    }
    /* Too small for the first piece: nothing consumed, nothing written. */
    assert_int_equal(lfs_json_escape(out, 3, "\x01", 1, &used), 0);
    assert_int_equal(used, 0);
}

static void test_printable(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lfs_text_printable(out, sizeof(out), "G\xffT", 3), 6);
    assert_string_equal(out, "G\\xffT");
    lfs_text_printable(out, sizeof(out), "a\nb\x1b[2Jc\\d", 10);
    assert_string_equal(out, "a\\x0ab\\x1b[2Jc\\d");
    /* Idempotent on its own output. */
    char again[64];
    lfs_text_printable(again, sizeof(again), out, strlen(out));
    assert_string_equal(again, out);
    /* 'a' + 'é' * 300 cut to 64 bytes: ends with "..." right after a whole character. */
    char in[601];
    in[0] = 'a';
    for (int i = 0; i < 300; i++)
        memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
    size_t len = lfs_text_printable(out, sizeof(out), in, sizeof(in));
    assert_true(len < sizeof(out));
    assert_memory_equal(out + len - 3, "...", 3);
    assert_int_equal(lfs_utf8_prefix(out, len, len), len);
    assert_int_equal((len - 1 - 3) % 2, 0);
    /* Every byte value: the result is always well-formed UTF-8 without controls. */
    for (int b = 0; b < 256; b++) {
        char t[3] = {'x', (char)b, 'y'};
        len = lfs_text_printable(out, sizeof(out), t, 3);
        assert_int_equal(lfs_utf8_prefix(out, len, len), len);
        for (size_t i = 0; i < len; i++)
            assert_true((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    }
}

/* The reproducer of the one-request crash: a 405 message quoting a method of 'a' + 'é' * 300
 * was cut in the middle of a character. */
static void test_error_message_cut_on_boundary(void **state)
{
    (void)state;
    char method[601];
    method[0] = 'a';
    for (int i = 0; i < 300; i++)
        memcpy(method + 1 + 2 * i, "\xc3\xa9", 2);
    struct lfs_error err;
    lfs_error_set(&err, 405, "method \"%.*s\" is not allowed here", (int)sizeof(method), method);
    size_t len = strlen(err.message);
    assert_true(len < LFS_ERROR_MESSAGE_MAX);
    assert_int_equal(lfs_utf8_prefix(err.message, len, len), len);
    assert_memory_equal(err.message + len - 3, "...", 3);
    lfs_error_set(&err, 403, "\"%s\" may not write", "G\xff\xfeT\r\n");
    assert_string_equal(err.message, "\"G\\xff\\xfeT\\x0d\\x0a\" may not write");
    /* A prefix keeps the message printable and bounded. */
    lfs_error_prefix(&err, "%s: ", "ctx\x01");
    assert_string_equal(err.message, "ctx\\x01: \"G\\xff\\xfeT\\x0d\\x0a\" may not write");
}

static void test_utf8_char_len(void **state)
{
    (void)state;
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"a", 1), 1);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xc3\xa9", 2), 2);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xc3", 1), 0);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xc1\xbf", 2), 0);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xed\xbf\xbf", 3), 0);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xef\xbf\xbf", 3), 3);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xf0\x8f\xbf\xbf", 4), 0);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(lfs_utf8_char_len((const unsigned char *)"\xe2\x28\xa1", 3), 0);
}

/* A pool writer sized for its text hands that very block over; one that outgrows its size
 * grows in the pool and keeps every byte; lfs_json_writer_take still gives malloc memory. */
static void test_pool_writer(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_json_writer w;
    lfs_json_writer_init_pool(&w, &pool, 8192);
    const char *first = w.buf;
    lfs_json_begin_array(&w);
    for (int i = 0; i < 500; i++) /* 6.5 KB */
        lfs_json_cstring(&w, "0123456789");
    lfs_json_end_array(&w);
    size_t len = 0;
    char *text = lfs_json_writer_take_pool(&w, &pool, &len);
    assert_ptr_equal(text, first);
    assert_int_equal(len, strlen(text));
    assert_int_equal(len, 2 + 500 * 13 - 1); /* "0123456789", */
    lfs_json_writer_free(&w);

    lfs_json_writer_init_pool(&w, &pool, 2048); /* too small: grows */
    lfs_json_begin_array(&w);
    for (int i = 0; i < 500; i++)
        lfs_json_int(&w, i);
    lfs_json_end_array(&w);
    text = lfs_json_writer_take_pool(&w, &pool, &len);
    json_t *parsed = json_loadb(text, len, 0, NULL);
    assert_non_null(parsed);
    assert_int_equal(json_array_size(parsed), 500);
    assert_int_equal(json_integer_value(json_array_get(parsed, 499)), 499);
    json_decref(parsed);
    char *own = lfs_json_writer_take(&w, &len); /* a copy the caller frees */
    assert_non_null(own);
    assert_ptr_not_equal(own, text);
    assert_string_equal(own, text);
    free(own);
    lfs_json_writer_free(&w);
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_unchanged),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_bounded_escape),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_utf8_char_len),
        cmocka_unit_test(test_error_message_cut_on_boundary),
        cmocka_unit_test(test_pool_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
