/* Parsing and rendering of the batch API's JSON (spec: git-lfs docs/api/batch.md), apart
 * from the HTTP handling so it can be tested on its own. */
#ifndef LFS_SERVER_BATCH_H
#define LFS_SERVER_BATCH_H

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>
#include <jansson.h>

#include "transfer/transfer.h"

#define LFS_FILENAME_MAX 255
/* More transfer names than any client offers make the request malformed. */
#define LFS_BATCH_MAX_TRANSFERS 16

struct lfs_batch_request {
    enum lfs_operation operation;
    const char **transfers; /* as the client listed them; ["basic"] when absent */
    size_t ntransfers;
    const char *ref;   /* ref.name or NULL */
    bool hash_algo_ok; /* hash_algo absent or "sha256" */
    struct lfs_batch_object *objects;
    size_t nobjects;
};

/* Parses and validates a batch request body in one pass (common/json_read.h). Structural
 * problems (not JSON, not an object, unknown operation, objects not a list, wrong types, a key
 * this parser reads given twice in one object) fail with 422; more than max_objects objects
 * with 413, as soon as the next one starts. An object whose oid, size (including an integer
 * beyond int64) or extras are invalid does not fail the batch: it gets a per-object 422
 * error, and every object a 409 when hash_algo is not sha256. Extras come from
 * "x-filename"/"x-disposition" keys or an "extra" object, the x- keys first. Strings are
 * decoded into pool. Any thread. */
int lfs_batch_parse(const char *body, size_t len, long long max_objects, h2o_mem_pool_t *pool,
                    struct lfs_batch_request *out, struct lfs_error *err);

/* The first of the client's transfers that the server offers, or NULL. */
const char *lfs_batch_pick_transfer(const struct lfs_batch_request *request,
                                    const char *const *offered, size_t noffered);

/* Writes the 200 answer into w: per object its error, or its actions text as the adapter
 * wrote it (with "authenticated": true when `authenticated`), or neither (nothing to do).
 * Any thread. */
struct lfs_json_writer;
void lfs_batch_render(const char *transfer, const struct lfs_batch_object *objects, size_t n,
                      bool authenticated, struct lfs_json_writer *w);

#endif
