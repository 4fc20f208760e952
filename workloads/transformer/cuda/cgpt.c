/* cgpt.c — the reference model on an NVIDIA GPU (see cgpt.h): slabs in device memory,
 * the one block with the device kernel table, linears through cuBLAS. */
#include "cgpt.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "cflash.h"
#include "ckernels.h"
#include "cquant.h"
#include "util.h"

int mt_cuda_available(char *why, size_t n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count > 0) return 1;
    snprintf(why, n, "no CUDA device (%s)",
             e == cudaSuccess ? "the driver lists none" : cudaGetErrorString(e));
    (void)cudaGetLastError();
    return 0;
}

static int cuda_fail(cudaError_t e, const char *what, char *err, size_t errlen)
{
    return mt_tf_fail(err, errlen, "CUDA: %s: %s", what, cudaGetErrorString(e));
}

/* Waits for the device and reports the first error of the queued work. */
static int sync_check(const char *what, char *err, size_t errlen)
{
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    return e == cudaSuccess ? 0 : cuda_fail(e, what, err, errlen);
}

#define BLAS_WORKSPACE MT_CUDA_BLAS_WORKSPACE
#define linear_widths mt_cuda_linear_widths
#define vocab_ld mt_cuda_vocab_ld
#define stage_out_bytes mt_cuda_stage_out_bytes
#define head16_bytes mt_cuda_head16_bytes

/* cudaMalloc under memory category cat (the device interposer reads the thread's tag). */
static void *dev_alloc(size_t bytes, int cat)
{
    void *p = NULL;
    if (!bytes) return NULL;
    int prev = mt_memcat_set(cat);
    cudaError_t e = cudaMalloc(&p, bytes);
    mt_memcat_set(prev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    cudaMemset(p, 0, bytes);
    return p;
}

void mt_cuda_gpt_free(struct mt_cuda_gpt *d)
{
    if (!d) return;
    if (d->blas) cublasDestroy((cublasHandle_t)d->blas);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        cudaFree(d->slab[c]);
    cudaFree(d->wbf16);
    cudaFree(d->head16);
    cudaFree(d->stage_in);
    cudaFree(d->stage_out);
    cudaFree(d->blas_work);
    cudaFree(d->acc);
    mt_cuda_gpt_quantize(d, NULL, NULL, NULL, 0);
    free(d->losses);
    free(d);
}

int mt_cuda_gpt_create(struct mt_cuda_gpt **out, const struct mt_gpt_config *cfg,
                       enum mt_gpt_mode mode, size_t B, size_t T, enum mt_cuda_precision prec,
                       char *err, size_t errlen)
{
    return mt_cuda_gpt_create_every(out, cfg, mode, B, T, prec, 1, err, errlen);
}

int mt_cuda_gpt_create_every(struct mt_cuda_gpt **out, const struct mt_gpt_config *cfg,
                             enum mt_gpt_mode mode, size_t B, size_t T, enum mt_cuda_precision prec,
                             size_t every, char *err, size_t errlen)
{
    char why[160];
    *out = NULL;
    if (!mt_cuda_available(why, sizeof why)) return mt_tf_fail(err, errlen, "%s", why);
    if (mode != MT_GPT_INFER && mode != MT_GPT_TRAIN && mode != MT_GPT_WEIGHTS)
        return mt_tf_fail(err, errlen, "device=cuda models are weights, infer or train models");
    if (cfg->n_head && cfg->n_embd / cfg->n_head > 128)
        return mt_tf_fail(err, errlen, "device=cuda takes head sizes up to 128 (this one: %zu)",
                          cfg->n_embd / cfg->n_head);
    size_t plan[MT_MEM_CAT_COUNT];
    if (!mt_gpt_memory(cfg, B, T, mode, plan, err, errlen) ||
        !mt_cuda_gpt_plan(cfg, mode, B, T, prec, every, plan, err, errlen))
        return -1;
    mt_gpt_memory(cfg, B, T, mode, plan, NULL, 0); /* the slabs (the extras: below) */
    if (every > 1) plan[MT_MEM_ACTIVATIONS] = mt_cuda_gpt_carve_acts(cfg, B, T, every, NULL, NULL);
    struct mt_cuda_gpt *d = calloc(1, sizeof *d);
    if (!d) return mt_tf_fail(err, errlen, "out of memory");
    struct mt_gpt *m = &d->m;
    m->cfg = *cfg;
    m->mode = mode;
    m->B = B;
    m->T = T;
    m->act_slots = mode == MT_GPT_TRAIN ? mt_cuda_gpt_act_slots(cfg, every) : 1;
    d->every = every;
    m->n_params = mt_gpt_num_params(cfg);
    m->last_loss = -1.0f;
    d->prec = prec;
    mt_cuda_gpt_extra_bytes(cfg, B, T, prec, d->extra_bytes);
    void *ptrs[(int)MT_A_COUNT > (int)MT_P_COUNT ? (int)MT_A_COUNT : (int)MT_P_COUNT];
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        if (!plan[c]) continue;
        if (!(d->slab[c] = dev_alloc(plan[c], c))) goto oom;
        m->slab_bytes[c] = plan[c];
        size_t n = c == MT_MEM_ACTIVATIONS && every > 1
                       ? (mt_cuda_gpt_carve_acts(cfg, B, T, every, d->slab[c], ptrs), MT_A_COUNT)
                       : mt_gpt_carve(cfg, B, T, mode, c, d->slab[c], ptrs);
        for (size_t i = 0; i < n; i++) {
            if (c == MT_MEM_WEIGHTS) m->param[i] = ptrs[i];
            if (c == MT_MEM_GRADIENTS) m->grad[i] = ptrs[i];
            if (c == MT_MEM_ACTIVATIONS) m->act[i] = ptrs[i];
            if (c == MT_MEM_ACT_GRADS) m->dact[i] = ptrs[i];
        }
        if (c == MT_MEM_OPTIMIZER) m->opt_m = ptrs[0], m->opt_v = ptrs[1];
        if (c == MT_MEM_WORKSPACE) m->inputs = ptrs[MT_W_INPUTS], m->targets = ptrs[MT_W_TARGETS];
    }
    m->params = d->slab[MT_MEM_WEIGHTS];
    m->grads = d->slab[MT_MEM_GRADIENTS];
    m->opt = d->slab[MT_MEM_OPTIMIZER];
    m->acts = d->slab[MT_MEM_ACTIVATIONS];
    m->dacts = d->slab[MT_MEM_ACT_GRADS];
    m->work = d->slab[MT_MEM_WORKSPACE];
    for (int p = 0; p < MT_P_COUNT; p++)
        m->param_len[p] = mt_gpt_param_elems(cfg, (enum mt_gpt_param)p);
    if (!(d->blas_work = dev_alloc(BLAS_WORKSPACE, MT_MEM_WORKSPACE))) goto oom;
    if (!(d->acc = dev_alloc(256, MT_MEM_WORKSPACE))) goto oom;
    if (prec == MT_CUDA_BF16) {
        size_t in, wide;
        linear_widths(cfg, &in, &wide);
        size_t h16 = head16_bytes(cfg);
        if (!(d->wbf16 = dev_alloc(d->extra_bytes[MT_MEM_WEIGHTS] - h16, MT_MEM_WEIGHTS))) goto oom;
        if (!(d->head16 = dev_alloc(h16, MT_MEM_WEIGHTS))) goto oom;
        if (!(d->stage_in = dev_alloc(B * T * in * 2, MT_MEM_WORKSPACE))) goto oom;
        if (!(d->stage_out = dev_alloc(stage_out_bytes(cfg, B, T, wide), MT_MEM_WORKSPACE)))
            goto oom;
    }
    if (!(d->losses = malloc(B * T * sizeof *d->losses))) goto oom;
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        mt_cuda_gpt_free(d);
        return mt_tf_fail(err, errlen, "cuBLAS: cublasCreate failed");
    }
    d->blas = h;
    cublasSetStream(h, cudaStreamPerThread); /* the kernels' stream (per-thread default) */
    cublasSetWorkspace(h, d->blas_work, BLAS_WORKSPACE);
    cublasSetMathMode(h, prec == MT_CUDA_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    d->mirror_stale = 1;
    *out = d;
    return 0;
oom:
    mt_cuda_gpt_free(d);
    return mt_tf_fail(err, errlen, "out of device memory for a %s model B=%zu T=%zu",
                      mode == MT_GPT_TRAIN ? "training" : "inference", B, T);
}

