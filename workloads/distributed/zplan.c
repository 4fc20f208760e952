/* zplan.c — the ZeRO paper's per-rank model-state bytes (zplan.h). */
#include "zplan.h"

void mt_zero_bytes(double psi, double n, int stage, int mixed, struct mt_zero_bytes *b)
{
    double w = mixed ? 2.0 : 4.0, k = mixed ? 12.0 : 8.0;
    b->weights = w * psi / (stage >= 3 ? n : 1.0);
    b->gradients = w * psi / (stage >= 2 ? n : 1.0);
    b->optimizer = k * psi / (stage >= 1 ? n : 1.0);
    b->total = b->weights + b->gradients + b->optimizer;
}
