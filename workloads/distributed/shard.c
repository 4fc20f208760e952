/* shard.c — layout, initialisation, forward and backward of one rank's model shard
 * (see shard.h). The layers are the one block (block.h); this file adds the
 * tensor-parallel reductions (in its linear hooks) and the per-layer gradient hand-off. */
#include "shard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "half.h"
#include "kernels.h"
#include "rng.h"

/* Per-layer activations of one micro-batch, in this order inside a (slot, layer) block. */
enum {
    LA_LN1,
    LA_LN1M,
    LA_LN1R,
    LA_QKV,
    LA_ATTY,
    LA_ATT,
    LA_RES2,
    LA_LN2,
    LA_LN2M,
    LA_LN2R,
    LA_FCH,
    LA_FCHG,
    LA_RES3,
    LA_COUNT
};
/* Per-slot activations outside the layers: stage input, then the head's. */
enum { SA_IN, SA_LNF, SA_LNFM, SA_LNFR, SA_LOGITS, SA_LOSSES, SA_COUNT };
/* Activation gradients (one set) and the forward's projection scratch. */
enum { DA_RES, DA_LN, DA_ATTY, DA_QKV, DA_ATT, DA_FCH, DA_PROJ, DA_COUNT };

struct dims {
    size_t C, Cl, KV, KVl, NHl, F, BT, V; /* KV: the k/v width (GQA), KVl its local slice */
};

static struct dims dims_of(const struct mt_shard_spec *s)
{
    struct dims d;
    d.C = s->cfg.n_embd;
    d.Cl = d.C / s->tp;
    d.KV = mt_gpt_kv_dim(&s->cfg);
    d.KVl = d.KV / s->tp;
    d.NHl = s->cfg.n_head / s->tp;
    d.F = 4 * d.C / s->tp;
    d.BT = s->B * s->T;
    d.V = s->cfg.vocab;
    return d;
}

static size_t layer_act_len(const struct mt_shard_spec *s, int a)
{
    struct dims d = dims_of(s);
    switch (a) {
    case LA_LN1M:
    case LA_LN1R:
    case LA_LN2M:
    case LA_LN2R:
        return d.BT;
    case LA_QKV:
        return d.BT * (d.Cl + 2 * d.KVl);
    case LA_ATTY:
        return d.BT * d.Cl;
    case LA_ATT: /* flash: the log-sum-exp rows; dense: the probabilities */
        return s->B * d.NHl * s->T * (s->cfg.attention == MT_GPT_ATTN_FLASH ? 1 : s->T);
    case LA_FCH:
    case LA_FCHG:
        return d.BT * d.F;
    default:
        return d.BT * d.C;
    }
}

static size_t slot_act_len(const struct mt_shard_spec *s, int a)
{
    struct dims d = dims_of(s);
    if (a == SA_IN) return d.BT * d.C;
    if (!s->head) return 0;
    switch (a) {
    case SA_LNF:
        return d.BT * d.C;
    case SA_LOGITS:
        return d.BT * d.V;
    default:
        return d.BT;
    }
}

/* Each activation gradient is shaped like the activation it is the gradient of; the
 * residual, LayerNorm and projection buffers are B*T x C, like LA_RES2. */
static size_t dact_len(const struct mt_shard_spec *s, int a)
{
    static const int like[DA_COUNT] = {
        [DA_RES] = LA_RES2, [DA_LN] = LA_LN1,  [DA_ATTY] = LA_ATTY, [DA_QKV] = LA_QKV,
        [DA_ATT] = LA_ATT,  [DA_FCH] = LA_FCH, [DA_PROJ] = LA_RES2};
    if (a == DA_ATT && s->cfg.attention == MT_GPT_ATTN_FLASH) return 0; /* tiles on the stack */
    return layer_act_len(s, like[a]);
}

/* Floats of local tensor p (per layer for the layer tensors). */
static size_t local_len(const struct mt_shard_spec *s, int p)
{
    struct dims d = dims_of(s);
    switch (p) {
    case MT_P_WTE:
        return d.V * d.C;
    case MT_P_WPE:
        return s->cfg.seq_len * d.C;
    case MT_P_QKVW:
        return (d.Cl + 2 * d.KVl) * d.C;
    case MT_P_QKVB:
        return d.Cl + 2 * d.KVl;
    case MT_P_ATTPROJW:
        return d.C * d.Cl;
    case MT_P_FCW:
    case MT_P_FCPROJW:
        return d.F * d.C;
    case MT_P_FCB:
        return d.F;
    default:
        return d.C; /* LayerNorms, replicated biases, final LayerNorm */
    }
}

