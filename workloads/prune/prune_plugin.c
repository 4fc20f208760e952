/* prune_plugin.c — the `prune` workload plugin: prune the trained baseline, optionally
 * fine-tune with the mask fixed, store it sparse, serve it with sparse kernels.
 *
 * What it is for: loading the cached baseline (`model`, `steps`, ... as for every
 * workload), calibrating on `calib_batches` training batches when the method needs it
 * (wanda: input norms through the linear hook; obd: Fisher diagonal from per-sequence
 * gradients; sparsegpt: the inputs' Gram matrices), choosing masks (prune_model.h;
 * sparsegpt prunes and compensates the kept weights in one pass), fine-tuning
 * `finetune_steps` AdamW steps with the mask re-applied to gradients and weights after
 * every step, packing every linear layer (region "pack") in the format `storage` asks for
 * (prune_storage.h: the smallest of CSR, bitmap, N:M or dense by default; the fastest measured
 * batch-1 GEMV; or one forced format; heads/neurons pack their smaller matrices the same way),
 * freeing the dense linear weights, and serving it through the one serving measurement (serving.h:
 * batch-1 decoding in region "infer", held-out accuracy in "eval"). What it is not for: pruning the
 * tied embedding / LM head, or training from scratch.
 *
 * Metrics: the standard val_* and eval/decode speeds (through the sparse kernels),
 * model_bytes (packed linears + the fp32 tensors still stored, exact), sparse_bytes,
 * sparsity (of the prunable weights) and layer.<h<l>.<kind>>.sparsity, layers_<format>
 * counts, prune_seconds, pack_seconds; with storage=fastest also every layer's timed
 * formats (layer.<name>.gemv_us.<format>, and one log line per layer naming the choice)
 * and their sums gemv_us_chosen / gemv_us_dense. infer_peak_bytes is accounted like the
 * quantize plugin's: the exact bytes a deployment holds (slim weight slab, packed layers,
 * the hook's buffers and the sparse kernels' scratch at batch 1, the KV cache and its
 * scratch); eval_peak_bytes adds the evaluation batch's slabs and scratch (serving.h).
 * oneDNN's internal buffers for layers that stay dense are in neither.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#include "loop.h"
#include "prune_model.h"
#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_B 8
#define CALIB_B 8

static int read_opts(struct mt_ctx *ctx, struct mt_prune_opts *o, struct mt_prune_storage_opts *so)
{
    memset(o, 0, sizeof(*o));
    int method = mt_prune_method_parse(mt_param_str(ctx, "method"));
    if (method < 0) return mt_error(ctx, "unknown method %s", mt_param_str(ctx, "method"));
    o->method = (enum mt_prune_method)method;
    o->sparsity = mt_param_float(ctx, "sparsity");
    o->global = strcmp(mt_param_str(ctx, "scope"), "global") == 0;
    const char *nm = mt_param_str(ctx, "nm");
    char tail;
    if (sscanf(nm, "%u:%u%c", &o->n, &o->m, &tail) != 2 || o->n == 0 || o->n > o->m || o->m > 16)
        return mt_error(ctx, "nm must be N:M with 0 < N <= M <= 16, got \"%s\"", nm);
    int nm_pattern = o->method == MT_PRUNE_NM || (o->method == MT_PRUNE_SPARSEGPT &&
                                                  !strcmp(mt_param_str(ctx, "pattern"), "nm"));
    if (!nm_pattern) o->n = o->m = 0;
    if (o->method == MT_PRUNE_SPARSEGPT && o->global)
        return mt_error(ctx, "method=sparsegpt prunes per layer (scope=layer)");
    memset(so, 0, sizeof(*so));
    const char *st = mt_param_str(ctx, "storage");
    int storage = mt_prune_storage_parse(st);
    if (storage < 0)
        return mt_error(ctx, "unknown storage %s (choices: " MT_PRUNE_STORAGE_CHOICES ")", st);
    if (storage == MT_PRUNE_STORE_NM && !nm_pattern)
        return mt_error(ctx,
                        "storage=nm is only valid with an N:M mask (method=nm, or sparsegpt "
                        "with pattern=nm; got method=%s); valid "
                        "storage choices here: smallest|fastest|dense|csr|bitmap",
                        mt_prune_method_name(o->method));
    so->storage = (enum mt_prune_storage)storage;
    return 0;
}

/* The calibration windows calibrate() holds (inputs and targets of nb x CALIB_B). */
static size_t calib_batch_bytes(size_t nb, size_t T)
{
    return mt_wl_batch_bytes(nb * CALIB_B, T);
}

