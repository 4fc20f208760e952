/* prune_model.c — pruning the reference GPT (see prune_model.h for the contracts).
 *
 * What it is for: calibration, mask selection, structured shrinking, packing and the
 * serving hook. What it is not for: the storage formats and kernels (sparse.c,
 * sparse_kernels.c) or the harness (prune_plugin.c).
 */
#include "prune_model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

#include "kernels.h"
#include "util.h"

static const char *const method_names[] = {"magnitude", "obd", "wanda",    "heads",
                                           "neurons",   "nm",  "sparsegpt"};
static const char *const kind_names[MT_PRUNE_KINDS] = {"qkv", "attproj", "fc", "fcproj"};
static const enum mt_gpt_param weight_param[MT_PRUNE_KINDS] = {MT_P_QKVW, MT_P_ATTPROJW, MT_P_FCW,
                                                               MT_P_FCPROJW};
static const enum mt_gpt_param bias_param[MT_PRUNE_KINDS] = {MT_P_QKVB, MT_P_ATTPROJB, MT_P_FCB,
                                                             MT_P_FCPROJB};

int mt_prune_method_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof(method_names) / sizeof(method_names[0])); i++)
        if (name && strcmp(name, method_names[i]) == 0) return i;
    return -1;
}

const char *mt_prune_method_name(enum mt_prune_method m)
{
    return (unsigned)m < sizeof(method_names) / sizeof(method_names[0]) ? method_names[m] : "?";
}

int mt_prune_needs(enum mt_prune_method m)
{
    switch (m) {
    case MT_PRUNE_OBD:
        return MT_PRUNE_NEED_FISHER;
    case MT_PRUNE_WANDA:
    case MT_PRUNE_HEADS:
    case MT_PRUNE_NEURONS:
        return MT_PRUNE_NEED_ACTS;
    case MT_PRUNE_SPARSEGPT:
        return MT_PRUNE_NEED_ACTS | MT_PRUNE_NEED_HESSIAN;
    default:
        return 0;
    }
}

void mt_prune_slot_name(size_t slot, char *buf, size_t len)
{
    snprintf(buf, len, "h%zu.%s", slot / MT_PRUNE_KINDS, kind_names[slot % MT_PRUNE_KINDS]);
}

static size_t n_slots_of(const struct mt_gpt *m)
{
    return m->cfg.n_layer * MT_PRUNE_KINDS;
}

/* Dense shape and weight pointer of slot s, from the weight slab (never NULL-based
 * arithmetic: callers only use this while the dense weights exist). */
static void slot_dims(const struct mt_gpt *m, size_t s, size_t *out_dim, size_t *in_dim)
{
    mt_prune_slot_dims(&m->cfg, s, out_dim, in_dim);
}

void mt_prune_slot_dims(const struct mt_gpt_config *cfg, size_t s, size_t *out_dim,
                        size_t *in_dim)
{
    size_t C = cfg->n_embd;
    static const size_t out_mul[MT_PRUNE_KINDS] = {3, 1, 4, 1};
    static const size_t in_mul[MT_PRUNE_KINDS] = {1, 1, 1, 4};
    *out_dim = out_mul[s % MT_PRUNE_KINDS] * C;
    *in_dim = in_mul[s % MT_PRUNE_KINDS] * C;
}

static float *slot_weight(const struct mt_gpt *m, size_t s)
{
    size_t o, i;
    slot_dims(m, s, &o, &i);
    return m->param[weight_param[s % MT_PRUNE_KINDS]] + (s / MT_PRUNE_KINDS) * o * i;
}

static float *slot_bias(const struct mt_gpt *m, size_t s)
{
    size_t o, i;
    slot_dims(m, s, &o, &i);
    return m->param[bias_param[s % MT_PRUNE_KINDS]] + (s / MT_PRUNE_KINDS) * o;
}

static float *slot_grad(const struct mt_gpt *m, size_t s, int bias)
{
    size_t o, i;
    slot_dims(m, s, &o, &i);
    size_t l = s / MT_PRUNE_KINDS, k = s % MT_PRUNE_KINDS;
    return bias ? m->grad[bias_param[k]] + l * o : m->grad[weight_param[k]] + l * o * i;
}

/* Allocates n_slots zeroed arrays of `elem` bytes times the slot's size (sizer picks
 * in_dim or out_dim*in_dim) under the given category. Returns NULL on failure. */
static void **alloc_slot_arrays(const struct mt_gpt *m, size_t elem, int whole_matrix, int cat)
{
    size_t n = n_slots_of(m);
    int prev = mt_memcat_set(cat);
    void **a = calloc(n, sizeof(*a));
    for (size_t s = 0; a && s < n; s++) {
        size_t o, i;
        slot_dims(m, s, &o, &i);
        a[s] = calloc(whole_matrix ? o * i : i, elem);
        if (!a[s]) {
            for (size_t t = 0; t < s; t++)
                free(a[t]);
            free(a);
            a = NULL;
        }
    }
    mt_memcat_set(prev);
    return a;
}

