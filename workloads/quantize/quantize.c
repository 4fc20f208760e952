/* quantize.c — the `quantize` workload plugin: post-training weight quantization.
 *
 * What it is for: loading the cached trained baseline (trained with the baseline recipe
 * when missing), packing its linear layers (and optionally the tied embedding / LM head)
 * into a real low-bit format (mt_qmodel), freeing the fp32 linear weights, and serving
 * the packed model through the one serving measurement (serving.h): batch-1 KV-cache
 * decoding (region "infer") and held-out accuracy (region "eval"), both through the packed
 * kernels. `method` chooses the codes (qcalib.h): rtn, gptq, imatrix, awq, smoothquant
 * (W8A8) or hqq (calibration-free), the calibrated ones from `calib_batches` x 8 training
 * windows (calib.h; region "calibrate", then
 * "quantize"). Reports the standard metrics, the KL metrics against the fp32 base
 * (serving.h), quantize_seconds (gptq: of it gptq_factor_seconds and
 * gptq_update_seconds) and per-layer error (layer.<name>.mse / layer.<name>.maxabs).
 * What it is not for: quantization-aware training, or fp32 serving (the baseline plugin).
 *
 * infer_peak_bytes is accounted, not sampled: the exact bytes a deployment holds (the
 * model's remaining fp32 weight slab, the packed tensors, the KV cache and its scratch,
 * the packed kernels' scratch at batch 1); eval_peak_bytes adds the evaluation batch's
 * slabs and the scratch it grew (serving.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#include "qmodel.h"
#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_B 8
#define CALIB_B 8

/* The statistics each method reads (calib.h flags; 0: none). */
static unsigned calib_needs(enum mt_qmethod m)
{
    switch (m) {
    case MT_QM_GPTQ:
        return MT_CALIB_HESSIAN;
    case MT_QM_IMATRIX:
        return MT_CALIB_ACT_SQ;
    case MT_QM_AWQ:
        return MT_CALIB_ACT_SQ | MT_CALIB_HESSIAN;
    case MT_QM_SMOOTHQUANT:
        return MT_CALIB_ACT_MAX;
    default:
        return 0;
    }
}

/* calibrated methods: `calib_batches` x CALIB_B windows of the training split (the one
 * calibration helper, calib.h), their statistics in region "calibrate". */
static int calibrate(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c, size_t T,
                     uint64_t seed, struct mt_qmodel_opts *o, struct mt_calib *cal)
{
    size_t nseq = (size_t)mt_param_int(ctx, "calib_batches") * CALIB_B;
    if (!calib_needs(o->method)) return 0;
    if (nseq == 0)
        return mt_error(ctx, "method %s needs calib_batches > 0", mt_qmethod_name(o->method));
    char err[512];
    mt_region_begin(ctx, "calibrate");
    int *in = mt_wl_batch_alloc(ctx, nseq * T);
    int rc = in ? mt_calib_sample_tokens(&c->train_tokens, nseq, T, seed, in, in + nseq * T, err,
                                         sizeof err)
                : (snprintf(err, sizeof err, "out of memory"), -1);
    if (rc == 0)
        rc =
            mt_calib_collect(m, in, nseq, CALIB_B, T, calib_needs(o->method), cal, err, sizeof err);
    free(in);
    mt_region_end(ctx, "calibrate");
    if (rc) return mt_error(ctx, "calibration: %s", err);
    o->calib = cal;
    mt_metric(ctx, "calib_tokens", (double)cal->tokens, "count");
    return 0;
}

/* device=cuda serves what cquant.h decodes: weight-only linear codes of 8 or 4 bits (any
 * granularity), rounded to nearest; anything else is refused naming what is served. */
static int check_cuda(struct mt_ctx *ctx, const struct mt_qmodel_opts *o)
{
    const char *no = o->fmt.bits != 8 && o->fmt.bits != 4 ? "bits"
                     : o->fmt.scheme != MT_QS_LINEAR_ASYM && o->fmt.scheme != MT_QS_LINEAR_SYM
                         ? "scheme"
                     : o->method != MT_QM_RTN                      ? "method"
                     : o->act != MT_QACT_F32                       ? "activations"
                     : o->embedding                                ? "embedding"
                     : *mt_param_str(ctx, "layer_bits")            ? "layer_bits"
                     : strcmp(mt_param_str(ctx, "kernel"), "auto") ? "kernel"
                                                                   : NULL;
    if (!no) return 0;
    char bits[16];
    snprintf(bits, sizeof bits, "%u", o->fmt.bits);
    const char *val = !strcmp(no, "bits") ? bits : mt_param_str(ctx, no);
    return mt_error(ctx,
                    "device=cuda serves weight-only int8 and int4 (bits=8|4, "
                    "scheme=linear-asym|linear-sym, any granularity: int8, int8-g128, "
                    "int4-g128/64/32, ...), method=rtn, activations=none, embedding=off, no "
                    "layer_bits, kernel=auto; this run's %s=%s is not",
                    no, val ? val : "?");
}

