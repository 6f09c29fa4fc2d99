/* Request dispatch and the helpers handlers share: JSON answers and errors, authentication
 * against the app's provider chain, and the public URL of the request (ProxyFix rules). */
#include "server/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "server/logs.h"
#include "common/json_write.h"
#include "common/util.h"

#define MAX_AUTH_HEADERS 8
#define MAX_AUTH_HEADER_LEN (64 * 1024)

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

void lfs_http_send_writer(struct lfs_request *r, int status, struct lfs_json_writer *w)
{
    /* Into the pool: the body must live as long as the request. */
    size_t len = 0;
    char *text = lfs_json_writer_take_pool(w, &r->req->pool, &len);
    lfs_json_writer_free(w);
    if (text == NULL) {
        /* The last resort: a static body needs no memory at all. */
        static char oom[] = "{\"message\":\"internal error: out of memory while writing the "
                            "answer; try again\"}";
        lfs_http_send_json_text(r, 500, oom, sizeof(oom) - 1);
        return;
    }
    lfs_http_send_json_text(r, status, text, len);
}

/* An answer held back until the request's body has been read (see lfs_http_send_json_text). */
struct held_answer {
    struct lfs_request *r;
    int status;
    char *buf;
    size_t len;
};

static void on_body_drained(void *arg, bool complete)
{
    struct held_answer *a = arg;
    if (complete)
        lfs_http_send_json_text(a->r, a->status, a->buf, a->len);
}

void lfs_http_send_json_text(struct lfs_request *r, int status, char *buf, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    if (lfs_guard_direct_pending(req)) {
        /* A body the receive guard kept back from h2o, and no handler read (an upload refused
         * before it began): read and drop it first, as h2o would have read it, so the client
         * gets to read the answer. */
        struct held_answer *a = h2o_mem_alloc_pool(&req->pool, sizeof(*a));
        *a = (struct held_answer){.r = r, .status = status, .buf = buf, .len = len};
        lfs_guard_direct_read(req, NULL, on_body_drained, a);
        return;
    }
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(LFS_MEDIA_TYPE));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          r->request_id, strlen(r->request_id));
    /* buf lives as long as the request (pool or static): sent as it is, where
     * h2o_send_inline would copy it into the pool once more (a 100-object answer is 110 KB). */
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    h2o_iovec_t body = h2o_iovec_init(buf, len);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

void lfs_http_write_message(const struct lfs_request *r, struct lfs_json_writer *w,
                            const char *message)
{
    lfs_json_key(w, "message");
    lfs_json_cstring(w, message);
    lfs_json_key(w, "request_id");
    lfs_json_cstring(w, r->request_id);
}

/* message is printable text (it comes through struct lfs_error); the writer escapes it all
 * the same, so even a message that was not cannot break the answer. */
static void send_error_message(struct lfs_request *r, int status, const char *message)
{
    if (status < 400 || status > 599)
        status = 500;
    if (status == 401)
        h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, H2O_STRLIT("lfs-authenticate"),
                              0, NULL, H2O_STRLIT("Basic realm=\"Git LFS\""));
    if (status >= 500)
        lfs_log(LFS_LOG_WARN, "request %s: %d %s", r->request_id, status, message);
    /* Every refusal of access is an activity, whichever handler refused. */
    if (status == 401 || status == 403)
        lfs_log_activity(r, "access", r->route.kind == LFS_ROUTE_OBJECT ? r->route.oid : NULL, -1,
                         "denied", message);
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_http_write_message(r, &w, message);
    lfs_json_end_object(&w);
    lfs_http_send_writer(r, status, &w);
}

