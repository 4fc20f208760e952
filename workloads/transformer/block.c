/* block.c — the one transformer block (see block.h): the order of the kernels of a
 * pre-LayerNorm block's forward and backward, and nothing else. */
#include "block.h"

#include "kernels.h"

/* What each of the block's linears reads and which weight it multiplies by. */
static const struct {
    enum mt_gpt_act in;
    enum mt_gpt_param w;
} linears[] = {
    [MT_LIN_QKV] = {MT_A_LN1, MT_P_QKVW},
    [MT_LIN_ATTPROJ] = {MT_A_ATTY, MT_P_ATTPROJW},
    [MT_LIN_FC] = {MT_A_LN2, MT_P_FCW},
    [MT_LIN_FCPROJ] = {MT_A_FCH_GELU, MT_P_FCPROJW},
};

enum mt_gpt_act mt_block_linear_input(enum mt_linear which)
{
    return linears[which].in;
}

enum mt_gpt_param mt_block_linear_weight(enum mt_linear which)
{
    return linears[which].w;
}

void mt_block_linear_dims(const struct mt_block_shape *s, enum mt_linear which, size_t *in_dim,
                          size_t *out_dim)
{
    switch (which) {
    case MT_LIN_QKV:
        *in_dim = s->C, *out_dim = s->Ca + 2 * s->Ckv;
        return;
    case MT_LIN_ATTPROJ:
        *in_dim = s->Ca, *out_dim = s->C;
        return;
    case MT_LIN_FC: /* SwiGLU: gate and up */
        *in_dim = s->C, *out_dim = s->mlp == MT_GPT_MLP_SWIGLU ? 2 * s->F : s->F;
        return;
    default:
        *in_dim = s->F, *out_dim = s->C;
        return;
    }
}

struct mt_block_shape mt_block_shape_of(const struct mt_gpt_config *cfg, size_t B, size_t T,
                                        size_t tp)
{
    size_t C = cfg->n_embd;
    return (struct mt_block_shape){.B = B,
                                   .T = T,
                                   .C = C,
                                   .Ca = C / tp,
                                   .Ckv = mt_gpt_kv_dim(cfg) / tp,
                                   .NH = cfg->n_head / tp,
                                   .F = mt_gpt_ffn(cfg) / tp,
                                   .attention = cfg->attention,
                                   .window = cfg->window,
                                   .norm = cfg->norm,
                                   .mlp = cfg->mlp,
                                   .rope = cfg->pos == MT_GPT_POS_ROPE,
                                   .hs = C / cfg->n_head,
                                   .pos0 = 0,
                                   .rope_theta = mt_gpt_rope_theta(cfg)};
}

const struct mt_block_kernels mt_block_kernels_cpu = {
    .layernorm_fwd = mt_k_layernorm_fwd,
    .layernorm_bwd = mt_k_layernorm_bwd,
    .rmsnorm_fwd = mt_k_rmsnorm_fwd,
    .rmsnorm_bwd = mt_k_rmsnorm_bwd,
    .rope_fwd = mt_k_rope_fwd,
    .rope_bwd = mt_k_rope_bwd,
    .attention_fwd = mt_k_attention_fwd,
    .attention_bwd = mt_k_attention_bwd,
    .flash_fwd = mt_k_flash_attention_fwd,
    .flash_bwd = mt_k_flash_attention_bwd,
    .residual_fwd = mt_k_residual_fwd,
    .gelu_fwd = mt_k_gelu_fwd,
    .gelu_bwd = mt_k_gelu_bwd,
    .swiglu_fwd = mt_k_swiglu_fwd,
    .swiglu_bwd = mt_k_swiglu_bwd,
};

void mt_block_norm_fwd_k(const struct mt_block_kernels *k, size_t norm, float *out, float *mean,
                         float *rstd, const float *inp, const float *w, const float *b, size_t N,
                         size_t C)
{
    if (norm == MT_GPT_NORM_RMS)
        k->rmsnorm_fwd(out, rstd, inp, w, N, C);
    else
        k->layernorm_fwd(out, mean, rstd, inp, w, b, N, C);
}