/* calib_batches x CALIB_B windows of the train split, seeded apart from training. */
static int calibrate(struct mt_ctx *ctx, const struct mt_prune_opts *o, struct mt_gpt *m,
                     struct mt_gpt *mtr, const struct mt_corpus *c, size_t T, uint64_t seed,
                     struct mt_prune_calib *cal)
{
    size_t nb = (size_t)mt_param_int(ctx, "calib_batches");
    int need = mt_prune_needs(o->method);
    if (!need) return 0;
    if (nb == 0)
        return mt_error(ctx, "method %s needs calib_batches > 0", mt_prune_method_name(o->method));
    int *in = mt_wl_batch_alloc(ctx, nb * CALIB_B * T); /* calib_batch_bytes */
    if (!in) return mt_error(ctx, "calibration batches: out of memory");
    int *tg = in + nb * CALIB_B * T;
    char err[512];
    int rc =
        mt_calib_sample_tokens(&c->train_tokens, nb * CALIB_B, T, seed, in, tg, err, sizeof err);
    mt_region_begin(ctx, "calibrate");
    if (rc == 0 && (need & MT_PRUNE_NEED_ACTS))
        rc = mt_prune_calib_acts(m, o->method, in, nb, CALIB_B, T, cal, err, sizeof(err));
    if (rc == 0 && (need & MT_PRUNE_NEED_FISHER))
        rc = mt_prune_calib_fisher(mtr, in, tg, nb, CALIB_B, T, cal, err, sizeof(err));
    mt_region_end(ctx, "calibrate");
    free(in);
    return rc ? mt_error(ctx, "calibration: %s", err) : 0;
}

struct fixed_masks {
    struct mt_gpt *m;
    const struct mt_prune_masks *k;
};

static void masks(void *user)
{
    const struct fixed_masks *f = user;
    mt_prune_apply(f->m, f->k);
}

/* Fine-tunes mtr with the mask fixed, in the one loop (loop.h) on a stream of its own:
 * masked gradients before AdamW, masked weights after (weight decay and momentum would
 * otherwise revive pruned weights). */
static int finetune(struct mt_ctx *ctx, struct mt_gpt *mtr, const struct mt_prune_masks *k,
                    const struct mt_gpt_recipe *base, const struct mt_corpus *c, uint64_t seed)
{
    size_t steps = (size_t)mt_param_int(ctx, "finetune_steps");
    struct mt_gpt_recipe r = *base;
    r.steps = steps;
    r.warmup = steps / 10;
    r.lr = (float)mt_param_float(ctx, "finetune_lr");
    char err[512];
    struct mt_loop_engine e;
    struct fixed_masks fm = {mtr, k};
    struct mt_loop_method me = {.user = &fm, .masks = masks};
    struct mt_loop_opts o = {.recipe = &r,
                             .batch_seed = seed ^ 0xf1e7u,
                             .region = "finetune",
                             .series = "finetune_loss"};
    struct mt_loop_result res;
    mt_loop_gpt_engine(&e, mtr);
    if (mt_loop_run_tokens(ctx, &o, &e, &me, &c->train_tokens, &res, err, sizeof err))
        return mt_error(ctx, "fine-tune: %s", err);
    mt_metric(ctx, "finetune_tokens_per_s", (double)(steps * r.batch * r.seq) / res.seconds,
              "tokens/s");
    return 0;
}

/* storage=fastest: each layer's timed formats (metrics layer.<name>.gemv_us.<format>, one
 * INFO line per layer) and the sums over layers for the chosen formats and for dense. */
