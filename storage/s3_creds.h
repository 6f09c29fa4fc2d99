/* The AWS credential chain of the S3 backend, in the AWS default order: the AWS_* environment
 * variables, the shared credentials file, web identity (EKS IRSA: a projected token exchanged
 * with STS AssumeRoleWithWebIdentity), the container credentials endpoint (ECS, EKS Pod
 * Identity) and the EC2 instance metadata service (IMDSv2). Long-term keys are read once at
 * startup; temporary keys are fetched asynchronously on a worker's loop and fetched again
 * before they expire (storage/refresh.h), shared by every thread; a request never signs with
 * expired keys, it waits for new ones. Internal to storage/. Nothing here logs a key, a token
 * or a secret, and no error message quotes one. */
#ifndef LFS_STORAGE_S3_CREDS_H
#define LFS_STORAGE_S3_CREDS_H

#include <stddef.h>
#include <time.h>

#include "common/error.h"
#include "storage/s3_sign.h"
#include "storage/storage.h"

/* Where a backend's keys come from. */
struct lfs_s3_creds;

/* Walks the chain and settles on the first source that is configured. `sts_endpoint` is the
 * backend's option (NULL: AWS_STS_ENDPOINT, else STS's regional endpoint in `region`).
 * Returns 0 with *out (freed with lfs_s3_creds_free), or -1 with err 500 naming what was
 * wrong, or every source tried when none is configured (the caller prefixes the option path).
 * Main thread. */
int lfs_s3_creds_load(const char *region, const char *sts_endpoint, struct lfs_s3_creds **out,
                      struct lfs_error *err);
void lfs_s3_creds_free(struct lfs_s3_creds *c);

/* Where the keys come from, for the startup log ("the environment", "web identity (STS ...)").
 * Any thread. */
const char *lfs_s3_creds_source(const struct lfs_s3_creds *c);

/* cred: keys valid for a while yet, in the request pool; or NULL with err (503 naming the
 * source that failed and what to check). */
typedef void (*lfs_s3_creds_cb)(void *arg, const struct lfs_s3_credentials *cred,
                                const struct lfs_error *err);

/* Calls cb once, on this loop thread: before returning with long-term keys or fresh temporary
 * ones, otherwise once the fetch in flight completes. Disposing io->pool first cancels it.
 * Loop thread. */
void lfs_s3_creds_get(struct lfs_s3_creds *c, struct lfs_io *io, lfs_s3_creds_cb cb, void *arg);

/* Parses an STS AssumeRoleWithWebIdentity answer (XML) into *secret (malloc'd, the caller
 * frees: "<key id>\n<secret key>\n<session token>") and *lifetime (seconds from `now` to its
 * Expiration, > 0). Returns 0, or -1 with err 502 saying what is wrong (never quoting a key).
 * Any thread. */
int lfs_s3_sts_parse(const char *body, size_t len, time_t now, char **secret, long *lifetime,
                     struct lfs_error *err);

/* The same for the JSON of the container endpoint and of IMDS ({"AccessKeyId",
 * "SecretAccessKey", "Token", "Expiration"}). Any thread. */
int lfs_s3_json_creds_parse(const char *body, size_t len, time_t now, char **secret, long *lifetime,
                            struct lfs_error *err);

#endif