static int has_wte(const struct mt_shard_spec *s)
{
    return s->embed || s->head;
}

void mt_shard_map_rows(const struct mt_shard_spec *s, mt_shard_rows_fn f, void *user)
{
    struct dims d = dims_of(s);
    size_t C = d.C, Cl = d.Cl, F = d.F, tpr = s->tp_rank, loff = 0, Q = C + 2 * d.KV;
    /* q, k, v rows of the QKV weight: global first row, width and local first row of this
     * rank's slice of each */
    const size_t g0[3] = {tpr * Cl, C + tpr * d.KVl, C + d.KV + tpr * d.KVl};
    const size_t w[3] = {Cl, d.KVl, d.KVl}, l0[3] = {0, Cl, Cl + d.KVl};
    int rep_owner = tpr == 0;
    if (has_wte(s)) {
        f(user, MT_P_WTE, 0, loff, d.V * C, 1, d.V * C, rep_owner && s->embed);
        loff += d.V * C;
    }
    if (s->embed) {
        f(user, MT_P_WPE, 0, loff, s->cfg.seq_len * C, 1, s->cfg.seq_len * C, rep_owner);
        loff += s->cfg.seq_len * C;
    }
    for (size_t l = s->l0; l < s->l1; l++) {
        for (int p = MT_P_LN1W; p <= MT_P_FCPROJB; p++) {
            size_t base = loff;
            switch (p) {
            case MT_P_QKVW:
                for (size_t j = 0; j < 3; j++)
                    f(user, MT_P_QKVW, l * Q * C + g0[j] * C, base + l0[j] * C, w[j] * C, 1,
                      w[j] * C, 1);
                break;
            case MT_P_QKVB:
                for (size_t j = 0; j < 3; j++)
                    f(user, MT_P_QKVB, l * Q + g0[j], base + l0[j], w[j], 1, w[j], 1);
                break;
            case MT_P_ATTPROJW:
                f(user, MT_P_ATTPROJW, l * C * C + tpr * Cl, base, Cl, C, C, 1);
                break;
            case MT_P_FCW:
                f(user, MT_P_FCW, l * 4 * C * C + tpr * F * C, base, F * C, 1, F * C, 1);
                break;
            case MT_P_FCB:
                f(user, MT_P_FCB, l * 4 * C + tpr * F, base, F, 1, F, 1);
                break;
            case MT_P_FCPROJW:
                f(user, MT_P_FCPROJW, l * C * 4 * C + tpr * F, base, F, C, 4 * C, 1);
                break;
            default: /* replicated, C floats per layer */
                f(user, (enum mt_gpt_param)p, l * C, base, C, 1, C, rep_owner);
                break;
            }
            loff += local_len(s, p);
        }
    }
    if (s->head) {
        f(user, MT_P_LNFW, 0, loff, C, 1, C, rep_owner);
        f(user, MT_P_LNFB, 0, loff + C, C, 1, C, rep_owner);
    }
}

/* mt_shard_map's visitor on top of mt_shard_map_rows: each row is a run. */
struct expand {
    mt_shard_visit_fn f;
    void *user;
};

static void expand_rows(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                        size_t rows, size_t gstride, int owner)
{
    struct expand *e = user;
    for (size_t i = 0; i < rows; i++)
        e->f(e->user, p, goff + i * gstride, loff + i * n, n, owner);
}

void mt_shard_map(const struct mt_shard_spec *s, mt_shard_visit_fn f, void *user)
{
    struct expand e = {f, user};
    mt_shard_map_rows(s, expand_rows, &e);
}

static size_t layer_len(const struct mt_shard_spec *s)
{
    size_t n = 0;
    for (int p = MT_P_LN1W; p <= MT_P_FCPROJB; p++)
        n += local_len(s, p);
    return n;
}

static size_t embed_len(const struct mt_shard_spec *s)
{
    return (has_wte(s) ? local_len(s, MT_P_WTE) : 0) + (s->embed ? local_len(s, MT_P_WPE) : 0);
}

struct mt_shard_spec mt_shard_spec_whole(const struct mt_gpt_config *cfg, size_t B, size_t T)
{
    return (struct mt_shard_spec){.cfg = *cfg,
                                  .l1 = cfg->n_layer,
                                  .embed = 1,
                                  .head = 1,
                                  .tp = 1,
                                  .B = B,
                                  .T = T,
                                  .slots = 1};
}

