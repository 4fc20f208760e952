/* lora.c — adapters, their hooks, merge, the plan and the loop engine (see lora.h).
 * What it is not for: reporting (lora_plugin.c), the NF4 format or its kernels (quantize).
 */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "kernels.h"
#include "qmodel.h"
#include "rng.h"

#define N_TARGETS 4 /* MT_LIN_QKV .. MT_LIN_FCPROJ */
#define ALIGN ((size_t)64)

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

int mt_lora_targets_parse(const char *list, unsigned *mask, char *err, size_t errlen)
{
    static const char *const names[N_TARGETS] = {"qkv", "proj", "fc", "fcproj"};
    char buf[128];
    *mask = 0;
    if (!list || !list[0] || strlen(list) >= sizeof buf)
        return fail(err, errlen, "targets: give a comma-separated list of qkv|proj|fc|fcproj");
    strcpy(buf, list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int hit = -1;
        for (int i = 0; i < N_TARGETS; i++)
            if (strcmp(t, names[i]) == 0) hit = i;
        if (strcmp(t, "all") == 0) {
            *mask |= (1u << N_TARGETS) - 1;
            continue;
        }
        if (hit < 0) {
            snprintf(err, errlen, "targets: '%s' is not one of qkv|proj|fc|fcproj|all", t);
            return -1;
        }
        *mask |= 1u << hit;
    }
    return *mask ? 0 : fail(err, errlen, "targets: empty list");
}

/* Shape (in, out) of block linear `which` of cfg. */
static void lin_shape(const struct mt_gpt_config *cfg, int which, size_t *din, size_t *dout)
{
    size_t C = cfg->n_embd;
    *din = which == MT_LIN_FCPROJ ? 4 * C : C;
    *dout = which == MT_LIN_QKV ? C + 2 * mt_gpt_kv_dim(cfg) : which == MT_LIN_FC ? 4 * C : C;
}

static size_t up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* The NF4 format of o: 4 bits, `nf4_group` columns per scale (double-quantized with
 * nf4_dq). The packing's own layout (qformat.h) sizes the plan, so it cannot drift from
 * what mt_qmodel_build allocates. */
static struct mt_qformat nf4_format(const struct mt_lora_opts *o)
{
    return (struct mt_qformat){.scheme = MT_QS_NF,
                               .bits = 4,
                               .gran = MT_QG_GROUP,
                               .group_size = o->nf4_group};
}

