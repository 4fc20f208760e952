/* names.c — the name table of Hugging Face and GGUF files (see names.h). */
#include "names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/grow.h>

#include "util.h"

int mt_names_family(const struct mt_gpt_config *c, char *err, size_t errlen)
{
    if (c->window)
        return mt_tf_fail(err, errlen,
                          "window=%zu: a sliding window has no field in either format", c->window);
    if (c->norm == MT_GPT_NORM_LAYER && c->pos == MT_GPT_POS_LEARNED && c->mlp == MT_GPT_MLP_GELU) {
        if (c->no_bias || (c->n_kv_head && c->n_kv_head != c->n_head))
            return mt_tf_fail(err, errlen,
                              "a GPT-2 model has biases and one key/value head per query head "
                              "(found bias=%s, n_kv_head=%zu)",
                              c->no_bias ? "off" : "on", mt_gpt_kv_heads(c));
        return 0;
    }
    if (c->norm == MT_GPT_NORM_RMS && c->pos == MT_GPT_POS_ROPE && c->mlp == MT_GPT_MLP_SWIGLU)
        return 1;
    return mt_tf_fail(err, errlen,
                      "norm=%s pos=%s mlp=%s is neither GPT-2 (layernorm, learned, gelu) nor "
                      "Llama (rmsnorm, rope, swiglu)",
                      c->norm ? "rmsnorm" : "layernorm", c->pos ? "rope" : "learned",
                      c->mlp ? "swiglu" : "gelu");
}

static int stacked(enum mt_gpt_param p)
{
    return p >= MT_P_LN1W && p <= MT_P_FCPROJB;
}

size_t mt_names_layer_elems(const struct mt_gpt_config *cfg, enum mt_gpt_param p)
{
    size_t n = mt_gpt_param_elems(cfg, p);
    return stacked(p) ? n / cfg->n_layer : n;
}

size_t mt_names_unperm(size_t r, size_t rows, size_t heads)
{
    size_t hd = rows / heads, h = r / hd, k = r % hd, i = k / 2, j = k % 2;
    return h * hd + j * (hd / 2) + i;
}

struct list {
    struct mt_piece *v;
    size_t n, cap;
    int oom;
};

static void add(struct list *l, enum mt_gpt_param p, size_t layer, size_t row0, size_t rows,
                size_t cols, int vector, enum mt_xform xf, size_t heads, const char *fmt, ...)
    __attribute__((format(printf, 10, 11)));


static void add(struct list *l, enum mt_gpt_param p, size_t layer, size_t row0, size_t rows,
                size_t cols, int vector, enum mt_xform xf, size_t heads, const char *fmt, ...)
{
    if (l->oom) return;
    if (mt_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 64)) {
        l->oom = 1;
        return;
    }
    struct mt_piece *e = &l->v[l->n++];
    *e = (struct mt_piece){.p = p, .layer = layer, .row0 = row0, .rows = rows, .cols = cols,
                           .vector = vector, .xf = xf, .heads = heads};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
}

