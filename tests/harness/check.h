/* tests/harness/check.h — the CHECK macro of the harness unit tests: counts failures
 * instead of stopping, so one run reports every broken expectation. */
#ifndef MT_TESTS_HARNESS_CHECK_H
#define MT_TESTS_HARNESS_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#endif
