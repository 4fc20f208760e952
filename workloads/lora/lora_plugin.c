/* lora_plugin.c — the `lora` workload plugin: fine-tunes the cached baseline with low-rank
 * adapters (base frozen; `base=nf4` is QLoRA, its scales double-quantized unless
 * `double_quant=off`), then serves the merged model (QLoRA: the
 * packed base with its adapters, unmerged) through the one serving measurement.
 *
 * What it is for: loading the cached reference (`model`, `steps`, ... as every
 * post-training workload), its base distributions for the KL metrics, switching it to
 * MT_GPT_FROZEN for the training batch (no weight gradients or optimizer state), attaching
 * adapters (lora.h) on `targets` at `rank` and `alpha`, running `finetune_steps` steps of
 * the one training loop on the fine-tuning text (`finetune`: a file, or by default the last
 * `finetune_frac` of the corpus's training split: a stated part, though the baseline's
 * sampler also drew from it), then evaluating with the one protocol (same eval text as
 * every workload).
 * What it is not for: the adapters' math (lora.c), the NF4 format (quantize).
 *
 * Metrics: trainable_params, the plan per category (train_peak_<category>_bytes and
 * train_peak_bytes: the plan, checked equal to what was allocated before training starts),
 * lora_base_weight_bytes, lora_nf4_bytes, lora_adapter_bytes (weights), lora_qws_bytes
 * (nf4: the packed kernels' measured scratch, outside the plan), finetune_loss (first and
 * last), finetune_tokens_per_s, model_bytes (what is served), and the serving metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#include "lora.h"
#include "qmodel.h"
#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_B 8

static int read_opts(struct mt_ctx *ctx, struct mt_lora_opts *o)
{
    char err[256];
    memset(o, 0, sizeof *o);
    if (mt_lora_targets_parse(mt_param_str(ctx, "targets"), &o->targets, err, sizeof err))
        return mt_error(ctx, "%s", err);
    o->rank = (size_t)mt_param_int(ctx, "rank");
    o->alpha = (float)mt_param_float(ctx, "alpha");
    o->nf4 = strcmp(mt_param_str(ctx, "base"), "nf4") == 0;
    o->nf4_group = (size_t)mt_param_int(ctx, "nf4_group");
    o->nf4_dq = mt_param_bool(ctx, "double_quant");
    return 0;
}

static int check(struct mt_ctx *ctx)
{
    struct mt_lora_opts o;
    struct mt_gpt_config cfg;
    struct mt_lora_plan p;
    char err[256];
    if (read_opts(ctx, &o) || mt_wl_model_config(ctx, NULL, &cfg)) return -1;
    o.max_rows = 1;
    if (mt_lora_plan(&cfg, &o, 1, 1, &p, err, sizeof err)) return mt_error(ctx, "%s", err);
    return 0;
}

/* The fine-tuning text: the file `finetune`, or the tail of the training split (its
 * tokens, with the run's tokenizer). */
static int finetune_text(struct mt_ctx *ctx, const struct mt_corpus *c, size_t T,
                         struct mt_corpus *file, struct mt_tokens *data)
{
    const char *path = mt_param_str(ctx, "finetune");
    char err[512];
    if (path && path[0]) {
        if (c->ids)
            return mt_error(ctx, "finetune: a file is read as bytes; with tokenizer %s use "
                                 "finetune_frac (the tail of the training split)",
                            c->tokenizer);
        if (mt_corpus_load(file, path, T, err, sizeof err))
            return mt_error(ctx, "finetune: %s", err);
        *data = mt_tokens_of_bytes(file->bytes, file->n);
    } else {
        const struct mt_tokens *tr = &c->train_tokens;
        size_t k = (size_t)((double)tr->n * mt_param_float(ctx, "finetune_frac"));
        if (k < T + 1)
            return mt_error(ctx, "finetune_frac leaves %zu %s, less than a window", k,
                            c->ids ? "tokens" : "bytes");
        *data = *tr;
        data->n = k;
        if (tr->bytes) data->bytes += tr->n - k;
        else data->ids += tr->n - k;
    }
    mt_metric(ctx, "finetune_bytes", (double)mt_tokens_text_bytes(data, 0, data->n), "bytes");
    return 0;
}

static void report_plan(struct mt_ctx *ctx, const struct mt_lora_plan *p)
{
    size_t total = 0;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        char name[64];
        if (!p->bytes[c]) continue;
        snprintf(name, sizeof name, "train_peak_%s_bytes", mt_mem_cat_names[c]);
        mt_metric(ctx, name, (double)p->bytes[c], "bytes");
        total += p->bytes[c];
    }
    mt_metric(ctx, "train_peak_bytes", (double)total, "bytes");
    mt_metric(ctx, "trainable_params", (double)p->trainable, "count");
    mt_metric(ctx, "lora_base_weight_bytes", (double)p->base_weights, "bytes");
    mt_metric(ctx, "lora_adapter_bytes", (double)p->adapter_weights, "bytes");
    if (p->nf4_bytes) mt_metric(ctx, "lora_nf4_bytes", (double)p->nf4_bytes, "bytes");
}

