/* Compact JSON text from a jansson tree, written straight into one growing buffer. Batch
 * answers are the hot path of the server; jansson's own dump goes through a callback per
 * fragment and was most of a batch's cost (callgrind: ~100 instructions per byte). */
#ifndef LFS_SERVER_JSON_OUT_H
#define LFS_SERVER_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

/* Renders `value` compactly (object keys in insertion order, as json_dumps does). Returns a
 * malloc'd NUL-terminated text and its length in *len, or NULL when out of memory or for a
 * real that is not finite. Caller frees. Any thread. */
char *lfs_json_render(const json_t *value, size_t *len);

#endif
