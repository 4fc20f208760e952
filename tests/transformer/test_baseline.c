/* test_baseline.c — the `baseline` plugin run through the fake ctx of tests/support.
 *
 * What it is for: the plugin .so loads by its exported descriptor, trains tiny for 20
 * steps, reports every standard metric with its unit (val_bpb = val_loss / ln 2, the
 * model learned something: val_bpb < 7 where uniform is 8), pairs its regions, reports
 * 20 loss samples and full progress, writes the cache; a second run loads the cache
 * (training metrics unavailable, with a reason) and evaluates to the identical loss; a
 * damaged cache file is refused and replaced by retraining to the same loss; a bad
 * parameter fails with a message. What it is not for: the real harness.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_ctx.h"
#include "gpt.h"
#include "tf_test.h"

static const struct fake_metric *need(const struct fake_ctx *f, const char *name, const char *unit)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    if (!m || strcmp(m->unit, unit)) {
        fprintf(stderr, "metric %s missing or unit not %s\n", name, unit);
        exit(1);
    }
    return m;
}

int main(void)
{
    void *so = dlopen(BASELINE_SO, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dlopen %s: %s\n", BASELINE_SO, dlerror());
        return 1;
    }
    const struct mt_workload *wl = dlsym(so, MEMTRADE_WORKLOAD_SYMBOL);
    CHECK(wl && wl->abi_major == MEMTRADE_WORKLOAD_ABI_MAJOR && wl->run);
    CHECK(!strcmp(wl->name, "baseline"));

    const char *ov[] = {"model=tiny", "steps=20", "eval_tokens=4096"};
    struct fake_ctx f;
    fake_ctx_init(&f, wl, ov, 3);
    snprintf(f.cache_dir, sizeof f.cache_dir, "/tmp/mt_test_baseline_%ld", (long)getpid());
    CHECK(mkdir(f.cache_dir, 0700) == 0);
    size_t est = wl->mem_estimate(&f.base);
    printf("mem_estimate %zu bytes\n", est);
    CHECK(est > 0);

    int rc = wl->run(&f.base);
    if (rc) fprintf(stderr, "run failed: %s\n", f.error);
    CHECK(rc == 0);
    double loss = need(&f, "val_loss", "nats/byte")->value;
    double bpb = need(&f, "val_bpb", "bits/byte")->value;
    CHECK(fabs(bpb - loss / log(2.0)) < 1e-9);
    CHECK(bpb < 7.0);
    need(&f, "val_ppl", "ratio");
    need(&f, "val_top1", "ratio");
    need(&f, "eval_tokens_per_s", "tokens/s");
    need(&f, "decode_tokens_per_s", "tokens/s");
    CHECK(need(&f, "kv_cache_bytes", "bytes")->value == 2 * 2 * 64 * 64 * 4); /* L 2 T C 4 */
    CHECK(need(&f, "model_bytes", "bytes")->value > 0);
    { /* accounted serving memory by category: what a deployment holds. The weights are
       * the weight slab (the stored bytes plus at most 63 bytes of alignment per tensor,
       * 16 tensors), the cache is the cache alone at the declared context (its scratch,
       * the decode step's activations, counts as workspace), and nothing of the
       * evaluation batch is in it */
        double w = need(&f, "infer_peak_weights_bytes", "bytes")->value;
        double stored = need(&f, "model_bytes", "bytes")->value;
        CHECK(w >= stored && w - stored <= 63.0 * 16);
        CHECK(need(&f, "decode_context", "tokens")->value == 64);
        CHECK(need(&f, "infer_peak_kv_cache_bytes", "bytes")->value == 2 * 2 * 64 * 64 * 4);
        CHECK(fake_ctx_metric(&f, "infer_peak_activations_bytes") == NULL);
        CHECK(fake_ctx_metric(&f, "infer_peak_data_bytes") == NULL);
        /* the totals from the plan, not from the plugin's sums; the weight slab by hand:
         * each of the 16 tensors rounded up to 64 bytes */
        struct mt_gpt_config cfg;
        char err[256];
        CHECK(mt_gpt_config_parse(&cfg, "tiny", err, sizeof err) == 0);
        size_t plan[MT_MEM_CAT_COUNT], kv = 0, kv_scratch = 0;
        size_t slabs = mt_gpt_memory(&cfg, 8, 64, MT_GPT_INFER, plan, err, sizeof err);
        mt_gpt_kv_memory(&cfg, 64, &kv, &kv_scratch);
        size_t C = 64, L = 2,
               lens[] = {256 * C,       64 * C, L * C, L * C, L * 3 * C * C, L * 3 * C,
                         L * C * C,     L * C,  L * C, L * C, L * 4 * C * C, L * 4 * C,
                         L * 4 * C * C, L * C,  C,     C};
        size_t wbytes = 0;
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            wbytes += (lens[i] * 4 + 63) / 64 * 64;
        CHECK(plan[MT_MEM_WEIGHTS] == wbytes && w == (double)wbytes);
        CHECK(kv == 2 * 2 * 64 * 64 * 4 && kv_scratch > 0);
        /* the decode step's scratch and the cache's bookkeeping: one block-table entry,
         * a length, a held count and a first block, one free-list slot (4 + 3 x 8 + 4) */
        kv_scratch += 32;
        CHECK(need(&f, "infer_peak_workspace_bytes", "bytes")->value == (double)kv_scratch);
        double peak = need(&f, "infer_peak_bytes", "bytes")->value;
        printf("infer_peak_bytes %.0f = weights %zu + kv %zu + scratch %zu\n", peak, wbytes, kv,
               kv_scratch);
        CHECK(peak == (double)(wbytes + kv + kv_scratch));
        /* the evaluation's own peak: the inference-mode slabs of its batch (8 x 64) and
         * (data) mt_gpt_eval's inputs and targets, the base's rows of one batch (8 x 64 x
         * 256 floats) and the per-position KL (4096 doubles: the KL against itself,
         * serving.h); no KV cache */
        size_t data = 2 * 8 * 64 * sizeof(int) + 8 * 64 * 256 * sizeof(float) + 4096 * 8;
        CHECK(need(&f, "eval_peak_activations_bytes", "bytes")->value ==
              (double)plan[MT_MEM_ACTIVATIONS]);
        CHECK(need(&f, "eval_peak_data_bytes", "bytes")->value == (double)data);
        CHECK(fake_ctx_metric(&f, "eval_peak_kv_cache_bytes") == NULL);
        CHECK(need(&f, "kl_mean", "nats")->value == 0.0 &&
              need(&f, "delta_ppl", "ratio")->value == 0.0);
        double eval_peak = need(&f, "eval_peak_bytes", "bytes")->value;
        printf("eval_peak_bytes %.0f = plan %zu + data %zu\n", eval_peak, slabs, data);
        CHECK(eval_peak == (double)(slabs + data));
    }
    /* the evaluation's matmuls ran as oneDNN primitives, none fell back (counted) */
    CHECK(need(&f, "matmul_prims", "count")->value > 0);
    CHECK(need(&f, "matmul_fallbacks", "count")->value == 0);
    const struct fake_metric *tp = need(&f, "train_peak_bytes", "bytes");
    CHECK(!tp->na && tp->value > 0 && tp->value < (double)est);
    CHECK(!need(&f, "train_tokens_per_s", "tokens/s")->na);
    CHECK(f.n_samples == 20 && f.progress_done == 20 && f.progress_total == 20);
    /* train, 3 per step, base_eval (the base distributions), infer, decode, eval */
    CHECK(f.open_regions == 0 && f.region_errors == 0 && f.regions_begun == 1 + 3 * 20 + 4);
    CHECK(strstr(f.last_sample_log, "meaning of life") != NULL);

    struct fake_ctx g; /* the same recipe again: from the cache */
    fake_ctx_init(&g, wl, ov, 3);
    memcpy(g.cache_dir, f.cache_dir, sizeof g.cache_dir);
    CHECK(wl->run(&g.base) == 0);
    CHECK(need(&g, "train_tokens_per_s", "tokens/s")->na);
    CHECK(need(&g, "val_loss", "nats/byte")->value == loss);
    CHECK(g.n_samples == 0);

    /* a damaged cache file is refused, the baseline retrained to the same weights and the
     * file replaced */
    char cmd0[600];
    snprintf(cmd0, sizeof cmd0,
             "f=$(ls '%s'/*.mtckpt) && printf '\\377' | dd of=\"$f\" bs=1 seek=300 "
             "conv=notrunc status=none",
             f.cache_dir);
    CHECK(system(cmd0) == 0);
    struct fake_ctx k;
    fake_ctx_init(&k, wl, ov, 3);
    memcpy(k.cache_dir, f.cache_dir, sizeof k.cache_dir);
    CHECK(wl->run(&k.base) == 0);
    CHECK(!need(&k, "train_tokens_per_s", "tokens/s")->na); /* trained again */
    CHECK(need(&k, "val_loss", "nats/byte")->value == loss);
    CHECK(k.n_warnings >= 1);

    const char *bad[] = {"model=huge"};
    struct fake_ctx h;
    fake_ctx_init(&h, wl, bad, 1);
    CHECK(wl->run(&h.base) != 0 && strstr(h.error, "huge"));
    printf("bad model refused: %s\n", h.error);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.cache_dir);
    CHECK(system(cmd) == 0);
    /* no dlclose: the plugin's OpenMP worker threads outlive run(), as in the harness's
     * child, and LeakSanitizer cannot walk threads whose code was unmapped */
    printf("ok\n");
    return 0;
}
