/* loop.c — the one training loop and the reference model's engine (see loop.h). */
#include "loop.h"

#include <stdio.h>
#include <stdlib.h>

#include "data.h"
#include "rng.h"
#include "wlcommon.h"

#define LOG_EVERY 100 /* steps between log lines */
#define TAIL 10       /* steps the final loss is the mean of */

uint64_t mt_loop_batch_seed(uint64_t seed)
{
    return seed ^ MT_WL_BATCH_STREAM;
}

static void region(struct mt_ctx *ctx, const char *name, int begin)
{
    if (!ctx) return;
    if (begin)
        mt_region_begin(ctx, name);
    else
        mt_region_end(ctx, name);
}

/* The micro-batches of one step: forward, the method's loss, backward. Returns 0 or -1;
 * *loss is the step's (mean over the micro-batches). */
static int micro_batches(struct mt_ctx *ctx, const struct mt_loop_opts *o,
                         const struct mt_loop_engine *e, const struct mt_loop_method *me,
                         const int *in, const int *tg, size_t step, float scale, double *loss,
                         char *err, size_t errlen)
{
    size_t B = o->recipe->batch, T = o->recipe->seq, K = o->accum_steps ? o->accum_steps : 1;
    size_t rows = o->micro_rows ? o->micro_rows : B / K;
    int even = rows * K == B; /* else the last micro-batch holds the rest */
    int rc = 0;
    *loss = 0.0;
    for (size_t k = 0; k < K && !rc; k++) {
        size_t here = k + 1 < K || even ? rows : B - k * rows;
        /* each micro-batch's mean loss weighs by its rows; even ones as before, bit for bit */
        double w = even ? 1.0 / (double)K : (double)here / (double)B;
        struct mt_loop_batch b = {.in = in + k * rows * T,
                                  .tg = tg + k * rows * T,
                                  .rows = here,
                                  .T = T,
                                  .k = k,
                                  .step = step,
                                  .tokens = B * T};
        double l = 0.0;
        region(ctx, e->backward ? "forward" : "pipeline", 1);
        rc = e->forward(e->self, &b, &l, err, errlen);
        if (!rc && me && me->loss) rc = me->loss(me->user, &b, &l, err, errlen);
        region(ctx, e->backward ? "forward" : "pipeline", 0);
        if (rc || !e->backward) {
            *loss += even ? l / (double)K : l * w;
            continue;
        }
        region(ctx, "backward", 1);
        rc = e->backward(e->self, &b, scale, err, errlen);
        region(ctx, "backward", 0);
        *loss += even ? l / (double)K : l * w;
    }
    return rc;
}

int mt_loop_run(struct mt_ctx *ctx, const struct mt_loop_opts *o, const struct mt_loop_engine *e,
                const struct mt_loop_method *me, const uint8_t *data, size_t n,
                struct mt_loop_result *res, char *err, size_t errlen)
{
    struct mt_tokens s = mt_tokens_of_bytes(data, n);
    return mt_loop_run_tokens(ctx, o, e, me, &s, res, err, errlen);
}