static void report_timings(struct mt_ctx *ctx, const struct mt_pruned *p)
{
    double chosen = 0.0, dense = 0.0;
    for (size_t s = 0; s < p->n_slots; s++) {
        const struct mt_pruned_linear *lin = &p->lin[s];
        char name[64], metric[128], line[256];
        mt_prune_slot_name(s, name, sizeof(name));
        int len =
            snprintf(line, sizeof(line), "%s: %s;", name, mt_sparse_format_names[lin->w.format]);
        for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
            if (lin->bench_ns[f] < 0.0) continue;
            snprintf(metric, sizeof(metric), "layer.%s.gemv_us.%s", name,
                     mt_sparse_format_names[f]);
            mt_metric(ctx, metric, lin->bench_ns[f] * 1e-3, "us");
            if (len > 0 && (size_t)len < sizeof(line))
                len += snprintf(line + len, sizeof(line) - (size_t)len, " %s %.2f us",
                                mt_sparse_format_names[f], lin->bench_ns[f] * 1e-3);
        }
        mt_log(ctx, MT_LOG_INFO, "fastest %s", line);
        chosen += lin->bench_ns[lin->w.format] * 1e-3;
        dense += lin->bench_ns[MT_SPARSE_DENSE] * 1e-3;
    }
    mt_metric(ctx, "gemv_us_chosen", chosen, "us");
    mt_metric(ctx, "gemv_us_dense", dense, "us");
}

static void report_packed(struct mt_ctx *ctx, const struct mt_pruned *p, const struct mt_gpt *m)
{
    size_t total = 0, zeros = 0, per_format[MT_SPARSE_FORMAT_COUNT] = {0};
    for (size_t s = 0; s < p->n_slots; s++) {
        char name[64], metric[96];
        mt_prune_slot_name(s, name, sizeof(name));
        size_t w = mt_pruned_slot_weights(p, s), z = mt_pruned_slot_zeros(p, s);
        total += w;
        zeros += z;
        per_format[p->lin[s].w.format]++;
        snprintf(metric, sizeof(metric), "layer.%s.sparsity", name);
        mt_metric(ctx, metric, (double)z / (double)w, "ratio");
        mt_log(ctx, MT_LOG_DEBUG, "%s: %zux%zu packed %s, %zu bytes, sparsity %.4f", name,
               p->lin[s].n_out, p->lin[s].n_in, mt_sparse_format_names[p->lin[s].w.format],
               mt_sparse_bytes(&p->lin[s].w) + p->lin[s].index_bytes, (double)z / (double)w);
    }
    size_t fp32 = 0; /* exact bytes of the tensors still stored in fp32 */
    for (int t = 0; t < MT_P_COUNT; t++)
        if (m->param[t]) fp32 += m->param_len[t] * sizeof(float);
    size_t sparse = mt_pruned_bytes(p);
    mt_metric(ctx, "sparsity", (double)zeros / (double)total, "ratio");
    mt_metric(ctx, "sparse_bytes", (double)sparse, "bytes");
    mt_metric(ctx, "fp32_bytes", (double)fp32, "bytes");
    mt_metric(ctx, "model_bytes", (double)(sparse + fp32), "bytes");
    mt_metric(ctx, "n_params", (double)m->n_params, "count");
    mt_metric(ctx, "nonzero_params", (double)(m->n_params - zeros), "count");
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
        char metric[48];
        snprintf(metric, sizeof(metric), "layers_%s", mt_sparse_format_names[f]);
        mt_metric(ctx, metric, (double)per_format[f], "count");
    }
    mt_log(ctx, MT_LOG_INFO,
           "packed (storage=%s): sparsity %.4f, %zu sparse + %zu fp32 bytes; layers dense %zu "
           "csr %zu bitmap %zu nm %zu",
           mt_prune_storage_name(p->storage), (double)zeros / (double)total, sparse, fp32,
           per_format[0], per_format[1], per_format[2], per_format[3]);
    if (p->storage == MT_PRUNE_STORE_FASTEST) report_timings(ctx, p);
}

/* Which kernels served: sparse_calls_<path> per code path (mt_sparse_path_names),
 * sparse_fallbacks (multiplies that ran a slower path than their shape's: no AVX-512, an
 * N:M pattern whose N does not divide 16, a failed SpMM; warned about), dense_calls
 * (dense-stored layers, through oneDNN), then the model's fp32 matmuls. */
