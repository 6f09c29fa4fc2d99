/* CORS for browser clients (portal pages that call the batch API and verify from another
 * origin). Off unless the CORS config section is present. */
#ifndef LFS_SERVER_CORS_H
#define LFS_SERVER_CORS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct lfs_request;

struct lfs_cors {
    bool enabled;
    char **origins; /* exact origins, patterns where a star stands for 1..63 letters, digits
                       or '-' (one DNS label at most), or a lone star */
    size_t norigins;
    char *allowed_headers; /* ", "-joined, for Access-Control-Allow-Headers */
    char *allowed_methods; /* ", "-joined, for Access-Control-Allow-Methods */
    char *exposed_headers; /* ", "-joined, for Access-Control-Expose-Headers */
    bool allow_credentials;
    long long max_age;
};

/* Reads the CORS section (NULL = off). Errors name the key path. On success the caller
 * frees *out with lfs_cors_destroy. Main thread. */
int lfs_cors_create(const json_t *section, struct lfs_cors *out, struct lfs_error *err);

/* Reads the kwargs (NULL: none) of a MIDDLEWARE entry of class
 * wsgi_cors_middleware:CorsMiddleware (giftless's documented CORS) at `path`
 * ("MIDDLEWARE[0].kwargs"): origin (a string, or lfsgate's extension, a list), credentials,
 * headers, methods, expose_headers, max_age, with that middleware's defaults (origin "*",
 * empty lists, 600). Errors name the key path. On success the caller frees *out with
 * lfs_cors_destroy. Main thread. */
int lfs_cors_create_middleware(const json_t *kwargs, const char *path, struct lfs_cors *out,
                               struct lfs_error *err);
void lfs_cors_destroy(struct lfs_cors *cors);

/* True when `origin` (len bytes, not NUL-terminated) is allowed; false for any origin with
 * bytes outside printable ASCII or longer than 512 bytes. Any thread. */
bool lfs_cors_origin_allowed(const struct lfs_cors *cors, const char *origin, size_t len);

/* Adds the CORS response headers for an allowed Origin to r's response (every answer,
 * errors included). No-op when CORS is off or the origin is not allowed. */
void lfs_cors_add_headers(struct lfs_request *r);

/* Answers a preflight (OPTIONS with Access-Control-Request-Method): 204 with the CORS
 * headers when the origin and method are allowed, 204 without them otherwise (the browser
 * then refuses the real request). */
void lfs_cors_preflight(struct lfs_request *r);

#endif
