/* JSON lines on stdout: one access-log line per request, and activity-log lines
 * ("_type": "ActivityLog") for what data governance needs to see: one line per batch (what
 * was asked and granted, counted), and a line per object stored, verified, served, refused,
 * and per access denied (the schema is in the README). Never a token, key or signature:
 * paths are logged without their query, identities by sub and name only. */
#ifndef LFS_SERVER_LOGS_H
#define LFS_SERVER_LOGS_H

#include <stdint.h>

struct lfs_request;

/* Writes the access-log line for a finished request (when SERVER.access_log is on). */
void lfs_log_access(struct lfs_request *r, double seconds);

/* Writes one activity-log line (when SERVER.activity_log is on). oid may be NULL (repository
 * level), size < 0 when unknown; result is e.g. "granted", "verified", "denied". */
void lfs_log_activity(struct lfs_request *r, const char *action, const char *oid, int64_t size,
                      const char *result, const char *message);

/* What one batch answer held: objects asked for, the sum of their sizes, objects given
 * actions (and their bytes), objects needing none (already stored) and per-object errors. */
struct lfs_log_batch_counts {
    uint64_t objects, bytes, granted, granted_bytes, present, errors;
};

/* Writes the one activity-log line of a batch answer (when SERVER.activity_log is on):
 * operation ("upload" or "download"), who, which repository and the counts. Per-object lines
 * are the caller's (lfs_log_activity). Any thread serving the request may call it. */
void lfs_log_batch(struct lfs_request *r, const char *operation,
                   const struct lfs_log_batch_counts *c);

/* Writes the calling thread's pending lines now. A worker calls it when its loop stops. */
void lfs_logs_thread_flush(void);

#endif
