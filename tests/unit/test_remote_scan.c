/* Unit tests of the scan pieces the remote backends share (storage/remote.c): the cursor
 * (its prefix, names refused), which listed names count as objects, and the reading of an
 * S3-shaped XML listing page (GCS's XML API, S3's ListObjectsV2) with its continuation,
 * from answers built here: no store is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage/remote.h"

#define OID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define OID2 "2222222222222222222222222222222222222222222222222222222222222222"
#define LOCK "3333333333333333333333333333333333333333.lock"

/* What one scan_next answered. */
struct answer {
    int calls;
    const struct lfs_storage_scan_page *page;
    struct lfs_error err;
    bool failed;
};

static void on_page(void *arg, const struct lfs_storage_scan_page *page,
                    const struct lfs_error *err)
{
    struct answer *a = arg;
    a->calls++;
    a->page = page;
    a->failed = err != NULL;
    if (err != NULL)
        a->err = *err;
}

static void test_status_error(const void *ctx, struct lfs_error *err,
                              const struct lfs_http_response *res, const char *what,
                              const char *object)
{
    (void)ctx;
    lfs_error_set(err, 502, "test store: %s of %s: HTTP %ld", what, object, res->status);
}

struct fixture {
    h2o_mem_pool_t pool;
    struct lfs_io io;
    struct lfs_storage_scan *scan;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    h2o_mem_init_pool(&f.pool);
    f.io.pool = &f.pool;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    lfs_storage_scan_cursor_close(f->scan);
    h2o_mem_clear_pool(&f->pool);
    return 0;
}

/* Feeds body (status 200 unless given) to a listing read of the cursor with next_tag. */
static void answer_with(struct fixture *f, long status, const char *body, const char *next_tag,
                        struct answer *a)
{
    struct lfs_storage_scan_cursor *c = (struct lfs_storage_scan_cursor *)f->scan;
    struct lfs_storage_remote_op op = {.store = "test store",
                                       .what = "listing",
                                       .object = c->prefix,
                                       .status_error = test_status_error};
    struct lfs_http_response res = {
        .status = status, .content_length = -1, .body = h2o_iovec_init(body, strlen(body))};
    memset(a, 0, sizeof(*a));
    lfs_storage_xml_scan_on_done(lfs_storage_xml_scan_new(&f->io, c, &op, next_tag, on_page, a),
                                 &res, NULL);
    assert_int_equal(a->calls, 1);
}

static void test_cursor_prefix_and_invalid_names(void **state)
{
    struct fixture *f = *state;
    struct lfs_error err = {0};
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "a/b", "org/sub", "repo", &f->scan, &err),
                     0);
    assert_string_equal(((struct lfs_storage_scan_cursor *)f->scan)->prefix, "a/b/org/sub/repo/");
    lfs_storage_scan_cursor_close(f->scan);
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "", NULL, NULL, &f->scan, &err), 0);
    assert_string_equal(((struct lfs_storage_scan_cursor *)f->scan)->prefix, "");
    lfs_storage_scan_cursor_close(f->scan);
    f->scan = NULL;
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "p", "org/../x", "repo", &f->scan, &err),
                     -1);
    assert_int_equal(err.status, 422);
    assert_null(f->scan);
}

/* A whole-store page: objects under the prefix only; quarantined objects, other names and
 * objects with an invalid size and locks are not objects; a truncated GCS page without NextMarker
 * continues after its last key. */
