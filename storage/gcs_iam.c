/* Workload identity for the GCS backend (storage/gcs_iam.h): the pod's access token from the
 * GCE metadata server, shared by every worker thread, and V4 URL signatures from IAM Credentials
 * signBlob, cached per backend.
 *
 * The token is one per process (it is the pod's, whatever the backend): a refresher
 * (storage/refresh.h) per metadata server fetches it on the loop of the thread that needed it
 * first, shares it with the other threads and fetches it again from half its life on.
 *
 * Signatures: the string to sign of a URL whose date is rounded to a window
 * (lfs_gcs_iam_window) repeats for the same object and action, so a fixed-size table keyed by
 * its SHA-256 answers repeated batches without a signBlob call. Nothing here logs a token or a
 * signature. */
#include "storage/gcs_iam.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "storage/azure_sign.h" /* lfs_azure_base64_*: plain base64, nothing Azure-specific */
#include "storage/http_client.h"
#include "storage/refresh.h"

#define TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
/* Deadlines of the metadata server (local to the node) and of a signBlob call. */
#define TOKEN_TIMEOUT_MS 10000
#define SIGNBLOB_TIMEOUT_MS 20000
#define TOKEN_MAX_LEN 4096
/* Signature cache slots per backend (~0.5 MiB): one batch of this many objects fits. */
#define SIG_SLOTS 1024
/* Longest signing window: URLs outlive their action by at most this much. */
#define WINDOW_MAX 600

/* ---- the access token ---- */

/* The metadata server a refresher fetches from (its ctx). */
struct token_source {
    char *url;  /* the metadata server's token URL */
    char *base; /* "http://host[:port]", for messages */
};

/* The refresher of the metadata server configured last. Refreshers live as long as the process
 * (storage/refresh.h), so a worker that read the previous one during a reload still holds a
 * valid one. */
static struct lfs_refresh *_Atomic token_refresh;

/* A fetch in flight: the refresher and its source. */
struct token_fetch {
    struct lfs_refresh *r;
    const struct token_source *src;
};

static void on_token(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct token_fetch *f = arg;
    struct lfs_error e = {0}, pe = {0};
    char *token = NULL;
    long expires_in = 0;
    const char *what = "gcs storage: cannot get an access token from the metadata server at";
    const char *base = f->src->base;
    if (err != NULL)
        lfs_error_set(&e, 503, "%s %s: %s", what, base, err->message);
    else if (res->status != 200)
        lfs_error_set(&e, 503, "%s %s: HTTP %ld%s", what, base, res->status,
                      res->status == 404 ? " (is workload identity enabled for this node pool "
                                           "and the pod's Kubernetes service account bound to a "
                                           "Google service account?)"
                                         : "");
    else if (lfs_gcs_token_parse(res->body.base, res->body.len, &token, &expires_in, &pe) < 0)
        lfs_error_set(&e, 503, "%s %s: %s", what, base, pe.message);
    /* The answer lives in the fetch's pool: wipe it before the pool goes. */
    if (res->body.len > 0)
        OPENSSL_cleanse(res->body.base, res->body.len);
    if (token == NULL)
        lfs_log(LFS_LOG_WARN, "%s", e.message);
    else
        lfs_log(LFS_LOG_DEBUG,
                "gcs storage: new access token from the metadata server, valid "
                "for %ld s",
                expires_in);
    lfs_refresh_done(f->r, token, expires_in, &e);
}

/* The refresher's fetcher: one GET of the token URL. */
static void token_fetch_start(struct lfs_refresh *r, struct lfs_io *io, void *ctx)
{
    struct token_fetch *f = h2o_mem_alloc_pool(io->pool, sizeof(*f));
    *f = (struct token_fetch){.r = r, .src = ctx};
    struct lfs_http_request req = {
        .method = "GET",
        .url = f->src->url,
        .headers = {"Metadata-Flavor: Google"},
        .timeout_ms = TOKEN_TIMEOUT_MS,
        .store = "metadata server",
    };
    lfs_http_fetch(io, &req, on_token, f);
}