void lfs_http_send_error(struct lfs_request *r, int status, const char *fmt, ...)
{
    struct lfs_error err;
    char text[2 * LFS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    lfs_error_set(&err, status, "%s", text); /* made printable and cut there */
    send_error_message(r, status, err.message);
}

void lfs_http_send_lfs_error(struct lfs_request *r, const struct lfs_error *err)
{
    send_error_message(r, err->status != 0 ? err->status : 500, err->message);
}

h2o_iovec_t lfs_http_header(h2o_req_t *req, const h2o_token_t *name)
{
    ssize_t i = h2o_find_header(&req->headers, name, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

h2o_iovec_t lfs_http_header_str(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

const char *lfs_http_query_param(struct lfs_request *r, const char *name)
{
    h2o_req_t *req = r->req;
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pend = amp ? amp : end;
        if ((size_t)(pend - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            const char *v = q + nlen + 1;
            size_t vlen = (size_t)(pend - v);
            char *out = h2o_mem_alloc_pool(&req->pool, vlen + 1);
            if (lfs_url_decode(v, vlen, out) == (size_t)-1)
                return NULL;
            return out;
        }
        q = pend + 1;
    }
    return NULL;
}

/* A remote provider's lookup for this request completed: the handler runs again from its
 * start (handlers do nothing before authenticating that cannot be done twice) and the chain
 * answers from what the lookup left. Loop thread. */
static void auth_resume(void *arg)
{
    struct lfs_request *r = arg;
    switch (r->route.kind) {
    case LFS_ROUTE_BATCH: lfs_handle_batch(r); return;
    case LFS_ROUTE_OBJECT: lfs_handle_object(r); return;
    case LFS_ROUTE_VERIFY: lfs_handle_verify(r); return;
    case LFS_ROUTE_LOCKS: lfs_handle_locks(r); return;
    default:
        lfs_http_send_error(r, 500,
                            "internal error: authentication resumed on a route "
                            "that does not authenticate");
    }
}

int lfs_http_authenticate(struct lfs_request *r)
{
    h2o_req_t *req = r->req;
    h2o_iovec_t values[MAX_AUTH_HEADERS];
    size_t n = 0;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i)) >= 0;) {
        if (n == MAX_AUTH_HEADERS) {
            lfs_http_send_error(r, 400, "too many Authorization headers (at most %d)",
                                MAX_AUTH_HEADERS);
            return -1;
        }
        if (req->headers.entries[i].value.len > MAX_AUTH_HEADER_LEN) {
            lfs_http_send_error(r, 401, "Authorization header too large");
            return -1;
        }
        values[n++] = req->headers.entries[i].value;
    }
    const char *jwt = lfs_http_query_param(r, "jwt");
    if (r->auth_wait.ctx == NULL)
        r->auth_wait =
            (struct lfs_auth_wait){.ctx = req->conn->ctx, .resume = auth_resume, .arg = r};
    bool has_repo = r->route.kind == LFS_ROUTE_BATCH || r->route.kind == LFS_ROUTE_OBJECT ||
                    r->route.kind == LFS_ROUTE_VERIFY || r->route.kind == LFS_ROUTE_LOCKS;
    struct lfs_auth_request areq = {
        .authorization = values,
        .nauthorization = n,
        .query_jwt = jwt ? h2o_iovec_init(jwt, strlen(jwt)) : h2o_iovec_init(NULL, 0),
        .now = time(NULL),
        .org_path = has_repo ? r->route.org_path : NULL,
        .repo = has_repo ? r->route.repo : NULL,
        .wait = &r->auth_wait,
    };
    struct lfs_error err = {0};
    int rc = lfs_auth_chain_authenticate(&r->app->auth, &areq, &req->pool, &r->identity, &err);
    if (rc == 1)
        return 0;
    if (rc == LFS_AUTH_PENDING)
        return -1; /* auth_resume runs the handler again */
    if (rc == 0) {
        lfs_http_send_error(r, 401,
                            "authentication required: send a token as \"Authorization: Bearer "
                            "<token>\" or as the password of user _jwt");
        return -1;
    }
    /* A provider that asks a remote service may refuse with 403, a 4xx for a repository it
     * cannot serve, or 503 (with Retry-After when the service is rate limiting us). */
    int status = err.status >= 400 && err.status <= 599 ? err.status : 401;
    if (status == 503 && r->auth_wait.retry_after > 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 16);
        int len = snprintf(v, 16, "%d", r->auth_wait.retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)len);
    }
    lfs_http_send_error(r, status, "%s", err.message[0] ? err.message : "invalid credentials");
    return -1;
}

int lfs_http_authorize(struct lfs_request *r, unsigned perm, const char *oid)
{
    if (lfs_http_authenticate(r) < 0)
        return -1;
    if (lfs_identity_allows(&r->identity, r->route.org_path, r->route.repo, oid, perm))
        return 0;
    const char *what = perm & LFS_PERM_WRITE ? "write" : perm & LFS_PERM_READ ? "read" : "verify";
    lfs_http_send_error(r, 403, "\"%s\" may not %s %s in %s/%s", r->identity.id, what,
                        oid ? "this object" : "objects", r->route.org_path, r->route.repo);
    return -1;
}

