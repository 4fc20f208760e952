/* qmodel.c — packing a reference GPT's linear layers and serving them through its hook.
 *
 * What it is for: see qmodel.h. What it is not for: reporting (quantize.c).
 */
#include "qmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memtrade/memcat.h>

static const char *const lin_names[MT_LIN_COUNT] = {"qkv", "attn_proj", "fc", "fc_proj", "lm_head"};
static const enum mt_gpt_param lin_bias[4] = {MT_P_QKVB, MT_P_ATTPROJB, MT_P_FCB, MT_P_FCPROJB};

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int qhook(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                 size_t rows)
{
    struct mt_qmodel *qm = user;
    if (which == MT_LIN_LMHEAD && !qm->opts.embedding)
        return mt_gpt_linear_default(qm->m, layer, which, in, out, rows);
    struct mt_qlayer *ql =
        &qm->layers[which == MT_LIN_LMHEAD ? qm->n_layers - 1 : 4 * layer + (size_t)which];
    enum mt_qimpl impl = qm->opts.impl;
    if (impl == MT_QIMPL_AUTO) {
        impl = mt_qgemm_pick(ql->q, rows, qm->opts.act);
        qm->scalar_fallbacks += impl == MT_QIMPL_SCALAR;
    }
    struct mt_qtensor view = *ql->q; /* double_quant: the scales decoded for the kernel */
    if (ql->q->scale_code) {
        mt_qtensor_scales(ql->q, qm->dq_scales);
        view.scale = qm->dq_scales;
    }
    if (mt_qgemm(qm->ws, &view, in, rows, out, qm->opts.act, impl, qm->hook_err,
                 sizeof qm->hook_err))
        return -1;
    qm->impl_calls[impl]++;
    if (ql->bias) {
        const float *b = ql->bias;
        size_t od = ql->out_dim;
#pragma omp parallel for schedule(static) if (rows * od >= 65536)
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < od; j++)
                out[r * od + j] += b[j];
    }
    return 0;
}

static void free_layers(struct mt_qmodel *qm)
{
    for (size_t i = 0; i < qm->n_layers; i++)
        mt_qtensor_free(qm->layers[i].q);
    free(qm->layers);
    qm->layers = NULL;
}

/* The embedding hook of a model whose tied embedding is packed: decodes the rows looked up
 * (the packed matrix is the LM head's, V x C). */
static int qembed(void *user, const int *tokens, size_t n, float *out)
{
    const struct mt_qmodel *qm = user;
    const struct mt_qlayer *head = &qm->layers[qm->n_layers - 1];
#pragma omp parallel for schedule(static) if (n * head->in_dim >= 65536)
    for (size_t i = 0; i < n; i++)
        mt_qtensor_row(head->q, (size_t)tokens[i], out + i * head->in_dim);
    return 0;
}

static const char *const method_names[MT_QM_COUNT] = {"rtn", "gptq",        "imatrix",
                                                      "awq", "smoothquant", "hqq"};

const char *mt_qmethod_name(enum mt_qmethod m)
{
    return (unsigned)m < MT_QM_COUNT ? method_names[m] : "?";
}

int mt_qmethod_parse(const char *name)
{
    for (int i = 0; i < MT_QM_COUNT; i++)
        if (name && !strcmp(name, method_names[i])) return i;
    return -1;
}

/* GPTQ's act-order: columns by descending Hessian diagonal (ties: lower index first). */
static void act_order(const float *gram, size_t k, size_t *perm)
{
    for (size_t i = 0; i < k; i++)
        perm[i] = i;
    for (size_t i = 1; i < k; i++) { /* insertion sort: stable, k is at most a few thousand */
        size_t p = perm[i], j = i;
        for (; j > 0 && gram[perm[j - 1] * k + perm[j - 1]] < gram[p * k + p]; j--)
            perm[j] = perm[j - 1];
        perm[j] = p;
    }
}