/* Reads the quantization parameters into *o; rejects combinations that make no sense. */
static int read_opts(struct mt_ctx *ctx, struct mt_qmodel_opts *o, uint64_t seed)
{
    char err[256];
    int64_t bits = mt_param_int(ctx, "bits"); /* one of the table's choices, checked */
    const char *scheme = mt_param_str(ctx, "scheme"), *gran = mt_param_str(ctx, "granularity");
    const char *dtype = mt_param_str(ctx, "dtype"), *act = mt_param_str(ctx, "activations");
    memset(o, 0, sizeof *o);
    o->fmt.bits = (unsigned)bits;
    o->fmt.seed = seed;
    o->fmt.group_size = (size_t)mt_param_int(ctx, "group_size");
    o->embedding = mt_param_bool(ctx, "embedding");
    o->act = strcmp(act, "int8-dynamic") == 0 ? MT_QACT_INT8 : MT_QACT_F32;
    const char *kernel = mt_param_str(ctx, "kernel");
    for (int i = MT_QIMPL_AUTO; i <= MT_QIMPL_DNNL; i++)
        if (!strcmp(kernel, mt_qimpl_name((enum mt_qimpl)i))) o->impl = (enum mt_qimpl)i;
    if (bits == 16) {
        o->fmt.scheme = strcmp(dtype, "fp16") == 0 ? MT_QS_FP16 : MT_QS_BF16;
        if (o->act == MT_QACT_INT8)
            return mt_error(ctx, "activations=int8-dynamic needs bits 8/4/3/2 with a linear "
                                 "scheme, not bits=16");
    } else if (mt_qscheme_from_name(scheme, &o->fmt.scheme) || o->fmt.scheme == MT_QS_FP16 ||
               o->fmt.scheme == MT_QS_BF16) {
        return mt_error(ctx, "scheme '%s' is not a low-bit scheme", scheme);
    }
    o->method = (enum mt_qmethod)mt_qmethod_parse(mt_param_str(ctx, "method"));
    o->damp = mt_param_float(ctx, "damp");
    o->act_order = mt_param_bool(ctx, "act_order");
    o->sq_alpha = mt_param_float(ctx, "sq_alpha");
    if (o->method != MT_QM_RTN && bits == 16)
        return mt_error(ctx, "method=%s needs a low-bit format, not bits=16",
                        mt_qmethod_name(o->method));
    if (mt_qgran_from_name(gran, &o->fmt.gran))
        return mt_error(ctx, "unknown granularity '%s'", gran);
    if (mt_qformat_check(&o->fmt, err, sizeof err)) return mt_error(ctx, "%s", err);
    return strcmp(mt_param_str(ctx, "device"), "cpu") ? check_cuda(ctx, o) : 0;
}

/* `layer_bits`: empty (NULL in *out: `bits` everywhere), or 4 x n_layer comma-separated
 * widths of 16/8/4/3/2 in block order (qkv, attn_proj, fc, fc_proj of block 0, ...), into
 * a malloc'd array the caller frees. Returns 0, or -1 through mt_error. */
static int read_layer_bits(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, unsigned char **out)
{
    const char *s = mt_param_str(ctx, "layer_bits");
    size_t n = 4 * cfg->n_layer, i = 0;
    *out = NULL;
    if (!s || !*s) return 0;
    unsigned char *b = malloc(n);
    if (!b) return mt_error(ctx, "out of memory");
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',') ||
            (v != 16 && v != 8 && v != 4 && v != 3 && v != 2)) {
            free(b);
            return mt_error(ctx, "layer_bits: '%.*s' is not one of 16, 8, 4, 3, 2",
                            (int)strcspn(s, ","), s);
        }
        if (i < n) b[i] = (unsigned char)v;
        i++;
        s = *end ? end + 1 : end;
    }
    if (i != n) {
        free(b);
        return mt_error(ctx,
                        "layer_bits has %zu values; this model has %zu block linears (%zu blocks "
                        "x qkv,attn_proj,fc,fc_proj)",
                        i, n, (size_t)cfg->n_layer);
    }
    *out = b;
    return 0;
}

