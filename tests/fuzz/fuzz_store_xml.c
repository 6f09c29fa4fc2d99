/* Fuzz target: what lfsgate reads in the XML answers of the stores it does not control:
 * Azure List Blobs (lfs_azure_parse_listing), S3 ListObjectsV2 (lfs_s3_parse_listing), Azure's
 * listing of a repository's locks (lfs_azure_parse_lock_listing), a page of the scrub's scan
 * of an S3 or GCS bucket (lfs_storage_xml_scan_on_done), Azure Get Block List
 * (lfs_azure_block_list_size) and the <Code> of Azure, GCS and S3 error bodies
 * (lfs_storage_xml_error_code, which all three backends use). The first byte picks the
 * answer: 'l' an Azure listing, 's' an S3 listing, 'k' a lock listing, 'p' an S3 scan page,
 * 'g' a GCS scan page (each then a line with the prefix listed, then the XML), 'b' a block
 * list (a line with the block id, then the XML); every input is also read as an error body.
 * Properties: a listing has valid oids in strictly increasing order with sizes >= 0, and an
 * incomplete one reaches no further than `last`; a lock listing has lock names in strictly
 * increasing order, with content of at most LFS_LOCK_CONTENT_MAX bytes and a quoted version;
 * a scan page has only valid oids of valid repositories, and an unfinished scan has a marker
 * to continue from; a block size is -1 or >= 0; an error code is letters and digits only and
 * fits its buffer. */
#define H2O_USE_LIBUV 0
#include <ctype.h>
#include <h2o/memory.h>
#include <string.h>

#include "common/util.h"
#include "fuzz.h"
#include "storage/azure_sign.h"
#include "storage/http_client.h"
#include "storage/remote.h"
#include "storage/s3_sign.h"
#include "storage/storage.h"

typedef int (*listing_fn)(const char *xml, size_t len, const char *prefix, h2o_mem_pool_t *pool,
                          struct lfs_storage_listing *out);

static void listing(listing_fn parse, const char *prefix, struct lfs_fuzz_part xml,
                    h2o_mem_pool_t *pool)
{
    struct lfs_storage_listing out;
    if (parse(xml.base, xml.len, prefix, pool, &out) == 0) {
        for (size_t i = 0; i < out.n; i++) {
            LFS_FUZZ_CHECK(lfs_oid_valid(out.oids[i], strlen(out.oids[i])));
            LFS_FUZZ_CHECK(out.sizes[i] >= 0);
            LFS_FUZZ_CHECK(i == 0 || strcmp(out.oids[i - 1], out.oids[i]) < 0);
            LFS_FUZZ_CHECK(out.complete || strcmp(out.oids[i], out.last) <= 0);
        }
        LFS_FUZZ_CHECK(out.complete == (out.last == NULL));
    }
}

static void lock_listing(const char *prefix, struct lfs_fuzz_part xml, h2o_mem_pool_t *pool)
{
    struct lfs_lock_record *recs = NULL;
    size_t n = 0;
    const char *marker = NULL;
    if (lfs_azure_parse_lock_listing(xml.base, xml.len, prefix, pool, &recs, &n, &marker) < 0)
        return;
    LFS_FUZZ_CHECK(marker != NULL);
    for (size_t i = 0; i < n; i++) {
        LFS_FUZZ_CHECK(strlen(recs[i].name) == LFS_LOCK_NAME_LEN);
        LFS_FUZZ_CHECK(i == 0 || strcmp(recs[i - 1].name, recs[i].name) < 0);
        LFS_FUZZ_CHECK(recs[i].content.len <= LFS_LOCK_CONTENT_MAX);
        LFS_FUZZ_CHECK(recs[i].version != NULL && recs[i].version[0] == '"');
    }
}

/* What the scan's callback saw. */
struct scan_seen {
    const struct lfs_storage_scan_page *page;
    int status;
};

static void on_scan_page(void *arg, const struct lfs_storage_scan_page *page,
                         const struct lfs_error *err)
{
    struct scan_seen *seen = arg;
    seen->page = page;
    seen->status = err != NULL ? err->status : 0;
}

/* The scan of the whole store under prefix (S3: "NextContinuationToken"; GCS: "NextMarker"). */
static void scan_page(const char *prefix, const char *next_tag, struct lfs_fuzz_part xml,
                      h2o_mem_pool_t *pool)
{
    struct lfs_storage_scan_cursor c = {.prefix = (char *)prefix};
    struct lfs_io io = {.pool = pool};
    struct lfs_storage_remote_op op = {.store = "fuzz store", .what = "list", .object = prefix};
    struct scan_seen seen = {0};
    struct lfs_storage_xml_scan *x =
        lfs_storage_xml_scan_new(&io, &c, &op, next_tag, on_scan_page, &seen);
    struct lfs_http_response res = {.status = 200, .body = h2o_iovec_init(xml.base, xml.len)};
    lfs_storage_xml_scan_on_done(x, &res, NULL);
    LFS_FUZZ_CHECK((seen.page != NULL) != (seen.status != 0));
    if (seen.page != NULL) {
        for (size_t i = 0; i < seen.page->n; i++) {
            const struct lfs_storage_scan_entry *e = &seen.page->entries[i];
            LFS_FUZZ_CHECK(lfs_oid_valid(e->oid, strlen(e->oid)) && e->size >= 0);
            LFS_FUZZ_CHECK(lfs_segments_valid(e->org_path, strlen(e->org_path)));
            LFS_FUZZ_CHECK(lfs_segment_valid(e->repo, strlen(e->repo)));
        }
        LFS_FUZZ_CHECK(seen.page->done == c.done);
        LFS_FUZZ_CHECK(c.done == (c.marker == NULL));
        LFS_FUZZ_CHECK(c.done || c.marker[0] != '\0');
    } else {
        LFS_FUZZ_CHECK(seen.status == 502);
    }
    free(c.marker);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct lfs_fuzz_part parts[2];
    size_t n = lfs_fuzz_split(data + 1, size - 1, "\n", 1, parts, 2);
    if (n == 2 && strchr("lskpg", data[0]) != NULL) {
        char *prefix = lfs_fuzz_strdup(parts[0]);
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        if (data[0] == 'l')
            listing(lfs_azure_parse_listing, prefix, parts[1], &pool);
        else if (data[0] == 's')
            listing(lfs_s3_parse_listing, prefix, parts[1], &pool);
        else if (data[0] == 'k')
            lock_listing(prefix, parts[1], &pool);
        else
            scan_page(prefix, data[0] == 'p' ? "NextContinuationToken" : "NextMarker", parts[1],
                      &pool);
        h2o_mem_clear_pool(&pool);
        free(prefix);
    } else if (data[0] == 'b' && n == 2 && parts[0].len <= 24) {
        char *id = lfs_fuzz_strdup(parts[0]);
        LFS_FUZZ_CHECK(lfs_azure_block_list_size(parts[1].base, parts[1].len, id) >= -1);
        free(id);
    }
    char code[64];
    memset(code, 'x', sizeof(code));
    lfs_storage_xml_error_code(h2o_iovec_init(data, size), code, sizeof(code));
    size_t len = strnlen(code, sizeof(code));
    LFS_FUZZ_CHECK(len < sizeof(code));
    for (size_t i = 0; i < len; i++)
        LFS_FUZZ_CHECK(isalnum((unsigned char)code[i]));
    return 0;
}
