/* qcheck.h — the CHECK macro the quantize tests share.
 *
 * What it is for: recording a failed expectation with its location and message and
 * carrying on, so one run lists every failure; main() turns `failures` into the exit
 * status. What it is not for: anything outside tests/quantize.
 */
#ifndef MT_TESTS_QCHECK_H
#define MT_TESTS_QCHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#endif