size_t mt_shard_num_params(const struct mt_shard_spec *s)
{
    return embed_len(s) + (s->l1 - s->l0) * layer_len(s) + (s->head ? 2 * s->cfg.n_embd : 0);
}

/* Points the named tensors of a flat vector laid out as the params are (nwin = 0), or
 * with the layers on nwin layer windows (local layer i on window i % nwin). */
static void carve(struct mt_shard *sh, float *base, size_t nwin, float **wte, float **wpe,
                  float **lnfw, float **lnfb, int grads)
{
    const struct mt_shard_spec *s = &sh->s;
    size_t off = 0;
    *wte = has_wte(s) ? base : NULL;
    off += has_wte(s) ? local_len(s, MT_P_WTE) : 0;
    *wpe = s->embed ? base + off : NULL;
    off = sh->layer_off;
    for (size_t i = 0; i < s->l1 - s->l0; i++) {
        size_t lo = off + (nwin ? i % nwin : i) * sh->layer_len;
        for (int p = MT_P_LN1W; p <= MT_P_FCPROJB; p++) {
            if (grads)
                sh->layer[i].g[p] = base + lo;
            else
                sh->layer[i].w[p] = base + lo;
            lo += local_len(s, p);
        }
    }
    off += (nwin ? nwin : s->l1 - s->l0) * sh->layer_len;
    *lnfw = s->head ? base + off : NULL;
    *lnfb = s->head ? base + off + s->cfg.n_embd : NULL;
}

/* The weight window (bf16 decode, ZeRO-3 gather) instead of the full fp32 weights. */
static int weight_window(const struct mt_shard_spec *s)
{
    return s->bf16_weights || s->gathered_weights;
}

/* Layer windows of the weights: 0 (every layer held), 1, or 2 (ZeRO-3 prefetch). */
static size_t weight_windows(const struct mt_shard_spec *s)
{
    return !weight_window(s) ? 0 : s->gathered_weights && s->prefetch ? 2 : 1;
}

/* The bf16 decode window is scratch beside the bf16 weights; the ZeRO-3 gather window
 * holds parameters in use, so it counts as weights (1/N of the model + the window). */
static int params_cat(const struct mt_shard_spec *s)
{
    return s->bf16_weights ? MT_MEM_WORKSPACE : MT_MEM_WEIGHTS;
}

void mt_shard_sizes(const struct mt_shard_spec *s, struct mt_shard_sizes *z)
{
    memset(z, 0, sizeof *z);
    z->n = mt_shard_num_params(s);
    z->layer_off = embed_len(s);
    z->layer_len = layer_len(s);
    z->head_off = s->head ? z->n - 2 * s->cfg.n_embd : z->n;
    size_t ends_len = z->layer_off + (z->n - z->head_off);
    z->n_win = weight_windows(s);
    z->grads_len = s->grad_window ? ends_len + z->layer_len : z->n;
    z->params_len = z->n_win ? ends_len + z->n_win * z->layer_len : z->n;
    for (int a = 0; a < LA_COUNT; a++)
        z->slot_len += (s->l1 - s->l0) * layer_act_len(s, a);
    for (int a = 0; a < SA_COUNT; a++)
        z->slot_len += slot_act_len(s, a);
    z->acts_len = s->slots * z->slot_len;
    for (int a = 0; a < DA_COUNT; a++)
        z->dacts_len += dact_len(s, a);
    z->tokens_len = s->slots * 2 * s->B * s->T;
}

void mt_shard_bytes(const struct mt_shard_spec *s, size_t b[MT_MEM_CAT_COUNT])
{
    struct mt_shard_sizes z;
    mt_shard_sizes(s, &z);
    b[params_cat(s)] += z.params_len * sizeof(float);
    if (s->bf16_weights) b[MT_MEM_WEIGHTS] += z.n * sizeof(uint16_t);
    b[s->grad_window ? MT_MEM_WORKSPACE : MT_MEM_GRADIENTS] += z.grads_len * sizeof(float);
    b[MT_MEM_ACTIVATIONS] += z.acts_len * sizeof(float);
    b[MT_MEM_ACT_GRADS] += z.dacts_len * sizeof(float);
    b[MT_MEM_DATA] += z.tokens_len * sizeof(int);
}