int mt_cuda_copy_to_host(void *dst, const void *src, size_t bytes, char *err, size_t errlen)
{
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? 0 : cuda_fail(e, "copy to the host", err, errlen);
}

int mt_cuda_copy_to_device(void *dst, const void *src, size_t bytes, char *err, size_t errlen)
{
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? 0 : cuda_fail(e, "copy to the device", err, errlen);
}

/* Copies tensors between the host and the device model: weights, and the optimizer
 * state when both train. */
static int copy_state(struct mt_cuda_gpt *d, struct mt_gpt *h, enum cudaMemcpyKind kind, char *err,
                      size_t errlen)
{
    struct mt_gpt *m = &d->m;
    if (memcmp(&h->cfg, &m->cfg, sizeof h->cfg))
        return mt_tf_fail(err, errlen, "the host and device models differ in configuration");
    int up = kind == cudaMemcpyHostToDevice;
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!m->param_len[p]) continue;
        if (!h->param[p] || h->param_len[p] != m->param_len[p])
            return mt_tf_fail(err, errlen, "tensor %s is dropped on the host",
                              mt_gpt_param_name((enum mt_gpt_param)p));
        size_t bytes = m->param_len[p] * sizeof(float);
        cudaError_t e = up ? cudaMemcpy(m->param[p], h->param[p], bytes, kind)
                           : cudaMemcpy(h->param[p], m->param[p], bytes, kind);
        if (e != cudaSuccess) return cuda_fail(e, "copying the weights", err, errlen);
    }
    if (m->opt && h->opt && h->slab_bytes[MT_MEM_OPTIMIZER] == m->slab_bytes[MT_MEM_OPTIMIZER]) {
        size_t bytes = m->slab_bytes[MT_MEM_OPTIMIZER];
        cudaError_t e =
            up ? cudaMemcpy(m->opt, h->opt, bytes, kind) : cudaMemcpy(h->opt, m->opt, bytes, kind);
        if (e != cudaSuccess) return cuda_fail(e, "copying the optimizer state", err, errlen);
        if (up)
            m->adam_step = h->adam_step;
        else
            h->adam_step = m->adam_step;
    }
    if (!up && m->grads && h->grads &&
        h->slab_bytes[MT_MEM_GRADIENTS] == m->slab_bytes[MT_MEM_GRADIENTS]) {
        cudaError_t e = cudaMemcpy(h->grads, m->grads, m->slab_bytes[MT_MEM_GRADIENTS], kind);
        if (e != cudaSuccess) return cuda_fail(e, "copying the gradients", err, errlen);
    }
    d->mirror_stale |= up;
    return 0;
}

int mt_cuda_gpt_upload(struct mt_cuda_gpt *d, const struct mt_gpt *h, char *err, size_t errlen)
{
    return copy_state(d, (struct mt_gpt *)h, cudaMemcpyHostToDevice, err, errlen);
}

int mt_cuda_gpt_download(const struct mt_cuda_gpt *d, struct mt_gpt *h, char *err, size_t errlen)
{
    return copy_state((struct mt_cuda_gpt *)d, h, cudaMemcpyDeviceToHost, err, errlen);
}

/* ------------------------------------------------------------------ linears */

/* The bf16 mirror is rebuilt lazily: after an upload or an optimizer step. */
static void refresh_mirror(struct mt_cuda_gpt *d)
{
    if (d->prec != MT_CUDA_BF16 || !d->mirror_stale) return;
    mt_cu_to_bf16(d->wbf16, d->m.params, d->m.slab_bytes[MT_MEM_WEIGHTS] / sizeof(float));
    float *w, *b;
    size_t ind, outd;
    mt_gpt_linear_weights(&d->m, d->m.cfg.n_layer, MT_LIN_LMHEAD, &w, &b, &ind, &outd);
    mt_cu_to_bf16(d->head16, w, outd * ind);
    d->mirror_stale = 0;
}

/* C[m,n] (column-major, ldc) = alpha op(A) op(B) + beta C in the model's precision; A and B
 * are fp32 device arrays, or (bf16) their rounded copies a16 / b16 when given. */
static int gemm(struct mt_cuda_gpt *d, cublasOperation_t ta, cublasOperation_t tb, size_t m,
                size_t n, size_t k, const void *A, size_t lda, const void *B, size_t ldb,
                float beta, float *Cm, size_t ldc)
{
    cublasHandle_t h = d->blas;
    const float one = 1.0f;
    cublasStatus_t s;
    if (d->prec == MT_CUDA_BF16)
        s = cublasGemmEx(h, ta, tb, (int)m, (int)n, (int)k, &one, A, CUDA_R_16BF, (int)lda, B,
                         CUDA_R_16BF, (int)ldb, &beta, Cm, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT);
    else
        s = cublasSgemm(h, ta, tb, (int)m, (int)n, (int)k, &one, A, (int)lda, B, (int)ldb, &beta,
                        Cm, (int)ldc);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : -1;
}

/* The operand x (n floats) as the GEMM reads it: itself, or its bf16 copy in stage. */
static const void *operand(struct mt_cuda_gpt *d, const float *x, size_t n, void *stage)
{
    if (d->prec != MT_CUDA_BF16) return x;
    mt_cu_to_bf16(stage, x, n);
    return stage;
}