static void free_slot_arrays(void **a, size_t n)
{
    for (size_t s = 0; a && s < n; s++)
        free(a[s]);
    free(a);
}

/* Pruning's slots assume the GPT-2 MLP (fc 4C wide, GELU) and biases on every linear:
 * refuses SwiGLU, another ffn width and bias=off with a message naming them. */
static int check_block(const struct mt_gpt *m, char *err, size_t errlen)
{
    const struct mt_gpt_config *c = &m->cfg;
    if (c->mlp == MT_GPT_MLP_SWIGLU || mt_gpt_ffn(c) != 4 * c->n_embd || c->no_bias)
        return mt_tf_fail(err, errlen,
                          "pruning is implemented for the GPT-2 MLP and biased linears only; this "
                          "model has mlp=%s, ffn=%zu (4C = %zu), bias=%s",
                          c->mlp == MT_GPT_MLP_SWIGLU ? "swiglu" : "gelu", mt_gpt_ffn(c),
                          4 * c->n_embd, c->no_bias ? "off" : "on");
    return 0;
}

/* ---------------------------------------------------------------- calibration */

int mt_prune_calib_acts(struct mt_gpt *m, enum mt_prune_method method, const int *inputs,
                        size_t nbatch, size_t B, size_t T, struct mt_prune_calib *c, char *err,
                        size_t errlen)
{
    unsigned what = MT_CALIB_ACT_SQ;
    if (check_block(m, err, errlen)) return -1;
    if (mt_prune_needs(method) & MT_PRUNE_NEED_HESSIAN) what |= MT_CALIB_HESSIAN;
    c->n_slots = n_slots_of(m);
    return mt_calib_collect(m, inputs, nbatch * B, B, T, what, &c->acts, err, errlen);
}

int mt_prune_calib_fisher(struct mt_gpt *m, const int *inputs, const int *targets, size_t nbatch,
                          size_t B, size_t T, struct mt_prune_calib *c, char *err, size_t errlen)
{
    if (m->mode != MT_GPT_TRAIN)
        return mt_tf_fail(err, errlen, "Fisher calibration needs a model in train mode");
    if (check_block(m, err, errlen)) return -1;
    c->n_slots = n_slots_of(m);
    if (!c->fisher) {
        c->fisher = (float **)alloc_slot_arrays(m, sizeof(float), 1, MT_MEM_WORKSPACE);
        if (!c->fisher) return mt_tf_fail(err, errlen, "calibration: out of memory");
    }
    /* One gradient per sequence (B = 1 forwards): the empirical Fisher wants per-sample
     * gradients; a batch-mean gradient squared would shrink its noise part by B. */
    size_t nseq = nbatch * B;
    for (size_t q = 0; q < nseq; q++) {
        float loss;
        mt_gpt_zero_grad(m);
        if (mt_gpt_forward(m, inputs + q * T, targets + q * T, 1, T, &loss, err, errlen) ||
            mt_gpt_backward(m, 1.0f, 0, err, errlen))
            return -1;
        for (size_t s = 0; s < c->n_slots; s++) {
            size_t o, i;
            slot_dims(m, s, &o, &i);
            const float *g = slot_grad(m, s, 0);
            float *f = c->fisher[s];
            for (size_t j = 0; j < o * i; j++)
                f[j] += g[j] * g[j] / (float)nseq;
        }
    }
    c->batches += nbatch;
    mt_gpt_zero_grad(m);
    return 0;
}

