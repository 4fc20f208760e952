/* tf_test.h — assertion macros for the transformer tests (print and exit non-zero). */
#ifndef MT_TF_TEST_H
#define MT_TF_TEST_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Checks that a call returned 0; prints the error message otherwise. */
#define CHECK_OK(call, msg)                                                                        \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, msg);             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
