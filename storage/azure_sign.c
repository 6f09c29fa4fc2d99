/* Azure credentials and signatures (see azure_sign.h): connection-string parsing, service
 * SAS tokens and Shared Key authorization, computed exactly as the Blob service does so the
 * emulator and the real service accept them. Everything works on caller buffers and is
 * checked against Microsoft's SDK output in tests/unit/test_azure_sign.c. */
#include "storage/azure_sign.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "storage/storage.h"

/* ---- encodings ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t lfs_azure_base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t lfs_azure_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0)
        return (size_t)-1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad > 0 || (v[k] = b64value(c)) < 0)
                return (size_t)-1;
        }
        unsigned bits =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        /* Padding must not hide set bits (one canonical text per byte string). */
        if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0))
            return (size_t)-1;
        int n = 3 - pad;
        if (o + (size_t)n > cap)
            return (size_t)-1;
        out[o++] = (unsigned char)(bits >> 16);
        if (n > 1)
            out[o++] = (unsigned char)(bits >> 8);
        if (n > 2)
            out[o++] = (unsigned char)bits;
    }
    return o;
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Calendar fields as small unsigned numbers (keeps every field to its printed width). */
static unsigned field(int v, unsigned mod)
{
    return (unsigned)(v < 0 ? 0 : v) % mod;
}

const char *lfs_azure_iso8601(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ", field(tm.tm_year + 1900, 10000),
             field(tm.tm_mon + 1, 100), field(tm.tm_mday, 100), field(tm.tm_hour, 100),
             field(tm.tm_min, 100), field(tm.tm_sec, 100));
    return out;
}

const char *lfs_azure_rfc1123(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02u %s %04u %02u:%02u:%02u GMT", wdays[field(tm.tm_wday, 7)],
             field(tm.tm_mday, 100), months[field(tm.tm_mon, 12)], field(tm.tm_year + 1900, 10000),
             field(tm.tm_hour, 100), field(tm.tm_min, 100), field(tm.tm_sec, 100));
    return out;
}

size_t lfs_azure_path_encode(const char *name, char *out)
{
    size_t o = 0;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        o += lfs_url_encode(p, n, out + o);
        if (slash == NULL)
            break;
        out[o++] = '/';
        p = slash + 1;
    }
    out[o] = '\0';
    return o;
}

int lfs_azure_hmac_base64(const unsigned char *key, size_t key_len, const char *msg, size_t len,
                          char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, len, mac, &mac_len) ==
            NULL ||
        mac_len != 32)
        return -1;
    lfs_azure_base64_encode(mac, mac_len, out);
    return 0;
}

