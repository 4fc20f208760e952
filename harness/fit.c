/* fit.c — the search of `memtrade fit` (fit.h).
 *
 * Serving: the weights (fp32 through `baseline`; `quantize` with one format for every
 * linear: bits x group x method; `quantize` with per-tensor bit widths from the knapsack
 * over measured per-layer sensitivities) crossed with the KV-cache format, at the asked
 * context. Training: precision x optimizer (what changes the numbers) crossed with the
 * knobs that only move bytes: micro-batch (accumulation keeps the batch), checkpointing,
 * selective recompute and the attention kernel; with ranks > 1 also every multi-rank
 * workload that has a plan() (ZeRO stages, ...), per rank. Fine-tuning: `lora` (LoRA, and
 * QLoRA over an NF4 base) at a few ranks and target sets. Every configuration's bytes are
 * its plan plus the runtime term runs measured; its accuracy is a measured run's (the KV
 * format's and the mixed widths' are sums of measured deltas, said in acc_src). The most
 * accurate configuration is then filled (mt_fit_fill): what the budget leaves goes to
 * concurrent sequences and one more shorter one (serving) or to micro-batch and less
 * recompute, then a larger batch when measured no worse (training).
 */
#include "fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_measure.h"
#include "fit_solve.h"
#include "gpt.h"

static const char *const kv_formats[] = {"fp32", "bf16", "int8", "int4", "int3", "int2"};
enum { N_KV = sizeof kv_formats / sizeof kv_formats[0] };
static const int low_bits[] = {8, 4, 3, 2}; /* a mixed layer's widths besides 16 */
enum { N_LOW = sizeof low_bits / sizeof low_bits[0] };

static void base_config(const struct mt_fit *f, struct mt_fit_config *c, const char *family,
                        const char *workload)
{
    char b[32];
    memset(c, 0, sizeof *c);
    snprintf(c->family, sizeof c->family, "%s", family);
    c->workload = workload;
    mt_fit_set(c, "model", f->model);
    snprintf(b, sizeof b, "%zu", f->eval_tokens);
    mt_fit_set(c, "eval_tokens", b);
    if (f->goal == MT_PLAN_TRAINING && f->steps) {
        snprintf(b, sizeof b, "%zu", f->steps);
        /* fine-tuning: the adapters' steps; the reference keeps the post-training default */
        mt_fit_set(c, f->finetune ? "finetune_steps" : "steps", b);
    }
}

/* The accuracy of f's metric from a measured run (lower is better). */
static int acc_of(const struct mt_fit *f, const struct mt_fit_measure *m, double *acc,
                  const struct mt_fit_config *c, char *err, size_t errlen)
{
    int k = f->metric == 0 ? MT_FM_KL : MT_FM_BPB;
    if (!m->has[k]) {
        char b[1024];
        snprintf(err, errlen, "run %lld (%s) has no %s", (long long)m->run,
                 mt_fit_brief(c, b, sizeof b), k == MT_FM_KL ? "kl_mean" : "val_bpb");
        return -1;
    }
    *acc = m->v[k];
    return 0;
}

/* Measures c (or finds it) and sets its accuracy and source. */
static int measure_acc(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    struct mt_fit_measure m;
    int rc = mt_fit_measured(f->runner, f, c, "off", 0, NULL, &m, err, errlen);
    if (rc == 0)
        snprintf(err, errlen,
                 "the database has no run of a configuration fit needs and measuring is off "
                 "(--no-measure)");
    if (rc <= 0 || acc_of(f, &m, &c->acc, c, err, errlen)) return -1;
    c->has_acc = 1;
    snprintf(c->acc_src, sizeof c->acc_src, "%s run %lld", m.fresh ? "measured" : "db",
             (long long)m.run);
    return 0;
}

/* Keeps c if it fits: best overall (least acc, ties to more bytes used) and per family. */
static void consider(const struct mt_fit *f, struct mt_fit_result *r, const struct mt_fit_config *c)
{
    r->considered++;
    if (c->bytes > f->budget) return;
    r->fitting++;
    size_t i = 0;
    while (i < r->n_families && strcmp(r->family_best[i].family, c->family))
        i++;
    if (i == r->n_families) {
        if (i == sizeof r->family_best / sizeof r->family_best[0]) return;
        r->n_families++;
        r->family_best[i] = *c;
    }
    struct mt_fit_config *fb = &r->family_best[i];
    if (c->acc < fb->acc || (c->acc == fb->acc && c->bytes > fb->bytes)) *fb = *c;
    if (!r->has_best || c->acc < r->best.acc ||
        (c->acc == r->best.acc && c->bytes > r->best.bytes)) {
        r->best = *c;
        r->has_best = 1;
    }
}

/* Plans c and adds the workload's runtime term. */
static int predict(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    if (mt_fit_plan(f->reg, f->goal, c, NULL, 0, err, errlen)) return -1;
    long long t = 0;
    int n = mt_fit_runtime_term(f->runner, f, c, &t, err, errlen);
    if (n < 0) return -1;
    c->runtime = t;
    c->runtime_known = n > 0;
    long long b = (long long)c->plan_bytes + t;
    c->bytes = b > 0 ? (size_t)b : 0;
    return 0;
}