/* Which kernels served: qgemm_calls_<impl> per implementation that ran, and
 * qgemm_scalar_fallbacks, the calls `kernel=auto` had to give to the scalar reference
 * because this CPU lacks the AVX-512 kernel (also logged, as a note: it is a fact of the
 * machine, not a fault of the run, and every run on such a CPU has it); then the model's
 * own fp32 matmuls (mt_wl_report_kernels). */
static void report_kernels(struct mt_ctx *ctx, const struct mt_qmodel *qm)
{
    char name[64];
    for (int i = MT_QIMPL_SCALAR; i <= MT_QIMPL_DNNL; i++) {
        snprintf(name, sizeof name, "qgemm_calls_%s", mt_qimpl_name((enum mt_qimpl)i));
        mt_metric(ctx, name, (double)qm->impl_calls[i], "count");
    }
    mt_metric(ctx, "qgemm_scalar_fallbacks", (double)qm->scalar_fallbacks, "count");
    if (qm->scalar_fallbacks)
        mt_log(ctx, MT_LOG_INFO,
               "this CPU lacks the AVX-512%s kernel: the scalar reference served %zu packed "
               "GEMMs, and the speeds reported are its speeds",
               qm->opts.act == MT_QACT_INT8 ? " VNNI" : "", qm->scalar_fallbacks);
    mt_wl_report_kernels(ctx);
}

static void report_layers(struct mt_ctx *ctx, const struct mt_qmodel *qm)
{
    char name[96];
    for (size_t i = 0; i < qm->n_layers; i++) {
        const struct mt_qlayer *ql = &qm->layers[i];
        snprintf(name, sizeof name, "layer.%s.mse", ql->name);
        mt_metric(ctx, name, ql->mse, "weight^2");
        snprintf(name, sizeof name, "layer.%s.maxabs", ql->name);
        mt_metric(ctx, name, ql->maxabs, "weight");
    }
}

/* The packed kernels' grow-only scratch (struct mt_wl_serving::scratch_bytes). */
static size_t qws_bytes(const void *qm)
{
    return mt_qws_bytes(((const struct mt_qmodel *)qm)->ws);
}

/* Serving on the GPU (device=cuda): the fp32 model's twin decodes through the packed
 * linears (cquant.h) and scores the evaluation text with their decoded values. */
static int run_cuda(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                    const struct mt_qmodel_opts *o, const struct mt_wl_base *base)
{
    struct mt_cuda_serve_opts dev;
    if (mt_wl_cuda_serve_opts(ctx, m->B, m->T, &dev) < 0) return -1;
    dev.qfmt = &o->fmt;
    static const enum mt_gpt_param lin[] = {MT_P_QKVW, MT_P_ATTPROJW, MT_P_FCW, MT_P_FCPROJW};
    unsigned char drop[MT_P_COUNT] = {0};
    size_t packed = 0;
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        size_t d[3];
        mt_gpt_param_shape(&m->cfg, lin[i], d); /* (L, out, in) */
        packed += d[0] * mt_qformat_bytes(&o->fmt, d[1], d[2]);
        drop[lin[i]] = 1;
    }
    mt_metric(ctx, "packed_bytes", (double)packed, "bytes");
    mt_metric(ctx, "model_bytes", (double)(mt_gpt_weight_slab_bytes(&m->cfg, drop) + packed),
              "bytes");
    mt_metric(ctx, "n_params", (double)m->n_params, "count");
    mt_log(ctx, MT_LOG_INFO, "device=cuda: %s %u-bit %s, %zu packed bytes",
           mt_qscheme_name(o->fmt.scheme), o->fmt.bits, mt_qgran_name(o->fmt.gran), packed);
    struct mt_wl_serving sv = {.base = base, .device = &dev};
    return mt_wl_report_serving(ctx, m, c, &sv);
}

