/* AWS Signature Version 4 as AWS documents it and as its SDKs compute it (checked byte for byte
 * against the aws-c-auth suite and the S3 docs' examples in tests/unit/data/aws/): canonical
 * request -> string to sign -> HMAC-SHA256 with the key derived from the secret, date, region
 * and service. One function serves both header authorization (lfsgate's own calls to the
 * store) and presigned URLs (the clients'), so both sign the same canonical form. Also reads a
 * profile of the AWS shared credentials file and S3's ListObjectsV2 answer. Every string is
 * built in the caller's pool in one buffer sized from the input. The only state: SHA-256
 * fetched once per process, and each thread's last derived signing key (with the secret it
 * came from), which changes once a day; secrets leave these buffers only as signatures. */
#include "storage/s3_sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "common/util.h"
#include "storage/azure_sign.h"
#include "storage/storage.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A canonical header or query parameter, in the pool. `order` keeps the input order of
 * repeated header names (their values are joined in that order). */
struct pair {
    const char *name;
    const char *value;
    size_t order;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    /* Headers: stable; query parameters (order 0): by value, as SigV4 sorts them. */
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return strcmp(x->value, y->value);
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* A fresh string buffer of cap bytes from the pool. */
static struct lfs_strbuf pool_buf(h2o_mem_pool_t *pool, size_t cap)
{
    struct lfs_strbuf b = {.buf = h2o_mem_alloc_pool(pool, cap), .cap = cap};
    b.buf[0] = '\0';
    return b;
}

static char *pool_encoded(h2o_mem_pool_t *pool, const char *s)
{
    size_t n = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, 3 * n + 1);
    lfs_url_encode(s, n, out);
    return out;
}

/* Lowercased header name. */
static char *pool_lower(h2o_mem_pool_t *pool, const char *s)
{
    size_t n = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, n + 1);
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    return out;
}

/* Header value trimmed, inner runs of blanks collapsed (common/util.h). */
static char *pool_header_value(h2o_mem_pool_t *pool, const char *s)
{
    char *out = h2o_mem_alloc_pool(pool, strlen(s) + 1);
    lfs_header_value_canonical(s, out);
    return out;
}

/* The path with "." and ".." segments resolved and empty segments dropped, a trailing '/'
 * kept (RFC 3986 dot-segment removal as SigV4's normalization does it). */
static char *pool_normalized_path(h2o_mem_pool_t *pool, const char *path)
{
    size_t len = strlen(path);
    char *out = h2o_mem_alloc_pool(pool, len + 2);
    size_t n = 0;
    const char *p = path;
    bool last_was_dir = false;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *end = strchrnul(p, '/');
        size_t seg = (size_t)(end - p);
        last_was_dir = *end == '/';
        if (seg == 0 || (seg == 1 && p[0] == '.')) {
            /* nothing */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--; /* the '/' before the removed segment */
        } else {
            out[n++] = '/';
            memcpy(out + n, p, seg);
            n += seg;
        }
        p = end;
    }
    if (n == 0 || last_was_dir)
        out[n++] = '/';
    out[n] = '\0';
    return out;
}

/* SHA-256, fetched once: OpenSSL 3's one-shot SHA256() and HMAC() look the algorithm up on
 * every call, which cost ~4 times the hashing itself here (6 digests per signature;
 * bench/s3_presign.sh). A fetched EVP_MD is immutable and safe to share between threads. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md;
}

/* SHA-256 of the parts (a, alen) and (b, blen) with md, a context of the caller's. */
static bool digest2(EVP_MD_CTX *md, const void *a, size_t alen, const void *b, size_t blen,
                    unsigned char out[32])
{
    unsigned int n = 0;
    return sha256() != NULL && EVP_DigestInit_ex2(md, sha256(), NULL) == 1 &&
           EVP_DigestUpdate(md, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) &&
           EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
}

/* HMAC-SHA256 (RFC 2104) of msg under key, with two digests on md. */
static bool hmac(EVP_MD_CTX *md, const void *key, size_t klen, const char *msg,
                 unsigned char out[32])
{
    unsigned char block[64] = {0}, pad[64], inner[32];
    bool ok = true;
    if (klen > sizeof(block))
        ok = digest2(md, key, klen, NULL, 0, block);
    else
        memcpy(block, key, klen);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x36;
    ok = ok && digest2(md, pad, sizeof(pad), msg, strlen(msg), inner);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x5c;
    ok = ok && digest2(md, pad, sizeof(pad), inner, sizeof(inner), out);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok;
}