/* The weight as the GEMM reads it: fp32, or its place in the bf16 mirror. */
static const void *weight(struct mt_cuda_gpt *d, const float *w)
{
    if (d->prec != MT_CUDA_BF16) return w;
    return (const uint16_t *)d->wbf16 + (w - d->m.params);
}

int mt_cu_qmat_upload(struct mt_cu_qmat *out, const struct mt_qtensor *qt, char *err, size_t errlen)
{
    const struct mt_qformat *f = &qt->fmt;
    memset(out, 0, sizeof *out);
    if ((f->scheme != MT_QS_LINEAR_ASYM && f->scheme != MT_QS_LINEAR_SYM) ||
        (f->bits != 8 && f->bits != 4))
        return mt_tf_fail(err, errlen, "no device kernel for %s %u-bit weights",
                          mt_qscheme_name(f->scheme), f->bits);
    if (!(out->block = dev_alloc(qt->bytes, MT_MEM_WEIGHTS)))
        return mt_tf_fail(err, errlen, "out of device memory (%zu B of packed weights)", qt->bytes);
    if (cudaMemcpy(out->block, qt->block, qt->bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(out->block);
        out->block = NULL;
        return mt_tf_fail(err, errlen, "copy of packed weights to the device failed");
    }
    const char *h = qt->block;
    char *dv = out->block;
    out->scale = (const float *)(dv + ((const char *)qt->scale - h));
    out->offset = (const float *)(dv + ((const char *)qt->offset - h));
    out->codes = (const uint8_t *)(dv + ((const char *)qt->codes - h));
    out->n = qt->n, out->k = qt->k, out->row_bytes = qt->row_bytes, out->bits = f->bits;
    out->unit_len = qt->unit_len, out->meta_row_stride = qt->meta_row_stride;
    out->bytes = qt->bytes;
    return 0;
}

void mt_cu_qmat_free(struct mt_cu_qmat *q)
{
    if (q->block) cudaFree(q->block);
    memset(q, 0, sizeof *q);
}

int mt_cuda_gpt_quantize(struct mt_cuda_gpt *d, const struct mt_gpt *h, const struct mt_qformat *f,
                         char *err, size_t errlen)
{
    return mt_cuda_gpt_quantize_linears(d, h, f, 1, err, errlen);
}

int mt_cuda_gpt_quantize_linears(struct mt_cuda_gpt *d, const struct mt_gpt *h,
                                 const struct mt_qformat *f, int head, char *err, size_t errlen)
{
    size_t L = d->m.cfg.n_layer, n = (L + 1) * MT_LIN_COUNT;
    if (d->qw)
        for (size_t i = 0; i < n; i++)
            mt_cu_qmat_free(&d->qw[i]);
    free(d->qw);
    d->qw = NULL;
    d->qbytes = 0;
    if (!f) return 0;
    if (!(d->qw = calloc(n, sizeof *d->qw))) return mt_tf_fail(err, errlen, "out of memory");
    for (size_t l = 0; l <= L; l++)
        for (int which = 0; which < MT_LIN_COUNT; which++) {
            if ((l == L) != (which == MT_LIN_LMHEAD) || (l == L && !head)) continue;
            float *w;
            size_t ind, outd;
            mt_gpt_linear_weights(h, l, (enum mt_linear)which, &w, NULL, &ind, &outd);
            struct mt_qtensor *qt = mt_qtensor_pack(w, outd, ind, f, err, errlen);
            int rc = qt ? mt_cu_qmat_upload(&d->qw[l * MT_LIN_COUNT + which], qt, err, errlen) : -1;
            if (qt) d->qbytes += qt->bytes;
            mt_qtensor_free(qt);
            if (rc) {
                mt_cuda_gpt_quantize(d, NULL, NULL, NULL, 0);
                return -1;
            }
        }
    return 0;
}

/* The one-row product of linear `which` as a GEMV reading the weight as stored (packed, or
 * the bf16 mirror), the bias and what f folds in (NULL: nothing) in the same launch
 * (cquant.h): 0, or 1 where no GEMV reads this weight (fp32 and TF32 models: cuBLAS) or
 * the fused norm's row does not fit. */
static int cu_gemv(struct mt_cuda_gpt *d, size_t l, enum mt_linear which, const float *in,
                   float *out, const struct mt_block_fuse *f)
{
    float *w, *b;
    size_t ind, outd;
    mt_gpt_linear_weights(&d->m, l, which, &w, &b, &ind, &outd);
    refresh_mirror(d);
    const struct mt_cu_qmat *q = d->qw ? &d->qw[l * MT_LIN_COUNT + which] : NULL;
    int what = f ? f->what : 0;
    struct mt_cu_epi e = {.bias = b};
    if (what & MT_BLOCK_FUSE_RESIDUAL) e.res = f->res;
    e.gelu = (what & MT_BLOCK_FUSE_GELU) != 0;
    if (what & MT_BLOCK_FUSE_NORM) {
        if (!mt_cu_epi_norm_fits(ind)) return 1;
        e.norm_w = f->norm_w;
        e.norm_b = f->norm == MT_GPT_NORM_RMS ? NULL : f->norm_b;
        e.rms = f->norm == MT_GPT_NORM_RMS;
    }
    if (q && q->block) { /* decode: the packed weight, read as stored */
        mt_cu_qgemv_epi(out, in, &e, q);
        return 0;
    }
    if (d->prec == MT_CUDA_BF16 && mt_cu_gemv_bf16_ok(weight(d, w), in, ind)) {
        mt_cu_gemv_bf16_epi(out, in, &e, weight(d, w), outd, ind); /* one launch */
        return 0;
    }
    return 1;
}

static int cu_linear(struct mt_cuda_gpt *d, size_t l, enum mt_linear which, const float *in,
                     float *out, size_t rows)
{
    float *w, *b;
    size_t ind, outd;
    if (rows == 1 && !cu_gemv(d, l, which, in, out, NULL)) return 0;
    mt_gpt_linear_weights(&d->m, l, which, &w, &b, &ind, &outd);
    refresh_mirror(d);
    /* out^T (outd x rows) = W (outd x ind, row-major = ind x outd column-major)^T in^T */
    if (gemm(d, CUBLAS_OP_T, CUBLAS_OP_N, outd, rows, ind, weight(d, w), ind,
             operand(d, in, rows * ind, d->stage_in), ind, 0.0f, out, outd))
        return -1;
    if (b) mt_cu_bias_add(out, b, rows, outd);
    return 0;
}

/* The backward of linear `which` from dout (fp32, rows x outd), or (the bf16 LM head;
 * dout NULL) from its bf16 copy dout16 in rows of stride ldo = vocab_ld(V), zero past V,
 * with the padded head16. */
static int cu_linear_bwd(struct mt_cuda_gpt *d, size_t l, enum mt_linear which, const float *dout,
                         const void *dout16, size_t ldo, const float *in, float *din, size_t rows)
{
    float *w, *dw, *db;
    size_t ind, outd;
    mt_gpt_linear_weights(&d->m, l, which, &w, NULL, &ind, &outd);
    mt_gpt_linear_grads(&d->m, l, which, &dw, &db);
    refresh_mirror(d);
    const void *w16 = weight(d, w);
    size_t kd = outd; /* din's reduction: the padded LM head reads its zero padding too */
    if (dout) {
        dout16 = operand(d, dout, rows * outd, d->stage_out);
        ldo = outd;
    } else {
        w16 = d->head16, kd = ldo;
    }
    /* din^T (ind x rows) = W^T (ind x outd) dout^T */
    if (gemm(d, CUBLAS_OP_N, CUBLAS_OP_N, ind, rows, kd, w16, ind, dout16, ldo, 0.0f, din, ind))
        return -1;
    /* dW^T (ind x outd) += in^T (ind x rows) dout (rows x outd) */
    if (dw && gemm(d, CUBLAS_OP_N, CUBLAS_OP_T, ind, outd, rows,
                   operand(d, in, rows * ind, d->stage_in), ind, dout16, ldo, 1.0f, dw, ind))
        return -1;
    if (db) mt_cu_colsum_add(db, dout, rows, outd);
    return 0;
}

/* The same product over `batch` matrices at element strides sa, sb, sc (fp32 C): A and B
 * fp32, or bf16 when the model computes in bf16. */
static int gemm_batched(struct mt_cuda_gpt *d, cublasOperation_t ta, cublasOperation_t tb, size_t m,
                        size_t n, size_t k, float alpha, const void *A, size_t lda, size_t sa,
                        const void *B, size_t ldb, size_t sb, float beta, float *Cm, size_t ldc,
                        size_t sc, size_t batch)
{
    int bf = d->prec == MT_CUDA_BF16;
    cudaDataType_t t = bf ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct =
        d->prec == MT_CUDA_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = cublasGemmStridedBatchedEx(
        d->blas, ta, tb, (int)m, (int)n, (int)k, &alpha, A, t, (int)lda, (long long)sa, B, t,
        (int)ldb, (long long)sb, &beta, Cm, CUDA_R_32F, (int)ldc, (long long)sc, (int)batch, ct,
        CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : -1;
}

/* An element offset into an fp32 or (bf16 model) bf16 array. */
static const void *elem_at(const struct mt_cuda_gpt *d, const void *base, size_t i)
{
    return d->prec == MT_CUDA_BF16 ? (const void *)((const uint16_t *)base + i)
                                   : (const void *)((const float *)base + i);
}

/* The attention's bf16 staging in stage_out (stage_out_bytes): qkv, datty, P, dS. */
struct attn_stage {
    void *qkv, *dy, *p, *ds;
};

static struct attn_stage attn_stage_of(const struct mt_cuda_gpt *d, const struct mt_block_shape *s)
{
    size_t ld = s->Ca + 2 * s->Ckv, BT = s->B * s->T, P = s->B * s->NH * s->T * s->T;
    uint16_t *b = d->stage_out;
    struct attn_stage a = {b, b + BT * ld, b + BT * (ld + s->Ca), b + BT * (ld + s->Ca) + P};
    return a;
}

struct cu_block {
    struct mt_cuda_gpt *d;
    size_t l;
    struct mt_block_shape shape;
    float *ln[MT_P_COUNT], *dln[MT_P_COUNT], *act[MT_A_COUNT];
    struct mt_block_kernels kern; /* the device table, flash in the model's precision */
};

/* Dense causal attention as two batched products per sequence and query-head offset in
 * its group (scores = q k^T scale, softmax, atty = P v) in the model's precision: the
 * block's attention hook (what mt_k_attention_fwd computes). */
static int cu_block_attention(void *user, const float *qkv, float *atty, float *att)
{
    struct cu_block *k = user;
    struct mt_cuda_gpt *d = k->d;
    const struct mt_block_shape *s = &k->shape;
    struct mt_k_attn_geom g = mt_k_attn_geom(s->Ca, s->Ckv, s->NH);
    size_t T = s->T, TT = T * T, ld = g.ld, hs = g.hs, grp = g.grp, Ca = s->Ca;
    struct attn_stage st = attn_stage_of(d, s);
    int bf = d->prec == MT_CUDA_BF16;
    const void *q = operand(d, qkv, s->B * T * ld, st.qkv);
    for (size_t b = 0; b < s->B; b++)
        for (size_t r = 0; r < grp; r++) /* heads kh * grp + r, kh over the key heads */
            if (gemm_batched(d, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, g.scale,
                             elem_at(d, q, b * T * ld + Ca), ld, hs,
                             elem_at(d, q, b * T * ld + r * hs), ld, grp * hs, 0.0f,
                             att + (b * s->NH + r) * TT, T, grp * TT, g.nkv))
                return -1;
    mt_cu_softmax_rows(att, bf ? st.p : NULL, s->B * s->NH * T, T, s->window);
    const void *p = bf ? st.p : (const void *)att;
    for (size_t b = 0; b < s->B; b++)
        for (size_t r = 0; r < grp; r++)
            if (gemm_batched(d, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f,
                             elem_at(d, q, b * T * ld + Ca + s->Ckv), ld, hs,
                             elem_at(d, p, (b * s->NH + r) * TT), T, grp * TT, 0.0f,
                             atty + b * T * Ca + r * hs, Ca, grp * hs, g.nkv))
                return -1;
    return 0;
}

/* Its backward (mt_k_attention_bwd): dP = dy v^T, dS = softmax's backward, dq = dS k scale,
 * dk = dS^T q scale and dv = P^T dy summed over the group's query heads. */
static int cu_block_attention_bwd(void *user, const float *datty, const float *qkv,
                                  const float *att, float *dqkv, float *datt)
{
    struct cu_block *k = user;
    struct mt_cuda_gpt *d = k->d;
    const struct mt_block_shape *s = &k->shape;
    struct mt_k_attn_geom g = mt_k_attn_geom(s->Ca, s->Ckv, s->NH);
    size_t T = s->T, TT = T * T, ld = g.ld, hs = g.hs, grp = g.grp, Ca = s->Ca, Ckv = s->Ckv;
    struct attn_stage st = attn_stage_of(d, s);
    int bf = d->prec == MT_CUDA_BF16;
    const void *q = operand(d, qkv, s->B * T * ld, st.qkv);
    const void *dy = operand(d, datty, s->B * T * Ca, st.dy);
    for (size_t b = 0; b < s->B; b++)
        for (size_t r = 0; r < grp; r++)
            if (gemm_batched(d, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, 1.0f,
                             elem_at(d, q, b * T * ld + Ca + Ckv), ld, hs,
                             elem_at(d, dy, b * T * Ca + r * hs), Ca, grp * hs, 0.0f,
                             datt + (b * s->NH + r) * TT, T, grp * TT, g.nkv))
                return -1;
    mt_cu_softmax_rows_bwd(datt, bf ? st.ds : NULL, bf ? st.p : NULL, att, s->B * s->NH * T, T);
    const void *ds = bf ? st.ds : (const void *)datt, *p = bf ? st.p : (const void *)att;
    for (size_t b = 0; b < s->B; b++)
        for (size_t r = 0; r < grp; r++) {
            size_t row = b * T * ld, at = (b * s->NH + r) * TT;
            float beta = r ? 1.0f : 0.0f; /* dk, dv: the group's heads add up */
            if (gemm_batched(d, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, g.scale,
                             elem_at(d, q, row + Ca), ld, hs, elem_at(d, ds, at), T, grp * TT, 0.0f,
                             dqkv + row + r * hs, ld, grp * hs, g.nkv) ||
                gemm_batched(d, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, g.scale,
                             elem_at(d, q, row + r * hs), ld, grp * hs, elem_at(d, ds, at), T,
                             grp * TT, beta, dqkv + row + Ca, ld, hs, g.nkv) ||
                gemm_batched(d, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f,
                             elem_at(d, dy, b * T * Ca + r * hs), Ca, grp * hs, elem_at(d, p, at),
                             T, grp * TT, beta, dqkv + row + Ca + Ckv, ld, hs, g.nkv))
                return -1;
        }
    return 0;
}

/* ------------------------------------------------------------------ forward / backward */

static int cu_block_linear(void *user, enum mt_linear which, const float *in, float *out,
                           size_t rows)
{
    struct cu_block *k = user;
    return cu_linear(k->d, k->l, which, in, out, rows);
}

static int cu_block_linear_bwd(void *user, enum mt_linear which, const float *dout, float *din,
                               size_t rows)
{
    struct cu_block *k = user;
    return cu_linear_bwd(k->d, k->l, which, dout, NULL, 0, k->act[mt_block_linear_input(which)],
                         din, rows);
}

/* The activation slot of block l in a recomputing model: its group's (groups of `every`
 * blocks counted from the top). */
static size_t cu_slot(const struct mt_cuda_gpt *d, size_t l)
{
    return d->every <= 1 ? l : (d->m.cfg.n_layer - 1 - l) / d->every;
}

/* 1 when block l's activations survive the forward (the top block of its group). */
static int cu_kept(const struct mt_cuda_gpt *d, size_t l)
{
    return d->every <= 1 || (d->m.cfg.n_layer - 1 - l) % d->every == 0;
}

/* Activation a of block l: the residual stream has a slot per block, the block's other
 * tensors their group's (mt_gpt_act_at with the device's slots). */
static float *cu_act_at(const struct mt_cuda_gpt *d, enum mt_gpt_act a, size_t l)
{
    const struct mt_gpt *m = &d->m;
    size_t slot = d->every <= 1         ? l % m->act_slots /* inference: one slot */
                  : a == MT_A_RESIDUAL3 ? l
                                        : cu_slot(d, l);
    return m->act[a] + slot * mt_gpt_act_elems(&m->cfg, m->B, m->T, a);
}

static const float *cu_layer_input(const struct mt_cuda_gpt *d, size_t l)
{
    return l ? cu_act_at(d, MT_A_RESIDUAL3, l - 1) : d->m.act[MT_A_ENCODED];
}

static void cu_block_at(struct cu_block *k, struct mt_cuda_gpt *d, size_t l, size_t B, size_t T)
{
    struct mt_gpt *m = &d->m;
    memset(k, 0, sizeof *k);
    k->d = d;
    k->l = l;
    k->shape = mt_block_shape_of(&m->cfg, B, T, 1);
    mt_block_norm_params(&m->cfg, l, m->param, k->ln);
    mt_block_norm_params(&m->cfg, l, m->grad, k->dln);
    for (int a = MT_A_LN1; a <= MT_A_FCH_GELU; a++)
        k->act[a] = cu_act_at(d, (enum mt_gpt_act)a, l);
    k->kern = mt_cuda_block_kernels;
    if (d->prec == MT_CUDA_BF16) k->kern.flash_fwd = mt_cu_flash_fwd_bf16;
    if (d->prec == MT_CUDA_BF16) k->kern.flash_bwd = mt_cu_flash_bwd_bf16;
}

/* 1 when dense attention runs as cuBLAS's products (the block's attention hooks). */
static int cu_blas_attention(const struct mt_cuda_gpt *d)
{
    return !d->attention_rows && d->m.cfg.attention == MT_GPT_ATTN_DENSE;
}

/* Block l's forward into its slot; out: where its output goes (the residual stream, or
 * a scratch when recomputing). */
static int cu_block_fwd(struct mt_cuda_gpt *d, size_t l, size_t B, size_t T, float *out)
{
    struct cu_block blk;
    cu_block_at(&blk, d, l, B, T);
    struct mt_block_ops ops = {.linear = cu_block_linear, .user = &blk, .kernels = &blk.kern};
    if (cu_blas_attention(d)) ops.attention = cu_block_attention;
    return mt_block_forward(&blk.shape, blk.ln, blk.act, cu_layer_input(d, l), d->m.act[MT_A_PROJ],
                            out, &ops);
}

/* 1 when the LM head runs in bf16 (lm_head): a bf16 model whose head has no bias. */
static int head16(const struct mt_cuda_gpt *d)
{
    float *w, *b;
    size_t ind, outd;
    mt_gpt_linear_weights(&d->m, d->m.cfg.n_layer, MT_LIN_LMHEAD, &w, &b, &ind, &outd);
    return d->prec == MT_CUDA_BF16 && !b;
}

/* The LM head over rows of the final norm into the logits and, with targets, the
 * softmax and losses. head16: bf16 logits into stage_out in rows of vocab_ld(V), widened
 * in the softmax (as autocast does). */
static int lm_head(struct mt_cuda_gpt *d, size_t rows, int targets)
{
    struct mt_gpt *m = &d->m;
    size_t L = m->cfg.n_layer, V = m->cfg.vocab, ind, outd;
    float *w, *b, *logits = m->act[MT_A_LOGITS], *losses = m->act[MT_A_LOSSES];
    if (!head16(d)) {
        if (cu_linear(d, L, MT_LIN_LMHEAD, m->act[MT_A_LNF], logits, rows)) return -1;
        if (targets) mt_cu_crossentropy_fwd(logits, losses, m->targets, rows, V);
        return 0;
    }
    mt_gpt_linear_weights(m, L, MT_LIN_LMHEAD, &w, &b, &ind, &outd);
    refresh_mirror(d);
    const float one = 1.0f, zero = 0.0f;
    const void *in16 = operand(d, m->act[MT_A_LNF], rows * ind, d->stage_in);
    if (cublasGemmEx(d->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)vocab_ld(V), (int)rows, (int)ind, &one,
                     d->head16, CUDA_R_16BF, (int)ind, in16, CUDA_R_16BF, (int)ind, &zero,
                     d->stage_out, CUDA_R_16BF, (int)vocab_ld(V), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        return -1;
    mt_cu_crossentropy_fwd16(logits, d->stage_out, vocab_ld(V), losses, targets ? m->targets : NULL,
                             rows, V);
    return 0;
}

int mt_cuda_gpt_forward(struct mt_cuda_gpt *d, const int *inputs, const int *targets, size_t B,
                        size_t T, float *mean_loss, char *err, size_t errlen)
{
    struct mt_gpt *m = &d->m;
    const struct mt_gpt_config *cfg = &m->cfg;
    const struct mt_block_kernels *k = &mt_cuda_block_kernels;
    size_t V = cfg->vocab, L = cfg->n_layer, C = cfg->n_embd, BT = B * T, counted = 0;
    if (!B || !T || B > m->B || T > m->T)
        return mt_tf_fail(err, errlen, "forward shape B=%zu T=%zu outside 1..%zu x 1..%zu", B, T,
                          m->B, m->T);
    for (size_t i = 0; i < BT; i++) {
        int bad = inputs[i] < 0 || (size_t)inputs[i] >= V;
        if (bad || (targets && targets[i] >= 0 && (size_t)targets[i] >= V))
            return mt_tf_fail(err, errlen, "%s id %d at %zu outside vocab %zu",
                              bad ? "token" : "target", bad ? inputs[i] : targets[i], i, V);
        counted += targets && targets[i] >= 0;
    }
    m->fwd_B = 0;
    m->last_loss = -1.0f;
    cudaMemcpy(m->inputs, inputs, BT * sizeof *inputs, cudaMemcpyHostToDevice);
    if (targets) cudaMemcpy(m->targets, targets, BT * sizeof *targets, cudaMemcpyHostToDevice);
    mt_cu_encoder_fwd(m->act[MT_A_ENCODED], m->inputs, m->param[MT_P_WTE], m->param[MT_P_WPE], B, T,
                      C);
    for (size_t l = 0; l < L; l++)
        if (cu_block_fwd(d, l, B, T, cu_act_at(d, MT_A_RESIDUAL3, l)))
            return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in layer %zu", l);
    mt_block_norm_fwd_k(k, cfg->norm, m->act[MT_A_LNF], m->act[MT_A_LNF_MEAN],
                        m->act[MT_A_LNF_RSTD], cu_act_at(d, MT_A_RESIDUAL3, L - 1),
                        m->param[MT_P_LNFW], m->param[MT_P_LNFB], BT, C);
    if (lm_head(d, BT, targets != NULL))
        return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in the LM head");
    if (sync_check("forward", err, errlen)) return -1;
    if (targets) {
        if (mt_cuda_copy_to_host(d->losses, m->act[MT_A_LOSSES], BT * sizeof(float), err, errlen))
            return -1;
        double sum = 0.0;
        for (size_t i = 0; i < BT; i++)
            sum += d->losses[i];
        m->last_loss = counted ? (float)(sum / (double)counted) : 0.0f;
        if (mean_loss) *mean_loss = m->last_loss;
    }
    m->fwd_B = B;
    m->fwd_T = T;
    return 0;
}

void mt_cuda_gpt_zero_grad(struct mt_cuda_gpt *d)
{
    struct mt_gpt *m = &d->m;
    if (m->grads && !m->grads_zero) cudaMemset(m->grads, 0, m->slab_bytes[MT_MEM_GRADIENTS]);
    m->grads_zero = 1;
}

int mt_cuda_gpt_backward(struct mt_cuda_gpt *d, float loss_scale, size_t norm_tokens, char *err,
                         size_t errlen)
{
    struct mt_gpt *m = &d->m;
    const struct mt_gpt_config *cfg = &m->cfg;
    const struct mt_block_kernels *k = &mt_cuda_block_kernels;
    if (m->mode != MT_GPT_TRAIN)
        return mt_tf_fail(err, errlen, "backward needs a model created in train mode");
    if (m->last_loss < 0.0f || !m->fwd_B)
        return mt_tf_fail(err, errlen, "backward needs a forward with targets first");
    size_t L = cfg->n_layer, C = cfg->n_embd, B = m->fwd_B, T = m->fwd_T, BT = B * T;
    float *dres = m->dact[MT_D_RESIDUAL], *dln = m->dact[MT_D_LN], **g = m->grad, **p = m->param;
    m->last_loss = -1.0f;
    m->fwd_B = 0;
    m->grads_zero = 0;
    float dloss = loss_scale / (float)(norm_tokens ? norm_tokens : BT),
          *probs = m->act[MT_A_LOGITS];
    size_t V = cfg->vocab;
    int rc;
    if (head16(d)) { /* the logits' gradient straight to bf16 rows of vocab_ld(V) (lm_head) */
        mt_cu_crossentropy_bwd16(d->stage_out, vocab_ld(V), probs, m->targets, dloss, BT, V);
        rc = cu_linear_bwd(d, L, MT_LIN_LMHEAD, NULL, d->stage_out, vocab_ld(V), m->act[MT_A_LNF],
                           dln, BT);
    } else {
        mt_cu_crossentropy_bwd(probs, m->targets, dloss, BT, V);
        rc = cu_linear_bwd(d, L, MT_LIN_LMHEAD, probs, NULL, 0, m->act[MT_A_LNF], dln, BT);
    }
    if (rc) return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in the LM head's backward");
    cudaMemset(dres, 0, BT * C * sizeof *dres);
    mt_block_norm_bwd_k(k, cfg->norm, dres, g[MT_P_LNFW], g[MT_P_LNFB], dln,
                        cu_act_at(d, MT_A_RESIDUAL3, L - 1), p[MT_P_LNFW], m->act[MT_A_LNF_MEAN],
                        m->act[MT_A_LNF_RSTD], BT, C);
    for (size_t l = L; l-- > 0;) {
        /* checkpointing: the block's activations again, from its stored input, into its
         * group's slot; its output (already in the residual stream) into the final norm's
         * output, which the LM head's backward has finished with */
        if (!cu_kept(d, l)) {
            if (cu_block_fwd(d, l, B, T, m->act[MT_A_LNF]))
                return mt_tf_fail(err, errlen, "cuBLAS GEMM failed recomputing layer %zu", l);
            d->recomputed_blocks++;
        }
        struct cu_block blk;
        cu_block_at(&blk, d, l, B, T);
        struct mt_block_ops ops = {
            .linear_bwd = cu_block_linear_bwd, .user = &blk, .kernels = &blk.kern};
        if (cu_blas_attention(d)) ops.attention_bwd = cu_block_attention_bwd;
        if (mt_block_backward(&blk.shape, blk.ln, blk.dln, blk.act, cu_layer_input(d, l), m->dact,
                              &ops))
            return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in layer %zu's backward", l);
    }
    mt_cu_encoder_bwd(g[MT_P_WTE], g[MT_P_WPE], dres, m->inputs, B, T, C);
    return sync_check("backward", err, errlen);
}

int mt_cuda_gpt_adamw_step(struct mt_cuda_gpt *d, const struct mt_gpt_recipe *r, float lr,
                           float grad_div, float *norm, char *err, size_t errlen)
{
    struct mt_gpt *m = &d->m;
    double sumsq = 0.0;
    if (m->mode != MT_GPT_TRAIN) return mt_tf_fail(err, errlen, "AdamW needs a training model");
    cudaMemset(d->acc, 0, sizeof sumsq);
    mt_cu_sumsq(d->acc, m->grads, m->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float));
    if (mt_cuda_copy_to_host(&sumsq, d->acc, sizeof sumsq, err, errlen)) return -1;
    float n = mt_k_grad_norm(sumsq, 1.0f) / grad_div;
    if (!isfinite(sumsq)) { /* a loss-scale overflow: skip the step */
        cudaMemset(m->grads, 0, m->slab_bytes[MT_MEM_GRADIENTS]);
        m->grads_zero = 1;
        if (norm) *norm = n;
        return sync_check("AdamW", err, errlen) ? -1 : 1;
    }
    m->adam_step++;
    m->grads_zero = 1;
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!m->param_len[p]) continue;
        struct mt_adamw_args a;
        mt_gpt_adamw_args(&a, r, lr, mt_gpt_param_decays((enum mt_gpt_param)p), n, grad_div,
                          m->adam_step);
        size_t off = (size_t)(m->param[p] - m->params);
        mt_cu_adamw(m->param[p], m->grad[p], m->opt_m + off, m->opt_v + off, m->param_len[p], &a);
    }
    d->mirror_stale = 1;
    if (norm) *norm = n;
    return sync_check("AdamW", err, errlen);
}

