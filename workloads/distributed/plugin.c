/* plugin.c — the shared run() of the distributed plugins (see plugin.h). */
#include "plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "wlplan.h"

#define EVAL_BATCH 8 /* windows per evaluation forward on rank 0 */

size_t mt_dist_plugin_estimate(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    size_t T;
    if (mt_wl_estimate_shape(ctx, &cfg, &T)) return 0;
    size_t ranks = (size_t)mt_param_int(ctx, "ranks"), B = (size_t)mt_param_int(ctx, "batch");
    B = ranks ? (B + ranks - 1) / ranks : B;
    return mt_wl_estimate_bytes(&cfg, B > EVAL_BATCH ? B : EVAL_BATCH, T);
}

/* The strategy's knobs and the optimizer from the parameters into *job (the run's and
 * the plan's). Returns 0 or -1 after mt_error. */
static int read_knobs(struct mt_ctx *ctx, enum mt_dist_strategy strategy, struct mt_dist_job *job)
{
    job->strategy = strategy;
    if (mt_optim_parse(mt_param_str(ctx, "optimizer"), &job->optimizer))
        return mt_error(ctx, "optimizer: '%s' is not one of adamw|adamw8|adafactor",
                        mt_param_str(ctx, "optimizer"));
    switch (strategy) {
    case MT_DIST_DP:
        job->bucket_mb = mt_param_float(ctx, "bucket_mb");
        job->overlap = mt_param_bool(ctx, "overlap");
        job->bf16 = strcmp(mt_param_str(ctx, "precision"), "bf16") == 0;
        break;
    case MT_DIST_ZERO:
        job->zero_stage = (int)mt_param_int(ctx, "stage");
        job->zero_prefetch = mt_param_bool(ctx, "prefetch");
        job->bf16 = strcmp(mt_param_str(ctx, "precision"), "bf16") == 0;
        break;
    case MT_DIST_PP:
        job->micro_batches = (size_t)mt_param_int(ctx, "micro_batches");
        job->one_f_one_b = strcmp(mt_param_str(ctx, "schedule"), "1f1b") == 0;
        break;
    case MT_DIST_TP:
        break;
    }
    return 0;
}

/* The job from the parameters shared by all strategies and the strategy's own. */
static int read_job(struct mt_ctx *ctx, enum mt_dist_strategy strategy, struct mt_dist_job *job,
                    struct mt_corpus *corpus)
{
    memset(job, 0, sizeof *job);
    job->ctx = ctx;
    job->crash_rank = getenv("MT_TEST_CRASH_RANK") ? atoi(getenv("MT_TEST_CRASH_RANK")) : -1;
    if (mt_wl_model_config(ctx, NULL, &job->cfg) ||
        mt_wl_recipe(ctx, &job->cfg, &job->recipe, &job->seed) ||
        mt_wl_corpus(ctx, 0, job->recipe.seq, corpus))
        return -1;
    job->data = corpus->train_tokens;
    return read_knobs(ctx, strategy, job);
}

int mt_dist_plugin_plan(struct mt_ctx *ctx, enum mt_dist_strategy strategy, struct mt_mem_plan *out)
{
    struct mt_dist_job job = {0};
    size_t T;
    if (mt_wl_estimate_shape(ctx, &job.cfg, &T)) return mt_wl_check_model(ctx);
    int64_t steps = mt_param_int(ctx, "steps"), batch = mt_param_int(ctx, "batch");
    int nranks = (int)mt_param_int(ctx, "ranks");
    if (steps <= 0 || batch <= 0 || nranks <= 0)
        return mt_error(ctx, "steps %lld, batch %lld and ranks %d must be positive",
                        (long long)steps, (long long)batch, nranks);
    job.recipe = mt_gpt_recipe_default((size_t)steps);
    job.recipe.batch = (size_t)batch;
    job.recipe.seq = T;
    if (read_knobs(ctx, strategy, &job)) return -1;
    /* one phase per distinct rank plan, in rank order: "train" is rank 0's (the region
     * whose heap peak the witness compares with), "train_r<k>" the first rank k whose
     * plan differs from those before (the ranks of equal plans share a phase); when they
     * outnumber the phases, the rest fold into "train_max_rest" as per-category maxima (an
     * upper bound, named so) */
    char err[512];
    for (int k = 0; k < nranks; k++) {
        size_t b[MT_MEM_CAT_COUNT] = {0};
        if (mt_dist_plan_rank(&job, nranks, k, b, err, sizeof err)) return mt_error(ctx, "%s", err);
        size_t i = 0;
        while (i < out->n_phases && memcmp(out->phase[i].bytes, b, sizeof b) != 0)
            i++;
        if (i < out->n_phases) continue;
        if (out->n_phases == MT_MEM_PLAN_MAX_PHASES) { /* fold into the last phase */
            struct mt_mem_plan_phase *ph = &out->phase[MT_MEM_PLAN_MAX_PHASES - 1];
            for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
                ph->bytes[c] = b[c] > ph->bytes[c] ? b[c] : ph->bytes[c];
            snprintf(ph->name, sizeof ph->name, "train_max_rest");
            continue;
        }
        char name[24];
        snprintf(name, sizeof name, k ? "train_r%d" : "train", k);
        if (mt_wl_plan_add(ctx, out, name, MT_PLAN_TRAINING, b)) return -1;
    }
    return 0;
}