void mt_shard_free(struct mt_shard *sh, struct mt_dist *d)
{
    if (!sh) return;
    struct mt_shard_sizes z;
    mt_shard_sizes(&sh->s, &z);
    mt_dist_free(d, params_cat(&sh->s), sh->params, sh->params_len * sizeof(float));
    mt_dist_free(d, MT_MEM_WEIGHTS, sh->wbf, sh->s.bf16_weights ? sh->n * sizeof(uint16_t) : 0);
    mt_dist_free(d, sh->s.grad_window ? MT_MEM_WORKSPACE : MT_MEM_GRADIENTS, sh->grads,
                 sh->grads_len * sizeof(float));
    mt_dist_free(d, MT_MEM_ACTIVATIONS, sh->acts, sh->acts_len * sizeof(float));
    mt_dist_free(d, MT_MEM_ACT_GRADS, sh->dacts, sh->dacts_len * sizeof(float));
    mt_dist_free(d, MT_MEM_DATA, sh->tokens, z.tokens_len * sizeof(int));
    free(sh->layer);
    free(sh);
}

int mt_shard_check(const struct mt_shard_spec *s, int has_tpd, char *err, size_t errlen)
{
    char cerr[256];
    if (mt_gpt_config_check(&s->cfg, cerr, sizeof cerr)) {
        snprintf(err, errlen, "%s", cerr);
        return -1;
    }
    mt_gpt_config_options(&(struct mt_gpt_config){.norm = s->cfg.norm,
                                                  .pos = s->cfg.pos,
                                                  .rope_theta = s->cfg.rope_theta,
                                                  .mlp = s->cfg.mlp,
                                                  .ffn = s->cfg.ffn,
                                                  .no_bias = s->cfg.no_bias,
                                                  .untied = s->cfg.untied,
                                                  .n_head = 1},
                          cerr, sizeof cerr);
    if (cerr[0]) { /* its tensor slicing and replicated tensors assume the GPT-2 block */
        snprintf(err, errlen,
                 "the distributed engine does not implement the Llama-family block options "
                 "yet (%s): norm, pos, rope_theta, mlp, ffn, bias and tie must be the "
                 "defaults; the single-process engines (model, train) run them",
                 cerr + 1);
        return -1;
    }
    if (!s->tp || s->cfg.n_head % s->tp || mt_gpt_kv_heads(&s->cfg) % s->tp ||
        s->tp_rank >= s->tp || s->l0 >= s->l1 || s->l1 > s->cfg.n_layer || !s->B || !s->T ||
        s->T > s->cfg.seq_len || !s->slots || (s->tp > 1 && !has_tpd)) {
        snprintf(err, errlen,
                 "bad shard: layers [%zu,%zu) of %zu, tp %zu (rank %zu) for %zu heads (%zu "
                 "key/value heads), B %zu T %zu (max %zu), slots %zu",
                 s->l0, s->l1, s->cfg.n_layer, s->tp, s->tp_rank, s->cfg.n_head,
                 mt_gpt_kv_heads(&s->cfg), s->B, s->T, s->cfg.seq_len, s->slots);
        return -1;
    }
    return 0;
}

int mt_shard_create(struct mt_shard **out, const struct mt_shard_spec *s, struct mt_dist *d,
                    struct mt_dist *tpd, char *err, size_t errlen)
{
    *out = NULL;
    if (mt_shard_check(s, tpd != NULL, err, errlen)) return -1;
    struct mt_shard *sh = calloc(1, sizeof *sh);
    struct mt_shard_layer *layers = calloc(s->l1 - s->l0, sizeof *layers);
    if (!sh || !layers) {
        free(sh);
        free(layers);
        snprintf(err, errlen, "out of memory for the shard");
        return -1;
    }
    struct mt_shard_sizes z;
    mt_shard_sizes(s, &z);
    sh->s = *s;
    sh->layer = layers;
    sh->tpd = s->tp > 1 ? tpd : NULL;
    struct dims dm = dims_of(s);
    sh->C = dm.C, sh->Cl = dm.Cl, sh->NHl = dm.NHl, sh->F = dm.F;
    sh->n = z.n;
    sh->layer_off = z.layer_off;
    sh->layer_len = z.layer_len;
    sh->head_off = z.head_off;
    sh->n_win = z.n_win;
    sh->grads_len = z.grads_len;
    sh->params_len = z.params_len;
    sh->win_tag[0] = sh->win_tag[1] = sh->pend_layer = s->l1 - s->l0;
    sh->slot_len = z.slot_len;
    sh->acts_len = z.acts_len;
    sh->dacts_len = z.dacts_len;