int mt_cuda_gpt_train_step(struct mt_cuda_gpt *d, const struct mt_gpt_recipe *r, size_t step,
                           const int *inputs, const int *targets, float *loss, float *gnorm,
                           char *err, size_t errlen)
{
    float l = 0.0f;
    if (mt_cuda_gpt_forward(d, inputs, targets, r->batch, r->seq, &l, err, errlen)) return -1;
    mt_cuda_gpt_zero_grad(d);
    if (mt_cuda_gpt_backward(d, 1.0f, 0, err, errlen)) return -1;
    if (mt_cuda_gpt_adamw_step(d, r, mt_gpt_lr_at(r, step), 1.0f, gnorm, err, errlen) < 0)
        return -1;
    if (loss) *loss = l;
    return 0;
}

/* ------------------------------------------------------------------ decoding */

/* decode.c's scratch: x, ln, qkv (3C), atty, proj, fch (F; SwiGLU 3F), logits (V). */
static size_t fch_floats(const struct mt_gpt_config *cfg)
{
    return mt_gpt_ffn(cfg) * (cfg->mlp == MT_GPT_MLP_SWIGLU ? 3 : 1);
}

int mt_cuda_kv_create(struct mt_cuda_kv **out, const struct mt_cuda_gpt *d, size_t max_T, char *err,
                      size_t errlen)
{
    return mt_cuda_kv_create_type(out, d, max_T, MT_CU_KV_F32, err, errlen);
}

