/* Workload identity for the GCS backend (storage/gcs_iam.h): the pod's access token from the
 * GCE metadata server, shared by every worker thread, and V4 URL signatures from IAM Credentials
 * signBlob, cached per backend.
 *
 * The token is one per process (it is the pod's, whatever the backend): a mutex guards it and
 * at most one fetch is in flight across all threads, run on the loop of the thread that needed
 * it first with a pool of its own (a client going away must not cancel everyone's token).
 * Requests that need a token while none is fresh wait on their own thread's list; the fetching
 * thread wakes the other threads through each one's h2o_multithread receiver on its context's
 * queue (h2o 2.2.5: a message must not be re-sent while queued, hence wake_sent), so every
 * waiter is resumed on its own loop. A held token is used until shortly before it expires and
 * refreshed in the background from half its life on, so requests rarely wait at all.
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

struct token_thread;

static struct {
    pthread_mutex_t mu;
    char *url;  /* the metadata server's token URL */
    char *base; /* "http://host[:port]", for messages */
    char *token;
    uint64_t expiry, usable_until, refresh_at; /* monotonic ms */
    bool fetching;
    uint64_t started; /* fetches started */
    uint64_t done;    /* fetches completed; the last one's error in done_err (status 0: ok) */
    struct lfs_error done_err;
    h2o_linklist_t threads; /* struct token_thread.link */
} tokens = {.mu = PTHREAD_MUTEX_INITIALIZER, .threads = {&tokens.threads, &tokens.threads}};

/* A worker thread's part; `link`, `wake_sent` and `has_waiters` are guarded by tokens.mu, the
 * rest is the thread's own. */
struct token_thread {
    h2o_linklist_t link;
    h2o_context_t *ctx;
    h2o_multithread_receiver_t receiver;
    h2o_multithread_message_t wake;
    bool wake_sent;
    bool has_waiters;
    h2o_linklist_t waiters;
    h2o_mem_pool_t *fetch_pool; /* the fetch this thread runs, or NULL */
};

static __thread struct token_thread *token_thread;

