/* decode.c — batch-1 incremental decoding with a KV cache.
 *
 * What it is for: serving-style generation, one token at a time, each step reusing the
 * keys and values of earlier positions; the measure of decode speed and KV-cache memory.
 * The linear layers go through the model's hook, so packed/sparse weights decode too.
 * What it is not for: batched evaluation (mt_gpt_forward is faster there) or training.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "gpt.h"
#include "kernels.h"
#include "kvcache.h"
#include "util.h"

/* The fc output's floats in the scratch: the GELU runs in place (F); SwiGLU needs the fc
 * output (2F) and its own output (F). */
static size_t fch_floats(const struct mt_gpt_config *cfg)
{
    return mt_gpt_ffn(cfg) * (cfg->mlp == MT_GPT_MLP_SWIGLU ? 3 : 1);
}

/* Scratch layout in floats: x, ln, qkv (3C, of which C + 2 kv_dim used), atty, proj, fch,
 * logits (V). No row of scores: the cache attends tile by tile (kvcache.h), so the scratch
 * does not grow with the context. */
static size_t scratch_floats(const struct mt_gpt_config *cfg)
{
    return 7 * cfg->n_embd + fch_floats(cfg) + cfg->vocab;
}

void mt_gpt_kv_memory(const struct mt_gpt_config *cfg, size_t max_T, size_t *kv_bytes,
                      size_t *scratch_bytes)
{
    struct mt_kvc_spec fp32 = mt_kvc_spec_default();
    if (kv_bytes) *kv_bytes = mt_kvc_contiguous_bytes(cfg, &fp32, max_T); /* window: a ring */
    if (scratch_bytes) *scratch_bytes = scratch_floats(cfg) * sizeof(float);
}

int mt_gpt_kv_create_spec(struct mt_gpt_kv **out, const struct mt_gpt_config *cfg, size_t max_T,
                          const struct mt_kvc_spec *spec, char *err, size_t errlen)
{
    struct mt_kvc_spec fp32 = mt_kvc_spec_default();
    *out = NULL;
    if (mt_gpt_config_check(cfg, err, errlen)) return -1;
    if (!max_T || max_T > cfg->seq_len)
        return mt_tf_fail(err, errlen, "KV cache length %zu outside 1..%zu", max_T, cfg->seq_len);
    struct mt_gpt_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return mt_tf_fail(err, errlen, "out of memory for the KV cache");
    kv->max_T = max_T;
    mt_gpt_kv_memory(cfg, max_T, NULL, &kv->scratch_bytes);
    if (mt_kvc_create(&kv->cache, cfg, spec ? spec : &fp32, max_T, 1, 0, err, errlen)) {
        free(kv);
        return -1;
    }
    kv->kv_bytes = kv->cache->bytes;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    kv->scratch = calloc(1, kv->scratch_bytes);
    mt_memcat_set(prev);
    if (!kv->scratch) {
        mt_gpt_kv_free(kv);
        return mt_tf_fail(err, errlen, "out of memory for the KV cache's scratch (%zu bytes)",
                          kv->scratch_bytes);
    }
    mt_memcat_report(kv->scratch, kv->scratch_bytes, MT_MEM_WORKSPACE, "kv.scratch");
    kv->logits = kv->scratch + 7 * cfg->n_embd + fch_floats(cfg);
    *out = kv;
    return 0;
}

int mt_gpt_kv_create(struct mt_gpt_kv **out, const struct mt_gpt_config *cfg, size_t max_T,
                     char *err, size_t errlen)
{
    return mt_gpt_kv_create_spec(out, cfg, max_T, NULL, err, errlen);
}

void mt_gpt_kv_free(struct mt_gpt_kv *kv)
{
    if (!kv) return;
    mt_kvc_free(kv->cache);
    free(kv->scratch);
    free(kv);
}

void mt_gpt_kv_reset(struct mt_gpt_kv *kv)
{
    kv->pos = 0;
    mt_kvc_release(kv->cache, 0);
}

/* The one block (block.h) at one position: linears through the model's hooks, attention
 * over the cache after appending this position's keys and values. */
struct decode_block {
    struct mt_gpt *m;
    struct mt_gpt_kv *kv;
    size_t l;
};