/* ---- connection strings ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static bool is_http_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

int lfs_azure_parse_connection_string(const char *text, struct lfs_azure_account *out,
                                      struct lfs_error *err)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0')
        return lfs_error_set(err, 500, "the connection string is empty");
    char *copy = strdup(text);
    if (copy == NULL)
        return lfs_error_set(err, 500, "out of memory");
    const char *protocol = NULL, *name = NULL, *key = NULL, *endpoint = NULL, *suffix = NULL;
    bool dev = false;
    int rc = -1;
    char *save = NULL;
    for (char *part = strtok_r(copy, ";", &save); part != NULL; part = strtok_r(NULL, ";", &save)) {
        part = trim(part);
        if (*part == '\0')
            continue;
        char *eq = strchr(part, '=');
        if (eq == NULL) {
            lfs_error_set(err, 500,
                          "expected Key=Value pairs separated by ';' (a part has no '=')");
            goto out;
        }
        *eq = '\0';
        char *k = trim(part), *v = trim(eq + 1);
        if (strcasecmp(k, "DefaultEndpointsProtocol") == 0)
            protocol = v;
        else if (strcasecmp(k, "AccountName") == 0)
            name = v;
        else if (strcasecmp(k, "AccountKey") == 0)
            key = v;
        else if (strcasecmp(k, "BlobEndpoint") == 0)
            endpoint = v;
        else if (strcasecmp(k, "EndpointSuffix") == 0)
            suffix = v;
        else if (strcasecmp(k, "UseDevelopmentStorage") == 0) {
            if (strcasecmp(v, "true") != 0) {
                lfs_error_set(err, 500, "UseDevelopmentStorage: expected \"true\"");
                goto out;
            }
            dev = true;
        }
    }
    if (dev) {
        if (name == NULL)
            name = LFS_AZURE_DEV_ACCOUNT;
        if (key == NULL)
            key = LFS_AZURE_DEV_KEY;
        if (endpoint == NULL)
            endpoint = LFS_AZURE_DEV_ENDPOINT;
    }
    if (name == NULL || name[0] == '\0') {
        lfs_error_set(err, 500, "AccountName is missing");
        goto out;
    }
    if (strlen(name) >= sizeof(out->name)) {
        lfs_error_set(err, 500, "AccountName is too long");
        goto out;
    }
    for (const char *c = name; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c)) {
            /* Not quoted: with a ';' mistyped, the "name" runs on into the AccountKey
             * (found by tests/fuzz), and config errors are logged. */
            lfs_error_set(err, 500,
                          "AccountName: expected letters and digits only (is a ';' "
                          "missing between two pairs?)");
            goto out;
        }
    if (key == NULL || key[0] == '\0') {
        lfs_error_set(err, 500,
                      "AccountKey is missing (lfsgate signs URLs and requests with the account "
                      "key; SAS-only connection strings are not supported)");
        goto out;
    }
    size_t klen = lfs_azure_base64_decode(key, strlen(key), out->key, sizeof(out->key));
    if (klen == (size_t)-1 || klen == 0) {
        lfs_error_set(err, 500, "AccountKey is not valid base64");
        goto out;
    }
    out->key_len = klen;
    if (protocol != NULL && strcasecmp(protocol, "https") != 0 &&
        strcasecmp(protocol, "http") != 0) {
        /* Not quoted either, for the same reason as AccountName. */
        lfs_error_set(err, 500, "DefaultEndpointsProtocol: expected \"https\" or \"http\"");
        goto out;
    }
    int n;
    if (endpoint != NULL) {
        if (!is_http_url(endpoint)) {
            lfs_error_set(err, 500, "BlobEndpoint: expected an http:// or https:// URL");
            goto out;
        }
        n = snprintf(out->endpoint, sizeof(out->endpoint), "%s", endpoint);
    } else {
        n = snprintf(out->endpoint, sizeof(out->endpoint), "%s://%s.blob.%s",
                     protocol != NULL ? protocol : "https", name,
                     suffix != NULL && suffix[0] != '\0' ? suffix : "core.windows.net");
    }
    if (n < 0 || (size_t)n >= sizeof(out->endpoint)) {
        lfs_error_set(err, 500, "BlobEndpoint is too long");
        goto out;
    }
    /* Lowercase the scheme, drop a trailing '/', find the path. */
    for (char *c = out->endpoint; *c != ':'; c++)
        *c = (char)tolower((unsigned char)*c);
    char *host = strstr(out->endpoint, "://") + 3;
    size_t elen = strlen(out->endpoint);
    while (elen > (size_t)(host - out->endpoint) && out->endpoint[elen - 1] == '/')
        out->endpoint[--elen] = '\0';
    if (*host == '\0' || *host == '/' || strpbrk(out->endpoint, "?#") != NULL) {
        lfs_error_set(err, 500, "BlobEndpoint: expected scheme://host[:port][/path]");
        goto out;
    }
    const char *path = strchr(host, '/');
    snprintf(out->path, sizeof(out->path), "%s", path != NULL ? path : "");
    snprintf(out->name, sizeof(out->name), "%s", name);
    rc = 0;
out:
    if (rc < 0)
        OPENSSL_cleanse(out->key, sizeof(out->key));
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    return rc;
}

/* ---- service SAS ---- */

/* Appends s and '\n' (unless last) to buf; tracks overflow through *len > size. */
static void put_field(char *buf, size_t size, size_t *len, const char *s, bool last)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (*len + n + 1 < size) {
        memcpy(buf + *len, s != NULL ? s : "", n);
        if (!last)
            buf[*len + n] = '\n';
    }
    *len += n + (last ? 0 : 1);
}

