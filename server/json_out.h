/* Compact JSON text from a jansson tree (error answers, metrics-free replies and the like),
 * through common/json_write.h. jansson's own dump goes through a callback per fragment
 * (callgrind: ~100 instructions per byte); batch answers skip the tree altogether. */
#ifndef LFS_SERVER_JSON_OUT_H
#define LFS_SERVER_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

/* Renders `value` compactly (object keys in insertion order, as json_dumps does). Returns a
 * malloc'd NUL-terminated text and its length in *len, or NULL when out of memory or for a
 * real that is not finite. Caller frees. Any thread. */
char *lfs_json_render(const json_t *value, size_t *len);

/* Writes `value` compactly into w (as lfs_json_render does), for callers that take the text
 * straight into a pool. A real that is not finite marks w failed. Any thread. */
struct lfs_json_writer;
void lfs_json_render_into(struct lfs_json_writer *w, const json_t *value);

#endif
