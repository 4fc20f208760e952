/* test_equiv.c — the distributed strategies against one process running the reference
 * model (mt_gpt_train_step on the global batch), on `tiny`, under mpirun -np N.
 *
 *   test_dist_equiv dp|dp_overlap|zero1|zero2|zero3|zero3_blocking|tp|pp_gpipe|pp_1f1b|bf16|
 *                   adamw8|adafactor|pp_adamw8|pp_adafactor|tp_adamw8|tp_adafactor|
 *                   bf16_adamw8|bf16_adafactor
 *                   [steps [model [batch]]]
 *
 * (model "tiny,seq_len=63" with 3 ranks gives a parameter count 3 does not divide.)
 * dp*, zero*: losses and final parameters within 1e-5 relative of one process (ZeRO also
 * against data parallel: losses within 1e-6) and the ledger's per-rank optimizer bytes
 * (stage 2: gradient bytes) exactly 8 (4) bytes times this rank's slice, the slices
 * differing by at most one float and summing to the parameter count. zero3 (prefetch of
 * the next layer, two layer windows) and zero3_blocking (one window) also: weight bytes
 * exactly 4 x slice + the gather window (embeddings, W layers, final LayerNorm, derived
 * here from psi and the layer count; W = 2 with prefetch, 1 without), the formula's
 * 4 psi / N within a float, and the all-gather traffic per step exactly
 * (N-1)/N x 4 x (psi + (L-W) layers): every parameter gathered for forward, every layer
 * but the last W (still in the windows) again for backward; the bytes on the wire those
 * gathers plus the reduce-scatter of psi.
 * tp, pp*: the logits of the first forward within 1e-5 of mt_gpt_forward, losses within
 * 1e-4 over the steps, final parameters within 1e-4 relative.
 * bf16 (mixed precision): the bf16 all-reduce equals bf16(float(a) + float(b)) rounded
 * by half.h's scalar reference, element for element; data parallel in bf16 against fp32:
 * losses within 0.05, gradient traffic exactly half, gradient and weight bytes exactly
 * 2 psi (half of fp32's), optimizer 12 psi (m, v, fp32 master); bf16 with overlapped
 * buckets equal to one all-reduce; ZeRO-1 and ZeRO-2 in bf16 against data parallel in
 * bf16: losses within 1e-5 relative, optimizer bytes 12 times this rank's slice,
 * gradient bytes 2 psi (stage 2: 2 times the slice), the same bytes on the wire. Over more
 * than 2 ranks the bf16 partial sums round in an algorithm-dependent order: losses then
 * agree within 1e-3 relative only.
 * adamw8, adafactor: data parallel with that optimizer against one process running the
 * training engine with it (tmodel.h, the grad_accum engine) on the global batch: losses
 * within 1e-4 relative (the reduction's order moves a code now and then), final
 * parameters within 1e-4; each rank's state exactly one process's (mt_optim_plan); then
 * ZeRO stages 1, 2 and 3 against that data parallel run: losses and parameters within
 * 1e-6 (1e-5 at stage 3), the ledger's optimizer bytes exactly mt_dist_optim_plan's, the
 * ranks' states summing to one process's state exactly (no 8-bit block and no Adafactor
 * matrix cut in two), adamw8's 2 bytes an element plus 8 a block.
 * pp_adamw8, pp_adafactor: 1F1B pipeline stages with that optimizer against one process's
 * training engine on the global batch: losses within 1e-4 relative (micro-batches sum the
 * gradients in another order), parameters 1e-4 (Adafactor 1e-2, as above); the stages'
 * states summing to one process's plus the tied wte's once more (it lives on both ends).
 * tp_adamw8, tp_adafactor: tensor parallel ranks with that optimizer against one process's
 * engine: losses within 1e-4; parameters 1e-4 (Adafactor 1e-2, as above); each rank's
 * state equal to its plan (train()).
 * bf16_adamw8, bf16_adafactor: data parallel in bf16 (fp32 master weights) with that
 * optimizer against one process's bf16 training engine with master weights (losses within
 * 2e-2: the engine also keeps bf16 activations and runs bf16 GEMMs, which the distributed
 * bf16 path does not) and against fp32 data parallel (5e-3), optimizer bytes exactly one
 * process's state + 4 psi; ZeRO-1/2/3 in bf16 against it: losses within 1e-5 (2 ranks),
 * the ranks' optimizer bytes summing to one process's state + 4 psi.
 * Every run, every mode: each rank's memory plan (mt_dist_plan_rank) equals its ledger's
 * peak over the training loop per category and in all, exactly.
 * Every rank computes the single-process reference itself (it is small), so every rank
 * checks; a failed check exits 1, which mpirun turns into a failed job.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "dist.h"
#include "half.h"
#include "gpt.h"
#include "rng.h"
#include "train.h"
#include "loop.h"
#include "tmodel.h"

static int g_rank;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: %s:%d: CHECK failed: %s: ", g_rank, __FILE__, __LINE__,      \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct ref {
    float *losses, *params, *logits;
};

/* One process, batch B: the reference every strategy must reproduce. */
static void reference(const struct mt_dist_job *job, struct ref *out)
{
    char err[256];
    struct mt_gpt *m;
    const struct mt_gpt_recipe *r = &job->recipe;
    size_t B = r->batch, T = r->seq, V = job->cfg.vocab;
    CHECK(!mt_gpt_create(&m, &job->cfg, MT_GPT_TRAIN, B, T, err, sizeof err), "%s", err);
    mt_gpt_init(m, job->seed);
    int *in = malloc(2 * B * T * sizeof *in), *tg = in + B * T;
    out->losses = calloc(r->steps, sizeof *out->losses);
    out->params = calloc(m->n_params, sizeof *out->params);
    out->logits = calloc(B * T * V, sizeof *out->logits);
    struct mt_rng rng;
    mt_rng_seed(&rng, mt_loop_batch_seed(job->seed));
    for (size_t s = 0; s < r->steps; s++) {
        mt_batch_sample_tokens(&job->data, B, T, &rng, in, tg);
        if (s == 0) {
            CHECK(!mt_gpt_forward(m, in, NULL, B, T, NULL, err, sizeof err), "%s", err);
            memcpy(out->logits, m->act[MT_A_LOGITS], B * T * V * sizeof(float));
        }
        CHECK(!mt_gpt_train_step(m, r, s, in, tg, &out->losses[s], NULL, err, sizeof err), "%s",
              err);
    }
    float *p = out->params;
    for (int k = 0; k < MT_P_COUNT; k++) {
        if (m->param_len[k]) memcpy(p, m->param[k], m->param_len[k] * sizeof *p);
        p += m->param_len[k];
    }
    free(in);
    mt_gpt_free(m);
}