int lfs_azure_sas_string_to_sign(const char *account, const char *container, const char *blob,
                                 const struct lfs_azure_sas *sas, char *buf, size_t size)
{
    if (sas->permissions == NULL || sas->expiry == NULL || sas->version == NULL || size == 0)
        return -1;
    size_t len = 0;
    int n = snprintf(buf, size, "%s\n%s\n%s\n/blob/%s/%s/%s\n", sas->permissions,
                     sas->start != NULL ? sas->start : "", sas->expiry, account, container, blob);
    if (n < 0 || (size_t)n >= size)
        return -1;
    len = (size_t)n;
    bool v2018 = strcmp(sas->version, "2018-11-09") >= 0;
    bool v2020 = strcmp(sas->version, "2020-12-06") >= 0;
    put_field(buf, size, &len, sas->identifier, false);
    put_field(buf, size, &len, sas->ip, false);
    put_field(buf, size, &len, sas->protocol, false);
    put_field(buf, size, &len, sas->version, false);
    if (v2018) {
        put_field(buf, size, &len, "b", false);
        put_field(buf, size, &len, "", false); /* snapshot time */
    }
    if (v2020)
        put_field(buf, size, &len, "", false); /* encryption scope */
    put_field(buf, size, &len, sas->cache_control, false);
    put_field(buf, size, &len, sas->content_disposition, false);
    put_field(buf, size, &len, sas->content_encoding, false);
    put_field(buf, size, &len, sas->content_language, false);
    put_field(buf, size, &len, sas->content_type, true);
    if (len >= size)
        return -1;
    buf[len] = '\0';
    return (int)len;
}

/* Appends "&name=<encoded value>" ("name=..." first) when value is set. */
static void put_param(char *buf, size_t size, size_t *len, const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return;
    size_t vlen = strlen(value);
    char *enc = malloc(3 * vlen + 1);
    if (enc == NULL) {
        *len = size;
        return;
    }
    lfs_url_encode(value, vlen, enc);
    int n = snprintf(buf + (*len < size ? *len : size - 1), *len < size ? size - *len : 1,
                     "%s%s=%s", *len == 0 ? "" : "&", name, enc);
    free(enc);
    *len += n > 0 ? (size_t)n : 0;
}

int lfs_azure_sas_query(const struct lfs_azure_account *account, const char *container,
                        const char *blob, const struct lfs_azure_sas *sas, char *buf, size_t size,
                        struct lfs_error *err)
{
    size_t sts_size = 1024 + strlen(container) + strlen(blob);
    char *sts = malloc(sts_size);
    if (sts == NULL)
        return lfs_error_set(err, 500, "out of memory");
    int n = lfs_azure_sas_string_to_sign(account->name, container, blob, sas, sts, sts_size);
    char sig[48];
    if (n < 0 || lfs_azure_hmac_base64(account->key, account->key_len, sts, (size_t)n, sig) < 0) {
        free(sts);
        return lfs_error_set(err, 500, "azure storage: cannot sign the URL of blob \"%s\"", blob);
    }
    free(sts);
    size_t len = 0;
    buf[0] = '\0';
    put_param(buf, size, &len, "sv", sas->version);
    put_param(buf, size, &len, "spr", sas->protocol);
    put_param(buf, size, &len, "st", sas->start);
    put_param(buf, size, &len, "se", sas->expiry);
    put_param(buf, size, &len, "sip", sas->ip);
    put_param(buf, size, &len, "si", sas->identifier);
    put_param(buf, size, &len, "sr", "b");
    put_param(buf, size, &len, "sp", sas->permissions);
    put_param(buf, size, &len, "rscc", sas->cache_control);
    put_param(buf, size, &len, "rscd", sas->content_disposition);
    put_param(buf, size, &len, "rsce", sas->content_encoding);
    put_param(buf, size, &len, "rscl", sas->content_language);
    put_param(buf, size, &len, "rsct", sas->content_type);
    put_param(buf, size, &len, "sig", sig);
    OPENSSL_cleanse(sig, sizeof(sig));
    if (len >= size)
        return lfs_error_set(err, 500, "azure storage: the signed URL of blob \"%s\" is too long",
                             blob);
    return (int)len;
}

/* ---- Shared Key ---- */