int mt_cuda_kv_create_type(struct mt_cuda_kv **out, const struct mt_cuda_gpt *d, size_t max_T,
                           int type, char *err, size_t errlen)
{
    const struct mt_gpt_config *cfg = &d->m.cfg;
    *out = NULL;
    if (!max_T || max_T > cfg->seq_len)
        return mt_tf_fail(err, errlen, "KV cache length %zu outside 1..%zu", max_T, cfg->seq_len);
    if (type < MT_CU_KV_F32 || type > MT_CU_KV_F16)
        return mt_tf_fail(err, errlen, "KV cache type %d is not fp32, bf16 or fp16", type);
    struct mt_cuda_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return mt_tf_fail(err, errlen, "out of memory");
    size_t C = cfg->n_embd;
    kv->max_T = max_T;
    kv->type = type;
    mt_cuda_kv_plan(cfg, max_T, type, &kv->kv_bytes, &kv->scratch_bytes);
    kv->k = dev_alloc(kv->kv_bytes, MT_MEM_KV_CACHE);
    kv->v = kv->k ? (char *)kv->k + kv->kv_bytes / 2 : NULL;
    kv->scratch = dev_alloc(kv->scratch_bytes, MT_MEM_WORKSPACE);
    kv->logits = malloc(cfg->vocab * sizeof(float));
    if (!kv->k || !kv->scratch || !kv->logits) {
        mt_cuda_kv_free(kv);
        return mt_tf_fail(err, errlen, "out of device memory for the KV cache (%zu bytes)",
                          kv->kv_bytes);
    }
    kv->dlogits = kv->scratch + 7 * C + fch_floats(cfg);
    kv->tokpos = (int *)(kv->dlogits + cfg->vocab);
    kv->tokens = kv->tokpos + 2;
    kv->graphs = 1;
    *out = kv;
    return 0;
}