static int run(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    struct mt_corpus corpus = {0};
    struct mt_qmodel_opts o;
    struct mt_gpt *m = NULL;
    struct mt_qmodel *qm = NULL;
    struct mt_calib cal = {0};
    uint64_t seed;
    char err[512];
    int rc = -1;
    mt_wl_threads(ctx);
    unsigned char *lbits = NULL;
    if (mt_wl_model_config(ctx, NULL, &cfg) || mt_wl_recipe(ctx, &cfg, &r, &seed) ||
        read_opts(ctx, &o, seed) || read_layer_bits(ctx, &cfg, &lbits))
        return -1;
    o.layer_bits = lbits;
    if (mt_wl_corpus(ctx, 1, r.seq, &corpus)) return -1;
    struct mt_wl_train_stats st;
    if (mt_wl_reference_or_load(ctx, &cfg, &r, seed, &corpus, MT_GPT_INFER, EVAL_B, r.seq, &m, &st))
        goto out;
    mt_log(ctx, MT_LOG_INFO, "baseline %s (%zu steps)", st.from_cache ? "from cache" : "trained",
           r.steps);
    struct mt_wl_base base;
    if (mt_wl_base_probs(ctx, m, &corpus, &r, seed, &base)) goto out;
    if (strcmp(mt_param_str(ctx, "device"), "cpu")) {
        rc = run_cuda(ctx, m, &corpus, &o, &base);
        goto out_cuda;
    }

    if ((rc = calibrate(ctx, m, &corpus, r.seq, seed, &o, &cal))) goto out;
    mt_region_begin(ctx, "quantize");
    rc = mt_qmodel_build(&qm, m, &o, err, sizeof err);
    mt_region_end(ctx, "quantize");
    mt_calib_free(&cal); /* the statistics are not part of what serves */
    if (rc) {
        rc = mt_error(ctx, "%s", err);
        goto out;
    }
    mt_metric(ctx, "quantize_seconds", qm->pack_seconds, "s");
    if (o.method == MT_QM_GPTQ) {
        mt_metric(ctx, "gptq_factor_seconds", qm->factor_seconds, "s");
        mt_metric(ctx, "gptq_update_seconds", qm->update_seconds, "s");
    }
    mt_metric(ctx, "model_bytes", (double)mt_qmodel_bytes(qm), "bytes");
    mt_metric(ctx, "bits_per_weight", mt_qmodel_bits_per_weight(qm), "bits");
    mt_metric(ctx, "packed_bytes", (double)qm->packed_bytes, "bytes");
    mt_metric(ctx, "n_params", (double)m->n_params, "count");
    report_layers(ctx, qm);
    mt_log(ctx, MT_LOG_INFO, "%s %u-bit %s: %zu packed bytes (%.3f bits/weight) + %zu fp32",
           mt_qscheme_name(o.fmt.scheme), o.fmt.bits, mt_qgran_name(o.fmt.gran), qm->packed_bytes,
           mt_qmodel_bits_per_weight(qm), qm->fp32_bytes);

    struct mt_wl_serving sv = {
        .weight_bytes = qm->packed_bytes, .scratch_bytes = qws_bytes, .user = qm, .base = &base};
    if ((rc = mt_wl_report_serving(ctx, m, &corpus, &sv))) goto out;
    rc = 0;
out:
    if (rc == 0) report_kernels(ctx, qm);
out_cuda:
    mt_qmodel_free(qm);
    mt_calib_free(&cal);
    mt_gpt_free(m);
    mt_corpus_free(&corpus);
    free(lbits);
    return rc;
}

static size_t mem_estimate(struct mt_ctx *ctx)
{
    /* Training the baseline when it is not cached dominates. */
    return mt_wl_estimate_baseline(ctx, 0, NULL);
}

