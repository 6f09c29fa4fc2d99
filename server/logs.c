/* Access and activity logs as JSON lines. Each line is formatted into one buffer and written
 * with a single write(2), so lines from worker threads never interleave. */
#include "server/logs.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"

#define LINE_MAX_BYTES 4096

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void raw(struct line *l, const char *fmt, ...)
{
    /* Every writer leaves 16 bytes free so that "}\n" always fits. */
    size_t room = sizeof(l->buf) - 16 - l->len;
    if (l->len + 16 >= sizeof(l->buf))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Appends "key":"escaped value" (or null). */
static void str(struct line *l, const char *key, const char *value, size_t len)
{
    if (l->len + 64 > sizeof(l->buf))
        return;
    raw(l, ",\"%s\":", key);
    if (value == NULL) {
        raw(l, "null");
        return;
    }
    l->buf[l->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        /* Room for the longest escape, the closing quote and the end of the line. */
        if (l->len + 16 > sizeof(l->buf))
            break;
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            l->buf[l->len++] = '\\';
            l->buf[l->len++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            raw(l, "\\u%04x", c);
        } else {
            l->buf[l->len++] = (char)c;
        }
    }
    l->buf[l->len++] = '"';
}

static void start(struct line *l, struct lfs_request *r, const char *type)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    l->len = 0;
    raw(l, "{\"_type\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", type,
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000);
    str(l, "request_id", r->request_id, strlen(r->request_id));
}

static void finish(struct line *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t w = write(STDOUT_FILENO, l->buf, l->len);
    (void)w;
}

static void identity(struct line *l, struct lfs_request *r)
{
    const char *sub = r->identity.id, *name = r->identity.name;
    str(l, "sub", sub, sub ? strlen(sub) : 0);
    str(l, "name", name, name ? strlen(name) : 0);
}

void lfs_log_access(struct lfs_request *r, double seconds)
{
    if (!r->app->settings.access_log)
        return;
    h2o_req_t *req = r->req;
    struct line l;
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    start(&l, r, "AccessLog");
    str(&l, "method", req->method.base, req->method.len);
    str(&l, "path", req->path.base, plen); /* no query: it may carry ?jwt= */
    raw(&l, ",\"status\":%d,\"bytes\":%zu,\"duration_ms\":%.3f", req->res.status,
        req->bytes_sent, seconds * 1e3);
    identity(&l, r);
    finish(&l);
}

void lfs_log_activity(struct lfs_request *r, const char *action, const char *oid, int64_t size,
                      const char *result, const char *message)
{
    if (!r->app->settings.activity_log)
        return;
    struct line l;
    start(&l, r, "ActivityLog");
    str(&l, "action", action, strlen(action));
    str(&l, "result", result, strlen(result));
    identity(&l, r);
    str(&l, "org_path", r->route.org_path, strlen(r->route.org_path));
    str(&l, "repo", r->route.repo, strlen(r->route.repo));
    str(&l, "oid", oid, oid ? strlen(oid) : 0);
    if (size >= 0)
        raw(&l, ",\"size\":%" PRId64, size);
    if (message != NULL)
        str(&l, "message", message, strlen(message));
    finish(&l);
}
