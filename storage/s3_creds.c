/* The S3 backend's credential chain (storage/s3_creds.h). Long-term keys (the environment, the
 * shared credentials file) are copied into the backend once and never change, so any thread
 * signs with them. Temporary keys come from one of three endpoints, each fetched by a refresher
 * (storage/refresh.h) on a worker's loop with the event-loop HTTP client, so no loop ever
 * blocks on the network:
 *   - web identity: the token file is read again on every fetch (Kubernetes rotates the
 *     projected token) and sent to STS AssumeRoleWithWebIdentity, an unsigned POST;
 *   - the container endpoint: a GET with the authorization token (its file read again too);
 *   - IMDSv2: a PUT for a session token, a GET of the role name, a GET of its keys.
 * The keys travel through the refresher as one string "<id>\n<secret>\n<token>" (every part
 * is checked to be printable ASCII without blanks, so it is also safe in a header line) and
 * are split into the request pool for signing. Reading a token file is a small local read on
 * the loop, as the AWS SDKs do. */
#include "storage/s3_creds.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/curl_api.h"
#include "storage/http_client.h"
#include "storage/refresh.h"
#include "storage/remote.h"

#define S3_STORE "s3 storage"
/* Longest shared credentials file we read. */
#define MAX_CREDENTIALS_FILE (1 << 20)
/* Longest web identity or authorization token file we read (a Kubernetes token is ~1 KiB). */
#define MAX_TOKEN_FILE (16 << 10)
#define MAX_SECRET 2400
/* Deadline of one call to STS, the container endpoint or IMDS. */
#define FETCH_TIMEOUT_MS 10000
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_ROLE_PATH "/latest/meta-data/iam/security-credentials/"
/* A presigned URL dies with the temporary keys that signed it: keys are handed out only while
 * they have 15 minutes to live (a quarter of a shorter life), so a URL of the default
 * action_lifetime (900 s) signed with keys of an hour lives as long as it says. */
#define KEEP_S 900

enum source_kind { SOURCE_STS, SOURCE_CONTAINER, SOURCE_IMDS };

/* A source of temporary keys: the refresher's ctx, kept as long as the process. */
struct source {
    enum source_kind kind;
    char *url;          /* STS endpoint, container URI, or IMDS base URL */
    char *role_arn;     /* STS */
    char *session_name; /* STS */
    char *token_file;   /* STS: the web identity token; container: the authorization token */
    char *auth_token;   /* container: AWS_CONTAINER_AUTHORIZATION_TOKEN, or NULL */
    char describe[600]; /* for messages and the log: no secret in it */
};

struct lfs_s3_creds {
    /* Long-term keys, immutable after load; unused with a refresher. */
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[2048];
    struct lfs_refresh *refresh; /* temporary keys, or NULL */
    char source[640];
};

/* ---- long-term keys ---- */

/* Copies src into a fixed field; false when it does not fit. */
static bool set_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Reads the shared credentials file: 1 with the profile's keys in c, 0 when there is no file
 * or no such profile (what was looked for goes into `tried`), -1 with err. */
static int credentials_from_file(struct lfs_s3_creds *c, char *tried, size_t tried_size,
                                 struct lfs_error *err)
{
    const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
    const char *profile = getenv("AWS_PROFILE");
    char home_file[1024];
    if (profile == NULL || profile[0] == '\0')
        profile = "default";
    if (file == NULL || file[0] == '\0') {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0') {
            snprintf(tried, tried_size, "the shared credentials file (HOME is not set)");
            return 0;
        }
        snprintf(home_file, sizeof(home_file), "%s/.aws/credentials", home);
        file = home_file;
    }
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        snprintf(tried, tried_size, "the shared credentials file \"%s\" (%s)", file,
                 strerror(errno));
        return 0;
    }
    char *text = malloc(MAX_CREDENTIALS_FILE + 1);
    size_t n = text != NULL ? fread(text, 1, MAX_CREDENTIALS_FILE + 1, f) : 0;
    bool bad = ferror(f) != 0 || n > MAX_CREDENTIALS_FILE;
    fclose(f);
    if (text == NULL || bad) {
        free(text);
        return lfs_error_set(err, 500, "cannot read the shared credentials file \"%s\"%s", file,
                             n > MAX_CREDENTIALS_FILE ? " (larger than 1 MiB)" : "");
    }
    struct lfs_s3_profile p;
    int rc = lfs_s3_profile_parse(text, n, profile, &p, err);
    OPENSSL_cleanse(text, n);
    free(text);
    if (rc < 0)
        return lfs_error_prefix(err, "shared credentials file \"%s\": ", file);
    if (rc == 0) {
        snprintf(tried, tried_size, "the shared credentials file \"%s\" (no profile \"%s\")", file,
                 profile);
        return 0;
    }
    bool fits =
        set_field(c->access_key_id, sizeof(c->access_key_id), p.access_key_id) &&
        set_field(c->secret_access_key, sizeof(c->secret_access_key), p.secret_access_key) &&
        set_field(c->session_token, sizeof(c->session_token), p.session_token);
    OPENSSL_cleanse(&p, sizeof(p));
    if (!fits)
        return lfs_error_set(err, 500, "shared credentials file \"%s\": a key is too long", file);
    snprintf(c->source, sizeof(c->source), "the shared credentials file");
    return 1;
}