static const struct mt_param_spec params[] = {
    MT_WL_PARAMS_POSTTRAIN,
    MT_WL_PARAM_DECODE_TOKENS,
    MT_WL_PARAMS_KV_CACHE,
    {"bits", MT_PARAM_INT, "4", 2, 16, "16|8|4|3|2",
     "bits per weight; 16 stores fp16/bf16 (see dtype)"},
    {"dtype", MT_PARAM_CHOICE, "bf16", 0, 0, "fp16|bf16", "16-bit float type when bits=16"},
    {"scheme", MT_PARAM_CHOICE, "linear-asym", 0, 0, "linear-asym|linear-sym|nf|kmeans|log",
     "level placement: min-max, absmax, normal quantiles, Lloyd k-means, mu-law companding"},
    {"granularity", MT_PARAM_CHOICE, "group", 0, 0, "tensor|channel|group",
     "one scale (or codebook) per tensor, per output row, or per group along the input"},
    {"group_size", MT_PARAM_INT, "64", 32, 128, "32|64|128", "columns per group"},
    {"activations", MT_PARAM_CHOICE, "none", 0, 0, "none|int8-dynamic",
     "weight-only, or W8A8-style per-token dynamic int8 activations (linear schemes)"},
    {"embedding", MT_PARAM_BOOL, "off", 0, 0, NULL,
     "also quantize the tied token embedding / LM head"},
    {"layer_bits", MT_PARAM_STRING, "", 0, 0, NULL,
     "per-tensor bit widths (16/8/4/3/2), one per block linear in block order (qkv, attn_proj, "
     "fc, fc_proj of block 0, then block 1, ...); empty = `bits` everywhere (memtrade fit)"},
    {"method", MT_PARAM_CHOICE, "rtn", 0, 0, "rtn|gptq|imatrix|awq|smoothquant|hqq",
     "how codes are chosen: round to nearest; GPTQ error feedback through the damped inverse "
     "Hessian of calibration inputs; RTN with scales weighted by mean squared activations; "
     "AWQ / SmoothQuant (int8 activations) per-channel scales folded into the norms and V; "
     "HQQ zero points (linear-asym, no calibration)"},
    {"calib_batches", MT_PARAM_INT, "8", 0, 10000, NULL,
     "gptq/imatrix/awq/smoothquant: batches of 8 training windows for the calibration "
     "statistics"},
    {"damp", MT_PARAM_FLOAT, "0.01", 1e-6, 10.0, NULL,
     "gptq: fraction of the mean Hessian diagonal added to its diagonal"},
    {"act_order", MT_PARAM_BOOL, "off", 0, 0, NULL,
     "gptq: round columns by descending Hessian diagonal (groups then fitted up front)"},
    {"sq_alpha", MT_PARAM_FLOAT, "0.5", 0.0, 1.0, NULL,
     "smoothquant: migration strength alpha of s = max|x|^alpha / max|w|^(1-alpha)"},
    {"kernel", MT_PARAM_CHOICE, "auto", 0, 0, "auto|scalar|avx512|onednn",
     "packed GEMM kernel: the fastest this CPU has per shape, or one forced (a forced kernel "
     "that cannot run a layer fails the run)"},
    MT_WL_ROW("device", MT_PARAM_CHOICE, "cpu", 0, 0, "cpu|cuda",
              "where the packed model serves: the CPU kernels, or the GPU (CUDA build: "
              "weight-only int8/int4, the one serving measurement on the device)"),
    MT_WL_ROW("device_precision", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|tf32|bf16",
              "device=cuda: the evaluation's GEMMs and the unpacked LM head in fp32, TF32 or "
              "bf16"),
};

/* The reference (trained when not cached), then serving the packed model: its weight slab
 * without the four block linears (and the tied embedding with embedding=on), the packed
 * tensors (codes, scales, zero points and codebooks: mt_qformat_bytes, the packing's own
 * layout). Not planned: the packed kernels' grow-only scratch and the KL buffers of the
 * evaluation against the base, both measured (the witnesses show them). */
static int plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_gpt_config cfg;
    struct mt_qmodel_opts o;
    unsigned char *lbits = NULL;
    if (mt_wl_model_config(ctx, NULL, &cfg) || read_opts(ctx, &o, 0) ||
        read_layer_bits(ctx, &cfg, &lbits))
        return -1;
    o.layer_bits = lbits;
    static const enum mt_gpt_param lin[] = {MT_P_QKVW, MT_P_ATTPROJW, MT_P_FCW, MT_P_FCPROJW};
    unsigned char drop[MT_P_COUNT] = {0};
    struct mt_wl_plan_serving s = {.eval_batch = EVAL_B, .kl = 1};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        size_t d[3];
        mt_gpt_param_shape(&cfg, lin[i], d); /* (L, out, in) */
        for (size_t l = 0; l < d[0]; l++) {
            struct mt_qformat f = mt_qmodel_layer_fmt(&o, 4 * l + i);
            char err[256];
            if (mt_qformat_check(&f, err, sizeof err)) {
                free(lbits);
                return mt_error(ctx, "layer_bits: %s", err);
            }
            s.stored += mt_qformat_bytes(&f, d[1], d[2]);
        }
        drop[lin[i]] = 1;
    }
    free(lbits);
    if (o.embedding) {
        s.stored += mt_qformat_bytes(&o.fmt, cfg.vocab, cfg.n_embd);
        drop[MT_P_WTE] = 1;
    }
    s.weight_slab = mt_gpt_weight_slab_bytes(&cfg, drop);
    int dev = mt_wl_plan_reference_cuda(ctx, &s, p); /* the packed linears beside the fp32 slab */
    return dev ? (dev < 0 ? -1 : 0) : mt_wl_plan_reference(ctx, &s, p);
}

MT_WL_DESCRIPTOR_PLAN("quantize",
                      "post-training weight quantization served by packed low-bit kernels", params,
                      NULL, mem_estimate, run, mt_wl_check_model, plan);
