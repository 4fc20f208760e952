/* test_plan.c — the memory plan (`memtrade plan`, workload.h ABI 1.4) against published
 * figures and against what runs allocate.
 *
 * Cases (one ctest each, plan.CASE):
 *   zero      ZeRO's Figure 1: 7.5B parameters, 64 ranks, mixed-precision Adam (2 + 2 + 12
 *             bytes per parameter): 120 / 31.4 / 16.6 / 1.9 GB of model states per rank
 *             for stages 0..3 (mt_wl_zero_states, the function the zero workload's
 *             zero_predicted_* metrics come from).
 *   adam16    mixed-precision Adam is 16 bytes per parameter of model states: the training
 *             engine's plan (mt_tmodel_plan, bf16 storage + fp32 master weights + AdamW)
 *             holds weights + gradients + optimizer = 16 x n_params exactly, for GPT-2
 *             124M's block shape and the Llama-2-7B shape; fp32 AdamW is 16 too (4+4+8),
 *             bf16 without master weights 12.
 *   megatron  Megatron's activations per layer, s*b*h*(34 + 5*a*s/h) bytes (16-bit, no
 *             recompute; Korthikanti et al. 2022, eq. 1) for GPT-3 175B's layer (s 2048,
 *             h 12288, a 96, b 1): the engine's per-layer activation bytes (bf16, dense
 *             attention, every = 1) are that formula minus the dropout masks and the
 *             attention dropout's output (memtrade's block has no dropout: 2sbh + 3as^2b)
 *             plus the LayerNorm statistics it keeps in fp32 (2 x 2 x 4 sb).
 *   kv        the KV cache at 4096 tokens in fp16: Llama-2-7B (32 layers, 32 KV heads of
 *             128) exactly 2 GiB, Llama-3-8B (8 KV heads) exactly 512 MiB, through the
 *             baseline plugin's plan hook (infer phase) and mt_kvc_bytes.
 *   exact     plan == allocation per category on tiny: the baseline plugin's and the
 *             mixed_precision plugin's plan phases equal the bytes their runs account
 *             (train_peak_<cat>, infer_peak_<cat>, eval_peak_<cat>) exactly; quantize's
 *             weights (packed: codes, scales, zero points, codebooks) and KV cache too;
 *             lora's fine-tune (QLoRA nf4) in every category.
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
#include "kvcache.h"
#include "mt_check.h"
#include "tmodel.h"
#include "wlplan.h"

static int failures;
#define CHECK(cond) MT_CHECK_OR(failures++, cond, #cond, "%s", "")
#define CHECKM(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

static int test_zero(void)
{
    static const double want[4] = {120.0, 31.4, 16.6, 1.9}; /* GB, the figure's labels */
    double psi = 7.5e9;
    for (int stage = 0; stage <= 3; stage++) {
        struct mt_wl_zero_states z;
        mt_wl_zero_states(psi, 64, stage, 2.0, 2.0, 12.0, &z);
        double gb = (z.weights + z.gradients + z.optimizer) / 1e9;
        printf("ZeRO stage %d: %.4f GB per rank (paper %.1f)\n", stage, gb, want[stage]);
        CHECKM(fabs(round(gb * 10.0) / 10.0 - want[stage]) < 1e-9, "stage %d: %.4f", stage, gb);
    }
    struct mt_wl_zero_states z;
    mt_wl_zero_states(psi, 64, 0, 2.0, 2.0, 12.0, &z);
    CHECK(z.weights + z.gradients + z.optimizer == 16.0 * psi);
    mt_wl_zero_states(psi, 64, 3, 2.0, 2.0, 12.0, &z);
    CHECK(z.weights + z.gradients + z.optimizer == 16.0 * psi / 64.0);
    return 0;
}

/* The training engine's plan of cfg at micro-batch b, sequence s (every block checkpointed
 * at 1, pooled slabs, AdamW); all zero after a CHECK failure. */
static struct mt_tmodel_plan tplan(const struct mt_gpt_config *cfg, size_t s, size_t b,
                                   enum mt_prec prec, int master)
{
    char err[256];
    struct mt_tmodel_opts o = {.micro_batch = b,
                               .seq = s,
                               .prec = prec,
                               .master_weights = master,
                               .every = 1,
                               .pool = 1,
                               .optimizer = MT_OPTIM_ADAMW};
    struct mt_tmodel_plan p;
    if (mt_tmodel_plan(cfg, &o, &p, err, sizeof err)) {
        CHECKM(0, "plan: %s", err);
        memset(&p, 0, sizeof p);
    }
    return p;
}