/* GPTQ on one block linear: the factor of its damped inverse Hessian, then the rounding. */
static struct mt_qtensor *pack_gptq(struct mt_qmodel *qm, const struct mt_qformat *f,
                                    const float *gram, const float *w, size_t n, size_t k, char *e,
                                    size_t elen)
{
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *u = malloc(k * k * sizeof *u);
    size_t *perm = qm->opts.act_order ? malloc(k * sizeof *perm) : NULL;
    uint8_t *dead = malloc(k);
    mt_memcat_set(prev);
    struct mt_qtensor *qt = NULL;
    double t0 = wall(), upd = 0.0;
    if (!u || !dead || (qm->opts.act_order && !perm)) {
        snprintf(e, elen, "GPTQ: out of memory");
    } else {
        if (perm) act_order(gram, k, perm);
        if (mt_calib_inverse_factor(gram, k, perm, qm->opts.damp, u, dead, e, elen) == 0) {
            qm->factor_seconds += wall() - t0;
            qt = mt_qtensor_pack_gptq(w, n, k, f, u, perm, dead, &upd, e, elen);
            qm->update_seconds += upd;
        }
    }
    free(u), free(perm), free(dead);
    return qt;
}

/* The mean squared activation of each input column (imatrix's importance, AWQ's rms^2);
 * NULL when out of memory. */
static float *mean_sq(const struct mt_qmodel *qm, const double *act_sq, size_t k)
{
    float *imp = malloc(k * sizeof *imp);
    for (size_t j = 0; imp && j < k; j++)
        imp[j] = (float)(act_sq[j] / (double)qm->opts.calib->tokens);
    return imp;
}

static struct mt_qtensor *pack_imatrix(struct mt_qmodel *qm, const struct mt_qformat *f,
                                       const double *act_sq, const float *w, size_t n, size_t k,
                                       char *e, size_t elen)
{
    float *imp = mean_sq(qm, act_sq, k);
    if (!imp) {
        snprintf(e, elen, "imatrix: out of memory");
        return NULL;
    }
    struct mt_qtensor *qt = mt_qtensor_pack_imatrix(w, n, k, f, imp, e, elen);
    free(imp);
    return qt;
}

int mt_qmodel_fold(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *s, char *err,
                   size_t errlen)
{
    size_t C = m->cfg.n_embd, KV = mt_gpt_kv_dim(&m->cfg), in, out, qin, qout;
    if (!m->param[MT_P_QKVW]) {
        snprintf(err, errlen, "fold: the model's linear weights are already packed");
        return -1;
    }
    if (which == MT_LIN_FCPROJ || which == MT_LIN_LMHEAD || (which == MT_LIN_ATTPROJ && KV != C)) {
        snprintf(err, errlen, "fold: no scale passes into the input of %s%s", lin_names[which],
                 which == MT_LIN_ATTPROJ ? " under grouped-query attention" : "");
        return -1;
    }
    float *w, *b, *qw, *qb;
    mt_gpt_linear_weights(m, layer, which, &w, &b, &in, &out);
    for (size_t r = 0; r < out; r++)
        for (size_t j = 0; j < in; j++)
            w[r * in + j] *= s[j];
    if (which == MT_LIN_ATTPROJ) { /* V rows (after q and k) and V bias */
        mt_gpt_linear_weights(m, layer, MT_LIN_QKV, &qw, &qb, &qin, &qout);
        for (size_t c = 0; c < C; c++) {
            for (size_t j = 0; j < qin; j++)
                qw[(C + KV + c) * qin + j] /= s[c];
            if (qb) qb[C + KV + c] /= s[c];
        }
        return 0;
    }
    float *g = m->param[which == MT_LIN_QKV ? MT_P_LN1W : MT_P_LN2W] + layer * C;
    float *gb = m->param[which == MT_LIN_QKV ? MT_P_LN1B : MT_P_LN2B]; /* NULL: RMSNorm */
    for (size_t j = 0; j < C; j++) {
        g[j] /= s[j];
        if (gb) gb[layer * C + j] /= s[j];
    }
    return 0;
}