/* The value of header `name` in "Name: value" lines (trimmed), or NULL. */
static const char *header_value(const char *const *headers, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (; headers != NULL && *headers != NULL; headers++) {
        const char *h = *headers;
        if (strncasecmp(h, name, nlen) != 0 || h[nlen] != ':')
            continue;
        const char *v = h + nlen + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        *vlen = n;
        return v;
    }
    return NULL;
}

struct kv {
    char *name;
    char *value;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

/* Appends n bytes of s to buf, tracking overflow in *len. */
static void put_bytes(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n < size)
        memcpy(buf + *len, s, n);
    *len += n;
}

static void put_str(char *buf, size_t size, size_t *len, const char *s)
{
    put_bytes(buf, size, len, s, strlen(s));
}

int lfs_azure_shared_key_string_to_sign(const char *account, const struct lfs_azure_request *req,
                                        char *buf, size_t size)
{
    static const char *const standard[] = {
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    };
    size_t len = 0;
    put_str(buf, size, &len, req->method);
    put_str(buf, size, &len, "\n");
    for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
        size_t vlen = 0;
        const char *v = header_value(req->headers, standard[i], &vlen);
        /* Since 2015-02-21 a zero Content-Length is signed as empty. */
        if (v != NULL && !(i == 2 && vlen == 1 && v[0] == '0'))
            put_bytes(buf, size, &len, v, vlen);
        put_str(buf, size, &len, "\n");
    }
    /* x-ms-* headers, lowercased, sorted. */
    struct kv hs[32];
    size_t nh = 0;
    int rc = -1;
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++) {
        if (strncasecmp(*h, "x-ms-", 5) != 0)
            continue;
        const char *colon = strchr(*h, ':');
        if (colon == NULL || nh == sizeof(hs) / sizeof(hs[0]))
            goto out;
        size_t nlen = (size_t)(colon - *h), vlen = 0;
        hs[nh].name = strndup(*h, nlen);
        for (char *c = hs[nh].name; c != NULL && *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        vlen = strlen(v);
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        hs[nh].value = strndup(v, vlen);
        nh++;
        if (hs[nh - 1].name == NULL || hs[nh - 1].value == NULL)
            goto out;
    }
    qsort(hs, nh, sizeof(hs[0]), kv_cmp);
    for (size_t i = 0; i < nh; i++) {
        put_str(buf, size, &len, hs[i].name);
        put_str(buf, size, &len, ":");
        put_str(buf, size, &len, hs[i].value);
        put_str(buf, size, &len, "\n");
    }
    /* Canonicalized resource: /account/path, then the query parameters. */
    put_str(buf, size, &len, "/");
    put_str(buf, size, &len, account);
    put_str(buf, size, &len, req->path);
    if (req->query != NULL && req->query[0] != '\0') {
        struct kv qs[32];
        size_t nq = 0;
        char *q = strdup(req->query), *save = NULL;
        bool ok = q != NULL;
        for (char *p = ok ? strtok_r(q, "&", &save) : NULL; p != NULL;
             p = strtok_r(NULL, "&", &save)) {
            if (nq == sizeof(qs) / sizeof(qs[0])) {
                ok = false;
                break;
            }
            char *eq = strchr(p, '=');
            const char *v = eq != NULL ? eq + 1 : "";
            if (eq != NULL)
                *eq = '\0';
            qs[nq].name = malloc(strlen(p) + 1);
            qs[nq].value = malloc(strlen(v) + 1);
            nq++;
            if (qs[nq - 1].name == NULL || qs[nq - 1].value == NULL ||
                lfs_url_decode(p, strlen(p), qs[nq - 1].name) == (size_t)-1 ||
                lfs_url_decode(v, strlen(v), qs[nq - 1].value) == (size_t)-1) {
                ok = false;
                break;
            }
            for (char *c = qs[nq - 1].name; *c != '\0'; c++)
                *c = (char)tolower((unsigned char)*c);
        }
        if (ok) {
            qsort(qs, nq, sizeof(qs[0]), kv_cmp);
            for (size_t i = 0; i < nq; i++) {
                /* Repeated names: one line, values comma-separated. */
                if (i > 0 && strcmp(qs[i].name, qs[i - 1].name) == 0) {
                    put_str(buf, size, &len, ",");
                } else {
                    put_str(buf, size, &len, "\n");
                    put_str(buf, size, &len, qs[i].name);
                    put_str(buf, size, &len, ":");
                }
                put_str(buf, size, &len, qs[i].value);
            }
        }
        for (size_t i = 0; i < nq; i++) {
            free(qs[i].name);
            free(qs[i].value);
        }
        free(q);
        if (!ok)
            goto out;
    }
    if (len < size) {
        buf[len] = '\0';
        rc = (int)len;
    }
out:
    for (size_t i = 0; i < nh; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    return rc;
}

int lfs_azure_shared_key(const struct lfs_azure_account *account,
                         const struct lfs_azure_request *req, char *buf, size_t size,
                         struct lfs_error *err)
{
    char sts[4096];
    int n = lfs_azure_shared_key_string_to_sign(account->name, req, sts, sizeof(sts));
    char sig[48];
    if (n < 0 || lfs_azure_hmac_base64(account->key, account->key_len, sts, (size_t)n, sig) < 0)
        return lfs_error_set(err, 500, "azure storage: cannot sign a %s request", req->method);
    int w = snprintf(buf, size, "SharedKey %s:%s", account->name, sig);
    OPENSSL_cleanse(sig, sizeof(sig));
    if (w < 0 || (size_t)w >= size)
        return lfs_error_set(err, 500, "azure storage: authorization header too long");
    return w;
}

/* ---- content types ---- */

const char *lfs_azure_content_type_for(const char *filename)
{
    static const char *const types[][2] = {
        {"bin", "application/octet-stream"},
        {"csv", "text/csv"},
        {"gif", "image/gif"},
        {"gz", "application/gzip"},
        {"htm", "text/html"},
        {"html", "text/html"},
        {"jpeg", "image/jpeg"},
        {"jpg", "image/jpeg"},
        {"js", "text/javascript"},
        {"json", "application/json"},
        {"md", "text/markdown"},
        {"mp3", "audio/mpeg"},
        {"mp4", "video/mp4"},
        {"parquet", "application/vnd.apache.parquet"},
        {"pdf", "application/pdf"},
        {"png", "image/png"},
        {"svg", "image/svg+xml"},
        {"tar", "application/x-tar"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"tsv", "text/tab-separated-values"},
        {"txt", "text/plain"},
        {"webp", "image/webp"},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"xml", "application/xml"},
        {"zip", "application/zip"},
    };
    if (filename == NULL)
        return NULL;
    const char *dot = strrchr(filename, '.');
    if (dot == NULL || dot[1] == '\0' || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot + 1, types[i][0]) == 0)
            return types[i][1];
    return NULL;
}