bool lfs_http_accepts_json(struct lfs_request *r)
{
    h2o_iovec_t accept = lfs_http_header(r->req, H2O_TOKEN_ACCEPT);
    if (accept.base == NULL ||
        h2o_strstr(accept.base, accept.len, H2O_STRLIT("application/vnd.git-lfs")) != SIZE_MAX ||
        h2o_strstr(accept.base, accept.len, H2O_STRLIT("application/json")) != SIZE_MAX ||
        h2o_strstr(accept.base, accept.len, H2O_STRLIT("*/*")) != SIZE_MAX ||
        h2o_strstr(accept.base, accept.len, H2O_STRLIT("application/*")) != SIZE_MAX)
        return true;
    lfs_http_send_error(r, 406, "Accept must allow " LFS_MEDIA_TYPE);
    return false;
}

/* werkzeug ProxyFix's _get_real_value: the trusted-th value from the right of a
 * comma-separated header, or {NULL,0} when there are fewer values than trusted proxies.
 * Repeated header lines form one list in order (RFC 9110 5.3), as a WSGI server joins them
 * for werkzeug: the rightmost value is in the last line, so a proxy that appends its own line
 * wins over one the client sent. */
static h2o_iovec_t forwarded_value(const h2o_headers_t *headers, const char *name, int trusted)
{
    if (trusted <= 0)
        return h2o_iovec_init(NULL, 0);
    size_t nlen = strlen(name);
    int seen = 0;
    for (size_t i = headers->size; i-- > 0;) {
        const h2o_header_t *h = &headers->entries[i];
        if (!h2o_memis(h->name->base, h->name->len, name, nlen))
            continue;
        /* Walk back over this line's comma-separated values. */
        const char *base = h->value.base, *end = base + h->value.len;
        for (;;) {
            const char *start = end;
            while (start > base && start[-1] != ',')
                start--;
            if (++seen == trusted) {
                while (start < end && (*start == ' ' || *start == '\t'))
                    start++;
                while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                    end--;
                return h2o_iovec_init(start, (size_t)(end - start));
            }
            if (start == base)
                break;
            end = start - 1; /* the comma before the previous value */
        }
    }
    return h2o_iovec_init(NULL, 0); /* fewer values than trusted proxies */
}

/* RFC 7239: parameter `key` of the trusted-th element from the right of Forwarded, with
 * quotes removed; {NULL,0} when absent. */
static h2o_iovec_t forwarded_param(const h2o_headers_t *headers, int trusted, const char *key)
{
    h2o_iovec_t element = forwarded_value(headers, "forwarded", trusted);
    if (element.base == NULL) /* no such element (and NULL + 0 below would be undefined) */
        return element;
    size_t klen = strlen(key);
    const char *p = element.base, *end = element.base + element.len;
    while (p != NULL && p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pend = semi ? semi : end;
        while (p < pend && *p == ' ')
            p++;
        if ((size_t)(pend - p) > klen && strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1, *vend = pend;
            while (vend > v && vend[-1] == ' ')
                vend--;
            if (vend - v >= 2 && *v == '"' && vend[-1] == '"')
                v++, vend--;
            return h2o_iovec_init(v, (size_t)(vend - v));
        }
        p = semi ? semi + 1 : NULL;
    }
    return h2o_iovec_init(NULL, 0);
}

/* A port: 1 to 5 digits with a value from 1 to 65535 (so "99999", "0" and "" are refused). */
static bool digits_valid(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > 5)
        return false;
    unsigned value = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return false;
        value = value * 10 + (unsigned)(v.base[i] - '0');
    }
    return value >= 1 && value <= 65535;
}

/* A bracketed IPv6 literal (with the brackets): hex digits, ':' and '.' (an embedded IPv4
 * tail) only, at least one ':'. Not a full RFC 4291 parse: enough that nothing but an address
 * can reach an href. */
static bool ipv6_literal_valid(const char *p, size_t len)
{
    if (len < 4 || p[0] != '[' || p[len - 1] != ']' || memchr(p, ':', len) == NULL)
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!(isxdigit((unsigned char)p[i]) || p[i] == ':' || p[i] == '.'))
            return false;
    return true;
}

