/* test_plugins.c — the four training-memory plugins through a fake ctx
 * (tests/support/fake_ctx.c): the shared loop's loss scaling, metrics and regions.
 *
 * What it is for:
 *   - each plugin loads, declares every knob, and runs on tiny reporting the standard
 *     metrics with units; the memory metrics equal the engine's plan;
 *   - fp16 without loss scaling reports gradient underflow; fp16 with dynamic scaling
 *     trains (the loss falls) with less underflow; a fixed scale that overflows fp16
 *     skips every step and the model does not move;
 *   - checkpointing reports recompute time and the recompute regions pair;
 *   - mempool (malloc) makes many allocation calls per step, the pool a handful;
 *   - bad knobs are refused with a message naming them.
 * What it is not for: exactness of the engine (test_engine.c).
 */
#include <dlfcn.h>
#include <math.h>
#include <string.h>

#include "fake_ctx.h"
#include "tmodel.h"
#include "tf_test.h"

enum { STEPS = 20 };

static const struct mt_workload *load(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        exit(1);
    }
    const struct mt_workload *wl = dlsym(so, MEMTRADE_WORKLOAD_SYMBOL);
    CHECK(wl && wl->abi_major == MEMTRADE_WORKLOAD_ABI_MAJOR && !strcmp(wl->name, name));
    static const char *const knobs[] = {"model",          "steps",       "batch",       "lr",
                                        "seed",           "micro_batch", "accum_steps", "precision",
                                        "master_weights", "loss_scale",  "every",       "alloc"};
    for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
        size_t i = 0;
        while (i < wl->n_params && strcmp(wl->params[i].name, knobs[k]))
            i++;
        CHECK(i < wl->n_params);
    }
    return wl;
}

/* Runs wl with the common short settings plus `extra` overrides; returns the ctx. */
static struct fake_ctx *run(const struct mt_workload *wl, const char **extra, size_t n,
                            int expect_ok)
{
    static struct fake_ctx f;
    static const char *const common[] = {"model=tiny", "steps=20", "batch=8", "eval_tokens=2048"};
    const char *ov[FAKE_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* first: the fake ctx takes the first match */
        ov[k++] = extra[i];
    for (size_t i = 0; i < 4; i++)
        ov[k++] = common[i];
    fake_ctx_init(&f, wl, ov, k);
    f.threads = 1; /* OpenMP barriers crawl on a loaded 2-core machine */
    snprintf(f.cache_dir, sizeof f.cache_dir, "/tmp");
    CHECK((wl->mem_estimate(&f.base) > 0) == expect_ok);
    int rc = wl->run(&f.base);
    if (expect_ok && rc) fprintf(stderr, "%s failed: %s\n", wl->name, f.error);
    CHECK((rc == 0) == expect_ok);
    CHECK(f.open_regions == 0 && f.region_errors == 0);
    return &f;
}

static double metric(const struct fake_ctx *f, const char *name, const char *unit)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    if (!m || m->na || strcmp(m->unit, unit)) {
        fprintf(stderr, "metric %s missing, unavailable or not in %s\n", name, unit);
        exit(1);
    }
    return m->value;
}

static void check_memory(const struct fake_ctx *f, size_t micro, enum mt_prec p, size_t every,
                         int pool)
{
    struct mt_gpt_config cfg;
    char err[256];
    CHECK(mt_gpt_config_parse(&cfg, "tiny", err, sizeof err) == 0);
    struct mt_tmodel_opts o = {.micro_batch = micro,
                               .seq = 64,
                               .prec = p,
                               .master_weights = 1,
                               .every = every,
                               .pool = pool};
    struct mt_tmodel_plan plan;
    CHECK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err) == 0);
    CHECK(metric(f, "train_peak_weights_bytes", "bytes") == (double)plan.bytes[MT_MEM_WEIGHTS]);
    CHECK(metric(f, "train_peak_gradients_bytes", "bytes") ==
          (double)plan.bytes[MT_MEM_GRADIENTS]);
    CHECK(metric(f, "train_peak_optimizer_bytes", "bytes") ==
          (double)plan.bytes[MT_MEM_OPTIMIZER]);
    /* the batch in flight: 8 windows of 64 input tokens and 64 targets, 4-byte ints */
    double data = 2.0 * 8 * 64 * 4;
    CHECK(metric(f, "train_peak_data_bytes", "bytes") == data);
    if (pool) {
        CHECK(metric(f, "train_peak_bytes", "bytes") == (double)plan.total + data);
        CHECK(metric(f, "train_peak_activations_bytes", "bytes") ==
              (double)plan.bytes[MT_MEM_ACTIVATIONS]);
    }
}