/* ------------------------------------------------------------------ serving */

/* The KV format's accuracy delta against the fp32 cache, from a kv_cache run. */
static int kv_delta(const struct mt_fit *f, const char *kv, double *d, int64_t *run, char *err,
                    size_t errlen)
{
    *d = 0.0, *run = 0;
    if (!strcmp(kv, "fp32")) return 0;
    struct mt_fit_config c;
    struct mt_fit_measure m;
    base_config(f, &c, "kv", "kv_cache");
    mt_fit_set(&c, "kv_cache", kv);
    int rc = mt_fit_measured(f->runner, f, &c, "off", 0, NULL, &m, err, errlen);
    if (rc == 0)
        snprintf(err, errlen,
                 "the database has no kv_cache run for kv_cache=%s and measuring is off "
                 "(--no-measure)",
                 kv);
    if (rc <= 0) return -1;
    if (f->metric == 0 ? !m.has[MT_FM_KV_KL] : !m.has[MT_FM_KV_LOSS] || !m.has[MT_FM_KV_LOSS32]) {
        snprintf(err, errlen, "kv_cache run %lld lacks its accuracy metrics", (long long)m.run);
        return -1;
    }
    *d = f->metric == 0 ? m.v[MT_FM_KV_KL] : (m.v[MT_FM_KV_LOSS] - m.v[MT_FM_KV_LOSS32]) / log(2.0);
    *run = m.run;
    return 0;
}

/* One serving configuration at KV format kv and the asked context: planned, accuracy =
 * the weights' measured one plus the format's delta. */
static int serve_with_kv(const struct mt_fit *f, struct mt_fit_result *r, struct mt_fit_config c,
                         const char *kv, double dkv, int64_t kvrun, char *err, size_t errlen)
{
    char b[32];
    mt_fit_set(&c, "kv_cache", kv);
    if (f->context) {
        snprintf(b, sizeof b, "%zu", f->context);
        mt_fit_set(&c, "decode_tokens", b);
    }
    if (predict(f, &c, err, errlen)) return -1;
    c.acc += dkv;
    c.acc_kv = dkv;
    if (kvrun) {
        size_t at = strlen(c.acc_src);
        snprintf(c.acc_src + at, sizeof c.acc_src - at, " + kv run %lld", (long long)kvrun);
    }
    consider(f, r, &c);
    return 0;
}

static void layer_bits_string(size_t n, const int *bits, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%d", i ? "," : "", bits[i]);
}

/* The mixed family at one KV format: the knapsack over per-layer widths. */
static int mixed(const struct mt_fit *f, struct mt_fit_result *r, const struct mt_fit_config *base,
                 const double *sens, size_t nl, const char *kv, double dkv, int64_t kvrun,
                 char *err, size_t errlen)
{
    size_t ng = nl, per = N_LOW + 1;
    struct mt_fit_option *opt = calloc(ng * per, sizeof *opt);
    size_t *first = calloc(ng + 1, sizeof *first), *choice = calloc(ng, sizeof *choice);
    size_t *pb = calloc(ng * per, sizeof *pb);
    int *bits = calloc(ng, sizeof *bits), rc = -1;
    char b[32];
    if (!opt || !first || !choice || !pb || !bits) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct mt_fit_config c = *base;
    mt_fit_set(&c, "kv_cache", kv);
    if (f->context) {
        snprintf(b, sizeof b, "%zu", f->context);
        mt_fit_set(&c, "decode_tokens", b);
    }
    for (size_t i = 0; i < ng; i++)
        bits[i] = 16;
    char lb[512];
    layer_bits_string(ng, bits, lb, sizeof lb);
    mt_fit_set(&c, "layer_bits", lb);
    if (predict(f, &c, err, errlen)) goto out;
    size_t p0 = c.plan_bytes;
    long long fixed = (long long)p0 + c.runtime;
    /* the plan is a sum over layers: each width's bytes from the plan of that layer alone */
    for (size_t i = 0; i < ng; i++) {
        size_t lo = p0;
        first[i] = i * per;
        pb[i * per] = p0;
        for (size_t j = 0; j < N_LOW; j++) {
            bits[i] = low_bits[j];
            layer_bits_string(ng, bits, lb, sizeof lb);
            struct mt_fit_config t = c;
            mt_fit_set(&t, "layer_bits", lb);
            if (mt_fit_plan(f->reg, f->goal, &t, NULL, 0, err, errlen)) goto out;
            pb[i * per + 1 + j] = t.plan_bytes;
            if (t.plan_bytes < lo) lo = t.plan_bytes;
        }
        bits[i] = 16;
        for (size_t j = 0; j < per; j++)
            opt[i * per + j] = (struct mt_fit_option){pb[i * per + j] - lo, sens[i * per + j]};
        fixed -= (long long)(p0 - lo);
    }
    first[ng] = ng * per;
    /* the runtime term is its class's (runtime.h), which may differ between mixes: the
     * knapsack's capacity starts from the all-16 one's and shrinks by what a solution's
     * own term overshoots, until the solution fits with its own term */
    long long rt0 = c.runtime, cap = (long long)f->budget - fixed;
    struct mt_fit_config c16 = c;
    for (int tries = 0; cap >= 0 && tries < 8; tries++) {
        size_t got_bytes;
        double got_cost;
        int s =
            mt_fit_mckp(opt, first, ng, (size_t)cap, 0, choice, &got_bytes, &got_cost, err, errlen);
        if (s < 0) goto out;
        if (s == 0) break; /* not even the smallest widths fit */
        c = c16;
        for (size_t i = 0; i < ng; i++)
            bits[i] = choice[i] == 0 ? 16 : low_bits[choice[i] - 1];
        layer_bits_string(ng, bits, lb, sizeof lb);
        mt_fit_set(&c, "layer_bits", lb);
        if (predict(f, &c, err, errlen)) goto out;
        if ((long long)c.plan_bytes != fixed - rt0 + (long long)got_bytes) {
            snprintf(err, errlen,
                     "fit: the plan of the mixed widths (%zu bytes) is not the knapsack's sum "
                     "(%lld): the plan is not additive over layers",
                     c.plan_bytes, fixed - rt0 + (long long)got_bytes);
            goto out;
        }
        if (c.bytes > f->budget) {
            cap -= (long long)(c.bytes - f->budget);
            continue;
        }
        c.acc = base->acc + got_cost + dkv;
        c.acc_kv = dkv;
        size_t at = strlen(c.acc_src);
        if (kvrun)
            snprintf(c.acc_src + at, sizeof c.acc_src - at, " + kv run %lld", (long long)kvrun);
        consider(f, r, &c);
        break;
    }
    rc = 0;
out:
    free(opt), free(first), free(choice), free(pb), free(bits);
    return rc;
}

