/* Access and activity logs as JSON lines on stdout. Lines are assembled with plain copies
 * (no printf on the request path) into a per-thread buffer that is written with one write(2)
 * per turn of the event loop, or sooner when it fills: under load one system call carries
 * many lines, and a line never interleaves with another thread's. At most one loop turn of
 * lines is pending; lfs_logs_thread_flush writes them when a worker stops. */
#include "server/logs.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json_write.h"
#include "server/http.h"

#define LINE_MAX_BYTES 4096
#define BUFFER_BYTES (64 * 1024)

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

/* The calling thread's pending output, flushed from the loop's zero timeout. */
static __thread struct {
    char buf[BUFFER_BYTES];
    size_t len;
    h2o_timeout_entry_t flush;
    bool scheduled;
    time_t stamp_second; /* the second stamp_text was made for */
    char stamp_text[24]; /* "YYYY-MM-DDTHH:MM:SS." */
} out;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stdout is gone: logging must not stop serving */
        p += w;
        n -= (size_t)w;
    }
}

void lfs_logs_thread_flush(void)
{
    write_all(out.buf, out.len);
    out.len = 0;
}

static void on_flush(h2o_timeout_entry_t *entry)
{
    (void)entry;
    out.scheduled = false;
    lfs_logs_thread_flush();
}

static void emit(struct lfs_request *r, const struct line *l)
{
    if (out.len + l->len > sizeof(out.buf))
        lfs_logs_thread_flush();
    memcpy(out.buf + out.len, l->buf, l->len);
    out.len += l->len;
    if (!out.scheduled) {
        h2o_context_t *ctx = r->req->conn->ctx;
        out.flush.cb = on_flush;
        h2o_timeout_link(ctx->loop, &ctx->zero_timeout, &out.flush);
        out.scheduled = true;
    }
}

/* Appends n bytes, keeping 16 bytes free so that "}\n" always fits. */
static void raw(struct line *l, const char *s, size_t n)
{
    if (l->len + n + 16 > sizeof(l->buf))
        n = l->len + 16 < sizeof(l->buf) ? sizeof(l->buf) - 16 - l->len : 0;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

#define RAW(l, lit) raw((l), (lit), sizeof(lit) - 1)

static void number(struct line *l, uint64_t v)
{
    char digits[24];
    size_t n = sizeof(digits);
    do
        digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    raw(l, digits + n, sizeof(digits) - n);
}

/* Caps on a field's escaped text. Their sum stays well under LINE_MAX_BYTES, so a line always
 * keeps every field however long the request's method, path or identity: a field is cut, the
 * line never. */
#define FIELD_SHORT 64    /* method, action, result, oid */
#define FIELD_NAME 256    /* sub, name, repo */
#define FIELD_PATH 1024   /* path, org_path */
#define FIELD_MESSAGE 768 /* message */

/* Whether none of the 8 bytes in v needs escaping in JSON or stands outside printable ASCII:
 * no byte below 0x20, none from 0x7f up, no '"' and no '\\' (the usual bit tricks: a byte
 * below n, or equal to 0 after an xor, borrows into its top bit). */
static inline bool plain8(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    uint64_t below_space = (v - ones * 0x20) & ~v;
    uint64_t is_quote = (quote - ones) & ~quote, is_backslash = (backslash - ones) & ~backslash;
    uint64_t del_or_high = v | (v + ones); /* 0x7f + 1 sets the top bit; so does a top bit */
    return ((below_space | is_quote | is_backslash | del_or_high) & tops) == 0;
}

/* Appends the JSON string value (or null) as lfs_json_escape writes it: valid JSON and UTF-8
 * whatever s holds. Text beyond max bytes (max >= 16) is cut on a character boundary and
 * marked with "...". */
static void value(struct line *l, const char *s, size_t n, size_t max)
{
    if (s == NULL) {
        RAW(l, "null");
        return;
    }
    RAW(l, "\"");
    size_t room = sizeof(l->buf) - 16 - l->len, used;
    if (max > room)
        max = room;
    /* Most values (ids, paths, names) are printable ASCII that fits: copied as they are
     * checked, eight bytes at a time, without the general escaper's calls. Anything else
     * goes to the escaper. */
    if (n <= max) {
        char *d = l->buf + l->len;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!plain8(v))
                break; /* the byte loop below finds which byte */
            memcpy(d + i, &v, 8);
        }
        for (; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                break;
            d[i] = (char)c;
        }
        if (i == n) {
            l->len += n;
            RAW(l, "\"");
            return;
        }
    }
    size_t w = lfs_json_escape(l->buf + l->len, max, s, n, &used);
    if (used < n) /* cut: again, leaving room for the mark */
        w = lfs_json_escape(l->buf + l->len, max > 3 ? max - 3 : 0, s, n, &used);
    l->len += w;
    if (used < n)
        RAW(l, "...");
    RAW(l, "\"");
}

