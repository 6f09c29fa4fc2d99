/* Unit tests for the remote lock layer of storage/remote.c (lfs_storage_remote_lock_*), the
 * create/read/delete/list flow Azure, GCS and S3 share, against a store described by a
 * struct lfs_storage_lock_store whose calls are kept here and answered by the test, in any
 * order: the answers mapped to results (taken, gone, changed, store errors), records built
 * from reads, versions checked before any call, and the list-then-read flow (names that are
 * not locks skipped, at most LFS_STORAGE_LOCK_READS reads in flight, locks gone between the
 * listing and their read left out, a failed read failing the page, the cursor). The stores'
 * own calls run against Azurite and the GCS and S3 stand-ins in tests/e2e/test_locks.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/remote.h"

#define MAX_CALLS 1200

/* One call the layer made, waiting for the test's answer. */
struct call {
    enum lfs_storage_lock_verb verb;
    bool list;
    char object[256];
    char version[160];
    char after[256];
    size_t limit;
    h2o_iovec_t body;
    lfs_http_cb cb;
    void *arg;
    bool answered;
};

static struct call calls[MAX_CALLS];
static size_t ncalls;

static void fake_send(void *ctx, struct lfs_io *io, enum lfs_storage_lock_verb verb,
                      const char *object, const char *version, h2o_iovec_t body, lfs_http_cb cb,
                      void *arg)
{
    (void)ctx, (void)io;
    assert_true(ncalls < MAX_CALLS);
    struct call *c = &calls[ncalls++];
    *c = (struct call){.verb = verb, .body = body, .cb = cb, .arg = arg};
    snprintf(c->object, sizeof(c->object), "%s", object);
    snprintf(c->version, sizeof(c->version), "%s", version != NULL ? version : "");
}

static void fake_send_list(void *ctx, struct lfs_io *io, const char *prefix, const char *after,
                           size_t limit, lfs_http_cb cb, void *arg)
{
    (void)ctx, (void)io;
    struct call *c = &calls[ncalls++];
    *c = (struct call){.list = true, .limit = limit, .cb = cb, .arg = arg};
    snprintf(c->object, sizeof(c->object), "%s", prefix);
    snprintf(c->after, sizeof(c->after), "%s", after != NULL ? after : "");
}

static void fake_status_error(const void *ctx, struct lfs_error *err,
                              const struct lfs_http_response *res, const char *what,
                              const char *object)
{
    (void)ctx;
    lfs_error_set(err, res->status >= 500 ? 503 : 502, "fake store answered %ld to %s of %s",
                  res->status, what, object);
}

static const char *fake_version(const struct lfs_http_response *res)
{
    return res->etag;
}

static const char *fake_prefix(const struct lfs_storage *storage)
{
    (void)storage;
    return "pre";
}

static const struct lfs_storage_lock_store fake_locks = {
    .store = "fake store",
    .version_name = "an ETag",
    .what = {"create", "read", "delete"},
    .taken = {412, 409},
    .status_error = fake_status_error,
    .send = fake_send,
    .version_of = fake_version,
    .version_valid = lfs_storage_lock_etag_valid,
    .send_list = fake_send_list,
    .list_max = 1000,
    .prefix = fake_prefix,
};

static const struct lfs_storage_ops fake_ops = {.name = "fake", .lock_store = &fake_locks};
static struct lfs_storage fake_storage = {.ops = &fake_ops};

static h2o_mem_pool_t pool;
static struct lfs_io io = {.pool = &pool};

/* What the callbacks got. */
static int done_calls, done_result;
static struct lfs_error done_err;
static const struct lfs_lock_record *read_rec;
static const struct lfs_lock_page *list_page;

static void on_done(void *arg, int result, const struct lfs_error *err)
{
    (void)arg;
    done_calls++;
    done_result = result;
    done_err = err != NULL ? *err : (struct lfs_error){0};
}

static void on_read(void *arg, const struct lfs_lock_record *rec, const struct lfs_error *err)
{
    (void)arg;
    done_calls++;
    read_rec = rec;
    done_err = err != NULL ? *err : (struct lfs_error){0};
}

static void on_list(void *arg, const struct lfs_lock_page *page, const struct lfs_error *err)
{
    (void)arg;
    done_calls++;
    list_page = page;
    done_err = err != NULL ? *err : (struct lfs_error){0};
}

static int setup(void **state)
{
    (void)state;
    h2o_mem_init_pool(&pool);
    ncalls = 0;
    done_calls = 0;
    done_result = -2;
    done_err = (struct lfs_error){0};
    read_rec = NULL;
    list_page = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h2o_mem_clear_pool(&pool);
    return 0;
}

/* Answers call i with status, ETag etag and body. */
static void answer(size_t i, long status, const char *etag, const char *body)
{
    assert_false(calls[i].answered);
    calls[i].answered = true;
    struct lfs_http_response res = {.status = status,
                                    .content_length = -1,
                                    .etag = etag,
                                    .body = h2o_iovec_init(body, body != NULL ? strlen(body) : 0)};
    calls[i].cb(calls[i].arg, &res, NULL);
}

