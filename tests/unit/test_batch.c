/* Unit tests for server/batch.c: lfs_batch_parse (every top-level rejection: bad JSON,
 * duplicate keys, operation, objects, transfers, ref, hash_algo types, the object limit ->
 * 413; per-object errors for bad oid/size, extras and hash_algo that leave valid objects in
 * the same batch alone; x-/extra filename and disposition), lfs_batch_pick_transfer (client
 * order wins), lfs_batch_render (errors, actions, the authenticated flag) and the actions
 * text adapters build with lfs_batch_object_add_action/_json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_write.h"
#include "server/batch.h"

#define OID_A "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define OID_B "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"
#define OBJ_A "{\"oid\": \"" OID_A "\", \"size\": 3}"
#define OBJ_B "{\"oid\": \"" OID_B "\", \"size\": 0}"

struct fixture {
    h2o_mem_pool_t pool;
    struct lfs_batch_request req;
    struct lfs_error err;
};

static int setup(void **state)
{
    struct fixture *f = test_calloc(1, sizeof(*f));
    h2o_mem_init_pool(&f->pool);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    h2o_mem_clear_pool(&f->pool);
    test_free(f);
    return 0;
}

/* Parses body with a limit of 100 objects; returns 0 or the error status. */
static int parse_max(struct fixture *f, const char *body, long long max)
{
    memset(&f->err, 0, sizeof(f->err));
    int rc = lfs_batch_parse(body, strlen(body), max, &f->pool, &f->req, &f->err);
    if (rc == 0) {
        assert_int_equal(f->err.status, 0);
        return 0;
    }
    assert_int_equal(rc, -1);
    assert_true(f->err.message[0] != '\0');
    return f->err.status;
}

static int parse(struct fixture *f, const char *body)
{
    return parse_max(f, body, 100);
}

static void test_minimal_upload(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A "]}"), 0);
    assert_int_equal(f->req.operation, LFS_OP_UPLOAD);
    assert_int_equal(f->req.nobjects, 1);
    assert_string_equal(f->req.objects[0].oid, OID_A);
    assert_int_equal(f->req.objects[0].size, 3);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_null(f->req.objects[0].actions);
    assert_null(f->req.objects[0].filename);
    assert_null(f->req.objects[0].disposition);
    assert_null(f->req.ref);
    assert_true(f->req.hash_algo_ok);
    /* transfers default to ["basic"] */
    assert_int_equal(f->req.ntransfers, 1);
    assert_string_equal(f->req.transfers[0], "basic");
}

static void test_full_download(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"download\", "
                              "\"transfers\": [\"lfs-standalone-file\", \"basic\"], "
                              "\"ref\": {\"name\": \"refs/heads/main\"}, "
                              "\"objects\": [" OBJ_A ", " OBJ_B "], \"hash_algo\": \"sha256\"}"),
                     0);
    assert_int_equal(f->req.operation, LFS_OP_DOWNLOAD);
    assert_int_equal(f->req.ntransfers, 2);
    assert_string_equal(f->req.transfers[0], "lfs-standalone-file");
    assert_string_equal(f->req.transfers[1], "basic");
    assert_string_equal(f->req.ref, "refs/heads/main");
    assert_true(f->req.hash_algo_ok);
    assert_int_equal(f->req.nobjects, 2);
    assert_string_equal(f->req.objects[1].oid, OID_B);
    assert_int_equal(f->req.objects[1].size, 0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_int_equal(f->req.objects[1].error_code, 0);
}

static void test_empty_objects_and_nulls(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"transfers\": null, "
                              "\"ref\": null, \"hash_algo\": null}"),
                     0);
    assert_int_equal(f->req.nobjects, 0);
    assert_int_equal(f->req.ntransfers, 1);
    assert_string_equal(f->req.transfers[0], "basic");
    assert_null(f->req.ref);
    assert_true(f->req.hash_algo_ok);
    /* an empty transfers list also means basic */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"transfers\": []}"),
                     0);
    assert_int_equal(f->req.ntransfers, 1);
    assert_string_equal(f->req.transfers[0], "basic");
    /* a ref without a name */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": {}}"), 0);
    assert_null(f->req.ref);
    /* unknown top-level keys are ignored */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"x\": 1}"), 0);
}