static void report_kernels(struct mt_ctx *ctx, const struct mt_pruned *p)
{
    char name[64];
    for (int i = 0; i < MT_SPARSE_PATH_COUNT; i++) {
        snprintf(name, sizeof(name), "sparse_calls_%s", mt_sparse_path_names[i]);
        mt_metric(ctx, name, (double)p->path_calls[i], "count");
    }
    mt_metric(ctx, "sparse_fallbacks", (double)p->fallbacks, "count");
    mt_metric(ctx, "dense_calls", (double)p->dense_calls, "count");
    /* A CPU without AVX-512 is a fact of the machine (a note); a slower path on one that
     * has it is a surprise of this run (a warning). */
    if (p->fallbacks)
        mt_log(ctx, mt_sparse_have_avx512() ? MT_LOG_WARN : MT_LOG_INFO,
               "%zu sparse multiplies ran a slower path than their shape's (%s): the speeds "
               "reported include them",
               p->fallbacks,
               mt_sparse_have_avx512() ? "an N:M pattern the AVX-512 kernels cannot take, or a "
                                         "failed SpMM"
                                       : "this CPU lacks AVX-512");
    mt_wl_report_kernels(ctx);
}

/* The sparse serving scratch (struct mt_wl_serving::scratch_bytes): the hook's grow-only
 * buffers and the most one sparse kernel call held. */
static size_t serving_scratch(const void *packed)
{
    const struct mt_pruned *p = packed;
    return mt_pruned_workspace_bytes(p) + p->kernel_scratch_peak;
}

static int run(struct mt_ctx *ctx)
{
    struct mt_wl_setup s = {0};
    struct mt_prune_opts o;
    struct mt_prune_storage_opts so;
    struct mt_prune_calib cal = {0};
    struct mt_prune_masks masks = {0};
    struct mt_pruned packed = {0};
    struct mt_gpt *m = NULL, *mtr = NULL;
    char err[512];
    int rc = -1;
    mt_wl_threads(ctx);
    if (mt_wl_setup_model(ctx, &s) || read_opts(ctx, &o, &so)) return -1;
    if (mt_wl_corpus(ctx, 1, s.r.seq, &s.corpus)) return -1;
    size_t ft_steps = (size_t)mt_param_int(ctx, "finetune_steps");
    struct mt_wl_train_stats st;
    if (mt_wl_reference_or_load(ctx, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_INFER, EVAL_B, s.r.seq,
                                &m, &st))
        goto out;
    if ((mt_prune_needs(o.method) & MT_PRUNE_NEED_FISHER) || ft_steps > 0) {
        /* a second, trainable copy of the same cached weights */
        if (mt_wl_reference_or_load(ctx, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_TRAIN, s.r.batch,
                                    s.r.seq, &mtr, NULL))
            goto out;
    }
    mt_log(ctx, MT_LOG_INFO, "baseline %s; pruning %s sparsity %.3f scope %s%s",
           st.from_cache ? "from cache" : "trained", mt_prune_method_name(o.method), o.sparsity,
           o.global ? "global" : "layer", o.n ? " (N:M)" : "");

    struct mt_wl_base base;
    if (mt_wl_base_probs(ctx, m, &s.corpus, &s.r, s.seed, &base)) goto out;
    double t0 = mt_wl_now();
    mt_region_begin(ctx, "prune");
    rc = calibrate(ctx, &o, m, mtr, &s.corpus, s.r.seq, s.seed, &cal);
    if (rc == 0 && (o.method == MT_PRUNE_SPARSEGPT
                        ? mt_prune_sparsegpt(m, &o, &cal, &masks, err, sizeof(err))
                        : mt_prune_select_masks(m, &o, &cal, &masks, err, sizeof(err))))
        rc = mt_error(ctx, "%s", err);
    mt_region_end(ctx, "prune");
    mt_prune_calib_free(&cal);
    if (rc) goto out;
    mt_prune_apply(m, &masks);
    mt_metric(ctx, "prune_seconds", mt_wl_now() - t0, "s");
    if (ft_steps > 0) {
        if (o.method == MT_PRUNE_SPARSEGPT) /* the compensated weights, not the cached ones */
            if (mt_gpt_copy_weights(mtr, m, err, sizeof err)) { /* tensor by tensor: */
                rc = mt_error(ctx, "%s", err);                  /* m's may be mapped */
                goto out;
            }
        mt_prune_apply(mtr, &masks);
        if ((rc = finetune(ctx, mtr, &masks, &s.r, &s.corpus, s.seed))) goto out;
        if (mt_gpt_copy_weights(m, mtr, err, sizeof err)) {
            rc = mt_error(ctx, "fine-tuned and served models: %s", err);
            goto out;
        }
    }
    mt_gpt_free(mtr);
    mtr = NULL;

    t0 = mt_wl_now();
    mt_region_begin(ctx, "pack");
    rc = mt_pruned_build_storage(&packed, m, &masks, o.n, o.m, &so, err, sizeof(err));
    mt_region_end(ctx, "pack");
    if (rc || mt_pruned_slim_model(m, err, sizeof(err))) {
        rc = mt_error(ctx, "%s", err);
        goto out;
    }
    mt_metric(ctx, "pack_seconds", mt_wl_now() - t0, "s");
    mt_prune_masks_free(&masks);
    m->hook = (struct mt_gpt_linear_hook){mt_pruned_matmul, &packed};
    packed.impl = strcmp(mt_param_str(ctx, "kernel"), "scalar") == 0 ? MT_SPARSE_IMPL_SCALAR
                                                                     : MT_SPARSE_IMPL_AUTO;
    report_packed(ctx, &packed, m);

    struct mt_wl_serving sv = {.weight_bytes = mt_pruned_bytes(&packed),
                               .scratch_bytes = serving_scratch,
                               .user = &packed,
                               .base = &base};
    if ((rc = mt_wl_report_serving(ctx, m, &s.corpus, &sv))) goto out;
    report_kernels(ctx, &packed);
    rc = 0;
out:
    if (m) m->hook = (struct mt_gpt_linear_hook){0};
    mt_pruned_free(&packed);
    mt_prune_masks_free(&masks);
    mt_prune_calib_free(&cal);
    mt_gpt_free(mtr);
    mt_gpt_free(m);
    mt_corpus_free(&s.corpus);
    return rc;
}

