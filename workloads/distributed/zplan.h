/* zplan.h — the ZeRO paper's model-state bytes per rank (Rajbhandari et al. 2020,
 * section 5 and Figure 1), the prediction the zero workload reports beside what its
 * ledger measures.
 *
 * What it is for: weights, gradients and optimizer bytes of psi parameters on one of N
 * data-parallel ranks at ZeRO stage 0 (plain data parallel) to 3, in the paper's mixed
 * precision (2-byte weights and gradients, K = 12 bytes of fp32 master weights, m and v a
 * parameter) or memtrade's fp32 (4, 4, K = 8). Stage 1 divides the optimizer state by N,
 * stage 2 also the gradients, stage 3 also the weights. Figure 1's 7.5B parameters on 64
 * GPUs give 120 / 31.4 / 16.6 / 1.9 GB (tests/distributed/test_zplan.c).
 * What it is not for: what the engine holds beyond the model states (the gather and
 * gradient windows, activations: train.h's result and the tests derive those exactly), or
 * a balanced split's one float of rounding (the formula divides exactly).
 */
#ifndef MT_DIST_ZPLAN_H
#define MT_DIST_ZPLAN_H

#include <stddef.h>

struct mt_zero_bytes {
    double weights, gradients, optimizer, total;
};

/* Fills *b for psi parameters over n ranks (n >= 1) at stage 0..3 (other stages: as 3),
 * mixed = 1: the paper's mixed precision, 0: fp32. Pure; thread-safe. */
void mt_zero_bytes(double psi, double n, int stage, int mixed, struct mt_zero_bytes *b);

#endif