/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN: 1 with the keys in c, 0 when
 * they are not set, -1 with err. */
static int credentials_from_env(struct lfs_s3_creds *c, struct lfs_error *err)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    bool has_id = id != NULL && id[0] != '\0', has_secret = secret != NULL && secret[0] != '\0';
    if (has_id != has_secret)
        return lfs_error_set(err, 500, "%s is set but %s is not: set both, or neither",
                             has_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                             has_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    if (!has_id)
        return 0;
    if (!set_field(c->access_key_id, sizeof(c->access_key_id), id) ||
        !set_field(c->secret_access_key, sizeof(c->secret_access_key), secret) ||
        !set_field(c->session_token, sizeof(c->session_token), token != NULL ? token : ""))
        return lfs_error_set(err, 500, "an AWS_* credential variable is too long");
    snprintf(c->source, sizeof(c->source), "the environment");
    return 1;
}

/* ---- parsing the endpoints' answers ---- */

/* A key id, secret or token: printable ASCII without blanks (it goes into header lines and
 * the refresher's "\n"-separated string). */
static bool valid_part(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

/* "2026-12-05T21:00:00Z" (fractional seconds and "+00:00" accepted) into seconds from now;
 * false when it is not such a time. */
static bool lifetime_of(const char *s, time_t now, long *lifetime)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return false;
    const char *rest = s + used;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *lifetime = (long)(t - now);
    return true;
}

/* Joins the parts into *secret after checking them, and the expiration into *lifetime. */
static int make_secret(const char *id, size_t idlen, const char *key, size_t keylen,
                       const char *token, size_t toklen, const char *expiration, time_t now,
                       char **secret, long *lifetime, struct lfs_error *err)
{
    if (!valid_part(id, idlen, 127) || !valid_part(key, keylen, 127) ||
        !valid_part(token, toklen, 2047))
        return lfs_error_set(err, 502,
                             "the key id, secret key or session token is missing, too long or "
                             "holds bytes that cannot go into a header");
    if (!lifetime_of(expiration, now, lifetime))
        return lfs_error_set(err, 502, "the expiration is not a time like 2026-01-31T12:00:00Z");
    if (*lifetime <= 0)
        return lfs_error_set(err, 502,
                             "the keys expired %ld s ago as they arrived; check this host's clock",
                             -*lifetime);
    size_t n = idlen + keylen + toklen + 3;
    if ((*secret = malloc(n)) == NULL)
        return lfs_error_set(err, 500, "out of memory");
    snprintf(*secret, n, "%.*s\n%.*s\n%.*s", (int)idlen, id, (int)keylen, key, (int)toklen, token);
    return 0;
}

int lfs_s3_sts_parse(const char *body, size_t len, time_t now, char **secret, long *lifetime,
                     struct lfs_error *err)
{
    const char *id = "", *key = "", *token = "", *exp = "";
    size_t idlen = 0, keylen = 0, toklen = 0, explen = 0;
    char expiration[64];
    if (!lfs_storage_xml_field(body, len, "Credentials", &exp, &explen))
        return lfs_error_set(err, 502, "the answer has no <Credentials>");
    lfs_storage_xml_field(body, len, "AccessKeyId", &id, &idlen);
    lfs_storage_xml_field(body, len, "SecretAccessKey", &key, &keylen);
    lfs_storage_xml_field(body, len, "SessionToken", &token, &toklen);
    if (!lfs_storage_xml_field(body, len, "Expiration", &exp, &explen) ||
        explen >= sizeof(expiration))
        return lfs_error_set(err, 502, "the answer has no <Expiration>");
    snprintf(expiration, sizeof(expiration), "%.*s", (int)explen, exp);
    return make_secret(id, idlen, key, keylen, token, toklen, expiration, now, secret, lifetime,
                       err);
}

