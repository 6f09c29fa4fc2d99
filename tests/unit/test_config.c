/* Unit tests for config/: YAML typing and hostile input, the merge order of lfs_config_load,
 * the giftless environment-override rules (through a fake getenv fed from a table), giftless's
 * documented example files, and the exact messages of the typed getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"

#ifndef LFS_TEST_DATA_DIR
#define LFS_TEST_DATA_DIR "tests/unit/data"
#endif
#define DATA(name) LFS_TEST_DATA_DIR "/config/" name

/* ---- helpers ---- */

struct fake_var {
    const char *name, *value;
};

/* The environment seen by fake_getenv: a table ending with {NULL, NULL}. */
static const struct fake_var *fake_env;

static const char *fake_getenv(const char *name)
{
    for (const struct fake_var *v = fake_env; v != NULL && v->name != NULL; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static char tmp_dir[64];
static char tmp_paths[32][128];
static int n_tmp_paths;

static int make_tmp_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/lfs-config-test-XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int remove_tmp_dir(void **state)
{
    (void)state;
    for (int i = 0; i < n_tmp_paths; i++)
        unlink(tmp_paths[i]);
    return rmdir(tmp_dir);
}

/* Writes a file under the temp dir and returns its path (valid until the group ends). */
static const char *write_tmp(const char *name, const char *content)
{
    char *path = tmp_paths[n_tmp_paths++];
    FILE *f;
    assert_true(n_tmp_paths <= 32);
    snprintf(path, sizeof(tmp_paths[0]), "%s/%s", tmp_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return path;
}

static json_t *json_from(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("bad expected JSON in test: %s: %s", jerr.text, text);
    return v;
}

/* Fails the test showing both trees when they differ; json_equal also tells 1 from 1.0. */
static void assert_json(const json_t *actual, const char *expected_text)
{
    json_t *expected = json_from(expected_text);
    if (!json_equal(actual, expected)) {
        char *a = json_dumps(actual, JSON_ENCODE_ANY | JSON_COMPACT);
        print_error("expected %s\n     got %s\n", expected_text, a ? a : "(null)");
        free(a);
        json_decref(expected);
        fail();
    }
    json_decref(expected);
}

static void assert_yaml(const char *yaml, const char *expected_json)
{
    struct lfs_error err = {0};
    json_t *v = NULL;
    if (lfs_config_parse_yaml(yaml, strlen(yaml), "t.yaml", &v, &err) != 0)
        fail_msg("parse failed: %s\n  yaml: %s", err.message, yaml);
    assert_json(v, expected_json);
    json_decref(v);
}

static void assert_yaml_len_error(const char *yaml, size_t len, const char *message)
{
    struct lfs_error err = {0};
    json_t *v = (json_t *)1;
    assert_int_equal(lfs_config_parse_yaml(yaml, len, "t.yaml", &v, &err), -1);
    assert_null(v);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.message, message);
}

static void assert_yaml_error(const char *yaml, const char *message)
{
    assert_yaml_len_error(yaml, strlen(yaml), message);
}

static json_t *load_ok(const char *defaults_json, const char *file, struct lfs_config_origin *o)
{
    struct lfs_error err = {0};
    json_t *defaults = defaults_json ? json_from(defaults_json) : NULL, *out = NULL;
    if (lfs_config_load(defaults, file, fake_getenv, &out, o, &err) != 0)
        fail_msg("load failed: %s", err.message);
    json_decref(defaults);
    return out;
}

static void assert_load_error(const char *defaults_json, const char *file, const char *message)
{
    struct lfs_error err = {0};
    json_t *defaults = defaults_json ? json_from(defaults_json) : NULL, *out = (json_t *)1;
    assert_int_equal(lfs_config_load(defaults, file, fake_getenv, &out, NULL, &err), -1);
    assert_null(out);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.message, message);
    json_decref(defaults);
}

/* giftless's built-in default_config (giftless/config.py), as JSON. */
static const char giftless_defaults[] =
    "{\"TESTING\": false, \"DEBUG\": false, \"LEGACY_ENDPOINTS\": true,"
    " \"TRANSFER_ADAPTERS\": {\"basic\": {"
    "   \"factory\": \"giftless.transfer.basic_streaming:factory\","
    "   \"options\": {\"storage_class\": \"giftless.storage.local_storage:LocalStorage\","
    "                 \"storage_options\": {\"path\": \"lfs-storage\"},"
    "                 \"action_lifetime\": 900}}},"
    " \"AUTH_PROVIDERS\": [\"giftless.auth.allow_anon:read_only\"],"
    " \"PRE_AUTHORIZED_ACTION_PROVIDER\": {"
    "   \"factory\": \"giftless.auth.jwt:factory\","
    "   \"options\": {\"algorithm\": \"HS256\", \"private_key\": \"change-me\","
    "                 \"private_key_file\": null, \"public_key\": null,"
    "                 \"public_key_file\": null, \"default_lifetime\": 60,"
    "                 \"key_id\": \"giftless-internal-jwt-key\"}},"
    " \"MIDDLEWARE\": []}";

/* ---- YAML ---- */

static void test_yaml_plain_scalar_types(void **state)
{
    (void)state;
    /* nulls */
    assert_yaml("[~, null, Null, NULL, nULL]", "[null, null, null, null, \"nULL\"]");
    assert_yaml("a:\nb: ~", "{\"a\": null, \"b\": null}");
    /* YAML 1.1 booleans as PyYAML: y/n and mixed case are strings */
    assert_yaml("[true, True, TRUE, yes, Yes, YES, on, On, ON]",
                "[true, true, true, true, true, true, true, true, true]");
    assert_yaml("[false, False, FALSE, no, No, NO, off, Off, OFF]",
                "[false, false, false, false, false, false, false, false, false]");
    assert_yaml("[y, n, tRUE, yEs, oN]", "[\"y\", \"n\", \"tRUE\", \"yEs\", \"oN\"]");
    /* integers: decimal, sign, '_', hex, YAML 1.1 octal and binary, base 60 */
    assert_yaml("[0, 12, -12, +12, 1_000, 0x1F, -0x1f, 017, 0b101, 1:30, 190:20:30]",
                "[0, 12, -12, 12, 1000, 31, -31, 15, 5, 90, 685230]");
    assert_yaml("[-9223372036854775808, 9223372036854775807]",
                "[-9223372036854775808, 9223372036854775807]");
    /* not integers in YAML 1.1: 0o17 (1.2 syntax), 09 (bad octal), 1:60 */
    assert_yaml("[0o17, 09, 1:60, 0x, 12abc]", "[\"0o17\", \"09\", \"1:60\", \"0x\", \"12abc\"]");
    /* floats: PyYAML needs a '.' and a signed exponent */
    assert_yaml("[1.5, -2.5, .5, 1., 1.0e+3, 1_000.5, 1:30.5, 6.02E-2]",
                "[1.5, -2.5, 0.5, 1.0, 1000.0, 1000.5, 90.5, 0.0602]");
    assert_yaml("[1e5, -.5, 1.5e3, 1.2.3]", "[\"1e5\", \"-.5\", \"1.5e3\", \"1.2.3\"]");
    /* everything else is a string; dates stay strings (JSON has no date) */
    assert_yaml("[hello world, 2001-12-14, \"<<\", giftless.auth.jwt:factory, a: b]",
                "[\"hello world\", \"2001-12-14\", \"<<\", \"giftless.auth.jwt:factory\","
                " {\"a\": \"b\"}]");
}

static void test_yaml_quoted_scalars_are_strings(void **state)
{
    (void)state;
    assert_yaml("[\"true\", 'yes', \"12\", '0x1F', \"~\", '', \"1.5\", \"null\"]",
                "[\"true\", \"yes\", \"12\", \"0x1F\", \"~\", \"\", \"1.5\", \"null\"]");
    assert_yaml("a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\n",
                "{\"a\": \"line 1\\nline 2\\n\", \"b\": \"folded text\\n\"}");
    assert_yaml("a: \"caf\\u00e9 \\t\"", "{\"a\": \"caf\\u00e9 \\t\"}");
}

static void test_yaml_tags(void **state)
{
    (void)state;
    assert_yaml("[!!str 12, !!str true, !!str ~, ! 12]", "[\"12\", \"true\", \"~\", \"12\"]");
    assert_yaml("[!!int \"12\", !!int '0x1F', !!int 1_0]", "[12, 31, 10]");
    assert_yaml("[!!bool \"yes\", !!bool 'FALSE', !!bool On]", "[true, false, true]");
    assert_yaml("[!!null \"\", !!null whatever]", "[null, null]");
    assert_yaml("[!!float 1, !!float '2.5', !!float 1e3]", "[1.0, 2.5, 1000.0]");
    assert_yaml("!!map {a: !!seq [1]}", "{\"a\": [1]}");
    assert_yaml("a: !<tag:yaml.org,2002:str> 5", "{\"a\": \"5\"}");
    assert_yaml_error("a: !!int abc", "t.yaml: line 1, column 4: invalid integer \"abc\"");
    assert_yaml_error("a: !!bool maybe", "t.yaml: line 1, column 4: invalid boolean \"maybe\"");
    assert_yaml_error("a: !!float x1",
                      "t.yaml: line 1, column 4: invalid or out-of-range float \"x1\"");
    assert_yaml_error("x: 1\ny: !!python/object:os.system ls",
                      "t.yaml: line 2, column 4: unsupported tag "
                      "\"tag:yaml.org,2002:python/object:os.system\"");
    assert_yaml_error("a: !custom {b: 1}", "t.yaml: line 1, column 4: unsupported tag \"!custom\"");
    assert_yaml_error("a: !!binary aGk=",
                      "t.yaml: line 1, column 4: unsupported tag \"tag:yaml.org,2002:binary\"");
}

static void test_yaml_unrepresentable_numbers(void **state)
{
    (void)state;
    assert_yaml_error("a: 9223372036854775808",
                      "t.yaml: line 1, column 4: integer \"9223372036854775808\" is out of range");
    assert_yaml_error("a: -0x8000000000000001",
                      "t.yaml: line 1, column 4: integer \"-0x8000000000000001\" is out of range");
    assert_yaml_error("a: [1, .inf]",
                      "t.yaml: line 1, column 8: \".inf\": infinity and NaN are not supported");
    assert_yaml_error("a: .NaN",
                      "t.yaml: line 1, column 4: \".NaN\": infinity and NaN are not supported");
    assert_yaml_error("a: 1.0e+999",
                      "t.yaml: line 1, column 4: invalid or out-of-range float \"1.0e+999\"");
}

static void test_yaml_nesting(void **state)
{
    (void)state;
    assert_yaml("TRANSFER_ADAPTERS:\n"
                "  basic:\n"
                "    factory: f\n"
                "    options:\n"
                "      list:\n"
                "        - 1\n"
                "        - [a, {b: c}]\n"
                "        - k: v\n"
                "          k2: v2\n"
                "      empty_map: {}\n"
                "      empty_list: []\n",
                "{\"TRANSFER_ADAPTERS\": {\"basic\": {\"factory\": \"f\", \"options\": {"
                "\"list\": [1, [\"a\", {\"b\": \"c\"}], {\"k\": \"v\", \"k2\": \"v2\"}],"
                "\"empty_map\": {}, \"empty_list\": []}}}}");
    /* top level need not be a mapping for the parser (lfs_config_load checks that) */
    assert_yaml("- 1\n- two\n", "[1, \"two\"]");
    assert_yaml("just text", "\"just text\"");
}

static void test_yaml_json_is_yaml(void **state)
{
    (void)state;
    assert_yaml("{\"AUTH_PROVIDERS\":[\"giftless.auth.allow_anon:read_write\"],"
                " \"n\": 1, \"f\": 2.5, \"t\": true, \"z\": null, \"s\": \"1\"}",
                "{\"AUTH_PROVIDERS\": [\"giftless.auth.allow_anon:read_write\"],"
                " \"n\": 1, \"f\": 2.5, \"t\": true, \"z\": null, \"s\": \"1\"}");
}

static void test_yaml_documents(void **state)
{
    struct lfs_error err = {0};
    json_t *v = (json_t *)1;
    (void)state;
    assert_yaml("", "null");
    assert_yaml("# only a comment\n", "null");
    assert_yaml("---\n", "null");
    assert_yaml("---\na: 1\n...\n", "{\"a\": 1}");
    assert_int_equal(lfs_config_parse_yaml(NULL, 0, "t.yaml", &v, &err), 0);
    assert_true(json_is_null(v));
    json_decref(v);
    assert_yaml_error("a: 1\n---\nb: 2\n", "t.yaml: line 2, column 1: expected a single "
                                           "document, but found another document");
}

static void test_yaml_anchors_and_aliases(void **state)
{
    struct lfs_error err = {0};
    json_t *v;
    const char *doc = "storage: &st {container_name: lfs, path_prefix: p}\n"
                      "name: &n giftless\n"
                      "list: &l [1, 2]\n"
                      "a: {storage_options: *st, who: *n, items: *l}\n"
                      "b: *st\n";
    (void)state;
    assert_yaml(doc, "{\"storage\": {\"container_name\": \"lfs\", \"path_prefix\": \"p\"},"
                     " \"name\": \"giftless\", \"list\": [1, 2],"
                     " \"a\": {\"storage_options\": {\"container_name\": \"lfs\","
                     " \"path_prefix\": \"p\"}, \"who\": \"giftless\", \"items\": [1, 2]},"
                     " \"b\": {\"container_name\": \"lfs\", \"path_prefix\": \"p\"}}");
    /* aliases are copies: editing one place (as merging and env overrides do) leaves the
     * others alone */
    assert_int_equal(lfs_config_parse_yaml(doc, strlen(doc), "t.yaml", &v, &err), 0);
    assert_ptr_not_equal(json_object_get(v, "storage"), json_object_get(v, "b"));
    json_object_set_new(json_object_get(v, "b"), "container_name", json_string("other"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "storage"), "container_name")), "lfs");
    json_decref(v);
    /* a redefined anchor applies from its new definition on */
    assert_yaml("[&x 1, *x, &x 2, *x]", "[1, 1, 2, 2]");
    /* an alias to a scalar keeps the scalar's type */
    assert_yaml("[&t true, *t, &i 0x10, *i]", "[true, true, 16, 16]");
}