int lfs_gcs_token_configure(const char *base, struct lfs_error *err)
{
    struct token_source *src = calloc(1, sizeof(*src));
    size_t n = strlen(base) + sizeof(TOKEN_PATH);
    if (src == NULL || (src->url = malloc(n)) == NULL || (src->base = strdup(base)) == NULL) {
        if (src != NULL)
            free(src->url);
        free(src);
        return lfs_error_set(err, 500, "out of memory");
    }
    snprintf(src->url, n, "%s%s", base, TOKEN_PATH);
    struct lfs_refresh *r = NULL;
    bool reused = false;
    if (lfs_refresh_open(src->url, "gcs storage: the access token from the metadata server",
                         token_fetch_start, src, 0, &r, &reused, err) < 0 ||
        reused) {
        free(src->url);
        free(src->base);
        free(src);
        if (!reused)
            return -1;
    }
    token_refresh = r;
    return 0;
}

void lfs_gcs_token_get(struct lfs_io *io, lfs_gcs_token_cb cb, void *arg)
{
    lfs_refresh_get(token_refresh, io, cb, arg);
}

int lfs_gcs_token_parse(const char *body, size_t len, char **token, long *expires_in,
                        struct lfs_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *at = json_object_get(root, "access_token");
    const json_t *exp = json_object_get(root, "expires_in");
    const json_t *type = json_object_get(root, "token_type");
    int rc = -1;
    if (!json_is_object(root)) {
        lfs_error_set(err, 502, "the answer is not a JSON object");
    } else if (!json_is_string(at) || json_string_length(at) == 0) {
        lfs_error_set(err, 502, "the answer has no \"access_token\"");
    } else if (json_string_length(at) > TOKEN_MAX_LEN) {
        lfs_error_set(err, 502, "\"access_token\" is longer than %d bytes", TOKEN_MAX_LEN);
    } else if (!json_is_integer(exp) || json_integer_value(exp) <= 0 ||
               json_integer_value(exp) > LFS_GCS_MAX_EXPIRES) {
        lfs_error_set(err, 502, "\"expires_in\" is not a number of seconds in 1..%ld",
                      LFS_GCS_MAX_EXPIRES);
    } else if (type != NULL &&
               !(json_is_string(type) && strcasecmp(json_string_value(type), "Bearer") == 0)) {
        lfs_error_set(err, 502, "\"token_type\" is not \"Bearer\"");
    } else {
        const char *t = json_string_value(at);
        size_t n = json_string_length(at), i = 0;
        while (i < n && t[i] > 0x20 && t[i] < 0x7f)
            i++;
        /* It goes into a header line: a CR, LF or other control byte would forge headers. */
        if (i < n)
            lfs_error_set(err, 502, "\"access_token\" holds bytes that cannot go into a header");
        else if ((*token = strdup(t)) == NULL)
            lfs_error_set(err, 500, "out of memory");
        else {
            *expires_in = (long)json_integer_value(exp);
            rc = 0;
        }
    }
    if (json_is_string(at))
        OPENSSL_cleanse((void *)json_string_value(at), json_string_length(at));
    json_decref(root);
    return rc;
}

/* ---- signBlob ---- */

struct sig_slot {
    unsigned char digest[32]; /* SHA-256 of the string to sign; all zero: empty */
    uint16_t len;
    unsigned char sig[LFS_GCS_MAX_SIGNATURE];
};

struct lfs_gcs_iam {
    char *email;
    char *url;  /* <base>/v1/projects/-/serviceAccounts/<email>:signBlob */
    char *base; /* for messages */
    pthread_mutex_t mu;
    struct sig_slot *slots;
};

static bool valid_email(const char *s)
{
    size_t at = 0, n = strlen(s);
    if (n < 3 || n > 254)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '@')
            at++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return at == 1 && s[0] != '@' && s[n - 1] != '@';
}

int lfs_gcs_iam_create(const char *email, const char *base, struct lfs_gcs_iam **out,
                       struct lfs_error *err)
{
    if (!valid_email(email))
        return lfs_error_set(err, 500,
                             "expected a service account's email (name@project.iam."
                             "gserviceaccount.com), got \"%s\"",
                             email);
    struct lfs_gcs_iam *iam = calloc(1, sizeof(*iam));
    size_t n = strlen(base) + strlen(email) + 64;
    if (iam == NULL || (iam->email = strdup(email)) == NULL || (iam->base = strdup(base)) == NULL ||
        (iam->url = malloc(n)) == NULL ||
        (iam->slots = calloc(SIG_SLOTS, sizeof(*iam->slots))) == NULL) {
        lfs_gcs_iam_destroy(iam);
        return lfs_error_set(err, 500, "out of memory");
    }
    snprintf(iam->url, n, "%s/v1/projects/-/serviceAccounts/%s:signBlob", base, email);
    pthread_mutex_init(&iam->mu, NULL);
    *out = iam;
    return 0;
}

