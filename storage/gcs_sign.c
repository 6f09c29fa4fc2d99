/* GOOG4-RSA-SHA256 signed URLs for Google Cloud Storage, as Google documents them and as its
 * client libraries produce them (checked against the conformance vectors in
 * tests/unit/data/gcs/): canonical request -> string to sign -> RSA-SHA256 (PKCS #1 v1.5)
 * signature in hex, appended to the canonical query. Also parses the service-account JSON
 * key once, at startup. Nothing here logs: keys and signatures never leave these buffers
 * except as the URL handed to the caller. */
#include "storage/gcs_sign.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct lfs_gcs_key {
    char *email;
    EVP_PKEY *pkey;
};

int lfs_gcs_key_parse(const char *text, size_t len, struct lfs_gcs_key **out, struct lfs_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        /* jerr.text may quote the input: give only the position. */
        return lfs_error_set(err, 500,
                             "not a service-account JSON key (invalid JSON at line %d, column %d)",
                             jerr.line, jerr.column);
    }
    const json_t *type = json_object_get(root, "type");
    const json_t *email = json_object_get(root, "client_email");
    const json_t *pem = json_object_get(root, "private_key");
    int rc = -1;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    if (type != NULL &&
        !(json_is_string(type) && strcmp(json_string_value(type), "service_account") == 0)) {
        lfs_error_set(err, 500, "expected a key of type \"service_account\", got %s",
                      json_is_string(type) ? json_string_value(type) : "a non-string type");
        goto out;
    }
    if (!json_is_string(email) || json_string_length(email) == 0) {
        lfs_error_set(err, 500, "not a service-account key: missing \"client_email\"");
        goto out;
    }
    if (!json_is_string(pem) || json_string_length(pem) == 0) {
        lfs_error_set(err, 500, "not a service-account key: missing \"private_key\"");
        goto out;
    }
    bio = BIO_new_mem_buf(json_string_value(pem), (int)json_string_length(pem));
    if (bio != NULL)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (pkey == NULL) {
        lfs_error_set(err, 500, "\"private_key\" is not a PEM private key");
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        lfs_error_set(err, 500, "\"private_key\" is not an RSA key");
        goto out;
    }
    struct lfs_gcs_key *key = calloc(1, sizeof(*key));
    if (key == NULL || (key->email = strdup(json_string_value(email))) == NULL) {
        free(key);
        lfs_error_set(err, 500, "out of memory");
        goto out;
    }
    key->pkey = pkey;
    pkey = NULL;
    *out = key;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    /* The PEM text lives in the JSON tree: jansson frees it, but wipe it first. */
    if (json_is_string(pem))
        OPENSSL_cleanse((void *)json_string_value(pem), json_string_length(pem));
    json_decref(root);
    return rc;
}

void lfs_gcs_key_free(struct lfs_gcs_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key->email);
    free(key);
}

const char *lfs_gcs_key_email(const struct lfs_gcs_key *key)
{
    return key->email;
}

/* ---- a growing string ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *p = realloc(sb->p, cap);
        if (p == NULL) {
            sb->oom = true;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_adds(struct sbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_addc(struct sbuf *sb, char c)
{
    sb_add(sb, &c, 1);
}

/* Percent-encodes s (RFC 3986 unreserved characters kept, and '/' when keep_slash). */
static void sb_add_encoded(struct sbuf *sb, const char *s, bool keep_slash)
{
    char enc[4];
    for (; *s != '\0'; s++) {
        if (keep_slash && *s == '/')
            sb_addc(sb, '/');
        else
            sb_add(sb, enc, lfs_url_encode(s, 1, enc));
    }
}

/* base_url followed by the encoded resource path. */
static void sb_add_url(struct sbuf *sb, const char *base_url, const char *path)
{
    sb_adds(sb, base_url);
    sb_add_encoded(sb, path, true);
}

/* Returns a malloc'd string, or NULL when the buffer ran out of memory. */
static char *sb_take(struct sbuf *sb)
{
    if (sb->oom) {
        free(sb->p);
        return NULL;
    }
    if (sb->p == NULL)
        return strdup("");
    return sb->p;
}

/* ---- canonical form ---- */

