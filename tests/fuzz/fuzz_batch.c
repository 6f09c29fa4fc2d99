/* Fuzz target: the batch request reader (lfs_batch_parse in server/batch.c, on
 * common/json_read.c) as lfs_handle_batch calls it, then the answer it renders. Properties:
 * a refusal is a 413 or 422 that says why; an accepted request respects the object limit and
 * has a transfer list; every object without an error has a valid oid and a size >= 0; the
 * rendered answer is JSON that jansson reads back with one entry per object. */
#include <jansson.h>
#include <string.h>

#include "common/json_write.h"
#include "common/util.h"
#include "fuzz.h"
#include "server/batch.h"

/* Small, so the fuzzer reaches the limit as well as the objects' checks. */
#define MAX_OBJECTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_batch_request req;
    struct lfs_error err = {0};
    if (lfs_batch_parse((const char *)data, size, MAX_OBJECTS, &pool, &req, &err) < 0) {
        LFS_FUZZ_CHECK(err.status == 413 || err.status == 422);
        LFS_FUZZ_CHECK(err.message[0] != '\0');
        h2o_mem_clear_pool(&pool);
        return 0;
    }
    LFS_FUZZ_CHECK(req.nobjects <= MAX_OBJECTS);
    LFS_FUZZ_CHECK(req.ntransfers >= 1 && req.ntransfers <= LFS_BATCH_MAX_TRANSFERS);
    for (size_t i = 0; i < req.nobjects; i++) {
        const struct lfs_batch_object *o = &req.objects[i];
        if (o->error_code != 0) {
            LFS_FUZZ_CHECK(o->error_message != NULL && o->error_message[0] != '\0');
            continue;
        }
        LFS_FUZZ_CHECK(o->oid != NULL && lfs_oid_valid(o->oid, strlen(o->oid)));
        LFS_FUZZ_CHECK(o->size >= 0);
    }
    static const char *const offered[] = {"basic", "multipart-basic"};
    const char *transfer = lfs_batch_pick_transfer(&req, offered, 2);
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_batch_render(transfer != NULL ? transfer : "basic", req.objects, req.nobjects, false, &w);
    size_t len;
    char *text = lfs_json_writer_take(&w, &len);
    LFS_FUZZ_CHECK(text != NULL);
    json_error_t jerr;
    json_t *answer = json_loadb(text, len, 0, &jerr);
    LFS_FUZZ_CHECK(answer != NULL);
    LFS_FUZZ_CHECK(json_array_size(json_object_get(answer, "objects")) == req.nobjects);
    json_decref(answer);
    free(text);
    h2o_mem_clear_pool(&pool);
    return 0;
}