void mt_block_norm_bwd_k(const struct mt_block_kernels *k, size_t norm, float *dinp, float *dw,
                         float *db, const float *dout, const float *inp, const float *w,
                         const float *mean, const float *rstd, size_t N, size_t C)
{
    if (norm == MT_GPT_NORM_RMS)
        k->rmsnorm_bwd(dinp, dw, dout, inp, w, rstd, N, C);
    else
        k->layernorm_bwd(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

void mt_block_norm_fwd(size_t norm, float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, size_t N, size_t C)
{
    mt_block_norm_fwd_k(&mt_block_kernels_cpu, norm, out, mean, rstd, inp, w, b, N, C);
}

void mt_block_norm_bwd(size_t norm, float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, const float *mean, const float *rstd,
                       size_t N, size_t C)
{
    mt_block_norm_bwd_k(&mt_block_kernels_cpu, norm, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

/* The kernels of ops: the backend's, or the CPU's. */
static const struct mt_block_kernels *kern(const struct mt_block_ops *ops)
{
    return ops->kernels ? ops->kernels : &mt_block_kernels_cpu;
}

void mt_block_norm_params(const struct mt_gpt_config *cfg, size_t l, float *const t[MT_P_COUNT],
                          float *out[MT_P_COUNT])
{
    static const int ln[] = {MT_P_LN1W, MT_P_LN1B, MT_P_LN2W, MT_P_LN2B};
    for (size_t i = 0; i < sizeof ln / sizeof ln[0]; i++)
        out[ln[i]] = t[ln[i]] ? t[ln[i]] + l * cfg->n_embd : NULL;
}

/* The statistics a norm keeps: RMSNorm has no mean. */
static void produced_norm(const struct mt_block_ops *ops, const struct mt_block_shape *s,
                          enum mt_gpt_act out, enum mt_gpt_act mean)
{
    if (!ops->produced) return;
    ops->produced(ops->user, out);
    if (s->norm != MT_GPT_NORM_RMS) ops->produced(ops->user, mean);
    ops->produced(ops->user, (enum mt_gpt_act)(mean + 1)); /* the rstd follows the mean */
}

static void produced(const struct mt_block_ops *ops, enum mt_gpt_act a)
{
    if (ops->produced) ops->produced(ops->user, a);
}

static const float *use(const struct mt_block_ops *ops, float *const act[MT_A_COUNT],
                        enum mt_gpt_act a)
{
    return ops->use ? ops->use(ops->user, a) : act[a];
}

/* The engine's fused linear (mt_block_ops::linear_fused), or 1 where it has none. */
static int fused(const struct mt_block_ops *ops, enum mt_linear which, const float *in, float *out,
                 const struct mt_block_fuse *f, size_t rows)
{
    return ops->linear_fused ? ops->linear_fused(ops->user, which, in, out, f, rows) : 1;
}

/* out = linear `which`(norm(in)) through block norm a (MT_A_LN1 or MT_A_LN2, written with
 * its statistics a + 1, a + 2 unless folded), then GELU in place when gelu; the norm and
 * GELU folded into the engine's fused linear where it can (the norm only where nothing
 * keeps its output: no statistics, no produced hook). Returns 0 or -1. */
static int norm_linear(const struct mt_block_shape *s, const struct mt_block_ops *ops,
                       const float *w, const float *b, float *const act[MT_A_COUNT],
                       enum mt_gpt_act a, enum mt_linear which, const float *in, float *out,
                       int gelu)
{
    size_t BT = s->B * s->T;
    enum mt_gpt_act mean = (enum mt_gpt_act)(a + 1), rstd = (enum mt_gpt_act)(a + 2);
    struct mt_block_fuse f = {
        .what = gelu ? MT_BLOCK_FUSE_GELU : 0, .norm = s->norm, .norm_w = w, .norm_b = b};
    int rc;
    if (!act[mean] && !act[rstd] && !ops->produced) {
        f.what |= MT_BLOCK_FUSE_NORM;
        if ((rc = fused(ops, which, in, out, &f, BT)) <= 0) return rc;
        f.what &= ~MT_BLOCK_FUSE_NORM;
    }
    mt_block_norm_fwd_k(kern(ops), s->norm, act[a], act[mean], act[rstd], in, w, b, BT, s->C);
    produced_norm(ops, s, a, mean);
    if (gelu && (rc = fused(ops, which, act[a], out, &f, BT)) <= 0) return rc;
    if (ops->linear(ops->user, which, act[a], out, BT)) return -1;
    if (gelu) kern(ops)->gelu_fwd(out, out, BT * s->F);
    return 0;
}

/* out = res + linear `which`(in), fused where the engine can, else through proj. Returns 0
 * or -1. */
static int linear_residual(const struct mt_block_shape *s, const struct mt_block_ops *ops,
                           enum mt_linear which, const float *in, const float *res, float *proj,
                           float *out)
{
    size_t BT = s->B * s->T;
    struct mt_block_fuse f = {.what = MT_BLOCK_FUSE_RESIDUAL, .res = res};
    int rc = fused(ops, which, in, out, &f, BT);
    if (rc <= 0) return rc;
    if (ops->linear(ops->user, which, in, proj, BT)) return -1;
    kern(ops)->residual_fwd(out, res, proj, BT * s->C);
    return 0;
}

int mt_block_forward(const struct mt_block_shape *s, float *const ln[MT_P_COUNT],
                     float *const act[MT_A_COUNT], const float *x, float *proj, float *out,
                     const struct mt_block_ops *ops)
{
    size_t BT = s->B * s->T;
    const struct mt_block_kernels *k = kern(ops);
    /* attention: residual2 = x + attproj(attn(qkv(ln1(x)))) */
    if (norm_linear(s, ops, ln[MT_P_LN1W], ln[MT_P_LN1B], act, MT_A_LN1, MT_LIN_QKV, x,
                    act[MT_A_QKV], 0))
        return -1;
    if (s->rope)
        k->rope_fwd(act[MT_A_QKV], s->B, s->T, s->pos0, s->Ca, s->Ckv, s->hs, s->rope_theta);
    produced(ops, MT_A_QKV);
    if (ops->attention) {
        if (ops->attention(ops->user, act[MT_A_QKV], act[MT_A_ATTY], act[MT_A_ATT])) return -1;
    } else if (s->attention == MT_GPT_ATTN_FLASH) {
        k->flash_fwd(act[MT_A_ATTY], act[MT_A_ATT], act[MT_A_QKV], s->B, s->T, s->Ca, s->Ckv, s->NH,
                     s->window);
    } else {
        k->attention_fwd(act[MT_A_ATTY], act[MT_A_ATT], act[MT_A_QKV], s->B, s->T, s->Ca, s->Ckv,
                         s->NH, s->window);
    }
    produced(ops, MT_A_ATTY);
    produced(ops, MT_A_ATT);
    if (linear_residual(s, ops, MT_LIN_ATTPROJ, act[MT_A_ATTY], x, proj, act[MT_A_RESIDUAL2]))
        return -1;
    produced(ops, MT_A_RESIDUAL2);
    /* MLP: out = residual2 + fcproj(gelu(fc(ln2(residual2)))); GELU in place is folded
     * into the fc where nothing wants the pre-activation */
    int gelu = s->mlp != MT_GPT_MLP_SWIGLU && act[MT_A_FCH] == act[MT_A_FCH_GELU] && !ops->produced;
    if (norm_linear(s, ops, ln[MT_P_LN2W], ln[MT_P_LN2B], act, MT_A_LN2, MT_LIN_FC,
                    act[MT_A_RESIDUAL2], act[MT_A_FCH], gelu))
        return -1;
    if (!gelu) {
        produced(ops, MT_A_FCH);
        if (s->mlp == MT_GPT_MLP_SWIGLU)
            k->swiglu_fwd(act[MT_A_FCH_GELU], act[MT_A_FCH], BT, s->F);
        else
            k->gelu_fwd(act[MT_A_FCH_GELU], act[MT_A_FCH], BT * s->F);
    }
    produced(ops, MT_A_FCH_GELU);
    if (!out) return 0;
    return linear_residual(s, ops, MT_LIN_FCPROJ, act[MT_A_FCH_GELU], act[MT_A_RESIDUAL2], proj,
                           out);
}

int mt_block_backward(const struct mt_block_shape *s, float *const ln[MT_P_COUNT],
                      float *const dln[MT_P_COUNT], float *const act[MT_A_COUNT], const float *x,
                      float *const d[MT_D_COUNT], const struct mt_block_ops *ops)
{
    size_t C = s->C, BT = s->B * s->T;
    float *dres = d[MT_D_RESIDUAL], *dlnout = d[MT_D_LN], *datty = d[MT_D_ATTY];
    float *dqkv = d[MT_D_QKV], *datt = d[MT_D_ATT], *dfch = d[MT_D_FCH];
    const struct mt_block_kernels *k = kern(ops);
    /* Each stored tensor is fetched right before its use: a 16-bit engine unpacks it into
     * a buffer it may share with tensors already used. */
    /* MLP */
    if (s->mlp == MT_GPT_MLP_SWIGLU) { /* dfch: the fc output's gradient (2F), then dh (F) */
        float *dh = dfch + BT * 2 * s->F;
        if (ops->linear_bwd(ops->user, MT_LIN_FCPROJ, dres, dh, BT)) return -1;
        k->swiglu_bwd(dfch, use(ops, act, MT_A_FCH), dh, BT, s->F);
    } else {
        if (ops->linear_bwd(ops->user, MT_LIN_FCPROJ, dres, dfch, BT)) return -1;
        k->gelu_bwd(dfch, use(ops, act, MT_A_FCH), dfch, BT * s->F);
    }
    if (ops->linear_bwd(ops->user, MT_LIN_FC, dfch, dlnout, BT)) return -1;
    const float *res2 = use(ops, act, MT_A_RESIDUAL2);
    const float *mean2 = s->norm == MT_GPT_NORM_RMS ? NULL : use(ops, act, MT_A_LN2_MEAN);
    const float *rstd2 = use(ops, act, MT_A_LN2_RSTD);
    mt_block_norm_bwd_k(k, s->norm, dres, dln[MT_P_LN2W], dln[MT_P_LN2B], dlnout, res2,
                        ln[MT_P_LN2W], mean2, rstd2, BT, C);
    /* attention */
    if (ops->linear_bwd(ops->user, MT_LIN_ATTPROJ, dres, datty, BT)) return -1;
    const float *qkv = use(ops, act, MT_A_QKV);
    if (s->attention == MT_GPT_ATTN_FLASH) { /* recomputes the scores from q, k, o, lse */
        const float *atty = use(ops, act, MT_A_ATTY);
        const float *lse = use(ops, act, MT_A_ATT);
        k->flash_bwd(dqkv, datty, qkv, atty, lse, s->B, s->T, s->Ca, s->Ckv, s->NH, s->window);
    } else {
        if (ops->recompute_attention) { /* selective recompute: scores, softmax, weighted sum */
            if (ops->recomputing) ops->recomputing(ops->user, 1);
            if (ops->attention) {
                if (ops->attention(ops->user, qkv, act[MT_A_ATTY], act[MT_A_ATT])) return -1;
            } else {
                k->attention_fwd(act[MT_A_ATTY], act[MT_A_ATT], qkv, s->B, s->T, s->Ca, s->Ckv,
                                 s->NH, s->window);
            }
            produced(ops, MT_A_ATT);
            if (ops->recomputing) ops->recomputing(ops->user, 0);
        }
        const float *att = use(ops, act, MT_A_ATT);
        if (ops->attention_bwd) {
            if (ops->attention_bwd(ops->user, datty, qkv, att, dqkv, datt)) return -1;
        } else {
            k->attention_bwd(dqkv, datt, datty, qkv, att, s->B, s->T, s->Ca, s->Ckv, s->NH,
                             s->window);
        }
    }
    if (s->rope) /* the gradient of the unrotated q and k */
        k->rope_bwd(dqkv, s->B, s->T, s->pos0, s->Ca, s->Ckv, s->hs, s->rope_theta);
    if (ops->linear_bwd(ops->user, MT_LIN_QKV, dqkv, dlnout, BT)) return -1;
    const float *mean1 = s->norm == MT_GPT_NORM_RMS ? NULL : use(ops, act, MT_A_LN1_MEAN);
    const float *rstd1 = use(ops, act, MT_A_LN1_RSTD);
    mt_block_norm_bwd_k(k, s->norm, dres, dln[MT_P_LN1W], dln[MT_P_LN1B], dlnout, x, ln[MT_P_LN1W],
                        mean1, rstd1, BT, C);
    return 0;
}
