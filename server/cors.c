/* CORS: origin matching (exact, '*'-patterns, or any), the headers added to every answer for
 * an allowed origin, and preflight answers. Errors carry the headers too so that a page can
 * read the message of a 401 or 422. */
#include "server/cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "server/http.h"

#define CORS_METHODS "GET, HEAD, PUT, POST, OPTIONS"

static const char *const default_allowed[] = {"Authorization", "Content-Type",     "Accept",
                                              "Range",         "X-Requested-With", NULL};
static const char *const default_exposed[] = {"LFS-Authenticate", "X-Request-ID", "Content-Range",
                                              "Content-Disposition", NULL};
/* CORS_METHODS as a list */
static const char *const default_methods[] = {"GET", "HEAD", "PUT", "POST", "OPTIONS", NULL};
static const char *const no_names[] = {NULL};

/* How one CORS configuration is spelled: lfsgate's CORS section, or the kwargs of giftless's
 * documented middleware (wsgi_cors_middleware:CorsMiddleware, whose own defaults are empty
 * lists and origin "*"). Keys in the order of `keys`. */
struct cors_spelling {
    const char *const *keys;        /* origins, headers, methods, exposed, credentials, max_age */
    const char *default_origin;     /* NULL: origins are required */
    const char *const *defaults[3]; /* headers, methods, exposed */
};

enum { K_ORIGINS, K_HEADERS, K_METHODS, K_EXPOSED, K_CREDENTIALS, K_MAX_AGE };

static const char *const native_keys[] = {"allowed_origins",
                                          "allowed_headers",
                                          "allowed_methods",
                                          "exposed_headers",
                                          "allow_credentials",
                                          "max_age",
                                          NULL};
static const struct cors_spelling native = {
    native_keys, NULL, {default_allowed, default_methods, default_exposed}};

static const char *const middleware_keys[] = {"origin",      "headers", "methods", "expose_headers",
                                              "credentials", "max_age", NULL};
static const struct cors_spelling middleware = {
    middleware_keys, "*", {no_names, no_names, no_names}};

/* Reads a list of names (or the defaults) at path.key and joins it with ", ". */
static int join_list(const json_t *section, const char *path, const char *key,
                     const char *const *defaults, char **out, struct lfs_error *err)
{
    const json_t *list = json_object_get(section, key);
    size_t len = 1, n = 0;
    if (list != NULL && !json_is_null(list) && !json_is_array(list))
        return lfs_error_set(err, 500, "config: %s.%s: expected a list of names", path, key);
    size_t count = list ? json_array_size(list) : 0;
    if (list == NULL || json_is_null(list))
        while (defaults[count])
            count++;
    for (size_t i = 0; i < count; i++) {
        const char *h = list ? json_string_value(json_array_get(list, i)) : defaults[i];
        if (h == NULL || h[0] == '\0' || strpbrk(h, ",\r\n ") != NULL)
            return lfs_error_set(err, 500,
                                 "config: %s.%s[%zu]: expected a header or method name, one "
                                 "per list entry",
                                 path, key, i);
        len += strlen(h) + 2;
    }
    *out = calloc(1, len);
    if (*out == NULL)
        return lfs_error_set(err, 500, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *h = list ? json_string_value(json_array_get(list, i)) : defaults[i];
        n += (size_t)snprintf(*out + n, len - n, "%s%s", i ? ", " : "", h);
    }
    return 0;
}

