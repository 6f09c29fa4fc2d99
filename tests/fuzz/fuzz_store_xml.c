/* Fuzz target: what lfsgate reads in the XML answers of the stores it does not control:
 * Azure List Blobs (lfs_azure_parse_listing), Azure Get Block List (lfs_azure_block_list_size)
 * and the <Code> of Azure, GCS and S3 error bodies (lfs_storage_xml_error_code, which all three
 * backends use; GCS and S3 read nothing else from XML). The first byte picks the answer:
 * 'l' a listing (then a line with the prefix listed, then the XML), 'b' a block list (a line
 * with the block id, then the XML); every input is also read as an error body.
 * Properties: a listing has valid oids in strictly increasing order with sizes >= 0, and an
 * incomplete one reaches no further than `last`; a block size is -1 or >= 0; an error code
 * is letters and digits only and fits its buffer. */
#define H2O_USE_LIBUV 0
#include <ctype.h>
#include <h2o/memory.h>
#include <string.h>

#include "common/util.h"
#include "fuzz.h"
#include "storage/azure_sign.h"
#include "storage/remote.h"
#include "storage/storage.h"

static void listing(struct lfs_fuzz_part prefix_part, struct lfs_fuzz_part xml)
{
    char *prefix = lfs_fuzz_strdup(prefix_part);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_storage_listing out;
    if (lfs_azure_parse_listing(xml.base, xml.len, prefix, &pool, &out) == 0) {
        for (size_t i = 0; i < out.n; i++) {
            LFS_FUZZ_CHECK(lfs_oid_valid(out.oids[i], strlen(out.oids[i])));
            LFS_FUZZ_CHECK(out.sizes[i] >= 0);
            LFS_FUZZ_CHECK(i == 0 || strcmp(out.oids[i - 1], out.oids[i]) < 0);
            LFS_FUZZ_CHECK(out.complete || strcmp(out.oids[i], out.last) <= 0);
        }
        LFS_FUZZ_CHECK(out.complete == (out.last == NULL));
    }
    h2o_mem_clear_pool(&pool);
    free(prefix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct lfs_fuzz_part parts[2];
    size_t n = lfs_fuzz_split(data + 1, size - 1, "\n", 1, parts, 2);
    if (data[0] == 'l' && n == 2) {
        listing(parts[0], parts[1]);
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
