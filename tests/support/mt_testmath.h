/* mt_testmath.h — the distances the numeric tests compare float vectors with.
 *
 * What it is for: one loop for the sums behind a relative L2 distance ||a - b|| / ||b||,
 * accumulated in double so the measure itself adds no float rounding; each test keeps
 * its own rule for a zero reference. What it is not for: tolerances (each test states
 * its own) or elementwise checks.
 */
#ifndef MT_TESTS_TESTMATH_H
#define MT_TESTS_TESTMATH_H

#include <stddef.h>

/* Sets *d2 to the squared L2 distance of a and b (n floats each) and *b2 to the squared
 * L2 norm of b, both summed in double in index order. */
static inline void mt_test_l2(const float *a, const float *b, size_t n, double *d2, double *b2)
{
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    *d2 = d;
    *b2 = r;
}

#endif