static size_t mem_estimate(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    size_t base = mt_wl_estimate_baseline(ctx, 0, &cfg);
    /* baseline training (when not cached) or the fine-tune copy, plus the served copy and
     * calibration statistics (a Fisher diagonal is one more weight-sized array) */
    size_t gram = 0; /* sparsegpt: the Gram matrices, 19 C^2 floats per layer (C^2 for qkv,
                        attproj and fc, 16 C^2 for fcproj) */
    if (!strcmp(mt_param_str(ctx, "method"), "sparsegpt"))
        gram = 19 * cfg.n_embd * cfg.n_embd * cfg.n_layer * sizeof(float);
    return base ? base + 2 * mt_gpt_num_params(&cfg) * sizeof(float) + gram : 0;
}

/* The reference (trained when not cached), the pruning step (phase "prune": the served
 * copy, the trainable one when obd or the fine-tune needs it, the calibration batches),
 * then serving the pruned model: its weight slab without the four block linears
 * (mt_pruned_dropped) and the packed layers (mt_pruned_plan_bytes: every slot's format
 * and size from its planned non-zeros), the KV cache, and the evaluation against the base
 * (KL buffers). Not planned: workspace (the calibration statistics, the sparse kernels'
 * and the hook's grow-only scratch: measured) and the fine-tune's own region; refused:
 * what the trained weights or timings decide (scope=global, storage=fastest). */