/* The number of block linears (4 per block) of f->model: the length layer_bits takes. */
static size_t block_linears(const struct mt_fit *f, char *err, size_t errlen)
{
    /* quantize's own refusal names the count; ask for it with one value */
    struct mt_fit_config c;
    base_config(f, &c, "mixed", "quantize");
    mt_fit_set(&c, "layer_bits", "16");
    if (mt_fit_plan(f->reg, f->goal, &c, NULL, 0, err, errlen) == 0) return 1;
    const char *p = strstr(err, "this model has ");
    size_t n = p ? (size_t)strtoull(p + strlen("this model has "), NULL, 10) : 0;
    if (!n) return 0;
    err[0] = 0;
    return n;
}

static int search_serving(const struct mt_fit *f, struct mt_fit_result *r, char *err, size_t errlen)
{
    double dkv[N_KV];
    int64_t kvrun[N_KV];
    for (size_t k = 0; k < N_KV; k++)
        if (kv_delta(f, kv_formats[k], &dkv[k], &kvrun[k], err, errlen)) return -1;
    /* fp32 */
    struct mt_fit_config c;
    base_config(f, &c, "fp32", "baseline");
    mt_fit_set(&c, "steps", "2000"); /* the reference the post-training workloads start from */
    if (measure_acc(f, &c, err, errlen)) return -1;
    for (size_t k = 0; k < N_KV; k++)
        if (serve_with_kv(f, r, c, kv_formats[k], dkv[k], kvrun[k], err, errlen)) return -1;
    /* uniform: one format for every linear */
    static const char *const bitsv[] = {"16", "8", "4", "3", "2"};
    static const char *const groups[] = {"32", "128"};
    static const char *const methods[] = {"rtn", "gptq"};
    for (size_t bi = 0; bi < 5; bi++)
        for (size_t g = 0; g < (bi ? 2u : 1u); g++)
            for (size_t me = 0; me < (bi ? 2u : 1u); me++) {
                base_config(f, &c, "uniform", "quantize");
                mt_fit_set(&c, "bits", bitsv[bi]);
                if (bi) {
                    mt_fit_set(&c, "group_size", groups[g]);
                    mt_fit_set(&c, "method", methods[me]);
                }
                if (measure_acc(f, &c, err, errlen)) return -1;
                for (size_t k = 0; k < N_KV; k++)
                    if (serve_with_kv(f, r, c, kv_formats[k], dkv[k], kvrun[k], err, errlen))
                        return -1;
            }
    /* mixed: per-layer sensitivity = the accuracy with that layer alone at a low width,
     * the others 16-bit, minus the all-16 accuracy */
    size_t nl = block_linears(f, err, errlen);
    if (!nl) return -1;
    size_t per = N_LOW + 1;
    double *sens = calloc(nl * per, sizeof *sens);
    int *bits = calloc(nl, sizeof *bits);
    int rc = -1;
    char lb[512];
    if (!sens || !bits) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct mt_fit_config base;
    base_config(f, &base, "mixed", "quantize");
    mt_fit_set(&base, "bits", "16");
    for (size_t i = 0; i < nl; i++)
        bits[i] = 16;
    layer_bits_string(nl, bits, lb, sizeof lb);
    mt_fit_set(&base, "layer_bits", lb);
    if (measure_acc(f, &base, err, errlen)) goto out;
    int64_t base_run = atoll(strrchr(base.acc_src, ' ') + 1);
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < N_LOW; j++) {
            struct mt_fit_config t = base;
            bits[i] = low_bits[j];
            layer_bits_string(nl, bits, lb, sizeof lb);
            bits[i] = 16;
            mt_fit_set(&t, "layer_bits", lb);
            if (measure_acc(f, &t, err, errlen)) goto out;
            sens[i * per + 1 + j] = t.acc - base.acc;
            r->n_sensitivity_runs++;
        }
    snprintf(base.acc_src, sizeof base.acc_src,
             "sensitivity: base run %lld + %zu per-layer runs (additive)", (long long)base_run,
             r->n_sensitivity_runs);
    for (size_t k = 0; k < N_KV; k++)
        if (mixed(f, r, &base, sens, nl, kv_formats[k], dkv[k], kvrun[k], err, errlen)) goto out;
    rc = 0;
