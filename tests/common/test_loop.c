/* test_loop.c — the one training loop (workloads/common/loop.h) against a recording engine
 * and against the reference model's own training step.
 *
 *   test_loop order|scale|fail|gpt
 *
 * order  the hooks run in the documented order (zero_grad; per micro-batch forward, the
 *        method's loss, backward; reduce; masks, update, masks; after_step), each
 *        micro-batch is its rows of the step's global batch, which is exactly the next
 *        mt_batch_sample of the seeded stream, the step's loss is the mean over the
 *        micro-batches, final_loss the mean of the last 10 steps, and an accum_steps that
 *        does not divide the batch is refused before any hook runs; with micro_rows the
 *        last micro-batch holds the rest (3 + 1 rows), the step's loss weighs each
 *        micro-batch by its rows, and counts that cannot make the batch are refused.
 * scale  dynamic loss scaling: the scale backward and update see halves after a skipped
 *        step and doubles after scale_window good ones; fixed and none never move.
 * fail   a forward that fails still reaches reduce (failed = 1, so ranks can agree), no
 *        update runs, and the loop returns the engine's message; a reduce that reports
 *        another rank's failure stops the loop with its message.
 * gpt    the loop with mt_loop_gpt_engine on `tiny` reproduces mt_gpt_train_step on the
 *        same batches bit for bit (losses and weights), and reports through a ctx: one
 *        sample and one progress call a step, balanced regions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fake_ctx.h"
#include "loop.h"
#include "mt_check.h"
#include "rng.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

enum { B = 4, T = 8, N_DATA = 4096, STEPS = 12 };

static uint8_t data[N_DATA];

/* What the recording engine and method saw. */
struct rec {
    char log[8192];
    size_t len;
    int ok_batches;    /* every micro-batch was its rows of the expected global batch */
    struct mt_rng ref; /* the stream as the loop must draw it */
    int want[2 * B * T];
    float scales[64];   /* the scale backward saw, per step */
    int skip_at;        /* update reports a skip at this step (-1: never) */
    int fail_forward;   /* forward fails at this step (-1: never) */
    int other_rank_at;  /* reduce reports another rank's failure at this step (-1: never) */
    size_t update_step; /* steps updated so far */
    size_t rows[8];     /* the rows of each micro-batch of the last step */
};

static void logf_(struct rec *r, const char *s)
{
    r->len += (size_t)snprintf(r->log + r->len, sizeof r->log - r->len, "%s ", s);
}

static int *batch_buf(void)
{
    static int buf[2 * B * T];
    return buf;
}

static int e_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                     size_t errlen)
{
    struct rec *r = self;
    char s[16];
    if (b->k == 0) mt_batch_sample(data, N_DATA, B, T, &r->ref, r->want, r->want + B * T);
    size_t off = (size_t)(b->in - batch_buf()); /* every test gives the loop batch_buf() */
    if (b->k < 8) r->rows[b->k] = b->rows;
    if (b->tg != b->in + B * T || b->T != T || b->tokens != B * T ||
        memcmp(b->in, r->want + off, b->rows * T * sizeof(int)) ||
        memcmp(b->tg, r->want + B * T + off, b->rows * T * sizeof(int)))
        r->ok_batches = 0;
    snprintf(s, sizeof s, "F%zu", b->k);
    logf_(r, s);
    *loss = (double)(b->step + b->k); /* the step's mean: step + (K - 1) / 2 */
    if ((int)b->step == r->fail_forward) {
        snprintf(err, errlen, "forward broke at step %zu", b->step);
        return -1;
    }
    return 0;
}

static int e_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                      size_t errlen)
{
    (void)err, (void)errlen;
    struct rec *r = self;
    char s[16];
    snprintf(s, sizeof s, "B%zu", b->k);
    logf_(r, s);
    r->scales[b->step] = scale;
    return 0;
}

static void e_zero(void *self)
{
    logf_(self, "Z");
}