static void test_whole_store_page(void **state)
{
    struct fixture *f = *state;
    struct lfs_error err = {0};
    struct answer a;
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "p", NULL, NULL, &f->scan, &err), 0);
    const char *body =
        "<?xml version='1.0'?><ListBucketResult><IsTruncated>true</IsTruncated>"
        "<Contents><Key>p/.lfsgate-quarantine/org/repo/" OID1 "</Key><Size>5</Size></Contents>"
        "<Contents><Key>p/org/repo/" OID1 "</Key><Size>5</Size></Contents>"
        "<Contents><Key>p/org/repo/notes.txt</Key><Size>5</Size></Contents>"
        "<Contents><Key>p/org/sub/other/" OID2 "</Key><Size>70013</Size></Contents>"
        "<Contents><Key>p/org/x/" OID2 "</Key><Size>-1</Size></Contents>"
        "<Contents><Key>p/org/repo/locks/" LOCK "</Key><Size>9</Size></Contents>"
        "</ListBucketResult>";
    answer_with(f, 200, body, "NextMarker", &a);
    assert_false(a.failed);
    assert_int_equal(a.page->n, 2);
    assert_false(a.page->done);
    assert_string_equal(a.page->entries[0].org_path, "org");
    assert_string_equal(a.page->entries[0].repo, "repo");
    assert_string_equal(a.page->entries[0].oid, OID1);
    assert_int_equal(a.page->entries[0].size, 5);
    assert_string_equal(a.page->entries[1].org_path, "org/sub");
    assert_string_equal(a.page->entries[1].repo, "other");
    assert_string_equal(a.page->entries[1].oid, OID2);
    assert_int_equal(a.page->entries[1].size, 70013);
    assert_string_equal(((struct lfs_storage_scan_cursor *)f->scan)->marker,
                        "p/org/repo/locks/" LOCK);
    /* the last page: done, and the next call answers the end at once */
    answer_with(f, 200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                "NextMarker", &a);
    assert_false(a.failed);
    assert_int_equal(a.page->n, 0);
    assert_true(a.page->done);
    assert_null(((struct lfs_storage_scan_cursor *)f->scan)->marker);
    memset(&a, 0, sizeof(a));
    assert_true(lfs_storage_scan_end((struct lfs_storage_scan_cursor *)f->scan, on_page, &a));
    assert_int_equal(a.calls, 1);
    assert_true(a.page->done);
}

/* A one-repository page: only "<oid>" directly under it (not a nested repository's); S3's
 * continuation token is decoded from its XML text. */
static void test_one_repository_page(void **state)
{
    struct fixture *f = *state;
    struct lfs_error err = {0};
    struct answer a;
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "", "org", "repo", &f->scan, &err), 0);
    const char *body = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                       "<Contents><Key>org/repo/" OID1 "</Key><Size>12</Size></Contents>"
                       "<Contents><Key>org/repo/nested/" OID2 "</Key><Size>3</Size></Contents>"
                       "<NextContinuationToken>a&amp;b&lt;c</NextContinuationToken>"
                       "</ListBucketResult>";
    answer_with(f, 200, body, "NextContinuationToken", &a);
    assert_false(a.failed);
    assert_int_equal(a.page->n, 1);
    assert_string_equal(a.page->entries[0].org_path, "org");
    assert_string_equal(a.page->entries[0].repo, "repo");
    assert_string_equal(a.page->entries[0].oid, OID1);
    assert_string_equal(((struct lfs_storage_scan_cursor *)f->scan)->marker, "a&b<c");
}

/* Answers that are not a usable listing fail the page (and leave the cursor where it was). */
static void test_bad_answers(void **state)
{
    struct fixture *f = *state;
    struct lfs_error err = {0};
    struct answer a;
    assert_int_equal(lfs_storage_scan_cursor_open(NULL, "p", NULL, NULL, &f->scan, &err), 0);
    answer_with(f, 403, "<Error><Code>AccessDenied</Code></Error>", "NextMarker", &a);
    assert_true(a.failed);
    assert_int_equal(a.err.status, 502);
    assert_non_null(strstr(a.err.message, "HTTP 403"));
    answer_with(f, 200, "<html>proxy</html>", "NextMarker", &a);
    assert_true(a.failed);
    assert_int_equal(a.err.status, 502);
    assert_non_null(strstr(a.err.message, "no valid listing"));
    /* S3 truncated without a token: nothing to continue with */
    answer_with(f, 200,
                "<ListBucketResult><IsTruncated>true</IsTruncated>"
                "<Contents><Key>p/org/repo/" OID1 "</Key><Size>1</Size></Contents>"
                "</ListBucketResult>",
                "NextContinuationToken", &a);
    assert_true(a.failed);
    assert_int_equal(a.err.status, 502);
    /* an entry without its size */
    answer_with(f, 200,
                "<ListBucketResult><IsTruncated>false</IsTruncated>"
                "<Contents><Key>p/org/repo/" OID1 "</Key></Contents></ListBucketResult>",
                "NextMarker", &a);
    assert_true(a.failed);
    struct lfs_storage_scan_cursor *c = (struct lfs_storage_scan_cursor *)f->scan;
    assert_false(c->done);
    assert_null(c->marker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cursor_prefix_and_invalid_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_store_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_repository_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