static int decode_linear(void *user, enum mt_linear which, const float *in, float *out, size_t rows)
{
    struct decode_block *k = user;
    return mt_gpt_linear(k->m, k->l, which, in, out, rows);
}

static int decode_attention(void *user, const float *qkv, float *atty, float *att)
{
    struct decode_block *k = user;
    (void)att; /* NULL: the cache attends tile by tile, no row of scores */
    const struct mt_gpt_config *cfg = &k->m->cfg;
    size_t C = cfg->n_embd, kvd = mt_gpt_kv_dim(cfg), pos = k->kv->pos;
    size_t lo = mt_k_window_start(pos, cfg->window); /* sliding window: the last positions */
    mt_kvc_append(k->kv->cache, 0, k->l, pos, qkv + C, qkv + C + kvd);
    mt_kvc_attend(k->kv->cache, 0, k->l, lo, pos + 1, qkv, atty);
    return 0;
}

int mt_gpt_decode_step(struct mt_gpt *m, struct mt_gpt_kv *kv, int token, char *err, size_t errlen)
{
    const struct mt_gpt_config *cfg = &m->cfg;
    size_t C = cfg->n_embd, L = cfg->n_layer, pos = kv->pos;
    if (pos >= kv->max_T)
        return mt_tf_fail(err, errlen, "KV cache full (%zu positions)", kv->max_T);
    if (token < 0 || (size_t)token >= cfg->vocab)
        return mt_tf_fail(err, errlen, "token id %d outside vocab %zu", token, cfg->vocab);
    if (mt_kvc_reserve(kv->cache, 0, pos + 1))
        return mt_tf_fail(err, errlen, "KV cache out of blocks at position %zu", pos);
    float *x = kv->scratch, *ln = x + C, *qkv = ln + C, *atty = qkv + 3 * C;
    float *proj = atty + C, *fch = proj + C;
    if (m->embed_hook.rows) {
        if (m->embed_hook.rows(m->embed_hook.user, &token, 1, x))
            return mt_tf_fail(err, errlen, "embedding hook failed");
    } else if (m->param[MT_P_WTE]) {
        memcpy(x, m->param[MT_P_WTE] + (size_t)token * C, C * sizeof *x);
    } else {
        return mt_tf_fail(err, errlen,
                          "the token embedding was dropped and no embedding hook is set");
    }
    if (m->param[MT_P_WPE]) mt_k_add_positions(x, m->param[MT_P_WPE] + pos * C, 1, 1, C);
    /* one position, everything in place: the residual stream stays in x */
    struct mt_block_shape shape = mt_block_shape_of(cfg, 1, 1, 1);
    shape.pos0 = pos; /* RoPE rotates q and k at this position */
    float *act[MT_A_COUNT] = {0}, *lnp[MT_P_COUNT] = {0};
    act[MT_A_LN1] = act[MT_A_LN2] = ln;
    act[MT_A_QKV] = qkv;
    act[MT_A_ATTY] = atty;
    act[MT_A_ATT] = NULL; /* decode_attention keeps no scores */
    act[MT_A_RESIDUAL2] = x;
    act[MT_A_FCH] = act[MT_A_FCH_GELU] = fch; /* SwiGLU: its output after the 2F fc output */
    if (cfg->mlp == MT_GPT_MLP_SWIGLU) act[MT_A_FCH_GELU] = fch + 2 * mt_gpt_ffn(cfg);
    struct decode_block k = {.m = m, .kv = kv};
    struct mt_block_ops ops = {.linear = decode_linear, .attention = decode_attention, .user = &k};
    for (size_t l = 0; l < L; l++) {
        k.l = l;
        mt_block_norm_params(cfg, l, m->param, lnp);
        if (mt_block_forward(&shape, lnp, act, x, proj, x, &ops)) goto hook_failed;
    }
    mt_block_norm_fwd(cfg->norm, ln, NULL, NULL, x, m->param[MT_P_LNFW], m->param[MT_P_LNFB], 1, C);
    if (mt_gpt_linear(m, L, MT_LIN_LMHEAD, ln, kv->logits, 1)) goto hook_failed;
    kv->pos++;
    return 0;
hook_failed:
    return mt_tf_fail(err, errlen, "linear hook failed");
}
