/* test_qplugin.c — the `quantize` plugin through the fake ctx of tests/support: which
 * kernels served, counted.
 *
 * What it is for: on `tiny` (20-step cached baseline) at 4 bits: kernel=scalar serves every
 * packed GEMM on the scalar reference (qgemm_calls_scalar > 0, the others 0, no fallback
 * counted since it was asked for); kernel=auto serves on AVX-512 where this CPU has it
 * (no scalar call) and otherwise counts every scalar call as a fallback, noted (not warned: a fact
 * of the machine); kernel=onednn, which cannot run 4-bit weights, fails naming the kernel and the
 * layer; a oneDNN matmul primitive refused (forced with MT_TEST_MATMUL_FALLBACK=1) is counted in
 * matmul_fallbacks and warned about, the primitives ran otherwise in matmul_prims. What it is not
 * for: the kernels' results (test_quant) or the harness (plugin_run.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "plugin_check.h"

static const char *base[] = {"model=tiny", "steps=20", "eval_tokens=2048", "bits=4", NULL};

static int run_kernel(struct fake_ctx *f, const char *kernel)
{
    base[4] = kernel;
    return plugin_run(f, base, 5);
}

static void test_kernels(void)
{
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    struct fake_ctx f;
    if (run_kernel(&f, "kernel=scalar")) return;
    double scalar = plugin_need(&f, "qgemm_calls_scalar", "count");
    CHECK(scalar > 0, "kernel=scalar served no GEMM on the scalar kernel");
    CHECK(plugin_need(&f, "qgemm_calls_avx512", "count") == 0 &&
              plugin_need(&f, "qgemm_calls_onednn", "count") == 0,
          "kernel=scalar ran another kernel");
    CHECK(plugin_need(&f, "qgemm_scalar_fallbacks", "count") == 0,
          "a forced kernel is no fallback");
    double prims0 = plugin_need(&f, "matmul_prims", "count");
    CHECK(plugin_need(&f, "matmul_fallbacks", "count") == 0, "unforced matmul fallback");

    if (run_kernel(&f, "kernel=auto")) return;
    double prims1 = plugin_need(&f, "matmul_prims", "count");
    CHECK(prims1 > prims0, "no primitive counted");
    double a_scalar = plugin_need(&f, "qgemm_calls_scalar", "count");
    double a_avx = plugin_need(&f, "qgemm_calls_avx512", "count");
    double fb = plugin_need(&f, "qgemm_scalar_fallbacks", "count");
    printf("auto on a CPU %s AVX-512: scalar %g avx512 %g fallbacks %g (forced scalar %g)\n",
           avx512 ? "with" : "without", a_scalar, a_avx, fb, scalar);
    /* (how many GEMMs depends on how many timed decode passes fit: no equality here) */
    CHECK(a_scalar + a_avx > 0 && plugin_need(&f, "qgemm_calls_onednn", "count") == 0,
          "auto served no GEMM, or one on oneDNN at 4 bits");
    if (avx512)
        CHECK(a_scalar == 0 && fb == 0, "scalar ran on an AVX-512 CPU");
    else
        CHECK(fb == a_scalar && f.n_warnings == 0,
              "scalar fallbacks not counted, or warned (a CPU without AVX-512 is a note)");

    base[4] = "kernel=onednn";
    struct fake_ctx g;
    fake_ctx_init(&g, plugin_wl, base, 5);
    snprintf(g.cache_dir, sizeof g.cache_dir, "%s", plugin_cache_dir);
    CHECK(plugin_wl->run(&g.base) != 0 && strstr(g.error, "onednn") && strstr(g.error, "h0.qkv"),
          "kernel=onednn at 4 bits: %s", g.error);

    /* the model's own fp32 matmuls (the LM head, eval batch) with every primitive refused:
     * the counters are the process's, so compare with the runs before */
    setenv("MT_TEST_MATMUL_FALLBACK", "1", 1);
    int rc = run_kernel(&f, "kernel=auto");
    unsetenv("MT_TEST_MATMUL_FALLBACK");
    if (rc) return;
    CHECK(plugin_need(&f, "matmul_fallbacks", "count") > 0, "refused primitives not counted");
    CHECK(plugin_need(&f, "matmul_prims", "count") == prims1, "a refused primitive ran");
    CHECK(f.n_warnings >= 1, "no warning for the refused primitives");
}

int main(int argc, char **argv)
{
    if (plugin_load(QUANTIZE_SO, "quantize")) return 1;
    snprintf(plugin_cache_dir, sizeof plugin_cache_dir, "%s", argc > 2 ? argv[2] : "/tmp");
    mkdir(plugin_cache_dir, 0700);
    static const struct mt_test tests[] = {{"kernels", test_kernels}};
    return mt_test_run(tests, sizeof tests / sizeof tests[0], argc > 1 ? argv[1] : NULL);
}