/* The plan must be what was allocated: the model's slabs, the adapters', the batch. */
static int check_plan(struct mt_ctx *ctx, const struct mt_gpt *m, const struct mt_lora *lr,
                      const struct mt_lora_plan *p)
{
    size_t got[MT_MEM_CAT_COUNT];
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        got[c] = m->slab_bytes[c];
    got[MT_MEM_WEIGHTS] += mt_gpt_mapped_slab_bytes(m); /* an imported model's mapped tensors */
    mt_lora_bytes(lr, got);
    got[MT_MEM_DATA] += mt_wl_batch_bytes(m->B, m->T);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (got[c] != p->bytes[c])
            return mt_error(ctx, "lora plan %s: %zu bytes planned, %zu allocated",
                            mt_mem_cat_names[c], p->bytes[c], got[c]);
    return 0;
}

static size_t serving_scratch(const void *user)
{
    const struct mt_lora *lr = user;
    size_t b[MT_MEM_CAT_COUNT] = {0};
    mt_lora_bytes(lr, b);
    return b[MT_MEM_WORKSPACE] + (lr->qm ? mt_qws_bytes(lr->qm->ws) : 0);
}

static int finetune(struct mt_ctx *ctx, struct mt_lora *lr, const struct mt_gpt_recipe *base,
                    const struct mt_tokens *data, uint64_t seed)
{
    struct mt_gpt_recipe r = *base;
    r.steps = (size_t)mt_param_int(ctx, "finetune_steps");
    r.warmup = r.steps / 10;
    r.lr = (float)mt_param_float(ctx, "finetune_lr");
    r.weight_decay = 0.0f;
    float *losses = calloc(r.steps, sizeof *losses);
    if (!losses) return mt_error(ctx, "out of memory for the loss series");
    char err[512];
    struct mt_loop_engine e;
    struct mt_loop_opts o = {.recipe = &r,
                             .batch_seed = seed ^ 0x10a4u,
                             .series = "finetune_loss",
                             .losses = losses};
    struct mt_loop_result res;
    mt_lora_engine(&e, lr);
    int rc = mt_loop_run_tokens(ctx, &o, &e, NULL, data, &res, err, sizeof err);
    if (rc == 0) {
        mt_metric(ctx, "finetune_tokens_per_s", (double)(r.steps * r.batch * r.seq) / res.seconds,
                  "tokens/s");
        mt_metric(ctx, "finetune_first_loss", (double)losses[0], "nats/byte");
        mt_metric(ctx, "finetune_loss", res.final_loss, "nats/byte");
    }
    free(losses);
    return rc ? mt_error(ctx, "fine-tune: %s", err) : 0;
}

static int run(struct mt_ctx *ctx)
{
    struct mt_wl_setup s = {0};
    struct mt_corpus file = {0};
    struct mt_lora_opts o;
    struct mt_lora_plan plan;
    struct mt_gpt *m = NULL;
    struct mt_lora *lr = NULL;
    struct mt_wl_base base;
    char err[512];
    int rc = -1;
    struct mt_tokens data = {0};
    mt_wl_threads(ctx);
    if (mt_wl_setup_model(ctx, &s) || read_opts(ctx, &o)) return -1;
    o.seed = s.seed ^ 0x10a4a11u;
    o.max_rows = (s.r.batch > EVAL_B ? s.r.batch : EVAL_B) * s.r.seq;
    if (mt_lora_plan(&s.cfg, &o, s.r.batch, s.r.seq, &plan, err, sizeof err))
        return mt_error(ctx, "%s", err);
    if (mt_wl_corpus(ctx, 1, s.r.seq, &s.corpus)) return -1;
    if (mt_wl_reference_or_load(ctx, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_INFER, EVAL_B, s.r.seq,
                                &m, NULL) ||
        mt_wl_base_probs(ctx, m, &s.corpus, &s.r, s.seed, &base) ||
        finetune_text(ctx, &s.corpus, s.r.seq, &file, &data))
        goto out;
    if (mt_gpt_set_mode(m, MT_GPT_FROZEN, s.r.batch, s.r.seq, err, sizeof err) ||
        mt_lora_attach(&lr, m, &o, err, sizeof err)) {
        mt_error(ctx, "%s", err);
        goto out;
    }
    mt_log(ctx, MT_LOG_INFO, "lora rank %zu alpha %g base %s: %zu trainable parameters", o.rank,
           (double)o.alpha, o.nf4 ? "nf4" : "fp32", plan.trainable);
    report_plan(ctx, &plan);
    if (check_plan(ctx, m, lr, &plan) || finetune(ctx, lr, &s.r, &data, s.seed)) goto out;
    if (lr->qm) mt_metric(ctx, "lora_qws_bytes", (double)mt_qws_bytes(lr->qm->ws), "bytes");
    if (mt_gpt_set_mode(m, MT_GPT_INFER, EVAL_B, s.r.seq, err, sizeof err) ||
        (!o.nf4 && mt_lora_merge(lr, 1, err, sizeof err))) {
        mt_error(ctx, "%s", err);
        goto out;
    }
    struct mt_wl_serving sv = {0};
    sv.base = &base;
    if (o.nf4) { /* served unmerged: the packed base and the adapters */
        sv.weight_bytes = lr->qm->packed_bytes + plan.adapter_weights;
        sv.scratch_bytes = serving_scratch;
        sv.user = lr;
        mt_metric(ctx, "model_bytes", (double)(m->slab_bytes[MT_MEM_WEIGHTS] + m->mapped_bytes + sv.weight_bytes),
                  "bytes");
    } else { /* merged: the plain fp32 model, adapters gone */
        mt_metric(ctx, "model_bytes", (double)(m->slab_bytes[MT_MEM_WEIGHTS] + m->mapped_bytes), "bytes");
        mt_lora_free(lr);
        lr = NULL;
    }
    mt_metric(ctx, "n_params", (double)m->n_params, "count");
    if (mt_wl_report_serving(ctx, m, &s.corpus, &sv)) goto out;
    mt_wl_report_kernels(ctx);
    rc = 0;
out:
    mt_lora_free(lr);
    mt_gpt_free(m);
    mt_corpus_free(&file);
    mt_corpus_free(&s.corpus);
    return rc;
}