out:
    free(sens), free(bits);
    return rc;
}

/* ------------------------------------------------------------------ training */

static const char *const class_names[] = {"fp32-adamw", "fp32-adamw8", "fp32-adafactor",
                                          "bf16-adamw", "bf16-adamw8", "bf16-adafactor"};

/* The knobs that move a mixed_precision configuration's bytes but not its math, in the
 * fill's order of preference: micro-batch (largest first; accumulation keeps the batch:
 * every size up to 64 sequences, a micro-batch that does not divide the batch followed by
 * a smaller last one; beyond 64, 64 sizes spread over 1..batch), checkpointing (`every`,
 * least recompute first), optimizer state offloaded to a scratch file (off first: the
 * same update, slower), selective recompute (off first), attention kernel (dense
 * first). */
enum { MAX_MB = 64 };
struct train_knobs {
    size_t n_mb, n_every;
    char mb[MAX_MB][24], accum[MAX_MB][24], every[12][24];
};
static const char *const recompute_v[] = {"none", "selective"};
static const char *const attention_v[] = {"dense", "flash"};
static const char *const offload_v[] = {"none", "optimizer"};

static void train_knobs(const struct mt_fit *f, const struct mt_fit_config *c,
                        struct train_knobs *k)
{
    memset(k, 0, sizeof *k);
    const struct mt_plugin *pl = mt_plugins_find(f->reg, c->workload);
    long bi = pl ? mt_params_index(&pl->desc, "batch") : -1;
    const char *bv = mt_fit_get(c, "batch");
    size_t batch = bv        ? (size_t)strtoull(bv, NULL, 10)
                   : bi >= 0 ? (size_t)strtoull(pl->desc.params[bi].def, NULL, 10)
                             : 16;
    for (size_t i = MAX_MB, last = 0; i >= 1 && batch; i--) {
        size_t mb = batch <= MAX_MB ? i : (batch * i + MAX_MB - 1) / MAX_MB;
        if (mb > batch || mb == last) continue;
        last = mb;
        snprintf(k->mb[k->n_mb], sizeof k->mb[0], "%zu", mb);
        /* a divisor: accum_steps 0 (batch / micro_batch) as before; else ceil, named */
        snprintf(k->accum[k->n_mb++], sizeof k->accum[0], "%zu",
                 batch % mb ? (batch + mb - 1) / mb : 0);
    }
    /* every: 1..L for up to 8 blocks, else a spread of them */
    struct mt_gpt_config cfg;
    char e[256];
    size_t L = mt_gpt_config_parse(&cfg, f->model, e, sizeof e) == 0 ? cfg.n_layer : 1;
    size_t v[12], n = 0;
    if (L <= 8) {
        for (size_t i = 1; i <= L; i++)
            v[n++] = i;
    } else {
        size_t cand[] = {1, 2, 3, 4, (size_t)llround(sqrt((double)L)), L / 4, L / 2, L};
        for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
            size_t j = 0;
            while (j < n && v[j] != cand[i])
                j++;
            if (j == n && cand[i] >= 1) v[n++] = cand[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        snprintf(k->every[k->n_every++], sizeof k->every[0], "%zu", v[i]);
}

static size_t train_knob_count(const struct train_knobs *k)
{
    return k->n_mb * k->n_every * 8;
}

/* c with knob combination i (0 .. train_knob_count) set, in the order of preference. */
static void train_knob_set(struct mt_fit_config *c, const struct train_knobs *k, size_t i,
                           char *desc, size_t cap)
{
    size_t a = i % 2, rc = i / 2 % 2, off = i / 4 % 2, e = i / 8 % k->n_every,
           mb = i / 8 / k->n_every;
    mt_fit_set(c, "micro_batch", k->mb[mb]);
    mt_fit_set(c, "accum_steps", k->accum[mb]);
    mt_fit_set(c, "every", k->every[e]);
    mt_fit_set(c, "recompute", recompute_v[rc]);
    mt_fit_set(c, "attention", attention_v[a]);
    mt_fit_set(c, "offload", offload_v[off]);
    if (desc)
        snprintf(desc, cap, "micro_batch=%s%s%s every=%s recompute=%s attention=%s offload=%s",
                 k->mb[mb], strcmp(k->accum[mb], "0") ? " accum_steps=" : "",
                 strcmp(k->accum[mb], "0") ? k->accum[mb] : "", k->every[e], recompute_v[rc],
                 attention_v[a], offload_v[off]);
}

static int search_training(const struct mt_fit *f, struct mt_fit_result *r, char *err,
                           size_t errlen)
{
    char b[32];
    for (size_t k = 0; k < 6; k++) {
        struct mt_fit_config c;
        base_config(f, &c, class_names[k], "mixed_precision");
        mt_fit_set(&c, "precision", k < 3 ? "fp32" : "bf16");
        mt_fit_set(&c, "optimizer", strchr(class_names[k], '-') + 1);
        if (f->context) {
            snprintf(b, sizeof b, "%zu", f->context);
            mt_fit_set(&c, "seq", b);
        }
        if (measure_acc(f, &c, err, errlen)) return -1;
        size_t at = strlen(c.acc_src);
        snprintf(c.acc_src + at, sizeof c.acc_src - at,
                 " (micro-batch, checkpointing, recompute and attention kernel keep its math)");
        struct train_knobs kn;
        train_knobs(f, &c, &kn);
        for (size_t i = 0; i < train_knob_count(&kn); i++) {
            struct mt_fit_config t = c;
            train_knob_set(&t, &kn, i, NULL, 0);
            if (predict(f, &t, err, errlen)) return -1;
            consider(f, r, &t);
        }
    }
    return 0;
}

/* Fine-tuning the trained reference (`lora`): adapters of rank 4 or 16 on every block
 * linear or on attention's only, over an fp32 base (LoRA) or an NF4 one (QLoRA). Only the
 * configurations that fit are measured. */
static int search_finetune(const struct mt_fit *f, struct mt_fit_result *r, char *err,
                           size_t errlen)
{
    static const char *const bases[] = {"fp32", "nf4"};
    static const char *const ranks[] = {"4", "16"};
    static const char *const targets[] = {"qkv,proj,fc,fcproj", "qkv,proj"};
    char b[32];
    for (size_t bi = 0; bi < 2; bi++)
        for (size_t ri = 0; ri < 2; ri++)
            for (size_t ti = 0; ti < 2; ti++) {
                struct mt_fit_config c;
                base_config(f, &c, bi ? "fine-tune-qlora" : "fine-tune-lora", "lora");
                mt_fit_set(&c, "base", bases[bi]);
                mt_fit_set(&c, "rank", ranks[ri]);
                mt_fit_set(&c, "targets", targets[ti]);
                if (f->context) {
                    snprintf(b, sizeof b, "%zu", f->context);
                    mt_fit_set(&c, "seq", b);
                }
                if (predict(f, &c, err, errlen)) return -1;
                if (c.bytes <= f->budget && measure_acc(f, &c, err, errlen)) return -1;
                consider(f, r, &c);
            }
    return 0;
}

/* The choices of parameter `name` of a plugin ('|'-separated, into v[]; at most 8), or
 * none when it does not declare it (n = 1, v[0] = ""). */
static size_t param_choices(const struct mt_plugin *pl, const char *name, char v[8][32])
{
    long i = mt_params_index(&pl->desc, name);
    const char *ch = i >= 0 ? pl->desc.params[i].choices : NULL;
    if (!ch || !*ch) {
        v[0][0] = 0;
        return 1;
    }
    size_t n = 0;
    for (const char *p = ch; *p && n < 8; p += *p == '|') {
        size_t len = strcspn(p, "|");
        snprintf(v[n++], sizeof v[0], "%.*s", (int)len, p);
        p += len;
    }
    return n;
}

/* With --ranks N: every multi-rank workload (one with a ranks parameter) that has a plan()
 * hook, at N ranks, over the choices it declares of `stage`, `precision` and `optimizer`
 * (a family per workload and stage: "zero-2"); its plan is per rank, as the budget is.
 * The global batch is the workload's (spread over the ranks), so accuracy is measured like
 * the single-process classes', for the configurations that fit; the stages of one
 * precision and optimizer take the first measured stage's (the same update, sharded).
 * Those without a plan, or unavailable, are named in r->not_searched. */
static int search_ranks(const struct mt_fit *f, struct mt_fit_result *r, char *err, size_t errlen)
{
    char b[32], st[8][32], pr[8][32], op[8][32];
    size_t at = 0;
    for (size_t p = 0; p < f->reg->n; p++) {
        const struct mt_plugin *pl = &f->reg->items[p];
        if (!pl->desc.ranks_param) continue;
        const char *why = pl->desc.unavailable ? pl->desc.unavailable
                          : !pl->desc.plan     ? "no plan() hook in this build"
                                               : NULL;
        if (why) {
            at += (size_t)snprintf(r->not_searched + at,
                                   at < sizeof r->not_searched ? sizeof r->not_searched - at : 0,
                                   "%s%s (%s)", at ? "; " : "", pl->desc.name, why);
            if (at >= sizeof r->not_searched) at = sizeof r->not_searched - 1;
            continue;
        }
        size_t ns = param_choices(pl, "stage", st), np = param_choices(pl, "precision", pr),
               no = param_choices(pl, "optimizer", op);
        for (size_t pi = 0; pi < np; pi++)
            for (size_t oi = 0; oi < no; oi++) {
                /* the stages shard one update: the first stage measured speaks for all */
                struct mt_fit_config measured = {0};
                for (size_t si = 0; si < ns; si++) {
                    char fam[32];
                    struct mt_fit_config c;
                    snprintf(fam, sizeof fam, "%.20s%s%.8s", pl->desc.name, st[si][0] ? "-" : "",
                             st[si]);
                    base_config(f, &c, fam, pl->desc.name);
                    snprintf(b, sizeof b, "%zu", f->ranks);
                    mt_fit_set(&c, pl->desc.ranks_param, b);
                    if (st[si][0]) mt_fit_set(&c, "stage", st[si]);
                    if (pr[pi][0]) mt_fit_set(&c, "precision", pr[pi]);
                    if (op[oi][0]) mt_fit_set(&c, "optimizer", op[oi]);
                    if (f->context) {
                        snprintf(b, sizeof b, "%zu", f->context);
                        mt_fit_set(&c, "seq", b);
                    }
                    char e2[512];
                    if (predict(f, &c, e2, sizeof e2)) continue; /* a combination it refuses */
                    if (c.bytes <= f->budget) {
                        if (measured.has_acc) {
                            c.has_acc = 1, c.acc = measured.acc;
                            snprintf(c.acc_src, sizeof c.acc_src,
                                     "%.60s (stage %.8s: the same update, sharded)",
                                     measured.acc_src, mt_fit_get(&measured, "stage"));
                        } else {
                            if (measure_acc(f, &c, err, errlen)) return -1;
                            if (st[si][0]) measured = c;
                        }
                    }
                    consider(f, r, &c);
                }
            }
    }
    return 0;
}

/* The largest value of parameter `key` in [1, hi] with which c still fits (bytes grow
 * with it); 0 when even 1 does not. `also` (may be NULL) is set to the same value. */
static size_t largest(const struct mt_fit *f, const struct mt_fit_config *c, const char *key,
                      const char *also, size_t hi)
{
    size_t lo = 0;
    char b[32], err[512];
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        struct mt_fit_config t = *c;
        snprintf(b, sizeof b, "%zu", mid);
        mt_fit_set(&t, key, b);
        if (also) mt_fit_set(&t, also, b);
        if (predict(f, &t, err, sizeof err) == 0 && t.bytes <= f->budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Sets c's unused bytes and, when they are 5 % of the budget or more, why; coarse: NULL,
 * or the prefix saying fit tried every step ("no finer step: ", "nothing left to spend: "). */
static void set_unused(const struct mt_fit *f, struct mt_fit_config *c, const char *why,
                       const char *coarse)
{
    c->filled = 1;
    c->unused = f->budget - c->bytes;
    c->unused_why[0] = 0;
    c->unused_coarse = 0;
    if (c->unused * 20 >= f->budget) {
        snprintf(c->unused_why, sizeof c->unused_why, "%s%.350s", coarse ? coarse : "", why);
        c->unused_coarse = coarse != NULL;
    }
}

/* The serving context of c (decode_tokens resolved as the workloads resolve it), or 0
 * when the model's shape is unknown here (a model file). */
static size_t serving_context(const struct mt_fit *f, const struct mt_fit_config *c)
{
    struct mt_gpt_config cfg;
    char e[256];
    const char *dt = mt_fit_get(c, "decode_tokens");
    size_t n = dt ? (size_t)strtoull(dt, NULL, 10) : 0;
    if (mt_gpt_config_parse(&cfg, f->model, e, sizeof e)) return n;
    return n && n <= cfg.seq_len ? n : cfg.seq_len;
}

/* The longest decode_extra_tokens (one more sequence beside c's, shorter than theirs) in
 * [1, hi] with which c still fits, or 0. The bytes need not grow with it (a KIVI cache
 * keeps its last tokens in fp32, a paged one grows by blocks): every value is tried, down
 * from hi, up to 4096 of them; past that, the binary search of largest(). */
static size_t longest_extra(const struct mt_fit *f, const struct mt_fit_config *c, size_t hi)
{
    if (hi > 4096) return largest(f, c, "decode_extra_tokens", NULL, hi);
    char b[32], err[512];
    for (size_t m = hi; m >= 1; m--) {
        struct mt_fit_config t = *c;
        snprintf(b, sizeof b, "%zu", m);
        mt_fit_set(&t, "decode_extra_tokens", b);
        if (predict(f, &t, err, sizeof err) == 0 && t.bytes <= f->budget) return m;
    }
    return 0;
}

static int fill_serving(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    char b[32], why[384];
    size_t n = largest(f, c, "decode_sequences", NULL, 65536);
    if (!n) return 0; /* c does not fit: nothing to fill */
    snprintf(b, sizeof b, "%zu", n);
    mt_fit_set(c, "decode_sequences", b);
    if (predict(f, c, err, errlen)) return -1;
    snprintf(c->fill, sizeof c->fill, "decode_sequences=%zu", n);
    struct mt_fit_config t = *c;
    snprintf(b, sizeof b, "%zu", n + 1);
    mt_fit_set(&t, "decode_sequences", b);
    int more = n < 65536 && predict(f, &t, err, errlen) == 0;
    size_t step = more ? t.bytes - c->bytes : 0, left = f->budget - c->bytes;
    /* what a whole sequence cannot take, one more shorter sequence takes: the longest
     * context of one more that fits (a KV pool of n whole sequences and a part) */
    size_t ctx = serving_context(f, c), extra = 0;
    if (more && ctx > 1) {
        extra = longest_extra(f, c, ctx - 1);
        if (extra) {
            snprintf(b, sizeof b, "%zu", extra);
            mt_fit_set(c, "decode_extra_tokens", b);
            if (predict(f, c, err, errlen)) return -1;
            size_t at = strlen(c->fill);
            snprintf(c->fill + at, sizeof c->fill - at, " decode_extra_tokens=%zu", extra);
        }
    }
    if (more)
        snprintf(why, sizeof why,
                 "one more sequence adds %zu bytes (its KV cache and decode scratch at the "
                 "context), more than the %zu left%s",
                 step, left,
                 extra ? "; the longest one more that fits is already served"
                       : "; not even one more of one token fits");
    else
        snprintf(why, sizeof why, "at the most sequences fit searches (65536)");
    set_unused(f, c, why, more ? "no finer step: " : NULL);
    return 0;
}

/* A larger batch counts as training no worse when its measured accuracy is within this
 * share of the smaller batch's. Measured (tiny, 10 steps, bf16 Adafactor, seeds 1-4,
 * batch 16 against 18): val_bpb spreads 2.0 % from seed to seed, and the two batches
 * differ by -0.16 to +0.26 % at the same seed; differences below 0.1 % are noise of the
 * training, not a property of the batch. */
#define MT_FIT_SAME_ACC 0.001

/* What the fill of c (mixed_precision at its whole batch, no recompute: nothing left that
 * keeps the training) still leaves, 5 % of the budget or more, goes to the batch: the
 * largest batch that fits as one micro-batch is measured (a larger batch changes the
 * training: its own run, like any class's) and taken when its accuracy is no worse, within
 * MT_FIT_SAME_ACC; else c stays, saying why. Returns 0, or -1 with err (a plan or a measured run
 * failed). */
static int grow_batch(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    const char *bv = mt_fit_get(c, "micro_batch");
    size_t batch = bv ? (size_t)strtoull(bv, NULL, 10) : 0, at = strlen(c->unused_why);
    struct mt_fit_config g = *c;
    mt_fit_set(&g, "accum_steps", "0");
    size_t b = largest(f, &g, "batch", "micro_batch", 4096);
    if (!batch || b <= batch) return 0;
    if (!c->has_acc) { /* nothing to compare a larger batch with: measuring it would not say */
        snprintf(c->unused_why + at, sizeof c->unused_why - at,
                 "; batch %zu fits, but this choice has no accuracy to compare it with", b);
        return 0;
    }
    char v[32], brief[512];
    snprintf(v, sizeof v, "%zu", b);
    mt_fit_set(&g, "batch", v);
    mt_fit_set(&g, "micro_batch", v);
    struct mt_fit_measure m;
    int rc = mt_fit_measured(f->runner, f, &g, "off", 0, NULL, &m, err, errlen);
    if (rc < 0) return -1;
    double acc;
    if (rc == 0 || acc_of(f, &m, &acc, &g, err, errlen)) {
        snprintf(c->unused_why + at, sizeof c->unused_why - at,
                 "; batch %zu fits, its accuracy not measured (%.200s)", b,
                 rc == 0 ? "--no-measure" : err);
        err[0] = 0;
        return 0;
    }
    if (acc > c->acc * (1.0 + MT_FIT_SAME_ACC)) {
        snprintf(c->unused_why + at, sizeof c->unused_why - at,
                 "; batch %zu fits but trains worse (run %lld: %.4f, not %.4f)", b,
                 (long long)m.run, acc, c->acc);
        return 0;
    }
    if (predict(f, &g, err, errlen)) return -1;
    g.acc = acc;
    snprintf(g.acc_src, sizeof g.acc_src,
             "%s run %lld (batch %zu, the largest that fits: %.5f against %.5f at batch %zu, "
             "no worse within %.1f %%)",
             m.fresh ? "measured" : "db", (long long)m.run, b, acc, c->acc, batch,
             100.0 * MT_FIT_SAME_ACC);
    char *sp = strchr(g.fill, ' '); /* "micro_batch=B ..." -> "batch=b micro_batch=b ..." */
    snprintf(brief, sizeof brief, "batch=%zu micro_batch=%zu%s", b, b, sp ? sp : "");
    snprintf(g.fill, sizeof g.fill, "%.190s", brief);
    struct mt_fit_config t = g;
    snprintf(v, sizeof v, "%zu", b + 1);
    mt_fit_set(&t, "batch", v);
    mt_fit_set(&t, "micro_batch", v);
    char why[384];
    if (b >= 4096) /* largest()'s bound, the batch parameter's maximum: no b + 1 to plan */
        snprintf(why, sizeof why, "batch %zu is the largest the workloads take", b);
    else if (predict(f, &t, err, errlen))
        return -1;
    else
        snprintf(why, sizeof why,
                 "batch %zu (one more sequence) needs %zu bytes, %zu over the budget; a larger "
                 "batch is the last knob (it changes the training, measured)",
                 b + 1, t.bytes, t.bytes - f->budget);
    *c = g;
    set_unused(f, c, why, "no finer step: ");
    return 0;
}

static int fill_training(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    struct train_knobs kn;
    struct mt_fit_config got = *c, next = {0};
    int have = 0, have_next = 0;
    char desc[192], got_desc[192] = "", next_desc[192] = "";
    train_knobs(f, c, &kn);
    for (size_t i = 0; i < train_knob_count(&kn); i++) {
        struct mt_fit_config t = *c;
        train_knob_set(&t, &kn, i, desc, sizeof desc);
        if (predict(f, &t, err, errlen)) return -1;
        if (t.bytes <= f->budget && (!have || t.bytes > got.bytes)) {
            got = t, have = 1;
            snprintf(got_desc, sizeof got_desc, "%s", desc);
        }
        if (t.bytes > f->budget && (!have_next || t.bytes < next.bytes)) {
            next = t, have_next = 1;
            snprintf(next_desc, sizeof next_desc, "%s", desc);
        }
    }
    if (!have) return 0;
    *c = got;
    snprintf(c->fill, sizeof c->fill, "%s", got_desc);
    char why[384];
    if (have_next) {
        snprintf(why, sizeof why, "the next larger step (%s) needs %zu bytes, %zu over the budget",
                 next_desc, next.bytes, next.bytes - f->budget);
        set_unused(f, c, why, "no finer step: ");
        return 0;
    }
    snprintf(why, sizeof why,
             "already the largest micro-batch (the whole batch) with no checkpointing or "
             "recompute: a larger batch would change the training");
    set_unused(f, c, why, "nothing left to spend: ");
    return c->unused_why[0] ? grow_batch(f, c, err, errlen) : 0;
}

int mt_fit_fill(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen)
{
    if (c->bytes > f->budget) return 0;
    const struct mt_plugin *pl = mt_plugins_find(f->reg, c->workload);
    if (pl && f->goal == MT_PLAN_SERVING && mt_params_index(&pl->desc, "decode_sequences") >= 0)
        return fill_serving(f, c, err, errlen);
    if (f->goal == MT_PLAN_TRAINING && !strcmp(c->workload, "mixed_precision"))
        return fill_training(f, c, err, errlen);
    char why[384];
    snprintf(why, sizeof why,
             "%s has no knob fit searches that moves bytes but keeps the accuracy (what "
             "it searches of it changes the result)",
             c->workload);
    set_unused(f, c, why, NULL);
    return 0;
}

int mt_fit_search(const struct mt_fit *f, struct mt_fit_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = f->goal == MT_PLAN_SERVING ? search_serving(f, out, err, errlen)
             : f->finetune              ? search_finetune(f, out, err, errlen)
                                        : search_training(f, out, err, errlen);
    if (rc == 0 && f->goal == MT_PLAN_TRAINING && !f->finetune && f->ranks > 1)
        rc = search_ranks(f, out, err, errlen);
    if (rc) return -1;
    if (!out->has_best) return 1;
    struct mt_fit_config one = out->best; /* before the fill: one sequence, the batch */
    if (mt_fit_fill(f, &out->best, err, errlen)) return -1;
    for (size_t i = 0; i < out->n_families; i++)
        if (mt_fit_fill(f, &out->family_best[i], err, errlen)) return -1;
    if (f->goal == MT_PLAN_SERVING) {
        /* the context the model was trained for bounds what it can decode */
        struct mt_gpt_config cfg;
        char e[256];
        size_t hi = 100000;
        if (mt_gpt_config_parse(&cfg, f->model, e, sizeof e) == 0)
            hi = out->model_context = cfg.seq_len;
        out->max_context = largest(f, &one, "decode_tokens", NULL, hi);
        const char *ns = mt_fit_get(&out->best, "decode_sequences");
        out->max_sequences = ns ? (size_t)strtoull(ns, NULL, 10) : 1;
    } else {
        struct mt_fit_config t = one;
        int mp = !strcmp(t.workload, "mixed_precision");
        if (mp) mt_fit_set(&t, "accum_steps", "1");
        out->max_batch = largest(f, &t, "batch", mp ? "micro_batch" : NULL, 4096);
    }
    return 0;
}