int lfs_s3_json_creds_parse(const char *body, size_t len, time_t now, char **secret, long *lifetime,
                            struct lfs_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *id = json_object_get(root, "AccessKeyId");
    const json_t *key = json_object_get(root, "SecretAccessKey");
    const json_t *token = json_object_get(root, "Token");
    const json_t *exp = json_object_get(root, "Expiration");
    const json_t *code = json_object_get(root, "Code");
    int rc = -1;
    if (!json_is_object(root))
        lfs_error_set(err, 502, "the answer is not a JSON object");
    else if (code != NULL &&
             !(json_is_string(code) && strcmp(json_string_value(code), "Success") == 0))
        lfs_error_set(err, 502, "the answer's \"Code\" is not \"Success\"");
    else if (!json_is_string(id) || !json_is_string(key) || !json_is_string(token) ||
             !json_is_string(exp))
        lfs_error_set(err, 502,
                      "the answer lacks one of \"AccessKeyId\", \"SecretAccessKey\", \"Token\", "
                      "\"Expiration\"");
    else
        rc = make_secret(json_string_value(id), json_string_length(id), json_string_value(key),
                         json_string_length(key), json_string_value(token),
                         json_string_length(token), json_string_value(exp), now, secret, lifetime,
                         err);
    if (json_is_string(key))
        OPENSSL_cleanse((void *)json_string_value(key), json_string_length(key));
    if (json_is_string(token))
        OPENSSL_cleanse((void *)json_string_value(token), json_string_length(token));
    json_decref(root);
    return rc;
}

/* ---- fetching temporary keys ---- */

/* One fetch in flight, in the refresher's pool. */
struct fetch {
    struct lfs_refresh *r;
    const struct source *src;
    struct lfs_io io;
    const char *imds_token; /* IMDS: the session token, once had */
};

/* Reads a token file into the pool, trailing blanks dropped. NULL with err 503. */
static const char *read_token_file(const char *file, const char *what, h2o_mem_pool_t *pool,
                                   struct lfs_error *err)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        lfs_error_set(err, 503, S3_STORE ": cannot read %s \"%s\": %s", what, file,
                      strerror(errno));
        return NULL;
    }
    char *buf = h2o_mem_alloc_pool(pool, MAX_TOKEN_FILE + 1);
    size_t n = fread(buf, 1, MAX_TOKEN_FILE + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n < MAX_TOKEN_FILE ? n : MAX_TOKEN_FILE] = '\0';
    if (bad || n == 0 || n > MAX_TOKEN_FILE || !valid_part(buf, n, MAX_TOKEN_FILE)) {
        OPENSSL_cleanse(buf, MAX_TOKEN_FILE + 1);
        lfs_error_set(err, 503,
                      S3_STORE ": %s \"%s\" is empty, larger than %d bytes or not one printable "
                               "token",
                      what, file, MAX_TOKEN_FILE);
        return NULL;
    }
    return buf;
}

/* Hands the outcome to the refresher. The answer lives in the fetch's pool: wiped first. */
static void fetch_finish(struct fetch *f, const struct lfs_http_response *res, char *secret,
                         long lifetime, const struct lfs_error *err)
{
    if (res != NULL && res->body.len > 0)
        OPENSSL_cleanse(res->body.base, res->body.len);
    if (secret == NULL)
        lfs_log(LFS_LOG_WARN, "%s", err->message);
    else
        lfs_log(LFS_LOG_DEBUG, S3_STORE ": new temporary keys from %s, valid for %ld s",
                f->src->describe, lifetime);
    lfs_refresh_done(f->r, secret, lifetime, err);
}

