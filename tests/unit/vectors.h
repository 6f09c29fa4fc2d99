/* Helpers of the unit tests that compare output with published test vectors (signatures of
 * the cloud stores): a whole file read into memory, and a comparison of two strings that
 * prints where they first differ. Include after cmocka.h. */
#ifndef LFS_TESTS_UNIT_VECTORS_H
#define LFS_TESTS_UNIT_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file, NUL-terminated, malloc'd (the caller frees it); *len gets its length.
 * Fails the test when it cannot be read. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Prints where two strings first differ (cmocka's own message shows only both in full). */
static inline void expect_same(const char *what, const char *desc, const char *want,
                               const char *got)
{
    if (strcmp(want, got) == 0)
        return;
    size_t i = 0;
    while (want[i] != '\0' && want[i] == got[i])
        i++;
    print_error("vector \"%s\": %s differs at byte %zu\n  want: %s\n  got:  %s\n", desc, what, i,
                want, got);
    fail();
}

#endif