void mt_cuda_kv_free(struct mt_cuda_kv *kv)
{
    if (!kv) return;
    if (kv->graph) cudaGraphExecDestroy((cudaGraphExec_t)kv->graph);
    cudaFree(kv->k);
    cudaFree(kv->scratch);
    free(kv->logits);
    free(kv);
}

struct cu_decode {
    struct mt_cuda_gpt *d;
    struct mt_cuda_kv *kv;
    size_t l;
};

static int cu_decode_linear(void *user, enum mt_linear which, const float *in, float *out,
                            size_t rows)
{
    struct cu_decode *k = user;
    return cu_linear(k->d, k->l, which, in, out, rows);
}

/* The block's linears with the norms, GELU and residual adds folded into the GEMV. */
static int cu_decode_linear_fused(void *user, enum mt_linear which, const float *in, float *out,
                                  const struct mt_block_fuse *f, size_t rows)
{
    struct cu_decode *k = user;
    if (rows != 1 || (f->what & k->d->decode_unfuse)) return 1;
    return cu_gemv(k->d, k->l, which, in, out, f);
}

static int cu_decode_attention(void *user, const float *qkv, float *atty, float *att)
{
    struct cu_decode *k = user;
    const struct mt_gpt_config *cfg = &k->d->m.cfg;
    size_t C = cfg->n_embd, kvd = mt_gpt_kv_dim(cfg);
    size_t at = (k->l * k->kv->max_T) * kvd * (k->kv->type == MT_CU_KV_F32 ? 4 : 2);
    (void)att;
    mt_cu_attention_decode(atty, qkv, (char *)k->kv->k + at, (char *)k->kv->v + at,
                           (enum mt_cu_kv_type)k->kv->type, k->kv->tokpos, cfg->window,
                           k->kv->max_T, C, kvd, cfg->n_head);
    return 0;
}