/* The error of a call to the source that did not answer 200: 503 naming the source. */
static void source_error(struct fetch *f, const struct lfs_http_response *res,
                         const struct lfs_error *err, struct lfs_error *e)
{
    const char *hint = "";
    char code[64] = "";
    if (err != NULL) {
        lfs_error_set(e, 503, S3_STORE ": cannot get temporary keys from %s: %s", f->src->describe,
                      err->message);
        return;
    }
    lfs_storage_xml_error_code(res->body, code, sizeof(code));
    if (f->src->kind == SOURCE_STS && (res->status == 400 || res->status == 403))
        hint = "; check the role's trust policy for this cluster's OIDC provider and the "
               "service account, and that the token file is the one Kubernetes projects";
    else if (f->src->kind == SOURCE_CONTAINER && (res->status == 401 || res->status == 403))
        hint = "; check AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)";
    else if (f->src->kind == SOURCE_IMDS && res->status == 404)
        hint = "; is an IAM role attached to this instance?";
    lfs_error_set(e, 503, S3_STORE ": cannot get temporary keys from %s: HTTP %ld%s%s%s%s",
                  f->src->describe, res->status, code[0] ? " (" : "", code, code[0] ? ")" : "",
                  hint);
}

/* true when the call answered 200; otherwise finishes the fetch with the error. */
static bool answered(struct fetch *f, const struct lfs_http_response *res,
                     const struct lfs_error *err)
{
    if (err == NULL && res->status == 200)
        return true;
    struct lfs_error e = {0};
    source_error(f, res, err, &e);
    fetch_finish(f, res, NULL, 0, &e);
    return false;
}

/* The answer with the keys (STS's XML, or the JSON of the other two). */
static void on_keys(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct fetch *f = arg;
    struct lfs_error e = {0}, pe = {0};
    char *secret = NULL;
    long lifetime = 0;
    if (!answered(f, res, err))
        return;
    if ((f->src->kind == SOURCE_STS
             ? lfs_s3_sts_parse(res->body.base, res->body.len, time(NULL), &secret, &lifetime, &pe)
             : lfs_s3_json_creds_parse(res->body.base, res->body.len, time(NULL), &secret,
                                       &lifetime, &pe)) < 0)
        lfs_error_set(&e, 503, S3_STORE ": cannot use the answer of %s: %s", f->src->describe,
                      pe.message);
    fetch_finish(f, res, secret, lifetime, &e);
}

/* "Name: value" in the pool. */
static const char *header_line(h2o_mem_pool_t *pool, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = h2o_mem_alloc_pool(pool, n);
    snprintf(line, n, "%s: %s", name, value);
    return line;
}

/* "<base><path>" in the pool. */
static const char *join_url(h2o_mem_pool_t *pool, const char *base, const char *path)
{
    size_t n = strlen(base) + strlen(path) + 1;
    char *url = h2o_mem_alloc_pool(pool, n);
    snprintf(url, n, "%s%s", base, path);
    return url;
}

/* Percent-encodes s into the pool, for a form field. */
static const char *form_value(h2o_mem_pool_t *pool, const char *s)
{
    size_t n = strlen(s);
    char *out = h2o_mem_alloc_pool(pool, 3 * n + 1);
    lfs_url_encode(s, n, out);
    return out;
}

static void sts_fetch(struct fetch *f)
{
    const struct source *src = f->src;
    h2o_mem_pool_t *pool = f->io.pool;
    struct lfs_error e = {0};
    const char *token = read_token_file(src->token_file, "the web identity token file", pool, &e);
    if (token == NULL) {
        fetch_finish(f, NULL, NULL, 0, &e);
        return;
    }
    const char *parts[] = {"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=",
                           form_value(pool, src->role_arn),
                           "&RoleSessionName=",
                           form_value(pool, src->session_name),
                           "&WebIdentityToken=",
                           form_value(pool, token)};
    size_t n = 1;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        n += strlen(parts[i]);
    char *body = h2o_mem_alloc_pool(pool, n);
    body[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        strcat(body, parts[i]);
    struct lfs_http_request req = {
        .method = "POST",
        .url = src->url,
        .headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                    "Accept: application/xml"},
        .body = h2o_iovec_init(body, n - 1),
        .timeout_ms = FETCH_TIMEOUT_MS,
        .store = "STS",
    };
    lfs_http_fetch(&f->io, &req, on_keys, f);
}