static const char name_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const struct lfs_lock_key key_a = {.org_path = "org", .repo = "repo", .name = name_a};
static const char object_a[] = "pre/org/repo/locks/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.lock";

static void test_create(void **state)
{
    (void)state;
    static const long statuses[] = {201, 412, 409, 500, 403};
    static const int results[] = {1, 0, 0, -1, -1};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        lfs_storage_remote_lock_create(&fake_storage, &io, &key_a, h2o_iovec_init(H2O_STRLIT("{}")),
                                       on_done, NULL);
        assert_int_equal(ncalls, i + 1);
        assert_int_equal(calls[i].verb, LFS_STORAGE_LOCK_CREATE);
        assert_string_equal(calls[i].object, object_a);
        assert_int_equal(calls[i].body.len, 2);
        answer(i, statuses[i], NULL, "");
        assert_int_equal(done_calls, (int)i + 1);
        assert_int_equal(done_result, results[i]);
    }
    assert_int_equal(done_err.status, 502);
    assert_non_null(strstr(done_err.message, "403 to create of pre/org/repo/locks/"));

    /* Content too large and invalid keys: 422, no call. */
    char big[LFS_LOCK_CONTENT_MAX + 1];
    memset(big, 'x', sizeof(big));
    lfs_storage_remote_lock_create(&fake_storage, &io, &key_a, h2o_iovec_init(big, sizeof(big)),
                                   on_done, NULL);
    assert_int_equal(done_result, -1);
    assert_int_equal(done_err.status, 422);
    struct lfs_lock_key bad = {.org_path = "org", .repo = "..", .name = name_a};
    lfs_storage_remote_lock_create(&fake_storage, &io, &bad, h2o_iovec_init(H2O_STRLIT("{}")),
                                   on_done, NULL);
    assert_int_equal(done_err.status, 422);
    bad = (struct lfs_lock_key){.org_path = "org", .repo = "repo", .name = "AAAA"};
    lfs_storage_remote_lock_create(&fake_storage, &io, &bad, h2o_iovec_init(H2O_STRLIT("{}")),
                                   on_done, NULL);
    assert_int_equal(done_err.status, 422);
    assert_int_equal(ncalls, 5);
}

static void test_read(void **state)
{
    (void)state;
    lfs_storage_remote_lock_read(&fake_storage, &io, &key_a, on_read, NULL);
    assert_int_equal(calls[0].verb, LFS_STORAGE_LOCK_READ);
    answer(0, 200, "\"e1\"", "{\"id\":\"x\"}");
    assert_non_null(read_rec);
    assert_string_equal(read_rec->name, name_a);
    assert_string_equal(read_rec->version, "\"e1\"");
    assert_int_equal(read_rec->content.len, 10);

    lfs_storage_remote_lock_read(&fake_storage, &io, &key_a, on_read, NULL);
    answer(1, 404, NULL, "");
    assert_null(read_rec);
    assert_int_equal(done_err.status, 0);
    assert_int_equal(done_calls, 2);

    /* a 200 without a version is not a lock the server could ever remove */
    lfs_storage_remote_lock_read(&fake_storage, &io, &key_a, on_read, NULL);
    answer(2, 200, NULL, "{}");
    assert_null(read_rec);
    assert_int_equal(done_err.status, 502);
    assert_non_null(strstr(done_err.message, "without an ETag"));
}

static void test_delete(void **state)
{
    (void)state;
    static const long statuses[] = {204, 412, 404, 503};
    static const int results[] = {1, 0, 0, -1};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        lfs_storage_remote_lock_delete(&fake_storage, &io, &key_a, "\"e1\"", on_done, NULL);
        assert_int_equal(calls[i].verb, LFS_STORAGE_LOCK_DELETE);
        assert_string_equal(calls[i].version, "\"e1\"");
        answer(i, statuses[i], NULL, "");
        assert_int_equal(done_result, results[i]);
    }
    assert_int_equal(done_err.status, 503);
    /* versions that could not have come from a read: 422, no call */
    static const char *const bad[] = {"", "a\r\nX-Injected: 1", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        lfs_storage_remote_lock_delete(&fake_storage, &io, &key_a, bad[i], on_done, NULL);
        assert_int_equal(done_result, -1);
        assert_int_equal(done_err.status, 422);
    }
    assert_int_equal(ncalls, 4);
}

/* A listing of n lock names (the i-th: 40 hex digits of i) under the locks' prefix, with a
 * name that is not a lock before them, truncated or not. */