static void test_yaml_alias_errors(void **state)
{
    (void)state;
    assert_yaml_error("a: &x [1, *x]", "t.yaml: line 1, column 11: recursive alias \"x\"");
    assert_yaml_error("a: &x\n  b: *x\n", "t.yaml: line 2, column 6: recursive alias \"x\"");
    assert_yaml_error("a: 1\nb: *nope\n", "t.yaml: line 2, column 4: undefined alias \"nope\"");
}

static void test_yaml_merge_keys(void **state)
{
    (void)state;
    /* PyYAML's rules: explicit keys win; with two "<<" keys the later wins; in a "<<" list
     * the earlier mapping wins */
    assert_yaml("a: &a {x: 1, y: 1}\n"
                "b: &b {x: 2, z: 2}\n"
                "explicit: {<<: *a, x: 9}\n"
                "explicit_first: {x: 9, <<: *a}\n"
                "list: {<<: [*a, *b]}\n"
                "two: {<<: *a, <<: *b}\n"
                "inline: {<<: {q: 1}}\n"
                "quoted: {\"<<\": 1}\n",
                "{\"a\": {\"x\": 1, \"y\": 1}, \"b\": {\"x\": 2, \"z\": 2},"
                " \"explicit\": {\"x\": 9, \"y\": 1}, \"explicit_first\": {\"x\": 9, \"y\": 1},"
                " \"list\": {\"x\": 1, \"y\": 1, \"z\": 2},"
                " \"two\": {\"x\": 2, \"y\": 1, \"z\": 2}, \"inline\": {\"q\": 1},"
                " \"quoted\": {\"<<\": 1}}");
    assert_yaml_error("a: {<<: 1}", "t.yaml: line 1, column 9: expected a mapping or list of "
                                    "mappings for merging");
    assert_yaml_error("a: {<<: [{x: 1}, 2]}", "t.yaml: line 1, column 9: expected a mapping "
                                              "or list of mappings for merging");
}

static void test_yaml_keys(void **state)
{
    (void)state;
    /* non-string keys become their text as written */
    assert_yaml("1: a\ntrue: b\n~: c\n1.5: d\n0x1F: e\n'q': f\nyes: g\n",
                "{\"1\": \"a\", \"true\": \"b\", \"~\": \"c\", \"1.5\": \"d\", \"0x1F\": \"e\","
                " \"q\": \"f\", \"yes\": \"g\"}");
    assert_yaml("k: &k name\n*k : 1\n", "{\"k\": \"name\", \"name\": 1}");
    assert_yaml_error("? [a, b]\n: 1\n", "t.yaml: line 1, column 3: mapping keys must be scalars");
    assert_yaml_error("{a: 1, {b: 2}: 3}",
                      "t.yaml: line 1, column 8: mapping keys must be scalars");
    assert_yaml_error("l: &l [1]\n*l : 2\n",
                      "t.yaml: line 2, column 1: mapping keys must be scalars");
}

static void test_yaml_duplicate_keys(void **state)
{
    (void)state;
    assert_yaml_error("TRANSFER_ADAPTERS:\n"
                      "  basic:\n"
                      "    factory: a\n"
                      "    options: {}\n"
                      "    factory: b\n",
                      "t.yaml: line 5, column 5: duplicate key \"factory\"");
    assert_yaml_error("{a: 1, b: 2, a: 3}", "t.yaml: line 1, column 14: duplicate key \"a\"");
    /* the same text: 1 and "1" are one JSON key */
    assert_yaml_error("1: a\n\"1\": b\n", "t.yaml: line 2, column 1: duplicate key \"1\"");
    /* the same key in different mappings is fine */
    assert_yaml("a: {x: 1}\nb: {x: 2}\n", "{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}}");
}