    sh->params = mt_dist_alloc(d, params_cat(s), sh->params_len * sizeof(float),
                               s->bf16_weights       ? "shard.weight_window"
                               : s->gathered_weights ? "shard.weight_gather"
                                                     : "shard.params");
    if (s->bf16_weights)
        sh->wbf = mt_dist_alloc(d, MT_MEM_WEIGHTS, sh->n * sizeof(uint16_t), "shard.weights_bf16");
    sh->grads = mt_dist_alloc(d, s->grad_window ? MT_MEM_WORKSPACE : MT_MEM_GRADIENTS,
                              sh->grads_len * sizeof(float),
                              s->grad_window ? "shard.grad_window" : "shard.grads");
    sh->acts = mt_dist_alloc(d, MT_MEM_ACTIVATIONS, sh->acts_len * sizeof(float), "shard.acts");
    sh->dacts = mt_dist_alloc(d, MT_MEM_ACT_GRADS, sh->dacts_len * sizeof(float), "shard.dacts");
    sh->tokens = mt_dist_alloc(d, MT_MEM_DATA, z.tokens_len * sizeof(int), "shard.tokens");
    if (!sh->params || !sh->grads || !sh->acts || !sh->dacts || !sh->tokens ||
        (s->bf16_weights && !sh->wbf)) {
        mt_shard_free(sh, d);
        snprintf(err, errlen, "out of memory for the shard slabs");
        return -1;
    }
    carve(sh, sh->params, sh->n_win, &sh->wte, &sh->wpe, &sh->lnfw, &sh->lnfb, 0);
    carve(sh, sh->grads, s->grad_window ? 1 : 0, &sh->gwte, &sh->gwpe, &sh->glnfw, &sh->glnfb, 1);
    *out = sh;
    return 0;
}

/* ---------------------------------------------------------------- initialisation */

struct init_state {
    float *params;
    size_t lo, hi; /* flat range written; params points at element lo */
    uint64_t seed;
    size_t before[MT_P_COUNT]; /* Box-Muller pairs drawn by mt_gpt_init before tensor p */
    float resid_scale;
};

/* mt_gpt_init fills each decayed tensor, in enum order, two elements per mt_rng_normal2
 * (two splitmix64 steps; an odd tensor drops its last normal). splitmix64's state is a
 * counter, so the pair holding element e is reached directly. The tests compare with
 * mt_gpt_init, so a change there is caught. */
static void init_run(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n, int owner)
{
    (void)owner;
    struct init_state *st = user;
    size_t skip = st->lo > loff ? st->lo - loff : 0, end = loff + n < st->hi ? loff + n : st->hi;
    if (loff + skip >= end) return;
    goff += skip, loff += skip, n = end - loff;
    float *w = st->params + (loff - st->lo);
    if (p == MT_P_LN1W || p == MT_P_LN2W || p == MT_P_LNFW) {
        for (size_t i = 0; i < n; i++)
            w[i] = 1.0f;
    } else if (mt_gpt_param_decays(p)) {
        float sd = 0.02f * (p == MT_P_ATTPROJW || p == MT_P_FCPROJW ? st->resid_scale : 1.0f);
        struct mt_rng rng;
        double z[2];
        for (size_t i = 0; i < n; i++) {
            size_t e = goff + i;
            if (i == 0 || e % 2 == 0) {
                mt_rng_seed(&rng, st->seed + 2 * (st->before[p] + e / 2) * 0x9E3779B97F4A7C15ull);
                mt_rng_normal2(&rng, z);
            }
            w[i] = (float)z[e % 2] * sd;
        }
    } else {
        memset(w, 0, n * sizeof *w);
    }
}

void mt_shard_init_range(const struct mt_shard_spec *spec, float *dst, size_t lo, size_t hi,
                         uint64_t seed)
{
    struct init_state st = {.params = dst, .lo = lo, .hi = hi, .seed = seed};
    st.resid_scale = 1.0f / sqrtf(2.0f * (float)spec->cfg.n_layer);
    size_t drawn = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        st.before[p] = drawn;
        if (mt_gpt_param_decays((enum mt_gpt_param)p)) {
            size_t dims[3], len = 1, nd = mt_gpt_param_shape(&spec->cfg, p, dims);
            for (size_t i = 0; i < nd; i++)
                len *= dims[i];
            drawn += (len + 1) / 2;
        }
    }
    mt_shard_map(spec, init_run, &st);
}

void mt_shard_init_flat(const struct mt_shard_spec *spec, float *flat, uint64_t seed)
{
    mt_shard_init_range(spec, flat, 0, mt_shard_num_params(spec), seed);
}

void mt_shard_init(struct mt_shard *sh, uint64_t seed)
{
    mt_shard_init_flat(&sh->s, sh->params, seed);
}