static void test_not_json(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, ""), 422);
    assert_int_equal(parse(f, "{"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [],}"), 422);
    assert_int_equal(parse(f, "operation=upload"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": []} trailing"), 422);
    /* not an object at the top */
    assert_int_equal(parse(f, "[]"), 422);
    assert_int_equal(parse(f, "null"), 422);
    assert_int_equal(parse(f, "\"upload\""), 422);
    /* a NUL byte inside the body */
    const char body[] = "{\"operation\": \"upload\"\0, \"objects\": []}";
    memset(&f->err, 0, sizeof(f->err));
    assert_int_equal(lfs_batch_parse(body, sizeof(body) - 1, 100, &f->pool, &f->req, &f->err), -1);
    assert_int_equal(f->err.status, 422);
}

static void test_duplicate_keys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        parse(f, "{\"operation\": \"upload\", \"operation\": \"download\", \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"size\": 4}]}"),
                     422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"objects\": []}"),
                     422);
    assert_non_null(strstr(f->err.message, "objects"));
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"extra\": {\"filename\": \"a\", "
                              "\"filename\": \"b\"}}]}"),
                     422);
    /* the same key written with an escape is the same key */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"\\u006fperation\": \"download\", "
                              "\"objects\": []}"),
                     422);
    /* keys the parser does not read may repeat, as they mean nothing here */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"x\": 1, \"x\": 2}"),
                     0);
}

static void test_operation(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"objects\": []}"), 422);
    assert_non_null(strstr(f->err.message, "operation"));
    assert_int_equal(parse(f, "{\"operation\": \"delete\", \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"Upload\", \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"\", \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": null, \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": 1, \"objects\": []}"), 422);
    assert_int_equal(parse(f, "{\"operation\": [\"upload\"], \"objects\": []}"), 422);
}

static void test_objects_shape(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"upload\"}"), 422);
    assert_non_null(strstr(f->err.message, "objects"));
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": null}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": " OBJ_A "}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": \"" OID_A "\"}"), 422);
    /* an element that is not an object fails the batch */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A ", 5]}"), 422);
    assert_non_null(strstr(f->err.message, "objects[1]"));
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [[]]}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [null]}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [\"" OID_A "\"]}"), 422);
}

static void test_too_many_objects(void **state)
{
    struct fixture *f = *state;
    const char *two = "{\"operation\": \"upload\", \"objects\": [" OBJ_A ", " OBJ_B "]}";
    assert_int_equal(parse_max(f, two, 2), 0);
    assert_int_equal(f->req.nobjects, 2);
    assert_int_equal(parse_max(f, two, 1), 413);
    assert_int_equal(parse_max(f, "{\"operation\": \"upload\", \"objects\": []}", 0), 0);
    /* the limit counts elements, valid or not */
    assert_int_equal(parse_max(f, "{\"operation\": \"upload\", \"objects\": [{}, {}, {}]}", 2),
                     413);
}

static void test_transfers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": \"basic\"}"),
                     422);
    assert_non_null(strstr(f->err.message, "transfers"));
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": {\"basic\": true}}"),
                     422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": [\"basic\", 1]}"),
                     422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": [null]}"),
                     422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"transfers\": 7}"),
                     422);
    /* a list longer than any client sends */
    char body[512];
    size_t used = (size_t)snprintf(body, sizeof(body),
                                   "{\"operation\": \"upload\", \"objects\": [], \"transfers\": [");
    for (int i = 0; i < 17; i++)
        used += (size_t)snprintf(body + used, sizeof(body) - used, "%s\"t%d\"", i ? "," : "", i);
    snprintf(body + used, sizeof(body) - used, "]}");
    assert_int_equal(parse(f, body), 422);
}