static int e_reduce(void *self, size_t step, int failed, double *loss, char *err, size_t errlen)
{
    (void)loss;
    struct rec *r = self;
    logf_(r, failed ? "R!" : "R");
    if ((int)step == r->other_rank_at) {
        snprintf(err, errlen, "another rank failed in step %zu", step);
        return -1;
    }
    return failed ? -1 : 0;
}

static int e_update(void *self, const struct mt_gpt_recipe *rc, float lr, float scale)
{
    (void)rc, (void)lr, (void)scale;
    struct rec *r = self;
    logf_(r, "U");
    return (int)r->update_step++ == r->skip_at;
}

static int m_loss(void *user, const struct mt_loop_batch *b, double *loss, char *err, size_t errlen)
{
    (void)b, (void)loss, (void)err, (void)errlen;
    logf_(user, "L");
    return 0;
}

static void m_masks(void *user)
{
    logf_(user, "M");
}

static void m_after(void *user, size_t step, double loss)
{
    (void)step, (void)loss;
    logf_(user, "A");
}

/* Runs the recording engine; returns mt_loop_run's result. */
static int run_rec(struct rec *r, struct mt_loop_opts *o, struct mt_loop_result *res, char *err,
                   size_t errlen)
{
    struct mt_loop_engine e = {.self = r,
                               .forward = e_forward,
                               .backward = e_backward,
                               .zero_grad = e_zero,
                               .reduce = e_reduce,
                               .update = e_update};
    struct mt_loop_method me = {.user = r, .loss = m_loss, .masks = m_masks, .after_step = m_after};
    mt_rng_seed(&r->ref, o->batch_seed);
    r->ok_batches = 1;
    return mt_loop_run(NULL, o, &e, &me, data, N_DATA, res, err, errlen);
}

static struct mt_gpt_recipe recipe(size_t steps)
{
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    r.batch = B;
    r.seq = T;
    return r;
}

static void test_order(void)
{
    struct rec r = {.skip_at = -1, .fail_forward = -1, .other_rank_at = -1};
    struct mt_gpt_recipe rp = recipe(STEPS);
    float losses[STEPS];
    struct mt_loop_opts o = {.recipe = &rp,
                             .batch_seed = mt_loop_batch_seed(7),
                             .accum_steps = 2,
                             .batch = batch_buf(),
                             .losses = losses};
    struct mt_loop_result res;
    char err[256] = "";
    CHECK(run_rec(&r, &o, &res, err, sizeof err) == 0, "%s", err);
    CHECK(r.ok_batches, "a micro-batch was not its rows of the stream's global batch");
    char want[8192] = "";
    size_t w = 0;
    for (size_t s = 0; s < STEPS; s++)
        w += (size_t)snprintf(want + w, sizeof want - w, "Z F0 L B0 F1 L B1 R M U M A ");
    CHECK(!strcmp(r.log, want), "hooks ran as\n%s\nnot\n%s", r.log, want);
    double tail = 0.0;
    for (size_t s = 0; s < STEPS; s++) {
        CHECK(losses[s] == (float)s + 0.5f, "step %zu loss %g", s, (double)losses[s]);
        if (s + 10 >= STEPS) tail += (double)s + 0.5;
    }
    CHECK(res.final_loss == tail / 10.0, "final_loss %.17g, want %.17g", res.final_loss,
          tail / 10.0);
    CHECK(res.steps == STEPS && res.skipped == 0 && res.final_scale == 1.0f, "steps %zu",
          res.steps);

    struct rec r3 = {.skip_at = -1, .fail_forward = -1, .other_rank_at = -1};
    o.accum_steps = 3; /* 3 does not divide 4 */
    CHECK(run_rec(&r3, &o, NULL, err, sizeof err) == -1 && strstr(err, "does not divide"), "%s",
          err);
    CHECK(r3.len == 0, "hooks ran before the refusal: %s", r3.log);

    /* micro_rows: micro-batches of 3 rows, the last holding the rest (4 = 3 + 1); each
     * one's loss weighs by its rows: (3 s + 1 (s + 1)) / 4 = s + 0.25 */
    struct rec rr = {.skip_at = -1, .fail_forward = -1, .other_rank_at = -1};
    o.accum_steps = 2, o.micro_rows = 3;
    CHECK(run_rec(&rr, &o, &res, err, sizeof err) == 0, "%s", err);
    CHECK(rr.ok_batches, "a ragged micro-batch was not its rows of the stream's global batch");
    CHECK(!strcmp(rr.log, want), "ragged: hooks ran as\n%s\nnot\n%s", rr.log, want);
    CHECK(rr.rows[0] == 3 && rr.rows[1] == 1, "ragged rows %zu %zu, want 3 1", rr.rows[0],
          rr.rows[1]);
    for (size_t s = 0; s < STEPS; s++)
        CHECK(losses[s] == (float)s + 0.25f, "ragged step %zu loss %g", s, (double)losses[s]);
    /* 3 micro-batches of 3 rows cannot make 4 (the last would be empty), nor 2 of 1 */
    static const size_t bad[2][2] = {{3, 3}, {2, 1}};
    for (size_t i = 0; i < 2; i++) {
        struct rec rb = {.skip_at = -1, .fail_forward = -1, .other_rank_at = -1};
        o.accum_steps = bad[i][0], o.micro_rows = bad[i][1];
        CHECK(run_rec(&rb, &o, NULL, err, sizeof err) == -1 && strstr(err, "do not make batch 4"),
              "accum %zu micro_rows %zu: %s", bad[i][0], bad[i][1], err);
        CHECK(rb.len == 0, "hooks ran before the refusal: %s", rb.log);
    }
}