/* Window shards: flat range [lo, hi) into dst, decoded (bf16) or gathered (ZeRO-3). */
static void load_range(struct mt_shard *sh, size_t lo, size_t hi, float *dst)
{
    if (sh->s.bf16_weights)
        mt_half_unpack(MT_PREC_BF16, dst, sh->wbf + lo, hi - lo);
    else
        sh->load(sh->load_user, lo, hi, dst);
}

/* Prefetch: waits for the layer in flight, which is then in its window. */
static void finish_prefetch(struct mt_shard *sh)
{
    size_t nl = sh->s.l1 - sh->s.l0;
    if (sh->pend_layer == nl) return;
    sh->load_finish(sh->load_user);
    sh->win_tag[sh->pend_layer % sh->n_win] = sh->pend_layer;
    sh->pend_layer = nl;
}

/* Window shards: local layer i into its layer window, unless it is there already (the
 * last layer, or with prefetch the last two, from forward to backward; a prefetched
 * one). With prefetch, then starts gathering layer i + dir (dir = +1 forward, -1
 * backward) into the other window unless it is there. */
static void load_layer(struct mt_shard *sh, size_t i, int dir)
{
    size_t nl = sh->s.l1 - sh->s.l0;
    if (!sh->n_win) return;
    if (sh->pend_layer == i) finish_prefetch(sh);
    if (sh->win_tag[i % sh->n_win] != i) {
        finish_prefetch(sh);
        size_t lo = sh->layer_off + i * sh->layer_len;
        load_range(sh, lo, lo + sh->layer_len, sh->layer[i].w[MT_P_LN1W]);
        sh->win_tag[i % sh->n_win] = i;
    }
    size_t j = dir > 0 ? i + 1 : i - 1; /* i = 0 going back: j wraps past nl */
    if (sh->n_win < 2 || j >= nl || sh->win_tag[j % 2] == j || sh->pend_layer == j) return;
    finish_prefetch(sh);
    size_t lo = sh->layer_off + j * sh->layer_len;
    sh->win_tag[j % 2] = nl; /* being overwritten */
    sh->load_start(sh->load_user, lo, lo + sh->layer_len, sh->layer[j].w[MT_P_LN1W]);
    sh->pend_layer = j;
}

/* Window shards: the embeddings and the final LayerNorm into the window, at the start of
 * a forward (the weights changed since the windows' layers were loaded). */
static void load_ends(struct mt_shard *sh)
{
    if (!sh->n_win) return;
    finish_prefetch(sh);
    sh->win_tag[0] = sh->win_tag[1] = sh->s.l1 - sh->s.l0;
    if (sh->layer_off) load_range(sh, 0, sh->layer_off, sh->params);
    if (sh->n > sh->head_off)
        load_range(sh, sh->head_off, sh->n, sh->params + sh->layer_off + sh->n_win * sh->layer_len);
}

/* ---------------------------------------------------------------- forward / backward */

static float *slot_base(const struct mt_shard *sh, size_t slot)
{
    return sh->acts + (slot % sh->s.slots) * sh->slot_len;
}

/* A slot's block: the stage input, the layer activations (grouped by kind), then the
 * head's. Activation a of local layer i in slot `slot`: */
static float *lact(const struct mt_shard *sh, size_t slot, size_t i, int a)
{
    float *p = slot_base(sh, slot) + slot_act_len(&sh->s, SA_IN);
    size_t nl = sh->s.l1 - sh->s.l0;
    for (int k = 0; k < a; k++)
        p += nl * layer_act_len(&sh->s, k);
    return p + i * layer_act_len(&sh->s, a);
}

static float *sact(const struct mt_shard *sh, size_t slot, int a)
{
    if (a == SA_IN) return slot_base(sh, slot);
    float *p = lact(sh, slot, 0, LA_COUNT); /* just past the layer activations */
    for (int k = SA_IN + 1; k < a; k++)
        p += slot_act_len(&sh->s, k);
    return p;
}

static float *dact(const struct mt_shard *sh, int a)
{
    float *p = sh->dacts;
    for (int k = 0; k < a; k++)
        p += dact_len(&sh->s, k);
    return p;
}

float *mt_shard_input(struct mt_shard *sh, size_t slot)
{
    return sact(sh, slot, SA_IN);
}

float *mt_shard_output(struct mt_shard *sh, size_t slot)
{
    return lact(sh, slot, sh->s.l1 - sh->s.l0 - 1, LA_RES3);
}

