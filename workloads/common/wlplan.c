/* wlplan.c — plans of the reference state and of the serving measurement (wlplan.h). */
#include "wlplan.h"

#include <stdio.h>
#include <string.h>

#include "cuda/cgpt.h"
#include "kvcache.h"
#include "serving.h"
#include "wlcommon.h"

#define ERRLEN 512

int mt_wl_plan_add(struct mt_ctx *ctx, struct mt_mem_plan *p, const char *name, int goal,
                   const size_t bytes[MT_MEM_CAT_COUNT])
{
    if (p->n_phases >= MT_MEM_PLAN_MAX_PHASES)
        return mt_error(ctx, "memory plan: more than %d phases", MT_MEM_PLAN_MAX_PHASES);
    struct mt_mem_plan_phase *ph = &p->phase[p->n_phases++];
    memset(ph, 0, sizeof *ph);
    snprintf(ph->name, sizeof ph->name, "%s", name);
    ph->goal = goal;
    memcpy(ph->bytes, bytes, sizeof ph->bytes);
    return 0;
}

int mt_wl_plan_add_slabs(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, size_t B, size_t T,
                         enum mt_gpt_mode mode, size_t b[MT_MEM_CAT_COUNT])
{
    char err[ERRLEN];
    size_t s[MT_MEM_CAT_COUNT] = {0};
    if (!mt_gpt_memory(cfg, B, T, mode, s, err, sizeof err)) return mt_error(ctx, "%s", err);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        b[c] += s[c];
    return 0;
}

int mt_wl_plan_reference_train(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, size_t B,
                               size_t T, struct mt_mem_plan *p)
{
    char err[ERRLEN];
    size_t b[MT_MEM_CAT_COUNT] = {0};
    if (!mt_gpt_memory(cfg, B, T, MT_GPT_TRAIN, b, err, sizeof err))
        return mt_error(ctx, "%s", err);
    b[MT_MEM_DATA] += mt_wl_batch_bytes(B, T);
    return mt_wl_plan_add(ctx, p, "train", MT_PLAN_TRAINING, b);
}

int mt_wl_plan_serving(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                       const struct mt_wl_plan_serving *s, struct mt_mem_plan *p)
{
    char err[ERRLEN];
    size_t n = mt_wl_decode_context(cfg, (size_t)mt_param_int(ctx, "decode_tokens"));
    struct mt_kvc_spec spec = mt_wl_kv_spec(ctx);
    if (mt_kvc_spec_check(cfg, &spec, err, sizeof err)) return mt_error(ctx, "%s", err);
    size_t scratch = 0, b[MT_MEM_CAT_COUNT] = {0}, ns = mt_wl_decode_sequences(ctx);
    size_t extra = mt_wl_decode_extra(ctx, n);
    if (extra == (size_t)-1) return -1;
    mt_gpt_kv_memory(cfg, n, NULL, &scratch);
    b[MT_MEM_WEIGHTS] = s->weight_slab + s->stored;
    /* each sequence its own cache and decode scratch (serving.c), the extra one's at its
     * own context */
    b[MT_MEM_KV_CACHE] = ns * mt_kvc_bytes(cfg, &spec, n, 1, 0);
    b[MT_MEM_WORKSPACE] = ns * (scratch + mt_kvc_table_bytes(cfg, &spec, n, 1, 0)) + s->scratch;
    if (extra) {
        mt_gpt_kv_memory(cfg, extra, NULL, &scratch);
        b[MT_MEM_KV_CACHE] += mt_kvc_bytes(cfg, &spec, extra, 1, 0);
        b[MT_MEM_WORKSPACE] += scratch + mt_kvc_table_bytes(cfg, &spec, extra, 1, 0);
    }
    if (mt_wl_plan_add(ctx, p, "infer", MT_PLAN_SERVING, b)) return -1;
    if (!mt_gpt_memory(cfg, s->eval_batch, s->eval_T, MT_GPT_INFER, b, err, sizeof err))
        return mt_error(ctx, "%s", err);
    b[MT_MEM_WEIGHTS] = s->weight_slab + s->stored;
    b[MT_MEM_WORKSPACE] += s->scratch;
    b[MT_MEM_DATA] += mt_wl_batch_bytes(s->eval_batch, s->eval_T) + s->eval_data;
    size_t positions = (size_t)mt_param_int(ctx, "eval_tokens");
    if (s->kl && positions)
        b[MT_MEM_DATA] += mt_wl_kl_bytes(positions, s->eval_batch * s->eval_T, cfg->vocab);
    return mt_wl_plan_add(ctx, p, "eval", MT_PLAN_SERVING, b);
}

int mt_wl_plan_reference(struct mt_ctx *ctx, struct mt_wl_plan_serving *s, struct mt_mem_plan *p)
{
    struct mt_gpt_config cfg;
    size_t T;
    if (mt_wl_estimate_shape(ctx, &cfg, &T)) return mt_wl_check_model(ctx);
    s->eval_T = T;
    if (!s->weight_slab) s->weight_slab = mt_gpt_weight_slab_bytes(&cfg, NULL);
    return mt_wl_plan_reference_train(ctx, &cfg, (size_t)mt_param_int(ctx, "batch"), T, p) ||
           mt_wl_plan_serving(ctx, &cfg, s, p);
}

int mt_wl_plan_reference_cuda(struct mt_ctx *ctx, const struct mt_wl_plan_serving *s,
                              struct mt_mem_plan *p)
{
    char err[ERRLEN];
    struct mt_gpt_config cfg;
    struct mt_cuda_serve_opts o;
    enum mt_cuda_precision prec = MT_CUDA_FP32;
    size_t T, b[MT_MEM_CAT_COUNT], kv, scratch;
    if (mt_wl_estimate_shape(ctx, &cfg, &T)) return mt_wl_check_model(ctx);
    int on = mt_wl_cuda_serve_opts(ctx, s->eval_batch, T, &o);
    if (on <= 0) return on;
    if ((o.precision && mt_cuda_precision_parse(o.precision, &prec, err, sizeof err)) ||
        !mt_cuda_gpt_plan(&cfg, MT_GPT_WEIGHTS, 1, 1, prec, 1, b, err, sizeof err))
        return mt_error(ctx, "%s", err);
    if (mt_wl_plan_reference_train(ctx, &cfg, (size_t)mt_param_int(ctx, "batch"), T, p)) return -1;
    size_t n = mt_wl_decode_context(&cfg, (size_t)mt_param_int(ctx, "decode_tokens"));
    mt_cuda_kv_plan(&cfg, n, o.kv_type, &kv, &scratch);
    b[MT_MEM_WEIGHTS] += s->stored;
    b[MT_MEM_KV_CACHE] += kv;
    b[MT_MEM_WORKSPACE] += scratch;
    if (mt_wl_plan_add(ctx, p, "infer", MT_PLAN_SERVING, b)) return -1;
    if (!mt_cuda_gpt_plan(&cfg, MT_GPT_INFER, s->eval_batch, T, prec, 1, b, err, sizeof err))
        return mt_error(ctx, "%s", err);
    return mt_wl_plan_add(ctx, p, "eval", MT_PLAN_SERVING, b) ? -1 : 1;
}

void mt_wl_zero_states(double psi, size_t ranks, int stage, double w, double g, double k,
                       struct mt_wl_zero_states *out)
{
    double n = ranks ? (double)ranks : 1.0;
    out->optimizer = k * psi / (stage >= 1 ? n : 1.0);
    out->gradients = g * psi / (stage >= 2 ? n : 1.0);
    out->weights = w * psi / (stage >= 3 ? n : 1.0);
}