static void container_fetch(struct fetch *f)
{
    const struct source *src = f->src;
    struct lfs_error e = {0};
    const char *auth = src->auth_token;
    if (src->token_file != NULL &&
        (auth = read_token_file(src->token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                f->io.pool, &e)) == NULL) {
        fetch_finish(f, NULL, NULL, 0, &e);
        return;
    }
    struct lfs_http_request req = {
        .method = "GET",
        .url = src->url,
        .headers = {auth != NULL ? header_line(f->io.pool, "Authorization", auth) : NULL},
        .timeout_ms = FETCH_TIMEOUT_MS,
        .store = "the container credentials endpoint",
    };
    lfs_http_fetch(&f->io, &req, on_keys, f);
}

/* An IMDS call of `method` to `path` with the session token, when there is one. */
static void imds_call(struct fetch *f, const char *method, const char *path, lfs_http_cb cb)
{
    struct lfs_http_request req = {
        .method = method,
        .url = join_url(f->io.pool, f->src->url, path),
        .headers = {f->imds_token != NULL
                        ? header_line(f->io.pool, "X-aws-ec2-metadata-token", f->imds_token)
                        : "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL},
        .timeout_ms = FETCH_TIMEOUT_MS,
        .store = "the instance metadata service",
    };
    lfs_http_fetch(&f->io, &req, cb, f);
}

/* IMDS, third step: the role's keys. */
static void on_imds_role(void *arg, const struct lfs_http_response *res,
                         const struct lfs_error *err)
{
    struct fetch *f = arg;
    if (!answered(f, res, err))
        return;
    /* The first line is the role (one role per instance profile). */
    size_t n = 0;
    while (n < res->body.len && res->body.base[n] != '\n' && res->body.base[n] != '\r')
        n++;
    if (n == 0 || n > 128 || !valid_part(res->body.base, n, 128) ||
        memchr(res->body.base, '/', n) != NULL) {
        struct lfs_error e;
        lfs_error_set(&e, 503, S3_STORE ": %s names no usable IAM role", f->src->describe);
        fetch_finish(f, res, NULL, 0, &e);
        return;
    }
    char *path = h2o_mem_alloc_pool(f->io.pool, sizeof(IMDS_ROLE_PATH) + n);
    snprintf(path, sizeof(IMDS_ROLE_PATH) + n, "%s%.*s", IMDS_ROLE_PATH, (int)n, res->body.base);
    imds_call(f, "GET", path, on_keys);
}

/* IMDS, second step: with the session token, the role's name. */
static void on_imds_token(void *arg, const struct lfs_http_response *res,
                          const struct lfs_error *err)
{
    struct fetch *f = arg;
    if (!answered(f, res, err))
        return;
    if (!valid_part(res->body.base, res->body.len, 1024)) {
        struct lfs_error e;
        lfs_error_set(&e, 503, S3_STORE ": %s answered no usable session token", f->src->describe);
        fetch_finish(f, res, NULL, 0, &e);
        return;
    }
    f->imds_token = h2o_strdup(f->io.pool, res->body.base, res->body.len).base;
    imds_call(f, "GET", IMDS_ROLE_PATH, on_imds_role);
}

/* IMDS, first step: a session token (IMDSv2). */
static void imds_fetch(struct fetch *f)
{
    imds_call(f, "PUT", "/latest/api/token", on_imds_token);
}

/* The refresher's fetcher (lfs_refresh_fetch_fn). */
static void fetch_start(struct lfs_refresh *r, struct lfs_io *io, void *ctx)
{
    struct fetch *f = h2o_mem_alloc_pool(io->pool, sizeof(*f));
    *f = (struct fetch){.r = r, .src = ctx, .io = *io};
    switch (f->src->kind) {
    case SOURCE_STS: sts_fetch(f); break;
    case SOURCE_CONTAINER: container_fetch(f); break;
    case SOURCE_IMDS: imds_fetch(f); break;
    }
}

/* ---- the chain ---- */

static void source_free(struct source *s)
{
    if (s == NULL)
        return;
    free(s->url);
    free(s->role_arn);
    free(s->session_name);
    free(s->token_file);
    if (s->auth_token != NULL)
        OPENSSL_cleanse(s->auth_token, strlen(s->auth_token));
    free(s->auth_token);
    free(s);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* An http(s)://host[:port] URL without query or fragment (a path allowed when `path`). */
static bool valid_url(const char *s, bool path)
{
    h2o_url_t url;
    size_t len = strlen(s);
    if (len == 0 || len > 1000 || strpbrk(s, "@?# \t\r\n") != NULL ||
        h2o_url_parse(s, len, &url) != 0 || url.host.len == 0)
        return false;
    if (url.scheme != &H2O_URL_SCHEME_HTTP && url.scheme != &H2O_URL_SCHEME_HTTPS)
        return false;
    return path || url.path.len == 0 || (url.path.len == 1 && url.path.base[0] == '/');
}

/* Web identity: 1 with *src when AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are set, 0 when
 * neither is, -1 with err. */
static int web_identity(const char *region, const char *sts_endpoint, struct source **out,
                        struct lfs_error *err)
{
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    const char *session = env("AWS_ROLE_SESSION_NAME");
    if (file == NULL && role == NULL)
        return 0;
    if (file == NULL || role == NULL)
        return lfs_error_set(err, 500, "%s is set but %s is not: web identity needs both",
                             file != NULL ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                             file != NULL ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (strncmp(role, "arn:", 4) != 0 || strlen(role) > 2048)
        return lfs_error_set(err, 500, "AWS_ROLE_ARN: \"%s\" is not a role ARN (arn:aws:iam::...)",
                             role);
    if (session != NULL && strlen(session) > 64)
        return lfs_error_set(err, 500, "AWS_ROLE_SESSION_NAME is longer than 64 characters");
    /* Read again on every exchange, but a file missing at startup is a mistake to say now. */
    if (access(file, R_OK) != 0)
        return lfs_error_set(err, 500, "AWS_WEB_IDENTITY_TOKEN_FILE \"%s\": %s", file,
                             strerror(errno));
    char regional[128];
    snprintf(regional, sizeof(regional), "https://sts.%s.amazonaws.com", region);
    const char *url = sts_endpoint != NULL ? sts_endpoint : env("AWS_STS_ENDPOINT");
    if (url == NULL)
        url = regional;
    if (!valid_url(url, false))
        return lfs_error_set(err, 500,
                             "the STS endpoint (%s): expected http(s)://host[:port], got \"%s\"",
                             sts_endpoint != NULL ? "sts_endpoint" : "AWS_STS_ENDPOINT", url);
    struct source *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->url = strdup(url)) == NULL || (s->role_arn = strdup(role)) == NULL ||
        (s->session_name = strdup(session != NULL ? session : "lfsgate")) == NULL ||
        (s->token_file = strdup(file)) == NULL) {
        source_free(s);
        return lfs_error_set(err, 500, "out of memory");
    }
    s->kind = SOURCE_STS;
    snprintf(s->describe, sizeof(s->describe),
             "STS AssumeRoleWithWebIdentity at %s for role %s (web identity token file \"%s\")",
             url, role, file);
    *out = s;
    return 1;
}

/* Is host one the container endpoint may be reached at over plain http (as the AWS SDKs
 * allow: loopback, ECS's and EKS Pod Identity's link-local agents)? */
static bool container_http_host(const char *uri)
{
    h2o_url_t url;
    if (h2o_url_parse(uri, strlen(uri), &url) != 0 || url.scheme != &H2O_URL_SCHEME_HTTP)
        return true; /* https: any host */
    static const char *const ok[] = {"127.0.0.1",     "localhost",      "[::1]", "::1",
                                     "169.254.170.2", "169.254.170.23", NULL};
    for (size_t i = 0; ok[i] != NULL; i++)
        if (url.host.len == strlen(ok[i]) && memcmp(url.host.base, ok[i], url.host.len) == 0)
            return true;
    return false;
}

/* Container credentials: 1 with *src when AWS_CONTAINER_CREDENTIALS_FULL_URI or
 * _RELATIVE_URI is set, 0 when neither is, -1 with err. */
static int container(struct source **out, struct lfs_error *err)
{
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (full == NULL && rel == NULL)
        return 0;
    char url[1100];
    if (rel != NULL) /* the relative one wins, as in the AWS SDKs */
        snprintf(url, sizeof(url), "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
    else
        snprintf(url, sizeof(url), "%s", full);
    const char *var = rel != NULL ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
                                  : "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    if (!valid_url(url, true))
        return lfs_error_set(err, 500, "%s: \"%s\" does not make an http(s) URL", var,
                             rel != NULL ? rel : full);
    if (!container_http_host(url))
        return lfs_error_set(err, 500,
                             "%s: plain http is allowed only to a loopback address, 169.254.170.2 "
                             "or 169.254.170.23; use https",
                             var);
    struct source *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->url = strdup(url)) == NULL ||
        (file != NULL && (s->token_file = strdup(file)) == NULL) ||
        (file == NULL && token != NULL && (s->auth_token = strdup(token)) == NULL)) {
        source_free(s);
        return lfs_error_set(err, 500, "out of memory");
    }
    if (s->auth_token != NULL && !valid_part(token, strlen(token), MAX_TOKEN_FILE)) {
        source_free(s);
        return lfs_error_set(err, 500,
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN holds bytes that cannot go into "
                             "a header");
    }
    s->kind = SOURCE_CONTAINER;
    snprintf(s->describe, sizeof(s->describe), "the container credentials endpoint %s%s", url,
             file != NULL    ? " (authorization token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"
             : token != NULL ? " (authorization token from AWS_CONTAINER_AUTHORIZATION_TOKEN)"
                             : "");
    *out = s;
    return 1;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)arg;
    OPENSSL_cleanse(data, size * n); /* a session token */
    return size * n;
}