float *mt_shard_dres(struct mt_shard *sh)
{
    return dact(sh, DA_RES);
}

void mt_shard_zero_grad(struct mt_shard *sh)
{
    memset(sh->grads, 0, sh->grads_len * sizeof(float));
}

/* Block i of micro-batch slot `slot` for the one block (block.h): the layer's local
 * tensors, its activations, and linears that add the tensor-parallel reductions. */
struct sblock {
    struct mt_shard *sh;
    size_t i;
    struct mt_block_shape shape;
    float *act[MT_A_COUNT];
};

static int sb_linear(void *user, enum mt_linear which, const float *in, float *out, size_t rows)
{
    struct sblock *k = user;
    struct mt_shard *sh = k->sh;
    float *const *w = sh->layer[k->i].w;
    size_t ind, outd;
    int pw = (int)mt_block_linear_weight(which);
    int row_parallel = which == MT_LIN_ATTPROJ || which == MT_LIN_FCPROJ;
    mt_block_linear_dims(&k->shape, which, &ind, &outd);
    if (!sh->tpd || !row_parallel) {
        mt_k_matmul_fwd(out, in, w[pw], w[pw + 1], rows, ind, outd);
        return 0;
    }
    /* row-parallel: the partial products are summed over the tensor-parallel ranks first
     * and the (replicated) bias added after */
    const float *bias = w[pw + 1];
    mt_k_matmul_fwd(out, in, w[pw], NULL, rows, ind, outd);
    mt_dist_allreduce(sh->tpd, out, rows * outd);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < outd; o++)
            out[r * outd + o] += bias[o];
    return 0;
}

static int sb_linear_bwd(void *user, enum mt_linear which, const float *dout, float *din,
                         size_t rows)
{
    struct sblock *k = user;
    struct mt_shard *sh = k->sh;
    float *const *w = sh->layer[k->i].w, *const *g = sh->layer[k->i].g;
    size_t ind, outd;
    int pw = (int)mt_block_linear_weight(which);
    mt_block_linear_dims(&k->shape, which, &ind, &outd);
    mt_k_matmul_bwd(din, g[pw], g[pw + 1], dout, k->act[mt_block_linear_input(which)], w[pw], rows,
                    ind, outd);
    /* column-parallel layers (qkv, fc): each rank's input gradient is a partial sum */
    if (sh->tpd && (which == MT_LIN_QKV || which == MT_LIN_FC))
        mt_dist_allreduce(sh->tpd, din, rows * ind);
    return 0;
}

static struct mt_block_ops sblock_at(struct sblock *k, struct mt_shard *sh, size_t slot, size_t i)
{
    static const int la[MT_A_COUNT] = {
        [MT_A_LN1] = LA_LN1,        [MT_A_LN1_MEAN] = LA_LN1M, [MT_A_LN1_RSTD] = LA_LN1R,
        [MT_A_QKV] = LA_QKV,        [MT_A_ATTY] = LA_ATTY,     [MT_A_ATT] = LA_ATT,
        [MT_A_RESIDUAL2] = LA_RES2, [MT_A_LN2] = LA_LN2,       [MT_A_LN2_MEAN] = LA_LN2M,
        [MT_A_LN2_RSTD] = LA_LN2R,  [MT_A_FCH] = LA_FCH,       [MT_A_FCH_GELU] = LA_FCHG};
    k->sh = sh;
    k->i = i;
    k->shape = mt_block_shape_of(&sh->s.cfg, sh->s.B, sh->s.T, sh->s.tp);
    memset(k->act, 0, sizeof k->act);
    for (int a = MT_A_LN1; a <= MT_A_FCH_GELU; a++)
        k->act[a] = lact(sh, slot, i, la[a]);
    return (struct mt_block_ops){.linear = sb_linear, .linear_bwd = sb_linear_bwd, .user = k};
}

static void block_forward(struct mt_shard *sh, size_t slot, size_t i, const float *x)
{
    struct sblock k;
    struct mt_block_ops ops = sblock_at(&k, sh, slot, i);
    mt_block_forward(&k.shape, sh->layer[i].w, k.act, x, dact(sh, DA_PROJ),
                     lact(sh, slot, i, LA_RES3), &ops);
}