static void test_ref(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": \"refs/heads/main\"}"),
        422);
    assert_non_null(strstr(f->err.message, "ref"));
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": 1}"), 422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": []}"), 422);
    assert_int_equal(
        parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": {\"name\": 5}}"), 422);
    assert_int_equal(
        parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": {\"name\": null}}"), 422);
    assert_int_equal(
        parse(f, "{\"operation\": \"upload\", \"objects\": [], \"ref\": {\"name\": {}}}"), 422);
    /* other keys in ref are ignored */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"ref\": {\"name\": \"refs/heads/x\", \"other\": 1}}"),
                     0);
    assert_string_equal(f->req.ref, "refs/heads/x");
}

static void test_hash_algo(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A "], "
                              "\"hash_algo\": \"sha256\"}"),
                     0);
    assert_true(f->req.hash_algo_ok);
    assert_int_equal(f->req.objects[0].error_code, 0);
    /* another algorithm: 200 with a per-object 409; invalid objects keep their 422 */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A ", " OBJ_B
                              ", {\"oid\": \"x\", \"size\": 1}], \"hash_algo\": \"sha512\"}"),
                     0);
    assert_false(f->req.hash_algo_ok);
    assert_int_equal(f->req.nobjects, 3);
    assert_int_equal(f->req.objects[0].error_code, 409);
    assert_non_null(f->req.objects[0].error_message);
    assert_int_equal(f->req.objects[1].error_code, 409);
    assert_int_equal(f->req.objects[2].error_code, 422);
    /* case matters: the spec's name is "sha256" */
    assert_int_equal(parse(f, "{\"operation\": \"download\", \"objects\": [" OBJ_A "], "
                              "\"hash_algo\": \"SHA256\"}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 409);
    /* not a string: a malformed request */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A "], "
                              "\"hash_algo\": 256}"),
                     422);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A "], "
                              "\"hash_algo\": [\"sha256\"]}"),
                     422);
}

/* Each bad object gets its own 422; the valid ones around it are untouched. */
static void test_bad_objects_are_per_object(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "{\"size\": 3}",
        "{\"oid\": null, \"size\": 3}",
        "{\"oid\": 5, \"size\": 3}",
        "{\"oid\": \"\", \"size\": 3}",
        "{\"oid\": \"2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE\", "
        "\"size\": 3}",
        "{\"oid\": \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a\", "
        "\"size\": 3}",
        "{\"oid\": \"" OID_A "0\", \"size\": 3}",
        "{\"oid\": \"../../../../etc/passwd\", \"size\": 3}",
        "{\"oid\": \"" OID_A "\"}",
        "{\"oid\": \"" OID_A "\", \"size\": -1}",
        "{\"oid\": \"" OID_A "\", \"size\": 1.5}",
        "{\"oid\": \"" OID_A "\", \"size\": 3.0}",
        "{\"oid\": \"" OID_A "\", \"size\": \"3\"}",
        "{\"oid\": \"" OID_A "\", \"size\": null}",
        "{\"oid\": \"" OID_A "\", \"size\": true}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body), "{\"operation\": \"upload\", \"objects\": [%s, %s, %s]}",
                 OBJ_A, bad[i], OBJ_B);
        print_message("bad object: %s\n", bad[i]);
        assert_int_equal(parse(f, body), 0);
        assert_int_equal(f->req.nobjects, 3);
        assert_int_equal(f->req.objects[0].error_code, 0);
        assert_string_equal(f->req.objects[0].oid, OID_A);
        assert_int_equal(f->req.objects[0].size, 3);
        assert_int_equal(f->req.objects[1].error_code, 422);
        assert_non_null(f->req.objects[1].error_message);
        assert_non_null(f->req.objects[1].oid);
        assert_int_equal(f->req.objects[2].error_code, 0);
        assert_string_equal(f->req.objects[2].oid, OID_B);
    }
    /* a size too big for int64 is valid JSON but an invalid size: that object's 422 */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 99999999999999999999999}, " OBJ_B "]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 422);
    assert_int_equal(f->req.objects[1].error_code, 0);
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 9223372036854775808}]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 422);
    /* the largest int64 is a valid size */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 9223372036854775807}]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_true(f->req.objects[0].size == INT64_MAX);
}