/* One family's names for one parameter of one layer. */
static void pieces_of(struct list *l, const struct mt_gpt_config *c, int llama,
                      enum mt_model_format fmt, const char *pre, enum mt_gpt_param p, size_t i)
{
    size_t C = c->n_embd, KV = mt_gpt_kv_dim(c), F = mt_gpt_ffn(c), V = c->vocab;
    size_t H = c->n_head, KH = mt_gpt_kv_heads(c);
    int gg = fmt == MT_MF_GGUF;
    /* The weight or bias suffix, and how a weight is stored. */
#define W(P, R0, R, COLS, XF, HEADS, ...) add(l, P, i, R0, R, COLS, 0, XF, HEADS, __VA_ARGS__)
#define B(P, R0, R, XF, HEADS, ...) add(l, P, i, R0, R, 1, 1, XF, HEADS, __VA_ARGS__)
    if (!llama && !gg) { /* Hugging Face GPT-2 */
        switch (p) {
        case MT_P_WTE: W(p, 0, V, C, MT_XF_COPY, 0, "%swte.weight", pre); break;
        case MT_P_WPE: W(p, 0, c->seq_len, C, MT_XF_COPY, 0, "%swpe.weight", pre); break;
        case MT_P_LN1W: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.ln_1.weight", pre, i); break;
        case MT_P_LN1B: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.ln_1.bias", pre, i); break;
        case MT_P_QKVW: W(p, 0, 3 * C, C, MT_XF_T, 0, "%sh.%zu.attn.c_attn.weight", pre, i); break;
        case MT_P_QKVB: B(p, 0, 3 * C, MT_XF_COPY, 0, "%sh.%zu.attn.c_attn.bias", pre, i); break;
        case MT_P_ATTPROJW: W(p, 0, C, C, MT_XF_T, 0, "%sh.%zu.attn.c_proj.weight", pre, i); break;
        case MT_P_ATTPROJB: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.attn.c_proj.bias", pre, i); break;
        case MT_P_LN2W: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.ln_2.weight", pre, i); break;
        case MT_P_LN2B: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.ln_2.bias", pre, i); break;
        case MT_P_FCW: W(p, 0, F, C, MT_XF_T, 0, "%sh.%zu.mlp.c_fc.weight", pre, i); break;
        case MT_P_FCB: B(p, 0, F, MT_XF_COPY, 0, "%sh.%zu.mlp.c_fc.bias", pre, i); break;
        case MT_P_FCPROJW: W(p, 0, C, F, MT_XF_T, 0, "%sh.%zu.mlp.c_proj.weight", pre, i); break;
        case MT_P_FCPROJB: B(p, 0, C, MT_XF_COPY, 0, "%sh.%zu.mlp.c_proj.bias", pre, i); break;
        case MT_P_LNFW: B(p, 0, C, MT_XF_COPY, 0, "%sln_f.weight", pre); break;
        case MT_P_LNFB: B(p, 0, C, MT_XF_COPY, 0, "%sln_f.bias", pre); break;
        case MT_P_LMHEAD: W(p, 0, V, C, MT_XF_COPY, 0, "lm_head.weight"); break;
        default: break;
        }
        return;
    }
    if (!gg) { /* Hugging Face Llama */
        const char *L = "model.layers";
        switch (p) {
        case MT_P_WTE: W(p, 0, V, C, MT_XF_COPY, 0, "model.embed_tokens.weight"); break;
        case MT_P_LN1W: B(p, 0, C, MT_XF_COPY, 0, "%s.%zu.input_layernorm.weight", L, i); break;
        case MT_P_QKVW:
            W(p, 0, C, C, MT_XF_COPY, 0, "%s.%zu.self_attn.q_proj.weight", L, i);
            W(p, C, KV, C, MT_XF_COPY, 0, "%s.%zu.self_attn.k_proj.weight", L, i);
            W(p, C + KV, KV, C, MT_XF_COPY, 0, "%s.%zu.self_attn.v_proj.weight", L, i);
            break;
        case MT_P_QKVB:
            B(p, 0, C, MT_XF_COPY, 0, "%s.%zu.self_attn.q_proj.bias", L, i);
            B(p, C, KV, MT_XF_COPY, 0, "%s.%zu.self_attn.k_proj.bias", L, i);
            B(p, C + KV, KV, MT_XF_COPY, 0, "%s.%zu.self_attn.v_proj.bias", L, i);
            break;
        case MT_P_ATTPROJW: W(p, 0, C, C, MT_XF_COPY, 0, "%s.%zu.self_attn.o_proj.weight", L, i); break;
        case MT_P_ATTPROJB: B(p, 0, C, MT_XF_COPY, 0, "%s.%zu.self_attn.o_proj.bias", L, i); break;
        case MT_P_LN2W:
            B(p, 0, C, MT_XF_COPY, 0, "%s.%zu.post_attention_layernorm.weight", L, i);
            break;
        case MT_P_FCW:
            W(p, 0, F, C, MT_XF_COPY, 0, "%s.%zu.mlp.gate_proj.weight", L, i);
            W(p, F, F, C, MT_XF_COPY, 0, "%s.%zu.mlp.up_proj.weight", L, i);
            break;
        case MT_P_FCB:
            B(p, 0, F, MT_XF_COPY, 0, "%s.%zu.mlp.gate_proj.bias", L, i);
            B(p, F, F, MT_XF_COPY, 0, "%s.%zu.mlp.up_proj.bias", L, i);
            break;
        case MT_P_FCPROJW: W(p, 0, C, F, MT_XF_COPY, 0, "%s.%zu.mlp.down_proj.weight", L, i); break;
        case MT_P_FCPROJB: B(p, 0, C, MT_XF_COPY, 0, "%s.%zu.mlp.down_proj.bias", L, i); break;
        case MT_P_LNFW: B(p, 0, C, MT_XF_COPY, 0, "model.norm.weight"); break;
        case MT_P_LMHEAD: W(p, 0, V, C, MT_XF_COPY, 0, "lm_head.weight"); break;
        default: break;
        }
        return;
    }
    /* GGUF, llama.cpp's names */
    switch (p) {
    case MT_P_WTE: W(p, 0, V, C, MT_XF_COPY, 0, "token_embd.weight"); break;
    case MT_P_WPE: W(p, 0, c->seq_len, C, MT_XF_COPY, 0, "position_embd.weight"); break;
    case MT_P_LN1W: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.attn_norm.weight", i); break;
    case MT_P_LN1B: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.attn_norm.bias", i); break;
    case MT_P_QKVW:
        if (!llama) {
            W(p, 0, 3 * C, C, MT_XF_COPY, 0, "blk.%zu.attn_qkv.weight", i);
            break;
        }
        W(p, 0, C, C, MT_XF_UNPERM, H, "blk.%zu.attn_q.weight", i);
        W(p, C, KV, C, MT_XF_UNPERM, KH, "blk.%zu.attn_k.weight", i);
        W(p, C + KV, KV, C, MT_XF_COPY, 0, "blk.%zu.attn_v.weight", i);
        break;
    case MT_P_QKVB:
        if (!llama) {
            B(p, 0, 3 * C, MT_XF_COPY, 0, "blk.%zu.attn_qkv.bias", i);
            break;
        }
        B(p, 0, C, MT_XF_UNPERM, H, "blk.%zu.attn_q.bias", i);
        B(p, C, KV, MT_XF_UNPERM, KH, "blk.%zu.attn_k.bias", i);
        B(p, C + KV, KV, MT_XF_COPY, 0, "blk.%zu.attn_v.bias", i);
        break;
    case MT_P_ATTPROJW: W(p, 0, C, C, MT_XF_COPY, 0, "blk.%zu.attn_output.weight", i); break;
    case MT_P_ATTPROJB: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.attn_output.bias", i); break;
    case MT_P_LN2W: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.ffn_norm.weight", i); break;
    case MT_P_LN2B: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.ffn_norm.bias", i); break;
    case MT_P_FCW:
        if (llama) {
            W(p, 0, F, C, MT_XF_COPY, 0, "blk.%zu.ffn_gate.weight", i);
            W(p, F, F, C, MT_XF_COPY, 0, "blk.%zu.ffn_up.weight", i);
        } else {
            W(p, 0, F, C, MT_XF_COPY, 0, "blk.%zu.ffn_up.weight", i);
        }
        break;
    case MT_P_FCB:
        if (llama) {
            B(p, 0, F, MT_XF_COPY, 0, "blk.%zu.ffn_gate.bias", i);
            B(p, F, F, MT_XF_COPY, 0, "blk.%zu.ffn_up.bias", i);
        } else {
            B(p, 0, F, MT_XF_COPY, 0, "blk.%zu.ffn_up.bias", i);
        }
        break;
    case MT_P_FCPROJW: W(p, 0, C, F, MT_XF_COPY, 0, "blk.%zu.ffn_down.weight", i); break;
    case MT_P_FCPROJB: B(p, 0, C, MT_XF_COPY, 0, "blk.%zu.ffn_down.bias", i); break;
    case MT_P_LNFW: B(p, 0, C, MT_XF_COPY, 0, "output_norm.weight"); break;
    case MT_P_LNFB: B(p, 0, C, MT_XF_COPY, 0, "output_norm.bias"); break;
    case MT_P_LMHEAD: W(p, 0, V, C, MT_XF_COPY, 0, "output.weight"); break;
    default: break;
    }
#undef W
#undef B
}

int mt_names_pieces(const struct mt_gpt_config *cfg, enum mt_model_format fmt,
                    const char *hf_prefix, struct mt_piece **out, size_t *n, char *err,
                    size_t errlen)
{
    int llama = mt_names_family(cfg, err, errlen);
    if (llama < 0) return -1;
    if (fmt == MT_MF_GGUF && llama && mt_gpt_kv_dim(cfg) % 2)
        return mt_tf_fail(err, errlen, "odd head size: cannot permute for GGUF");
    struct list l = {0};
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!mt_gpt_param_elems(cfg, (enum mt_gpt_param)p)) continue; /* absent */
        size_t layers = stacked((enum mt_gpt_param)p) ? cfg->n_layer : 1;
        for (size_t i = 0; i < layers; i++)
            pieces_of(&l, cfg, llama, fmt, hf_prefix ? hf_prefix : "", (enum mt_gpt_param)p, i);
    }
    if (l.oom) {
        free(l.v);
        return mt_tf_fail(err, errlen, "out of memory for the name table");
    }
    *out = l.v, *n = l.n;
    return 0;
}
