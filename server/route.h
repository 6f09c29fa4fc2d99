/* Request routing: turns a request path into a route and its validated parts. Pure; the
 * only gate between paths from the network and storage keys, so every segment that comes
 * out of it has passed lfs_segment_valid (after percent-decoding) and every oid
 * lfs_oid_valid. */
#ifndef LFS_SERVER_ROUTE_H
#define LFS_SERVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum lfs_route_kind {
    LFS_ROUTE_BATCH,   /* .../objects/batch */
    LFS_ROUTE_OBJECT,  /* .../objects/storage/<oid> */
    LFS_ROUTE_VERIFY,  /* .../objects/storage/verify */
    LFS_ROUTE_LOCKS,   /* .../locks[/...] */
    LFS_ROUTE_HEALTH,  /* /healthz */
    LFS_ROUTE_READY,   /* /readyz */
    LFS_ROUTE_METRICS, /* /metrics */
};

#define LFS_ROUTE_PATH_MAX 2048

struct lfs_route {
    enum lfs_route_kind kind;
    bool legacy;                       /* matched the /<org>/<repo>/... form */
    char org_path[LFS_ROUTE_PATH_MAX]; /* decoded, '/'-joined, validated segments */
    char repo[256];                    /* without ".git" */
    char oid[65];                      /* LFS_ROUTE_OBJECT only */
    char locks_rest[256];              /* LFS_ROUTE_LOCKS: what follows "locks", "" or "/verify" */
};

/* Parses `path` (without the query string; `len` bytes). Returns 0 and fills *out; or -1 with
 * err 404 (no such route) or 400 (a hostile or malformed segment). Any thread. */
int lfs_route_parse(const char *path, size_t len, bool legacy_endpoints, struct lfs_route *out,
                    struct lfs_error *err);

#endif