static void test_extras(void **state)
{
    struct fixture *f = *state;
    /* x- keys */
    assert_int_equal(parse(f, "{\"operation\": \"download\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"x-filename\": \"data.csv\", "
                              "\"x-disposition\": \"inline\"}]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_string_equal(f->req.objects[0].filename, "data.csv");
    assert_string_equal(f->req.objects[0].disposition, "inline");
    /* an extra object, as the CKAN JavaScript SDK sends */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"extra\": {\"filename\": \"report 2024.pdf\", "
                              "\"disposition\": \"attachment\"}}]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_string_equal(f->req.objects[0].filename, "report 2024.pdf");
    assert_string_equal(f->req.objects[0].disposition, "attachment");
    /* x- keys win over extra */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"x-filename\": \"a.txt\", "
                              "\"extra\": {\"filename\": \"b.txt\"}}]}"),
                     0);
    assert_string_equal(f->req.objects[0].filename, "a.txt");
    /* null extras and a non-object extra are ignored */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"x-filename\": null, \"extra\": 5}]}"),
                     0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_null(f->req.objects[0].filename);
    assert_null(f->req.objects[0].disposition);
    /* UTF-8 filenames are kept */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                              "\", \"size\": 3, \"x-filename\": \"caf\\u00e9.txt\"}]}"),
                     0);
    assert_string_equal(f->req.objects[0].filename, "caf\xc3\xa9.txt");
}

static void test_extras_invalid(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "\"x-filename\": 5",
        "\"x-filename\": \"\"",
        "\"x-filename\": [\"a\"]",
        "\"extra\": {\"filename\": {}}",
        "\"extra\": {\"filename\": \"\"}",
        "\"x-disposition\": \"evil\"",
        "\"x-disposition\": \"\"",
        "\"x-disposition\": \"Attachment\"",
        "\"x-disposition\": true",
        "\"extra\": {\"disposition\": \"form-data\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body),
                 "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
                 "\", \"size\": 3, %s}, " OBJ_B "]}",
                 bad[i]);
        print_message("bad extra: %s\n", bad[i]);
        assert_int_equal(parse(f, body), 0);
        assert_int_equal(f->req.objects[0].error_code, 422);
        assert_int_equal(f->req.objects[1].error_code, 0);
    }
}

static void test_filename_length(void **state)
{
    struct fixture *f = *state;
    char name[300], body[1024];
    memset(name, 'n', sizeof(name));
    name[LFS_FILENAME_MAX] = '\0';
    snprintf(body, sizeof(body),
             "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
             "\", \"size\": 3, \"x-filename\": \"%s\"}]}",
             name);
    assert_int_equal(parse(f, body), 0);
    assert_int_equal(f->req.objects[0].error_code, 0);
    assert_int_equal(strlen(f->req.objects[0].filename), LFS_FILENAME_MAX);
    name[LFS_FILENAME_MAX] = 'n';
    name[LFS_FILENAME_MAX + 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"operation\": \"upload\", \"objects\": [{\"oid\": \"" OID_A
             "\", \"size\": 3, \"extra\": {\"filename\": \"%s\"}}]}",
             name);
    assert_int_equal(parse(f, body), 0);
    assert_int_equal(f->req.objects[0].error_code, 422);
    assert_null(f->req.objects[0].filename);
}