/* AWQ or SmoothQuant on a block linear whose input takes a fold (else RTN): the scales,
 * folded into m (w becomes W diag s), then w packed (AWQ's search packs it already). */
static struct mt_qtensor *pack_scaled(struct mt_qmodel *qm, const struct mt_qformat *f,
                                      struct mt_qlayer *ql, size_t slot, float *w, char *e,
                                      size_t elen)
{
    const struct mt_calib *c = qm->opts.calib;
    size_t n = ql->out_dim, k = ql->in_dim;
    if (ql->which == MT_LIN_FCPROJ ||
        (ql->which == MT_LIN_ATTPROJ && mt_gpt_kv_dim(&qm->m->cfg) != qm->m->cfg.n_embd))
        return mt_qtensor_pack(w, n, k, f, e, elen);
    float *s = malloc(k * sizeof *s), *imp = NULL;
    struct mt_qtensor *qt = NULL;
    if (!s || (qm->opts.method == MT_QM_AWQ && !(imp = mean_sq(qm, c->act_sq[slot], k)))) {
        snprintf(e, elen, "%s: out of memory", mt_qmethod_name(qm->opts.method));
    } else if (qm->opts.method == MT_QM_AWQ) {
        qt = mt_qtensor_pack_awq(w, n, k, f, imp, c->gram[slot], s, NULL, e, elen);
        if (qt && mt_qmodel_fold(qm->m, ql->layer, ql->which, s, e, elen)) {
            mt_qtensor_free(qt);
            qt = NULL;
        }
    } else {
        mt_smoothquant_scales(w, n, k, c->act_max[slot], qm->opts.sq_alpha, s);
        if (mt_qmodel_fold(qm->m, ql->layer, ql->which, s, e, elen) == 0)
            qt = mt_qtensor_pack(w, n, k, f, e, elen);
    }
    free(s), free(imp);
    return qt;
}

static int pack_layer(struct mt_qmodel *qm, struct mt_qlayer *ql, float *w, char *err,
                      size_t errlen)
{
    char e[200];
    const struct mt_calib *c = qm->opts.calib;
    size_t slot = ql->layer * MT_CALIB_KINDS + (size_t)ql->which;
    enum mt_qmethod meth = qm->opts.method;
    struct mt_qformat f =
        ql->which == MT_LIN_LMHEAD ? qm->opts.fmt : mt_qmodel_layer_fmt(&qm->opts, slot);
    if (f.bits == 16 && qm->opts.fmt.bits != 16) meth = MT_QM_RTN; /* a layer kept 16-bit */
    if (meth == MT_QM_HQQ) /* calibration-free: the head too */
        ql->q = mt_qtensor_pack_hqq(w, ql->out_dim, ql->in_dim, &f, e, sizeof e);
    else if (qm->opts.double_quant)
        ql->q = mt_qtensor_pack_dq(w, ql->out_dim, ql->in_dim, &f, e, sizeof e);
    else if (ql->which == MT_LIN_LMHEAD || meth == MT_QM_RTN)
        ql->q = mt_qtensor_pack(w, ql->out_dim, ql->in_dim, &f, e, sizeof e);
    else if (meth == MT_QM_GPTQ)
        ql->q = pack_gptq(qm, &f, c->gram[slot], w, ql->out_dim, ql->in_dim, e, sizeof e);
    else if (meth == MT_QM_IMATRIX)
        ql->q = pack_imatrix(qm, &f, c->act_sq[slot], w, ql->out_dim, ql->in_dim, e, sizeof e);
    else
        ql->q = pack_scaled(qm, &f, ql, slot, w, e, sizeof e);
    if (!ql->q) {
        snprintf(err, errlen, "packing %s: %s", ql->name, e);
        return -1;
    }
    mt_qtensor_error(ql->q, w, &ql->mse, &ql->maxabs);
    qm->packed_bytes += mt_qtensor_bytes(ql->q);
    qm->packed_params += ql->out_dim * ql->in_dim;
    return 0;
}