/* ---- List Blobs ---- */

/* The text of the next <TAG>...</TAG> in [*p, limit), unescaped into the pool; moves *p
 * past it. NULL when there is none before `limit` (the end of the enclosing element). A
 * macro so that the tags are literals: it runs twice per entry of a listing. */
#define xml_element(p, limit, tag, pool)                                                           \
    lfs_azure_xml_text(p, limit, "<" tag ">", "</" tag ">", pool)
char *lfs_azure_xml_text(const char **p, const char *limit, const char *open, const char *close,
                         h2o_mem_pool_t *pool)
{
    size_t on = strlen(open), cn = strlen(close);
    size_t at = h2o_strstr(*p, (size_t)(limit - *p), open, (size_t)on);
    if (at == SIZE_MAX)
        return NULL;
    const char *b = *p + at + on;
    size_t e = h2o_strstr(b, (size_t)(limit - b), close, (size_t)cn);
    if (e == SIZE_MAX)
        return NULL;
    char *out = h2o_mem_alloc_pool(pool, e + 1), *o = out;
    static const struct {
        const char *entity;
        char c;
    } entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (const char *c = b; c < b + e;) {
        size_t k = 0;
        if (*c == '&')
            for (; k < sizeof(entities) / sizeof(entities[0]); k++) {
                size_t n = strlen(entities[k].entity);
                if ((size_t)(b + e - c) >= n && memcmp(c, entities[k].entity, n) == 0) {
                    *o++ = entities[k].c;
                    c += n;
                    break;
                }
            }
        if (*c != '&' || k == sizeof(entities) / sizeof(entities[0]))
            *o++ = *c++;
    }
    *o = '\0';
    *p = b + e + cn;
    return out;
}