static void test_strings_outlive_json(void **state)
{
    struct fixture *f = *state;
    /* strings are copied into the pool: the body buffer may go away */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"operation\": \"download\", \"transfers\": [\"basic\"], "
             "\"ref\": {\"name\": \"refs/heads/dev\"}, \"objects\": [{\"oid\": \"" OID_A
             "\", \"size\": 3, \"x-filename\": \"f.bin\"}]}");
    assert_int_equal(parse(f, body), 0);
    memset(body, 0, sizeof(body));
    assert_string_equal(f->req.transfers[0], "basic");
    assert_string_equal(f->req.ref, "refs/heads/dev");
    assert_string_equal(f->req.objects[0].oid, OID_A);
    assert_string_equal(f->req.objects[0].filename, "f.bin");
}

static void test_pick_transfer(void **state)
{
    struct fixture *f = *state;
    static const char *const offered[] = {"basic", "multipart-basic"};
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": [\"multipart-basic\", \"basic\"]}"),
                     0);
    /* the client's order wins */
    const char *t = lfs_batch_pick_transfer(&f->req, offered, 2);
    assert_non_null(t);
    assert_string_equal(t, "multipart-basic");
    assert_ptr_equal(t, offered[1]);
    /* only what is configured */
    assert_string_equal(lfs_batch_pick_transfer(&f->req, offered, 1), "basic");
    /* an unknown first choice is skipped */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": [\"lfs-standalone-file\", \"basic\"]}"),
                     0);
    assert_string_equal(lfs_batch_pick_transfer(&f->req, offered, 2), "basic");
    /* nothing in common */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [], "
                              "\"transfers\": [\"ssh\", \"Basic\"]}"),
                     0);
    assert_null(lfs_batch_pick_transfer(&f->req, offered, 2));
    assert_null(lfs_batch_pick_transfer(&f->req, offered, 0));
    /* default basic, but the server only has multipart-basic */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": []}"), 0);
    assert_null(lfs_batch_pick_transfer(&f->req, offered + 1, 1));
    assert_string_equal(lfs_batch_pick_transfer(&f->req, offered, 2), "basic");
}

/* The answer as lfs_batch_render writes it, read back by jansson (which proves it is JSON). */
static json_t *render(const char *transfer, const struct lfs_batch_object *objs, size_t n,
                      bool authenticated)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_batch_render(transfer, objs, n, authenticated, &w);
    size_t len = 0;
    char *text = lfs_json_writer_take(&w, &len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (out == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, text);
    free(text);
    return out;
}

/* Actions are added one by one to an object's text, which stays one JSON object. */
static void test_add_actions(void **state)
{
    struct fixture *f = *state;
    struct lfs_batch_object obj = {.oid = OID_A, .size = 3};
    const char *header[] = {"Authorization", "Bearer t\"k", NULL};
    struct lfs_storage_request up = {.href = "https://h/up", .header = header};
    struct lfs_storage_request verify = {.href = "https://h/v", .method = "POST", .body = "{}"};
    lfs_batch_object_add_action(&obj, &f->pool, "upload", &up, 900);
    lfs_batch_object_add_action(&obj, &f->pool, "verify", &verify, 60);
    lfs_batch_object_add_json(&obj, &f->pool, "parts", "[1,2]", 5);
    assert_int_equal(strlen(obj.actions), obj.actions_len);
    json_error_t jerr;
    json_t *a = json_loadb(obj.actions, obj.actions_len, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(a);
    assert_int_equal(json_object_size(a), 3);
    const json_t *u = json_object_get(a, "upload");
    assert_string_equal(json_string_value(json_object_get(u, "href")), "https://h/up");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(u, "header"), "Authorization")),
        "Bearer t\"k");
    assert_int_equal(json_integer_value(json_object_get(u, "expires_in")), 900);
    assert_null(json_object_get(u, "method"));
    const json_t *v = json_object_get(a, "verify");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(v, "body")), "{}");
    assert_null(json_object_get(v, "header"));
    assert_int_equal(json_integer_value(json_object_get(v, "expires_in")), 60);
    assert_int_equal(json_array_size(json_object_get(a, "parts")), 2);
    json_decref(a);
    /* failing the object drops what was added */
    lfs_batch_object_fail(&obj, 500, "store down");
    assert_null(obj.actions);
    assert_int_equal(obj.actions_len, 0);
}