static void test_yaml_syntax_error_positions(void **state)
{
    (void)state;
    /* "options" indented one column short of its siblings */
    assert_yaml_error("TRANSFER_ADAPTERS:\n"
                      "  basic:\n"
                      "    factory: x\n"
                      "   options: y\n",
                      "t.yaml: line 4, column 4: did not find expected key (while parsing a "
                      "block mapping at line 2, column 3)");
    assert_yaml_error("AUTH_PROVIDERS:\n"
                      "  - factory: giftless.auth.jwt:factory\n"
                      "    options: {algorithm: RS256\n",
                      "t.yaml: line 4, column 1: did not find expected ',' or '}' (while parsing "
                      "a flow mapping at line 3, column 14)");
    assert_yaml_error("key: \"value\n",
                      "t.yaml: line 2, column 1: found unexpected end of stream (while scanning "
                      "a quoted scalar at line 1, column 6)");
    assert_yaml_error("a: b: c", "t.yaml: line 1, column 5: mapping values are not allowed in "
                                 "this context");
    assert_yaml_error("a: 1\n\tb: 2\n", "t.yaml: line 2, column 1: found a tab character that "
                                        "violates indentation (while scanning a plain scalar at "
                                        "line 1, column 4)");
    /* encoding errors carry a byte offset, converted to line and column */
    assert_yaml_error("a: 1\nb: \xff\n", "t.yaml: line 2, column 4: invalid leading UTF-8 octet");
    assert_yaml_len_error("a: \"x\\0y\"", 9,
                          "t.yaml: line 1, column 4: NUL characters are not "
                          "allowed");
}

static void test_yaml_source_name(void **state)
{
    struct lfs_error err = {0};
    json_t *v;
    (void)state;
    assert_int_equal(lfs_config_parse_yaml("a: b: c", 7, NULL, &v, &err), -1);
    assert_string_equal(
        err.message, "<config>: line 1, column 5: mapping values are not allowed in this context");
}

static void test_yaml_depth_limit(void **state)
{
    char doc[4 * LFS_CONFIG_MAX_DEPTH + 64];
    size_t n = 0;
    (void)state;
    /* exactly the limit parses */
    for (int i = 0; i < LFS_CONFIG_MAX_DEPTH; i++)
        doc[n++] = '[';
    for (int i = 0; i < LFS_CONFIG_MAX_DEPTH; i++)
        doc[n++] = ']';
    doc[n] = '\0';
    {
        struct lfs_error err = {0};
        json_t *v, *inner;
        assert_int_equal(lfs_config_parse_yaml(doc, n, "t.yaml", &v, &err), 0);
        inner = v;
        for (int i = 1; i < LFS_CONFIG_MAX_DEPTH; i++) {
            assert_int_equal(json_array_size(inner), 1);
            inner = json_array_get(inner, 0);
        }
        assert_true(json_is_array(inner));
        assert_int_equal(json_array_size(inner), 0);
        json_decref(v);
    }
    /* one more level fails at the opening bracket of level 65 */
    n = 0;
    for (int i = 0; i <= LFS_CONFIG_MAX_DEPTH; i++)
        doc[n++] = '[';
    for (int i = 0; i <= LFS_CONFIG_MAX_DEPTH; i++)
        doc[n++] = ']';
    doc[n] = '\0';
    assert_yaml_error(doc, "t.yaml: line 1, column 65: nested deeper than 64 levels");
    /* block style: "a:\n b:\n  c: ..." 65 levels */
    {
        char *block = malloc(70 * 70);
        size_t m = 0;
        for (int i = 0; i <= LFS_CONFIG_MAX_DEPTH; i++) {
            memset(block + m, ' ', (size_t)i);
            m += (size_t)i;
            m += (size_t)sprintf(block + m, "k:\n");
        }
        memset(block + m, ' ', LFS_CONFIG_MAX_DEPTH + 1);
        m += LFS_CONFIG_MAX_DEPTH + 1;
        m += (size_t)sprintf(block + m, "leaf: 1\n");
        assert_yaml_len_error(block, m, "t.yaml: line 65, column 65: nested deeper than 64 levels");
        free(block);
    }
}

static void test_yaml_depth_bomb(void **state)
{
    /* 8 MiB of '[': must stop at level 65 without recursion or big allocations */
    size_t n = 8u << 20;
    char *doc = malloc(n);
    (void)state;
    assert_non_null(doc);
    memset(doc, '[', n);
    assert_yaml_len_error(doc, n, "t.yaml: line 1, column 65: nested deeper than 64 levels");
    /* the same with flow mappings "{a: {a: {a: ..." */
    for (size_t i = 0; i + 4 <= n; i += 4)
        memcpy(doc + i, "{a: ", 4);
    assert_yaml_len_error(doc, n, "t.yaml: line 1, column 257: nested deeper than 64 levels");
    free(doc);
}

static void test_yaml_depth_through_alias(void **state)
{
    /* an anchored 40-deep structure re-used 40 levels down would be 80 deep */
    char doc[1024];
    size_t n = 0;
    (void)state;
    n += (size_t)sprintf(doc + n, "a: &deep ");
    for (int i = 0; i < 39; i++)
        doc[n++] = '[';
    for (int i = 0; i < 39; i++)
        doc[n++] = ']';
    n += (size_t)sprintf(doc + n, "\nb: ");
    for (int i = 0; i < 40; i++)
        doc[n++] = '[';
    n += (size_t)sprintf(doc + n, "*deep");
    for (int i = 0; i < 40; i++)
        doc[n++] = ']';
    doc[n] = '\0';
    assert_yaml_error(doc, "t.yaml: line 2, column 44: nested deeper than 64 levels (through "
                           "alias \"deep\")");
}

static void test_yaml_alias_bomb(void **state)
{
    /* billion laughs: 10^9 strings if expanded */
    const char *doc = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
                      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                      "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                      "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    clock_t start = clock();
    (void)state;
    /* a..f hold 11 + 111 + ... nodes; the 10th copy of *e (111111 nodes each) in f is where
     * the running total first passes 1,000,000 */
    assert_yaml_error(doc, "t.yaml: line 6, column 29: document has more than 1000000 nodes "
                           "(aliases expanded)");
    assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 20.0);
}

static void test_yaml_size_limit(void **state)
{
    size_t n = LFS_CONFIG_MAX_TEXT + 1;
    char *doc = malloc(n);
    (void)state;
    assert_non_null(doc);
    memset(doc, '#', n); /* a comment: would be valid YAML if it were accepted */
    assert_yaml_len_error(doc, n, "t.yaml: larger than 16777216 bytes");
    free(doc);
}

/* ---- lfs_config_load ---- */

static void test_load_merge_order(void **state)
{
    const char *file = write_tmp("merge.yaml", "A: {y: file, list: [3], m: {deep: file}}\n"
                                               "B: file\nD: file\nE: file\n");
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_STR", "{A: {z: str, m: {deeper: str}}, B: str, F: str}"},
        {"GIFTLESS_CONFIG_B", "env"},
        {"GIFTLESS_CONFIG_A_X", "env"},
        {NULL, NULL},
    };
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok("{\"A\": {\"x\": 1, \"y\": 1, \"list\": [1, 2], \"m\": {\"keep\": 1}},"
                   " \"B\": \"defaults\", \"C\": 1, \"E\": {\"was\": \"a mapping\"}}",
                   file, &origin);
    /* mappings merge per key at every level; lists and other values are replaced whole;
     * the env override applies to the merged tree, last */
    assert_json(tree,
                "{\"A\": {\"x\": \"env\", \"y\": \"file\", \"list\": [3],"
                "        \"m\": {\"keep\": 1, \"deep\": \"file\", \"deeper\": \"str\"},"
                "        \"z\": \"str\"},"
                " \"B\": \"env\", \"C\": 1, \"D\": \"file\", \"E\": \"file\", \"F\": \"str\"}");
    assert_string_equal(origin.file, file);
    assert_true(origin.from_env_string);
    assert_int_equal(origin.overrides, 2);
    json_decref(tree);
}

static void test_load_null_replaces(void **state)
{
    const char *file = write_tmp("null.yaml", "A:\nB: ~\n");
    const struct fake_var env[] = {{NULL, NULL}};
    json_t *tree;
    (void)state;
    fake_env = env;
    /* as figcan's _recursive_merge: an explicit null replaces, even a mapping */
    tree = load_ok("{\"A\": {\"x\": 1}, \"B\": 2}", file, NULL);
    assert_json(tree, "{\"A\": null, \"B\": null}");
    json_decref(tree);
}