/* A DNS-ish name: labels of 1..63 letters, digits, '-' or '_' (seen in internal names)
 * separated by single dots. A name of digits and dots only must be an IPv4 address with four
 * parts of at most 255, so "999.1.1.1" or "1.2.3" are refused. */
static bool reg_name_valid(const char *p, size_t len)
{
    size_t label = 0, parts = 1;
    unsigned part = 0;
    bool all_digits = true, part_ok = true;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0, part = 0, parts++;
            continue;
        }
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_') || ++label > 63)
            return false;
        if (!isdigit((unsigned char)c)) {
            all_digits = false;
        } else {
            part = part * 10 + (unsigned)(c - '0');
            if (part > 255 || label > 3)
                part_ok = false;
        }
    }
    if (label == 0)
        return false;
    return !all_digits || (parts == 4 && part_ok);
}

/* Host and Host-like headers, trusted or not: a reg-name, an IPv4 address or a bracketed
 * IPv6 address, optionally followed by ":port" (1..65535). Everything accepted here is copied
 * into hrefs as it is, so anything else is refused. */
static bool host_valid(h2o_iovec_t host)
{
    if (host.len == 0 || host.len > 255)
        return false;
    size_t name_len = host.len;
    if (host.base[0] == '[') {
        const char *close = memchr(host.base, ']', host.len);
        if (close == NULL)
            return false;
        name_len = (size_t)(close - host.base) + 1;
        if (!ipv6_literal_valid(host.base, name_len))
            return false;
    } else {
        const char *colon = memchr(host.base, ':', host.len);
        if (colon != NULL)
            name_len = (size_t)(colon - host.base);
        if (!reg_name_valid(host.base, name_len))
            return false;
    }
    if (name_len == host.len)
        return true;
    return host.base[name_len] == ':' &&
           digits_valid(h2o_iovec_init(host.base + name_len + 1, host.len - name_len - 1));
}

int lfs_http_public_origin(h2o_mem_pool_t *pool, const struct lfs_proxy_fix *pf, const char *scheme,
                           h2o_iovec_t authority, const h2o_headers_t *headers, const char **origin,
                           struct lfs_error *err)
{
    h2o_iovec_t proto = forwarded_value(headers, "x-forwarded-proto", pf->x_proto);
    h2o_iovec_t fhost = forwarded_value(headers, "x-forwarded-host", pf->x_host);
    /* RFC 7239 Forwarded, when trusted, fills what the X-Forwarded-* headers do not. */
    if (pf->forwarded > 0) {
        if (proto.base == NULL)
            proto = forwarded_param(headers, pf->forwarded, "proto");
        if (fhost.base == NULL)
            fhost = forwarded_param(headers, pf->forwarded, "host");
    }
    h2o_iovec_t fport = forwarded_value(headers, "x-forwarded-port", pf->x_port);
    h2o_iovec_t prefix = forwarded_value(headers, "x-forwarded-prefix", pf->x_prefix);
    if (proto.base != NULL) {
        if (h2o_memis(proto.base, proto.len, H2O_STRLIT("https")))
            scheme = "https";
        else if (h2o_memis(proto.base, proto.len, H2O_STRLIT("http")))
            scheme = "http";
        else
            return lfs_error_set(err, 400, "forwarded protocol must be http or https");
    }
    h2o_iovec_t host = fhost.base != NULL ? fhost : authority;
    if (!host_valid(host))
        return lfs_error_set(err, 400,
                             "invalid %s: expected a host name, an IPv4 address or a bracketed "
                             "IPv6 address, optionally followed by :port (1-65535)",
                             fhost.base ? "forwarded host (X-Forwarded-Host or Forwarded host=)"
                                        : "Host header");
    if (fport.base != NULL) {
        if (!digits_valid(fport))
            return lfs_error_set(err, 400, "X-Forwarded-Port must be a port number (1-65535)");
        /* Replace any port in the host, as ProxyFix does (IPv6 literals keep their colons). */
        const char *bracket = memchr(host.base, ']', host.len);
        const char *from = bracket ? bracket : host.base;
        const char *colon = memchr(from, ':', host.len - (size_t)(from - host.base));
        if (colon != NULL)
            host.len = (size_t)(colon - host.base);
        bool is_default =
            (strcmp(scheme, "https") == 0 && h2o_memis(fport.base, fport.len, H2O_STRLIT("443"))) ||
            (strcmp(scheme, "http") == 0 && h2o_memis(fport.base, fport.len, H2O_STRLIT("80")));
        if (!is_default) {
            char *h = h2o_mem_alloc_pool(pool, host.len + fport.len + 2);
            memcpy(h, host.base, host.len);
            h[host.len] = ':';
            memcpy(h + host.len + 1, fport.base, fport.len);
            host = h2o_iovec_init(h, host.len + 1 + fport.len);
        }
    }
    /* The prefix becomes part of every href: accept path segments only, drop a trailing '/'. */
    while (prefix.len > 0 && prefix.base[prefix.len - 1] == '/')
        prefix.len--;
    if (prefix.len > 0 && (prefix.base[0] != '/' || prefix.len > 512 ||
                           !lfs_segments_valid(prefix.base + 1, prefix.len - 1)))
        return lfs_error_set(err, 400, "invalid X-Forwarded-Prefix header");
    size_t len = strlen(scheme) + 3 + host.len + prefix.len + 1;
    struct lfs_strbuf out = {.buf = h2o_mem_alloc_pool(pool, len), .cap = len};
    lfs_strbuf_adds(&out, scheme);
    lfs_strbuf_add(&out, "://", 3);
    lfs_strbuf_add(&out, host.base, host.len);
    lfs_strbuf_add(&out, prefix.base, prefix.len);
    *origin = out.buf;
    return 0;
}

