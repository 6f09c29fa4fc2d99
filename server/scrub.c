/* `lfsgate scrub`: the operator's check that what lfsgate says is stored is stored, byte for
 * byte. For each storage of the configuration (each transfer adapter's), it enumerates the
 * stored objects with the backend's scan op, a page at a time, reads each object through the
 * backend's open op (the same path a download takes) and hashes it: an object whose SHA-256
 * is not its oid is corrupt, one whose bytes differ in number from what the store lists is a
 * size mismatch. --quarantine moves such objects aside with the backend's quarantine op, so
 * that stat says "missing" and the next batch asks clients for an upload.
 *
 * It runs one h2o event loop on the main thread, like a worker: remote stores are read with
 * up to --concurrency objects in flight through the loop's HTTP client. Memory stays bounded:
 * one page of names at a time, and per object in flight a pool and a read buffer. On a TTY
 * a progress line (objects, bytes, rate, ETA) goes to stderr; the totals come from a first,
 * listing-only pass. Findings go to stdout, as text or (--json) one JSON document. */
#include "server/scrub.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "server/app.h"
#include "storage/storage.h"

#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 256
/* Findings kept for the JSON summary; past that only counted. */
#define MAX_FINDINGS 10000

struct scrub;

/* One object being read and hashed. malloc'd (not in its pool: the pool is cleared while the
 * job lives on for the next object). */
struct scrub_job {
    struct scrub *s;
    h2o_mem_pool_t pool;
    struct lfs_io io;
    struct lfs_object_key key; /* in the pool */
    int64_t size;              /* as listed */
    uint64_t got;
    bool busy;
    char sha256[65];
    char message[256];
    h2o_timeout_entry_t done; /* the job finishes on the next loop turn, out of any callback */
};

struct scrub {
    struct lfs_storage *storage;
    const char *adapter; /* the transfer name, for messages */
    h2o_context_t *ctx;
    bool json, quarantine, tty, counting;
    int concurrency;
    /* the cursor and its current page */
    struct lfs_storage_scan *scan;
    h2o_mem_pool_t page_pool;
    const struct lfs_storage_scan_page *page;
    size_t next;        /* next entry of page to start */
    bool listing, done; /* a scan_next in flight; no page left */
    /* scan_next is called from the loop: a backend that answers at once (local) would
     * otherwise recurse once per page */
    h2o_timeout_entry_t list_entry;
    int running;
    struct scrub_job *jobs;
    /* totals */
    uint64_t total_objects, total_bytes; /* from the counting pass (TTY only) */
    uint64_t objects, bytes, ok, corrupt, mismatch, unreadable, quarantined;
    bool list_failed;
    struct timespec started, last_progress;
    json_t *findings;
};

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lfsgate scrub [--config FILE] [--repo ORG_PATH/REPO] [--json] [--quarantine]\n"
            "                     [--concurrency N]\n"
            "Reads every object of the configured storage and checks that it hashes to its oid.\n\n"
            "  --config FILE      the server's config (else as the server finds it)\n"
            "  --repo ORG/REPO    only this repository (ORG may have several segments)\n"
            "  --json             print a JSON summary instead of text\n"
            "  --quarantine       move corrupt objects aside, so clients upload them again\n"
            "  --concurrency N    objects read at once from a remote store (default %d)\n\n"
            "Exit status: 0 all intact, 1 corrupt or size mismatch found, 2 usage or config\n"
            "error, 3 some objects could not be read.\n",
            DEFAULT_CONCURRENCY);
}

/* ---- findings ---- */

static void report(struct scrub *s, const struct scrub_job *j, const char *kind, const char *hash,
                   const char *message, bool quarantined)
{
    if (!s->json) {
        printf("%s %s/%s %s (size %" PRId64 "): %s%s\n", kind, j->key.org_path, j->key.repo,
               j->key.oid, j->size, message, quarantined ? "; quarantined" : "");
        fflush(stdout);
        return;
    }
    if (json_array_size(s->findings) >= MAX_FINDINGS)
        return;
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "kind", kind, "storage",
                          s->adapter, "org_path", j->key.org_path, "repo", j->key.repo, "oid",
                          j->key.oid, "size", (json_int_t)j->size, "bytes_read", (json_int_t)j->got,
                          "message", message, "quarantined", quarantined);
    if (f != NULL && hash != NULL)
        json_object_set_new(f, "sha256", json_string(hash));
    json_array_append_new(s->findings, f);
}