static void test_load_file_selection(void **state)
{
    const char *lfsgate = write_tmp("lfsgate.yaml", "WHICH: lfsgate\n");
    const char *giftless = write_tmp("giftless.yaml", "WHICH: giftless\n");
    const char *cli = write_tmp("cli.yaml", "WHICH: cli\n");
    const struct fake_var both[] = {
        {"LFSGATE_CONFIG_FILE", lfsgate}, {"GIFTLESS_CONFIG_FILE", giftless}, {NULL, NULL}};
    const struct fake_var only_giftless[] = {
        {"LFSGATE_CONFIG_FILE", ""}, {"GIFTLESS_CONFIG_FILE", giftless}, {NULL, NULL}};
    const struct fake_var empty[] = {
        {"LFSGATE_CONFIG_FILE", ""}, {"GIFTLESS_CONFIG_FILE", ""}, {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;

    fake_env = both;
    tree = load_ok(NULL, cli, &origin);
    assert_json(tree, "{\"WHICH\": \"cli\"}");
    assert_string_equal(origin.file, cli);
    json_decref(tree);

    tree = load_ok(NULL, NULL, &origin);
    assert_json(tree, "{\"WHICH\": \"lfsgate\"}");
    assert_string_equal(origin.file, lfsgate);
    json_decref(tree);

    fake_env = only_giftless; /* an empty variable counts as unset, as in giftless */
    tree = load_ok(NULL, NULL, &origin);
    assert_json(tree, "{\"WHICH\": \"giftless\"}");
    assert_string_equal(origin.file, giftless);
    json_decref(tree);

    fake_env = empty;
    tree = load_ok("{\"WHICH\": \"defaults\"}", NULL, &origin);
    assert_json(tree, "{\"WHICH\": \"defaults\"}");
    assert_string_equal(origin.file, "");
    assert_false(origin.from_env_string);
    assert_int_equal(origin.overrides, 0);
    json_decref(tree);
}

static void test_load_defaults_untouched_and_optional(void **state)
{
    const struct fake_var env[] = {{"GIFTLESS_CONFIG_STR", "A: {b: 2}"}, {NULL, NULL}};
    struct lfs_error err = {0};
    json_t *defaults = json_from("{\"A\": {\"a\": 1}}"), *out;
    (void)state;
    fake_env = env;
    assert_int_equal(lfs_config_load(defaults, NULL, fake_getenv, &out, NULL, &err), 0);
    assert_json(out, "{\"A\": {\"a\": 1, \"b\": 2}}");
    assert_json(defaults, "{\"A\": {\"a\": 1}}");
    json_decref(out);
    json_decref(defaults);
    /* NULL defaults: an empty mapping */
    assert_int_equal(lfs_config_load(NULL, NULL, fake_getenv, &out, NULL, &err), 0);
    assert_json(out, "{\"A\": {\"b\": 2}}");
    json_decref(out);
}

static void test_load_empty_file(void **state)
{
    const char *empty = write_tmp("empty.yaml", "");
    const char *comments = write_tmp("comments.yaml", "# nothing configured yet\n");
    const struct fake_var env[] = {{NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok("{\"DEBUG\": false}", empty, &origin);
    assert_json(tree, "{\"DEBUG\": false}");
    assert_string_equal(origin.file, empty);
    json_decref(tree);
    tree = load_ok("{\"DEBUG\": false}", comments, NULL);
    assert_json(tree, "{\"DEBUG\": false}");
    json_decref(tree);
}

static void test_load_config_str_json(void **state)
{
    /* giftless docs/source/configuration.md: JSON in GIFTLESS_CONFIG_STR */
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_STR", "{\"AUTH_PROVIDERS\":[\"giftless.auth.allow_anon:read_write\"]}"},
        {NULL, NULL}};
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok(giftless_defaults, NULL, NULL);
    assert_json(json_object_get(tree, "AUTH_PROVIDERS"),
                "[\"giftless.auth.allow_anon:read_write\"]");
    assert_json(json_object_get(tree, "DEBUG"), "false");
    json_decref(tree);
}

static void test_load_errors(void **state)
{
    char expected[512], missing[128];
    const char *syntax = write_tmp("syntax.yaml", "a: 1\nb: [\n");
    const char *list = write_tmp("list.yaml", "- a\n- b\n");
    const struct fake_var none[] = {{NULL, NULL}};
    const struct fake_var bad_str[] = {{"GIFTLESS_CONFIG_STR", "A: {"}, {NULL, NULL}};
    const struct fake_var scalar_str[] = {{"GIFTLESS_CONFIG_STR", "just a string"}, {NULL, NULL}};
    const struct fake_var missing_env[] = {{"GIFTLESS_CONFIG_FILE", "/nonexistent/giftless.yaml"},
                                           {NULL, NULL}};
    (void)state;
    fake_env = none;

    snprintf(missing, sizeof(missing), "%s/missing.yaml", tmp_dir);
    snprintf(expected, sizeof(expected), "config: cannot read \"%s\": %s", missing,
             strerror(ENOENT));
    assert_load_error(NULL, missing, expected);

    /* an endless source is refused after LFS_CONFIG_MAX_TEXT + 1 bytes */
    assert_load_error(NULL, "/dev/zero", "config: \"/dev/zero\" is larger than 16777216 bytes");

    snprintf(expected, sizeof(expected), "config: cannot read \"%s\": %s", tmp_dir,
             strerror(EISDIR));
    assert_load_error(NULL, tmp_dir, expected);

    snprintf(expected, sizeof(expected),
             "config: %s: line 3, column 1: did not find expected node content (while parsing "
             "a flow node at line 3, column 1)",
             syntax);
    assert_load_error(NULL, syntax, expected);

    snprintf(expected, sizeof(expected), "config: %s: top level must be a mapping, got list", list);
    assert_load_error(NULL, list, expected);

    fake_env = bad_str;
    assert_load_error(NULL, NULL,
                      "config: GIFTLESS_CONFIG_STR: line 2, column 1: did not find expected node "
                      "content (while parsing a flow node at line 2, column 1)");
    fake_env = scalar_str;
    assert_load_error(NULL, NULL,
                      "config: GIFTLESS_CONFIG_STR: top level must be a mapping, got string");
    fake_env = missing_env;
    snprintf(expected, sizeof(expected), "config: cannot read \"/nonexistent/giftless.yaml\": %s",
             strerror(ENOENT));
    assert_load_error(NULL, NULL, expected);

    fake_env = none;
    assert_load_error("[1]", NULL, "config: defaults: top level must be a mapping, got list");
}

/* ---- environment overrides ---- */

static void test_env_documented_spelling(void **state)
{
    /* giftless docs/source/configuration.md: GIFTLESS_CONFIG_ + upper-cased key path; keys
     * that contain '_' themselves (TRANSFER_ADAPTERS, storage_options) resolve through the
     * tree */
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_CLASS",
         "mymodule:CustomStorageBackend"},
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_PATH", "/srv/lfs"},
        {"GIFTLESS_CONFIG_PRE_AUTHORIZED_ACTION_PROVIDER_OPTIONS_PRIVATE_KEY", "s3cret"},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree, *options;
    (void)state;
    fake_env = env;
    tree = load_ok(giftless_defaults, NULL, &origin);
    options = json_object_get(json_object_get(json_object_get(tree, "TRANSFER_ADAPTERS"), "basic"),
                              "options");
    assert_json(options,
                "{\"storage_class\": \"mymodule:CustomStorageBackend\","
                " \"storage_options\": {\"path\": \"/srv/lfs\"}, \"action_lifetime\": 900}");
    assert_json(
        json_object_get(
            json_object_get(json_object_get(tree, "PRE_AUTHORIZED_ACTION_PROVIDER"), "options"),
            "private_key"),
        "\"s3cret\"");
    assert_int_equal(origin.overrides, 3);
    json_decref(tree);
}

static void test_env_code_spelling(void **state)
{
    /* giftless/config.py: figcan apply_flat(environ, prefix="GIFTLESS_"), exact key case; this
     * is what giftless's own flask-develop.sh uses with GIFTLESS_DEBUG=1 */
    const struct fake_var env[] = {
        {"GIFTLESS_DEBUG", "1"},
        {"GIFTLESS_TRANSFER_ADAPTERS_basic_options_storage_options_path", "/data"},
        /* wrong case for the exact spelling: ignored */
        {"GIFTLESS_TRANSFER_ADAPTERS_BASIC_OPTIONS_ACTION_LIFETIME", "1"},
        /* the documented prefix needs upper case: ignored */
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_basic_factory", "x"},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    struct lfs_error err = {0};
    json_t *tree, *basic;
    bool debug = false;
    (void)state;
    fake_env = env;
    tree = load_ok(giftless_defaults, NULL, &origin);
    basic = json_object_get(json_object_get(tree, "TRANSFER_ADAPTERS"), "basic");
    assert_json(basic, "{\"factory\": \"giftless.transfer.basic_streaming:factory\","
                       " \"options\": {\"storage_class\": "
                       "\"giftless.storage.local_storage:LocalStorage\","
                       " \"storage_options\": {\"path\": \"/data\"}, \"action_lifetime\": 900}}");
    /* values stay strings, as in giftless; the getters read them */
    assert_json(json_object_get(tree, "DEBUG"), "\"1\"");
    assert_int_equal(lfs_config_get_bool(tree, "", "DEBUG", false, &debug, &err), 0);
    assert_true(debug);
    assert_int_equal(origin.overrides, 2);
    json_decref(tree);
}

static void test_env_documented_spelling_wins(void **state)
{
    const struct fake_var env[] = {
        {"GIFTLESS_DEBUG", "code"}, {"GIFTLESS_CONFIG_DEBUG", "documented"}, {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok("{\"DEBUG\": false}", NULL, &origin);
    assert_json(tree, "{\"DEBUG\": \"documented\"}");
    assert_int_equal(origin.overrides, 1);
    json_decref(tree);
}

static void test_env_only_existing_leaves(void **state)
{
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_NEW_KEY", "x"},           /* not in the tree: not added */
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS", "x"}, /* a mapping: never replaced */
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC", "x"},
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_NEW", "x"},
        {"GIFTLESS_NEW", "x"},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree, *expected = json_from(giftless_defaults);
    (void)state;
    fake_env = env;
    tree = load_ok(giftless_defaults, NULL, &origin);
    assert_true(json_equal(tree, expected));
    assert_int_equal(origin.overrides, 0);
    json_decref(expected);
    json_decref(tree);
}

static void test_env_leaf_kinds(void **state)
{
    /* every non-mapping value is a leaf (figcan does not enter lists): lists, nulls,
     * numbers and booleans are replaced by the variable's string; an empty value applies */
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_AUTH_PROVIDERS", "giftless.auth.allow_anon:read_write"},
        {"GIFTLESS_CONFIG_PRE_AUTHORIZED_ACTION_PROVIDER_OPTIONS_PUBLIC_KEY_FILE", "/k.pub"},
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_ACTION_LIFETIME", "1800"},
        {"GIFTLESS_CONFIG_TESTING", "true"},
        {"GIFTLESS_CONFIG_PRE_AUTHORIZED_ACTION_PROVIDER_OPTIONS_KEY_ID", ""},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    struct lfs_error err = {0};
    json_t *tree, *jwt;
    const json_t *options;
    long long lifetime;
    (void)state;
    fake_env = env;
    tree = load_ok(giftless_defaults, NULL, &origin);
    assert_json(json_object_get(tree, "AUTH_PROVIDERS"), "\"giftless.auth.allow_anon:read_write\"");
    assert_json(json_object_get(tree, "TESTING"), "\"true\"");
    jwt = json_object_get(json_object_get(tree, "PRE_AUTHORIZED_ACTION_PROVIDER"), "options");
    assert_json(json_object_get(jwt, "public_key_file"), "\"/k.pub\"");
    assert_json(json_object_get(jwt, "key_id"), "\"\"");
    options = json_object_get(json_object_get(json_object_get(tree, "TRANSFER_ADAPTERS"), "basic"),
                              "options");
    assert_json(json_object_get(options, "action_lifetime"), "\"1800\"");
    assert_int_equal(lfs_config_get_int(options, "TRANSFER_ADAPTERS.basic.options",
                                        "action_lifetime", 900, 1, 86400, &lifetime, &err),
                     0);
    assert_int_equal(lifetime, 1800);
    assert_int_equal(origin.overrides, 5);
    json_decref(tree);
}

static void test_env_keys_from_file_and_str(void **state)
{
    /* overrides apply to the merged tree, so keys that only the file or GIFTLESS_CONFIG_STR
     * introduced can be overridden too */
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_FILE", DATA("giftless-azure.yaml")},
        {"GIFTLESS_CONFIG_STR", "EXTRA: {setting: str}"},
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_CONNECTION_STRING",
         "AccountName=x"},
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_MULTIPART-BASIC_OPTIONS_STORAGE_OPTIONS_CONTAINER_NAME",
         "other"},
        {"GIFTLESS_CONFIG_EXTRA_SETTING", "env"},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree, *adapters;
    (void)state;
    fake_env = env;
    tree = load_ok(NULL, NULL, &origin);
    adapters = json_object_get(tree, "TRANSFER_ADAPTERS");
    assert_json(json_object_get(
                    json_object_get(json_object_get(json_object_get(adapters, "basic"), "options"),
                                    "storage_options"),
                    "connection_string"),
                "\"AccountName=x\"");
    assert_json(json_object_get(
                    json_object_get(
                        json_object_get(json_object_get(adapters, "multipart-basic"), "options"),
                        "storage_options"),
                    "container_name"),
                "\"other\"");
    assert_json(json_object_get(tree, "EXTRA"), "{\"setting\": \"env\"}");
    assert_string_equal(origin.file, DATA("giftless-azure.yaml"));
    assert_int_equal(origin.overrides, 3);
    json_decref(tree);
}

static void test_env_config_file_and_str_are_not_keys(void **state)
{
    /* GIFTLESS_CONFIG_FILE / _STR name the sources; they must not override keys whose
     * flattened name they match in either spelling */
    const char *file = write_tmp("sources.yaml", "FROM_FILE: yes\n");
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_FILE", file}, {"GIFTLESS_CONFIG_STR", "FROM_STR: yes"}, {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok("{\"FILE\": \"d\", \"str\": \"d\", \"CONFIG_FILE\": \"d\","
                   " \"CONFIG\": {\"STR\": \"d\"}}",
                   NULL, &origin);
    assert_json(tree, "{\"FILE\": \"d\", \"str\": \"d\", \"CONFIG_FILE\": \"d\","
                      " \"CONFIG\": {\"STR\": \"d\"}, \"FROM_FILE\": true, \"FROM_STR\": true}");
    assert_int_equal(origin.overrides, 0);
    json_decref(tree);
}

static void test_env_flattening_collision(void **state)
{
    /* figcan sets every leaf whose flattened name matches */
    const struct fake_var env[] = {{"GIFTLESS_CONFIG_A_B_C", "x"}, {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    tree = load_ok("{\"a_b\": {\"c\": 1}, \"a\": {\"b_c\": 2, \"b\": {\"c\": 3}}}", NULL, &origin);
    assert_json(tree, "{\"a_b\": {\"c\": \"x\"}, \"a\": {\"b_c\": \"x\", \"b\": {\"c\": \"x\"}}}");
    assert_int_equal(origin.overrides, 3);
    json_decref(tree);
}

static void test_env_not_utf8(void **state)
{
    const struct fake_var env[] = {{"GIFTLESS_CONFIG_NAME", "caf\xe9"}, {NULL, NULL}};
    (void)state;
    fake_env = env;
    assert_load_error("{\"NAME\": \"x\"}", NULL,
                      "config: GIFTLESS_CONFIG_NAME: value is not valid UTF-8");
}

/* ---- giftless example files ---- */

static void test_giftless_examples(void **state)
{
    const struct fake_var env[] = {{NULL, NULL}};
    json_t *tree;
    (void)state;
    fake_env = env;

    tree = load_ok(NULL, DATA("giftless-local.yaml"), NULL);
    assert_json(tree, "{\"AUTH_PROVIDERS\": [\"giftless.auth.allow_anon:read_write\"],"
                      " \"TRANSFER_ADAPTERS\": {\"basic\": {"
                      "   \"factory\": \"giftless.transfer.basic_streaming:factory\","
                      "   \"options\": {"
                      "     \"storage_class\": \"giftless.storage.local_storage:LocalStorage\","
                      "     \"storage_options\": {\"path\": \"lfs-storage\"},"
                      "     \"action_lifetime\": 900}}},"
                      " \"MIDDLEWARE\": [{\"class\": \"werkzeug.middleware.proxy_fix:ProxyFix\","
                      "   \"kwargs\": {\"x_host\": 1, \"x_port\": 1, \"x_prefix\": 1}}]}");
    json_decref(tree);

    tree = load_ok(NULL, DATA("giftless-azure.yaml"), NULL);
    assert_json(tree,
                "{\"TRANSFER_ADAPTERS\": {"
                " \"basic\": {\"factory\": \"giftless.transfer.basic_external:factory\","
                "   \"options\": {\"storage_class\": \"..storage.azure:AzureBlobsStorage\","
                "     \"storage_options\": {"
                "       \"connection_string\": \"GetYourAzureConnectionStringAndPutItHere==\","
                "       \"container_name\": \"lfs-storage\","
                "       \"path_prefix\": \"large-files\"}}},"
                " \"multipart-basic\": {\"factory\": \"giftless.transfer.multipart:factory\","
                "   \"options\": {"
                "     \"storage_class\": \"giftless.storage.azure:AzureBlobsStorage\","
                "     \"storage_options\": {"
                "       \"connection_string\": \"somesecretconnectionstringhere\","
                "       \"container_name\": \"my-multipart-storage\"}}}}}");
    json_decref(tree);

    tree = load_ok(NULL, DATA("giftless-jwt.yaml"), NULL);
    assert_json(tree, "{\"AUTH_PROVIDERS\": ["
                      " {\"factory\": \"giftless.auth.jwt:factory\","
                      "  \"options\": {\"algorithm\": \"HS256\","
                      "               \"private_key\": \"s3cret,don'ttellany0ne\"}},"
                      " \"giftless.auth.allow_anon:read_only\","
                      " {\"factory\": \"giftless.auth.jwt:factory\","
                      "  \"options\": {\"algorithm\": \"RS256\","
                      "               \"public_key_file\": \"jwt-rs256.key.pub\"}}]}");
    json_decref(tree);

    /* over giftless's defaults: the list is replaced whole, the adapter merged per key */
    tree = load_ok(giftless_defaults, DATA("giftless-azure.yaml"), NULL);
    assert_json(
        json_object_get(
            json_object_get(json_object_get(json_object_get(tree, "TRANSFER_ADAPTERS"), "basic"),
                            "options"),
            "storage_options"),
        "{\"path\": \"lfs-storage\","
        " \"connection_string\": \"GetYourAzureConnectionStringAndPutItHere==\","
        " \"container_name\": \"lfs-storage\", \"path_prefix\": \"large-files\"}");
    assert_json(
        json_object_get(
            json_object_get(json_object_get(json_object_get(tree, "TRANSFER_ADAPTERS"), "basic"),
                            "options"),
            "action_lifetime"),
        "900");
    json_decref(tree);
    tree = load_ok(giftless_defaults, DATA("giftless-jwt.yaml"), NULL);
    assert_int_equal(json_array_size(json_object_get(tree, "AUTH_PROVIDERS")), 3);
    assert_json(
        json_object_get(
            json_object_get(json_object_get(tree, "PRE_AUTHORIZED_ACTION_PROVIDER"), "options"),
            "algorithm"),
        "\"HS256\"");
    json_decref(tree);
}

/* ---- composition over giftless's defaults (issue #13) ---- */

/* The value at a dotted path of tree (keys here contain no '.'), or NULL. */
static json_t *at(json_t *tree, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k != NULL && tree != NULL;
         k = strtok_r(NULL, ".", &save))
        tree = json_object_get(tree, k);
    return tree;
}

/* stderr of the calls between capture_begin and capture_end, read back as a string (the
 * warnings of lfs_config_check_keys go through lfs_log, which writes to stderr). */
static int saved_stderr = -1;
static char capture_path[128];

static void capture_begin(void)
{
    int fd;
    snprintf(capture_path, sizeof(capture_path), "%s/stderr.txt", tmp_dir);
    fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

static char *capture_end(void)
{
    static char text[4096];
    FILE *f;
    size_t n;
    fflush(stderr);
    assert_int_equal(dup2(saved_stderr, 2), 2);
    close(saved_stderr);
    f = fopen(capture_path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(capture_path);
    return text;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_compose_partial_sections(void **state)
{
    /* the three partial sections of issue #13, each merged into giftless's defaults */
    const char *preauth = write_tmp("preauth.yaml", "PRE_AUTHORIZED_ACTION_PROVIDER:\n"
                                                    "  options:\n"
                                                    "    private_key: shared-secret\n");
    const char *path =
        write_tmp("path.yaml", "TRANSFER_ADAPTERS: {basic: {options: {storage_options: "
                               "{path: /data}}}}\n");
    const struct fake_var lifetime[] = {
        {"GIFTLESS_CONFIG_STR", "TRANSFER_ADAPTERS: {basic: {options: {action_lifetime: 60}}}"},
        {NULL, NULL}};
    const struct fake_var none[] = {{NULL, NULL}};
    json_t *tree;
    (void)state;
    fake_env = none;

    tree = load_ok(giftless_defaults, preauth, NULL);
    assert_json(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER"),
                "{\"factory\": \"giftless.auth.jwt:factory\","
                " \"options\": {\"algorithm\": \"HS256\", \"private_key\": \"shared-secret\","
                "   \"private_key_file\": null, \"public_key\": null, \"public_key_file\": null,"
                "   \"default_lifetime\": 60, \"key_id\": \"giftless-internal-jwt-key\"}}");
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.factory"),
                "\"giftless.transfer.basic_streaming:factory\"");
    json_decref(tree);

    tree = load_ok(giftless_defaults, path, NULL);
    assert_json(at(tree, "TRANSFER_ADAPTERS"),
                "{\"basic\": {\"factory\": \"giftless.transfer.basic_streaming:factory\","
                " \"options\": {\"storage_class\": \"giftless.storage.local_storage:LocalStorage\","
                "   \"storage_options\": {\"path\": \"/data\"}, \"action_lifetime\": 900}}}");
    json_decref(tree);

    fake_env = lifetime;
    tree = load_ok(giftless_defaults, NULL, NULL);
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options"),
                "{\"storage_class\": \"giftless.storage.local_storage:LocalStorage\","
                " \"storage_options\": {\"path\": \"lfs-storage\"}, \"action_lifetime\": 60}");
    assert_json(at(tree, "AUTH_PROVIDERS"), "[\"giftless.auth.allow_anon:read_only\"]");
    json_decref(tree);
}

static void test_compose_extensible_closed_and_lists(void **state)
{
    static const char *const jwt_keys[] = {"algorithm",  "private_key",     "private_key_file",
                                           "public_key", "public_key_file", "default_lifetime",
                                           "key_id",     "leeway",          NULL};
    const char *file = write_tmp(
        "open.yaml", "TRANSFER_ADAPTERS:\n"
                     "  basic:\n"
                     "    options:\n"
                     "      storage_options: {root: /srv}\n"
                     "      chunk: 5\n"
                     "  multipart-basic: {factory: giftless.transfer.multipart:factory}\n"
                     "AUTH_PROVIDERS: [giftless.auth.allow_anon:read_write]\n"
                     "MIDDLEWARE: [{class: werkzeug.middleware.proxy_fix:ProxyFix}]\n"
                     "PRE_AUTHORIZED_ACTION_PROVIDER: {options: {leeway: 5, levay: 5}}\n");
    const struct fake_var env[] = {{"GIFTLESS_CONFIG_STR", "{AUTH_PROVIDERS: [], MIDDLEWARE: []}"},
                                   {NULL, NULL}};
    const struct fake_var none[] = {{NULL, NULL}};
    struct lfs_error err = {0};
    json_t *tree;
    (void)state;
    fake_env = none;
    tree = load_ok(giftless_defaults, file, NULL);
    /* TRANSFER_ADAPTERS, basic, options and storage_options take new keys */
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options.storage_options"),
                "{\"path\": \"lfs-storage\", \"root\": \"/srv\"}");
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options.chunk"), "5");
    assert_json(at(tree, "TRANSFER_ADAPTERS.multipart-basic"),
                "{\"factory\": \"giftless.transfer.multipart:factory\"}");
    /* lists replace, never append */
    assert_json(at(tree, "AUTH_PROVIDERS"), "[\"giftless.auth.allow_anon:read_write\"]");
    assert_json(at(tree, "MIDDLEWARE"),
                "[{\"class\": \"werkzeug.middleware.proxy_fix:ProxyFix\"}]");
    /* a closed section: its reader takes the keys it knows (lfsgate's own leeway), and a
     * key it does not know is an error naming the path, default or not */
    assert_json(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER.options.leeway"), "5");
    assert_int_equal(lfs_config_check_keys(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER.options"),
                                           "PRE_AUTHORIZED_ACTION_PROVIDER.options", jwt_keys,
                                           &err),
                     -1);
    assert_string_equal(err.message, "config: PRE_AUTHORIZED_ACTION_PROVIDER.options.levay: "
                                     "unknown key; valid keys: algorithm, private_key, "
                                     "private_key_file, public_key, public_key_file, "
                                     "default_lifetime, key_id, leeway");
    json_decref(tree);

    /* a later layer replaces a list with an empty one */
    fake_env = env;
    tree = load_ok(giftless_defaults, file, NULL);
    assert_json(at(tree, "AUTH_PROVIDERS"), "[]");
    assert_json(at(tree, "MIDDLEWARE"), "[]");
    json_decref(tree);
}

static void test_compose_null(void **state)
{
    /* giftless tests the section for truth (auth/__init__.py): null turns action tokens
     * off, and so it does here (the mapping is replaced, as figcan's merge does) */
    const char *file = write_tmp("off.yaml", "PRE_AUTHORIZED_ACTION_PROVIDER: null\n"
                                             "TRANSFER_ADAPTERS:\n"
                                             "  basic: {options: {storage_options: null}}\n");
    const struct fake_var none[] = {{NULL, NULL}};
    json_t *tree;
    (void)state;
    fake_env = none;
    tree = load_ok(giftless_defaults, file, NULL);
    assert_true(json_is_null(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER")));
    assert_true(json_is_null(at(tree, "TRANSFER_ADAPTERS.basic.options.storage_options")));
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options.action_lifetime"), "900");
    json_decref(tree);
}

static void test_compose_env_overrides(void **state)
{
    const char *file = write_tmp("partial.yaml", "TRANSFER_ADAPTERS: {basic: {options: "
                                                 "{storage_options: {path: /data}}}}\n");
    const struct fake_var env[] = {
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_PATH", "/env"},
        {"GIFTLESS_PRE_AUTHORIZED_ACTION_PROVIDER_options_private_key", "from-env"},
        {"GIFTLESS_CONFIG_DEBUG", "true"},
        {NULL, NULL}};
    struct lfs_config_origin origin;
    json_t *tree;
    (void)state;
    fake_env = env;
    /* the defaults' leaves can be overridden even when no file names them */
    tree = load_ok(giftless_defaults, file, &origin);
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options.storage_options.path"), "\"/env\"");
    assert_json(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER.options.private_key"), "\"from-env\"");
    assert_json(at(tree, "PRE_AUTHORIZED_ACTION_PROVIDER.options.algorithm"), "\"HS256\"");
    assert_json(at(tree, "DEBUG"), "\"true\"");
    assert_int_equal(origin.overrides, 3);
    json_decref(tree);
    tree = load_ok(giftless_defaults, NULL, &origin);
    assert_json(at(tree, "TRANSFER_ADAPTERS.basic.options.storage_options.path"), "\"/env\"");
    assert_int_equal(origin.overrides, 3);
    json_decref(tree);
}

static void test_compose_default_leftover_vs_typo(void **state)
{
    static const char *const azure_keys[] = {"connection_string", "container_name", "path_prefix",
                                             NULL};
    static const char *const opts = "TRANSFER_ADAPTERS.basic.options.storage_options";
    const char *azure = write_tmp(
        "azure.yaml", "TRANSFER_ADAPTERS:\n"
                      "  basic:\n"
                      "    options:\n"
                      "      storage_class: giftless.storage.azure:AzureBlobsStorage\n"
                      "      storage_options: {connection_string: x, container_name: c}\n");
    const char *typo = write_tmp("typo.yaml", "TRANSFER_ADAPTERS: {basic: {options: "
                                              "{storage_options: {container_nme: c}}}}\n");
    const char *explicit = write_tmp("explicit.yaml", "TRANSFER_ADAPTERS: {basic: {options: "
                                                      "{storage_options: {path: lfs-storage}}}}\n");
    const char *flags = write_tmp("flags.yaml", "S: {flag: true}\n");
    const struct fake_var none[] = {{NULL, NULL}};
    const struct fake_var env_path[] = {
        {"GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_PATH", "lfs-storage"},
        {NULL, NULL}};
    struct lfs_error err = {0};
    json_t *tree, *copy;
    const char *log;
    int rc;
    (void)state;
    fake_env = none;

    /* the default path under an Azure section: a warning naming the path, once */
    tree = load_ok(giftless_defaults, azure, NULL);
    capture_begin();
    rc = lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err);
    assert_int_equal(lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err), 0);
    log = capture_end();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "warn: config: TRANSFER_ADAPTERS.basic.options."
                                "storage_options.path: ignored: a giftless default"));
    assert_int_equal(count_of(log, "storage_options.path"), 1);
    /* the same keys in a tree that lfs_config_load did not build are errors */
    copy = json_deep_copy(at(tree, opts));
    assert_int_equal(lfs_config_check_keys(copy, opts, azure_keys, &err), -1);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.basic.options.storage_options."
                                     "path: unknown key; valid keys: connection_string, "
                                     "container_name, path_prefix");
    json_decref(copy);
    /* as is a leftover replaced after loading */
    json_object_set_new(at(tree, opts), "path", json_string("lfs-storage"));
    assert_int_equal(lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err), -1);
    json_decref(tree);

    /* the user's own typo beside the leftover stays an error */
    tree = load_ok(giftless_defaults, typo, NULL);
    capture_begin();
    rc = lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err);
    capture_end();
    assert_int_equal(rc, -1);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.basic.options.storage_options."
                                     "container_nme: unknown key; valid keys: connection_string, "
                                     "container_name, path_prefix");
    json_decref(tree);

    /* a default key written by the user, even with the default's value, is the user's */
    tree = load_ok(giftless_defaults, explicit, NULL);
    assert_int_equal(lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err), -1);
    assert_non_null(strstr(err.message, "storage_options.path: unknown key"));
    json_decref(tree);
    fake_env = env_path; /* an environment override is the user's too */
    tree = load_ok(giftless_defaults, NULL, NULL);
    assert_int_equal(lfs_config_check_keys(at(tree, opts), opts, azure_keys, &err), -1);
    assert_non_null(strstr(err.message, "storage_options.path: unknown key"));
    json_decref(tree);

    /* true, false and null are shared values in jansson: what was written counts, not
     * whether the value is the default's */
    fake_env = none;
    tree = load_ok("{\"S\": {\"off\": null, \"flag\": true}}", flags, NULL);
    capture_begin();
    rc = lfs_config_check_keys(at(tree, "S"), "S", azure_keys, &err);
    log = capture_end();
    assert_int_equal(rc, -1);
    assert_string_equal(err.message, "config: S.flag: unknown key; valid keys: "
                                     "connection_string, container_name, path_prefix");
    assert_non_null(strstr(log, "warn: config: S.off: ignored"));
    json_decref(tree);
}