int mt_shard_forward(struct mt_shard *sh, size_t slot, const int *inputs, const int *targets,
                     double *loss_sum, float *logits, char *err, size_t errlen)
{
    const struct mt_shard_spec *s = &sh->s;
    size_t N = s->B * s->T, C = sh->C, V = s->cfg.vocab;
    int *in = sh->tokens + (slot % s->slots) * 2 * N, *tg = in + N;
    for (size_t k = 0; k < N; k++) {
        if ((s->embed && (inputs[k] < 0 || (size_t)inputs[k] >= V)) ||
            (s->head && targets[k] >= 0 && (size_t)targets[k] >= V)) {
            snprintf(err, errlen, "token id outside vocab %zu at %zu", V, k);
            return -1;
        }
    }
    float *x = mt_shard_input(sh, slot);
    load_ends(sh);
    if (s->embed) {
        memcpy(in, inputs, N * sizeof *in);
        mt_k_encoder_fwd(x, in, sh->wte, sh->wpe, s->B, s->T, C);
    }
    for (size_t i = 0; i < s->l1 - s->l0; i++) {
        load_layer(sh, i, +1);
        block_forward(sh, slot, i, x);
        x = lact(sh, slot, i, LA_RES3);
    }
    if (!s->head) return 0;
    memcpy(tg, targets, N * sizeof *tg);
    float *lnf = sact(sh, slot, SA_LNF), *lg = sact(sh, slot, SA_LOGITS);
    mt_k_layernorm_fwd(lnf, sact(sh, slot, SA_LNFM), sact(sh, slot, SA_LNFR), x, sh->lnfw, sh->lnfb,
                       N, C);
    mt_k_matmul_fwd(lg, lnf, sh->wte, NULL, N, C, V);
    if (logits) memcpy(logits, lg, N * V * sizeof *lg);
    *loss_sum += mt_k_crossentropy_fwd(lg, sact(sh, slot, SA_LOSSES), tg, N, V);
    return 0;
}

static void block_backward(struct mt_shard *sh, size_t slot, size_t i)
{
    static const int da[MT_D_COUNT] = {
        [MT_D_RESIDUAL] = DA_RES, [MT_D_LN] = DA_LN,   [MT_D_ATTY] = DA_ATTY,
        [MT_D_QKV] = DA_QKV,      [MT_D_ATT] = DA_ATT, [MT_D_FCH] = DA_FCH};
    float *d[MT_D_COUNT];
    for (int j = 0; j < MT_D_COUNT; j++)
        d[j] = dact(sh, da[j]);
    const float *resid = i ? lact(sh, slot, i - 1, LA_RES3) : mt_shard_input(sh, slot);
    struct sblock k;
    struct mt_block_ops ops = sblock_at(&k, sh, slot, i);
    mt_block_backward(&k.shape, sh->layer[i].w, sh->layer[i].g, k.act, resid, d, &ops);
}

void mt_shard_backward(struct mt_shard *sh, size_t slot, float dloss, mt_shard_ready_fn ready,
                       void *user)
{
    const struct mt_shard_spec *s = &sh->s;
    size_t N = s->B * s->T, C = sh->C, V = s->cfg.vocab, nl = s->l1 - s->l0;
    int *in = sh->tokens + (slot % s->slots) * 2 * N, *tg = in + N;
    float *dres = dact(sh, DA_RES), *dln = dact(sh, DA_LN);
    if (s->head) {
        float *lg = sact(sh, slot, SA_LOGITS);
        mt_k_crossentropy_bwd(lg, tg, dloss, N, V);
        mt_k_matmul_bwd(dln, sh->gwte, NULL, lg, sact(sh, slot, SA_LNF), sh->wte, N, C, V);
        memset(dres, 0, N * C * sizeof *dres);
        mt_k_layernorm_bwd(dres, sh->glnfw, sh->glnfb, dln, mt_shard_output(sh, slot), sh->lnfw,
                           sact(sh, slot, SA_LNFM), sact(sh, slot, SA_LNFR), N, C);
        if (ready) ready(user, sh->head_off, sh->n, sh->glnfw);
    }
    for (size_t i = nl; i-- > 0;) {
        if (s->grad_window) memset(sh->layer[i].g[MT_P_LN1W], 0, sh->layer_len * sizeof(float));
        load_layer(sh, i, -1);
        block_backward(sh, slot, i);
        if (ready) {
            size_t lo = sh->layer_off + i * sh->layer_len;
            ready(user, lo, lo + sh->layer_len, sh->layer[i].g[MT_P_LN1W]);
        }
    }
    if (s->embed) mt_k_encoder_bwd(sh->gwte, sh->gwpe, dres, in, s->B, s->T, C);
    if (ready && sh->layer_off) ready(user, 0, sh->layer_off, sh->grads);
}
