/* tf_test.h — assertion macros for the transformer tests (print and exit non-zero), the
 * runner of a test's named parts, and whole-file reads and writes for the tests that
 * damage model files. */
#ifndef MT_TF_TEST_H
#define MT_TF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_check.h"

#define CHECK(cond) MT_CHECK_OR(exit(1), cond, #cond, "%s", "")

/* Checks that a call returned 0; prints the error message otherwise. */
#define CHECK_OK(call, msg) MT_CALL_OK_OR(exit(1), call, #call, msg)

/* Reads the whole file p into a malloc'd buffer (one spare byte after the *n bytes read,
 * for a terminator); exits through CHECK when the file cannot be read. The caller frees. */
static inline unsigned char *tf_slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    CHECK(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    CHECK(fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

/* Writes n bytes of b to the file p (created or truncated); exits through CHECK when the
 * write fails. */
static inline void tf_spit(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* A named part of a test program. */
struct tf_part {
    const char *name;
    void (*fn)(void);
};

/* Runs the parts named in argv[1..] (all when none is given), so ctest can split the
 * work; fails when no part ran; prints "ok". */
static inline int tf_run_parts(const struct tf_part *parts, size_t n, int argc, char **argv)
{
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++)
            want |= !strcmp(argv[a], parts[i].name);
        if (want) {
            parts[i].fn();
            ran++;
        }
    }
    CHECK(ran > 0);
    printf("ok\n");
    return 0;
}

#endif