int mt_loop_run_tokens(struct mt_ctx *ctx, const struct mt_loop_opts *o,
                       const struct mt_loop_engine *e, const struct mt_loop_method *me,
                       const struct mt_tokens *data, struct mt_loop_result *res, char *err,
                       size_t errlen)
{
    const struct mt_gpt_recipe *r = o->recipe;
    size_t B = r->batch, T = r->seq, K = o->accum_steps ? o->accum_steps : 1;
    struct mt_loop_result local = {0};
    if (!res) res = &local;
    *res = (struct mt_loop_result){.final_scale = 1.0f};
    if (o->micro_rows ? o->micro_rows * (K - 1) >= B || o->micro_rows * K < B : B % K != 0) {
        if (o->micro_rows)
            snprintf(err, errlen,
                     "%zu micro-batches of %zu rows (the last holding the rest) do not make "
                     "batch %zu",
                     K, o->micro_rows, B);
        else
            snprintf(err, errlen, "accum_steps %zu does not divide batch %zu", K, B);
        return -1;
    }
    int *in = o->batch ? o->batch : (ctx ? mt_wl_batch_alloc(ctx, B * T) : NULL);
    if (!in) {
        snprintf(err, errlen,
                 ctx ? "out of memory for training batches"
                     : "no batch buffer given and no ctx to allocate one");
        return -1;
    }
    int *tg = in + B * T;
    struct mt_rng rng;
    mt_rng_seed(&rng, o->batch_seed);
    float scale = o->ls == MT_LS_NONE ? 1.0f : o->ls_value;
    size_t good = 0, window = o->scale_window ? o->scale_window : 1, ntail = 0;
    double t0 = mt_wl_now(), tail = 0.0;
    int rc = 0;
    region(ctx, o->region ? o->region : "train", 1);
    for (size_t step = 0; step < r->steps && !rc; step++) {
        double loss = 0.0;
        float lr = mt_gpt_lr_at(r, step);
        mt_batch_sample_tokens(data, B, T, &rng, in, tg);
        if (e->zero_grad) e->zero_grad(e->self);
        rc = micro_batches(ctx, o, e, me, in, tg, step, scale, &loss, err, errlen);
        if (e->reduce) rc = e->reduce(e->self, step, rc, &loss, err, errlen);
        if (rc) break;
        region(ctx, "optimizer", 1);
        if (me && me->masks) me->masks(me->user);
        if (e->update(e->self, r, lr, scale)) { /* overflow: skipped, back off */
            res->skipped++;
            good = 0;
            if (o->ls == MT_LS_DYNAMIC) scale *= 0.5f;
        } else if (o->ls == MT_LS_DYNAMIC && ++good == window) {
            scale *= 2.0f;
            good = 0;
        }
        if (me && me->masks) me->masks(me->user);
        region(ctx, "optimizer", 0);
        if (me && me->after_step) me->after_step(me->user, step, loss);
        if (o->losses) o->losses[step] = (float)loss;
        if (step + TAIL >= r->steps) {
            tail += loss;
            ntail++;
        }
        if (!ctx) continue;
        if (o->series) mt_sample(ctx, o->series, (double)step, loss);
        mt_progress(ctx, (double)(step + 1), (double)r->steps);
        if (step % LOG_EVERY == 0 || step + 1 == r->steps)
            mt_log(ctx, MT_LOG_INFO, "step %zu/%zu loss %.4f lr %.2e scale %g", step + 1, r->steps,
                   loss, (double)lr, (double)scale);
    }
    region(ctx, o->region ? o->region : "train", 0);
    if (!o->batch) free(in);
    res->seconds = mt_wl_now() - t0;
    if (rc) return -1;
    res->steps = r->steps;
    res->final_loss = ntail ? tail / (double)ntail : 0.0;
    res->final_scale = scale;
    return 0;
}

/* ---------------------------------------------------------------- the reference model */

static int gpt_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                       size_t errlen)
{
    float l = 0.0f;
    int rc = mt_gpt_forward(self, b->in, b->tg, b->rows, b->T, &l, err, errlen);
    *loss = l;
    return rc;
}

static int gpt_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                        size_t errlen)
{
    return mt_gpt_backward(self, scale, b->tokens, err, errlen);
}

static void gpt_zero_grad(void *self)
{
    mt_gpt_zero_grad(self);
}

static int gpt_update(void *self, const struct mt_gpt_recipe *r, float lr, float scale)
{
    mt_gpt_adamw_step(self, r, lr, scale);
    return 0;
}

void mt_loop_gpt_engine(struct mt_loop_engine *e, struct mt_gpt *m)
{
    *e = (struct mt_loop_engine){.self = m,
                                 .forward = gpt_forward,
                                 .backward = gpt_backward,
                                 .zero_grad = gpt_zero_grad,
                                 .update = gpt_update};
}