static char *listing(size_t n, bool truncated)
{
    size_t cap = 256 + (n + 1) * 128;
    char *xml = h2o_mem_alloc_pool(&pool, cap);
    size_t len = (size_t)snprintf(xml, cap,
                                  "<ListBucketResult><Contents><Key>pre/org/repo/locks/"
                                  "notalock.txt</Key></Contents>");
    for (size_t i = 0; i < n; i++)
        len +=
            (size_t)snprintf(xml + len, cap - len,
                             "<Contents><Key>pre/org/repo/locks/%040zx.lock</Key></Contents>", i);
    snprintf(xml + len, cap - len, "<IsTruncated>%s</IsTruncated></ListBucketResult>",
             truncated ? "true" : "false");
    return xml;
}

static size_t in_flight(void)
{
    size_t n = 0;
    for (size_t i = 0; i < ncalls; i++)
        n += !calls[i].answered;
    return n;
}

static void test_list_reads_bounded(void **state)
{
    (void)state;
    const size_t n = 100;
    lfs_storage_remote_lock_list(&fake_storage, &io, &key_a, 500, on_list, NULL);
    assert_int_equal(ncalls, 1);
    assert_true(calls[0].list);
    assert_string_equal(calls[0].object, "pre/org/repo/locks/");
    assert_string_equal(calls[0].after, object_a); /* the cursor: after key->name's lock */
    assert_int_equal(calls[0].limit, 500);
    answer(0, 200, NULL, listing(n, true));
    assert_int_equal(ncalls, 1 + LFS_STORAGE_LOCK_READS);
    assert_int_equal(in_flight(), LFS_STORAGE_LOCK_READS);

    /* answered in reverse order of their start, every third lock gone meanwhile */
    size_t gone = 0;
    while (done_calls == 0) {
        size_t i = ncalls;
        while (calls[i - 1].answered)
            i--;
        i--;
        assert_int_equal(calls[i].verb, LFS_STORAGE_LOCK_READ);
        if (i % 3 == 0) {
            answer(i, 404, NULL, "");
            gone++;
        } else {
            answer(i, 200, "\"v\"", "{}");
        }
        assert_true(in_flight() <= LFS_STORAGE_LOCK_READS);
    }
    assert_int_equal(ncalls, 1 + n);
    assert_int_equal(done_err.status, 0);
    assert_non_null(list_page);
    assert_int_equal(list_page->n, n - gone);
    for (size_t i = 1; i < list_page->n; i++) /* name order, no holes */
        assert_true(strcmp(list_page->records[i - 1].name, list_page->records[i].name) < 0);
    char last[LFS_LOCK_NAME_LEN + 1];
    snprintf(last, sizeof(last), "%040zx", n - 1);
    assert_string_equal(list_page->next, last); /* truncated: go on after the last listed */
}

static void test_list_limit_and_end(void **state)
{
    (void)state;
    struct lfs_lock_key all = {.org_path = "org", .repo = "repo", .name = NULL};
    lfs_storage_remote_lock_list(&fake_storage, &io, &all, 3, on_list, NULL);
    assert_string_equal(calls[0].after, "");
    answer(0, 200, NULL, listing(5, false)); /* more than asked: the rest is the next page */
    assert_int_equal(ncalls, 4);
    for (size_t i = 1; i < 4; i++)
        answer(i, 200, "\"v\"", "{}");
    assert_int_equal(list_page->n, 3);
    assert_string_equal(list_page->next, "0000000000000000000000000000000000000002");

    lfs_storage_remote_lock_list(&fake_storage, &io, &all, 3, on_list, NULL);
    answer(4, 200, NULL, listing(0, false));
    assert_int_equal(done_calls, 2);
    assert_int_equal(list_page->n, 0);
    assert_null(list_page->next);

    /* a listing that is not one, and a store error */
    lfs_storage_remote_lock_list(&fake_storage, &io, &all, 3, on_list, NULL);
    answer(5, 200, NULL, "<Error/>");
    assert_null(list_page);
    assert_int_equal(done_err.status, 502);
    lfs_storage_remote_lock_list(&fake_storage, &io, &all, 3, on_list, NULL);
    answer(6, 500, NULL, "");
    assert_int_equal(done_err.status, 503);
    assert_int_equal(done_calls, 4);

    /* an invalid cursor name: 422, no call */
    struct lfs_lock_key bad = {.org_path = "org", .repo = "repo", .name = "../x"};
    lfs_storage_remote_lock_list(&fake_storage, &io, &bad, 3, on_list, NULL);
    assert_int_equal(done_err.status, 422);
    assert_int_equal(ncalls, 7);
}

static void test_list_failed_read(void **state)
{
    (void)state;
    lfs_storage_remote_lock_list(&fake_storage, &io, &key_a, 100, on_list, NULL);
    answer(0, 200, NULL, listing(50, false));
    size_t started = ncalls;
    answer(1, 503, NULL, "");
    /* no read starts after a failure; the page fails once the others are in */
    assert_int_equal(ncalls, started);
    assert_int_equal(done_calls, 0);
    for (size_t i = 2; i < ncalls; i++)
        answer(i, 200, "\"v\"", "{}");
    assert_int_equal(done_calls, 1);
    assert_null(list_page);
    assert_int_equal(done_err.status, 503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_reads_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_limit_and_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_failed_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