void mt_prune_calib_free(struct mt_prune_calib *c)
{
    mt_calib_free(&c->acts);
    free_slot_arrays((void **)c->fisher, c->n_slots);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- masks */

/* Unstructured score of every weight of slot s into `score`. */
static void slot_scores(const struct mt_gpt *m, size_t s, enum mt_prune_method method,
                        const struct mt_prune_calib *c, float *score)
{
    size_t o, in;
    slot_dims(m, s, &o, &in);
    const float *w = slot_weight(m, s);
    for (size_t r = 0; r < o; r++)
        for (size_t j = 0; j < in; j++) {
            size_t i = r * in + j;
            switch (method) {
            case MT_PRUNE_OBD:
                score[i] = 0.5f * c->fisher[s][i] * w[i] * w[i];
                break;
            case MT_PRUNE_WANDA:
            case MT_PRUNE_HEADS:
            case MT_PRUNE_NEURONS:
                score[i] = fabsf(w[i]) * (float)sqrt(c->acts.act_sq[s][j]);
                break;
            default:
                score[i] = fabsf(w[i]);
                break;
            }
        }
}

struct unit_ref {
    double score;
    size_t layer, index;
};

static int unit_ref_cmp(const void *pa, const void *pb)
{
    const struct unit_ref *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Structured selection: units (heads or neurons) of every layer, scored by the summed
 * wanda score of the rows/columns they own. Prunes round(sparsity * units) per layer, or
 * over all layers when global, never the last unit of a layer. unit_keep[l][u] out. */
static int select_units(const struct mt_gpt *m, const struct mt_prune_opts *o,
                        const struct mt_prune_calib *c, uint8_t **unit_keep, size_t units,
                        char *err, size_t errlen)
{
    size_t L = m->cfg.n_layer, C = m->cfg.n_embd, hs = C / m->cfg.n_head;
    int heads = o->method == MT_PRUNE_HEADS;
    struct unit_ref *u = calloc(L * units, sizeof(*u));
    size_t max_o = 4 * C, max_i = 4 * C;
    float *score = malloc(max_o * C * sizeof(float));
    double *rows = calloc(max_o, sizeof(double)), *cols = calloc(max_i, sizeof(double));
    int rc = 0;
    if (!u || !score || !rows || !cols) {
        rc = mt_tf_fail(err, errlen, "structured selection: out of memory");
        goto out;
    }
    for (size_t l = 0; l < L; l++) {
        /* the producing matrix owns output rows, the consuming one input columns */
        size_t sp = l * MT_PRUNE_KINDS + (heads ? MT_LIN_QKV : MT_LIN_FC);
        size_t sc = l * MT_PRUNE_KINDS + (heads ? MT_LIN_ATTPROJ : MT_LIN_FCPROJ);
        size_t po, pi, co, ci;
        slot_dims(m, sp, &po, &pi);
        slot_dims(m, sc, &co, &ci);
        memset(rows, 0, po * sizeof(double));
        memset(cols, 0, ci * sizeof(double));
        slot_scores(m, sp, o->method, c, score);
        mt_sparse_sum_rows(score, po, pi, rows);
        slot_scores(m, sc, o->method, c, score);
        mt_sparse_sum_cols(score, co, ci, cols);
        for (size_t k = 0; k < units; k++) {
            double sum = 0.0;
            if (heads) {
                for (size_t part = 0; part < 3; part++) /* q, k, v rows of head k */
                    for (size_t d = 0; d < hs; d++)
                        sum += rows[part * C + k * hs + d];
                for (size_t d = 0; d < hs; d++)
                    sum += cols[k * hs + d];
            } else {
                sum = rows[k] + cols[k];
            }
            u[l * units + k] = (struct unit_ref){isnan(sum) ? INFINITY : sum, l, k};
        }
    }
    size_t groups = o->global ? 1 : L, per_group = o->global ? L * units : units;
    size_t *left = malloc(L * sizeof(size_t));
    if (!left) {
        rc = mt_tf_fail(err, errlen, "structured selection: out of memory");
        goto out;
    }
    for (size_t l = 0; l < L; l++) {
        left[l] = units;
        memset(unit_keep[l], 1, units);
    }
    for (size_t g = 0; g < groups; g++) {
        struct unit_ref *grp = u + g * per_group;
        qsort(grp, per_group, sizeof(*grp), unit_ref_cmp);
        size_t target = (size_t)llround(o->sparsity * (double)per_group), done = 0;
        for (size_t i = 0; i < per_group && done < target; i++) {
            if (left[grp[i].layer] <= 1) continue;
            unit_keep[grp[i].layer][grp[i].index] = 0;
            left[grp[i].layer]--;
            done++;
        }
    }
    free(left);
out:
    free(u);
    free(score);
    free(rows);
    free(cols);
    return rc;
}

static int structured_masks(const struct mt_gpt *m, const struct mt_prune_opts *o,
                            const struct mt_prune_calib *c, struct mt_prune_masks *k, char *err,
                            size_t errlen)
{
    size_t L = m->cfg.n_layer, C = m->cfg.n_embd, NH = m->cfg.n_head, hs = C / NH;
    int heads = o->method == MT_PRUNE_HEADS;
    size_t units = heads ? NH : 4 * C;
    if (heads && mt_gpt_kv_dim(&m->cfg) != C) /* q, k, v rows of a head assume 3 x C */
        return mt_tf_fail(err, errlen,
                          "head pruning needs n_kv_head = n_head (grouped-query "
                          "heads share their keys and values)");
    uint8_t **unit_keep = calloc(L, sizeof(*unit_keep));
    int rc = unit_keep ? 0 : -1;
    for (size_t l = 0; rc == 0 && l < L; l++)
        if (!(unit_keep[l] = malloc(units))) rc = -1;
    if (rc == 0)
        rc = select_units(m, o, c, unit_keep, units, err, errlen);
    else
        mt_tf_fail(err, errlen, "structured selection: out of memory");
    for (size_t l = 0; rc == 0 && l < L; l++) {
        size_t sp = l * MT_PRUNE_KINDS + (heads ? MT_LIN_QKV : MT_LIN_FC);
        size_t sc = l * MT_PRUNE_KINDS + (heads ? MT_LIN_ATTPROJ : MT_LIN_FCPROJ);
        size_t po, pi, co, ci;
        slot_dims(m, sp, &po, &pi);
        slot_dims(m, sc, &co, &ci);
        k->row_keep[sp] = malloc(po);
        k->col_keep[sc] = malloc(ci);
        if (!k->row_keep[sp] || !k->col_keep[sc]) {
            rc = mt_tf_fail(err, errlen, "structured selection: out of memory");
            break;
        }
        for (size_t r = 0; r < po; r++) /* qkv row r belongs to head (r % C) / hs */
            k->row_keep[sp][r] = unit_keep[l][heads ? (r % C) / hs : r];
        for (size_t j = 0; j < ci; j++)
            k->col_keep[sc][j] = unit_keep[l][heads ? j / hs : j];
        for (size_t r = 0; r < po; r++)
            memset(k->keep[sp] + r * pi, k->row_keep[sp][r], pi);
        for (size_t r = 0; r < co; r++)
            memcpy(k->keep[sc] + r * ci, k->col_keep[sc], ci);
    }
    for (size_t l = 0; unit_keep && l < L; l++)
        free(unit_keep[l]);
    free(unit_keep);
    return rc;
}

/* Allocates all-keep masks for m after checking that c holds what o's method needs. */
static int masks_alloc(const struct mt_gpt *m, const struct mt_prune_opts *o,
                       const struct mt_prune_calib *c, struct mt_prune_masks *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (check_block(m, err, errlen)) return -1;
    int need = mt_prune_needs(o->method);
    if (((need & MT_PRUNE_NEED_ACTS) && (!c || !c->acts.act_sq)) ||
        ((need & MT_PRUNE_NEED_FISHER) && (!c || !c->fisher)) ||
        ((need & MT_PRUNE_NEED_HESSIAN) && (!c || !c->acts.gram)))
        return mt_tf_fail(err, errlen, "method %s needs calibration statistics (calib_batches > 0)",
                          mt_prune_method_name(o->method));
    size_t n = n_slots_of(m);
    out->n_slots = n;
    out->keep = (uint8_t **)alloc_slot_arrays(m, 1, 1, MT_MEM_WORKSPACE);
    out->row_keep = calloc(n, sizeof(uint8_t *));
    out->col_keep = calloc(n, sizeof(uint8_t *));
    if (!out->keep || !out->row_keep || !out->col_keep) {
        mt_prune_masks_free(out);
        return mt_tf_fail(err, errlen, "masks: out of memory");
    }
    for (size_t s = 0; s < n; s++) {
        size_t o_dim, i_dim;
        slot_dims(m, s, &o_dim, &i_dim);
        memset(out->keep[s], 1, o_dim * i_dim);
    }
    return 0;
}

int mt_prune_select_masks(const struct mt_gpt *m, const struct mt_prune_opts *o,
                          const struct mt_prune_calib *c, struct mt_prune_masks *out, char *err,
                          size_t errlen)
{
    if (o->method == MT_PRUNE_SPARSEGPT)
        return mt_tf_fail(err, errlen, "sparsegpt changes the weights: mt_prune_sparsegpt");
    if (masks_alloc(m, o, c, out, err, errlen)) return -1;
    size_t n = out->n_slots;
    if (o->method == MT_PRUNE_HEADS || o->method == MT_PRUNE_NEURONS) {
        if (structured_masks(m, o, c, out, err, errlen)) {
            mt_prune_masks_free(out);
            return -1;
        }
        return 0;
    }
    float **scores = (float **)alloc_slot_arrays(m, sizeof(float), 1, MT_MEM_WORKSPACE);
    if (!scores) {
        mt_prune_masks_free(out);
        return mt_tf_fail(err, errlen, "masks: out of memory for scores");
    }
    int rc = 0;
    size_t *counts = malloc(n * sizeof(size_t));
    for (size_t s = 0; s < n; s++) {
        size_t o_dim, i_dim;
        slot_dims(m, s, &o_dim, &i_dim);
        slot_scores(m, s, o->method, c, scores[s]);
        if (counts) counts[s] = o_dim * i_dim;
        if (o->method == MT_PRUNE_NM) {
            if (mt_sparse_select_nm(scores[s], o_dim, i_dim, o->n, o->m, out->keep[s])) {
                rc = mt_tf_fail(err, errlen, "%u:%u does not fit a %zux%zu layer", o->n, o->m,
                                o_dim, i_dim);
                break;
            }
        } else if (!o->global) {
            enum mt_sparse_scope sc =
                o->method == MT_PRUNE_WANDA ? MT_SPARSE_SCOPE_ROW : MT_SPARSE_SCOPE_LAYER;
            if (mt_sparse_select(scores[s], o_dim, i_dim, o->sparsity, sc, out->keep[s]) ==
                (size_t)-1) {
                rc = mt_tf_fail(err, errlen, "masks: out of memory");
                break;
            }
        }
    }
    if (rc == 0 && o->global && o->method != MT_PRUNE_NM) {
        if (!counts || mt_sparse_select_global((const float *const *)scores, counts, n, o->sparsity,
                                               out->keep) == (size_t)-1)
            rc = mt_tf_fail(err, errlen, "masks: out of memory");
    }
    free(counts);
    free_slot_arrays((void **)scores, n);
    if (rc) mt_prune_masks_free(out);
    return rc;
}

int mt_prune_sparsegpt(struct mt_gpt *m, const struct mt_prune_opts *o,
                       const struct mt_prune_calib *c, struct mt_prune_masks *out, char *err,
                       size_t errlen)
{
    if (o->method != MT_PRUNE_SPARSEGPT || o->global)
        return mt_tf_fail(err, errlen,
                          "mt_prune_sparsegpt: method sparsegpt, per-layer scope only");
    if (masks_alloc(m, o, c, out, err, errlen)) return -1;
    int rc = 0;
    for (size_t s = 0; rc == 0 && s < out->n_slots; s++) {
        size_t o_dim, k;
        slot_dims(m, s, &o_dim, &k);
        int prev = mt_memcat_set(MT_MEM_WORKSPACE);
        float *u = malloc(k * k * sizeof *u);
        uint8_t *dead = malloc(k);
        mt_memcat_set(prev);
        char name[32], e[256];
        mt_prune_slot_name(s, name, sizeof name);
        if (!u || !dead)
            rc = mt_tf_fail(err, errlen, "%s: out of memory", name);
        else if (mt_calib_inverse_factor(c->acts.gram[s], k, NULL, MT_SPARSEGPT_DAMP, u, dead, e,
                                         sizeof e) ||
                 mt_prune_sparsegpt_matrix(slot_weight(m, s), o_dim, k, u, dead, o->sparsity, o->n,
                                           o->m, out->keep[s], e, sizeof e))
            rc = mt_tf_fail(err, errlen, "%s: %s", name, e);
        free(u);
        free(dead);
    }
    if (rc) mt_prune_masks_free(out);
    return rc;
}

void mt_prune_apply(struct mt_gpt *m, const struct mt_prune_masks *k)
{
    for (size_t s = 0; s < k->n_slots; s++) {
        size_t o, i;
        slot_dims(m, s, &o, &i);
        mt_sparse_apply_mask(slot_weight(m, s), k->keep[s], o * i);
        if (m->grads) mt_sparse_apply_mask(slot_grad(m, s, 0), k->keep[s], o * i);
        if (k->row_keep[s]) {
            mt_sparse_apply_mask(slot_bias(m, s), k->row_keep[s], o);
            if (m->grads) mt_sparse_apply_mask(slot_grad(m, s, 1), k->row_keep[s], o);
        }
    }
}

void mt_prune_masks_free(struct mt_prune_masks *k)
{
    free_slot_arrays((void **)k->keep, k->n_slots);
    free_slot_arrays((void **)k->row_keep, k->n_slots);
    free_slot_arrays((void **)k->col_keep, k->n_slots);
    memset(k, 0, sizeof(*k));
}

/* ---------------------------------------------------------------- packing */

/* Indices of the set entries of keep[n] (NULL keep: none built); returns the count. */
static uint32_t *kept_indices(const uint8_t *keep, size_t n, size_t *count)
{
    *count = n;
    if (!keep) return NULL;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += keep[i] != 0;
    uint32_t *idx = malloc((c ? c : 1) * sizeof(*idx));
    if (!idx) return NULL;
    for (size_t i = 0, j = 0; i < n; i++)
        if (keep[i]) idx[j++] = (uint32_t)i;
    *count = c;
    return idx;
}

/* The candidates `fastest` times on one layer: 1 per format, NM only when it fits. */
static size_t bench_candidates(unsigned nn, int cand[MT_SPARSE_FORMAT_COUNT])
{
    size_t c = 0;
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
        cand[f] = f != MT_SPARSE_NM || nn > 0;
        c += (size_t)cand[f];
    }
    return c;
}

/* Times every candidate format of one compact matrix; fills lin->bench_ns and returns
 * the fastest by mt_prune_pick_fastest, or -1 with a message. */
static int fastest_format(struct mt_pruned_linear *lin, const float *w, unsigned nn, unsigned mg,
                          double share_s, unsigned reps, char *err, size_t errlen)
{
    int cand[MT_SPARSE_FORMAT_COUNT];
    size_t bytes[MT_SPARSE_FORMAT_COUNT] = {0};
    bench_candidates(nn, cand);
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
        if (!cand[f]) continue;
        struct mt_sparse tmp;
        if (mt_sparse_pack(&tmp, (enum mt_sparse_format)f, w, lin->n_out, lin->n_in, nn, mg, err,
                           errlen))
            return -1;
        bytes[f] = mt_sparse_bytes(&tmp);
        int rc = mt_prune_bench_format(&tmp, 1, share_s, reps, &lin->bench_ns[f], err, errlen);
        mt_sparse_free(&tmp);
        if (rc) return -1;
    }
    return mt_prune_pick_fastest(lin->bench_ns, bytes, MT_PRUNE_BENCH_NOISE);
}

