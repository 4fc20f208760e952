/* bench_train.c — mt-bench-train: the training engine's step time by precision on one
 * shape, medians of repeated steps (forward, backward, AdamW timed separately).
 *
 * What it is for: measuring what the bf16 GEMMs buy against fp32 and against bf16
 * storage with fp32 GEMMs (emulate_bf16_gemm), e.g.
 *   mt-bench-train --shape small --batch 16 --seq 128 --steps 10
 * What it is not for: accuracy or memory (the plugins and tests/train), or a CI test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "gpt.h"
#include "rng.h"
#include "tmodel.h"

struct variant {
    const char *name;
    enum mt_prec prec;
    int emulate;
};

static const struct variant variants[] = {
    {"fp32", MT_PREC_FP32, 0},
    {"bf16 (fp32 GEMMs)", MT_PREC_BF16, 1},
    {"bf16 (oneDNN bf16 GEMMs)", MT_PREC_BF16, 0},
};

static int run(const struct mt_gpt_config *cfg, const struct variant *v, size_t B, size_t T,
               size_t steps)
{
    char err[512];
    struct mt_tmodel_opts o = {.micro_batch = B,
                               .seq = T,
                               .prec = v->prec,
                               .master_weights = 1,
                               .every = 1,
                               .pool = 1,
                               .emulate_bf16_gemm = v->emulate};
    struct mt_tmodel *t = NULL;
    if (mt_tmodel_create(&t, cfg, &o, 1, err, sizeof err)) {
        fprintf(stderr, "mt-bench-train: %s\n", err);
        return -1;
    }
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps + 2);
    int *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    double *st = malloc(steps * sizeof *st), *fw = malloc(steps * sizeof *fw);
    double *bw = malloc(steps * sizeof *bw), *op = malloc(steps * sizeof *op);
    int rc = -1;
    if (!in || !tg || !st || !fw || !bw || !op) goto out;
    struct mt_rng rng;
    mt_rng_seed(&rng, 5);
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int)mt_rng_below(&rng, cfg->vocab);
        tg[i] = (int)mt_rng_below(&rng, cfg->vocab);
    }
    for (size_t s = 0; s < steps + 2; s++) { /* two warm-up steps */
        float loss;
        double t0 = mt_bench_now();
        if (mt_tmodel_forward(t, in, tg, B, &loss, err, sizeof err)) goto fail;
        double t1 = mt_bench_now();
        if (mt_tmodel_backward(t, 1.0f, 0, err, sizeof err)) goto fail;
        double t2 = mt_bench_now();
        mt_tmodel_adamw(t, &r, 1e-4f, 1.0f);
        double t3 = mt_bench_now();
        if (s < 2) continue;
        st[s - 2] = 1e3 * (t3 - t0), fw[s - 2] = 1e3 * (t1 - t0);
        bw[s - 2] = 1e3 * (t2 - t1), op[s - 2] = 1e3 * (t3 - t2);
    }
    const struct mt_tmodel_stats *ts = mt_tmodel_stats(t);
    printf("%-26s step %8.2f ms  (forward %7.2f, backward %7.2f, adamw %6.2f)  bf16 GEMMs "
           "%zu, fallbacks %zu\n",
           v->name, mt_bench_median(st, steps), mt_bench_median(fw, steps),
           mt_bench_median(bw, steps), mt_bench_median(op, steps), ts->bf16_gemms,
           ts->bf16_fallbacks);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "mt-bench-train: %s\n", err);
out:
    free(in), free(tg), free(st), free(fw), free(bw), free(op);
    mt_tmodel_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    const char *shape = "small";
    size_t B = 16, T = 128, steps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape"))
            shape = argv[i + 1];
        else if (!strcmp(argv[i], "--batch"))
            B = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seq"))
            T = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--steps"))
            steps = strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--shape PRESET] [--batch B] [--seq T] [--steps N]\n",
                    argv[0]);
            return 2;
        }
    }
    char err[256];
    struct mt_gpt_config cfg;
    if (mt_gpt_config_parse(&cfg, shape, err, sizeof err) || !B || !T || !steps) {
        fprintf(stderr, "mt-bench-train: %s\n",
                !B || !T || !steps ? "B, T, steps must be > 0" : err);
        return 2;
    }
    printf("%s B%zu T%zu, median of %zu steps (after 2 warm-up)\n", shape, B, T, steps);
    int rc = 0;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        rc |= run(&cfg, &variants[i], B, T, steps);
    return rc ? 1 : 0;
}
