/* lfs_json_render: the text must parse back to an equal value and match jansson's compact
 * dump byte for byte (escapes, key order, numbers), for the shapes batch answers use and for
 * hostile strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/json_out.h"

static void check_same_as_jansson(json_t *value)
{
    size_t len = 0;
    char *ours = lfs_json_render(value, &len);
    char *theirs = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(ours);
    assert_non_null(theirs);
    assert_int_equal(len, strlen(ours));
    assert_string_equal(ours, theirs);
    json_t *back = json_loads(ours, JSON_DECODE_ANY, NULL);
    assert_non_null(back);
    assert_true(json_equal(back, value));
    json_decref(back);
    free(ours);
    free(theirs);
    json_decref(value);
}

static void test_batch_shape(void **state)
{
    (void)state;
    check_same_as_jansson(json_pack(
        "{s:s, s:[{s:s, s:I, s:b, s:{s:{s:s, s:{s:s}, s:i}}}, {s:s, s:i, s:{s:i, s:s}}], s:s}",
        "transfer", "basic", "objects", "oid", "ab", "size", (json_int_t)1 << 40, "authenticated",
        1, "actions", "upload", "href", "http://h/o/r.git/info/lfs/objects/storage/ab", "header",
        "Authorization", "Bearer x.y.z", "expires_in", 900, "oid", "cd", "size", 0, "error", "code",
        404, "message", "object does not exist", "hash_algo", "sha256"));
}

static void test_escapes(void **state)
{
    (void)state;
    check_same_as_jansson(json_pack("{s:s, s:s, s:s}", "q\"uote", "back\\slash \"x\"", "ctl",
                                    "\x01\x1f\b\f\n\r\t end", "utf8", "caf\xc3\xa9 \xe2\x82\xac"));
}

static void test_scalars_and_empty(void **state)
{
    (void)state;
    check_same_as_jansson(
        json_pack("[n, b, b, i, I, {}, [], s]", 0, 1, -7, (json_int_t)-9007199254740993LL, ""));
}

static void test_large(void **state)
{
    (void)state;
    json_t *list = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(list, json_pack("{s:i, s:s}", "i", i, "s", "0123456789abcdef"));
    check_same_as_jansson(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_shape),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_scalars_and_empty),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