/* Queues one decode step whose token and position are in kv->tokpos (pos: the same
 * position, for RoPE). Returns 0, or -1 with a message. */
static int decode_body(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, size_t pos, char *err,
                       size_t errlen)
{
    struct mt_gpt *m = &d->m;
    const struct mt_gpt_config *cfg = &m->cfg;
    const struct mt_block_kernels *k = &mt_cuda_decode_kernels;
    size_t C = cfg->n_embd, L = cfg->n_layer;
    float *x = kv->scratch, *ln = x + C, *qkv = ln + C, *atty = qkv + 3 * C;
    float *proj = atty + C, *fch = proj + C;
    mt_cu_decode_embed(x, m->param[MT_P_WTE], m->param[MT_P_WPE], kv->tokpos, C);
    struct mt_block_shape shape = mt_block_shape_of(cfg, 1, 1, 1);
    shape.pos0 = pos;
    float *act[MT_A_COUNT] = {0}, *lnp[MT_P_COUNT] = {0};
    act[MT_A_LN1] = act[MT_A_LN2] = ln;
    act[MT_A_QKV] = qkv;
    act[MT_A_ATTY] = atty;
    act[MT_A_RESIDUAL2] = x;
    act[MT_A_FCH] = act[MT_A_FCH_GELU] = fch;
    if (cfg->mlp == MT_GPT_MLP_SWIGLU) act[MT_A_FCH_GELU] = fch + 2 * mt_gpt_ffn(cfg);
    struct cu_decode dk = {.d = d, .kv = kv};
    struct mt_block_ops ops = {.linear = cu_decode_linear,
                               .linear_fused = cu_decode_linear_fused,
                               .attention = cu_decode_attention,
                               .user = &dk,
                               .kernels = k};
    for (size_t l = 0; l < L; l++) {
        dk.l = l;
        mt_block_norm_params(cfg, l, m->param, lnp);
        if (mt_block_forward(&shape, lnp, act, x, proj, x, &ops))
            return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in layer %zu", l);
    }
    struct mt_block_fuse lnf = {.what = MT_BLOCK_FUSE_NORM,
                                .norm = cfg->norm,
                                .norm_w = m->param[MT_P_LNFW],
                                .norm_b = m->param[MT_P_LNFB]};
    if (!(d->decode_unfuse & MT_BLOCK_FUSE_NORM) &&
        !cu_gemv(d, L, MT_LIN_LMHEAD, x, kv->dlogits, &lnf))
        return 0;
    mt_block_norm_fwd_k(k, cfg->norm, ln, NULL, NULL, x, m->param[MT_P_LNFW], m->param[MT_P_LNFB],
                        1, C);
    if (cu_linear(d, L, MT_LIN_LMHEAD, ln, kv->dlogits, 1))
        return mt_tf_fail(err, errlen, "cuBLAS GEMM failed in the LM head");
    return 0;
}