static void test_scale(void)
{
    struct mt_gpt_recipe rp = recipe(8);
    struct mt_loop_opts o = {.recipe = &rp,
                             .batch_seed = 1,
                             .ls = MT_LS_DYNAMIC,
                             .ls_value = 8.0f,
                             .scale_window = 2,
                             .batch = batch_buf()};
    struct mt_loop_result res;
    char err[256] = "";
    struct rec r = {.skip_at = 1, .fail_forward = -1, .other_rank_at = -1};
    CHECK(run_rec(&r, &o, &res, err, sizeof err) == 0, "%s", err);
    /* step 1 skipped: 4 from step 2; steps 2, 3 good: 8 from step 4; 4, 5: 16; 6, 7: 32 */
    static const float want[8] = {8, 8, 4, 4, 8, 8, 16, 16};
    for (size_t s = 0; s < 8; s++)
        CHECK(r.scales[s] == want[s], "dynamic: step %zu scale %g, want %g", s, (double)r.scales[s],
              (double)want[s]);
    CHECK(res.skipped == 1 && res.final_scale == 32.0f, "skipped %zu, final scale %g", res.skipped,
          (double)res.final_scale);

    o.ls = MT_LS_FIXED;
    struct rec f = {.skip_at = 1, .fail_forward = -1, .other_rank_at = -1};
    CHECK(run_rec(&f, &o, &res, err, sizeof err) == 0, "%s", err);
    for (size_t s = 0; s < 8; s++)
        CHECK(f.scales[s] == 8.0f, "fixed: step %zu scale %g", s, (double)f.scales[s]);
    CHECK(res.skipped == 1 && res.final_scale == 8.0f, "fixed: skipped %zu", res.skipped);

    o.ls = MT_LS_NONE;
    struct rec n = {.skip_at = -1, .fail_forward = -1, .other_rank_at = -1};
    CHECK(run_rec(&n, &o, &res, err, sizeof err) == 0, "%s", err);
    for (size_t s = 0; s < 8; s++)
        CHECK(n.scales[s] == 1.0f, "none: step %zu scale %g", s, (double)n.scales[s]);
}

