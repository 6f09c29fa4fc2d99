/* An LD_PRELOAD shim for the fault-injection suite (tests/faults/test_diskfull.sh): makes the
 * calls that put data on a disk fail as a full or failing disk makes them fail, for files
 * under one directory only, from the Nth call on, switched on and off while the process runs.
 *
 * Control: the file named by $LFS_FAULT_CONTROL, read at every intercepted call (tests only:
 * the cost does not matter). One line "DIR ERRNO AFTER [CALLS]": calls on files under DIR fail
 * with ERRNO (ENOSPC, EIO, EDQUOT) once AFTER such calls have passed; CALLS is a comma list of
 * write, fsync, rename, link, fallocate (default: all of them; write covers write, pwrite and
 * writev, fsync covers fsync and fdatasync). With ENOSPC or EDQUOT, statvfs of a path under
 * DIR reports no space left, as a full filesystem does. An empty or missing file: no faults.
 * A change of the line starts the count again. Calls on sockets, pipes and files elsewhere
 * are never touched. */
/* Both names of the offset-taking calls are defined below (a 64-bit offset build calls the
 * *64 ones, libh2o the plain ones): the header must not rename them. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum call { CALL_WRITE = 1, CALL_FSYNC = 2, CALL_RENAME = 4, CALL_LINK = 8, CALL_FALLOCATE = 16 };

struct control {
    char dir[PATH_MAX];
    int err;
    long after;
    unsigned calls;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char last_line[PATH_MAX + 64];
static long seen; /* matching calls since the line last changed */

/* Reads the control file with raw syscalls (nothing here may come back into the shim).
 * Returns false when there is no fault to inject. */
static bool read_control(struct control *c)
{
    const char *path = getenv("LFS_FAULT_CONTROL");
    if (path == NULL)
        return false;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char line[PATH_MAX + 64];
    ssize_t n = syscall(SYS_read, fd, line, sizeof(line) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return false;
    line[n] = '\0';
    char err[16], calls[64] = "";
    if (sscanf(line, "%4095s %15s %ld %63s", c->dir, err, &c->after, calls) < 3)
        return false;
    c->err = strcmp(err, "EIO") == 0      ? EIO
             : strcmp(err, "EDQUOT") == 0 ? EDQUOT
             : strcmp(err, "ENOSPC") == 0 ? ENOSPC
                                          : 0;
    if (c->err == 0)
        return false;
    c->calls = 0;
    if (calls[0] == '\0')
        c->calls = ~0u;
    for (char *s = calls, *tok; (tok = strtok_r(s, ",", &s)) != NULL;)
        c->calls |= strcmp(tok, "write") == 0       ? CALL_WRITE
                    : strcmp(tok, "fsync") == 0     ? CALL_FSYNC
                    : strcmp(tok, "rename") == 0    ? CALL_RENAME
                    : strcmp(tok, "link") == 0      ? CALL_LINK
                    : strcmp(tok, "fallocate") == 0 ? CALL_FALLOCATE
                                                    : 0;
    pthread_mutex_lock(&lock);
    if (strcmp(line, last_line) != 0) {
        snprintf(last_line, sizeof(last_line), "%s", line);
        seen = 0;
    }
    pthread_mutex_unlock(&lock);
    return true;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The absolute path of a path argument (relative ones against the cwd). */
static void absolute(const char *path, char *out, size_t size)
{
    if (path[0] == '/') {
        snprintf(out, size, "%s", path);
        return;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = '\0';
    snprintf(out, size, "%s/%s", cwd, path);
}

/* Returns the errno to fail with, or 0 to let the call through. */
static int decide(enum call call, int fd, const char *path1, const char *path2)
{
    struct control c;
    if (!read_control(&c) || !(c.calls & call))
        return 0;
    bool match = false;
    char p[PATH_MAX];
    if (fd >= 0) {
        struct stat sb;
        char link[64];
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
            return 0;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, p, sizeof(p) - 1);
        if (n <= 0)
            return 0;
        p[n] = '\0';
        match = under(p, c.dir);
    }
    if (path1 != NULL) {
        absolute(path1, p, sizeof(p));
        match = match || under(p, c.dir);
    }
    if (path2 != NULL) {
        absolute(path2, p, sizeof(p));
        match = match || under(p, c.dir);
    }
    if (!match)
        return 0;
    pthread_mutex_lock(&lock);
    bool fail = seen++ >= c.after;
    pthread_mutex_unlock(&lock);
    return fail ? c.err : 0;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t write(int fd, const void *buf, size_t n)
{
    int e = decide(CALL_WRITE, fd, NULL, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("write", ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    int e = decide(CALL_WRITE, fd, NULL, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    return pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    int e = decide(CALL_WRITE, fd, NULL, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("writev", ssize_t(*)(int, const struct iovec *, int))(fd, iov, cnt);
}

int fsync(int fd)
{
    int e = decide(CALL_FSYNC, fd, NULL, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    int e = decide(CALL_FSYNC, fd, NULL, NULL);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("fdatasync", int (*)(int))(fd);
}

int rename(const char *from, const char *to)
{
    int e = decide(CALL_RENAME, -1, from, to);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("rename", int (*)(const char *, const char *))(from, to);
}

int link(const char *from, const char *to)
{
    int e = decide(CALL_LINK, -1, from, to);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return REAL("link", int (*)(const char *, const char *))(from, to);
}

/* posix_fallocate returns the error instead of setting errno. h2o reserves its spool files
 * (request bodies spilled to spool_dir) with it. */
int posix_fallocate(int fd, off_t off, off_t len)
{
    int e = decide(CALL_FALLOCATE, fd, NULL, NULL);
    if (e != 0)
        return e;
    return REAL("posix_fallocate", int (*)(int, off_t, off_t))(fd, off, len);
}

int posix_fallocate64(int fd, off64_t off, off64_t len)
{
    return posix_fallocate(fd, off, len);
}

/* A full filesystem says so: no blocks available under DIR while ENOSPC/EDQUOT is on. */
static bool reports_full(const char *path)
{
    struct control c;
    char p[PATH_MAX];
    if (!read_control(&c) || (c.err != ENOSPC && c.err != EDQUOT))
        return false;
    absolute(path, p, sizeof(p));
    return under(p, c.dir);
}

int statvfs(const char *path, struct statvfs *out)
{
    int rc = REAL("statvfs", int (*)(const char *, struct statvfs *))(path, out);
    if (rc == 0 && reports_full(path))
        out->f_bavail = out->f_bfree = 0;
    return rc;
}

int statvfs64(const char *path, struct statvfs64 *out)
{
    int rc = REAL("statvfs64", int (*)(const char *, struct statvfs64 *))(path, out);
    if (rc == 0 && reports_full(path))
        out->f_bavail = out->f_bfree = 0;
    return rc;
}