/* The signing key of the last (secret, date, region, service) this thread signed with: it
 * changes once a day (or when the keys rotate), and deriving it is four of the five HMACs of
 * a signature. The secret is compared in constant time. */
static __thread struct {
    bool valid;
    char scope[200]; /* "<date>/<region>/<service>" */
    char secret[160];
    unsigned char key[32];
} signing_key;

/* signature = hex(HMAC(kSigning, string_to_sign)), kSigning derived from the secret key. */
static bool signature(EVP_MD_CTX *md, const char *secret, const char *date, const char *region,
                      const char *service, const char *sts, char out[65])
{
    char k0[160], scope[200];
    unsigned char sig[32];
    size_t slen = strlen(secret);
    int n = snprintf(scope, sizeof(scope), "%s/%s/%s", date, region, service);
    if (slen + 5 > sizeof(k0) || n < 0 || (size_t)n >= sizeof(scope))
        return false;
    if (!(signing_key.valid && strcmp(signing_key.scope, scope) == 0 &&
          strlen(signing_key.secret) == slen &&
          CRYPTO_memcmp(signing_key.secret, secret, slen) == 0)) {
        unsigned char k[32];
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, slen + 1);
        bool ok = hmac(md, k0, slen + 4, date, k) && hmac(md, k, 32, region, k) &&
                  hmac(md, k, 32, service, k) && hmac(md, k, 32, "aws4_request", k);
        OPENSSL_cleanse(k0, sizeof(k0));
        signing_key.valid = ok;
        if (!ok) {
            OPENSSL_cleanse(k, sizeof(k));
            return false;
        }
        memcpy(signing_key.key, k, sizeof(k));
        memcpy(signing_key.scope, scope, (size_t)n + 1);
        memcpy(signing_key.secret, secret, slen + 1);
        OPENSSL_cleanse(k, sizeof(k));
    }
    bool ok = hmac(md, signing_key.key, sizeof(signing_key.key), sts, sig);
    if (ok)
        lfs_hex_encode(sig, sizeof(sig), out);
    OPENSSL_cleanse(sig, sizeof(sig));
    return ok;
}