/* A request waiting for a token, owned by its pool. */
struct token_waiter {
    h2o_linklist_t link;
    uint64_t fetch; /* the fetch whose outcome answers it */
    h2o_mem_pool_t *pool;
    lfs_gcs_token_cb cb;
    void *arg;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lfs_gcs_token_configure(const char *base, struct lfs_error *err)
{
    size_t n = strlen(base) + sizeof(TOKEN_PATH);
    char *url = malloc(n), *b = strdup(base);
    if (url == NULL || b == NULL) {
        free(url);
        free(b);
        return lfs_error_set(err, 500, "out of memory");
    }
    snprintf(url, n, "%s%s", base, TOKEN_PATH);
    pthread_mutex_lock(&tokens.mu);
    if (tokens.url != NULL && strcmp(tokens.url, url) == 0) {
        pthread_mutex_unlock(&tokens.mu);
        free(url);
        free(b);
        return 0;
    }
    free(tokens.url);
    free(tokens.base);
    tokens.url = url;
    tokens.base = b;
    /* Another metadata server: the token held came from the old one. */
    if (tokens.token != NULL)
        OPENSSL_cleanse(tokens.token, strlen(tokens.token));
    free(tokens.token);
    tokens.token = NULL;
    pthread_mutex_unlock(&tokens.mu);
    return 0;
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

static void waiter_dispose(void *p)
{
    struct token_waiter *w = p;
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* Answers this thread's waiters whose fetch has completed: all of them while a token is valid,
 * else those whose fetch failed (the others wait for the fetch in flight). */
static void wake_waiters(struct token_thread *th)
{
    h2o_linklist_t ready;
    h2o_linklist_init_anchor(&ready);
    h2o_linklist_insert_list(&ready, &th->waiters);
    pthread_mutex_lock(&tokens.mu);
    char *token = tokens.token != NULL && now_ms() < tokens.expiry ? strdup(tokens.token) : NULL;
    uint64_t done = tokens.done;
    struct lfs_error err = tokens.done_err;
    pthread_mutex_unlock(&tokens.mu);
    if (token == NULL && err.status == 0)
        lfs_error_set(&err, 503,
                      "gcs storage: the access token from the metadata server expired "
                      "before it could be used; check the node's clock");
    /* Take the first each time: a callback may dispose other waiters' pools. */
    while (!h2o_linklist_is_empty(&ready)) {
        struct token_waiter *w = H2O_STRUCT_FROM_MEMBER(struct token_waiter, link, ready.next);
        h2o_linklist_unlink(&w->link);
        if (token != NULL)
            w->cb(w->arg, h2o_strdup(w->pool, token, SIZE_MAX).base, NULL);
        else if (w->fetch <= done)
            w->cb(w->arg, NULL, &err);
        else
            h2o_linklist_insert(&th->waiters, &w->link);
    }
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    pthread_mutex_lock(&tokens.mu);
    th->has_waiters = !h2o_linklist_is_empty(&th->waiters);
    pthread_mutex_unlock(&tokens.mu);
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct token_thread *th = H2O_STRUCT_FROM_MEMBER(struct token_thread, receiver, receiver);
    pthread_mutex_lock(&tokens.mu);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    th->wake_sent = false;
    pthread_mutex_unlock(&tokens.mu);
    wake_waiters(th);
}

/* Records the outcome of the fetch in flight (token NULL: failed with err) and wakes the other
 * threads that have waiters. Takes token. */
static void fetch_complete(struct token_thread *th, char *token, long expires_in,
                           const struct lfs_error *err)
{
    uint64_t now = now_ms();
    pthread_mutex_lock(&tokens.mu);
    if (token != NULL) {
        if (tokens.token != NULL)
            OPENSSL_cleanse(tokens.token, strlen(tokens.token));
        free(tokens.token);
        tokens.token = token;
        uint64_t life = (uint64_t)expires_in * 1000;
        tokens.expiry = now + life;
        /* Used until a minute (a quarter of a short life) before it expires, so the calls made
         * with it still carry a valid token; refreshed from half its life, or from 5 minutes
         * before expiry when that comes first. */
        tokens.usable_until = tokens.expiry - (life / 4 < 60000 ? life / 4 : 60000);
        tokens.refresh_at =
            now + (expires_in > 300 && life - 300000 < life / 2 ? life - 300000 : life / 2);
        tokens.done_err = (struct lfs_error){0};
    } else {
        tokens.done_err = *err;
    }
    tokens.done = tokens.started;
    tokens.fetching = false;
    for (h2o_linklist_t *l = tokens.threads.next; l != &tokens.threads; l = l->next) {
        struct token_thread *t = H2O_STRUCT_FROM_MEMBER(struct token_thread, link, l);
        if (t != th && t->has_waiters && !t->wake_sent) {
            t->wake_sent = true;
            h2o_multithread_send_message(&t->receiver, &t->wake);
        }
    }
    pthread_mutex_unlock(&tokens.mu);
}

static void fetch_release(struct token_thread *th)
{
    h2o_mem_clear_pool(th->fetch_pool);
    free(th->fetch_pool);
    th->fetch_pool = NULL;
}

static void on_token(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct token_thread *th = arg;
    struct lfs_error e = {0}, pe = {0};
    char *token = NULL;
    long expires_in = 0;
    pthread_mutex_lock(&tokens.mu);
    char base[256];
    snprintf(base, sizeof(base), "%s", tokens.base);
    pthread_mutex_unlock(&tokens.mu);
    const char *what = "gcs storage: cannot get an access token from the metadata server at";
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
    fetch_release(th);
    if (token == NULL)
        lfs_log(LFS_LOG_WARN, "%s", e.message);
    else
        lfs_log(LFS_LOG_DEBUG,
                "gcs storage: new access token from the metadata server, valid "
                "for %ld s",
                expires_in);
    fetch_complete(th, token, expires_in, &e);
    wake_waiters(th);
}

/* Starts the fetch this thread was chosen to run (tokens.fetching already set). */
static void fetch_start(struct token_thread *th)
{
    struct lfs_error err = {0};
    if ((th->fetch_pool = malloc(sizeof(*th->fetch_pool))) == NULL) {
        lfs_error_set(&err, 503, "gcs storage: out of memory asking for an access token");
        fetch_complete(th, NULL, 0, &err);
        wake_waiters(th);
        return;
    }
    h2o_mem_init_pool(th->fetch_pool);
    struct lfs_io io = {.ctx = th->ctx, .pool = th->fetch_pool};
    pthread_mutex_lock(&tokens.mu);
    const char *url = h2o_strdup(th->fetch_pool, tokens.url, SIZE_MAX).base;
    pthread_mutex_unlock(&tokens.mu);
    struct lfs_http_request req = {
        .method = "GET",
        .url = url,
        .headers = {"Metadata-Flavor: Google"},
        .timeout_ms = TOKEN_TIMEOUT_MS,
        .store = "metadata server",
    };
    lfs_http_fetch(&io, &req, on_token, th);
}

static void thread_release(struct token_thread *th)
{
    if (th->fetch_pool != NULL) {
        /* Dropping our fetch: the other threads' waiters get an error instead of waiting on
         * it forever. Ours are dropped without callback (their requests are ending too). */
        fetch_release(th);
        struct lfs_error err;
        lfs_error_set(&err, 503,
                      "gcs storage: the worker thread asking the metadata server for "
                      "an access token stopped; retry");
        fetch_complete(th, NULL, 0, &err);
    }
    pthread_mutex_lock(&tokens.mu);
    h2o_linklist_unlink(&th->link);
    pthread_mutex_unlock(&tokens.mu);
    /* No thread sends to us any more: drop a wake-up still queued, then the receiver. */
    if (h2o_linklist_is_linked(&th->wake.link))
        h2o_linklist_unlink(&th->wake.link);
    h2o_multithread_unregister_receiver(th->ctx->queue, &th->receiver);
    while (!h2o_linklist_is_empty(&th->waiters))
        h2o_linklist_unlink(th->waiters.next);
    free(th);
}

void lfs_gcs_token_thread_cleanup(void)
{
    struct token_thread *th = token_thread;
    token_thread = NULL;
    if (th != NULL)
        thread_release(th);
}

static struct token_thread *thread_get(h2o_context_t *ctx)
{
    struct token_thread *th = token_thread;
    if (th != NULL && th->ctx == ctx)
        return th;
    /* A thread that moved on to another context (tests do) starts afresh. */
    lfs_gcs_token_thread_cleanup();
    if ((th = calloc(1, sizeof(*th))) == NULL)
        return NULL;
    th->ctx = ctx;
    h2o_linklist_init_anchor(&th->waiters);
    h2o_multithread_register_receiver(ctx->queue, &th->receiver, on_wake);
    pthread_mutex_lock(&tokens.mu);
    h2o_linklist_insert(&tokens.threads, &th->link);
    pthread_mutex_unlock(&tokens.mu);
    token_thread = th;
    return th;
}

void lfs_gcs_token_get(struct lfs_io *io, lfs_gcs_token_cb cb, void *arg)
{
    struct token_thread *th = thread_get(io->ctx);
    if (th == NULL) {
        struct lfs_error err;
        lfs_error_set(&err, 503, "gcs storage: out of memory asking for an access token");
        cb(arg, NULL, &err);
        return;
    }
    uint64_t now = now_ms();
    pthread_mutex_lock(&tokens.mu);
    if (tokens.token != NULL && now < tokens.usable_until) {
        const char *token = h2o_strdup(io->pool, tokens.token, SIZE_MAX).base;
        bool refresh = now >= tokens.refresh_at && !tokens.fetching;
        if (refresh) {
            tokens.fetching = true;
            tokens.started++;
        }
        pthread_mutex_unlock(&tokens.mu);
        if (refresh)
            fetch_start(th);
        cb(arg, token, NULL);
        return;
    }
    bool start = !tokens.fetching;
    if (start) {
        tokens.fetching = true;
        tokens.started++;
    }
    struct token_waiter *w = h2o_mem_alloc_shared(io->pool, sizeof(*w), waiter_dispose);
    *w = (struct token_waiter){.fetch = tokens.started, .pool = io->pool, .cb = cb, .arg = arg};
    h2o_linklist_insert(&th->waiters, &w->link);
    th->has_waiters = true;
    pthread_mutex_unlock(&tokens.mu);
    if (start)
        fetch_start(th);
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