/* One process through the training engine with job->optimizer (micro-batch = batch);
 * job->bf16: bf16 storage with fp32 master weights. */
static void reference_optim(const struct mt_dist_job *job, struct ref *out)
{
    char err[256];
    struct mt_tmodel *t;
    const struct mt_gpt_recipe *r = &job->recipe;
    size_t B = r->batch, T = r->seq;
    struct mt_tmodel_opts o = {.micro_batch = B,
                               .seq = T,
                               .prec = job->bf16 ? MT_PREC_BF16 : MT_PREC_FP32,
                               .master_weights = job->bf16,
                               .every = 1,
                               .pool = 1,
                               .optimizer = job->optimizer};
    CHECK(!mt_tmodel_create(&t, &job->cfg, &o, job->seed, err, sizeof err), "%s", err);
    int *in = malloc(2 * B * T * sizeof *in), *tg = in + B * T;
    out->losses = calloc(r->steps, sizeof *out->losses);
    out->params = calloc(mt_gpt_num_params(&job->cfg), sizeof *out->params);
    out->logits = NULL;
    struct mt_rng rng;
    mt_rng_seed(&rng, mt_loop_batch_seed(job->seed));
    for (size_t s = 0; s < r->steps; s++) {
        mt_batch_sample_tokens(&job->data, B, T, &rng, in, tg);
        CHECK(!mt_tmodel_forward_backward(t, in, tg, B, 1.0f, 0, &out->losses[s], err, sizeof err),
              "%s", err);
        mt_tmodel_adamw(t, r, mt_gpt_lr_at(r, s), 1.0f);
    }
    mt_tmodel_export(t, out->params);
    free(in);
    mt_tmodel_free(t);
}

/* Relative L2 distance of two vectors. */
static double rel(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d / (s > 0 ? s : 1));
}

static double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void train(struct mt_dist *d, const struct mt_dist_job *job, struct mt_dist_result *res)
{
    char err[512];
    size_t psi = mt_gpt_num_params(&job->cfg);
    memset(res, 0, sizeof *res);
    res->losses = calloc(job->recipe.steps, sizeof *res->losses);
    res->params = calloc(psi, sizeof *res->params);
    res->logits = calloc(job->recipe.batch * job->recipe.seq * job->cfg.vocab, sizeof(float));
    CHECK(!mt_dist_train(d, job, res, err, sizeof err), "%s", err);
    /* every run: the plan (the sizing the run allocated through) is its ledger exactly */
    size_t plan[MT_MEM_CAT_COUNT] = {0}, total = 0;
    CHECK(!mt_dist_plan_rank(job, d->nranks, d->rank, plan, err, sizeof err), "%s", err);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        CHECK(plan[c] == res->peak[c], "plan %s %zu B, ledger peak %zu B", mt_mem_cat_names[c],
              plan[c], res->peak[c]);
        total += plan[c];
    }
    CHECK(total == res->peak_total, "plan %zu B in all, ledger peak %zu B", total, res->peak_total);
}

static void release(struct mt_dist_result *res)
{
    free(res->losses);
    free(res->params);
    free(res->logits);
}

static void check_losses(const float *got, const float *want, size_t steps, double tol,
                         const char *what)
{
    double worst = 0.0;
    for (size_t s = 0; s < steps; s++) {
        double e = fabs((double)got[s] - want[s]) / fabs((double)want[s]);
        worst = e > worst ? e : worst;
        CHECK(e <= tol, "%s: step %zu loss %.9g vs %.9g (rel %.3g > %.3g)", what, s, got[s],
              want[s], e, tol);
    }
    if (g_rank == 0)
        printf("%s: %zu losses within %.0e (max rel %.2g; first %.6f last %.6f)\n", what, steps,
               tol, worst, got[0], got[steps - 1]);
}