int lfs_s3_sign(const struct lfs_s3_credentials *cred, const struct lfs_s3_sign_input *in,
                h2o_mem_pool_t *pool, struct lfs_s3_signed *out, struct lfs_error *err)
{
    *out = (struct lfs_s3_signed){0};
    bool presign = in->expires != 0;
    if (presign && (in->expires < 1 || in->expires > LFS_S3_MAX_EXPIRES))
        return lfs_error_set(err, 500, "s3 storage: presigned URL lifetime %ld is not in 1..%ld s",
                             in->expires, LFS_S3_MAX_EXPIRES);
    if (cred == NULL || cred->access_key_id == NULL || cred->secret_access_key == NULL ||
        in->method == NULL || in->host == NULL || in->path == NULL || in->path[0] != '/' ||
        in->region == NULL || in->service == NULL || has_line_break(in->host) ||
        (cred->session_token != NULL && has_line_break(cred->session_token)))
        return lfs_error_set(err, 500, "s3 storage: invalid request to sign");
    for (size_t i = 0; i < in->nheaders; i++)
        if (in->headers[i].name[0] == '\0' || has_line_break(in->headers[i].name) ||
            has_line_break(in->headers[i].value) || strchr(in->headers[i].name, ':') != NULL)
            return lfs_error_set(err, 500, "s3 storage: invalid header to sign");

    struct tm tm;
    char datetime[32], date[9];
    if (gmtime_r(&in->now, &tm) == NULL ||
        strftime(datetime, sizeof(datetime), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return lfs_error_set(err, 500, "s3 storage: cannot format the signing time");
    memcpy(date, datetime, 8);
    date[8] = '\0';
    const char *token = cred->session_token;
    const char *payload = in->payload_hash != NULL ? in->payload_hash : LFS_S3_EMPTY_SHA256;

    /* Path: normalized if asked, then each segment encoded. */
    const char *raw_path = in->normalize_path ? pool_normalized_path(pool, in->path) : in->path;
    char *path = h2o_mem_alloc_pool(pool, 3 * strlen(raw_path) + 1);
    lfs_azure_path_encode(raw_path, path); /* S3's rule too: segments encoded, '/' kept */

    /* Headers: host, the x-amz-* ones of header authorization, the extra ones. */
    size_t nh = 0;
    struct pair *hs = h2o_mem_alloc_pool(pool, (in->nheaders + 4) * sizeof(*hs));
    hs[nh++] = (struct pair){"host", pool_header_value(pool, in->host), 0};
    if (!presign) {
        hs[nh++] = (struct pair){"x-amz-date", datetime, 0};
        if (token != NULL)
            hs[nh++] = (struct pair){"x-amz-security-token", token, 0};
        if (in->content_sha256_header)
            hs[nh++] = (struct pair){"x-amz-content-sha256", payload, 0};
    }
    for (size_t i = 0; i < in->nheaders; i++)
        hs[nh++] = (struct pair){pool_lower(pool, in->headers[i].name),
                                 pool_header_value(pool, in->headers[i].value), i + 1};
    qsort(hs, nh, sizeof(*hs), pair_cmp);

    size_t bound = 1024 + strlen(in->method) + 2 * strlen(path) + strlen(payload) +
                   3 * strlen(cred->access_key_id) + strlen(in->region) + strlen(in->service) +
                   (token != NULL ? 3 * strlen(token) : 0);
    for (size_t i = 0; i < nh; i++)
        bound += 3 * (strlen(hs[i].name) + strlen(hs[i].value)) + 4;
    for (size_t i = 0; i < in->nquery; i++)
        bound += 3 * (strlen(in->query[i].name) + strlen(in->query[i].value)) + 2;

    /* Signed headers: names once each, ';'-separated. */
    struct lfs_strbuf signed_headers = pool_buf(pool, bound);
    for (size_t i = 0; i < nh; i++) {
        if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0)
            continue;
        if (i > 0)
            lfs_strbuf_add(&signed_headers, ";", 1);
        lfs_strbuf_adds(&signed_headers, hs[i].name);
    }
    struct lfs_strbuf scope = pool_buf(pool, bound);
    lfs_strbuf_adds(&scope, date);
    lfs_strbuf_add(&scope, "/", 1);
    lfs_strbuf_adds(&scope, in->region);
    lfs_strbuf_add(&scope, "/", 1);
    lfs_strbuf_adds(&scope, in->service);
    lfs_strbuf_adds(&scope, "/aws4_request");

    /* Query: the extra parameters and, presigned, the X-Amz-* ones; encoded, sorted. */
    size_t nq = 0;
    struct pair *qs = h2o_mem_alloc_pool(pool, (in->nquery + 6) * sizeof(*qs));
    for (size_t i = 0; i < in->nquery; i++)
        qs[nq++] = (struct pair){pool_encoded(pool, in->query[i].name),
                                 pool_encoded(pool, in->query[i].value), 0};
    if (presign) {
        struct lfs_strbuf credential = pool_buf(pool, bound);
        lfs_strbuf_adds(&credential, cred->access_key_id);
        lfs_strbuf_add(&credential, "/", 1);
        lfs_strbuf_adds(&credential, scope.buf);
        char expires[24];
        snprintf(expires, sizeof(expires), "%ld", in->expires);
        const char *fixed[][2] = {
            {"X-Amz-Algorithm", ALGORITHM},
            {"X-Amz-Credential", credential.buf},
            {"X-Amz-Date", datetime},
            {"X-Amz-Expires", expires},
            {"X-Amz-SignedHeaders", signed_headers.buf},
            {"X-Amz-Security-Token", token},
        };
        for (size_t i = 0; i < 6; i++)
            if (fixed[i][1] != NULL)
                qs[nq++] = (struct pair){fixed[i][0], pool_encoded(pool, fixed[i][1]), 0};
    }
    qsort(qs, nq, sizeof(*qs), pair_cmp);
    struct lfs_strbuf query = pool_buf(pool, bound);
    for (size_t i = 0; i < nq; i++) {
        if (i > 0)
            lfs_strbuf_add(&query, "&", 1);
        lfs_strbuf_adds(&query, qs[i].name);
        lfs_strbuf_add(&query, "=", 1);
        lfs_strbuf_adds(&query, qs[i].value);
    }

    /* Canonical request. */
    struct lfs_strbuf creq = pool_buf(pool, 2 * bound);
    lfs_strbuf_adds(&creq, in->method);
    lfs_strbuf_add(&creq, "\n", 1);
    lfs_strbuf_adds(&creq, path);
    lfs_strbuf_add(&creq, "\n", 1);
    lfs_strbuf_adds(&creq, query.buf);
    lfs_strbuf_add(&creq, "\n", 1);
    for (size_t i = 0; i < nh; i++) {
        bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (repeat) {
            creq.len--; /* the '\n' of the previous value: values of one name join with ',' */
            lfs_strbuf_add(&creq, ",", 1);
        } else {
            lfs_strbuf_adds(&creq, hs[i].name);
            lfs_strbuf_add(&creq, ":", 1);
        }
        lfs_strbuf_adds(&creq, hs[i].value);
        lfs_strbuf_add(&creq, "\n", 1);
    }
    lfs_strbuf_add(&creq, "\n", 1);
    lfs_strbuf_adds(&creq, signed_headers.buf);
    lfs_strbuf_add(&creq, "\n", 1);
    lfs_strbuf_adds(&creq, payload);

    /* String to sign and signature. */
    char creq_hash[65], sig[65];
    unsigned char digest[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || !digest2(md, creq.buf, creq.len, NULL, 0, digest)) {
        EVP_MD_CTX_free(md);
        return lfs_error_set(err, 500, "s3 storage: cannot sign the request (SHA-256 failed)");
    }
    lfs_hex_encode(digest, sizeof(digest), creq_hash);
    struct lfs_strbuf sts = pool_buf(pool, bound);
    lfs_strbuf_adds(&sts, ALGORITHM "\n");
    lfs_strbuf_adds(&sts, datetime);
    lfs_strbuf_add(&sts, "\n", 1);
    lfs_strbuf_adds(&sts, scope.buf);
    lfs_strbuf_add(&sts, "\n", 1);
    lfs_strbuf_adds(&sts, creq_hash);
    bool fits = !(signed_headers.overflow || scope.overflow || query.overflow || creq.overflow ||
                  sts.overflow);
    bool signed_ok =
        fits && signature(md, cred->secret_access_key, date, in->region, in->service, sts.buf, sig);
    EVP_MD_CTX_free(md);
    if (!fits)
        return lfs_error_set(err, 500, "s3 storage: request to sign too long");
    if (!signed_ok)
        return lfs_error_set(err, 500, "s3 storage: cannot sign the request (HMAC-SHA256 failed)");

    out->canonical_request = creq.buf;
    out->string_to_sign = sts.buf;
    out->signature = h2o_strdup(pool, sig, 64).base;
    out->amz_date = h2o_strdup(pool, datetime, SIZE_MAX).base;
    out->encoded_path = path;
    if (presign) {
        struct lfs_strbuf q = pool_buf(pool, query.len + 100);
        lfs_strbuf_add(&q, query.buf, query.len);
        lfs_strbuf_adds(&q, nq > 0 ? "&X-Amz-Signature=" : "X-Amz-Signature=");
        lfs_strbuf_adds(&q, sig);
        out->query = q.buf;
    } else {
        struct lfs_strbuf a = pool_buf(pool, bound);
        lfs_strbuf_adds(&a, ALGORITHM " Credential=");
        lfs_strbuf_adds(&a, cred->access_key_id);
        lfs_strbuf_add(&a, "/", 1);
        lfs_strbuf_adds(&a, scope.buf);
        lfs_strbuf_adds(&a, ", SignedHeaders=");
        lfs_strbuf_adds(&a, signed_headers.buf);
        lfs_strbuf_adds(&a, ", Signature=");
        lfs_strbuf_adds(&a, sig);
        out->authorization = a.buf;
        out->query = query.buf;
    }
    OPENSSL_cleanse(sig, sizeof(sig));
    return 0;
}

/* ---- the shared credentials file ---- */

/* [s, e) with blanks trimmed at both ends. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

static bool span_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - s) == n && strncasecmp(s, word, n) == 0;
}

int lfs_s3_profile_parse(const char *text, size_t len, const char *profile,
                         struct lfs_s3_profile *out, struct lfs_error *err)
{
    *out = (struct lfs_s3_profile){0};
    const char *p = text, *end = text + len;
    bool found = false, inside = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = nl != NULL ? nl : end;
        p = nl != NULL ? nl + 1 : end;
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';')
            continue;
        if (*ls == '[') {
            const char *ns = ls + 1, *ne = le;
            if (ne > ns && ne[-1] == ']')
                ne--;
            trim(&ns, &ne);
            inside = (size_t)(ne - ns) == strlen(profile) &&
                     strncmp(ns, profile, (size_t)(ne - ns)) == 0;
            found = found || inside;
            continue;
        }
        if (!inside)
            continue;
        const char *eq = memchr(ls, '=', (size_t)(le - ls));
        if (eq == NULL)
            continue;
        const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
        trim(&ks, &ke);
        trim(&vs, &ve);
        char *dst = NULL;
        size_t cap = 0;
        if (span_is(ks, ke, "aws_access_key_id"))
            dst = out->access_key_id, cap = sizeof(out->access_key_id);
        else if (span_is(ks, ke, "aws_secret_access_key"))
            dst = out->secret_access_key, cap = sizeof(out->secret_access_key);
        else if (span_is(ks, ke, "aws_session_token") || span_is(ks, ke, "aws_security_token"))
            dst = out->session_token, cap = sizeof(out->session_token);
        else if (out->unsupported[0] == '\0' &&
                 (span_is(ks, ke, "role_arn") || span_is(ks, ke, "credential_process") ||
                  span_is(ks, ke, "web_identity_token_file") || span_is(ks, ke, "sso_session") ||
                  span_is(ks, ke, "sso_start_url")))
            snprintf(out->unsupported, sizeof(out->unsupported), "%.*s", (int)(ke - ks), ks);
        if (dst == NULL)
            continue;
        if ((size_t)(ve - vs) >= cap) {
            OPENSSL_cleanse(out, sizeof(*out));
            return lfs_error_set(err, 500, "profile \"%s\": the value of %.*s is too long", profile,
                                 (int)(ke - ks), ks);
        }
        memcpy(dst, vs, (size_t)(ve - vs));
        dst[ve - vs] = '\0';
    }
    if (!found)
        return 0;
    if (out->access_key_id[0] == '\0' || out->secret_access_key[0] == '\0') {
        char unsupported[64];
        snprintf(unsupported, sizeof(unsupported), "%s", out->unsupported);
        bool has_id = out->access_key_id[0] != '\0';
        OPENSSL_cleanse(out, sizeof(*out));
        if (unsupported[0] != '\0')
            return lfs_error_set(err, 500,
                                 "profile \"%s\" gets its keys through %s, which lfsgate does not "
                                 "support; give aws_access_key_id and aws_secret_access_key",
                                 profile, unsupported);
        return lfs_error_set(err, 500, "profile \"%s\" has no %s", profile,
                             has_id ? "aws_secret_access_key" : "aws_access_key_id");
    }
    return 1;
}

/* ---- ListObjectsV2 ---- */

int lfs_s3_parse_listing(const char *xml, size_t len, const char *prefix, h2o_mem_pool_t *pool,
                         struct lfs_storage_listing *out)
{
    *out = (struct lfs_storage_listing){0};
    const char *end = xml + len;
    if (h2o_strstr(xml, len, H2O_STRLIT("<ListBucketResult")) == SIZE_MAX)
        return -1;
    /* Entries: at most one per "<Contents>" of the answer. */
    size_t cap = 0;
    for (const char *p = xml; (p = memmem(p, (size_t)(end - p), "<Contents>", 10)) != NULL; p += 10)
        cap++;
    const char **oids = h2o_mem_alloc_pool(pool, (cap + 1) * sizeof(*oids));
    int64_t *sizes = h2o_mem_alloc_pool(pool, (cap + 1) * sizeof(*sizes));
    size_t plen = strlen(prefix), n = 0;
    const char *last = NULL, *p = xml;
    for (;;) {
        size_t at = h2o_strstr(p, (size_t)(end - p), H2O_STRLIT("<Contents>"));
        if (at == SIZE_MAX)
            break;
        const char *start = p + at;
        size_t close = h2o_strstr(start, (size_t)(end - start), H2O_STRLIT("</Contents>"));
        if (close == SIZE_MAX)
            return -1;
        const char *entry_end = start + close, *q = start;
        char *key = lfs_azure_xml_text(&q, entry_end, "<Key>", "</Key>", pool);
        if (key == NULL || strncmp(key, prefix, plen) != 0)
            return -1; /* not an answer to this listing */
        const char *child = key + plen;
        if (last != NULL && strcmp(child, last) <= 0)
            return -1; /* S3 lists keys in order; anything else is not trusted */
        last = child;
        if (lfs_oid_valid(child, strlen(child))) {
            q = start;
            char *size = lfs_azure_xml_text(&q, entry_end, "<Size>", "</Size>", pool);
            char *stop = NULL;
            long long v = size != NULL ? strtoll(size, &stop, 10) : -1;
            if (size == NULL || stop == size || *stop != '\0' || v < 0)
                return -1;
            oids[n] = child;
            sizes[n++] = v;
        }
        p = entry_end;
    }
    const char *t = xml;
    char *truncated = lfs_azure_xml_text(&t, end, "<IsTruncated>", "</IsTruncated>", pool);
    if (truncated == NULL || (strcmp(truncated, "true") != 0 && strcmp(truncated, "false") != 0))
        return -1;
    out->n = n;
    out->oids = oids;
    out->sizes = sizes;
    out->complete = strcmp(truncated, "false") == 0;
    out->last = out->complete ? NULL : last != NULL ? last : "";
    return 0;
}