/* Whether an instance metadata service answers at base: IMDS is the one source the
 * environment does not announce, so at startup one PUT for a session token (1 s to connect,
 * 2 s in all, never through a proxy) tells whether to use it or to refuse to start naming
 * every source. The token is discarded. Blocking: main thread, startup and reload only.
 * false with why filled when it does not answer 200. */
static bool imds_answers(const char *base, char *why, size_t whysize)
{
    char url[1100];
    snprintf(url, sizeof(url), "%s/latest/api/token", base);
    CURL *h = lfs_curl.easy_init();
    struct curl_slist *headers =
        lfs_curl.slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL);
    if (h == NULL || headers == NULL) {
        snprintf(why, whysize, "out of memory");
        lfs_curl.slist_free_all(headers);
        if (h != NULL)
            lfs_curl.easy_cleanup(h);
        return false;
    }
    lfs_curl.easy_setopt(h, CURLOPT_URL, url);
    lfs_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    lfs_curl.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    lfs_curl.easy_setopt(h, CURLOPT_NOPROXY, "*");
    lfs_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    lfs_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    lfs_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    lfs_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = lfs_curl.easy_perform(h);
    long status = 0;
    lfs_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    lfs_curl.easy_cleanup(h);
    lfs_curl.slist_free_all(headers);
    if (rc != CURLE_OK)
        snprintf(why, whysize, "%s", lfs_curl.easy_strerror(rc));
    else if (status != 200)
        snprintf(why, whysize, "HTTP %ld to PUT /latest/api/token", status);
    return rc == CURLE_OK && status == 200;
}