/* A canonical header or query parameter: malloc'd name and value. */
struct pair {
    char *name;
    char *value;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static void pairs_free(struct pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
}

/* Lowercased header name. */
static char *header_name(const char *s)
{
    char *out = strdup(s);
    for (char *p = out; p != NULL && *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* Header value in the canonical form Google uses (common/util.h). */
static char *header_value(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    if (out != NULL)
        lfs_header_value_canonical(s, out);
    return out;
}

static char *encoded(const char *s)
{
    struct sbuf sb = {0};
    sb_add_encoded(&sb, s, false);
    return sb_take(&sb);
}

static bool valid_text(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

int lfs_gcs_sign_begin(const char *email, const struct lfs_gcs_sign_input *in,
                       struct lfs_gcs_signed *out, struct lfs_error *err)
{
    *out = (struct lfs_gcs_signed){0};
    if (in->expires < 1 || in->expires > LFS_GCS_MAX_EXPIRES)
        return lfs_error_set(err, 500, "gcs storage: signed URL lifetime %ld is not in 1..%ld s",
                             in->expires, LFS_GCS_MAX_EXPIRES);
    if (in->path[0] != '/' || !valid_text(in->host))
        return lfs_error_set(err, 500, "gcs storage: invalid resource to sign");
    for (size_t i = 0; i < in->nheaders; i++)
        if (in->headers[i].name[0] == '\0' || !valid_text(in->headers[i].name) ||
            !valid_text(in->headers[i].value) || strchr(in->headers[i].name, ':') != NULL)
            return lfs_error_set(err, 500, "gcs storage: invalid header to sign");

    struct tm tm;
    char datetime[32], date[16];
    if (gmtime_r(&in->now, &tm) == NULL ||
        strftime(datetime, sizeof(datetime), "%Y%m%dT%H%M%SZ", &tm) == 0)
        return lfs_error_set(err, 500, "gcs storage: cannot format the signing time");
    memcpy(date, datetime, 8);
    date[8] = '\0';

    int rc = -1;
    size_t nh = in->nheaders + 1, nq = in->nquery + 5;
    struct pair *hs = calloc(nh, sizeof(*hs)), *qs = calloc(nq, sizeof(*qs));
    struct sbuf signed_headers = {0}, scope = {0}, cred = {0}, query = {0}, creq = {0}, sts = {0},
                url = {0};
    char expires[24], hash_hex[2 * EVP_MAX_MD_SIZE + 1];
    const char *payload = "UNSIGNED-PAYLOAD";
    if (hs == NULL || qs == NULL)
        goto oom;

    /* Headers: host and the extra ones, lowercase names, sorted. */
    hs[0].name = strdup("host");
    hs[0].value = header_value(in->host);
    for (size_t i = 0; i < in->nheaders; i++) {
        hs[i + 1].name = header_name(in->headers[i].name);
        hs[i + 1].value = header_value(in->headers[i].value);
    }
    for (size_t i = 0; i < nh; i++)
        if (hs[i].name == NULL || hs[i].value == NULL)
            goto oom;
    qsort(hs, nh, sizeof(*hs), pair_cmp);
    for (size_t i = 0; i < nh; i++) {
        if (i > 0)
            sb_addc(&signed_headers, ';');
        sb_adds(&signed_headers, hs[i].name);
        if (strcmp(hs[i].name, "x-goog-content-sha256") == 0)
            payload = hs[i].value;
    }

    /* Query: the X-Goog-* parameters and the extra ones, encoded, sorted by name. */
    sb_adds(&scope, date);
    sb_adds(&scope, "/auto/storage/goog4_request");
    sb_adds(&cred, email);
    sb_addc(&cred, '/');
    sb_adds(&cred, scope.p ? scope.p : "");
    snprintf(expires, sizeof(expires), "%ld", in->expires);
    if (scope.oom || cred.oom || signed_headers.oom)
        goto oom;
    const char *fixed[5][2] = {
        {"X-Goog-Algorithm", "GOOG4-RSA-SHA256"},
        {"X-Goog-Credential", cred.p},
        {"X-Goog-Date", datetime},
        {"X-Goog-Expires", expires},
        {"X-Goog-SignedHeaders", signed_headers.p},
    };
    for (size_t i = 0; i < 5; i++) {
        qs[i].name = encoded(fixed[i][0]);
        qs[i].value = encoded(fixed[i][1]);
    }
    for (size_t i = 0; i < in->nquery; i++) {
        qs[i + 5].name = encoded(in->query[i].name);
        qs[i + 5].value = encoded(in->query[i].value);
    }
    for (size_t i = 0; i < nq; i++)
        if (qs[i].name == NULL || qs[i].value == NULL)
            goto oom;
    qsort(qs, nq, sizeof(*qs), pair_cmp);
    for (size_t i = 0; i < nq; i++) {
        if (i > 0)
            sb_addc(&query, '&');
        sb_adds(&query, qs[i].name);
        sb_addc(&query, '=');
        sb_adds(&query, qs[i].value);
    }

    /* Canonical request. */
    sb_adds(&creq, in->method);
    sb_addc(&creq, '\n');
    sb_add_encoded(&creq, in->path, true);
    sb_addc(&creq, '\n');
    sb_adds(&creq, query.p ? query.p : "");
    sb_addc(&creq, '\n');
    for (size_t i = 0; i < nh; i++) {
        sb_adds(&creq, hs[i].name);
        sb_addc(&creq, ':');
        sb_adds(&creq, hs[i].value);
        sb_addc(&creq, '\n');
    }
    sb_addc(&creq, '\n');
    sb_adds(&creq, signed_headers.p);
    sb_addc(&creq, '\n');
    sb_adds(&creq, payload);
    if (creq.oom || query.oom)
        goto oom;

    /* String to sign. */
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    if (EVP_Digest(creq.p, creq.len, hash, &hlen, EVP_sha256(), NULL) != 1) {
        lfs_error_set(err, 500, "gcs storage: cannot hash the canonical request");
        goto out;
    }
    lfs_hex_encode(hash, hlen, hash_hex);
    sb_adds(&sts, "GOOG4-RSA-SHA256\n");
    sb_adds(&sts, datetime);
    sb_addc(&sts, '\n');
    sb_adds(&sts, scope.p);
    sb_addc(&sts, '\n');
    sb_adds(&sts, hash_hex);
    if (sts.oom)
        goto oom;

    sb_add_url(&url, in->base_url, in->path);
    sb_addc(&url, '?');
    sb_adds(&url, query.p);
    sb_adds(&url, "&X-Goog-Signature=");
    out->url = sb_take(&url);
    out->canonical_request = sb_take(&creq);
    out->string_to_sign = sb_take(&sts);
    url = creq = sts = (struct sbuf){0};
    if (out->url == NULL || out->canonical_request == NULL || out->string_to_sign == NULL) {
        lfs_gcs_signed_free(out);
        goto oom;
    }
    rc = 0;
    goto out;
oom:
    lfs_error_set(err, 500, "out of memory");
out:
    if (hs != NULL)
        pairs_free(hs, nh);
    if (qs != NULL)
        pairs_free(qs, nq);
    free(signed_headers.p);
    free(scope.p);
    free(cred.p);
    free(query.p);
    free(creq.p);
    free(sts.p);
    free(url.p);
    return rc;
}

int lfs_gcs_sign_end(struct lfs_gcs_signed *s, const unsigned char *sig, size_t len,
                     struct lfs_error *err)
{
    if (len == 0 || len > LFS_GCS_MAX_SIGNATURE)
        return lfs_error_set(err, 502, "gcs storage: a signature of %zu bytes is not RSA-SHA256",
                             len);
    size_t ulen = strlen(s->url);
    char *url = realloc(s->url, ulen + 2 * len + 1);
    if (url == NULL)
        return lfs_error_set(err, 500, "out of memory");
    lfs_hex_encode(sig, len, url + ulen);
    s->url = url;
    return 0;
}

int lfs_gcs_sign(const struct lfs_gcs_key *key, const struct lfs_gcs_sign_input *in,
                 struct lfs_gcs_signed *out, struct lfs_error *err)
{
    if (lfs_gcs_sign_begin(key->email, in, out, err) < 0)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[LFS_GCS_MAX_SIGNATURE];
    size_t siglen = sizeof(sig);
    bool ok = md != NULL && (size_t)EVP_PKEY_get_size(key->pkey) <= sizeof(sig) &&
              EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
              EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->string_to_sign,
                             strlen(out->string_to_sign)) == 1;
    EVP_MD_CTX_free(md);
    int rc = ok ? lfs_gcs_sign_end(out, sig, siglen, err)
                : lfs_error_set(err, 500, "gcs storage: cannot sign the URL (RSA-SHA256 failed)");
    OPENSSL_cleanse(sig, sizeof(sig));
    if (rc < 0)
        lfs_gcs_signed_free(out);
    return rc;
}

char *lfs_gcs_object_url(const char *base_url, const char *path)
{
    struct sbuf url = {0};
    sb_add_url(&url, base_url, path);
    return sb_take(&url);
}

void lfs_gcs_signed_free(struct lfs_gcs_signed *s)
{
    free(s->url);
    free(s->canonical_request);
    free(s->string_to_sign);
    *s = (struct lfs_gcs_signed){0};
}