int mt_lora_plan(const struct mt_gpt_config *cfg, const struct mt_lora_opts *o, size_t B, size_t T,
                 struct mt_lora_plan *p, char *err, size_t errlen)
{
    size_t model[MT_MEM_CAT_COUNT];
    memset(p, 0, sizeof *p);
    if (!mt_gpt_memory(cfg, B, T, MT_GPT_FROZEN, model, err, errlen)) return -1;
    if (!o->rank || !o->targets || o->targets >> N_TARGETS)
        return fail(err, errlen, "lora: rank must be >= 1 and targets a non-empty set");
    size_t L = cfg->n_layer, per_layer = 0, max_in = 0, dq = 0;
    struct mt_qformat f = nf4_format(o);
    for (int t = 0; t < N_TARGETS; t++) {
        size_t din, dout;
        lin_shape(cfg, t, &din, &dout);
        if (din > max_in) max_in = din;
        if (o->nf4)
            p->nf4_bytes += L * (o->nf4_dq ? mt_qformat_bytes_dq(&f, dout, din)
                                           : mt_qformat_bytes(&f, dout, din));
        if (o->nf4 && o->nf4_dq && mt_qformat_scale_count(&f, dout, din) * sizeof(float) > dq)
            dq = mt_qformat_scale_count(&f, dout, din) * sizeof(float);
        if (!(o->targets & (1u << t))) continue;
        if (o->rank > (din < dout ? din : dout)) {
            snprintf(err, errlen, "lora: rank %zu exceeds min(in, out) = %zu of a target", o->rank,
                     din < dout ? din : dout);
            return -1;
        }
        per_layer += o->rank * (din + dout);
    }
    p->trainable = L * per_layer;
    p->base_weights = model[MT_MEM_WEIGHTS];
    if (o->nf4) { /* the slab rebuilt without the four block linears, plus the packing */
        static const int packed[] = {MT_P_QKVW, MT_P_ATTPROJW, MT_P_FCW, MT_P_FCPROJW};
        for (size_t i = 0; i < sizeof packed / sizeof packed[0]; i++) {
            size_t dims[3], n = 1, nd = mt_gpt_param_shape(cfg, packed[i], dims);
            for (size_t d = 0; d < nd; d++)
                n *= dims[d];
            p->base_weights -= up(n * sizeof(float), ALIGN);
        }
        p->base_weights += p->nf4_bytes;
    }
    p->adapter_weights = p->adapter_grads = p->trainable * sizeof(float);
    p->adapter_opt = 2 * p->adapter_weights;
    p->activations = model[MT_MEM_ACTIVATIONS] + model[MT_MEM_ACT_GRADS];
    p->workspace = model[MT_MEM_WORKSPACE] + 2 * o->max_rows * o->rank * sizeof(float) +
                   (o->nf4 ? MT_LORA_TILE * max_in * sizeof(float) : 0) + dq;
    p->data = 2 * B * T * sizeof(int);
    p->bytes[MT_MEM_WEIGHTS] = p->base_weights + p->adapter_weights;
    p->bytes[MT_MEM_GRADIENTS] = p->adapter_grads;
    p->bytes[MT_MEM_OPTIMIZER] = p->adapter_opt;
    p->bytes[MT_MEM_ACTIVATIONS] = model[MT_MEM_ACTIVATIONS];
    p->bytes[MT_MEM_ACT_GRADS] = model[MT_MEM_ACT_GRADS];
    p->bytes[MT_MEM_WORKSPACE] = p->workspace;
    p->bytes[MT_MEM_DATA] = p->data;
    return 0;
}

