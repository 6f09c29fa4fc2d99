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

/* Reads a list of strings (or the defaults) and joins it with ", ". */
static int join_list(const json_t *section, const char *key, const char *const *defaults,
                     char **out, struct lfs_error *err)
{
    const json_t *list = json_object_get(section, key);
    size_t len = 1, n = 0;
    if (list != NULL && !json_is_null(list) && !json_is_array(list))
        return lfs_error_set(err, 500, "config: CORS.%s: expected a list of header names", key);
    size_t count = list ? json_array_size(list) : 0;
    if (list == NULL || json_is_null(list))
        while (defaults[count])
            count++;
    for (size_t i = 0; i < count; i++) {
        const char *h = list ? json_string_value(json_array_get(list, i)) : defaults[i];
        if (h == NULL || h[0] == '\0' || strpbrk(h, ",\r\n ") != NULL)
            return lfs_error_set(err, 500, "config: CORS.%s[%zu]: expected a header name", key, i);
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

int lfs_cors_create(const json_t *section, struct lfs_cors *out, struct lfs_error *err)
{
    static const char *const keys[] = {"allowed_origins",   "allowed_headers", "exposed_headers",
                                       "allow_credentials", "max_age",         NULL};
    *out = (struct lfs_cors){0};
    if (section == NULL || json_is_null(section))
        return 0;
    if (!json_is_object(section))
        return lfs_error_set(err, 500, "config: CORS: expected a mapping");
    const json_t *origins = json_object_get(section, "allowed_origins");
    if (lfs_config_check_keys(section, "CORS", keys, err) < 0 ||
        lfs_config_get_bool(section, "CORS", "allow_credentials", false, &out->allow_credentials,
                            err) < 0 ||
        lfs_config_get_int(section, "CORS", "max_age", 600, 0, 86400, &out->max_age, err) < 0)
        return -1;
    if (json_is_string(origins)) {
        out->norigins = 1;
    } else if (json_is_array(origins) && json_array_size(origins) > 0) {
        out->norigins = json_array_size(origins);
    } else {
        return lfs_error_set(err, 500,
                             "config: CORS.allowed_origins: expected a list of origins "
                             "such as https://portal.example (or patterns with *)");
    }
    out->origins = calloc(out->norigins, sizeof(char *));
    if (out->origins == NULL)
        return lfs_error_set(err, 500, "out of memory");
    for (size_t i = 0; i < out->norigins; i++) {
        const json_t *o = json_is_string(origins) ? origins : json_array_get(origins, i);
        if (!json_is_string(o) || json_string_length(o) == 0) {
            lfs_cors_destroy(out);
            return lfs_error_set(err, 500, "config: CORS.allowed_origins[%zu]: expected a string",
                                 i);
        }
        out->origins[i] = strdup(json_string_value(o));
    }
    if (out->allow_credentials && out->norigins == 1 && strcmp(out->origins[0], "*") == 0) {
        lfs_cors_destroy(out);
        return lfs_error_set(err, 500,
                             "config: CORS.allow_credentials: browsers refuse credentials "
                             "with any origin (\"*\"); list the origins");
    }
    if (join_list(section, "allowed_headers", default_allowed, &out->allowed_headers, err) < 0 ||
        join_list(section, "exposed_headers", default_exposed, &out->exposed_headers, err) < 0) {
        lfs_cors_destroy(out);
        return -1;
    }
    out->enabled = true;
    return 0;
}

void lfs_cors_destroy(struct lfs_cors *cors)
{
    for (size_t i = 0; i < cors->norigins; i++)
        free(cors->origins[i]);
    free(cors->origins);
    free(cors->allowed_headers);
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
        add(r, "access-control-allow-methods", H2O_STRLIT(CORS_METHODS));
        add(r, "access-control-allow-headers", cors->allowed_headers,
            strlen(cors->allowed_headers));
        add(r, "access-control-max-age", age, (size_t)n);
    }
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, NULL, 0);
}