/* The format slot s is stored in per `so`, or -1 with a message. */
static int storage_format(struct mt_pruned *p, size_t s, const float *w, unsigned nn, unsigned mg,
                          const struct mt_prune_storage_opts *so, double share_s, char *err,
                          size_t errlen)
{
    struct mt_pruned_linear *lin = &p->lin[s];
    int forced = mt_prune_storage_format(so->storage);
    if (so->storage == MT_PRUNE_STORE_SMALLEST)
        return (int)mt_sparse_choose(w, lin->n_out, lin->n_in, nn, mg, NULL);
    if (so->storage == MT_PRUNE_STORE_FASTEST)
        return fastest_format(lin, w, nn, mg, share_s, so->reps ? so->reps : MT_PRUNE_BENCH_REPS,
                              err, errlen);
    if (forced == MT_SPARSE_NM && nn == 0) {
        char name[32];
        mt_prune_slot_name(s, name, sizeof(name));
        return mt_tf_fail(err, errlen,
                          "storage=nm needs an N:M mask (method=nm) whose M divides every layer's "
                          "inputs; layer %s (%zux%zu) has none",
                          name, lin->n_out, lin->n_in);
    }
    return forced;
}

int mt_pruned_build(struct mt_pruned *p, struct mt_gpt *m, const struct mt_prune_masks *k,
                    unsigned n, unsigned m_group, char *err, size_t errlen)
{
    return mt_pruned_build_storage(p, m, k, n, m_group, NULL, err, errlen);
}

