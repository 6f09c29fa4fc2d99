/* Scope strings (giftless grammar) <-> struct lfs_grant. Parsing is pure string work on the
 * verified claims of a token, so it runs on any worker thread; the rules, including how a
 * nested org path is named, are documented in scope.h. The parser fails closed: anything it
 * does not understand grants nothing. */
#include "auth/scope.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"

#define MAX_SCOPE_PARTS 4

struct span {
    const char *p;
    size_t len;
};

static bool span_is(struct span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

void *lfs_scope_pool_alloc(void *ctx, size_t size)
{
    /* h2o 2.2.5 pools hand out unaligned bump allocations: align by hand. */
    uintptr_t p = (uintptr_t)h2o_mem_alloc_pool(ctx, size + 15);
    return (void *)((p + 15) & ~(uintptr_t)15);
}

/* Actions list -> permission bits; unknown actions are ignored (as giftless). */
static unsigned parse_actions(struct span s)
{
    unsigned perms = 0;
    size_t start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && s.p[i] != ',')
            continue;
        struct span a = {s.p + start, i - start};
        if (span_is(a, "read"))
            perms |= LFS_PERM_READ | LFS_PERM_READ_META;
        else if (span_is(a, "write"))
            perms |= LFS_PERM_WRITE;
        else if (span_is(a, "verify"))
            perms |= LFS_PERM_READ_META;
        else if (span_is(a, "*"))
            perms |= LFS_PERM_ALL;
        start = i + 1;
    }
    return perms;
}

/* Splits the object reference into org path, repository and oid (scope.h); a part left with
 * p == NULL is a wildcard. Returns false when the reference can never name an object. */
static bool split_ref(struct span ref, struct span *org, struct span *repo, struct span *oid)
{
    *org = *repo = *oid = (struct span){NULL, 0};
    if (ref.p == NULL)
        return true;
    size_t nparts = 1;
    for (size_t i = 0; i < ref.len; i++)
        nparts += ref.p[i] == '/';
    const char *end = ref.p + ref.len;
    const char *last = memrchr(ref.p, '/', ref.len);
    struct span tail = last ? (struct span){last + 1, (size_t)(end - last - 1)} : ref;
    if (nparts == 1) {
        if (span_is(tail, "*"))
            return true;
        if (!lfs_oid_valid(tail.p, tail.len))
            return false;
        *oid = tail;
        return true;
    }
    struct span rest = {ref.p, (size_t)(last - ref.p)};
    if (nparts >= 3 && (span_is(tail, "*") || lfs_oid_valid(tail.p, tail.len))) {
        if (!span_is(tail, "*"))
            *oid = tail;
        const char *slash = memrchr(rest.p, '/', rest.len);
        tail = (struct span){slash + 1, (size_t)(rest.p + rest.len - slash - 1)};
        rest.len = (size_t)(slash - rest.p);
    }
    if (!span_is(tail, "*")) {
        if (!lfs_segment_valid(tail.p, tail.len))
            return false;
        *repo = tail;
    }
    if (!span_is(rest, "*")) {
        if (!lfs_segments_valid(rest.p, rest.len))
            return false;
        *org = rest;
    }
    return true;
}

static const char *copy_span(char **cursor, struct span s)
{
    if (s.p == NULL)
        return NULL;
    char *out = *cursor;
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    *cursor += s.len + 1;
    return out;
}

int lfs_scope_parse(const char *s, size_t len, void *(*alloc)(void *ctx, size_t size), void *ctx,
                    struct lfs_grant *out)
{
    struct span parts[MAX_SCOPE_PARTS];
    size_t nparts = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ':')
            continue;
        if (nparts == MAX_SCOPE_PARTS)
            return 0; /* more parts than the grammar has: grant nothing */
        parts[nparts++] = (struct span){s + start, i - start};
        start = i + 1;
    }
    if (!span_is(parts[0], "obj"))
        return 0;
    struct span ref = {NULL, 0}, subscope = {NULL, 0}, actions = {NULL, 0};
    if (nparts > 1 && !span_is(parts[1], "*"))
        ref = parts[1];
    if (nparts == 3)
        actions = parts[2];
    if (nparts == 4) {
        if (!span_is(parts[2], "*"))
            subscope = parts[2];
        actions = parts[3];
    }
    unsigned perms = actions.p == NULL ? LFS_PERM_ALL : parse_actions(actions);
    if (subscope.p != NULL) {
        if (!span_is(subscope, "metadata") && !span_is(subscope, "meta"))
            return 0;
        perms &= LFS_PERM_READ_META;
    }
    if (perms == 0)
        return 0;
    struct span org, repo, oid;
    if (!split_ref(ref, &org, &repo, &oid))
        return 0;
    char *cursor = NULL;
    size_t need = org.len + repo.len + oid.len + 3;
    if ((cursor = alloc(ctx, need)) == NULL)
        return -1;
    *out = (struct lfs_grant){.perms = perms};
    out->org_path = copy_span(&cursor, org);
    out->repo = copy_span(&cursor, repo);
    out->oid = copy_span(&cursor, oid);
    return 1;
}