static int plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_gpt_config cfg;
    struct mt_prune_opts o;
    struct mt_prune_storage_opts so;
    char err[512];
    if (mt_wl_model_config(ctx, NULL, &cfg) || read_opts(ctx, &o, &so)) return -1;
    struct mt_wl_plan_serving s = {.eval_batch = EVAL_B, .kl = 1};
    if (mt_pruned_plan_bytes(&cfg, &o, so.storage, &s.stored, err, sizeof err))
        return mt_error(ctx, "%s", err);
    unsigned char drop[MT_P_COUNT];
    mt_pruned_dropped(drop);
    s.weight_slab = mt_gpt_weight_slab_bytes(&cfg, drop);
    if (mt_wl_plan_reference(ctx, &s, p)) return -1;
    /* "prune": the served copy (inference slabs at the evaluation batch), the trainable
     * copy when obd's Fisher or the fine-tune needs one, and the calibration batches */
    size_t T = s.eval_T, b[MT_MEM_CAT_COUNT] = {0};
    int need = mt_prune_needs(o.method);
    if (mt_wl_plan_add_slabs(ctx, &cfg, EVAL_B, T, MT_GPT_INFER, b) ||
        (((need & MT_PRUNE_NEED_FISHER) || mt_param_int(ctx, "finetune_steps") > 0) &&
         mt_wl_plan_add_slabs(ctx, &cfg, (size_t)mt_param_int(ctx, "batch"), T, MT_GPT_TRAIN, b)))
        return -1;
    if (need) b[MT_MEM_DATA] += calib_batch_bytes((size_t)mt_param_int(ctx, "calib_batches"), T);
    return mt_wl_plan_add(ctx, p, "prune", MT_PLAN_TRAINING, b);
}

static const struct mt_param_spec params[] = {
    MT_WL_PARAMS_POSTTRAIN,
    {"method", MT_PARAM_CHOICE, "magnitude", 0, 0, "magnitude|obd|wanda|heads|neurons|nm|sparsegpt",
     "saliency: |w|, 0.5*h*w^2 (Fisher), |w|*||x||, whole heads, whole MLP neurons, N:M, "
     "SparseGPT (w^2/[H^-1]_ii^2 with the kept weights compensated through the inverse "
     "Hessian of the calibration inputs)"},
    {"pattern", MT_PARAM_CHOICE, "unstructured", 0, 0, "unstructured|nm",
     "sparsegpt: remove `sparsity` of each layer, or keep the `nm` pattern"},
    {"sparsity", MT_PARAM_FLOAT, "0.5", 0.0, 0.95, NULL,
     "fraction of prunable weights (heads/neurons: of units) to remove; nm ignores it"},
    {"scope", MT_PARAM_CHOICE, "layer", 0, 0, "layer|global",
     "one threshold per layer (wanda: per output row) or one over all layers"},
    {"nm", MT_PARAM_STRING, "2:4", 0, 0, NULL,
     "N:M pattern for method=nm and sparsegpt pattern=nm (M <= 16)"},
    {"calib_batches", MT_PARAM_INT, "8", 0, 10000, NULL,
     "batches of 8 training windows for wanda/heads/neurons norms, obd's Fisher and "
     "sparsegpt's Hessian"},
    {"finetune_steps", MT_PARAM_INT, "0", 0, 1000000, NULL,
     "AdamW steps after pruning with the mask fixed (0 = none)"},
    {"finetune_lr", MT_PARAM_FLOAT, "3e-4", 1e-7, 1.0, NULL, "peak learning rate of the fine-tune"},
    {"storage", MT_PARAM_CHOICE, "smallest", 0, 0, MT_PRUNE_STORAGE_CHOICES,
     "per-layer format: fewest bytes, fastest measured batch-1 GEMV (dense oneDNN included; "
     "~0.6 s per small-sized model), or forced dense (zeros kept)/csr/bitmap/nm (nm: "
     "method=nm only)"},
    MT_WL_PARAM_DECODE_TOKENS,
    MT_WL_PARAMS_KV_CACHE,
    {"kernel", MT_PARAM_CHOICE, "auto", 0, 0, "auto|scalar",
     "sparse kernels: the fastest this CPU and shape allow, or the scalar reference"},
};

MT_WL_DESCRIPTOR_PLAN("prune",
                      "prune the trained baseline (magnitude/OBD/wanda/heads/neurons/N:M/"
                      "SparseGPT), serve it sparse",
                      params, NULL, mem_estimate, run, mt_wl_check_model, plan);