/* Builds *out from `section` as spelled by `sp`; errors name path.<key>. */
static int cors_read(const json_t *section, const char *path, const struct cors_spelling *sp,
                     struct lfs_cors *out, struct lfs_error *err)
{
    const char *const *k = sp->keys;
    const json_t *origins = json_object_get(section, k[K_ORIGINS]);
    *out = (struct lfs_cors){0};
    if (!json_is_object(section))
        return lfs_error_set(err, 500, "config: %s: expected a mapping", path);
    if (lfs_config_check_keys(section, path, k, err) < 0 ||
        lfs_config_get_bool(section, path, k[K_CREDENTIALS], false, &out->allow_credentials, err) <
            0 ||
        lfs_config_get_int(section, path, k[K_MAX_AGE], 600, 0, 86400, &out->max_age, err) < 0)
        return -1;
    if ((origins == NULL || json_is_null(origins)) && sp->default_origin != NULL) {
        out->norigins = 1;
    } else if (json_is_string(origins)) {
        out->norigins = 1;
    } else if (json_is_array(origins) && json_array_size(origins) > 0) {
        out->norigins = json_array_size(origins);
    } else {
        return lfs_error_set(err, 500,
                             "config: %s.%s: expected a list of origins "
                             "such as https://portal.example (or patterns with *)",
                             path, k[K_ORIGINS]);
    }
    out->origins = calloc(out->norigins, sizeof(char *));
    if (out->origins == NULL)
        return lfs_error_set(err, 500, "out of memory");
    for (size_t i = 0; i < out->norigins; i++) {
        const json_t *o = json_is_array(origins) ? json_array_get(origins, i) : origins;
        const char *text = o == NULL || json_is_null(o) ? sp->default_origin : json_string_value(o);
        if (text == NULL || text[0] == '\0') {
            lfs_cors_destroy(out);
            return lfs_error_set(err, 500, "config: %s.%s[%zu]: expected a string", path,
                                 k[K_ORIGINS], i);
        }
        if ((out->origins[i] = strdup(text)) == NULL) {
            lfs_cors_destroy(out);
            return lfs_error_set(err, 500, "out of memory");
        }
    }
    if (out->allow_credentials && out->norigins == 1 && strcmp(out->origins[0], "*") == 0) {
        lfs_cors_destroy(out);
        return lfs_error_set(err, 500,
                             "config: %s.%s: browsers refuse credentials "
                             "with any origin (\"*\"); list the origins",
                             path, k[K_CREDENTIALS]);
    }
    if (join_list(section, path, k[K_HEADERS], sp->defaults[0], &out->allowed_headers, err) < 0 ||
        join_list(section, path, k[K_METHODS], sp->defaults[1], &out->allowed_methods, err) < 0 ||
        join_list(section, path, k[K_EXPOSED], sp->defaults[2], &out->exposed_headers, err) < 0) {
        lfs_cors_destroy(out);
        return -1;
    }
    out->enabled = true;
    return 0;
}

int lfs_cors_create(const json_t *section, struct lfs_cors *out, struct lfs_error *err)
{
    *out = (struct lfs_cors){0};
    if (section == NULL || json_is_null(section))
        return 0;
    return cors_read(section, "CORS", &native, out, err);
}

int lfs_cors_create_middleware(const json_t *kwargs, const char *path, struct lfs_cors *out,
                               struct lfs_error *err)
{
    json_t *empty = kwargs == NULL ? json_object() : NULL;
    int rc = cors_read(kwargs != NULL ? kwargs : empty, path, &middleware, out, err);
    json_decref(empty);
    return rc;
}

void lfs_cors_destroy(struct lfs_cors *cors)
{
    for (size_t i = 0; i < cors->norigins; i++)
        free(cors->origins[i]);
    free(cors->origins);
    free(cors->allowed_headers);
    free(cors->allowed_methods);
    free(cors->exposed_headers);
    *cors = (struct lfs_cors){0};
}

/* The longest DNS label (RFC 1035 2.3.4): a star never stands for more. */
#define LABEL_MAX 63
/* Longer Origin headers are never allowed (no real origin comes near). */
#define ORIGIN_MAX 512

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A star matches one to LABEL_MAX letters, digits or '-', i.e. (part of) ONE DNS label: it
 * never crosses a '.', ':', '/', '@', '?' or '#', so the pattern https://STAR.example.org is
 * not satisfied by https://evil.com@x.example.org or https://evil.com:1.example.org.
 * Everything else matches itself exactly. Computed row by row over the pattern (which string
 * prefixes the pattern prefix matches) rather than by backtracking, so that a pattern with
 * several stars costs O(pattern x origin) on a hostile origin, not exponential time.
 * Requires len <= ORIGIN_MAX. */
