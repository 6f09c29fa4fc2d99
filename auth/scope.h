/* The `scopes` claim of a JWT (giftless grammar, as minted by CKAN's authz service) turned
 * into struct lfs_grant rules, and the reverse for the action tokens lfsgate mints.
 * (Below, {*} stands for the wildcard `*`: a C comment cannot hold a slash and a star.)
 *
 * Grammar: obj:{ref}[:{subscope}]:{actions}, where every part after `obj` may be omitted or
 * be {*}. `actions` is a comma list of read (read + read-meta), write, verify (read-meta);
 * {*} or omitted means all three. Subscope `metadata` or `meta` keeps only read-meta.
 * Scopes whose type is not `obj` grant nothing.
 *
 * Naming an object ({ref}, split on '/'), so that org paths containing '/' work:
 *   - one part: a bare oid, any org and repository (as giftless); {*} is everything;
 *   - two parts: {org}/{repo}; org/{*} is every repository of org "org";
 *   - three or more parts: when the last part is {*} or 64 lowercase hex digits it is the
 *     oid, the part before it the repository and the rest the org path; otherwise the last
 *     part is the repository and the rest the org path (all its objects).
 * So a/b/repo/<oid>, a/b/repo/{*} and a/b/repo all name repository "repo" of org path "a/b";
 * a/b/{*} keeps giftless's reading (org "a", repository "b", every object), and every
 * repository of org path "a/b" is a/b/{*}/{*}. An org path is always matched whole:
 * org/{*} does not reach "org/sub". {*} as the whole org path is a wildcard; a {*} inside
 * a longer org path, an empty part, or a part that is not a valid path segment
 * (lfs_segment_valid) makes the scope grant nothing.
 *
 * Where lfsgate is stricter than giftless (it fails closed): a scope with more than four
 * `:` parts, an empty action list (`obj:x:`), or a subscope other than metadata/meta grants
 * nothing (giftless grants everything for the first two and ignores the third). Grants add
 * up: a right given by any scope is given (giftless lets the most specific scope decide). */
#ifndef LFS_AUTH_SCOPE_H
#define LFS_AUTH_SCOPE_H

#include <jansson.h>
#include <stddef.h>

#include "auth/auth.h"

/* Parsed grants are allocated with alloc(ctx, size), which returns size bytes aligned for
 * any object or NULL: the request pool (lfs_scope_pool_alloc) or a caller's own arena. */

/* An alloc function over an h2o_mem_pool_t (ctx), aligned to 16 bytes. Never NULL (h2o
 * aborts when out of memory). The caller's thread. */
void *lfs_scope_pool_alloc(void *ctx, size_t size);

/* Parses one scope string s[0..len). Returns 1 and *out with strings from alloc; 0 when the
 * scope grants nothing (another type, malformed, unknown subscope, no known action); -1 when
 * alloc fails. Any thread. */
int lfs_scope_parse(const char *s, size_t len, void *(*alloc)(void *ctx, size_t size), void *ctx,
                    struct lfs_grant *out);

/* Parses a `scopes` claim: NULL (absent), a string or a list of strings. Scopes that grant
 * nothing are skipped. Returns 0 with *grants (one block from alloc, NULL when there are
 * none) and *ngrants; -1 and err 401 when the claim is neither a string nor a list of
 * strings, or 500 when alloc fails. Any thread. */
int lfs_scope_parse_claim(const json_t *claim, void *(*alloc)(void *ctx, size_t size), void *ctx,
                          struct lfs_grant **grants, size_t *ngrants, struct lfs_error *err);

/* Writes the scope naming exactly one object, "obj:{org_path}/{repo}/{oid}:{actions}", into
 * buf (NUL-terminated). perms: READ -> "read" (which brings read-meta), WRITE -> "write",
 * READ_META alone -> "verify", joined with ','. org_path and repo must be valid path
 * segments (lfs_segments_valid / lfs_segment_valid), oid 64 lowercase hex, perms non-zero:
 * the scope then parses back to exactly that object. Returns 0, or -1 and err 500 when an
 * argument is invalid or buf too small. Any thread. */
int lfs_scope_format(const char *org_path, const char *repo, const char *oid, unsigned perms,
                     char *buf, size_t size, struct lfs_error *err);

#endif