const char *lfs_http_base_url(struct lfs_request *r)
{
    h2o_req_t *req = r->req;
    const char *origin;
    struct lfs_error err = {0};
    h2o_iovec_t authority = req->authority;
    char fallback[300];
    if (authority.len == 0) {
        /* HTTP/1.0 without Host: name the listening address. */
        const char *v6 = strchr(r->app->settings.listen_host, ':');
        snprintf(fallback, sizeof(fallback), v6 ? "[%s]:%d" : "%s:%d", r->app->settings.listen_host,
                 r->app->settings.listen_port);
        authority = h2o_iovec_init(fallback, strlen(fallback));
    }
    if (lfs_http_public_origin(&req->pool, &r->app->settings.proxy_fix, req->scheme->name.base,
                               authority, &req->headers, &origin, &err) < 0) {
        lfs_http_send_lfs_error(r, &err);
        return NULL;
    }
    /* Always the current form, even for legacy requests: nested org paths have no legacy
     * form, and giftless's legacy hrefs for them do not route. */
    size_t len = strlen(origin) + strlen(r->route.org_path) + strlen(r->route.repo) + 32;
    struct lfs_strbuf url = {.buf = h2o_mem_alloc_pool(&req->pool, len), .cap = len};
    lfs_strbuf_adds(&url, origin);
    lfs_strbuf_add(&url, "/", 1);
    lfs_strbuf_adds(&url, r->route.org_path);
    lfs_strbuf_add(&url, "/", 1);
    lfs_strbuf_adds(&url, r->route.repo);
    lfs_strbuf_add(&url, ".git/info/lfs", 13);
    return url.buf;
}

static void make_request_id(struct lfs_worker *w, char *buf, size_t size)
{
    snprintf(buf, size, "%08x%02x%010llx", w->id_salt, w->index & 0xff,
             (unsigned long long)(++w->request_seq & 0xffffffffffULL));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Runs when the request is freed, after its last byte: metrics, access log, references. */
static void request_dispose(void *p)
{
    struct lfs_request *r = p;
    double seconds = seconds_since(&r->started);
    lfs_metrics_request(r->metrics_route, r->req->res.status, seconds);
    lfs_metrics_inflight(-1);
    lfs_log_access(r, seconds);
    r->worker->inflight--;
    lfs_app_release(r->app);
}

static enum lfs_metrics_route metrics_route(const struct lfs_route *route, bool is_put)
{
    switch (route->kind) {
    case LFS_ROUTE_BATCH: return LFS_METRICS_BATCH;
    case LFS_ROUTE_OBJECT: return is_put ? LFS_METRICS_UPLOAD : LFS_METRICS_DOWNLOAD;
    case LFS_ROUTE_VERIFY: return LFS_METRICS_VERIFY;
    case LFS_ROUTE_LOCKS: return LFS_METRICS_LOCKS;
    case LFS_ROUTE_HEALTH:
    case LFS_ROUTE_READY: return LFS_METRICS_HEALTH;
    case LFS_ROUTE_METRICS: return LFS_METRICS_METRICS;
    }
    return LFS_METRICS_OTHER;
}

static struct lfs_request *request_start(h2o_req_t *req)
{
    struct lfs_worker *w = H2O_STRUCT_FROM_MEMBER(struct lfs_worker, ctx, req->conn->ctx);
    struct lfs_request *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), request_dispose);
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->worker = w;
    r->app = w->app;
    r->metrics_route = LFS_METRICS_OTHER;
    lfs_app_retain(r->app);
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    w->inflight++;
    lfs_metrics_inflight(1);
    make_request_id(w, r->request_id, sizeof(r->request_id));
    lfs_guard_body_received(req);
    return r;
}