static void test_render(void **state)
{
    (void)state;
    struct lfs_batch_object objs[3];
    memset(objs, 0, sizeof(objs));
    objs[0].oid = OID_A;
    objs[0].size = 3;
    objs[0].actions = "{\"download\":{\"href\":\"https://h/x\",\"expires_in\":900}}";
    objs[0].actions_len = strlen(objs[0].actions);
    objs[1].oid = OID_B;
    objs[1].size = 5;
    lfs_batch_object_fail(&objs[1], 404, "object does not exist");
    objs[2].oid = OID_A; /* already stored: neither actions nor error */
    objs[2].size = 7;

    json_t *out = render("basic", objs, 3, true);
    assert_string_equal(json_string_value(json_object_get(out, "transfer")), "basic");
    assert_string_equal(json_string_value(json_object_get(out, "hash_algo")), "sha256");
    const json_t *list = json_object_get(out, "objects");
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 3);

    const json_t *o = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(o, "oid")), OID_A);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 3);
    assert_true(json_is_true(json_object_get(o, "authenticated")));
    const json_t *actions0 = json_object_get(o, "actions");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(actions0, "download"), "href")),
        "https://h/x");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(actions0, "download"), "expires_in")),
        900);
    assert_null(json_object_get(o, "error"));

    o = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(o, "oid")), OID_B);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 5);
    const json_t *e = json_object_get(o, "error");
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 404);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "object does not exist");
    assert_null(json_object_get(o, "actions"));
    assert_null(json_object_get(o, "authenticated"));

    o = json_array_get(list, 2);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 7);
    assert_null(json_object_get(o, "actions"));
    assert_null(json_object_get(o, "error"));
    assert_null(json_object_get(o, "authenticated"));
    assert_int_equal(json_object_size(o), 2);
    json_decref(out);
}

static void test_render_unauthenticated(void **state)
{
    (void)state;
    struct lfs_batch_object obj = {.oid = OID_A, .size = 3};
    obj.actions = "{\"upload\":{\"href\":\"http://h/u\"}}";
    obj.actions_len = strlen(obj.actions);
    json_t *out = render("multipart-basic", &obj, 1, false);
    assert_string_equal(json_string_value(json_object_get(out, "transfer")), "multipart-basic");
    const json_t *o = json_array_get(json_object_get(out, "objects"), 0);
    assert_non_null(json_object_get(o, "actions"));
    assert_null(json_object_get(o, "authenticated"));
    json_decref(out);

    /* an empty batch renders an empty list */
    out = render("basic", NULL, 0, true);
    assert_int_equal(json_array_size(json_object_get(out, "objects")), 0);
    json_decref(out);
}

static void test_parse_then_render(void **state)
{
    struct fixture *f = *state;
    /* per-object errors from parsing come out as error objects */
    assert_int_equal(parse(f, "{\"operation\": \"upload\", \"objects\": [" OBJ_A
                              ", {\"oid\": \"bad\", \"size\": 1}]}"),
                     0);
    json_t *out = render("basic", f->req.objects, f->req.nobjects, true);
    const json_t *list = json_object_get(out, "objects");
    assert_null(json_object_get(json_array_get(list, 0), "error"));
    const json_t *e = json_object_get(json_array_get(list, 1), "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 422);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "oid")), "bad");
    json_decref(out);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_minimal_upload),
        T(test_add_actions),
        T(test_full_download),
        T(test_empty_objects_and_nulls),
        T(test_not_json),
        T(test_duplicate_keys),
        T(test_operation),
        T(test_objects_shape),
        T(test_too_many_objects),
        T(test_transfers),
        T(test_ref),
        T(test_hash_algo),
        T(test_bad_objects_are_per_object),
        T(test_extras),
        T(test_extras_invalid),
        T(test_filename_length),
        T(test_strings_outlive_json),
        T(test_pick_transfer),
        T(test_render),
        T(test_render_unauthenticated),
        T(test_parse_then_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