/* IMDSv2: 1 with *src when AWS_EC2_METADATA_DISABLED is not true and the service answers,
 * 0 otherwise (what was tried in `tried`), -1 with err. */
static int imds(struct source **out, char *tried, size_t tried_size, struct lfs_error *err)
{
    const char *disabled = env("AWS_EC2_METADATA_DISABLED");
    if (disabled != NULL && strcasecmp(disabled, "true") == 0) {
        snprintf(tried, tried_size,
                 "the instance metadata service (AWS_EC2_METADATA_DISABLED=true)");
        return 0;
    }
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base == NULL)
        base = IMDS_DEFAULT;
    if (!valid_url(base, false))
        return lfs_error_set(err, 500,
                             "AWS_EC2_METADATA_SERVICE_ENDPOINT: expected http(s)://host[:port], "
                             "got \"%s\"",
                             base);
    size_t n = strlen(base);
    struct source *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->url = strndup(base, base[n - 1] == '/' ? n - 1 : n)) == NULL) {
        source_free(s);
        return lfs_error_set(err, 500, "out of memory");
    }
    char why[256];
    if (!imds_answers(s->url, why, sizeof(why))) {
        snprintf(tried, tried_size, "the instance metadata service at %s (%s)", s->url, why);
        source_free(s);
        return 0;
    }
    s->kind = SOURCE_IMDS;
    snprintf(s->describe, sizeof(s->describe), "the instance metadata service (IMDSv2) at %s",
             s->url);
    *out = s;
    return 1;
}