static void report_rank(struct mt_ctx *ctx, const struct mt_dist_job *job,
                        const struct mt_dist_result *res)
{
    static const int cats[] = {MT_MEM_WEIGHTS,     MT_MEM_GRADIENTS, MT_MEM_OPTIMIZER,
                               MT_MEM_ACTIVATIONS, MT_MEM_ACT_GRADS, MT_MEM_WORKSPACE,
                               MT_MEM_DATA};
    char name[64];
    mt_metric(ctx, "train_peak_bytes", (double)res->peak_total, "bytes");
    /* train_peak_<cat>_bytes: the training loop's own, without rank 0's evaluation model;
     * peak_<cat>_bytes is the heap profiler's measured whole-run figure (the harness's) */
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        snprintf(name, sizeof name, "train_peak_%s_bytes", mt_mem_cat_names[cats[i]]);
        mt_metric(ctx, name, (double)res->peak[cats[i]], "bytes");
    }
    mt_metric(ctx, "comm_bytes_sent", res->bytes_sent, "bytes");
    mt_metric(ctx, "comm_bytes_recv", res->bytes_recv, "bytes");
    mt_metric(ctx, "comm_s", res->comm_s, "s");
    mt_metric(ctx, "compute_s", res->compute_s, "s");
    mt_metric(ctx, "comm_calls", (double)res->comm_calls, "count");
    mt_metric(ctx, "flat_params", (double)res->flat_params, "count");
    if (job->strategy == MT_DIST_ZERO) {
        mt_metric(ctx, "zero_predicted_optimizer_bytes", res->zero_pred_optimizer, "bytes");
        mt_metric(ctx, "zero_predicted_gradients_bytes", res->zero_pred_gradients, "bytes");
    }
    if (res->zero_pred_weights > 0) { /* ZeRO-3 */
        mt_metric(ctx, "zero_predicted_weights_bytes", res->zero_pred_weights, "bytes");
        mt_metric(ctx, "comm_allgather_bytes_per_step", res->allgather_per_step, "bytes");
    }
    if (res->grad_window_bytes)
        mt_metric(ctx, "grad_window_bytes", (double)res->grad_window_bytes, "bytes");
    if (res->weight_window_bytes)
        mt_metric(ctx, "weight_window_bytes", (double)res->weight_window_bytes, "bytes");
}

/* Rank 0: the full model in eval mode from the assembled parameters, scored. */
static int evaluate(struct mt_ctx *ctx, const struct mt_dist_job *job, const float *full,
                    const struct mt_corpus *corpus)
{
    struct mt_gpt *m = NULL;
    char err[256];
    if (mt_gpt_create(&m, &job->cfg, MT_GPT_INFER, EVAL_BATCH, job->recipe.seq, err, sizeof err))
        return mt_error(ctx, "evaluation model: %s", err);
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (m->param_len[p]) memcpy(m->param[p], full, m->param_len[p] * sizeof *full);
        full += m->param_len[p];
    }
    mt_wl_report_model(ctx, m);
    int rc = mt_wl_report_eval(ctx, m, corpus, (size_t)mt_param_int(ctx, "eval_tokens"), NULL);
    mt_gpt_free(m);
    return rc;
}

