/* Workload identity for the GCS backend (giftless's serviceaccount_email, GKE Workload Identity):
 * no key file in the pod. lfsgate acts with the pod's OAuth access token, which the GCE
 * metadata server hands out, and has the IAM Credentials API sign its V4 URLs as the service
 * account (signBlob), as giftless does through google-cloud-storage. Everything that does I/O is
 * asynchronous on the calling worker's loop (storage/http_client.h) and owned by the request
 * pool; the token is one per process, shared by the worker threads; signatures are cached per
 * backend. Internal to storage/. */
#ifndef LFS_STORAGE_GCS_IAM_H
#define LFS_STORAGE_GCS_IAM_H

#include <stddef.h>
#include <time.h>

#include "common/error.h"
#include "storage/gcs_sign.h"
#include "storage/storage.h"

#define LFS_GCS_IAM_DEFAULT_ENDPOINT "https://iamcredentials.googleapis.com"
/* What GCE_METADATA_HOST defaults to, as in Google's client libraries. */
#define LFS_GCS_METADATA_DEFAULT_HOST "metadata.google.internal"

/* ---- the access token (process-wide) ---- */

/* Points the token source at the metadata server "http://host[:port]" (no trailing '/'); the
 * token is asked of <base>/computeMetadata/v1/instance/service-accounts/default/token. A
 * token already held is kept when the base does not change. Returns 0, or -1 with err 500
 * (out of memory). Any thread (the main thread, when a backend is created). */
int lfs_gcs_token_configure(const char *metadata_base_url, struct lfs_error *err);

/* token: "Bearer" access token copied into the request pool, or NULL with err (503 naming the
 * metadata server). */
typedef void (*lfs_gcs_token_cb)(void *arg, const char *token, const struct lfs_error *err);

/* Calls cb once, on this loop thread, with an access token valid for a while yet: at once (before
 * returning) while the held one is fresh, starting a refresh in the background once it is past
 * half its life; otherwise after the one fetch in flight across all threads (started here if
 * there is none) completes, within its deadline. Disposing io->pool first cancels the wait (no
 * callback). Needs lfs_gcs_token_configure first. Loop thread. */
void lfs_gcs_token_get(struct lfs_io *io, lfs_gcs_token_cb cb, void *arg);

/* Parses the metadata server's answer {"access_token", "expires_in", "token_type"}. Returns 0
 * with *token (malloc'd, the caller frees; printable ASCII only, so it is safe in a header) and
 * *expires_in (> 0 seconds), or -1 with err 502 saying what is wrong (never quoting the token).
 * Any thread. */
int lfs_gcs_token_parse(const char *body, size_t len, char **token, long *expires_in,
                        struct lfs_error *err);

/* ---- signBlob ---- */

/* Signing as one service account through IAM signBlob, with its cache of signatures. */
struct lfs_gcs_iam;

/* For the account `email` (checked: one '@', [A-Za-z0-9._+-]) at `iam_base_url`
 * ("http(s)://host[:port]"). Returns 0, or -1 with err 500 (the caller prefixes the option
 * path). Freed with lfs_gcs_iam_destroy. Main thread. */
int lfs_gcs_iam_create(const char *email, const char *iam_base_url, struct lfs_gcs_iam **out,
                       struct lfs_error *err);
void lfs_gcs_iam_destroy(struct lfs_gcs_iam *iam);
const char *lfs_gcs_iam_email(const struct lfs_gcs_iam *iam);

/* The X-Goog-Date and X-Goog-Expires of a URL that must stay valid for `lifetime` seconds from
 * `now` (1..LFS_GCS_MAX_EXPIRES): the date rounded down to a window of lifetime / 8 (at most
 * 10 minutes) and the lifetime stretched by one window, so every URL for the same object and
 * action signed within one window is the same string, and one signBlob serves them all while
 * each still lives at least `lifetime` seconds. Any thread. */
void lfs_gcs_iam_window(time_t now, long lifetime, time_t *date, long *expires);

/* url: the signed URL in the request pool, or NULL with err (503 naming the IAM API or the
 * metadata server; 500 for bad input). */
typedef void (*lfs_gcs_url_cb)(void *arg, const char *url, const struct lfs_error *err);

/* Signs `in` as the account: from the cache when the same string to sign was signed before,
 * otherwise with one signBlob call using the access token (lfs_gcs_token_get). cb is called
 * once, on this loop thread, possibly before this returns; disposing io->pool first cancels it.
 * Loop thread; many signs may be in flight at once (one signBlob call each). */
void lfs_gcs_iam_sign(struct lfs_gcs_iam *iam, struct lfs_io *io,
                      const struct lfs_gcs_sign_input *in, lfs_gcs_url_cb cb, void *arg);

/* Parses a signBlob answer {"keyId", "signedBlob": base64}: the signature's raw bytes into
 * sig (LFS_GCS_MAX_SIGNATURE bytes of room), their number into *len. Returns 0, or -1 with err
 * 502 saying what is wrong. Any thread. */
int lfs_gcs_signblob_parse(const char *body, size_t len, unsigned char *sig, size_t *siglen,
                           struct lfs_error *err);

#endif