static size_t mem_estimate(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    size_t base = mt_wl_estimate_baseline(ctx, 0, &cfg);
    return base ? base + 4 * mt_gpt_num_params(&cfg) * sizeof(float) : 0;
}

static const struct mt_param_spec params[] = {
    MT_WL_PARAMS_POSTTRAIN,
    {"rank", MT_PARAM_INT, "8", 1, 65536, NULL,
     "adapter rank r (at most min(in, out) of every target)"},
    {"alpha", MT_PARAM_FLOAT, "16", 1e-6, 1e6, NULL, "the adapter term is scaled by alpha / rank"},
    {"targets", MT_PARAM_STRING, "qkv,proj,fc,fcproj", 0, 0, NULL,
     "adapted linears: comma-separated qkv|proj|fc|fcproj, or all"},
    {"base", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|nf4",
     "frozen base: fp32, or NF4-packed (QLoRA)"},
    {"nf4_group", MT_PARAM_INT, "64", 32, 128, "32|64|128", "base=nf4: columns per scale"},
    {"double_quant", MT_PARAM_BOOL, "on", 0, 0, NULL,
     "base=nf4: the group scales double-quantized as QLoRA does (8-bit codes in blocks of 256, "
     "an fp32 absmax each, the mean); off: fp32 scales"},
    {"finetune", MT_PARAM_STRING, "", 0, 0, NULL,
     "fine-tuning text file (empty = the last finetune_frac of the training split)"},
    {"finetune_frac", MT_PARAM_FLOAT, "0.1", 0.001, 1.0, NULL,
     "share of the training split (its tail) fine-tuned on when finetune is empty"},
    {"finetune_steps", MT_PARAM_INT, "200", 1, 1000000, NULL, "AdamW steps on the adapters"},
    {"finetune_lr", MT_PARAM_FLOAT, "1e-3", 1e-7, 1.0, NULL,
     "peak learning rate of the adapters (no weight decay)"},
    MT_WL_PARAM_DECODE_TOKENS,
    MT_WL_PARAMS_KV_CACHE,
};

/* The fine-tune's exact plan (mt_lora_plan, what run() reports as train_peak_* and checks
 * against what it allocated), as phase "train", the fine-tune's region. The
 * reference's own training (when it is not cached) and the serving of the merged or
 * packed model are not planned here. */
static int plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    struct mt_lora_opts o;
    struct mt_lora_plan lp;
    uint64_t seed;
    char err[256];
    if (read_opts(ctx, &o) || mt_wl_model_config(ctx, NULL, &cfg) ||
        mt_wl_recipe(ctx, &cfg, &r, &seed))
        return -1;
    o.max_rows = (r.batch > EVAL_B ? r.batch : EVAL_B) * r.seq;
    if (mt_lora_plan(&cfg, &o, r.batch, r.seq, &lp, err, sizeof err))
        return mt_error(ctx, "%s", err);
    return mt_wl_plan_add(ctx, p, "train", MT_PLAN_TRAINING, lp.bytes);
}

MT_WL_DESCRIPTOR_PLAN("lora",
                      "fine-tune the trained baseline with low-rank adapters (base frozen; "
                      "base=nf4: QLoRA), serve the merged model",
                      params, NULL, mem_estimate, run, check, plan);