/* Hands out consecutive pieces of one block sized in advance. */
struct bump {
    char *next;
    size_t left;
};

static void *bump_alloc(void *ctx, size_t size)
{
    struct bump *b = ctx;
    if (size > b->left)
        return NULL;
    void *p = b->next;
    b->next += size;
    b->left -= size;
    return p;
}

int lfs_scope_parse_claim(const json_t *claim, void *(*alloc)(void *ctx, size_t size), void *ctx,
                          struct lfs_grant **grants, size_t *ngrants, struct lfs_error *err)
{
    *grants = NULL;
    *ngrants = 0;
    if (claim == NULL || json_is_null(claim))
        return 0;
    size_t n, strings = 0;
    if (json_is_string(claim)) {
        n = 1;
        strings = json_string_length(claim) + 3;
    } else if (json_is_array(claim)) {
        n = json_array_size(claim);
        for (size_t i = 0; i < n; i++) {
            const json_t *item = json_array_get(claim, i);
            if (!json_is_string(item))
                return lfs_error_set(err, 401,
                                     "token claim \"scopes\" must be a string or a "
                                     "list of strings");
            strings += json_string_length(item) + 3;
        }
    } else {
        return lfs_error_set(err, 401,
                             "token claim \"scopes\" must be a string or a list of strings");
    }
    if (n == 0)
        return 0;
    struct lfs_grant *out = alloc(ctx, n * sizeof(*out) + strings);
    if (out == NULL)
        return lfs_error_set(err, 500, "out of memory");
    struct bump b = {(char *)(out + n), strings};
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_is_string(claim) ? claim : json_array_get(claim, i);
        int r = lfs_scope_parse(json_string_value(item), json_string_length(item), bump_alloc, &b,
                                &out[count]);
        if (r < 0)
            return lfs_error_set(err, 500, "out of memory");
        count += (size_t)r;
    }
    if (count > 0) {
        *grants = out;
        *ngrants = count;
    }
    return 0;
}

int lfs_scope_format(const char *org_path, const char *repo, const char *oid, unsigned perms,
                     char *buf, size_t size, struct lfs_error *err)
{
    size_t org_len = org_path ? strlen(org_path) : 0, repo_len = repo ? strlen(repo) : 0,
           oid_len = oid ? strlen(oid) : 0;
    if (org_path == NULL || !lfs_segments_valid(org_path, org_len) || repo == NULL ||
        !lfs_segment_valid(repo, repo_len) || oid == NULL || !lfs_oid_valid(oid, oid_len))
        return lfs_error_set(err, 500, "cannot scope a token to an invalid object name");
    /* Runs for every action token minted, so pieces are copied rather than printf'd. */
    const char *actions = (perms & LFS_PERM_READ)        ? "read"
                          : (perms & LFS_PERM_READ_META) ? "verify"
                                                         : "";
    if (perms & LFS_PERM_WRITE)
        actions = (perms & LFS_PERM_READ)        ? "read,write"
                  : (perms & LFS_PERM_READ_META) ? "verify,write"
                                                 : "write";
    if (actions[0] == '\0')
        return lfs_error_set(err, 500, "cannot scope a token to no permission");
    size_t actions_len = strlen(actions);
    if (4 + org_len + 1 + repo_len + 1 + oid_len + 1 + actions_len >= size)
        return lfs_error_set(err, 500, "scope for \"%s/%s\" is too long", org_path, repo);
    char *o = buf;
    memcpy(o, "obj:", 4);
    o += 4;
    memcpy(o, org_path, org_len);
    o += org_len;
    *o++ = '/';
    memcpy(o, repo, repo_len);
    o += repo_len;
    *o++ = '/';
    memcpy(o, oid, oid_len);
    o += oid_len;
    *o++ = ':';
    memcpy(o, actions, actions_len + 1);
    return 0;
}