/* Puts src behind its refresher (the one of an identical source when there is one). Takes
 * src. */
static int use_source(struct lfs_s3_creds *c, struct source *src, struct lfs_error *err)
{
    char key[1400];
    snprintf(key, sizeof(key), "s3|%d|%s|%s|%s|%s|%s", (int)src->kind, src->url,
             src->role_arn != NULL ? src->role_arn : "",
             src->session_name != NULL ? src->session_name : "",
             src->token_file != NULL ? src->token_file : "",
             src->auth_token != NULL ? "token" : "");
    char what[700];
    snprintf(what, sizeof(what), S3_STORE ": the temporary keys from %s", src->describe);
    struct lfs_refresh *r = NULL;
    bool reused = false;
    if (lfs_refresh_open(key, what, fetch_start, src, KEEP_S, &r, &reused, err) < 0) {
        source_free(src);
        return -1;
    }
    snprintf(c->source, sizeof(c->source), "%s", src->describe);
    if (reused)
        source_free(src);
    c->refresh = r;
    return 0;
}

int lfs_s3_creds_load(const char *region, const char *sts_endpoint, struct lfs_s3_creds **out,
                      struct lfs_error *err)
{
    struct lfs_s3_creds *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return lfs_error_set(err, 500, "out of memory");
    char tried[1200], tried_imds[600] = "";
    struct source *src = NULL;
    int rc = credentials_from_env(c, err);
    if (rc == 0)
        rc = credentials_from_file(c, tried, sizeof(tried), err);
    if (rc == 0 && (rc = web_identity(region, sts_endpoint, &src, err)) == 0 &&
        (rc = container(&src, err)) == 0)
        rc = imds(&src, tried_imds, sizeof(tried_imds), err);
    if (rc > 0 && src != NULL)
        rc = use_source(c, src, err) < 0 ? -1 : 1;
    if (rc == 0)
        lfs_error_set(err, 500,
                      "no AWS credentials found; tried, in this order: AWS_ACCESS_KEY_ID (not "
                      "set), %s, web identity (AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN not "
                      "set), container credentials (AWS_CONTAINER_CREDENTIALS_*_URI not set), "
                      "%s",
                      tried, tried_imds);
    if (rc <= 0) {
        lfs_s3_creds_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void lfs_s3_creds_free(struct lfs_s3_creds *c)
{
    if (c == NULL)
        return;
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

const char *lfs_s3_creds_source(const struct lfs_s3_creds *c)
{
    return c->source;
}

/* ---- handing keys to requests ---- */

struct creds_wait {
    h2o_mem_pool_t *pool;
    lfs_s3_creds_cb cb;
    void *arg;
};

static void on_secret(void *arg, const char *secret, const struct lfs_error *err)
{
    struct creds_wait *w = arg;
    if (secret == NULL) {
        w->cb(w->arg, NULL, err);
        return;
    }
    /* secret is the pool's copy: split in place. */
    struct lfs_s3_credentials *cred = h2o_mem_alloc_pool(w->pool, sizeof(*cred));
    char *key = strchr(secret, '\n'), *token = key != NULL ? strchr(key + 1, '\n') : NULL;
    if (token == NULL) {
        struct lfs_error e;
        lfs_error_set(&e, 500, S3_STORE ": the temporary keys held are malformed");
        w->cb(w->arg, NULL, &e);
        return;
    }
    *key++ = '\0';
    *token++ = '\0';
    *cred = (struct lfs_s3_credentials){
        .access_key_id = secret, .secret_access_key = key, .session_token = token};
    w->cb(w->arg, cred, NULL);
}

void lfs_s3_creds_get(struct lfs_s3_creds *c, struct lfs_io *io, lfs_s3_creds_cb cb, void *arg)
{
    if (c->refresh == NULL) {
        struct lfs_s3_credentials cred = {
            .access_key_id = c->access_key_id,
            .secret_access_key = c->secret_access_key,
            .session_token = c->session_token[0] != '\0' ? c->session_token : NULL,
        };
        cb(arg, &cred, NULL);
        return;
    }
    struct creds_wait *w = h2o_mem_alloc_pool(io->pool, sizeof(*w));
    *w = (struct creds_wait){.pool = io->pool, .cb = cb, .arg = arg};
    lfs_refresh_get(c->refresh, io, on_secret, w);
}
