/* heap_test.h — the CHECK macro shared by the heap profiler's test programs.
 *
 * What it is for: counting failed assertions and printing each with its line, so a test
 * reports every mismatch instead of stopping at the first. Not for anything else.
 */
#ifndef MT_HEAP_TEST_H
#define MT_HEAP_TEST_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

#endif