static void progress(struct scrub *s, bool final)
{
    if (!s->tty)
        return;
    if (!final && since(&s->last_progress) < 0.2)
        return;
    clock_gettime(CLOCK_MONOTONIC, &s->last_progress);
    double t = since(&s->started), rate = t > 0 ? (double)s->bytes / t : 0;
    char eta[32] = "--:--";
    if (rate > 0 && s->total_bytes >= s->bytes) {
        long left = (long)((double)(s->total_bytes - s->bytes) / rate);
        snprintf(eta, sizeof(eta), "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
    }
    int width = 24, fill = s->total_bytes > 0 ? (int)(width * s->bytes / s->total_bytes)
                                              : (s->total_objects > 0 ? width : 0);
    if (fill > width)
        fill = width;
    fprintf(stderr,
            "\r%s: [%.*s%.*s] %" PRIu64 "/%" PRIu64 " objects  %.1f/%.1f MiB  %.1f MiB/s  ETA %s"
            "  bad %" PRIu64 " ",
            s->adapter, fill, "########################", width - fill, "........................",
            s->objects, s->total_objects, (double)s->bytes / 1048576.0,
            (double)s->total_bytes / 1048576.0, rate / 1048576.0, eta,
            s->corrupt + s->mismatch + s->unreadable);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- one object ---- */

static void start_jobs(struct scrub *s);

static void job_finish(struct scrub_job *j)
{
    h2o_timeout_link(j->s->ctx->loop, &j->s->ctx->zero_timeout, &j->done);
}

static const char *job_kind(const struct scrub_job *j)
{
    return j->got != (uint64_t)j->size ? "size_mismatch" : "corrupt";
}

static void on_quarantined(void *arg, const struct lfs_error *err)
{
    struct scrub_job *j = arg;
    char message[1024];
    int n = snprintf(message, sizeof(message), "%s", j->message);
    if (err != NULL)
        snprintf(message + n, sizeof(message) - (size_t)n, "; could not quarantine it: %s",
                 err->message);
    j->s->quarantined += err == NULL;
    report(j->s, j, job_kind(j), j->sha256, message, err == NULL);
    job_finish(j);
}

/* The object was read to its end (result), or could not be (err). */
static void on_checked(void *arg, const struct lfs_storage_check_result *result,
                       const struct lfs_error *err)
{
    struct scrub_job *j = arg;
    struct scrub *s = j->s;
    if (err != NULL) {
        s->unreadable++;
        report(s, j, "unreadable", NULL, err->message, false);
        job_finish(j);
        return;
    }
    j->got = result->bytes;
    s->bytes += result->bytes;
    if (result->matches) {
        s->ok++;
        job_finish(j);
        return;
    }
    memcpy(j->sha256, result->sha256, sizeof(j->sha256));
    if (j->got != (uint64_t)j->size) {
        s->mismatch++;
        snprintf(j->message, sizeof(j->message),
                 "the store lists %" PRId64 " bytes but %" PRIu64 " were read", j->size, j->got);
    } else {
        s->corrupt++;
        snprintf(j->message, sizeof(j->message), "its content hashes to %s, not to its oid",
                 j->sha256);
    }
    if (!s->quarantine || s->storage->ops->quarantine == NULL) {
        report(s, j, job_kind(j), j->sha256, j->message, false);
        job_finish(j);
        return;
    }
    s->storage->ops->quarantine(s->storage, &j->io, &j->key, on_quarantined, j);
}

/* Next loop turn after the job ended: release what it held, take the next object. */
static void on_job_done(h2o_timeout_entry_t *entry)
{
    struct scrub_job *j = H2O_STRUCT_FROM_MEMBER(struct scrub_job, done, entry);
    struct scrub *s = j->s;
    h2o_mem_clear_pool(&j->pool);
    j->busy = false;
    s->running--;
    s->objects++;
    progress(s, false);
    start_jobs(s);
}

static void job_start(struct scrub_job *j, const struct lfs_storage_scan_entry *e)
{
    struct scrub *s = j->s;
    j->busy = true;
    s->running++;
    /* The page's pool goes with the next page, maybe before this job ends: copies. */
    j->key = (struct lfs_object_key){.org_path = h2o_strdup(&j->pool, e->org_path, SIZE_MAX).base,
                                     .repo = h2o_strdup(&j->pool, e->repo, SIZE_MAX).base,
                                     .oid = h2o_strdup(&j->pool, e->oid, SIZE_MAX).base};
    j->size = e->size;
    j->got = 0;
    lfs_storage_check_content(s->storage, &j->io, &j->key, e->size, on_checked, j);
}

/* ---- the listing ---- */

static void on_page(void *arg, const struct lfs_storage_scan_page *page,
                    const struct lfs_error *err)
{
    struct scrub *s = arg;
    s->listing = false;
    if (err != NULL) {
        if (!s->json)
            printf("unreadable listing of %s: %s\n", s->adapter, err->message);
        else
            json_array_append_new(s->findings,
                                  json_pack("{s:s, s:s, s:s}", "kind", "listing", "storage",
                                            s->adapter, "message", err->message));
        s->list_failed = true;
        s->done = true;
        return;
    }
    s->page = page;
    s->next = 0;
    s->done = page->done;
    if (s->counting) {
        s->total_objects += page->n;
        for (size_t i = 0; i < page->n; i++)
            s->total_bytes += (uint64_t)page->entries[i].size;
        s->page = NULL;
    }
    start_jobs(s);
}

/* Starts objects of the current page while there is room; asks for the next page once every
 * entry of this one has started. */
static void start_jobs(struct scrub *s)
{
    while (s->page != NULL && s->next < s->page->n && s->running < s->concurrency) {
        for (int i = 0; i < s->concurrency; i++)
            if (!s->jobs[i].busy) {
                job_start(&s->jobs[i], &s->page->entries[s->next++]);
                break;
            }
    }
    if (s->listing || s->done || (s->page != NULL && s->next < s->page->n))
        return;
    s->page = NULL;
    s->listing = true;
    h2o_timeout_link(s->ctx->loop, &s->ctx->zero_timeout, &s->list_entry);
}

static void on_list_entry(h2o_timeout_entry_t *entry)
{
    struct scrub *s = H2O_STRUCT_FROM_MEMBER(struct scrub, list_entry, entry);
    h2o_mem_clear_pool(&s->page_pool);
    struct lfs_io io = {.ctx = s->ctx, .pool = &s->page_pool};
    s->storage->ops->scan_next(s->scan, &io, on_page, s);
}

/* One pass over the storage: counting only, or reading every object. */
static int run_pass(struct scrub *s, const char *org_path, const char *repo, bool counting)
{
    struct lfs_error err = {0};
    if (s->storage->ops->scan_open(s->storage, org_path, repo, &s->scan, &err) < 0) {
        fprintf(stderr, "lfsgate scrub: %s: %s\n", s->adapter, err.message);
        return -1;
    }
    s->counting = counting;
    s->done = false;
    s->list_entry.cb = on_list_entry;
    h2o_mem_init_pool(&s->page_pool);
    start_jobs(s);
    while (s->listing || s->running > 0 || (!s->done && s->page != NULL)) {
        h2o_evloop_run(s->ctx->loop, 200);
        progress(s, false);
    }
    h2o_mem_clear_pool(&s->page_pool);
    s->storage->ops->scan_close(s->scan);
    s->scan = NULL;
    return 0;
}

static int scrub_storage(struct scrub *s, const char *org_path, const char *repo)
{
    const struct lfs_storage_ops *ops = s->storage->ops;
    if (ops->scan_open == NULL) {
        fprintf(stderr,
                "lfsgate scrub: TRANSFER_ADAPTERS.%s: the %s storage backend cannot be scrubbed "
                "yet (it has no listing of all objects)\n",
                s->adapter, ops->name);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    if (s->tty && run_pass(s, org_path, repo, true) < 0)
        return -1;
    s->jobs = calloc((size_t)s->concurrency, sizeof(*s->jobs));
    if (s->jobs == NULL) {
        fprintf(stderr, "lfsgate scrub: out of memory\n");
        return -1;
    }
    for (int i = 0; i < s->concurrency; i++) {
        struct scrub_job *j = &s->jobs[i];
        j->s = s;
        h2o_mem_init_pool(&j->pool);
        j->io = (struct lfs_io){.ctx = s->ctx, .pool = &j->pool};
        j->done.cb = on_job_done;
    }
    lfs_storage_check_limit((unsigned)s->concurrency);
    int rc = run_pass(s, org_path, repo, false);
    progress(s, true);
    free(s->jobs);
    s->jobs = NULL;
    return rc;
}

/* ---- the command ---- */

struct scrub_args {
    const char *config, *org_path, *repo;
    bool json, quarantine;
    int concurrency;
};

/* Returns 0, or 2 (after a message) for a usage error. */
static int parse_args(int argc, char **argv, struct scrub_args *a, char *repo_buf, size_t size)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"repo", required_argument, NULL, 'r'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"quarantine", no_argument, NULL, 'q'},
                                            {"concurrency", required_argument, NULL, 'n'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    *a = (struct scrub_args){.concurrency = DEFAULT_CONCURRENCY};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:r:jqn:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': a->config = optarg; break;
        case 'r': {
            char *slash = strrchr(optarg, '/');
            if (slash == NULL || strlen(optarg) >= size) {
                fprintf(stderr, "lfsgate scrub: --repo: expected ORG_PATH/REPO, e.g. org/repo\n");
                return 2;
            }
            snprintf(repo_buf, size, "%s", optarg);
            repo_buf[slash - optarg] = '\0';
            a->org_path = repo_buf;
            a->repo = repo_buf + (slash - optarg) + 1;
            if (!lfs_segments_valid(a->org_path, strlen(a->org_path)) ||
                !lfs_segment_valid(a->repo, strlen(a->repo))) {
                fprintf(stderr, "lfsgate scrub: --repo: \"%s\" is not a valid ORG_PATH/REPO\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'j': a->json = true; break;
        case 'q': a->quarantine = true; break;
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > MAX_CONCURRENCY) {
                fprintf(stderr, "lfsgate scrub: --concurrency: expected a number from 1 to %d\n",
                        MAX_CONCURRENCY);
                return 2;
            }
            a->concurrency = (int)n;
            break;
        }
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lfsgate scrub: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

static void print_summary(const struct scrub *s, double seconds)
{
    if (s->json) {
        json_t *doc = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:f, s:O, s:b}", "objects",
            (json_int_t)s->objects, "bytes", (json_int_t)s->bytes, "ok", (json_int_t)s->ok,
            "corrupt", (json_int_t)s->corrupt, "size_mismatch", (json_int_t)s->mismatch,
            "unreadable", (json_int_t)s->unreadable, "quarantined", (json_int_t)s->quarantined,
            "listing_failed", s->list_failed, "seconds", seconds, "findings", s->findings,
            "findings_truncated", json_array_size(s->findings) >= MAX_FINDINGS);
        char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        printf("%s\n", text != NULL ? text : "{\"error\": \"out of memory\"}");
        free(text);
        json_decref(doc);
        return;
    }
    printf("scrub: %" PRIu64 " objects, %" PRIu64 " bytes read in %.1f s: %" PRIu64
           " intact, %" PRIu64 " corrupt, %" PRIu64 " size mismatches, %" PRIu64
           " unreadable, %" PRIu64 " quarantined%s\n",
           s->objects, s->bytes, seconds, s->ok, s->corrupt, s->mismatch, s->unreadable,
           s->quarantined, s->list_failed ? "; a listing failed (see above)" : "");
}

int lfs_scrub_main(int argc, char **argv, lfs_scrub_load_fn load)
{
    struct scrub_args a;
    char repo_buf[4096];
    int rc = parse_args(argc, argv, &a, repo_buf, sizeof(repo_buf));
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    struct lfs_error err = {0};
    struct lfs_app *app = load(a.config, &err);
    if (app == NULL) {
        fprintf(stderr, "lfsgate scrub: %s\n", err.message);
        return 2;
    }
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_config_init(&conf);
    /* h2o wants a host even for a context that serves nothing: this one only runs the loop
     * for the storage backends' timers and HTTP calls */
    h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("scrub")), 65535);
    h2o_context_init(&ctx, h2o_evloop_create(), &conf);
    struct scrub s = {.ctx = &ctx,
                      .json = a.json,
                      .quarantine = a.quarantine,
                      .tty = isatty(STDERR_FILENO) == 1,
                      .concurrency = a.concurrency,
                      .findings = json_array()};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = 0;
    for (size_t i = 0; i < app->transfers.count && status == 0; i++) {
        s.storage = app->transfers.adapters[i]->storage;
        s.adapter = app->transfers.names[i];
        s.total_objects = s.total_bytes = 0;
        if (scrub_storage(&s, a.org_path, a.repo) < 0)
            status = 2;
    }
    lfs_storage_thread_cleanup();
    if (status == 0) {
        print_summary(&s, since(&t0));
        status = s.corrupt + s.mismatch > 0 ? 1 : s.unreadable > 0 || s.list_failed ? 3 : 0;
    }
    json_decref(s.findings);
    /* The loop and context are left to process exit, as the server does (h2o 2.2.5 asserts
     * when a context with linked timers is disposed). */
    lfs_app_release(app);
    return status;
}
