/* test_zplan.c — the ZeRO paper's Figure 1 from the zero workload's own prediction
 * (zplan.h): 7.5B parameters, 64 GPUs, mixed-precision Adam (K = 12), per GPU 120 /
 * 31.4 / 16.6 / 1.9 GB for data parallel and stages 1 / 2 / 3 (the paper rounds to 0.1
 * GB: each within 0.05e9 bytes, data parallel exactly 16 psi); fp32 (memtrade's engine,
 * K = 8) divides each category as the stage says. The measured side (the ledger's
 * per-rank bytes equal to this prediction within one float) is distributed.zero*.
 * The same figure from the engine's own memory plan (train.h's mt_dist_plan_rank, the
 * sizing the runs allocate through and that `memtrade plan zero` prints): a GPT shape of
 * 7.4998e9 parameters (C 4096, 36 layers, vocab 50304, context 10752) in bf16 with fp32
 * master weights on 64 ranks: per rank, weights + gradients + optimizer (less ZeRO-3's
 * fp32 gather window, which the paper does not count) equal the formula for that psi
 * within the balanced split's few bytes and round to the paper's 0.1 GB; data parallel's
 * is 16 psi exactly. */
#include <math.h>
#include <stdio.h>

#include "mt_check.h"
#include "shard.h"
#include "train.h"
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
    CHECK(b.weights == 4000 && b.gradients == 1000 && b.optimizer == 2000, "fp32 stage 2 %g %g %g",
          b.weights, b.gradients, b.optimizer);
    mt_zero_bytes(1000, 4, 1, 0, &b);
    CHECK(b.weights == 4000 && b.gradients == 4000 && b.optimizer == 2000, "fp32 stage 1 %g %g %g",
          b.weights, b.gradients, b.optimizer);
    /* the engine's plan, rank by rank */
    struct mt_dist_job job = {.seed = 1};
    char err[256];
    CHECK(!mt_gpt_config_parse(&job.cfg,
                               "tiny,n_layer=36,n_head=32,n_embd=4096,vocab=50304,"
                               "seq_len=10752",
                               err, sizeof err),
          "%s", err);
    job.recipe = mt_gpt_recipe_default(1);
    job.recipe.batch = 64;
    job.recipe.seq = 1;
    job.bf16 = 1;
    job.zero_prefetch = 1;
    double P = (double)mt_gpt_num_params(&job.cfg);
    struct mt_shard_spec win = mt_shard_spec_whole(&job.cfg, 1, 1);
    win.grad_window = win.gathered_weights = win.prefetch = 1;
    struct mt_shard_sizes ws;
    mt_shard_sizes(&win, &ws);
    printf("the engine's plan: psi %.6g, N 64, bf16 + fp32 master\n", P);
    for (int stage = 0; stage <= 3; stage++) {
        job.strategy = stage ? MT_DIST_ZERO : MT_DIST_DP;
        job.zero_stage = stage;
        mt_zero_bytes(P, n, stage, 1, &b);
        double worst = 0, r0 = 0;
        for (int r = 0; r < 64; r++) {
            size_t by[MT_MEM_CAT_COUNT] = {0};
            CHECK(!mt_dist_plan_rank(&job, 64, r, by, err, sizeof err), "%s", err);
            double states =
                (double)(by[MT_MEM_WEIGHTS] + by[MT_MEM_GRADIENTS] + by[MT_MEM_OPTIMIZER]);
            if (stage == 3) states -= (double)(ws.params_len * sizeof(float));
            worst = fmax(worst, fabs(states - b.total));
            if (r == 0) r0 = states;
        }
        printf("  stage %d: rank 0 %.6g GB (formula %.6g, paper %.1f), worst rank off by %.0f "
               "B\n",
               stage, r0 / 1e9, b.total / 1e9, paper[stage] / 1e9, worst);
        CHECK(worst <= 16.0, "stage %d: a rank is %.0f bytes off the formula", stage, worst);
        CHECK(fabs(r0 - paper[stage]) <= 0.05e9, "stage %d: %.6g bytes, paper %.6g", stage, r0,
              paper[stage]);
        if (!stage) CHECK(r0 == 16 * P, "data parallel %.6g, want 16 psi", r0);
    }
    printf(failures ? "FAILED\n" : "ok\n");
    return failures ? 1 : 0;
}