/* Rank 0 reports the sums and maxima over ranks (reduced here, outside the training
 * counters). Collective. */
static void report_run(struct mt_ctx *ctx, struct mt_dist *d, const struct mt_dist_result *res)
{
    double mine[2] = {(double)res->peak_total, res->bytes_sent}, sum[2] = {0, 0}, max = 0;
    MPI_Reduce(mine, sum, 2, MPI_DOUBLE, MPI_SUM, 0, d->comm);
    MPI_Reduce(mine, &max, 1, MPI_DOUBLE, MPI_MAX, 0, d->comm);
    if (d->rank != 0) return;
    mt_metric(ctx, "ranks", d->nranks, "count");
    mt_metric(ctx, "run_sum_train_peak_bytes", sum[0], "bytes");
    mt_metric(ctx, "run_max_train_peak_bytes", max, "bytes");
    mt_metric(ctx, "run_sum_comm_bytes_sent", sum[1], "bytes");
    mt_metric(ctx, "train_tokens_per_s", (double)res->tokens / res->train_s, "tokens/s");
    mt_metric(ctx, "train_loss", res->final_loss, "nats/byte");
}

int mt_dist_plugin_run(struct mt_ctx *ctx, enum mt_dist_strategy strategy)
{
    struct mt_dist_job job;
    struct mt_corpus corpus;
    struct mt_dist d;
    char err[512];
    mt_wl_threads(ctx);
    if (read_job(ctx, strategy, &job, &corpus))
        return -1; /* the same parameters fail alike on every rank, before MPI starts */
    if (mt_dist_open(&d, ctx, err, sizeof err)) {
        mt_corpus_free(&corpus);
        return mt_error(ctx, "%s", err);
    }
    if (d.nranks != (int)mt_param_int(ctx, "ranks"))
        mt_log(ctx, MT_LOG_WARN, "started with %d ranks but ranks=%lld", d.nranks,
               (long long)mt_param_int(ctx, "ranks"));
    struct mt_dist_result res = {0};
    size_t psi = mt_gpt_num_params(&job.cfg);
    res.params = d.rank == 0 ? calloc(psi, sizeof *res.params) : NULL;
    int rc = d.rank == 0 && !res.params;
    if (mt_dist_any(&d, rc)) {
        snprintf(err, sizeof err, "out of memory for the parameters");
        rc = -1;
    } else { /* region "train": the loop's */
        rc = mt_dist_train(&d, &job, &res, err, sizeof err);
    }
    struct mt_dist_optim_plan op;
    if (rc == 0 && mt_dist_optim_plan(&job, d.nranks, d.rank, &op, err, sizeof err) == 0) {
        /* the plan is what the ledger saw (every rank checks its own, then all agree);
         * adamw's is train_peak_optimizer_bytes' 8 (bf16: 12) x slice, not reported again */
        if (job.optimizer != MT_OPTIM_ADAMW)
            mt_metric(ctx, "optimizer_plan_bytes", (double)op.state_bytes, "bytes");
        if (op.state_bytes != res.peak[MT_MEM_OPTIMIZER])
            snprintf(err, sizeof err, "optimizer plan %zu bytes, %zu allocated (rank %d)",
                     op.state_bytes, res.peak[MT_MEM_OPTIMIZER], d.rank);
        rc = op.state_bytes != res.peak[MT_MEM_OPTIMIZER];
    } else if (rc == 0) {
        rc = -1;
    }
    if (mt_dist_any(&d, rc) && !rc) {
        snprintf(err, sizeof err, "another rank's optimizer plan differs from its allocation");
        rc = -1;
    }
    if (rc == 0) {
        report_rank(ctx, &job, &res);
        report_run(ctx, &d, &res); /* the train_loss series: rank 0's loop */
    }
    int eval_rc = 0;
    if (rc == 0 && d.rank == 0) eval_rc = evaluate(ctx, &job, res.params, &corpus);
    free(res.params);
    mt_corpus_free(&corpus);
    mt_dist_close(&d); /* mt_dist_train fails on every rank alike */
    if (rc) return mt_error(ctx, "%s", err);
    return eval_rc;
}
