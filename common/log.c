/* Minimal line logger: formats into a stack buffer and writes it with one write(2) so
 * lines from worker threads never interleave. The message is made printable (common/text.h)
 * because it may quote request bytes: a newline or an escape sequence in it must not forge a
 * line or reach an operator's terminal. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/text.h"

static enum lfs_log_level min_level = LFS_LOG_INFO;

void lfs_log_set_level(enum lfs_log_level level)
{
    min_level = level;
}

void lfs_log(enum lfs_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ lfsgate %s: ", ts.tv_nsec / 1000000,
                  names[level]);
    char text[sizeof(line)];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (m < 0)
        text[0] = '\0';
    n += (int)lfs_text_printable(line + n, sizeof(line) - (size_t)n - 1, text, strlen(text));
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