int mt_pruned_build_storage(struct mt_pruned *p, struct mt_gpt *m, const struct mt_prune_masks *k,
                            unsigned n, unsigned m_group, const struct mt_prune_storage_opts *so,
                            char *err, size_t errlen)
{
    static const struct mt_prune_storage_opts smallest = {MT_PRUNE_STORE_SMALLEST, 0.0, 0};
    if (!so) so = &smallest;
    memset(p, 0, sizeof(*p));
    p->n_slots = n_slots_of(m);
    p->model = m;
    p->storage = so->storage;
    p->lin = calloc(p->n_slots, sizeof(*p->lin));
    if (!p->lin) return mt_tf_fail(err, errlen, "pack: out of memory");
    double share_s = 0.0;
    if (so->storage == MT_PRUNE_STORE_FASTEST) {
        size_t weights = 0, timed = 0;
        int cand[MT_SPARSE_FORMAT_COUNT];
        for (size_t s = 0; s < p->n_slots; s++) {
            size_t o, i;
            slot_dims(m, s, &o, &i);
            weights += o * i;
            timed += bench_candidates(n && m_group && i % m_group == 0 ? n : 0, cand);
        }
        double budget = so->budget_s > 0.0 ? so->budget_s : mt_prune_bench_budget(weights);
        share_s = budget / (double)(timed ? timed : 1);
    }
    for (size_t s = 0; s < p->n_slots; s++) {
        struct mt_pruned_linear *lin = &p->lin[s];
        for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++)
            lin->bench_ns[f] = -1.0;
        slot_dims(m, s, &lin->full_out, &lin->full_in);
        const uint8_t *rk = k && k->row_keep ? k->row_keep[s] : NULL;
        const uint8_t *ck = k && k->col_keep ? k->col_keep[s] : NULL;
        int prev = mt_memcat_set(MT_MEM_WEIGHTS); /* the indices are part of the weights */
        lin->row_idx = kept_indices(rk, lin->full_out, &lin->n_out);
        lin->col_idx = kept_indices(ck, lin->full_in, &lin->n_in);
        mt_memcat_set(prev);
        if ((rk && !lin->row_idx) || (ck && !lin->col_idx)) {
            mt_pruned_free(p);
            return mt_tf_fail(err, errlen, "pack: out of memory");
        }
        lin->index_bytes = (rk ? lin->n_out : 0) * 4 + (ck ? lin->n_in : 0) * 4;
        const float *w = slot_weight(m, s);
        float *compact = malloc(lin->n_out * lin->n_in * sizeof(float));
        if (!compact) {
            mt_pruned_free(p);
            return mt_tf_fail(err, errlen, "pack: out of memory");
        }
        for (size_t r = 0; r < lin->n_out; r++) {
            size_t src_r = lin->row_idx ? lin->row_idx[r] : r;
            for (size_t j = 0; j < lin->n_in; j++)
                compact[r * lin->n_in + j] =
                    w[src_r * lin->full_in + (lin->col_idx ? lin->col_idx[j] : j)];
        }
        unsigned nn = n && m_group && lin->n_in % m_group == 0 ? n : 0;
        int f = storage_format(p, s, compact, nn, m_group, so, share_s, err, errlen);
        int rc = f < 0 ? -1
                       : mt_sparse_pack(&lin->w, (enum mt_sparse_format)f, compact, lin->n_out,
                                        lin->n_in, nn, m_group, err, errlen);
        free(compact);
        if (rc) {
            mt_pruned_free(p);
            return -1;
        }
    }
    return 0;
}