static void standard(const struct fake_ctx *f)
{
    double loss = metric(f, "val_loss", "nats/byte");
    CHECK(fabs(metric(f, "val_bpb", "bits/byte") - loss / log(2.0)) < 1e-9);
    metric(f, "train_tokens_per_s", "tokens/s");
    metric(f, "train_loss", "nats/byte");
    metric(f, "recompute_s", "s");
    metric(f, "alloc_calls", "count");
    const struct fake_metric *frag = fake_ctx_metric(f, "fragmentation_bytes");
    CHECK(frag && !strcmp(frag->unit, "bytes")); /* unavailable under ASan's malloc */
    CHECK(fake_ctx_metric(f, "heap_free_bytes"));
    metric(f, "train_peak_rss_bytes", "bytes");
    CHECK(f->n_samples == STEPS && f->progress_done == STEPS);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    const char *dir = argv[1];

    const struct mt_workload *ga = load(dir, "grad_accum");
    struct fake_ctx *f = run(ga, NULL, 0, 1);
    standard(f);
    check_memory(f, 2, MT_PREC_FP32, 1, 1); /* default accum_steps 4: micro-batch 8/4 */
    double ga_loss = metric(f, "train_loss", "nats/byte");
    CHECK(ga_loss < 4.0);
    CHECK(fake_ctx_metric(f, "grad_underflow_frac")->na);
    const char *bad1[] = {"micro_batch=3", "accum_steps=0"};
    f = run(ga, bad1, 2, 0);
    CHECK(strstr(f->error, "micro_batch 3"));
    printf("refused: %s\n", f->error);

    const struct mt_workload *mp = load(dir, "mixed_precision");
    const char *none[] = {"precision=fp16", "loss_scale=none"};
    f = run(mp, none, 2, 1);
    double uf_none = metric(f, "grad_underflow_frac", "ratio");
    CHECK(uf_none > 0.0 && metric(f, "skipped_steps", "count") == 0);
    const char *dyn[] = {"precision=fp16", "scale_window=5"};
    f = run(mp, dyn, 2, 1);
    standard(f);
    check_memory(f, 8, MT_PREC_FP16, 1, 1);
    double uf_dyn = metric(f, "grad_underflow_frac", "ratio");
    double dyn_loss = metric(f, "train_loss", "nats/byte");
    printf("fp16: underflow %.4f unscaled, %.6f dynamic (%g skipped, final scale %g), "
           "train loss %.3f\n",
           uf_none, uf_dyn, metric(f, "skipped_steps", "count"),
           metric(f, "loss_scale_final", "ratio"), dyn_loss);
    CHECK(uf_dyn < uf_none / 4);
    CHECK(dyn_loss < 4.0);
    const char *huge[] = {"precision=fp16", "loss_scale=1e12", "steps=5"};
    f = run(mp, huge, 3, 1);
    CHECK(metric(f, "skipped_steps", "count") == 5);
    CHECK(metric(f, "train_loss", "nats/byte") > 5.0); /* never updated: still ~ln 256 */
    /* a scale of 1e-45 (fp32's smallest subnormal) zeroes every gradient: with no nonzero
     * contribution there is no fraction, so it is unavailable with the reason, not 0 */
    const char *tinyscale[] = {"precision=bf16", "loss_scale=1e-45", "steps=1"};
    f = run(mp, tinyscale, 3, 1);
    CHECK(metric(f, "grad_underflow_count", "count") == 0);
    const struct fake_metric *uf0 = fake_ctx_metric(f, "grad_underflow_frac");
    CHECK(uf0 && uf0->na && strstr(uf0->reason, "nonzero"));
    const char *bad2[] = {"loss_scale=lots"};
    f = run(mp, bad2, 1, 0);
    CHECK(strstr(f->error, "lots"));

    const struct mt_workload *ck = load(dir, "checkpointing");
    const char *two[] = {"every=2"};
    f = run(ck, two, 1, 1);
    standard(f);
    check_memory(f, 8, MT_PREC_FP32, 2, 1);
    CHECK(metric(f, "recompute_s", "s") > 0.0 && metric(f, "recomputed_blocks", "count") == STEPS);
    /* train + per step (forward, backward, one recompute, optimizer) + eval */
    CHECK(f->regions_begun == 1 + STEPS * 4 + 1);
    CHECK(fabs(metric(f, "train_loss", "nats/byte") - ga_loss) < 1e-3);
    const char *bad3[] = {"every=3"};
    f = run(ck, bad3, 1, 0);
    CHECK(strstr(f->error, "every"));

    const struct mt_workload *mm = load(dir, "mempool");
    f = run(mm, NULL, 0, 1);
    standard(f);
    check_memory(f, 8, MT_PREC_FP32, 1, 0);
    double calls_malloc = metric(f, "alloc_calls_per_step", "count");
    const char *pool[] = {"alloc=pool"};
    f = run(mm, pool, 1, 1);
    double calls_pool = metric(f, "alloc_calls_per_step", "count");
    printf("allocation calls per step: malloc %.1f, pool %.2f\n", calls_malloc, calls_pool);
    CHECK(calls_malloc > 30 && calls_pool < 1); /* tiny: 39 tensors per step */
    printf("ok\n");
    return 0;
}
