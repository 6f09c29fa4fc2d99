/* What every fuzz target of tests/fuzz shares: the libFuzzer entry point each target file
 * defines (one target per file, a few lines around the real parser), a check that aborts so
 * both libFuzzer and the replay runner (replay.c) count a broken property as a crash, and a
 * splitter for targets that take several inputs (headers, files, variables) from one. */
#ifndef LFS_TESTS_FUZZ_H
#define LFS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs the parser under test on data[0..size). Returns 0 (libFuzzer's contract); a broken
 * property aborts. Called by libFuzzer or replay.c, on the main thread. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition when cond is false: a property of the parser broke. */
#define LFS_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* One part of a split input: not NUL-terminated, points into the input. */
struct lfs_fuzz_part {
    const char *base;
    size_t len;
};

/* Splits data[0..size) at each occurrence of the byte sequence sep (seplen bytes) into at
 * most max parts (the last part keeps any further separators). Returns the number of parts
 * (at least 1: an input without sep is one part, so plain real-world seeds stay usable). */
size_t lfs_fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t seplen,
                      struct lfs_fuzz_part *parts, size_t max);

/* A NUL-terminated malloc'd copy of part (the parsers under test that take C strings need
 * one). The caller frees it. Aborts when out of memory. */
char *lfs_fuzz_strdup(struct lfs_fuzz_part part);

#endif