bool lfs_http_direct_route(h2o_context_t *ctx, const char *path, size_t len)
{
    struct lfs_worker *w = H2O_STRUCT_FROM_MEMBER(struct lfs_worker, ctx, ctx);
    const struct lfs_transfer *objects = w->app->objects;
    struct lfs_route route;
    struct lfs_error err;
    return objects != NULL && (objects->ops->flags & LFS_TRANSFER_SERVES_OBJECTS) != 0 &&
           objects->storage->ops->put_open != NULL &&
           lfs_route_parse(path, len, w->app->settings.legacy_endpoints, &route, &err) == 0 &&
           route.kind == LFS_ROUTE_OBJECT;
}

/* h2o answers some requests itself before any handler runs: a body over
 * max_request_entity_size (SERVER.max_upload_size) gets 413, a head it cannot parse 400, in
 * plain text. lfsgate defines h2o_send_error_generic, which libh2o's internal calls reach
 * through its PLT (the same symbol interposition as the receive guard's, server/guard.c), so
 * those answers are LFS JSON with a request id like every other error, and reach the access
 * log and the metrics. Loop thread (h2o calls it from the connection's loop). */
void h2o_send_error_generic(h2o_req_t *req, int status, const char *reason, const char *body,
                            int flags)
{
    (void)reason;
    if (req->pathconf == NULL) {
        /* Not routed yet (h2o refused it while reading the head or body): bind it to the
         * default host, as h2o would, and take method and path from the request line. */
        h2o_hostconf_t *host = req->conn->hosts[0];
        h2o_req_bind_conf(req, host, &host->fallback_path);
        req->method = req->input.method;
        req->path = req->input.path;
        const char *q = memchr(req->path.base, '?', req->path.len);
        req->query_at = q != NULL ? (size_t)(q - req->path.base) : SIZE_MAX;
    }
    if ((flags & H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION) != 0)
        req->http1_is_persistent = 0;
    if ((flags & H2O_SEND_ERROR_KEEP_HEADERS) == 0)
        memset(&req->res.headers, 0, sizeof(req->res.headers));
    struct lfs_request *r = request_start(req);
    if (status == 413)
        lfs_http_send_error(r, 413,
                            "request body too large: this server accepts at most %zu bytes "
                            "(SERVER.max_upload_size)",
                            req->conn->ctx->globalconf->max_request_entity_size);
    else
        lfs_http_send_error(r, status, "%s", body);
}

static void send_metrics(struct lfs_request *r)
{
    size_t len;
    char *text = lfs_metrics_render(&len);
    if (text == NULL) {
        lfs_http_send_error(r, 500, "out of memory");
        return;
    }
    h2o_req_t *req = r->req;
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(body, text, len);
    free(text);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_send_inline(req, body, len);
}

/* /readyz: the config is loaded (we run) and each adapter's storage answers a size query
 * for a probe key (missing is an answer). Cached per thread for READY_CACHE seconds. */
#define READY_CACHE 5

struct ready_check {
    struct lfs_request *r;
    size_t pending;
    int status;
    char message[LFS_ERROR_MESSAGE_MAX];
};

/* {"status": "ready" | "not ready", "message": ...} */
static void send_ready(struct lfs_request *r, int status, const char *message)
{
    struct lfs_json_writer w;
    lfs_json_writer_init(&w);
    lfs_json_begin_object(&w);
    lfs_json_key(&w, "status");
    lfs_json_cstring(&w, status == 200 ? "ready" : "not ready");
    lfs_json_key(&w, "message");
    lfs_json_cstring(&w, message);
    lfs_json_end_object(&w);
    lfs_http_send_writer(r, status, &w);
}