/* ZeRO's per-rank ledger: optimizer (and stage-2 gradient) bytes are this rank's slice. */
static void check_zero_bytes(struct mt_dist *d, const struct mt_dist_job *job,
                             const struct mt_dist_result *res)
{
    size_t psi = mt_gpt_num_params(&job->cfg), N = (size_t)d->nranks;
    size_t slice = psi / N + ((size_t)d->rank < psi % N);
    long long total = 0, mine = (long long)slice;
    MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, d->comm);
    CHECK((size_t)total == psi, "slices sum to %lld, not %zu", total, psi);
    CHECK(res->peak[MT_MEM_OPTIMIZER] == 8 * slice, "optimizer %zu bytes, want 8 * %zu",
          res->peak[MT_MEM_OPTIMIZER], slice);
    size_t want_g = job->zero_stage >= 2 ? 4 * slice : 4 * psi;
    CHECK(res->peak[MT_MEM_GRADIENTS] == want_g, "gradients %zu bytes, want %zu",
          res->peak[MT_MEM_GRADIENTS], want_g);
    /* the formula's 8 psi / N, up to the one float the balanced split adds or drops */
    CHECK(fabs(res->zero_pred_optimizer - (double)res->peak[MT_MEM_OPTIMIZER]) < 8.0,
          "formula %.1f vs %zu", res->zero_pred_optimizer, res->peak[MT_MEM_OPTIMIZER]);
    if (job->zero_stage == 3) {
        const struct mt_gpt_config *c = &job->cfg;
        size_t ends = c->vocab * c->n_embd + c->seq_len * c->n_embd + 2 * c->n_embd;
        size_t W = job->zero_prefetch ? 2 : 1, L = c->n_layer;
        size_t layer = (psi - ends) / L, window = 4 * (ends + W * layer);
        CHECK(res->weight_window_bytes == window && res->peak[MT_MEM_WEIGHTS] == 4 * slice + window,
              "weights %zu B (window %zu B), want 4 x %zu + %zu", res->peak[MT_MEM_WEIGHTS],
              res->weight_window_bytes, slice, window);
        CHECK(fabs(res->zero_pred_weights - 4.0 * (double)slice) < 4.0, "weights formula %.1f",
              res->zero_pred_weights);
        double f = (double)(N - 1) / (double)N * 4.0, steps = (double)job->recipe.steps;
        double gather = f * (double)(psi + (L > W ? L - W : 0) * layer);
        CHECK(fabs(res->allgather_per_step - gather) < 1 &&
                  fabs(res->bytes_sent - steps * (gather + f * (double)psi)) < 1,
              "all-gather %.0f B per step (want %.0f), sent %.0f", res->allgather_per_step, gather,
              res->bytes_sent);
        printf("rank %d: zero-3 (%s) weights %zu B = 4 x %zu + window %zu; all-gather %.0f "
               "B/step\n",
               d->rank, W == 2 ? "prefetch" : "blocking", res->peak[MT_MEM_WEIGHTS], slice, window,
               res->allgather_per_step);
    }
    printf("rank %d: zero-%d optimizer %zu B gradients %zu B (psi %zu, formula %.0f / %.0f)\n",
           d->rank, job->zero_stage, res->peak[MT_MEM_OPTIMIZER], res->peak[MT_MEM_GRADIENTS], psi,
           res->zero_pred_optimizer, res->zero_pred_gradients);
}

/* The bf16 sum against the scalar reference: bf16(float(a) + float(b)), nearest even. */
static void check_bf16_op(struct mt_dist *d)
{
    enum { N = 4096 };
    uint16_t *buf = malloc(N * sizeof *buf), *want = malloc(N * sizeof *want);
    CHECK(buf && want, "out of memory");
    for (size_t i = 0; i < N; i++) { /* values of every sign and scale; ties included */
        float a = ((float)(i % 97) - 48.0f) * ldexpf(1.0f, (int)(i % 23) - 11) / 7.0f;
        float b = ((float)(i % 89) - 44.0f) * ldexpf(1.0f, (int)(i % 19) - 9) / 3.0f;
        uint16_t ha = mt_half_from_float(MT_PREC_BF16, a), hb = mt_half_from_float(MT_PREC_BF16, b);
        want[i] = mt_half_from_float(MT_PREC_BF16, mt_half_to_float(MT_PREC_BF16, ha) +
                                                       mt_half_to_float(MT_PREC_BF16, hb));
        buf[i] = d->rank % 2 ? hb : ha;
    }
    mt_dist_allreduce_bf16(d, buf, N);
    if (d->nranks == 2) /* one addition: exact whatever the algorithm */
        for (size_t i = 0; i < N; i++)
            CHECK(buf[i] == want[i], "bf16 sum %zu: %#x, want %#x", i, buf[i], want[i]);
    free(buf);
    free(want);
}

