/* Process log: one line per event on stderr, with time and level. Never pass a token,
 * signature or key to these functions. */
#ifndef LFS_COMMON_LOG_H
#define LFS_COMMON_LOG_H

enum lfs_log_level { LFS_LOG_DEBUG, LFS_LOG_INFO, LFS_LOG_WARN, LFS_LOG_ERROR };

/* Lowest level written; LFS_LOG_INFO unless DEBUG is set in the config. */
void lfs_log_set_level(enum lfs_log_level level);

/* Writes one line atomically (a single write(2)). Any thread. */
void lfs_log(enum lfs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
