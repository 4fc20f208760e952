/* results/pareto.h — the one definition of the Pareto front in memtrade.
 *
 * What it is for: deciding which points of a trade-off are on the front, for
 * `memtrade query pareto` (store_read.c), the plots and the report (plots/). A point is
 * on the front when no other point of its group is at least as good on both axes and
 * strictly better on one; points of different groups (another sweep, memory kind, text
 * scored or training budget: whatever the caller says may not be compared) never
 * dominate each other. What it is not for: choosing the points or their groups (the
 * callers know their axes), or reading the database. Pure C, no SQLite.
 */
#ifndef MEMTRADE_RESULTS_PARETO_H
#define MEMTRADE_RESULTS_PARETO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Contract: sets on_front[i] to 1 for every point i on the front of its group and to 0
 * for the others. x[i], y[i]: the point; x_higher / y_higher: 1 when a higher value is
 * better on that axis (metrics.h says which), 0 when lower is. group: n group numbers
 * (points compare only within equal numbers), or NULL for one group. A point with a NaN
 * coordinate is never on the front and never dominates. O(n^2); n is a sweep's points.
 * Pure: no allocation, thread-safe. */
void mt_pareto_mark(const double *x, const double *y, const size_t *group, size_t n, int x_higher,
                    int y_higher, int *on_front);

#ifdef __cplusplus
}
#endif
#endif