static float *grow(float **buf, size_t *len, size_t need)
{
    if (*len >= need) return *buf;
    size_t bytes = (need * sizeof(float) + 63) / 64 * 64;
    free(*buf); /* contents need not survive: free first so the peak is one buffer */
    *len = 0;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    *buf = aligned_alloc(64, bytes);
    mt_memcat_set(prev);
    if (*buf) *len = bytes / sizeof(float);
    return *buf;
}

/* The serving multiply of one packed layer, counted by the path that ran (p->impl). */
static int packed_matmul(struct mt_pruned *p, const struct mt_pruned_linear *lin, const float *x,
                         size_t rows, const float *bias, float *y)
{
    if (lin->w.format == MT_SPARSE_DENSE) {
        p->dense_calls++;
        return mt_prune_storage_matmul(&lin->w, x, rows, bias, y);
    }
    enum mt_sparse_path path;
    int fb;
    int rc = mt_sparse_matmul_ex(&lin->w, x, rows, bias, y, p->impl, &path, &fb);
    p->path_calls[path]++;
    p->fallbacks += (size_t)fb;
    return rc;
}

static void note_scratch(struct mt_pruned *p, const struct mt_pruned_linear *lin, size_t rows)
{
    if (lin->w.format == MT_SPARSE_DENSE) return;
    size_t b = mt_sparse_matmul_scratch(&lin->w, rows, p->impl, (size_t)omp_get_max_threads());
    if (b > p->kernel_scratch_peak) p->kernel_scratch_peak = b;
}