/* bf16 data parallel against fp32, ZeRO-1 in bf16 against data parallel in bf16. */
static void check_bf16(struct mt_dist *d, struct mt_dist_job *job)
{
    size_t psi = mt_gpt_num_params(&job->cfg), steps = job->recipe.steps, N = (size_t)d->nranks;
    struct mt_dist_result f32, b16, res;
    check_bf16_op(d);
    job->strategy = MT_DIST_DP;
    train(d, job, &f32);
    job->bf16 = 1;
    train(d, job, &b16);
    for (size_t s = 0; s < steps; s++)
        CHECK(fabs((double)b16.losses[s] - f32.losses[s]) <= 0.05, "step %zu: bf16 %.6f fp32 %.6f",
              s, b16.losses[s], f32.losses[s]);
    CHECK(b16.losses[steps - 1] < b16.losses[0] - 0.1, "bf16 loss did not fall: %.4f -> %.4f",
          b16.losses[0], b16.losses[steps - 1]);
    /* the gradient all-reduce is the only traffic: bf16 moves exactly half the bytes */
    double want = (double)steps * 2.0 * (double)(N - 1) / (double)N * 2.0 * (double)psi;
    CHECK(b16.bytes_sent * 2 == f32.bytes_sent && b16.bytes_recv * 2 == f32.bytes_recv &&
              fabs(b16.bytes_sent - want) < 1,
          "bf16 sent %.0f received %.0f, fp32 %.0f %.0f, want %.0f", b16.bytes_sent, b16.bytes_recv,
          f32.bytes_sent, f32.bytes_recv, want);
    CHECK(b16.peak[MT_MEM_GRADIENTS] == 2 * psi &&
              2 * b16.peak[MT_MEM_GRADIENTS] == f32.peak[MT_MEM_GRADIENTS],
          "gradients bf16 %zu B fp32 %zu B, psi %zu", b16.peak[MT_MEM_GRADIENTS],
          f32.peak[MT_MEM_GRADIENTS], psi);
    CHECK(b16.peak[MT_MEM_WEIGHTS] == 2 * psi && f32.peak[MT_MEM_WEIGHTS] == 4 * psi,
          "weights bf16 %zu B fp32 %zu B", b16.peak[MT_MEM_WEIGHTS], f32.peak[MT_MEM_WEIGHTS]);
    CHECK(b16.peak[MT_MEM_OPTIMIZER] == 12 * psi && f32.peak[MT_MEM_OPTIMIZER] == 8 * psi,
          "optimizer bf16 %zu B fp32 %zu B", b16.peak[MT_MEM_OPTIMIZER],
          f32.peak[MT_MEM_OPTIMIZER]);
    CHECK(b16.peak[MT_MEM_WORKSPACE] == b16.grad_window_bytes + b16.weight_window_bytes,
          "workspace %zu B, windows %zu + %zu", b16.peak[MT_MEM_WORKSPACE], b16.grad_window_bytes,
          b16.weight_window_bytes);
    if (d->rank == 0) {
        printf("bf16 vs fp32 losses: first %.6f / %.6f last %.6f / %.6f\n", b16.losses[0],
               f32.losses[0], b16.losses[steps - 1], f32.losses[steps - 1]);
        printf("per rank bytes fp32 -> bf16: weights %zu -> %zu, gradients %zu -> %zu, "
               "optimizer %zu -> %zu, workspace %zu -> %zu, total %zu -> %zu; sent %.0f -> %.0f\n",
               f32.peak[MT_MEM_WEIGHTS], b16.peak[MT_MEM_WEIGHTS], f32.peak[MT_MEM_GRADIENTS],
               b16.peak[MT_MEM_GRADIENTS], f32.peak[MT_MEM_OPTIMIZER], b16.peak[MT_MEM_OPTIMIZER],
               f32.peak[MT_MEM_WORKSPACE], b16.peak[MT_MEM_WORKSPACE], f32.peak_total,
               b16.peak_total, f32.bytes_sent, b16.bytes_sent);
    }
    job->overlap = 1;
    job->bucket_mb = 0.05;
    train(d, job, &res);
    /* Over 2 ranks every bf16 reduction is one rounded addition, whatever the algorithm;
     * over more, each algorithm rounds its own partial sums (order differs by size). */
    double tol = N == 2 ? 0.0 : 1e-3;
    check_losses(res.losses, b16.losses, steps, tol, "bf16 overlapped buckets vs one all-reduce");
    release(&res);
    job->overlap = 0;
    job->bucket_mb = 0;
    job->strategy = MT_DIST_ZERO;
    for (job->zero_stage = 1; job->zero_stage <= 3; job->zero_stage++) {
        job->zero_prefetch = 1;
        train(d, job, &res);
        char what[64];
        snprintf(what, sizeof what, "bf16 zero-%d vs bf16 data parallel", job->zero_stage);
        check_losses(res.losses, b16.losses, steps, N == 2 ? 1e-5 : tol, what);
        if (d->rank == 0)
            CHECK(rel(res.params, b16.params, psi) <= (N == 2 ? 1e-5 : 1e-2), "%s: params rel %.3g",
                  what, rel(res.params, b16.params, psi));
        size_t slice = psi / N + ((size_t)d->rank < psi % N);
        size_t want_g = job->zero_stage >= 2 ? 2 * slice : 2 * psi;
        CHECK(res.peak[MT_MEM_OPTIMIZER] == 12 * slice && res.peak[MT_MEM_GRADIENTS] == want_g &&
                  fabs(res.zero_pred_optimizer - (double)res.peak[MT_MEM_OPTIMIZER]) < 12.0 &&
                  fabs(res.zero_pred_gradients - (double)want_g) < 2.0,
              "%s: optimizer %zu B (slice %zu, formula %.0f) gradients %zu B (formula %.0f)", what,
              res.peak[MT_MEM_OPTIMIZER], slice, res.zero_pred_optimizer,
              res.peak[MT_MEM_GRADIENTS], res.zero_pred_gradients);
        double wire = want;
        if (job->zero_stage == 3) { /* the bf16 slice, the fp32 windows, the bf16 gathers */
            const struct mt_gpt_config *c = &job->cfg;
            size_t L = c->n_layer, embed = c->vocab * c->n_embd + c->seq_len * c->n_embd;
            size_t layer = (psi - embed - 2 * c->n_embd) / L, W = 2;
            size_t window = 4 * (embed + 2 * c->n_embd + W * layer);
            size_t stage = 2 * (layer > embed ? layer : embed);
            size_t gwin = 4 * (embed + 2 * c->n_embd + layer);
            CHECK(res.peak[MT_MEM_WEIGHTS] == 2 * slice + window &&
                      res.weight_window_bytes == window &&
                      fabs(res.zero_pred_weights - 2.0 * (double)slice) < 2.0,
                  "%s: weights %zu B, want 2 x %zu + %zu", what, res.peak[MT_MEM_WEIGHTS], slice,
                  window);
            CHECK(res.peak[MT_MEM_WORKSPACE] == gwin + gwin / 2 + stage &&
                      res.grad_window_bytes == gwin,
                  "%s: workspace %zu B, want grad window %zu + its bf16 %zu + gather stage %zu",
                  what, res.peak[MT_MEM_WORKSPACE], gwin, gwin / 2, stage);
            double f = (double)(N - 1) / (double)N * 2.0;
            double gather = f * (double)(psi + (L > W ? L - W : 0) * layer);
            CHECK(fabs(res.allgather_per_step - gather) < 1,
                  "%s: all-gather %.0f B/step, want %.0f", what, res.allgather_per_step, gather);
            wire = (double)steps * (gather + f * (double)psi);
            printf("rank %d: bf16 zero-3 weights %zu B = 2 x %zu + window %zu, workspace %zu B, "
                   "all-gather %.0f B/step\n",
                   d->rank, res.peak[MT_MEM_WEIGHTS], slice, window, res.peak[MT_MEM_WORKSPACE],
                   res.allgather_per_step);
        }
        CHECK(fabs(res.bytes_sent - wire) < 1 && fabs(res.bytes_recv - wire) < 1,
              "%s: sent %.0f received %.0f, want %.0f", what, res.bytes_sent, res.bytes_recv, wire);
        printf("rank %d: bf16 zero-%d optimizer %zu B (12 x %zu) gradients %zu B, total %zu B\n",
               d->rank, job->zero_stage, res.peak[MT_MEM_OPTIMIZER], slice,
               res.peak[MT_MEM_GRADIENTS], res.peak_total);
        release(&res);
    }
    release(&b16);
    release(&f32);
}

