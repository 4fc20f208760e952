/* zplan.c — the ZeRO paper's per-rank model-state bytes (zplan.h), through the one
 * formula of the plan (mt_wl_zero_states, workloads/common/wlplan.h). */
#include "zplan.h"

#include "wlplan.h"

void mt_zero_bytes(double psi, double n, int stage, int mixed, struct mt_zero_bytes *b)
{
    double w = mixed ? 2.0 : 4.0, k = mixed ? 12.0 : 8.0;
    struct mt_wl_zero_states z;
    mt_wl_zero_states(psi, n >= 1.0 ? (size_t)n : 1, stage, w, w, k, &z);
    b->weights = z.weights;
    b->gradients = z.gradients;
    b->optimizer = z.optimizer;
    b->total = b->weights + b->gradients + b->optimizer;
}