/* The <Blob> entries of a List Blobs answer, one after the other. */
struct blob_walk {
    const char *xml, *end; /* the answer */
    const char *blobs;     /* its <Blobs element */
    const char *p;         /* where the next entry is looked for */
    const char *limit;     /* </Blobs>, or the end when the answer has none */
    size_t entries;        /* at most this many entries (one per "<Name>") */
};

/* Starts a walk; -1 when the text is not an EnumerationResults with <Blobs>. */
static int walk_start(const char *xml, size_t len, struct blob_walk *w)
{
    const char *end = xml + len;
    size_t blobs_at = h2o_strstr(xml, len, H2O_STRLIT("<Blobs"));
    if (h2o_strstr(xml, len, H2O_STRLIT("<EnumerationResults")) == SIZE_MAX || blobs_at == SIZE_MAX)
        return -1;
    *w = (struct blob_walk){.xml = xml, .end = end, .blobs = xml + blobs_at, .p = xml + blobs_at};
    for (const char *p = xml; (p = memmem(p, (size_t)(end - p), "<Name>", 6)) != NULL; p += 6)
        w->entries++;
    size_t blobs_end = h2o_strstr(w->p, (size_t)(end - w->p), H2O_STRLIT("</Blobs>"));
    w->limit = blobs_end == SIZE_MAX ? end : w->p + blobs_end;
    return 0;
}

/* The next entry: 1 with its bounds and its name past `prefix` (unescaped, in the pool), 0 at
 * the end, -1 for a malformed entry or a name outside the prefix (not an answer to this
 * listing). */
static int walk_next(struct blob_walk *w, const char *prefix, h2o_mem_pool_t *pool,
                     const char **start, const char **entry_end, char **child)
{
    size_t b = h2o_strstr(w->p, (size_t)(w->limit - w->p), H2O_STRLIT("<Blob>"));
    if (b == SIZE_MAX)
        return 0;
    *start = w->p + b;
    size_t close = h2o_strstr(*start, (size_t)(w->limit - *start), H2O_STRLIT("</Blob>"));
    if (close == SIZE_MAX)
        return -1;
    *entry_end = w->p = *start + close;
    const char *q = *start;
    char *name = xml_element(&q, *entry_end, "Name", pool);
    size_t plen = strlen(prefix);
    if (name == NULL || strncmp(name, prefix, plen) != 0)
        return -1;
    *child = name + plen;
    return 1;
}

/* The <NextMarker> after the entries: "" when the listing is complete; NULL when the answer
 * has none (always there in a real one: <NextMarker /> when complete). */
static const char *walk_marker(const struct blob_walk *w, h2o_mem_pool_t *pool)
{
    const char *after = w->limit == w->end ? w->blobs : w->limit, *m = after;
    char *marker = xml_element(&m, w->end, "NextMarker", pool);
    if (marker != NULL)
        return marker;
    return h2o_strstr(after, (size_t)(w->end - after), H2O_STRLIT("<NextMarker")) == SIZE_MAX ? NULL
                                                                                              : "";
}

int lfs_azure_parse_blobs(const char *xml, size_t len, const char *prefix,
                          struct st_h2o_mem_pool_t *pool, struct lfs_azure_blob_page *out)
{
    *out = (struct lfs_azure_blob_page){0};
    struct blob_walk w;
    if (walk_start(xml, len, &w) < 0)
        return -1;
    struct lfs_azure_blob *blobs = h2o_mem_alloc_pool(pool, (w.entries + 1) * sizeof(*blobs));
    size_t n = 0;
    const char *start, *entry_end;
    char *child;
    int rc;
    while ((rc = walk_next(&w, prefix, pool, &start, &entry_end, &child)) == 1) {
        if (n == w.entries)
            return -1;
        if (n > 0 && strcmp(child, blobs[n - 1].name) <= 0)
            return -1; /* the service lists blobs in name order; anything else is not trusted */
        const char *q = start;
        char *length = xml_element(&q, entry_end, "Content-Length", pool);
        char *stop = NULL;
        long long v = length != NULL ? strtoll(length, &stop, 10) : -1;
        blobs[n].name = child;
        blobs[n++].size = length == NULL || stop == length || *stop != '\0' || v < 0 ? -1 : v;
    }
    const char *marker = walk_marker(&w, pool);
    if (rc < 0 || marker == NULL)
        return -1;
    out->n = n;
    out->blobs = blobs;
    out->next_marker = marker[0] != '\0' ? marker : NULL;
    return 0;
}

