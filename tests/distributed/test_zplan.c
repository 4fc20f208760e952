/* test_zplan.c — the ZeRO paper's Figure 1 from the zero workload's own prediction
 * (zplan.h): 7.5B parameters, 64 GPUs, mixed-precision Adam (K = 12), per GPU 120 /
 * 31.4 / 16.6 / 1.9 GB for data parallel and stages 1 / 2 / 3 (the paper rounds to 0.1
 * GB: each within 0.05e9 bytes, data parallel exactly 16 psi); fp32 (memtrade's engine,
 * K = 8) divides each category as the stage says. The measured side (the ledger's
 * per-rank bytes equal to this prediction within one float) is distributed.zero*. */
#include <math.h>
#include <stdio.h>

#include "mt_check.h"
#include "zplan.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

int main(void)
{
    const double psi = 7.5e9, n = 64, paper[4] = {120e9, 31.4e9, 16.6e9, 1.9e9};
    struct mt_zero_bytes b;
    printf("ZeRO Fig. 1: psi 7.5e9, N 64, K 12\n");
    for (int stage = 0; stage <= 3; stage++) {
        mt_zero_bytes(psi, n, stage, 1, &b);
        printf("  stage %d: weights %.4g GB gradients %.4g GB optimizer %.4g GB total %.4g GB "
               "(paper %.1f)\n",
               stage, b.weights / 1e9, b.gradients / 1e9, b.optimizer / 1e9, b.total / 1e9,
               paper[stage] / 1e9);
        CHECK(fabs(b.total - paper[stage]) <= 0.05e9, "stage %d: %.6g bytes, paper %.6g", stage,
              b.total, paper[stage]);
    }
    mt_zero_bytes(psi, n, 0, 1, &b);
    CHECK(b.total == 16 * psi, "data parallel %.6g, want 16 psi", b.total);
    mt_zero_bytes(psi, n, 3, 1, &b);
    CHECK(b.total == 16 * psi / n, "stage 3 %.6g, want 16 psi / N", b.total);
    /* fp32: 4 + 4 + 8 bytes a parameter */
    mt_zero_bytes(1000, 4, 2, 0, &b);
    CHECK(b.weights == 4000 && b.gradients == 1000 && b.optimizer == 2000,
          "fp32 stage 2 %g %g %g", b.weights, b.gradients, b.optimizer);
    mt_zero_bytes(1000, 4, 1, 0, &b);
    CHECK(b.weights == 4000 && b.gradients == 4000 && b.optimizer == 2000,
          "fp32 stage 1 %g %g %g", b.weights, b.gradients, b.optimizer);
    printf(failures ? "FAILED\n" : "ok\n");
    return failures ? 1 : 0;
}