static bool glob_match(const char *p, const char *s, size_t len)
{
    bool cur[ORIGIN_MAX + 1] = {true}, next[ORIGIN_MAX + 1];
    unsigned run[ORIGIN_MAX + 1];    /* label characters right before position j */
    unsigned before[ORIGIN_MAX + 2]; /* matched positions in cur[0..j) */
    run[0] = 0;
    for (size_t j = 1; j <= len; j++)
        run[j] = label_char(s[j - 1]) ? run[j - 1] + 1 : 0;
    for (; *p != '\0'; p++) {
        bool any = false;
        next[0] = false;
        if (*p == '*') {
            before[0] = 0;
            for (size_t j = 0; j <= len; j++)
                before[j + 1] = before[j] + (cur[j] ? 1 : 0);
            for (size_t j = 1; j <= len; j++) {
                size_t reach = run[j] < LABEL_MAX ? run[j] : LABEL_MAX;
                next[j] = before[j] - before[j - reach] > 0;
                any |= next[j];
            }
        } else {
            for (size_t j = 1; j <= len; j++) {
                next[j] = cur[j - 1] && s[j - 1] == *p;
                any |= next[j];
            }
        }
        if (!any)
            return false;
        memcpy(cur, next, (len + 1) * sizeof(bool));
    }
    return cur[len];
}

/* An Origin is ASCII without spaces or control characters (RFC 6454 serialisation). Anything
 * else is refused before matching, also for a lone "*": the origin is echoed into
 * Access-Control-Allow-Origin, so odd bytes must never reach that header. */
static bool origin_printable(const char *origin, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)origin[i] <= 0x20 || (unsigned char)origin[i] >= 0x7f)
            return false;
    return true;
}

bool lfs_cors_origin_allowed(const struct lfs_cors *cors, const char *origin, size_t len)
{
    if (!cors->enabled || origin == NULL || len == 0 || len > ORIGIN_MAX ||
        !origin_printable(origin, len))
        return false;
    for (size_t i = 0; i < cors->norigins; i++) {
        if (strcmp(cors->origins[i], "*") == 0)
            return true;
        if (glob_match(cors->origins[i], origin, len))
            return true;
    }
    return false;
}

/* Returns the request's Origin when CORS applies to it, else {NULL, 0}. */
static h2o_iovec_t allowed_origin(struct lfs_request *r)
{
    const struct lfs_cors *cors = &r->app->cors;
    h2o_iovec_t origin = lfs_http_header_str(r->req, "origin");
    if (!lfs_cors_origin_allowed(cors, origin.base, origin.len))
        return h2o_iovec_init(NULL, 0);
    return origin;
}

static void add(struct lfs_request *r, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 0, NULL, value,
                          len);
}

void lfs_cors_add_headers(struct lfs_request *r)
{
    const struct lfs_cors *cors = &r->app->cors;
    if (!cors->enabled)
        return;
    /* Answers differ by Origin, so caches must key on it. */
    add(r, "vary", H2O_STRLIT("Origin"));
    h2o_iovec_t origin = allowed_origin(r);
    if (origin.base == NULL)
        return;
    add(r, "access-control-allow-origin", origin.base, origin.len);
    add(r, "access-control-expose-headers", cors->exposed_headers, strlen(cors->exposed_headers));
    if (cors->allow_credentials)
        add(r, "access-control-allow-credentials", H2O_STRLIT("true"));
}

/* True when `m` is exactly one of the methods in CORS_METHODS (not a substring: "PU"). */
static bool method_allowed(h2o_iovec_t m)
{
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "OPTIONS", NULL};
    for (size_t i = 0; m.base != NULL && methods[i] != NULL; i++)
        if (h2o_memis(m.base, m.len, methods[i], strlen(methods[i])))
            return true;
    return false;
}

void lfs_cors_preflight(struct lfs_request *r)
{
    const struct lfs_cors *cors = &r->app->cors;
    h2o_req_t *req = r->req;
    h2o_iovec_t method = lfs_http_header_str(req, "access-control-request-method");
    bool method_ok = method_allowed(method);
    if (method_ok && allowed_origin(r).base != NULL) {
        char *age = h2o_mem_alloc_pool(&req->pool, 24);
        int n = snprintf(age, 24, "%lld", cors->max_age);
        add(r, "access-control-allow-methods", cors->allowed_methods,
            strlen(cors->allowed_methods));
        add(r, "access-control-allow-headers", cors->allowed_headers,
            strlen(cors->allowed_headers));
        add(r, "access-control-max-age", age, (size_t)n);
    }
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, NULL, 0);
}
