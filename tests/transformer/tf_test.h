/* tf_test.h — assertion macros for the transformer tests (print and exit non-zero). */
#ifndef MT_TF_TEST_H
#define MT_TF_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "mt_check.h"

#define CHECK(cond) MT_CHECK_OR(exit(1), cond, #cond, "%s", "")

/* Checks that a call returned 0; prints the error message otherwise. */
#define CHECK_OK(call, msg) MT_CALL_OK_OR(exit(1), call, #call, msg)

#endif