int lfs_azure_parse_listing(const char *xml, size_t len, const char *prefix,
                            struct st_h2o_mem_pool_t *pool, struct lfs_storage_listing *out)
{
    struct lfs_azure_blob_page page;
    *out = (struct lfs_storage_listing){0};
    if (lfs_azure_parse_blobs(xml, len, prefix, pool, &page) < 0)
        return -1;
    const char **oids = h2o_mem_alloc_pool(pool, (page.n + 1) * sizeof(*oids));
    int64_t *sizes = h2o_mem_alloc_pool(pool, (page.n + 1) * sizeof(*sizes));
    size_t n = 0;
    for (size_t i = 0; i < page.n; i++) {
        const struct lfs_azure_blob *b = &page.blobs[i];
        if (!lfs_oid_valid(b->name, strlen(b->name)))
            continue;
        if (b->size < 0)
            return -1;
        oids[n] = b->name;
        sizes[n++] = b->size;
    }
    out->n = n;
    out->oids = oids;
    out->sizes = sizes;
    out->complete = page.next_marker == NULL;
    out->last = out->complete ? NULL : page.n > 0 ? page.blobs[page.n - 1].name : "";
    return 0;
}

int lfs_azure_parse_lock_listing(const char *xml, size_t len, const char *prefix,
                                 struct st_h2o_mem_pool_t *pool, struct lfs_lock_record **recs,
                                 size_t *n, const char **marker)
{
    struct blob_walk w;
    if (walk_start(xml, len, &w) < 0)
        return -1;
    struct lfs_lock_record *out = h2o_mem_alloc_pool(pool, (w.entries + 1) * sizeof(*out));
    size_t count = 0;
    const char *start, *entry_end;
    char *child;
    int rc;
    while ((rc = walk_next(&w, prefix, pool, &start, &entry_end, &child)) == 1) {
        if (strlen(child) != LFS_LOCK_NAME_LEN + 5 ||
            strcmp(child + LFS_LOCK_NAME_LEN, ".lock") != 0)
            continue;
        child[LFS_LOCK_NAME_LEN] = '\0';
        /* as in the other listings: out of name order (or twice) is not the service's answer,
         * and a page of locks must not lead the cursor back over names it has passed */
        if (count > 0 && strcmp(out[count - 1].name, child) >= 0)
            return -1;
        const char *r = start;
        char *etag = xml_element(&r, entry_end, "Etag", pool);
        r = start;
        char *b64 = xml_element(&r, entry_end, "lock", pool);
        if (etag == NULL || b64 == NULL)
            continue;
        size_t blen = strlen(b64);
        unsigned char *content = h2o_mem_alloc_pool(pool, blen + 1);
        size_t clen = lfs_azure_base64_decode(b64, blen, content, blen);
        if (clen == (size_t)-1 || clen > LFS_LOCK_CONTENT_MAX)
            continue;
        content[clen] = '\0';
        const char *version = etag;
        if (etag[0] != '"') { /* the listing gives it bare; If-Match takes it quoted */
            size_t elen = strlen(etag);
            char *quoted = h2o_mem_alloc_pool(pool, elen + 3);
            quoted[0] = '"';
            memcpy(quoted + 1, etag, elen);
            quoted[elen + 1] = '"';
            quoted[elen + 2] = '\0';
            version = quoted;
        }
        out[count++] = (struct lfs_lock_record){
            .name = child, .content = h2o_iovec_init(content, clen), .version = version};
    }
    *marker = walk_marker(&w, pool);
    if (rc < 0 || *marker == NULL)
        return -1;
    *recs = out;
    *n = count;
    return 0;
}