int mt_pruned_matmul(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                     size_t rows)
{
    struct mt_pruned *p = user;
    if (which >= MT_PRUNE_KINDS)
        return mt_gpt_linear_default(p->model, layer, which, in, out, rows);
    size_t s = layer * MT_PRUNE_KINDS + which;
    const struct mt_pruned_linear *lin = &p->lin[s];
    const float *bias = slot_bias(p->model, s);
    const float *x = in;
    note_scratch(p, lin, rows);
    if (lin->col_idx) {
        float *g = grow(&p->ws_in, &p->ws_in_len, rows * lin->n_in);
        if (!g) return -1;
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < lin->n_in; j++)
                g[r * lin->n_in + j] = in[r * lin->full_in + lin->col_idx[j]];
        x = g;
    }
    if (!lin->row_idx) return packed_matmul(p, lin, x, rows, bias, out);
    float *y = grow(&p->ws_out, &p->ws_out_len, rows * lin->n_out);
    if (!y || packed_matmul(p, lin, x, rows, NULL, y)) return -1;
    memset(out, 0, rows * lin->full_out * sizeof(float));
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < lin->n_out; j++)
            out[r * lin->full_out + lin->row_idx[j]] =
                y[r * lin->n_out + j] + bias[lin->row_idx[j]];
    return 0;
}

void mt_pruned_dropped(unsigned char drop[MT_P_COUNT])
{
    memset(drop, 0, MT_P_COUNT);
    for (int k = 0; k < MT_PRUNE_KINDS; k++)
        drop[weight_param[k]] = 1;
}

int mt_pruned_slim_model(struct mt_gpt *m, char *err, size_t errlen)
{
    unsigned char drop[MT_P_COUNT];
    mt_pruned_dropped(drop);
    char e[256];
    if (mt_gpt_drop_weights(m, drop, e, sizeof e)) return mt_tf_fail(err, errlen, "slim: %s", e);
    return 0;
}

size_t mt_pruned_workspace_bytes(const struct mt_pruned *p)
{
    return (p->ws_in_len + p->ws_out_len) * sizeof(float);
}

size_t mt_pruned_bytes(const struct mt_pruned *p)
{
    size_t b = 0;
    for (size_t s = 0; s < p->n_slots; s++)
        b += mt_sparse_bytes(&p->lin[s].w) + p->lin[s].index_bytes;
    return b;
}

