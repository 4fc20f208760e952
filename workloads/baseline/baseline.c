/* baseline.c — the `baseline` workload: the reference model trained with the default
 * recipe, no memory optimization. Every other workload is read against it.
 *
 * What it is for: train the chosen preset (or load it from the model cache when this
 * exact recipe on this exact corpus was trained before), evaluate it on the validation
 * split, report the standard metrics, and log a sample of what it writes.
 * What it is not for: any optimization; knobs beyond the recipe belong to other plugins.
 */
#include <memtrade/workload.h>

#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_BATCH 8 /* windows per evaluation forward */

static const struct mt_param_spec params[] = {MT_WL_PARAMS_BASELINE, MT_WL_PARAM_DECODE_TOKENS,
                                               MT_WL_PARAMS_KV_CACHE, MT_WL_PARAMS_DEVICE};

static size_t baseline_mem_estimate(struct mt_ctx *ctx)
{
    return mt_wl_estimate_baseline(ctx, EVAL_BATCH, NULL);
}

/* What a baseline run holds: the fp32 training state (when the model is not cached), then
 * the one serving measurement on the fp32 model. */
static int baseline_plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_wl_plan_serving s = {.eval_batch = EVAL_BATCH, .kl = 1};
    return mt_wl_plan_reference(ctx, &s, p);
}

static int baseline_run(struct mt_ctx *ctx)
{
    struct mt_wl_setup s;
    struct mt_wl_train_stats st;
    struct mt_gpt *m = NULL;
    struct mt_wl_device dev;
    if (mt_wl_setup(ctx, &s)) return -1;
    mt_wl_device_params(ctx, &dev);
    int rc = mt_wl_train_or_load_on(ctx, &dev, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_INFER,
                                    EVAL_BATCH, s.r.seq, &m, &st);
    /* serving: the one serving measurement, as every post-training workload has it; the
     * fp32 reference then sits on the same serving axis as its compressed forms */
    if (rc == 0) rc = mt_wl_report_reference(ctx, m, &s.corpus, &s.r, s.seed, &st);
    if (rc == 0)
        rc = mt_wl_log_sample(ctx, m, "Q: What is the meaning of life?\nA:", 120, 0.8f, s.seed);
    if (rc == 0) mt_wl_report_kernels(ctx);
    mt_gpt_free(m);
    mt_corpus_free(&s.corpus);
    return rc;
}

MT_WL_DESCRIPTOR_PLAN("baseline",
                      "reference GPT trained with the default recipe (or loaded from the cache)",
                      params, NULL, baseline_mem_estimate, baseline_run, mt_wl_check_model,
                      baseline_plan);