/* adamw8 / adafactor: data parallel against one process, ZeRO-1/2/3 against data parallel. */
static void check_optim(struct mt_dist *d, struct mt_dist_job *job)
{
    size_t psi = mt_gpt_num_params(&job->cfg), steps = job->recipe.steps;
    const char *name = mt_optim_name(job->optimizer);
    char err[256], what[96];
    struct ref ref;
    struct mt_dist_result dp, res;
    struct mt_optim_plan one;
    struct mt_dist_optim_plan op;
    mt_optim_plan(&job->cfg, job->optimizer, 0, &one);
    reference_optim(job, &ref);
    job->strategy = MT_DIST_DP;
    train(d, job, &dp);
    snprintf(what, sizeof what, "%s data parallel vs one process", name);
    check_losses(dp.losses, ref.losses, steps, 1e-4, what);
    CHECK(dp.losses[steps - 1] < dp.losses[0] - 0.1, "%s loss did not fall: %.4f -> %.4f", name,
          dp.losses[0], dp.losses[steps - 1]);
    /* Adafactor's first step is sign(g) (v = g^2): a gradient of rounding noise may take
     * either sign, so its parameters agree less than its losses */
    double ptol = job->optimizer == MT_OPTIM_ADAFACTOR ? 1e-2 : 1e-4;
    if (d->rank == 0) {
        printf("%s: params rel %.3g\n", what, rel(dp.params, ref.params, psi));
        CHECK(rel(dp.params, ref.params, psi) <= ptol, "%s: params rel %.3g", what,
              rel(dp.params, ref.params, psi));
    }
    CHECK(dp.peak[MT_MEM_OPTIMIZER] == one.state_bytes, "%s: optimizer %zu B, one process %zu B",
          what, dp.peak[MT_MEM_OPTIMIZER], one.state_bytes);
    job->strategy = MT_DIST_ZERO;
    for (job->zero_stage = 1; job->zero_stage <= 3; job->zero_stage++) {
        job->zero_prefetch = 1;
        train(d, job, &res);
        snprintf(what, sizeof what, "%s zero-%d vs %s data parallel", name, job->zero_stage, name);
        /* over 2 ranks the reduce-scatter adds as the all-reduce does; over more, in its
         * own order, and an 8-bit code or a sign may flip */
        int two = d->nranks == 2;
        check_losses(res.losses, dp.losses, steps,
                     two ? (job->zero_stage == 3 ? 1e-5 : 1e-6) : 1e-4, what);
        if (d->rank == 0) {
            printf("%s: params rel %.3g\n", what, rel(res.params, dp.params, psi));
            CHECK(rel(res.params, dp.params, psi) <= (two ? 1e-6 : ptol), "%s: params rel %.3g",
                  what, rel(res.params, dp.params, psi));
        }
        CHECK(!mt_dist_optim_plan(job, d->nranks, d->rank, &op, err, sizeof err), "%s", err);
        CHECK(res.peak[MT_MEM_OPTIMIZER] == op.state_bytes, "%s: optimizer %zu B, plan %zu B", what,
              res.peak[MT_MEM_OPTIMIZER], op.state_bytes);
        long long mine[2] = {(long long)op.state_bytes, (long long)(op.hi - op.lo)}, sum[2];
        MPI_Allreduce(mine, sum, 2, MPI_LONG_LONG, MPI_SUM, d->comm);
        CHECK((size_t)sum[0] == one.state_bytes && (size_t)sum[1] == psi,
              "%s: states sum to %lld B over %lld floats, one process %zu B over %zu", what, sum[0],
              sum[1], one.state_bytes, psi);
        if (job->optimizer == MT_OPTIM_ADAMW8) { /* whole blocks: 2 B + 8 B a block */
            size_t span = op.hi - op.lo, extra = op.state_bytes - 2 * span;
            CHECK(op.state_bytes >= 2 * span && extra % 8 == 0 &&
                      extra / 8 >= (span + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK,
                  "%s: %zu B for %zu floats", what, op.state_bytes, span);
        }
        printf("rank %d: %s zero-%d range [%zu, %zu) optimizer %zu B (one process %zu B), "
               "workspace %zu B\n",
               d->rank, name, job->zero_stage, op.lo, op.hi, res.peak[MT_MEM_OPTIMIZER],
               one.state_bytes, res.peak[MT_MEM_WORKSPACE]);
        release(&res);
    }
    release(&dp);
    free(ref.losses);
    free(ref.params);
}

/* bf16_adamw8 / bf16_adafactor: data parallel in bf16 (fp32 master) with that optimizer
 * against one process's bf16 engine (losses, loosely: its activations and GEMMs are bf16
 * too) and against fp32 data parallel; ZeRO-1/2/3 in bf16 against it (tightly); the
 * state: the optimizer's pieces plus the fp32 master, 4 bytes a float of the range. */
static void check_bf16_optim(struct mt_dist *d, struct mt_dist_job *job)
{
    size_t psi = mt_gpt_num_params(&job->cfg), steps = job->recipe.steps;
    const char *name = mt_optim_name(job->optimizer);
    char err[256], what[96];
    struct ref ref;
    struct mt_dist_result f32, dp, res;
    struct mt_optim_plan one;
    struct mt_dist_optim_plan op;
    mt_optim_plan(&job->cfg, job->optimizer, 0, &one);
    job->strategy = MT_DIST_DP;
    train(d, job, &f32);
    job->bf16 = 1;
    reference_optim(job, &ref);
    train(d, job, &dp);
    snprintf(what, sizeof what, "bf16 %s data parallel vs one process's bf16 engine", name);
    check_losses(dp.losses, ref.losses, steps, 2e-2, what);
    snprintf(what, sizeof what, "bf16 %s data parallel vs fp32", name);
    check_losses(dp.losses, f32.losses, steps, 5e-3, what);
    CHECK(dp.peak[MT_MEM_OPTIMIZER] == one.state_bytes + 4 * psi,
          "%s: optimizer %zu B, want one process's %zu + master 4 x %zu", what,
          dp.peak[MT_MEM_OPTIMIZER], one.state_bytes, psi);
    CHECK(dp.peak[MT_MEM_WEIGHTS] == 2 * psi && dp.peak[MT_MEM_GRADIENTS] == 2 * psi,
          "%s: weights %zu B gradients %zu B, want 2 psi", what, dp.peak[MT_MEM_WEIGHTS],
          dp.peak[MT_MEM_GRADIENTS]);
    job->strategy = MT_DIST_ZERO;
    for (job->zero_stage = 1; job->zero_stage <= 3; job->zero_stage++) {
        job->zero_prefetch = 1;
        train(d, job, &res); /* and its plan == its ledger, every category */
        snprintf(what, sizeof what, "bf16 %s zero-%d vs bf16 %s data parallel", name,
                 job->zero_stage, name);
        check_losses(res.losses, dp.losses, steps, d->nranks == 2 ? 1e-5 : 1e-3, what);
        CHECK(!mt_dist_optim_plan(job, d->nranks, d->rank, &op, err, sizeof err), "%s", err);
        long long mine = (long long)res.peak[MT_MEM_OPTIMIZER], sum = 0;
        MPI_Allreduce(&mine, &sum, 1, MPI_LONG_LONG, MPI_SUM, d->comm);
        CHECK(res.peak[MT_MEM_OPTIMIZER] == op.state_bytes &&
                  (size_t)sum == one.state_bytes + 4 * psi,
              "%s: optimizer %zu B (plan %zu), ranks %lld B, want %zu + 4 x %zu", what,
              res.peak[MT_MEM_OPTIMIZER], op.state_bytes, sum, one.state_bytes, psi);
        if (d->rank == 0)
            printf("%s: params rel %.3g; rank 0 optimizer %zu B of %lld\n", what,
                   rel(res.params, dp.params, psi), res.peak[MT_MEM_OPTIMIZER], sum);
        release(&res);
    }
    release(&dp);
    release(&f32);
    free(ref.losses);
    free(ref.params);
}

/* pp_adamw8 / pp_adafactor: 1F1B pipeline stages, tp_adamw8 / tp_adafactor: tensor
 * parallel ranks, against one process's training engine. */
static void check_split_optim(struct mt_dist *d, struct mt_dist_job *job, enum mt_dist_strategy st)
{
    size_t psi = mt_gpt_num_params(&job->cfg), steps = job->recipe.steps;
    const char *name = mt_optim_name(job->optimizer);
    char what[96];
    struct ref ref;
    struct mt_dist_result res;
    struct mt_optim_plan one;
    mt_optim_plan(&job->cfg, job->optimizer, 0, &one);
    reference_optim(job, &ref);
    job->strategy = st;
    job->one_f_one_b = 1;
    train(d, job, &res); /* and its plan == its ledger, every category */
    snprintf(what, sizeof what, "%s %s vs one process", name,
             st == MT_DIST_PP ? "pipeline (1f1b)" : "tensor parallel");
    check_losses(res.losses, ref.losses, steps, 1e-4, what);
    double ptol = job->optimizer == MT_OPTIM_ADAFACTOR ? 1e-2 : 1e-4; /* as check_optim's */
    if (d->rank == 0) {
        double e = rel(res.params, ref.params, psi);
        printf("%s: params rel %.3g\n", what, e);
        CHECK(e <= ptol, "%s: params rel %.3g", what, e);
    }
    if (st == MT_DIST_TP) {
        printf("rank %d: %s optimizer %zu B (one process %zu B)\n", d->rank, what,
               res.peak[MT_MEM_OPTIMIZER], one.state_bytes);
        release(&res);
        free(ref.losses);
        free(ref.params);
        return;
    }
    /* each stage holds whole units: the stages' states are one process's, the tied wte's
     * twice (first and last stage) */
    size_t count, rows, cols;
    mt_optim_unit_shape(&job->cfg, MT_P_WTE, &count, &rows, &cols);
    size_t wte = d->nranks > 1 ? mt_optim_unit_bytes(job->optimizer, rows, cols) : 0;
    long long mine = (long long)res.peak[MT_MEM_OPTIMIZER], sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG_LONG, MPI_SUM, d->comm);
    CHECK((size_t)sum == one.state_bytes + wte, "%s: stages hold %lld B, one process %zu + wte %zu",
          what, sum, one.state_bytes, wte);
    printf("rank %d: %s stage optimizer %zu B (stages %lld B = one process %zu + wte %zu)\n",
           d->rank, what, res.peak[MT_MEM_OPTIMIZER], sum, one.state_bytes, wte);
    release(&res);
    free(ref.losses);
    free(ref.params);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct mt_dist d;
    char err[256];
    CHECK(!mt_dist_open(&d, NULL, err, sizeof err), "%s", err);
    g_rank = d.rank;
    const char *mode = argc > 1 ? argv[1] : "dp";
    size_t steps = argc > 2 ? (size_t)atoi(argv[2]) : 5;

    struct mt_corpus corpus;
    struct mt_dist_job job = {.crash_rank = -1, .seed = 1337, .micro_batches = 4};
    CHECK(!mt_gpt_config_parse(&job.cfg, argc > 3 ? argv[3] : "tiny", err, sizeof err), "%s", err);
    job.recipe = mt_gpt_recipe_default(steps);
    job.recipe.batch = argc > 4 ? (size_t)atoi(argv[4]) : 8;
    job.recipe.seq = job.cfg.seq_len;
    CHECK(!mt_corpus_load(&corpus, NULL, job.recipe.seq, err, sizeof err), "%s", err);
    job.data = corpus.train_tokens;
    size_t psi = mt_gpt_num_params(&job.cfg),
           logits_n = job.recipe.batch * job.recipe.seq * job.cfg.vocab;

    const char *under = strchr(mode, '_');
    if (!strcmp(mode, "adamw8") || !strcmp(mode, "adafactor") || !strcmp(mode, "pp_adamw8") ||
        !strcmp(mode, "pp_adafactor") || !strcmp(mode, "bf16_adamw8") ||
        !strcmp(mode, "bf16_adafactor") || !strcmp(mode, "tp_adamw8") ||
        !strcmp(mode, "tp_adafactor")) {
        CHECK(!mt_optim_parse(under ? under + 1 : mode, &job.optimizer), "%s", mode);
        if (!strncmp(mode, "pp_", 3) || !strncmp(mode, "tp_", 3))
            check_split_optim(&d, &job, mode[0] == 'p' ? MT_DIST_PP : MT_DIST_TP);
        else if (!strncmp(mode, "bf16_", 5))
            check_bf16_optim(&d, &job);
        else
            check_optim(&d, &job);
        mt_corpus_free(&corpus);
        mt_dist_close(&d);
        MPI_Finalize();
        return 0;
    }
    if (!strcmp(mode, "bf16")) {
        check_bf16(&d, &job);
        mt_corpus_free(&corpus);
        mt_dist_close(&d);
        MPI_Finalize();
        return 0;
    }
    struct ref ref;
    reference(&job, &ref);
    struct mt_dist_result res, dp;
    int zero = !strncmp(mode, "zero", 4);
    if (!strcmp(mode, "dp") || !strcmp(mode, "dp_overlap") || zero) {
        job.strategy = MT_DIST_DP;
        train(&d, &job, &dp);
        check_losses(dp.losses, ref.losses, steps, 1e-5, "data parallel vs one process");
        /* one all-reduce of the gradients per step: 2 (N-1)/N of 4 psi bytes each way */
        double N = d.nranks, want = (double)steps * 2.0 * (N - 1) / N * 4.0 * (double)psi;
        CHECK(fabs(dp.bytes_sent - want) < 1 && fabs(dp.bytes_recv - want) < 1,
              "sent %.0f received %.0f bytes, want %.0f", dp.bytes_sent, dp.bytes_recv, want);
        if (d.rank == 0) {
            double e = rel(dp.params, ref.params, psi);
            printf("final params rel %.3g max abs %.3g\n", e, max_abs(dp.params, ref.params, psi));
            CHECK(e <= 1e-5, "final parameters rel %.3g", e);
        }
        if (!strcmp(mode, "dp_overlap")) {
            job.overlap = 1;
            job.bucket_mb = 0.05; /* a few layers per bucket on tiny */
            train(&d, &job, &res);
            check_losses(res.losses, dp.losses, steps, 1e-6,
                         "overlapped buckets vs one all-reduce");
            if (d.rank == 0) CHECK(rel(res.params, dp.params, psi) <= 1e-6, "overlap params");
            release(&res);
        }
        if (zero) {
            job.strategy = MT_DIST_ZERO;
            job.zero_stage = mode[4] == '3' ? 3 : mode[4] == '2' ? 2 : 1;
            job.zero_prefetch = !strcmp(mode, "zero3");
            train(&d, &job, &res);
            check_losses(res.losses, dp.losses, steps, job.zero_stage == 3 ? 1e-5 : 1e-6,
                         "zero vs data parallel");
            if (d.rank == 0)
                CHECK(rel(res.params, dp.params, psi) <= 1e-6, "zero params rel %.3g",
                      rel(res.params, dp.params, psi));
            check_zero_bytes(&d, &job, &res);
            release(&res);
        }
        release(&dp);
    } else {
        job.strategy = !strcmp(mode, "tp") ? MT_DIST_TP : MT_DIST_PP;
        if (!strcmp(mode, "pp_1f1b")) { /* 1F1B keeps min(M, P - stage) of GPipe's M slots */
            train(&d, &job, &dp);
            release(&dp);
            job.one_f_one_b = 1;
        }
        train(&d, &job, &res);
        if (job.one_f_one_b) {
            size_t M = job.micro_batches, P = (size_t)d.nranks, s = (size_t)d.rank;
            size_t slots = P - s < M ? P - s : M;
            CHECK(res.peak[MT_MEM_ACTIVATIONS] * M == dp.peak[MT_MEM_ACTIVATIONS] * slots,
                  "1f1b activations %zu B vs gpipe %zu B, want %zu/%zu of it",
                  res.peak[MT_MEM_ACTIVATIONS], dp.peak[MT_MEM_ACTIVATIONS], slots, M);
            printf("rank %d: activations 1f1b %zu B = %zu/%zu of gpipe %zu B\n", d.rank,
                   res.peak[MT_MEM_ACTIVATIONS], slots, M, dp.peak[MT_MEM_ACTIVATIONS]);
        }
        if (job.strategy == MT_DIST_PP) { /* activations forward, their gradients back,
                                           * the tied embedding's gradient end to end */
            size_t BT = job.recipe.batch * job.recipe.seq, C = job.cfg.n_embd;
            int last = d.rank == d.nranks - 1, ends = d.rank == 0 || last;
            double act = (double)steps * BT * C * 4.0,
                   wte = (double)steps * job.cfg.vocab * C * 4.0;
            double sent = (last ? 0 : act) + (d.rank ? act : 0) + (ends ? wte : 0);
            double recv = (d.rank ? act : 0) + (last ? 0 : act) + (ends ? wte : 0);
            CHECK(res.bytes_sent == sent && res.bytes_recv == recv,
                  "sent %.0f received %.0f bytes, want %.0f and %.0f", res.bytes_sent,
                  res.bytes_recv, sent, recv);
        }
        if (job.strategy == MT_DIST_TP) { /* 1/P of the split matrices, the rest replicated */
            size_t C = job.cfg.n_embd, L = job.cfg.n_layer, P = (size_t)d.nranks;
            size_t KV = mt_gpt_kv_dim(&job.cfg); /* k and v width: C without GQA */
            size_t want = job.cfg.vocab * C + job.cfg.seq_len * C + 2 * C +
                          L * (6 * C + ((10 * C + 2 * KV) * C + 5 * C + 2 * KV) / P);
            CHECK(res.flat_params == want && res.peak[MT_MEM_WEIGHTS] == 4 * want,
                  "tp rank holds %zu floats (%zu B), want %zu", res.flat_params,
                  res.peak[MT_MEM_WEIGHTS], want);
        }
        int has_head = job.strategy == MT_DIST_TP || d.rank == d.nranks - 1;
        if (has_head) {
            double e = max_abs(res.logits, ref.logits, logits_n);
            printf("rank %d: %s first logits max abs diff %.3g\n", d.rank, mode, e);
            CHECK(e <= 1e-5, "logits differ by %.3g", e);
        }
        check_losses(res.losses, ref.losses, steps, 1e-4, mode);
        if (d.rank == 0) {
            double e = rel(res.params, ref.params, psi);
            printf("%s final params rel %.3g\n", mode, e);
            CHECK(e <= 1e-4, "final parameters rel %.3g", e);
        }
        release(&res);
    }
    free(ref.losses);
    free(ref.params);
    free(ref.logits);
    mt_corpus_free(&corpus);
    mt_dist_close(&d);
    MPI_Finalize();
    return 0;
}