/* ---- getters ---- */

static json_t *getter_tree;

static int make_getter_tree(void **state)
{
    (void)state;
    getter_tree = json_from("{\"s\": \"text\", \"i\": 42, \"neg\": -7, \"f\": 1.5, \"t\": true,"
                            " \"n\": null, \"l\": [1], \"m\": {\"k\": 1}, \"digits\": \"900\","
                            " \"word\": \"abc\", \"huge\": \"99999999999999999999\","
                            " \"sz_int\": 1048576}");
    return 0;
}

static int free_getter_tree(void **state)
{
    (void)state;
    json_decref(getter_tree);
    return 0;
}

static void test_get_string(void **state)
{
    struct lfs_error err = {0};
    const char *s = NULL;
    (void)state;
    assert_int_equal(lfs_config_get_string(getter_tree, "a.b", "s", "def", &s, &err), 0);
    assert_string_equal(s, "text");
    assert_ptr_equal(s, json_string_value(json_object_get(getter_tree, "s")));
    assert_int_equal(lfs_config_get_string(getter_tree, "a.b", "missing", "def", &s, &err), 0);
    assert_string_equal(s, "def");
    assert_int_equal(lfs_config_get_string(getter_tree, "a.b", "n", "def", &s, &err), 0);
    assert_string_equal(s, "def");
    assert_int_equal(lfs_config_get_string(NULL, "a.b", "s", NULL, &s, &err), 0);
    assert_null(s);
    assert_int_equal(lfs_config_get_string(getter_tree, "a.b", "i", "def", &s, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.message, "config: a.b.i: expected string, got integer");
    assert_int_equal(lfs_config_get_string(getter_tree, "", "m", "def", &s, &err), -1);
    assert_string_equal(err.message, "config: m: expected string, got mapping");
    assert_int_equal(lfs_config_get_string(getter_tree, "", "l", "def", &s, &err), -1);
    assert_string_equal(err.message, "config: l: expected string, got list");
    assert_int_equal(lfs_config_get_string(getter_tree, "x", "t", "def", &s, &err), -1);
    assert_string_equal(err.message, "config: x.t: expected string, got boolean");
    assert_int_equal(lfs_config_get_string(getter_tree, "x", "f", "def", &s, &err), -1);
    assert_string_equal(err.message, "config: x.f: expected string, got float");
}

static void test_get_int(void **state)
{
    struct lfs_error err = {0};
    long long n = 0;
    const char *path = "TRANSFER_ADAPTERS.basic.options";
    (void)state;
    assert_int_equal(lfs_config_get_int(getter_tree, path, "i", 0, 0, 100, &n, &err), 0);
    assert_int_equal(n, 42);
    assert_int_equal(lfs_config_get_int(getter_tree, path, "neg", 0, -10, 0, &n, &err), 0);
    assert_int_equal(n, -7);
    assert_int_equal(lfs_config_get_int(getter_tree, path, "digits", 0, 1, 1000, &n, &err), 0);
    assert_int_equal(n, 900);
    /* the default is returned as given, unchecked */
    assert_int_equal(lfs_config_get_int(getter_tree, path, "missing", 5000, 1, 10, &n, &err), 0);
    assert_int_equal(n, 5000);
    assert_int_equal(lfs_config_get_int(getter_tree, path, "n", 3, 1, 10, &n, &err), 0);
    assert_int_equal(n, 3);

    assert_int_equal(lfs_config_get_int(getter_tree, path, "i", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.basic.options.i: expected an "
                                     "integer from 0 to 10, got 42");
    assert_int_equal(lfs_config_get_int(getter_tree, path, "neg", 0, 1, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.basic.options.neg: expected an "
                                     "integer from 1 to 10, got -7");
    assert_int_equal(lfs_config_get_int(getter_tree, "", "digits", 0, 1, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: digits: expected an integer from 1 to 10, got 900");
    assert_int_equal(lfs_config_get_int(getter_tree, "", "huge", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: huge: expected an integer from 0 to 10, got "
                                     "\"99999999999999999999\"");
    assert_int_equal(lfs_config_get_int(getter_tree, "", "word", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: word: expected integer, got string \"abc\"");
    assert_int_equal(lfs_config_get_int(getter_tree, "", "f", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: f: expected integer, got float");
    assert_int_equal(lfs_config_get_int(getter_tree, "", "t", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: t: expected integer, got boolean");
}

static void test_get_bool(void **state)
{
    static const char *const truthy[] = {"true", "TRUE", "Yes", "on", "ON", "1"};
    static const char *const falsy[] = {"false", "False", "no", "NO", "off", "0"};
    struct lfs_error err = {0};
    bool b;
    json_t *obj;
    (void)state;
    assert_int_equal(lfs_config_get_bool(getter_tree, "", "t", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(lfs_config_get_bool(getter_tree, "", "missing", true, &b, &err), 0);
    assert_true(b);
    assert_int_equal(lfs_config_get_bool(getter_tree, "", "n", false, &b, &err), 0);
    assert_false(b);
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        obj = json_pack("{ss}", "v", truthy[i]);
        b = false;
        assert_int_equal(lfs_config_get_bool(obj, "", "v", false, &b, &err), 0);
        assert_true(b);
        json_decref(obj);
        obj = json_pack("{ss}", "v", falsy[i]);
        b = true;
        assert_int_equal(lfs_config_get_bool(obj, "", "v", true, &b, &err), 0);
        assert_false(b);
        json_decref(obj);
    }
    assert_int_equal(lfs_config_get_bool(getter_tree, "", "word", false, &b, &err), -1);
    assert_string_equal(err.message, "config: word: expected boolean, got string \"abc\"");
    assert_int_equal(lfs_config_get_bool(getter_tree, "DEBUG", "i", false, &b, &err), -1);
    assert_string_equal(err.message, "config: DEBUG.i: expected boolean, got integer");
}

static void test_get_size(void **state)
{
    static const struct {
        const char *text;
        long long bytes;
    } good[] = {
        {"0", 0},
        {"100", 100},
        {"100B", 100},
        {"512M", 512LL << 20},
        {"512m", 512LL << 20},
        {"1GiB", 1LL << 30},
        {"1gib", 1LL << 30},
        {"10KB", 10LL << 10},
        {"2k", 2LL << 10},
        {"3T", 3LL << 40},
        {"1 G", 1LL << 30},
        {"8388607T", 8388607LL << 40},
    };
    static const char *const bad[] = {"1.5G", "12X", "1iB", "-1", "M", "", "1 ", "1GB ", "0x10"};
    struct lfs_error err = {0};
    char expected[256];
    long long n;
    json_t *obj;
    (void)state;
    assert_int_equal(lfs_config_get_size(getter_tree, "", "sz_int", 0, 0, LLONG_MAX, &n, &err), 0);
    assert_int_equal(n, 1048576);
    assert_int_equal(lfs_config_get_size(getter_tree, "", "missing", 77, 0, 10, &n, &err), 0);
    assert_int_equal(n, 77);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        obj = json_pack("{ss}", "v", good[i].text);
        n = -1;
        if (lfs_config_get_size(obj, "", "v", 0, 0, LLONG_MAX, &n, &err) != 0)
            fail_msg("\"%s\": %s", good[i].text, err.message);
        assert_int_equal(n, good[i].bytes);
        json_decref(obj);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        obj = json_pack("{ss}", "max_part_size", bad[i]);
        assert_int_equal(lfs_config_get_size(obj, "TRANSFER_ADAPTERS.multipart-basic.options",
                                             "max_part_size", 0, 0, LLONG_MAX, &n, &err),
                         -1);
        snprintf(expected, sizeof(expected),
                 "config: TRANSFER_ADAPTERS.multipart-basic.options.max_part_size: expected size "
                 "(bytes, or a number with a K, M, G or T suffix such as \"512M\"), got string "
                 "\"%s\"",
                 bad[i]);
        assert_string_equal(err.message, expected);
        json_decref(obj);
    }
    obj = json_pack("{ss}", "v", "8388608T"); /* 2^63: one past LLONG_MAX */
    assert_int_equal(lfs_config_get_size(obj, "p", "v", 0, 0, LLONG_MAX, &n, &err), -1);
    assert_string_equal(err.message, "config: p.v: expected a size from 0 to 9223372036854775807 "
                                     "bytes, got \"8388608T\"");
    json_decref(obj);
    obj = json_pack("{ss}", "v", "2G");
    assert_int_equal(lfs_config_get_size(obj, "p", "v", 0, 1, 1LL << 30, &n, &err), -1);
    assert_string_equal(err.message,
                        "config: p.v: expected a size from 1 to 1073741824 bytes, got 2147483648");
    json_decref(obj);
    assert_int_equal(lfs_config_get_size(getter_tree, "", "neg", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: neg: expected a size from 0 to 10 bytes, got -7");
    assert_int_equal(lfs_config_get_size(getter_tree, "", "t", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: t: expected size, got boolean");
    assert_int_equal(lfs_config_get_size(getter_tree, "", "f", 0, 0, 10, &n, &err), -1);
    assert_string_equal(err.message, "config: f: expected size, got float");
}

static void test_get_object(void **state)
{
    struct lfs_error err = {0};
    const json_t *m = (const json_t *)1;
    (void)state;
    assert_int_equal(lfs_config_get_object(getter_tree, "", "m", &m, &err), 0);
    assert_ptr_equal(m, json_object_get(getter_tree, "m"));
    assert_int_equal(lfs_config_get_object(getter_tree, "", "missing", &m, &err), 0);
    assert_null(m);
    assert_int_equal(lfs_config_get_object(getter_tree, "", "n", &m, &err), 0);
    assert_null(m);
    assert_int_equal(lfs_config_get_object(getter_tree, "TRANSFER_ADAPTERS", "l", &m, &err), -1);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.l: expected mapping, got list");
    assert_int_equal(lfs_config_get_object(getter_tree, "", "s", &m, &err), -1);
    assert_string_equal(err.message, "config: s: expected mapping, got string");
}

static void test_getter_on_non_mapping(void **state)
{
    struct lfs_error err = {0};
    const char *s;
    (void)state;
    assert_int_equal(lfs_config_get_string(json_object_get(getter_tree, "l"), "AUTH_PROVIDERS",
                                           "factory", NULL, &s, &err),
                     -1);
    assert_string_equal(err.message, "config: AUTH_PROVIDERS: expected mapping, got list");
}

static void test_check_keys(void **state)
{
    static const char *const allowed[] = {"factory", "options", NULL};
    static const char *const none[] = {NULL};
    struct lfs_error err = {0};
    json_t *ok = json_from("{\"factory\": \"x\", \"options\": {}}");
    json_t *bad = json_from("{\"factory\": \"x\", \"option\": {}, \"zzz\": 1}");
    (void)state;
    assert_int_equal(lfs_config_check_keys(ok, "TRANSFER_ADAPTERS.basic", allowed, &err), 0);
    assert_int_equal(lfs_config_check_keys(NULL, "x", allowed, &err), 0);
    assert_int_equal(lfs_config_check_keys(bad, "TRANSFER_ADAPTERS.basic", allowed, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.message, "config: TRANSFER_ADAPTERS.basic.option: unknown key; "
                                     "valid keys: factory, options");
    assert_int_equal(lfs_config_check_keys(bad, "", allowed, &err), -1);
    assert_string_equal(err.message, "config: option: unknown key; valid keys: factory, options");
    assert_int_equal(lfs_config_check_keys(ok, "", none, &err), -1);
    assert_string_equal(err.message, "config: factory: unknown key; valid keys: (none)");
    /* compared exactly: case matters */
    json_decref(ok);
    ok = json_from("{\"Factory\": 1}");
    assert_int_equal(lfs_config_check_keys(ok, "p", allowed, &err), -1);
    assert_string_equal(err.message,
                        "config: p.Factory: unknown key; valid keys: factory, options");
    json_decref(ok);
    json_decref(bad);
}

static void test_config_path(void **state)
{
    char buf[32], small[6];
    (void)state;
    assert_string_equal(lfs_config_path(buf, sizeof(buf), "a.b", "c"), "a.b.c");
    assert_string_equal(lfs_config_path(buf, sizeof(buf), "", "c"), "c");
    assert_string_equal(lfs_config_path(buf, sizeof(buf), NULL, "c"), "c");
    assert_string_equal(lfs_config_path(buf, sizeof(buf), "a", ""), "a");
    /* building a path in place, the way nested validators do */
    lfs_config_path(buf, sizeof(buf), "", "TRANSFER_ADAPTERS");
    lfs_config_path(buf, sizeof(buf), buf, "basic");
    assert_string_equal(lfs_config_path(buf, sizeof(buf), buf, "options"),
                        "TRANSFER_ADAPTERS.basic.options");
    assert_ptr_equal(lfs_config_path(small, sizeof(small), "abc", "def"), small);
    assert_string_equal(small, "abc.d");
}

int main(void)
{
    const struct CMUnitTest yaml_tests[] = {
        cmocka_unit_test(test_yaml_plain_scalar_types),
        cmocka_unit_test(test_yaml_quoted_scalars_are_strings),
        cmocka_unit_test(test_yaml_tags),
        cmocka_unit_test(test_yaml_unrepresentable_numbers),
        cmocka_unit_test(test_yaml_nesting),
        cmocka_unit_test(test_yaml_json_is_yaml),
        cmocka_unit_test(test_yaml_documents),
        cmocka_unit_test(test_yaml_anchors_and_aliases),
        cmocka_unit_test(test_yaml_alias_errors),
        cmocka_unit_test(test_yaml_merge_keys),
        cmocka_unit_test(test_yaml_keys),
        cmocka_unit_test(test_yaml_duplicate_keys),
        cmocka_unit_test(test_yaml_syntax_error_positions),
        cmocka_unit_test(test_yaml_source_name),
        cmocka_unit_test(test_yaml_depth_limit),
        cmocka_unit_test(test_yaml_depth_bomb),
        cmocka_unit_test(test_yaml_depth_through_alias),
        cmocka_unit_test(test_yaml_alias_bomb),
        cmocka_unit_test(test_yaml_size_limit),
    };
    const struct CMUnitTest load_tests[] = {
        cmocka_unit_test(test_load_merge_order),
        cmocka_unit_test(test_load_null_replaces),
        cmocka_unit_test(test_load_file_selection),
        cmocka_unit_test(test_load_defaults_untouched_and_optional),
        cmocka_unit_test(test_load_empty_file),
        cmocka_unit_test(test_load_config_str_json),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_env_documented_spelling),
        cmocka_unit_test(test_env_code_spelling),
        cmocka_unit_test(test_env_documented_spelling_wins),
        cmocka_unit_test(test_env_only_existing_leaves),
        cmocka_unit_test(test_env_leaf_kinds),
        cmocka_unit_test(test_env_keys_from_file_and_str),
        cmocka_unit_test(test_env_config_file_and_str_are_not_keys),
        cmocka_unit_test(test_env_flattening_collision),
        cmocka_unit_test(test_env_not_utf8),
        cmocka_unit_test(test_giftless_examples),
        cmocka_unit_test(test_compose_partial_sections),
        cmocka_unit_test(test_compose_extensible_closed_and_lists),
        cmocka_unit_test(test_compose_null),
        cmocka_unit_test(test_compose_env_overrides),
        cmocka_unit_test(test_compose_default_leftover_vs_typo),
    };
    const struct CMUnitTest getter_tests[] = {
        cmocka_unit_test(test_get_string), cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_get_bool),   cmocka_unit_test(test_get_size),
        cmocka_unit_test(test_get_object), cmocka_unit_test(test_getter_on_non_mapping),
        cmocka_unit_test(test_check_keys), cmocka_unit_test(test_config_path),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("config/yaml", yaml_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("config/load", load_tests, make_tmp_dir, remove_tmp_dir);
    failed +=
        cmocka_run_group_tests_name("config/get", getter_tests, make_getter_tree, free_getter_tree);
    return failed;
}