/* Row-major C = alpha op(A) op(B) + beta C (oneDNN; its packing buffers are workspace). */
static void gemm(char ta, char tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    dnnl_sgemm(ta, tb, (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha, A, (dnnl_dim_t)lda, B,
               (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    mt_memcat_set(prev);
}

float *mt_lora_adapter(const struct mt_lora *lr, size_t layer, enum mt_linear which, float **bm,
                       size_t *din, size_t *dout)
{
    size_t i, o;
    if ((int)which >= N_TARGETS || layer >= lr->m->cfg.n_layer) return NULL;
    lin_shape(&lr->m->cfg, (int)which, &i, &o);
    if (din) *din = i;
    if (dout) *dout = o;
    size_t off = lr->off[N_TARGETS * layer + (size_t)which];
    if (off == SIZE_MAX) return NULL;
    if (bm) *bm = lr->params + off + lr->o.rank * i;
    return lr->params + off;
}

static int hook_fail(struct mt_lora *lr, const char *msg, size_t rows)
{
    snprintf(lr->err, sizeof lr->err, "%s (%zu rows, at most %zu)", msg, rows, lr->o.max_rows);
    return -1;
}

/* Forward: the base (packed or fp32), then out += scale (in A^T) B^T. */
static int lora_fwd(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                    size_t rows)
{
    struct mt_lora *lr = user;
    int rc = lr->base_hook.matmul
                 ? lr->base_hook.matmul(lr->base_hook.user, layer, which, in, out, rows)
                 : mt_gpt_linear_default(lr->m, layer, which, in, out, rows);
    float *bm;
    size_t din, dout, r = lr->o.rank;
    const float *a = mt_lora_adapter(lr, layer, which, &bm, &din, &dout);
    if (rc || lr->merged || !a) return rc;
    if (rows > lr->o.max_rows) return hook_fail(lr, "lora forward: too many rows", rows);
    mt_k_matmul_fwd(lr->u, in, a, NULL, rows, din, r);
    gemm('N', 'T', rows, dout, r, lr->scale, lr->u, r, bm, r, 1.0f, out, dout);
    return 0;
}

/* din = dout W with W the NF4 rows decoded MT_LORA_TILE at a time into lr->tile. */
static void nf4_din(struct mt_lora *lr, size_t layer, enum mt_linear which, const float *dout,
                    float *din, size_t rows)
{
    const struct mt_qtensor *q = lr->qm->layers[N_TARGETS * layer + (size_t)which].q;
    size_t n = q->n, k = q->k;
    for (size_t n0 = 0; n0 < n; n0 += MT_LORA_TILE) {
        size_t t = n - n0 < MT_LORA_TILE ? n - n0 : MT_LORA_TILE;
#pragma omp parallel for schedule(static) if (t * k >= 16384)
        for (size_t i = 0; i < t; i++)
            mt_qtensor_row(q, n0 + i, lr->tile + i * k);
        gemm('N', 'N', rows, k, t, 1.0f, dout + n0, n, lr->tile, k, n0 ? 1.0f : 0.0f, din, k);
    }
}

/* Backward: din through the frozen W, then the adapter path: u = in A^T,
 * dB += s dout^T u, du = s dout B, dA += du^T in, din += du A. */
static int lora_bwd(void *user, size_t layer, enum mt_linear which, const float *dout,
                    const float *in, float *din, size_t rows)
{
    struct mt_lora *lr = user;
    if (lr->qm && (int)which < N_TARGETS)
        nf4_din(lr, layer, which, dout, din, rows);
    else if (mt_gpt_linear_bwd_default(lr->m, layer, which, dout, in, din, rows))
        return -1;
    float *bm;
    size_t di, dou, r = lr->o.rank;
    const float *a = mt_lora_adapter(lr, layer, which, &bm, &di, &dou);
    if (lr->merged || !a) return 0;
    if (rows > lr->o.max_rows) return hook_fail(lr, "lora backward: too many rows", rows);
    float *ga = lr->grads + (a - lr->params), *gb = lr->grads + (bm - lr->params);
    float s = lr->scale;
    mt_k_matmul_fwd(lr->u, in, a, NULL, rows, di, r);
    gemm('T', 'N', dou, r, rows, s, dout, dou, lr->u, r, 1.0f, gb, r);
    gemm('N', 'N', rows, r, dou, s, dout, dou, bm, r, 0.0f, lr->du, r);
    gemm('T', 'N', r, di, rows, 1.0f, lr->du, r, in, di, 1.0f, ga, di);
    gemm('N', 'N', rows, di, r, 1.0f, lr->du, r, a, di, 1.0f, din, di);
    return 0;
}

/* Allocates n bytes zeroed under category cat and reports them as `name`. */
static void *cat_alloc(size_t n, int cat, const char *name)
{
    if (!n) return NULL;
    int prev = mt_memcat_set(cat);
    void *p = calloc(1, n);
    mt_memcat_set(prev);
    if (p) mt_memcat_report(p, n, cat, name);
    return p;
}

int mt_lora_attach(struct mt_lora **out, struct mt_gpt *m, const struct mt_lora_opts *o, char *err,
                   size_t errlen)
{
    struct mt_lora_plan p;
    *out = NULL;
    if (mt_lora_plan(&m->cfg, o, m->B ? m->B : 1, m->T ? m->T : 1, &p, err, errlen)) return -1;
    if (m->grads) return fail(err, errlen, "lora: the model has gradients (use MT_GPT_FROZEN)");
    struct mt_lora *lr = calloc(1, sizeof *lr);
    size_t L = m->cfg.n_layer, r = o->rank, max_in = 4 * m->cfg.n_embd;
    if (!lr) return fail(err, errlen, "lora: out of memory");
    lr->m = m;
    lr->o = *o;
    lr->scale = o->alpha / (float)o->rank;
    lr->n_params = p.trainable;
    lr->off = malloc(L * N_TARGETS * sizeof *lr->off);
    lr->params = cat_alloc(p.adapter_weights, MT_MEM_WEIGHTS, "lora.adapters");
    lr->grads = cat_alloc(p.adapter_grads, MT_MEM_GRADIENTS, "grad.lora.adapters");
    lr->opt = cat_alloc(p.adapter_opt, MT_MEM_OPTIMIZER, "lora.adam_mv");
    lr->u = cat_alloc(2 * o->max_rows * r * sizeof(float), MT_MEM_WORKSPACE, "lora.scratch");
    lr->du = lr->u ? lr->u + o->max_rows * r : NULL;
    if (o->nf4)
        lr->tile =
            cat_alloc(MT_LORA_TILE * max_in * sizeof(float), MT_MEM_WORKSPACE, "lora.nf4_tile");
    if (!lr->off || !lr->params || !lr->grads || !lr->opt || !lr->u || (o->nf4 && !lr->tile)) {
        mt_lora_free(lr);
        return fail(err, errlen, "lora: out of memory for the adapters");
    }
    struct mt_rng rng;
    mt_rng_seed(&rng, o->seed);
    size_t off = 0;
    for (size_t l = 0; l < L; l++)
        for (int t = 0; t < N_TARGETS; t++) {
            size_t din, dout;
            lin_shape(&m->cfg, t, &din, &dout);
            lr->off[N_TARGETS * l + (size_t)t] = o->targets & (1u << t) ? off : SIZE_MAX;
            if (!(o->targets & (1u << t))) continue;
            float sd = 1.0f / sqrtf((float)din); /* B stays zero: the model starts unchanged */
            for (size_t i = 0; i < r * din; i += 2) {
                double z[2];
                mt_rng_normal2(&rng, z);
                lr->params[off + i] = (float)z[0] * sd;
                if (i + 1 < r * din) lr->params[off + i + 1] = (float)z[1] * sd;
            }
            off += r * (din + dout);
        }
    if (o->nf4) {
        struct mt_qmodel_opts qo = {
            .fmt = nf4_format(o), .act = MT_QACT_F32, .double_quant = o->nf4_dq};
        if (mt_qmodel_build(&lr->qm, m, &qo, err, errlen)) {
            mt_lora_free(lr);
            return -1;
        }
        lr->base_hook = m->hook;
    }
    m->hook = (struct mt_gpt_linear_hook){lora_fwd, lr};
    m->bwd_hook = (struct mt_gpt_linear_bwd_hook){lora_bwd, lr};
    *out = lr;
    return 0;
}

void mt_lora_free(struct mt_lora *lr)
{
    if (!lr) return;
    if (lr->m->hook.user == lr) lr->m->hook = lr->base_hook;
    if (lr->m->bwd_hook.user == lr) lr->m->bwd_hook = (struct mt_gpt_linear_bwd_hook){0};
    mt_qmodel_free(lr->qm);
    free(lr->off);
    free(lr->params);
    free(lr->grads);
    free(lr->opt);
    free(lr->u);
    free(lr->tile);
    free(lr);
}

void mt_lora_bytes(const struct mt_lora *lr, size_t bytes[MT_MEM_CAT_COUNT])
{
    size_t n = lr->n_params * sizeof(float);
    bytes[MT_MEM_WEIGHTS] += n + (lr->qm ? lr->qm->packed_bytes : 0);
    bytes[MT_MEM_GRADIENTS] += n;
    bytes[MT_MEM_OPTIMIZER] += 2 * n;
    bytes[MT_MEM_WORKSPACE] +=
        2 * lr->o.max_rows * lr->o.rank * sizeof(float) +
        (lr->tile ? MT_LORA_TILE * 4 * lr->m->cfg.n_embd * sizeof(float) : 0) +
        (lr->qm ? lr->qm->dq_scales_bytes : 0);
}

int mt_lora_merge(struct mt_lora *lr, int merge, char *err, size_t errlen)
{
    if (lr->qm)
        return fail(err, errlen,
                    "lora: an NF4 base is served unmerged (merging would "
                    "requantize it)");
    if (!!merge == lr->merged)
        return fail(err, errlen, merge ? "lora: already merged" : "lora: not merged");
    for (size_t l = 0; l < lr->m->cfg.n_layer; l++)
        for (int t = 0; t < N_TARGETS; t++) {
            float *bm, *w;
            size_t din, dout;
            const float *a = mt_lora_adapter(lr, l, (enum mt_linear)t, &bm, &din, &dout);
            if (!a) continue;
            mt_gpt_linear_weights(lr->m, l, (enum mt_linear)t, &w, NULL, NULL, NULL);
            gemm('N', 'N', dout, din, lr->o.rank, merge ? lr->scale : -lr->scale, bm, lr->o.rank, a,
                 din, 1.0f, w, din);
        }
    lr->merged = !!merge;
    return 0;
}

void mt_lora_linear_ref(float *out, const float *in, const float *w, const float *b, const float *a,
                        const float *bm, float scale, size_t rows, size_t din, size_t dout,
                        size_t rank)
{
    double *u = malloc(rank * sizeof *u);
    if (!u) return;
    for (size_t i = 0; i < rows; i++) {
        const float *x = in + i * din;
        for (size_t k = 0; k < rank; k++) {
            double acc = 0.0;
            for (size_t j = 0; j < din; j++)
                acc += (double)a[k * din + j] * x[j];
            u[k] = acc;
        }
        for (size_t o = 0; o < dout; o++) {
            double acc = b ? b[o] : 0.0, ad = 0.0;
            for (size_t j = 0; j < din; j++)
                acc += (double)w[o * din + j] * x[j];
            for (size_t k = 0; k < rank; k++)
                ad += (double)bm[o * rank + k] * u[k];
            out[i * dout + o] = (float)(acc + scale * ad);
        }
    }
    free(u);
}

/* ---------------------------------------------------------------- the loop's engine */

static int eng_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                       size_t errlen)
{
    struct mt_lora *lr = self;
    float l = 0.0f;
    int rc = mt_gpt_forward(lr->m, b->in, b->tg, b->rows, b->T, &l, err, errlen);
    if (rc && lr->err[0]) snprintf(err, errlen, "%s", lr->err);
    *loss = l;
    return rc;
}

static int eng_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                        size_t errlen)
{
    struct mt_lora *lr = self;
    int rc = mt_gpt_backward(lr->m, scale, b->tokens, err, errlen);
    if (rc && lr->err[0]) snprintf(err, errlen, "%s", lr->err);
    return rc;
}

static void eng_zero_grad(void *self)
{
    struct mt_lora *lr = self;
    memset(lr->grads, 0, lr->n_params * sizeof(float));
}

static int eng_update(void *self, const struct mt_gpt_recipe *r, float lrate, float scale)
{
    struct mt_lora *lr = self;
    float norm = mt_k_grad_norm(mt_k_sumsq(lr->grads, lr->n_params), scale);
    if (!isfinite(norm)) {
        eng_zero_grad(lr);
        return 1;
    }
    lr->step++;
    struct mt_adamw_args a;
    mt_gpt_adamw_args(&a, r, lrate, 1, norm, scale, lr->step);
    mt_k_adamw(lr->params, lr->grads, lr->opt, lr->opt + lr->n_params, lr->n_params, &a);
    return 0;
}

void mt_lora_engine(struct mt_loop_engine *e, struct mt_lora *lr)
{
    *e = (struct mt_loop_engine){.self = lr,
                                 .forward = eng_forward,
                                 .backward = eng_backward,
                                 .zero_grad = eng_zero_grad,
                                 .update = eng_update};
}