/* Captures the step as a graph (kv->graph) from the current stream's work. */
static int decode_capture(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, size_t pos, char *err,
                          size_t errlen)
{
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    cudaError_t e = cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return cuda_fail(e, "capturing the decode step", err, errlen);
    int rc = decode_body(d, kv, pos, err, errlen);
    e = cudaStreamEndCapture(cudaStreamPerThread, &g);
    if (rc) {
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        return -1;
    }
    if (e == cudaSuccess) e = cudaGraphInstantiate(&x, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess) return cuda_fail(e, "capturing the decode step", err, errlen);
    kv->graph = x;
    kv->graph_qw = d->qw;
    kv->graph_unfuse = d->decode_unfuse;
    return 0;
}

/* Queues the step at position pos whose token and position are in kv->tokpos: the graph
 * (captured first where needed) or the kernels one by one. Returns 0, or -1 with a
 * message. */
static int decode_queue(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, size_t pos, char *err,
                        size_t errlen)
{
    refresh_mirror(d); /* never inside a graph: it runs once per weight update */
    if (kv->graph &&
        (!kv->graphs || kv->graph_qw != d->qw || kv->graph_unfuse != d->decode_unfuse)) {
        cudaGraphExecDestroy((cudaGraphExec_t)kv->graph);
        kv->graph = NULL;
    }
    if (kv->graphs && d->m.cfg.pos != MT_GPT_POS_ROPE && !kv->graph &&
        decode_capture(d, kv, pos, err, errlen))
        return -1;
    if (kv->graph) {
        cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)kv->graph, cudaStreamPerThread);
        return e == cudaSuccess ? 0 : cuda_fail(e, "replaying the decode step", err, errlen);
    }
    return decode_body(d, kv, pos, err, errlen);
}

/* The errors of what was queued so far, without waiting for the device. */
static int launch_check(const char *what, char *err, size_t errlen)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 0 : cuda_fail(e, what, err, errlen);
}

static int decode_token_ok(const struct mt_cuda_gpt *d, int token, char *err, size_t errlen)
{
    if (token >= 0 && (size_t)token < d->m.cfg.vocab) return 0;
    return mt_tf_fail(err, errlen, "token id %d outside vocab %zu", token, d->m.cfg.vocab);
}

int mt_cuda_decode_step(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, int token, int logits,
                        char *err, size_t errlen)
{
    size_t pos = kv->pos;
    if (pos >= kv->max_T)
        return mt_tf_fail(err, errlen, "KV cache full (%zu positions)", kv->max_T);
    if (decode_token_ok(d, token, err, errlen)) return -1;
    mt_cu_decode_set(kv->tokpos, token, (int)pos);
    if (decode_queue(d, kv, pos, err, errlen)) return -1;
    if (logits == MT_CUDA_LOGITS_QUEUED) {
        if (launch_check("decode", err, errlen)) return -1;
        kv->pos++;
        return 0;
    }
    if (logits == MT_CUDA_LOGITS_HOST &&
        mt_cuda_copy_to_host(kv->logits, kv->dlogits, d->m.cfg.vocab * sizeof(float), err, errlen))
        return -1;
    if (sync_check("decode", err, errlen)) return -1;
    kv->pos++;
    return 0;
}

int mt_cuda_decode_wait(char *err, size_t errlen)
{
    return sync_check("decode", err, errlen);
}

int mt_cuda_decode_greedy(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, int token, size_t n,
                          int *out, char *err, size_t errlen)
{
    size_t pos = kv->pos;
    if (n > kv->max_T - pos)
        return mt_tf_fail(err, errlen, "KV cache full (%zu positions, %zu used, %zu asked)",
                          kv->max_T, pos, n);
    if (decode_token_ok(d, token, err, errlen)) return -1;
    if (!n) return 0;
    mt_cu_decode_set(kv->tokpos, token, (int)pos);
    for (size_t i = 0; i < n; i++) { /* queued: the device picks each next token itself */
        if (decode_queue(d, kv, pos + i, err, errlen)) return -1;
        mt_cu_decode_argmax(kv->tokpos, kv->tokens, kv->dlogits, d->m.cfg.vocab);
    }
    if (mt_cuda_copy_to_host(out, kv->tokens + pos, n * sizeof *out, err, errlen) ||
        sync_check("greedy decode", err, errlen))
        return -1;
    kv->pos += n;
    return 0;
}
