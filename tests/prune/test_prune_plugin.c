/* test_prune_plugin.c — the `prune` plugin run through the fake ctx of tests/transformer.
 *
 * What it is for: the .so loads by its descriptor; on `tiny` (20-step cached baseline):
 * wanda at 50 % reports every layer at exactly 50 % sparsity, model_bytes equal to
 * sparse_bytes + fp32_bytes and below the dense fp32 model, infer_peak_bytes, the
 * standard accuracy and speed metrics with their units, paired regions; heads at 50 %
 * stores fewer bytes than unstructured 50 % would need for the same layers' fp32 and
 * leaves the MLP untouched; nm 2:4 with a 5-step fine-tune keeps every layer at exactly
 * 50 %; a bad N:M string fails with a message. What it is not for: the harness.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fake_ctx.h"

static const struct mt_workload *wl;
static char cache_dir[256];

static int run_with(struct fake_ctx *f, const char **ov, size_t n)
{
    fake_ctx_init(f, wl, ov, n);
    snprintf(f->cache_dir, sizeof(f->cache_dir), "%s", cache_dir);
    int rc = wl->run(&f->base);
    if (rc)
        fprintf(stderr, "run failed: %s\n", f->error);
    CHECK(f->open_regions == 0 && f->region_errors == 0, "regions unpaired");
    return rc;
}

static double need(const struct fake_ctx *f, const char *name, const char *unit)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    CHECK(m && strcmp(m->unit, unit) == 0 && !m->na, "metric %s missing or not in %s", name,
          unit);
    return m ? m->value : NAN;
}

static void test_wanda(void)
{
    const char *ov[] = {"model=tiny", "steps=20", "eval_tokens=4096", "decode_tokens=16",
                        "method=wanda", "sparsity=0.5", "calib_batches=2"};
    struct fake_ctx f;
    if (run_with(&f, ov, 7)) {
        failures++;
        return;
    }
    need(&f, "val_loss", "nats/byte");
    need(&f, "val_bpb", "bits/byte");
    need(&f, "val_top1", "ratio");
    need(&f, "eval_tokens_per_s", "tokens/s");
    need(&f, "decode_tokens_per_s", "tokens/s");
    CHECK(need(&f, "sparsity", "ratio") == 0.5, "sparsity %g", need(&f, "sparsity", "ratio"));
    CHECK(need(&f, "layer.h1.fcproj.sparsity", "ratio") == 0.5, "per-layer sparsity");
    double model = need(&f, "model_bytes", "bytes");
    CHECK(model == need(&f, "sparse_bytes", "bytes") + need(&f, "fp32_bytes", "bytes"),
          "model_bytes is not its parts");
    CHECK(model < need(&f, "n_params", "count") * 4.0, "pruned model %g not smaller", model);
    CHECK(need(&f, "infer_peak_bytes", "bytes") > model, "infer_peak_bytes below the weights");
}

static void test_heads(void)
{
    const char *ov[] = {"model=tiny", "steps=20", "eval_tokens=4096", "decode_tokens=0",
                        "method=heads", "sparsity=0.5", "calib_batches=2"};
    struct fake_ctx f;
    if (run_with(&f, ov, 7)) {
        failures++;
        return;
    }
    /* tiny: C=64, 2 heads; one head per layer goes: q/k/v and attproj lose half */
    CHECK(need(&f, "layer.h0.qkv.sparsity", "ratio") == 0.5, "qkv");
    CHECK(need(&f, "layer.h0.attproj.sparsity", "ratio") == 0.5, "attproj");
    CHECK(need(&f, "layer.h0.fc.sparsity", "ratio") == 0.0, "fc touched");
    CHECK(need(&f, "layers_dense", "count") == 8, "structured layers stay dense, smaller");
}

static void test_nm_finetune(void)
{
    const char *ov[] = {"model=tiny", "steps=20",        "eval_tokens=4096",
                        "method=nm",  "finetune_steps=5", "decode_tokens=0"};
    struct fake_ctx f;
    if (run_with(&f, ov, 6)) {
        failures++;
        return;
    }
    CHECK(need(&f, "sparsity", "ratio") == 0.5, "2:4 sparsity");
    CHECK(need(&f, "layers_nm", "count") == 8, "2:4 layers not stored N:M");
    need(&f, "finetune_tokens_per_s", "tokens/s");
    const char *bad[] = {"model=tiny", "steps=20", "method=nm", "nm=5:4"};
    struct fake_ctx g;
    fake_ctx_init(&g, wl, bad, 4);
    snprintf(g.cache_dir, sizeof(g.cache_dir), "%s", cache_dir);
    CHECK(wl->run(&g.base) != 0 && strstr(g.error, "N:M"), "5:4 accepted: %s", g.error);
}

int main(int argc, char **argv)
{
    void *so = dlopen(PRUNE_SO, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dlopen %s: %s\n", PRUNE_SO, dlerror());
        return 1;
    }
    wl = dlsym(so, MEMTRADE_WORKLOAD_SYMBOL);
    if (!wl || wl->abi_major != MEMTRADE_WORKLOAD_ABI_MAJOR || strcmp(wl->name, "prune")) {
        fprintf(stderr, "bad descriptor\n");
        return 1;
    }
    snprintf(cache_dir, sizeof(cache_dir), "%s", argc > 2 ? argv[2] : "/tmp");
    mkdir(cache_dir, 0700);
    static const struct mt_test tests[] = {
        {"wanda", test_wanda}, {"heads", test_heads}, {"nm_finetune", test_nm_finetune}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), argc > 1 ? argv[1] : NULL);
}