static void ready_finish(struct ready_check *rc)
{
    struct lfs_worker *w = rc->r->worker;
    w->ready_at = time(NULL);
    w->ready_status = rc->status;
    snprintf(w->ready_message, sizeof(w->ready_message), "%s", rc->message);
    send_ready(rc->r, rc->status, rc->message);
}

static void on_ready_stat(void *arg, int64_t size, const struct lfs_error *err)
{
    (void)size;
    struct ready_check *rc = arg;
    if (err != NULL && rc->status == 200) {
        rc->status = 503;
        snprintf(rc->message, sizeof(rc->message), "%s", err->message);
    }
    if (--rc->pending == 0)
        ready_finish(rc);
}

static void handle_ready(struct lfs_request *r)
{
    struct lfs_worker *w = r->worker;
    if (w->ready_at != 0 && time(NULL) - w->ready_at < READY_CACHE) {
        send_ready(r, w->ready_status, w->ready_message);
        return;
    }
    struct ready_check *rc = h2o_mem_alloc_pool(&r->req->pool, sizeof(*rc));
    *rc = (struct ready_check){.r = r, .pending = 1, .status = 200};
    snprintf(rc->message, sizeof(rc->message), "configuration loaded, storage reachable");
    struct lfs_object_key key = {
        .org_path = "lfsgate-readyz",
        .repo = "probe",
        .oid = "0000000000000000000000000000000000000000000000000000000000000000"};
    struct lfs_io io = {.ctx = r->req->conn->ctx, .pool = &r->req->pool};
    for (size_t i = 0; i < r->app->transfers.count; i++) {
        struct lfs_storage *st = r->app->transfers.adapters[i]->storage;
        rc->pending++;
        st->ops->stat(st, &io, &key, on_ready_stat, rc);
    }
    if (--rc->pending == 0)
        ready_finish(rc);
}

int lfs_http_on_metrics_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    struct lfs_request *r = request_start(req);
    r->metrics_route = LFS_METRICS_METRICS;
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    if (h2o_memis(req->path.base, plen, H2O_STRLIT("/metrics")))
        send_metrics(r);
    else
        lfs_http_send_error(r, 404, "this listener serves /metrics only");
    return 0;
}

int lfs_http_on_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    struct lfs_request *r = request_start(req);
    lfs_cors_add_headers(r);
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    struct lfs_error err = {0};
    if (lfs_route_parse(req->path.base, plen, r->app->settings.legacy_endpoints, &r->route, &err) <
        0) {
        lfs_http_send_lfs_error(r, &err);
        return 0;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")) &&
        r->app->cors.enabled) {
        lfs_cors_preflight(r);
        return 0;
    }
    bool is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                  h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    bool is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    bool is_put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    r->metrics_route = metrics_route(&r->route, is_put);
    switch (r->route.kind) {
    case LFS_ROUTE_HEALTH:
        if (!is_get)
            break;
        static char ok[] = "{\"status\":\"ok\"}";
        lfs_http_send_json_text(r, 200, ok, sizeof(ok) - 1);
        return 0;
    case LFS_ROUTE_READY:
        if (!is_get)
            break;
        handle_ready(r);
        return 0;
    case LFS_ROUTE_METRICS:
        if (!is_get)
            break;
        if (r->app->settings.metrics_port != 0)
            lfs_http_send_error(r, 404, "metrics are served on the metrics listener");
        else
            send_metrics(r);
        return 0;
    case LFS_ROUTE_BATCH:
        if (!is_post)
            break;
        lfs_handle_batch(r);
        return 0;
    case LFS_ROUTE_OBJECT:
        if (!is_get && !is_put)
            break;
        lfs_handle_object(r);
        return 0;
    case LFS_ROUTE_VERIFY:
        if (!is_post)
            break;
        lfs_handle_verify(r);
        return 0;
    case LFS_ROUTE_LOCKS: lfs_handle_locks(r); return 0;
    }
    lfs_http_send_error(r, 405, "method \"%.*s\" is not allowed here", (int)req->method.len,
                        req->method.base);
    return 0;
}