size_t mt_pruned_slot_weights(const struct mt_pruned *p, size_t s)
{
    return p->lin[s].full_out * p->lin[s].full_in;
}

size_t mt_pruned_slot_zeros(const struct mt_pruned *p, size_t s)
{
    return mt_pruned_slot_weights(p, s) - p->lin[s].w.nnz;
}

void mt_pruned_free(struct mt_pruned *p)
{
    for (size_t s = 0; p->lin && s < p->n_slots; s++) {
        mt_sparse_free(&p->lin[s].w);
        free(p->lin[s].row_idx);
        free(p->lin[s].col_idx);
    }
    free(p->lin);
    free(p->ws_in);
    free(p->ws_out);
    memset(p, 0, sizeof(*p));
}

/* Non-zeros a per-layer unstructured or N:M selection keeps in an [o x i] slot, as
 * mt_prune_select_masks and mt_prune_sparsegpt_matrix choose them (per layer, per row for
 * wanda, per block of MT_SPARSEGPT_BLOCK columns for sparsegpt, n of every m for N:M). */
static size_t planned_nnz(const struct mt_prune_opts *o, size_t rows, size_t cols)
{
    if (o->n) return rows * (cols / o->m) * o->n;
    if (o->method == MT_PRUNE_WANDA)
        return rows * (cols - mt_sparse_prune_count(o->sparsity, cols));
    if (o->method != MT_PRUNE_SPARSEGPT)
        return rows * cols - mt_sparse_prune_count(o->sparsity, rows * cols);
    size_t kept = 0;
    for (size_t b0 = 0; b0 < cols; b0 += MT_SPARSEGPT_BLOCK) {
        size_t nb = b0 + MT_SPARSEGPT_BLOCK < cols ? MT_SPARSEGPT_BLOCK : cols - b0;
        kept += rows * nb - mt_sparse_prune_count(o->sparsity, rows * nb);
    }
    return kept;
}

int mt_pruned_plan_bytes(const struct mt_gpt_config *cfg, const struct mt_prune_opts *o,
                         enum mt_prune_storage storage, size_t *bytes, char *err, size_t errlen)
{
    *bytes = 0;
    if (o->global)
        return mt_tf_fail(err, errlen, "plan: scope=global spreads the sparsity over the layers "
                                       "by the trained weights (unknown before the run)");
    int heads = o->method == MT_PRUNE_HEADS, units_of = heads || o->method == MT_PRUNE_NEURONS;
    size_t C = cfg->n_embd, hs = C / cfg->n_head, units = heads ? cfg->n_head : 4 * C, kept = 0;
    if (heads && mt_gpt_kv_dim(cfg) != C)
        return mt_tf_fail(err, errlen, "head pruning needs n_kv_head = n_head");
    if (units_of) { /* select_units: round(sparsity x units) per layer, never the last */
        size_t pruned = mt_sparse_prune_count(o->sparsity, units);
        kept = units - (pruned < units ? pruned : units - 1);
    }
    if (storage == MT_PRUNE_STORE_FASTEST)
        return mt_tf_fail(err, errlen, "plan: storage=fastest picks formats by measured speed "
                                       "(unknown before the run)");
    int forced = mt_prune_storage_format(storage);
    for (size_t s = 0; s < cfg->n_layer * MT_PRUNE_KINDS; s++) {
        size_t rows, cols, b;
        mt_prune_slot_dims(cfg, s, &rows, &cols);
        unsigned nn = o->n && cols % o->m == 0 ? o->n : 0;
        if (o->n && !nn)
            return mt_tf_fail(err, errlen, "plan: N:M %u:%u does not divide %zu inputs", o->n,
                              o->m, cols);
        size_t nnz = planned_nnz(o, rows, cols), index = 0, kind = s % MT_PRUNE_KINDS;
        if (units_of && kind == (heads ? MT_LIN_QKV : MT_LIN_FC)) { /* owns the units' rows */
            rows = kept * (heads ? 3 * hs : 1);
            index = rows * 4, nnz = rows * cols;
        } else if (units_of && kind == (heads ? MT_LIN_ATTPROJ : MT_LIN_FCPROJ)) { /* columns */
            cols = kept * (heads ? hs : 1);
            index = cols * 4, nnz = rows * cols;
        } else if (units_of) {
            nnz = rows * cols;
        }
        if (forced < 0)
            mt_sparse_choose_nnz(rows, cols, nnz, nn, o->m, &b);
        else
            b = mt_sparse_layout_bytes((enum mt_sparse_format)forced, rows, cols, nnz, nn, o->m);
        *bytes += b + index; /* index: lin->index_bytes, the kept rows' or columns' */
    }
    return 0;
}
