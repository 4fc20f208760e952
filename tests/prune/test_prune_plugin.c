/* test_prune_plugin.c — the `prune` plugin run through the fake ctx of tests/support.
 *
 * What it is for: the .so loads by its descriptor; on `tiny` (20-step cached baseline):
 * wanda at 50 % reports every layer at exactly 50 % sparsity, stored as bitmap, and
 * sparse_bytes, fp32_bytes and model_bytes equal to the bytes worked out from the
 * shapes, infer_peak_bytes, the standard accuracy and speed metrics with their units,
 * paired regions; heads at 50 % stores fewer bytes than unstructured 50 % would need for
 * the same layers' fp32 and leaves the MLP untouched; nm 2:4 with a 5-step fine-tune
 * keeps every layer at exactly 50 %; a bad N:M string fails with a message; `storage`:
 * dense keeps every weight (model_bytes = n_params x 4 exactly) and csr stores every
 * layer CSR, both with the default's validation loss within 1e-5, fastest reports every
 * layer's timings and their sums, nm with method=magnitude fails naming the valid
 * choices.
 * What it is not for: the harness.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "plugin_check.h"
#include "sparse.h"

static size_t up64(size_t n)
{
    return (n + 63) / 64 * 64;
}

static void test_wanda(void)
{
    const char *ov[] = {"model=tiny",   "steps=20",     "eval_tokens=4096", "decode_tokens=16",
                        "method=wanda", "sparsity=0.5", "calib_batches=2"};
    struct fake_ctx f;
    if (plugin_run(&f, ov, 7)) return;
    plugin_need(&f, "val_loss", "nats/byte");
    plugin_need(&f, "val_bpb", "bits/byte");
    plugin_need(&f, "val_top1", "ratio");
    plugin_need(&f, "eval_tokens_per_s", "tokens/s");
    plugin_need(&f, "decode_tokens_per_s", "tokens/s");
    CHECK(plugin_need(&f, "sparsity", "ratio") == 0.5, "sparsity %g",
          plugin_need(&f, "sparsity", "ratio"));
    CHECK(plugin_need(&f, "layer.h1.fcproj.sparsity", "ratio") == 0.5, "per-layer sparsity");
    /* The stored bytes from the shapes alone (tiny: V 256, T 64, C 64, L 2). Wanda at 50 %
     * per row keeps exactly half of each row, so every linear stores bitmap (the smallest:
     * a bit per weight against CSR's 2-byte column index), each section rounded up to 64:
     * row offsets (rows + 1) x 4, bitmap rows x ceil(cols / 64) x 8, values nnz x 4. The
     * fp32 tensors left: wte, wpe, the LayerNorms and every bias. */
    static const size_t shapes[4][2] = {{192, 64}, {64, 64}, {256, 64}, {64, 256}};
    double sparse = 0.0;
    for (size_t k = 0; k < 4; k++) {
        size_t rows = shapes[k][0], cols = shapes[k][1], nnz = rows * cols / 2;
        sparse += 2.0 * (double)(up64((rows + 1) * 4) + up64(rows * ((cols + 63) / 64) * 8) +
                                 up64(nnz * 4));
    }
    double fp32 = 4.0 * (256 * 64 + 64 * 64 + 2 * 13 * 64 + 2 * 64);
    CHECK(sparse == 214016.0 && fp32 == 89088.0, "hand sums %g %g", sparse, fp32);
    CHECK(plugin_need(&f, "layers_bitmap", "count") == 8, "wanda 50 %% not stored as bitmap");
    CHECK(plugin_need(&f, "sparse_bytes", "bytes") == sparse, "sparse_bytes %g, want %g",
          plugin_need(&f, "sparse_bytes", "bytes"), sparse);
    CHECK(plugin_need(&f, "fp32_bytes", "bytes") == fp32, "fp32_bytes %g, want %g",
          plugin_need(&f, "fp32_bytes", "bytes"), fp32);
    double model = plugin_need(&f, "model_bytes", "bytes");
    CHECK(model == sparse + fp32, "model_bytes %g, want %g", model, sparse + fp32);
    CHECK(model < plugin_need(&f, "n_params", "count") * 4.0, "pruned model %g not smaller", model);
    CHECK(plugin_need(&f, "infer_peak_bytes", "bytes") > model,
          "infer_peak_bytes below the weights");
}