struct mt_qformat mt_qmodel_layer_fmt(const struct mt_qmodel_opts *o, size_t i)
{
    struct mt_qformat f = o->fmt;
    if (!o->layer_bits || o->layer_bits[i] == f.bits) return f;
    f.bits = o->layer_bits[i];
    if (f.bits == 16)
        f.scheme = MT_QS_BF16;
    else if (f.scheme == MT_QS_FP16 || f.scheme == MT_QS_BF16)
        f.scheme = MT_QS_LINEAR_ASYM;
    return f;
}

int mt_qmodel_build(struct mt_qmodel **out, struct mt_gpt *m, const struct mt_qmodel_opts *o,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (mt_qformat_check(&o->fmt, err, errlen)) return -1;
    for (size_t i = 0; o->layer_bits && i < 4 * m->cfg.n_layer; i++) {
        struct mt_qformat f = mt_qmodel_layer_fmt(o, i);
        if (mt_qformat_check(&f, err, errlen)) return -1;
    }
    if (o->act == MT_QACT_INT8 && o->layer_bits) {
        snprintf(err, errlen, "per-tensor bit widths are weight-only (activations=none)");
        return -1;
    }
    if (o->act == MT_QACT_INT8 && o->fmt.scheme != MT_QS_LINEAR_ASYM &&
        o->fmt.scheme != MT_QS_LINEAR_SYM) {
        snprintf(err, errlen,
                 "activations=int8-dynamic needs scheme linear-asym or "
                 "linear-sym, not %s",
                 mt_qscheme_name(o->fmt.scheme));
        return -1;
    }
    if (!m->param[MT_P_QKVW]) {
        snprintf(err, errlen, "the model's linear weights are already packed");
        return -1;
    }
    if (o->embedding && m->cfg.untied) { /* the packed LM head serves the embedding rows */
        snprintf(err, errlen,
                 "embedding quantization packs the tied LM head; this model's head is "
                 "untied (tie=off)");
        return -1;
    }
    const struct mt_calib *c = o->calib;
    int need_gram = o->method == MT_QM_GPTQ || o->method == MT_QM_AWQ;
    int need_sq = o->method == MT_QM_IMATRIX || o->method == MT_QM_AWQ;
    int need_max = o->method == MT_QM_SMOOTHQUANT;
    if ((need_gram || need_sq || need_max) &&
        (!c || c->n_slots != m->cfg.n_layer * MT_CALIB_KINDS || (need_gram && !c->gram) ||
         (need_sq && !c->act_sq) || (need_max && !c->act_max) || !c->tokens)) {
        snprintf(err, errlen, "method %s needs calibration statistics of this model (%s%s%s)",
                 mt_qmethod_name(o->method), need_gram ? "Gram " : "", need_sq ? "act_sq " : "",
                 need_max ? "act_max" : "");
        return -1;
    }
    if (o->method == MT_QM_SMOOTHQUANT && o->act != MT_QACT_INT8) {
        snprintf(err, errlen, "method smoothquant is for int8 activations (W8A8)");
        return -1;
    }
    if (o->double_quant && o->method != MT_QM_RTN) {
        snprintf(err, errlen, "double-quantized scales are packed by rtn only, not %s",
                 mt_qmethod_name(o->method));
        return -1;
    }
    struct mt_qmodel *qm = calloc(1, sizeof *qm);
    size_t L = m->cfg.n_layer;
    if (!qm) goto oom;
    qm->m = m;
    qm->opts = *o;
    qm->n_layers = 4 * L + (o->embedding ? 1 : 0);
    qm->layers = calloc(qm->n_layers, sizeof *qm->layers);
    qm->ws = mt_qws_create();
    if (!qm->layers || !qm->ws) goto oom;
    double t0 = wall();
    for (size_t j = 0; j < qm->n_layers; j++) {
        /* AWQ/SmoothQuant: attn_proj before its block's qkv (they fold into qkv's V rows) */
        int fold = o->method == MT_QM_AWQ || o->method == MT_QM_SMOOTHQUANT;
        size_t i = fold && j < 4 * L && j % 4 < 2 ? j ^ 1 : j;
        struct mt_qlayer *ql = &qm->layers[i];
        ql->layer = i < 4 * L ? i / 4 : L;
        ql->which = i < 4 * L ? (enum mt_linear)(i % 4) : MT_LIN_LMHEAD;
        if (ql->which == MT_LIN_LMHEAD)
            snprintf(ql->name, sizeof ql->name, "%s", lin_names[MT_LIN_LMHEAD]);
        else
            snprintf(ql->name, sizeof ql->name, "h%zu.%s", ql->layer, lin_names[ql->which]);
        float *w, *b;
        mt_gpt_linear_weights(m, ql->layer, ql->which, &w, &b, &ql->in_dim, &ql->out_dim);
        if (pack_layer(qm, ql, w, err, errlen)) goto fail;
        char why[160]; /* a forced kernel that cannot run a layer fails here, not mid-serving */
        if (o->impl != MT_QIMPL_AUTO &&
            !mt_qimpl_available(o->impl, ql->q, o->act, why, sizeof why)) {
            snprintf(err, errlen, "kernel %s cannot serve %s: %s", mt_qimpl_name(o->impl), ql->name,
                     why);
            goto fail;
        }
    }
    for (size_t i = 0; o->double_quant && i < qm->n_layers; i++)
        if (qm->layers[i].q->n_scale * sizeof(float) > qm->dq_scales_bytes)
            qm->dq_scales_bytes = qm->layers[i].q->n_scale * sizeof(float);
    if (qm->dq_scales_bytes) {
        int prev = mt_memcat_set(MT_MEM_WORKSPACE);
        qm->dq_scales = malloc(qm->dq_scales_bytes);
        mt_memcat_set(prev);
        if (!qm->dq_scales) goto oom;
    }
    unsigned char drop[MT_P_COUNT] = {0};
    drop[MT_P_QKVW] = drop[MT_P_ATTPROJW] = drop[MT_P_FCW] = drop[MT_P_FCPROJW] = 1;
    drop[MT_P_WTE] = (unsigned char)(o->embedding != 0);
    if (mt_gpt_drop_weights(m, drop, err, errlen)) goto fail;
    qm->fp32_bytes = mt_gpt_weight_bytes(m);
    /* Past this point m has no fp32 linear weights: nothing below may fail. */
    for (size_t i = 0; i < 4 * L; i++) {
        struct mt_qlayer *ql = &qm->layers[i];
        const float *b = m->param[lin_bias[ql->which]]; /* NULL: bias=off */
        ql->bias = b ? b + ql->layer * ql->out_dim : NULL;
    }
    qm->pack_seconds = wall() - t0;
    m->hook.matmul = qhook;
    m->hook.user = qm;
    if (o->embedding) m->embed_hook = (struct mt_gpt_embed_hook){.rows = qembed, .user = qm};
    *out = qm;
    return 0;
oom:
    snprintf(err, errlen, "out of memory packing the model");
fail:
    if (qm) {
        free(qm->dq_scales);
        free_layers(qm);
        mt_qws_destroy(qm->ws);
        free(qm);
    }
    return -1;
}

void mt_qmodel_free(struct mt_qmodel *qm)
{
    if (!qm) return;
    if (qm->m->hook.user == qm) {
        qm->m->hook.matmul = NULL;
        qm->m->hook.user = NULL;
    }
    if (qm->m->embed_hook.user == qm) {
        qm->m->embed_hook.rows = NULL;
        qm->m->embed_hook.user = NULL;
    }
    free_layers(qm);
    free(qm->dq_scales);
    mt_qws_destroy(qm->ws);
    free(qm);
}

size_t mt_qmodel_bytes(const struct mt_qmodel *qm)
{
    return qm->packed_bytes + qm->fp32_bytes;
}

double mt_qmodel_bits_per_weight(const struct mt_qmodel *qm)
{
    return 8.0 * (double)qm->packed_bytes / (double)qm->packed_params;
}