static size_t states(const struct mt_gpt_config *cfg, enum mt_prec prec, int master)
{
    struct mt_tmodel_plan p = tplan(cfg, 64, 1, prec, master);
    return p.bytes[MT_MEM_WEIGHTS] + p.bytes[MT_MEM_GRADIENTS] + p.bytes[MT_MEM_OPTIMIZER];
}

static int test_adam16(void)
{
    static const char *const shapes[] = {
        "gpt2,vocab=50304",                               /* GPT-2 124M, padded vocab */
        "llama-1b,L=32,H=32,KV=32,C=4096,F=11008,T=4096", /* Llama-2-7B */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char err[256];
        struct mt_gpt_config cfg;
        CHECKM(mt_gpt_config_parse(&cfg, shapes[i], err, sizeof err) == 0, "%s", err);
        size_t n = mt_gpt_num_params(&cfg);
        size_t mixed = states(&cfg, MT_PREC_BF16, 1);
        printf("%s: %zu parameters, mixed-precision Adam states %zu bytes = %.4f per parameter\n",
               shapes[i], n, mixed, (double)mixed / (double)n);
        CHECKM(mixed == 16 * n, "%zu vs %zu", mixed, 16 * n);
        CHECK(states(&cfg, MT_PREC_FP32, 1) == 16 * n);
        CHECK(states(&cfg, MT_PREC_BF16, 0) == 12 * n);
    }
    return 0;
}

static size_t act_bytes(const struct mt_gpt_config *cfg, size_t s, size_t b)
{
    return tplan(cfg, s, b, MT_PREC_BF16, 1).bytes[MT_MEM_ACTIVATIONS];
}

static int test_megatron(void)
{
    size_t s = 2048, b = 1, h = 12288, a = 96;
    char err[256];
    struct mt_gpt_config c1, c2;
    CHECKM(mt_gpt_config_parse(&c1, "gpt2,L=1,C=12288,H=96,T=2048", err, sizeof err) == 0, "%s",
           err);
    c2 = c1;
    c2.n_layer = 2;
    double per_layer = (double)act_bytes(&c2, s, b) - (double)act_bytes(&c1, s, b);
    double sbh = (double)(s * b * h), as2b = (double)(a * s * s * b);
    double megatron = sbh * (34.0 + 5.0 * (double)a * (double)s / (double)h);
    double engine = megatron - (2.0 * sbh + 3.0 * as2b) + 16.0 * (double)(s * b);
    printf("GPT-3 175B layer: Megatron %.0f bytes, engine %.0f (%.4f x Megatron)\n", megatron,
           per_layer, per_layer / megatron);
    CHECKM(per_layer == engine, "engine %.0f, expected %.0f", per_layer, engine);
    return 0;
}

/* The plan of plugin `so` with overrides, through its plan() hook. */
static int plugin_plan(const char *so, const char **ov, size_t n, struct mt_mem_plan *p,
                       const struct mt_workload **wl_out)
{
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        CHECKM(0, "dlopen %s: %s", so, dlerror());
        return -1;
    }
    const struct mt_workload *wl = dlsym(h, MEMTRADE_WORKLOAD_SYMBOL);
    CHECKM(wl && wl->abi_minor >= 4 && wl->plan, "%s has no plan() hook", so);
    if (!wl || !wl->plan) return -1;
    struct fake_ctx f;
    fake_ctx_init(&f, wl, ov, n);
    memset(p, 0, sizeof *p);
    int rc = wl->plan(&f.base, p);
    CHECKM(rc == 0, "plan: %s", f.error);
    if (wl_out) *wl_out = wl;
    return rc;
}

static const struct mt_mem_plan_phase *phase(const struct mt_mem_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n_phases; i++)
        if (!strcmp(p->phase[i].name, name)) return &p->phase[i];
    CHECKM(0, "no phase %s", name);
    return NULL;
}