static void test_heads(void)
{
    const char *ov[] = {"model=tiny",   "steps=20",     "eval_tokens=4096", "decode_tokens=0",
                        "method=heads", "sparsity=0.5", "calib_batches=2"};
    struct fake_ctx f;
    if (plugin_run(&f, ov, 7)) return;
    /* tiny: C=64, 2 heads; one head per layer goes: q/k/v and attproj lose half */
    CHECK(plugin_need(&f, "layer.h0.qkv.sparsity", "ratio") == 0.5, "qkv");
    CHECK(plugin_need(&f, "layer.h0.attproj.sparsity", "ratio") == 0.5, "attproj");
    CHECK(plugin_need(&f, "layer.h0.fc.sparsity", "ratio") == 0.0, "fc touched");
    CHECK(plugin_need(&f, "layers_dense", "count") == 8, "structured layers stay dense, smaller");
}

static void test_nm_finetune(void)
{
    const char *ov[] = {"model=tiny", "steps=20",         "eval_tokens=4096",
                        "method=nm",  "finetune_steps=5", "decode_tokens=0"};
    struct fake_ctx f;
    if (plugin_run(&f, ov, 6)) return;
    CHECK(plugin_need(&f, "sparsity", "ratio") == 0.5, "2:4 sparsity");
    CHECK(plugin_need(&f, "layers_nm", "count") == 8, "2:4 layers not stored N:M");
    plugin_need(&f, "finetune_tokens_per_s", "tokens/s");
    const char *bad[] = {"model=tiny", "steps=20", "method=nm", "nm=5:4"};
    struct fake_ctx g;
    fake_ctx_init(&g, plugin_wl, bad, 4);
    snprintf(g.cache_dir, sizeof(g.cache_dir), "%s", plugin_cache_dir);
    CHECK(plugin_wl->run(&g.base) != 0 && strstr(g.error, "N:M"), "5:4 accepted: %s", g.error);
}

/* magnitude 90 % on tiny with storage=`st`; returns the run's val_loss (NAN on failure). */
static double storage_run(struct fake_ctx *f, const char *st)
{
    const char *ov[] = {"model=tiny",      "steps=20",     "eval_tokens=4096",
                        "decode_tokens=4", "sparsity=0.9", st};
    if (plugin_run(f, ov, 6)) return NAN;
    return plugin_need(f, "val_loss", "nats/byte");
}

static void test_storage(void)
{
    struct fake_ctx f;
    double base = storage_run(&f, "storage=smallest");
    double dense = storage_run(&f, "storage=dense");
    CHECK(fabs(dense - base) <= 1e-5 * base, "dense val_loss %.8f vs %.8f", dense, base);
    CHECK(plugin_need(&f, "layers_dense", "count") == 8, "storage=dense not dense");
    CHECK(plugin_need(&f, "model_bytes", "bytes") == plugin_need(&f, "n_params", "count") * 4.0,
          "dense model_bytes %g != 4 x params", plugin_need(&f, "model_bytes", "bytes"));
    double csr = storage_run(&f, "storage=csr");
    CHECK(fabs(csr - base) <= 1e-5 * base, "csr val_loss %.8f vs %.8f", csr, base);
    CHECK(plugin_need(&f, "layers_csr", "count") == 8, "storage=csr not csr");
    storage_run(&f, "storage=fastest");
    double sum = 0.0;
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++) {
            static const char *const kinds[] = {"qkv", "attproj", "fc", "fcproj"};
            char name[64];
            snprintf(name, sizeof(name), "layer.h%d.%s.gemv_us.dense", l, kinds[k]);
            sum += plugin_need(&f, name, "us");
            snprintf(name, sizeof(name), "layer.h%d.%s.gemv_us.bitmap", l, kinds[k]);
            plugin_need(&f, name, "us");
        }
    CHECK(fabs(plugin_need(&f, "gemv_us_dense", "us") - sum) <= 1e-9 * sum, "dense sum");
    plugin_need(&f, "gemv_us_chosen", "us");
    const char *bad[] = {"model=tiny", "steps=20", "method=magnitude", "storage=nm"};
    struct fake_ctx g;
    fake_ctx_init(&g, plugin_wl, bad, 4);
    snprintf(g.cache_dir, sizeof(g.cache_dir), "%s", plugin_cache_dir);
    CHECK(plugin_wl->run(&g.base) != 0 && strstr(g.error, "method=nm") &&
              strstr(g.error, "smallest|fastest|dense|csr|bitmap"),
          "storage=nm with magnitude: %s", g.error);
}

