/* results/pareto.c — the Pareto front (contract in pareto.h). */
#include "pareto.h"

#include <math.h>

void mt_pareto_mark(const double *x, const double *y, const size_t *group, size_t n, int x_higher,
                    int y_higher, int *on_front)
{
    /* Signs turn "higher is better" into "lower is better", so one test serves. */
    double sx = x_higher ? -1.0 : 1.0, sy = y_higher ? -1.0 : 1.0;
    for (size_t i = 0; i < n; i++) {
        on_front[i] = !isnan(x[i]) && !isnan(y[i]);
        for (size_t j = 0; j < n && on_front[i]; j++) {
            if (j == i || isnan(x[j]) || isnan(y[j]) || (group && group[j] != group[i])) continue;
            double xi = sx * x[i], yi = sy * y[i], xj = sx * x[j], yj = sy * y[j];
            if (xj <= xi && yj <= yi && (xj < xi || yj < yi)) on_front[i] = 0;
        }
    }
}