static int test_kv(void)
{
    static const struct {
        const char *model;
        size_t want;
    } cases[] = {
        {"model=llama-1b,L=32,H=32,KV=32,C=4096,F=11008,T=4096,V=32000", (size_t)2 << 30},
        {"model=llama-1b,L=32,H=32,KV=8,C=4096,F=14336,T=8192,V=128256", (size_t)512 << 20},
    };
    for (size_t i = 0; i < 2; i++) {
        const char *ov[] = {cases[i].model, "kv_cache=fp16", "decode_tokens=4096"};
        struct mt_mem_plan p;
        if (plugin_plan(BASELINE_SO, ov, 3, &p, NULL)) return 1;
        const struct mt_mem_plan_phase *ph = phase(&p, "infer");
        if (!ph) return 1;
        printf("%s: KV cache at 4096 tokens, fp16: %zu bytes\n", cases[i].model,
               ph->bytes[MT_MEM_KV_CACHE]);
        CHECKM(ph->bytes[MT_MEM_KV_CACHE] == cases[i].want, "%zu", ph->bytes[MT_MEM_KV_CACHE]);
        char err[256];
        struct mt_gpt_config cfg;
        struct mt_kvc_spec spec = mt_kvc_spec_default();
        spec.format = MT_KVC_FP16;
        CHECKM(mt_gpt_config_parse(&cfg, cases[i].model + 6, err, sizeof err) == 0, "%s", err);
        CHECK(mt_kvc_bytes(&cfg, &spec, 4096, 1, 0) == cases[i].want);
        /* fp32 is twice that; 8 sequences eight times */
        spec.format = MT_KVC_FP32;
        CHECK(mt_kvc_bytes(&cfg, &spec, 4096, 8, 0) == 16 * cases[i].want);
    }
    return 0;
}

static const struct fake_metric *need(const struct fake_ctx *f, const char *name)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    CHECKM(m && !m->na, "metric %s missing", name);
    return m;
}

#define ALL_CATS ((1u << MT_MEM_CAT_COUNT) - 1)

/* Runs plugin `so` with overrides and checks that every category in `cats` (a bit per
 * category; ALL_CATS: the totals too) of each phase in `phases` equals the run's
 * accounted <phase>_peak_<cat>_bytes (absent = 0). */
static int run_equals_plan(const char *so, const char **ov, size_t n, const char *const *phases,
                           unsigned cats)
{
    struct mt_mem_plan p;
    const struct mt_workload *wl = NULL;
    if (plugin_plan(so, ov, n, &p, &wl)) return 1;
    struct fake_ctx f;
    fake_ctx_init(&f, wl, ov, n);
    snprintf(f.cache_dir, sizeof f.cache_dir, "/tmp/mt_test_plan_%ld", (long)getpid());
    mkdir(f.cache_dir, 0700);
    int rc = wl->run(&f.base);
    CHECKM(rc == 0, "run: %s", f.error);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.cache_dir);
    if (system(cmd) != 0) CHECKM(0, "rm");
    if (rc) return 1;
    for (size_t k = 0; phases[k]; k++) {
        const struct mt_mem_plan_phase *ph = phase(&p, phases[k]);
        if (!ph) continue;
        size_t total = 0;
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++) {
            if (!(cats >> cat & 1)) continue;
            char name[96];
            snprintf(name, sizeof name, "%s_peak_%s_bytes", phases[k], mt_mem_cat_names[cat]);
            const struct fake_metric *m = fake_ctx_metric(&f, name);
            double got = m && !m->na ? m->value : 0.0;
            total += ph->bytes[cat];
            CHECKM(got == (double)ph->bytes[cat], "%s %s: run %.0f, plan %zu", wl->name, name, got,
                   ph->bytes[cat]);
        }
        if (cats != ALL_CATS) continue;
        char name[96];
        snprintf(name, sizeof name, "%s_peak_bytes", phases[k]);
        double got = need(&f, name)->value;
        printf("%s %s: plan %zu bytes, run %.0f\n", wl->name, phases[k], total, got);
        CHECKM(got == (double)total, "%s: run %.0f, plan %zu", name, got, total);
    }
    return 0;
}