/* Appends ,"key":"value". key is a string literal (its length is known when compiling). */
#define field(l, key, s, n, max)                                                                   \
    field_n((l), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (s), (n), (max))

static void field_n(struct line *l, const char *prefix, size_t plen, const char *s, size_t n,
                    size_t max)
{
    raw(l, prefix, plen);
    value(l, s, n, max);
}

#define field_str(l, key, s, max)                                                                  \
    do {                                                                                           \
        const char *field_value_ = (s);                                                            \
        field((l), key, field_value_, field_value_ != NULL ? strlen(field_value_) : 0, (max));     \
    } while (0)

static void start(struct line *l, struct lfs_request *r, const char *type)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != out.stamp_second) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(out.stamp_text, sizeof(out.stamp_text), "%Y-%m-%dT%H:%M:%S.", &tm);
        out.stamp_second = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    char millis[5] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
                      'Z', '"'};
    l->len = 0;
    RAW(l, "{\"_type\":\"");
    raw(l, type, strlen(type));
    RAW(l, "\",\"time\":\"");
    raw(l, out.stamp_text, strlen(out.stamp_text));
    raw(l, millis, sizeof(millis));
    field_str(l, "request_id", r->request_id, FIELD_SHORT);
}

static void finish(struct lfs_request *r, struct line *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    emit(r, l);
}

static void identity(struct line *l, struct lfs_request *r)
{
    field_str(l, "sub", r->identity.id, FIELD_NAME);
    field_str(l, "name", r->identity.name, FIELD_NAME);
}

void lfs_log_access(struct lfs_request *r, double seconds)
{
    if (!r->app->settings.access_log)
        return;
    h2o_req_t *req = r->req;
    struct line l;
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    uint64_t us = (uint64_t)(seconds * 1e6);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    start(&l, r, "AccessLog");
    field(&l, "method", req->method.base, req->method.len, FIELD_SHORT);
    field(&l, "path", req->path.base, plen, FIELD_PATH); /* no query: it may carry ?jwt= */
    RAW(&l, ",\"status\":");
    number(&l, (uint64_t)(req->res.status > 0 ? req->res.status : 0));
    RAW(&l, ",\"bytes\":");
    number(&l, req->bytes_sent);
    RAW(&l, ",\"duration_ms\":");
    number(&l, us / 1000);
    raw(&l, frac, sizeof(frac));
    identity(&l, r);
    finish(r, &l);
}

void lfs_log_activity(struct lfs_request *r, const char *action, const char *oid, int64_t size,
                      const char *result, const char *message)
{
    if (!r->app->settings.activity_log)
        return;
    struct line l;
    start(&l, r, "ActivityLog");
    field_str(&l, "action", action, FIELD_SHORT);
    field_str(&l, "result", result, FIELD_SHORT);
    identity(&l, r);
    field_str(&l, "org_path", r->route.org_path, FIELD_PATH);
    field_str(&l, "repo", r->route.repo, FIELD_NAME);
    field_str(&l, "oid", oid, FIELD_SHORT);
    if (size >= 0) {
        RAW(&l, ",\"size\":");
        number(&l, (uint64_t)size);
    }
    if (message != NULL)
        field_str(&l, "message", message, FIELD_MESSAGE);
    finish(r, &l);
}

static void count(struct line *l, const char *key_lit, size_t key_len, uint64_t v)
{
    raw(l, key_lit, key_len);
    number(l, v);
}

#define COUNT(l, lit, v) count((l), (lit), sizeof(lit) - 1, (v))

void lfs_log_batch(struct lfs_request *r, const char *operation,
                   const struct lfs_log_batch_counts *c)
{
    if (!r->app->settings.activity_log)
        return;
    struct line l;
    start(&l, r, "ActivityLog");
    RAW(&l, ",\"action\":\"batch\"");
    field_str(&l, "operation", operation, FIELD_SHORT);
    RAW(&l, ",\"result\":\"answered\"");
    identity(&l, r);
    field_str(&l, "org_path", r->route.org_path, FIELD_PATH);
    field_str(&l, "repo", r->route.repo, FIELD_NAME);
    COUNT(&l, ",\"objects\":", c->objects);
    COUNT(&l, ",\"bytes\":", c->bytes);
    COUNT(&l, ",\"granted\":", c->granted);
    COUNT(&l, ",\"granted_bytes\":", c->granted_bytes);
    COUNT(&l, ",\"present\":", c->present);
    COUNT(&l, ",\"errors\":", c->errors);
    finish(r, &l);
}