/* sparse_calls_<path> of the run f, summed over the paths. */
static double sparse_calls(const struct fake_ctx *f)
{
    return plugin_need(f, "sparse_calls_scalar", "count") +
           plugin_need(f, "sparse_calls_avx512_rows", "count") +
           plugin_need(f, "sparse_calls_avx512_spmm", "count");
}

/* Which sparse kernels served, counted: nm=3:4 (accepted; N does not divide 16) at batch 1
 * runs the scalar reference, counted as a fallback and warned; kernel=scalar runs only
 * the reference and is no fallback; a failing SpMM (forced) drops to the row kernels,
 * counted. On a CPU without AVX-512 every call is a scalar fallback unless forced, and
 * that is a note of the machine, not a warning. */
static void test_kernels(void)
{
    int avx = mt_sparse_have_avx512();
    const char *nm34[] = {"model=tiny", "steps=20", "eval_tokens=2048", "decode_tokens=8",
                          "method=nm",  "nm=3:4",   "storage=nm",       "kernel=auto"};
    struct fake_ctx f;
    if (plugin_run(&f, nm34, 8)) return;
    CHECK(plugin_need(&f, "layers_nm", "count") == 8, "3:4 not stored N:M");
    double sc = plugin_need(&f, "sparse_calls_scalar", "count");
    double fb = plugin_need(&f, "sparse_fallbacks", "count");
    printf("nm 3:4: scalar %g rows %g spmm %g fallbacks %g\n", sc,
           plugin_need(&f, "sparse_calls_avx512_rows", "count"),
           plugin_need(&f, "sparse_calls_avx512_spmm", "count"), fb);
    /* decode: 8 tokens x 2 layers x 4 linears at batch 1, all on the reference */
    CHECK(sc >= 64 && fb == sc && (f.n_warnings >= 1) == avx,
          "3:4 scalar calls %g, fallbacks %g, %zu warnings", sc, fb, (size_t)f.n_warnings);
    CHECK(plugin_need(&f, "sparse_calls_avx512_rows", "count") == 0, "3:4 on the row kernels");

    nm34[7] = "kernel=scalar";
    if (plugin_run(&f, nm34, 8)) return;
    CHECK(plugin_need(&f, "sparse_calls_scalar", "count") == sparse_calls(&f) &&
              sparse_calls(&f) > 0,
          "kernel=scalar ran another path");
    CHECK(plugin_need(&f, "sparse_fallbacks", "count") == 0, "a forced scalar run is no fallback");

    const char *mag[] = {"model=tiny", "steps=20", "eval_tokens=2048", "decode_tokens=8"};
    setenv("MT_TEST_SPMM_FAIL", "1", 1);
    int rc = plugin_run(&f, mag, 4);
    unsetenv("MT_TEST_SPMM_FAIL");
    if (rc) return;
    CHECK(plugin_need(&f, "sparse_calls_avx512_spmm", "count") == 0,
          "a failed SpMM counted as run");
    fb = plugin_need(&f, "sparse_fallbacks", "count");
    /* evaluation: batches of 8 x 64 = 512 rows, each multiply an SpMM that now fails over
     * to the row kernels (counted); decoding at batch 1 uses the row kernels anyway */
    double rows = plugin_need(&f, "sparse_calls_avx512_rows", "count");
    if (avx)
        CHECK(fb >= 8 && rows > fb && plugin_need(&f, "sparse_calls_scalar", "count") == 0,
              "failed SpMM: fallbacks %g, row calls %g", fb, rows);
    else
        CHECK(fb == sparse_calls(&f), "no AVX-512: every call a fallback");
}

int main(int argc, char **argv)
{
    if (plugin_load(PRUNE_SO, "prune")) return 1;
    snprintf(plugin_cache_dir, sizeof(plugin_cache_dir), "%s", argc > 2 ? argv[2] : "/tmp");
    mkdir(plugin_cache_dir, 0700);
    static const struct mt_test tests[] = {{"wanda", test_wanda},
                                           {"heads", test_heads},
                                           {"nm_finetune", test_nm_finetune},
                                           {"storage", test_storage},
                                           {"kernels", test_kernels}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), argc > 1 ? argv[1] : NULL);
}