static void test_fail(void)
{
    struct mt_gpt_recipe rp = recipe(6);
    struct mt_loop_opts o = {.recipe = &rp, .batch_seed = 3, .batch = batch_buf()};
    char err[256] = "";
    struct rec r = {.skip_at = -1, .fail_forward = 2, .other_rank_at = -1};
    CHECK(run_rec(&r, &o, NULL, err, sizeof err) == -1, "a failed forward went unnoticed");
    CHECK(!strcmp(err, "forward broke at step 2"), "message '%s'", err);
    const char *want = "Z F0 L B0 R M U M A Z F0 L B0 R M U M A Z F0 R! ";
    CHECK(!strcmp(r.log, want), "hooks ran as\n%s\nnot\n%s", r.log, want);

    struct rec q = {.skip_at = -1, .fail_forward = -1, .other_rank_at = 1};
    CHECK(run_rec(&q, &o, NULL, err, sizeof err) == -1, "another rank's failure went unnoticed");
    CHECK(!strcmp(err, "another rank failed in step 1"), "message '%s'", err);
    CHECK(q.update_step == 1, "%zu updates, want 1", q.update_step);
}

/* The loop on the reference model against mt_gpt_train_step, step for step. */
static void test_gpt(void)
{
    char err[256];
    struct mt_gpt_config cfg;
    struct mt_gpt *a = NULL, *b = NULL;
    CHECK(mt_gpt_config_preset(&cfg, "tiny", err, sizeof err) == 0, "%s", err);
    size_t Tm = 16, Bm = 4, steps = 5;
    struct mt_gpt_recipe rp = mt_gpt_recipe_default(steps);
    rp.batch = Bm;
    rp.seq = Tm;
    if (mt_gpt_create(&a, &cfg, MT_GPT_TRAIN, Bm, Tm, err, sizeof err) ||
        mt_gpt_create(&b, &cfg, MT_GPT_TRAIN, Bm, Tm, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    mt_gpt_init(a, 11);
    mt_gpt_init(b, 11);
    float want[8], got[8];
    int *in = malloc(2 * Bm * Tm * sizeof *in), *tg = in + Bm * Tm;
    struct mt_rng rng;
    mt_rng_seed(&rng, mt_loop_batch_seed(11));
    for (size_t s = 0; s < steps; s++) {
        mt_batch_sample(data, N_DATA, Bm, Tm, &rng, in, tg);
        CHECK(mt_gpt_train_step(a, &rp, s, in, tg, &want[s], NULL, err, sizeof err) == 0, "%s",
              err);
    }
    free(in);

    static const struct mt_workload wl = {.name = "loop"};
    static struct fake_ctx f;
    fake_ctx_init(&f, &wl, NULL, 0);
    f.threads = 2;
    struct mt_loop_engine e;
    mt_loop_gpt_engine(&e, b);
    struct mt_loop_opts o = {
        .recipe = &rp, .batch_seed = mt_loop_batch_seed(11), .series = "train_loss", .losses = got};
    struct mt_loop_result res;
    CHECK(mt_loop_run(&f.base, &o, &e, NULL, data, N_DATA, &res, err, sizeof err) == 0, "%s", err);
    for (size_t s = 0; s < steps; s++)
        CHECK(got[s] == want[s], "step %zu: loop %.9g, mt_gpt_train_step %.9g", s, (double)got[s],
              (double)want[s]);
    CHECK(!memcmp(a->params, b->params, a->slab_bytes[MT_MEM_WEIGHTS]),
          "weights differ from mt_gpt_train_step's");
    CHECK(f.n_samples == steps && f.progress_done == (double)steps && f.open_regions == 0 &&
              f.region_errors == 0 && f.regions_begun == 1 + 3 * steps,
          "samples %zu, progress %g, regions begun %zu, open %zu, errors %zu", f.n_samples,
          f.progress_done, f.regions_begun, f.open_regions, f.region_errors);
    mt_gpt_free(a);
    mt_gpt_free(b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_loop order|scale|fail|gpt\n");
        return 2;
    }
    for (size_t i = 0; i < N_DATA; i++) /* text-like bytes: a slow walk over letters */
        data[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
    if (!strcmp(argv[1], "order"))
        test_order();
    else if (!strcmp(argv[1], "scale"))
        test_scale();
    else if (!strcmp(argv[1], "fail"))
        test_fail();
    else if (!strcmp(argv[1], "gpt"))
        test_gpt();
    else
        return fprintf(stderr, "unknown case %s\n", argv[1]), 2;
    return mt_check_status(failures);
}
