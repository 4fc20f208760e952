/* cplan.c — the device model's memory plan (cgpt.h), without CUDA: the slab bytes per
 * category, the recomputing model's activation layout and the extras beside the slabs.
 * Built into the transformer library everywhere, so that the harness plans device runs
 * on machines without a GPU (the training plugins' plan hook with device=cuda). */
#include <stdio.h>
#include <string.h>

#include "cgpt.h"
#include "util.h"

#define ALIGN ((size_t)64) /* gpt.c's tensor alignment inside a slab */

static const char *const prec_names[] = {"fp32", "tf32", "bf16"};

int mt_cuda_precision_parse(const char *s, enum mt_cuda_precision *out, char *err, size_t errlen)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, prec_names[i])) {
            *out = (enum mt_cuda_precision)i;
            return 0;
        }
    return mt_tf_fail(err, errlen, "precision '%s' is not fp32, tf32 or bf16", s ? s : "");
}

const char *mt_cuda_precision_name(enum mt_cuda_precision p)
{
    return (unsigned)p < 3 ? prec_names[p] : "?";
}

void mt_cuda_linear_widths(const struct mt_gpt_config *cfg, size_t *in, size_t *out)
{
    size_t C = cfg->n_embd, F = mt_gpt_ffn(cfg);
    size_t fo = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F, qkv = C + 2 * mt_gpt_kv_dim(cfg);
    *in = F > C ? F : C;
    *out = cfg->vocab;
    if (qkv > *out) *out = qkv;
    if (fo > *out) *out = fo;
}

size_t mt_cuda_vocab_ld(size_t V)
{
    return (V + 7) / 8 * 8;
}

size_t mt_cuda_stage_out_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t out)
{
    size_t Ca = cfg->n_embd, ld = Ca + 2 * mt_gpt_kv_dim(cfg);
    size_t attn = B * T * (ld + Ca) * 2 + 2 * B * cfg->n_head * T * T * 2;
    if (cfg->attention == MT_GPT_ATTN_FLASH) attn = 0; /* cflash.cu reads the fp32 tensors */
    out = mt_cuda_vocab_ld(out); /* the LM head's bf16 logits: rows padded to 16 bytes */
    return B * T * out * 2 > attn ? B * T * out * 2 : attn;
}

size_t mt_cuda_head16_bytes(const struct mt_gpt_config *cfg)
{
    return mt_cuda_vocab_ld(cfg->vocab) * cfg->n_embd * 2;
}

void mt_cuda_gpt_extra_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T,
                             enum mt_cuda_precision prec, size_t bytes[MT_MEM_CAT_COUNT])
{
    memset(bytes, 0, MT_MEM_CAT_COUNT * sizeof *bytes);
    bytes[MT_MEM_WORKSPACE] = MT_CUDA_BLAS_WORKSPACE + 256; /* and the reduction scalar */
    if (prec != MT_CUDA_BF16) return;
    size_t w[MT_MEM_CAT_COUNT], in, out;
    mt_gpt_memory(cfg, B, T, MT_GPT_WEIGHTS, w, NULL, 0);
    mt_cuda_linear_widths(cfg, &in, &out);
    bytes[MT_MEM_WEIGHTS] = w[MT_MEM_WEIGHTS] / 2 + mt_cuda_head16_bytes(cfg);
    bytes[MT_MEM_WORKSPACE] += B * T * in * 2 + mt_cuda_stage_out_bytes(cfg, B, T, out);
}

size_t mt_cuda_gpt_act_slots(const struct mt_gpt_config *cfg, size_t every)
{
    if (!every || every > cfg->n_layer) every = cfg->n_layer;
    return (cfg->n_layer + every - 1) / every;
}

/* Bytes of activation a in a training model keeping `every`: a block's tensors in
 * mt_cuda_gpt_act_slots slots, the residual stream (block outputs) in L. */
static size_t act_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t every, int a)
{
    size_t n = mt_gpt_act_elems(cfg, B, T, (enum mt_gpt_act)a);
    if (a >= MT_A_LN1 && a <= MT_A_FCH_GELU) n *= mt_cuda_gpt_act_slots(cfg, every);
    if (a == MT_A_RESIDUAL3) n *= cfg->n_layer;
    return n * sizeof(float);
}

size_t mt_cuda_gpt_carve_acts(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t every,
                              void *base, void **ptrs)
{
    size_t off = 0;
    for (int a = 0; a < MT_A_COUNT; a++) {
        size_t b = act_bytes(cfg, B, T, every, a);
        if (ptrs) ptrs[a] = b && base ? (unsigned char *)base + off : NULL;
        off += (b + ALIGN - 1) / ALIGN * ALIGN;
    }
    return off;
}

size_t mt_cuda_gpt_plan(const struct mt_gpt_config *cfg, enum mt_gpt_mode mode, size_t B, size_t T,
                        enum mt_cuda_precision prec, size_t every, size_t bytes[MT_MEM_CAT_COUNT],
                        char *err, size_t errlen)
{
    size_t slab[MT_MEM_CAT_COUNT], extra[MT_MEM_CAT_COUNT], total = 0;
    if (every < 1 || every > cfg->n_layer || (every > 1 && mode != MT_GPT_TRAIN)) {
        mt_tf_fail(err, errlen, "every %zu is not 1..%zu (above 1: training models only)", every,
                   cfg->n_layer);
        return 0;
    }
    if (!mt_gpt_memory(cfg, B, T, mode, slab, err, errlen)) return 0;
    if (every > 1) slab[MT_MEM_ACTIVATIONS] = mt_cuda_gpt_carve_acts(cfg, B, T, every, NULL, NULL);
    mt_cuda_gpt_extra_bytes(cfg, B, T, prec, extra);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        bytes[c] = slab[c] + extra[c];
        total += bytes[c];
    }
    return total;
}

void mt_cuda_kv_plan(const struct mt_gpt_config *cfg, size_t max_T, int type, size_t *kv_bytes,
                     size_t *scratch_bytes)
{
    /* keys and values of every layer, contiguous; decode.c's scratch (x, ln, qkv, atty,
     * proj: 7 C; the MLP's hidden, SwiGLU's three; the logits), the step's {token, pos}
     * and greedy decoding's tokens (max_T) */
    size_t elt = type == 0 ? sizeof(float) : 2, F = mt_gpt_ffn(cfg);
    *kv_bytes = 2 * cfg->n_layer * max_T * mt_gpt_kv_dim(cfg) * elt;
    *scratch_bytes =
        (7 * cfg->n_embd + F * (cfg->mlp == MT_GPT_MLP_SWIGLU ? 3 : 1) + cfg->vocab + 2 + max_T) *
        sizeof(float);
}