void lfs_gcs_iam_destroy(struct lfs_gcs_iam *iam)
{
    if (iam == NULL)
        return;
    if (iam->slots != NULL) {
        OPENSSL_cleanse(iam->slots, SIG_SLOTS * sizeof(*iam->slots));
        pthread_mutex_destroy(&iam->mu);
    }
    free(iam->slots);
    free(iam->email);
    free(iam->base);
    free(iam->url);
    free(iam);
}

const char *lfs_gcs_iam_email(const struct lfs_gcs_iam *iam)
{
    return iam->email;
}

void lfs_gcs_iam_window(time_t now, long lifetime, time_t *date, long *expires)
{
    long window = lifetime / 8;
    if (window > WINDOW_MAX)
        window = WINDOW_MAX;
    if (window > LFS_GCS_MAX_EXPIRES - lifetime)
        window = LFS_GCS_MAX_EXPIRES - lifetime;
    if (window < 2) {
        *date = now;
        *expires = lifetime;
        return;
    }
    *date = now - now % window;
    *expires = lifetime + window;
}

int lfs_gcs_signblob_parse(const char *body, size_t len, unsigned char *sig, size_t *siglen,
                           struct lfs_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *blob = json_object_get(root, "signedBlob");
    int rc = -1;
    if (!json_is_object(root)) {
        lfs_error_set(err, 502, "the answer is not a JSON object");
    } else if (!json_is_string(blob) || json_string_length(blob) == 0) {
        lfs_error_set(err, 502, "the answer has no \"signedBlob\"");
    } else {
        size_t n = lfs_azure_base64_decode(json_string_value(blob), json_string_length(blob), sig,
                                           LFS_GCS_MAX_SIGNATURE);
        if (n == (size_t)-1 || n == 0)
            lfs_error_set(err, 502,
                          "\"signedBlob\" is not base64 of a signature of at most %d bytes",
                          LFS_GCS_MAX_SIGNATURE);
        else {
            *siglen = n;
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

static struct sig_slot *slot_of(struct lfs_gcs_iam *iam, const unsigned char *digest)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    return &iam->slots[h % SIG_SLOTS];
}

/* One signBlob in progress, owned by the request pool. */
struct iam_sign {
    struct lfs_gcs_iam *iam;
    struct lfs_io io;
    struct lfs_gcs_signed s; /* released by the pool (sign_dispose) */
    unsigned char digest[32];
    lfs_gcs_url_cb cb;
    void *arg;
};

static void sign_dispose(void *p)
{
    struct iam_sign *op = p;
    lfs_gcs_signed_free(&op->s);
}

/* Completes op with the signature: into the URL, the URL into the pool, then cb. */
static void sign_finish(struct iam_sign *op, const unsigned char *sig, size_t len)
{
    struct lfs_error err = {0};
    if (lfs_gcs_sign_end(&op->s, sig, len, &err) < 0) {
        op->cb(op->arg, NULL, &err);
        return;
    }
    const char *url = h2o_strdup(op->io.pool, op->s.url, SIZE_MAX).base;
    lfs_gcs_signed_free(&op->s);
    op->cb(op->arg, url, NULL);
}

/* The "status" of a Google API error answer ({"error": {"status": "PERMISSION_DENIED"}}) into
 * code (capital letters and '_' only: the message may quote the request), "" without one. */
static void api_error_status(h2o_iovec_t body, char *code, size_t size)
{
    code[0] = '\0';
    json_t *root = json_loadb(body.base, body.len, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(root, "error"), "status"));
    size_t i = 0;
    for (;
         s != NULL && s[i] != '\0' && i + 1 < size && ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_');
         i++)
        code[i] = s[i];
    code[i] = '\0';
    json_decref(root);
}

static void on_signed(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct iam_sign *op = arg;
    struct lfs_error e = {0};
    unsigned char sig[LFS_GCS_MAX_SIGNATURE];
    size_t len = 0;
    const char *email = op->iam->email;
    if (err != NULL) {
        lfs_error_set(&e, 503, "gcs storage: IAM signBlob for %s failed: %s", email, err->message);
    } else if (res->status != 200) {
        char code[64];
        api_error_status(res->body, code, sizeof(code));
        lfs_error_set(
            &e, 503, "gcs storage: IAM signBlob for %s at %s failed: HTTP %ld%s%s%s", email,
            op->iam->base, res->status, code[0] ? " " : "", code,
            res->status == 401 || res->status == 403
                ? "; the pod's service account needs roles/iam.serviceAccountTokenCreator "
                  "on this account"
                : "");
    } else if (lfs_gcs_signblob_parse(res->body.base, res->body.len, sig, &len, &e) < 0) {
        lfs_error_prefix(&e, "gcs storage: IAM signBlob for %s at %s: ", email, op->iam->base);
        e.status = 503;
    }
    if (e.status != 0) {
        op->cb(op->arg, NULL, &e);
        return;
    }
    struct sig_slot *slot = slot_of(op->iam, op->digest);
    pthread_mutex_lock(&op->iam->mu);
    memcpy(slot->digest, op->digest, sizeof(slot->digest));
    memcpy(slot->sig, sig, len);
    slot->len = (uint16_t)len;
    pthread_mutex_unlock(&op->iam->mu);
    sign_finish(op, sig, len);
    OPENSSL_cleanse(sig, sizeof(sig));
}

static void sign_with_token(void *arg, const char *token, const struct lfs_error *err)
{
    struct iam_sign *op = arg;
    if (err != NULL) {
        op->cb(op->arg, NULL, err);
        return;
    }
    h2o_mem_pool_t *pool = op->io.pool;
    size_t slen = strlen(op->s.string_to_sign);
    static const char head[] = "{\"payload\":\"", tail[] = "\"}";
    size_t cap = sizeof(head) + 4 * ((slen + 2) / 3) + sizeof(tail);
    char *body = h2o_mem_alloc_pool(pool, cap);
    memcpy(body, head, sizeof(head) - 1);
    size_t n = sizeof(head) - 1;
    n += lfs_azure_base64_encode((const unsigned char *)op->s.string_to_sign, slen, body + n);
    memcpy(body + n, tail, sizeof(tail));
    n += sizeof(tail) - 1;
    size_t alen = strlen(token) + sizeof("Authorization: Bearer ");
    char *auth = h2o_mem_alloc_pool(pool, alen);
    snprintf(auth, alen, "Authorization: Bearer %s", token);
    struct lfs_http_request req = {
        .method = "POST",
        .url = op->iam->url,
        .headers = {auth, "Content-Type: application/json; charset=utf-8"},
        .body = h2o_iovec_init(body, n),
        .timeout_ms = SIGNBLOB_TIMEOUT_MS,
        .store = "IAM Credentials API",
    };
    lfs_http_fetch(&op->io, &req, on_signed, op);
}

void lfs_gcs_iam_sign(struct lfs_gcs_iam *iam, struct lfs_io *io,
                      const struct lfs_gcs_sign_input *in, lfs_gcs_url_cb cb, void *arg)
{
    struct iam_sign *op = h2o_mem_alloc_shared(io->pool, sizeof(*op), sign_dispose);
    *op = (struct iam_sign){.iam = iam, .io = *io, .cb = cb, .arg = arg};
    struct lfs_error err = {0};
    if (lfs_gcs_sign_begin(iam->email, in, &op->s, &err) < 0) {
        cb(arg, NULL, &err);
        return;
    }
    unsigned int dlen = 0;
    EVP_Digest(op->s.string_to_sign, strlen(op->s.string_to_sign), op->digest, &dlen, EVP_sha256(),
               NULL);
    struct sig_slot *slot = slot_of(iam, op->digest);
    unsigned char sig[LFS_GCS_MAX_SIGNATURE];
    size_t len = 0;
    pthread_mutex_lock(&iam->mu);
    if (slot->len != 0 && memcmp(slot->digest, op->digest, sizeof(op->digest)) == 0) {
        len = slot->len;
        memcpy(sig, slot->sig, len);
    }
    pthread_mutex_unlock(&iam->mu);
    if (len != 0) {
        sign_finish(op, sig, len);
        OPENSSL_cleanse(sig, len);
        return;
    }
    lfs_gcs_token_get(io, sign_with_token, op);
}