static int test_exact(void)
{
    static const char *const serving[] = {"infer", "eval", NULL};
    static const char *const training[] = {"train", NULL};
    const char *b1[] = {"model=tiny", "steps=3", "eval_tokens=2048"};
    const char *b2[] = {"model=tiny", "steps=3", "eval_tokens=2048", "kv_cache=int4",
                        "decode_tokens=40"};
    const char *b3[] = {"model=llama-tiny", "steps=3", "eval_tokens=2048", "kv_cache=int8",
                        "kv_block=16"};
    const char *b4[] = {"model=tiny",    "steps=3",     "eval_tokens=2048",
                        "kv_cache=int3", "kv_block=32", "decode_tokens=40"};
    /* concurrent sequences and one more shorter one (decode_extra_tokens) */
    const char *b5[] = {"model=tiny",         "steps=3",
                        "eval_tokens=2048",   "kv_cache=int8",
                        "decode_sequences=2", "decode_extra_tokens=17"};
    const char *b6[] = {"model=llama-tiny",     "steps=3",     "eval_tokens=2048",
                        "kv_cache=int4",        "kv_block=32", "decode_sequences=2",
                        "decode_extra_tokens=9"};
    const char *m1[] = {"model=tiny", "steps=3", "eval_tokens=2048", "precision=bf16"};
    const char *m2[] = {
        "model=tiny",       "steps=3", "eval_tokens=2048", "precision=fp16",     "every=2",
        "optimizer=adamw8", "batch=8", "micro_batch=4",    "master_weights=off", "accum_steps=2"};
    const char *m3[] = {"model=llama-tiny", "steps=3", "eval_tokens=2048", "optimizer=adafactor",
                        "recompute=selective"};
    /* quantize: the packed weights (codes, scales, zero points, codebooks) and the cache;
     * its kernels' grow-only scratch (workspace) is measured, not planned */
    const char *q1[] = {"model=tiny", "steps=3",           "eval_tokens=2048", "bits=4",
                        "scheme=nf",  "granularity=group", "group_size=32"};
    const char *q2[] = {"model=tiny",   "steps=3",       "eval_tokens=2048",
                        "bits=3",       "scheme=kmeans", "granularity=channel",
                        "embedding=on", "kv_cache=fp16"};
    const char *q3[] = {"model=llama-tiny", "steps=3", "eval_tokens=2048", "bits=16", "dtype=bf16"};
    /* lora: the fine-tune's plan, which the run checks against what it allocated */
    const char *l1[] = {"model=tiny", "steps=3", "eval_tokens=2048", "finetune_steps=2",
                        "base=nf4",   "rank=4",  "nf4_group=32"};
    unsigned wk = 1u << MT_MEM_WEIGHTS | 1u << MT_MEM_KV_CACHE;
    return run_equals_plan(BASELINE_SO, b1, 3, serving, ALL_CATS) ||
           run_equals_plan(BASELINE_SO, b2, 5, serving, ALL_CATS) ||
           run_equals_plan(BASELINE_SO, b3, 5, serving, ALL_CATS) ||
           run_equals_plan(BASELINE_SO, b4, 6, serving, ALL_CATS) ||
           run_equals_plan(BASELINE_SO, b5, 6, serving, ALL_CATS) ||
           run_equals_plan(BASELINE_SO, b6, 7, serving, ALL_CATS) ||
           run_equals_plan(MIXED_SO, m1, 4, training, ALL_CATS) ||
           run_equals_plan(MIXED_SO, m2, 10, training, ALL_CATS) ||
           run_equals_plan(MIXED_SO, m3, 5, training, ALL_CATS) ||
           run_equals_plan(QUANTIZE_SO, q1, 7, serving, wk) ||
           run_equals_plan(QUANTIZE_SO, q2, 8, serving, wk) ||
           run_equals_plan(QUANTIZE_SO, q3, 5, serving, wk) ||
           run_equals_plan(LORA_SO, l1, 7, training, ALL_CATS);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {{"zero", test_zero},
                 {"adam16", test_adam16},
                 {"megatron", test_megatron},
                 {"kv", test_kv},
                 {"exact", test_exact}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (argc > 1 && !strcmp(argv[1], cases[i].name)) {
            int rc = cases[i].fn();
            return rc || failures ? 1 : 0;
        }
    fprintf(stderr, "usage: %s zero|adam16|megatron|kv|exact\n", argv[0]);
    return 2;
}
