/* kernels.c — fast versions of the layer kernels (see kernels.h for the contracts).
 *
 * What it is for: the hot loops of the reference model: GEMMs through oneDNN (the forward
 * linear as a matmul primitive with the bias fused, the backward products through
 * dnnl_sgemm, whichever measured faster on these shapes), everything else as fused single-pass
 * loops that are OpenMP-parallel over independent rows (or column blocks for reductions over rows,
 * so results do not depend on the thread count) and `omp simd`-vectorized inside a row. What it is
 * not for: a second definition of any layer — kernels_ref.c is the definition and tests hold these
 * to it.
 *
 * exp and tanh use a Cephes-style polynomial (mt_k_expf) instead of libm because libm's
 * scalar calls block vectorization; the error is < 2e-7 relative, far below what tests
 * tolerate.
 */
#include "kernels.h"
#include "kernels_gelu.h"
#include "kernels_math.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#define COL_BLOCK 32 /* columns per task in reductions over rows */
#define PAR_MIN 4096 /* below this many elements stay on one thread */

#pragma omp declare simd notinbranch
static inline float fast_tanhf(float x)
{
    return 1.0f - 2.0f / (fast_expf(2.0f * x) + 1.0f);
}

float mt_k_expf(float x)
{
    return fast_expf(x);
}

/* Row-major C = alpha op(A) op(B) + beta C with oneDNN. The shapes come from the model,
 * whose sizes are checked at configuration time, so a failure here is a programming
 * error; it is caught by the tests through the results, not by a status here. */
static void sgemm(char ta, char tb, size_t M, size_t N, size_t K, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    /* oneDNN allocates its packing buffers inside the call: they are GEMM workspace */
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    dnnl_sgemm(ta, tb, (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, 1.0f, A, (dnnl_dim_t)lda, B,
               (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    mt_memcat_set(prev);
}

void mt_k_colsum_add(float *dst, const float *src, size_t nrow, size_t ncol, size_t ld)
{
    size_t nblk = (ncol + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (nrow * ncol > PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t j0 = blk * COL_BLOCK, w = ncol - j0 < COL_BLOCK ? ncol - j0 : COL_BLOCK;
        float acc[COL_BLOCK] = {0};
        for (size_t i = 0; i < nrow; i++) {
            const float *s = src + i * ld + j0;
#pragma omp simd
            for (size_t j = 0; j < w; j++)
                acc[j] += s[j];
        }
        for (size_t j = 0; j < w; j++)
            dst[j0 + j] += acc[j];
    }
}

/* One row (batch-1 decoding): a dot product per output, contiguous in w, vectorized and
 * split over threads only when the weight is large enough to pay for it. */
static void gemv(float *out, const float *inp, const float *w, const float *bias, size_t C,
                 size_t OC)
{
#pragma omp parallel for schedule(static) if (OC * C > (size_t)1 << 18)
    for (size_t o = 0; o < OC; o++) {
        const float *row = w + o * C;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (size_t c = 0; c < C; c++)
            acc += row[c] * inp[c];
        out[o] = acc + (bias ? bias[o] : 0.0f);
    }
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias) as a oneDNN matmul primitive over the caller's
 * buffers (w read in place as a column-major [C,OC] operand, nothing copied). On these
 * shapes it beats dnnl_sgemm('N','T') by 5-75 % (the slow case is K = 4C). Primitives are
 * created per call: oneDNN's own primitive cache makes a repeat cost ~3 us. Returns -1 if
 * oneDNN refuses the shape, so the caller can fall back to sgemm. */
static int matmul_prim(float *out, const float *inp, const float *w, const float *bias, size_t N,
                       size_t C, size_t OC)
{
    dnnl_engine_t eng = NULL;
    dnnl_stream_t st = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t mem[5] = {NULL, NULL, NULL, NULL, NULL};
    dnnl_memory_desc_t d[5];
    dnnl_dims_t sd = {(dnnl_dim_t)N, (dnnl_dim_t)C}, ss = {(dnnl_dim_t)C, 1};
    dnnl_dims_t wd = {(dnnl_dim_t)C, (dnnl_dim_t)OC}, ws = {1, (dnnl_dim_t)C};
    dnnl_dims_t dd = {(dnnl_dim_t)N, (dnnl_dim_t)OC}, ds = {(dnnl_dim_t)OC, 1};
    dnnl_dims_t bd = {1, (dnnl_dim_t)OC}, bs = {(dnnl_dim_t)OC, 1};
    void *scratch = NULL;
    const void *ptr[5] = {inp, w, out, bias, NULL};
    const int arg[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS,
                        DNNL_ARG_SCRATCHPAD};
    int nargs = 0, rc = -1;
    dnnl_exec_arg_t args[5];
    dnnl_matmul_desc_t md;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE); /* oneDNN's JIT code and our scratchpad */
    if (dnnl_memory_desc_init_by_strides(&d[0], 2, sd, dnnl_f32, ss) ||
        dnnl_memory_desc_init_by_strides(&d[1], 2, wd, dnnl_f32, ws) ||
        dnnl_memory_desc_init_by_strides(&d[2], 2, dd, dnnl_f32, ds) ||
        dnnl_memory_desc_init_by_strides(&d[3], 2, bd, dnnl_f32, bs) ||
        dnnl_matmul_desc_init(&md, &d[0], &d[1], bias ? &d[3] : NULL, &d[2]) ||
        dnnl_engine_create(&eng, dnnl_cpu, 0) ||
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags) ||
        dnnl_primitive_attr_create(&attr) ||
        /* a user scratchpad (66-526 KB on the model's shapes), allocated for this call and
         * freed after it, instead of oneDNN's library scratchpad, which stays alive with
         * the cached primitive: 4 MB less resident workspace when serving `small` */
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) || dnnl_primitive_create(&prim, pd))
        goto out;
    d[4] = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = dnnl_memory_desc_get_size(&d[4]);
    if (sbytes && !(scratch = aligned_alloc(64, (sbytes + 63) / 64 * 64))) goto out;
    ptr[4] = scratch;
    for (int i = 0; i < 5; i++) {
        if ((i == 3 && !bias) || (i == 4 && !sbytes)) continue;
        if (dnnl_memory_create(&mem[i], &d[i], eng, (void *)ptr[i])) goto out;
        args[nargs++] = (dnnl_exec_arg_t){arg[i], mem[i]};
    }
    if (dnnl_primitive_execute(prim, st, nargs, args) == dnnl_success &&
        dnnl_stream_wait(st) == dnnl_success)
        rc = 0;
out:
    for (int i = 0; i < 5; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    free(scratch);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st) dnnl_stream_destroy(st);
    if (eng) dnnl_engine_destroy(eng);
    mt_memcat_set(prev);
    return rc;
}

static _Atomic size_t matmul_prims, matmul_fallbacks;

void mt_k_matmul_counts(struct mt_k_matmul_counts *out)
{
    out->prims = atomic_load_explicit(&matmul_prims, memory_order_relaxed);
    out->fallbacks = atomic_load_explicit(&matmul_fallbacks, memory_order_relaxed);
}

void mt_k_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, size_t N,
                     size_t C, size_t OC)
{
    if (N == 1) {
        gemv(out, inp, w, bias, C, OC);
        return;
    }
    const char *force = getenv("MT_TEST_MATMUL_FALLBACK"); /* tests only; see kernels.h */
    if (!(force && force[0] == '1') && matmul_prim(out, inp, w, bias, N, C, OC) == 0) {
        atomic_fetch_add_explicit(&matmul_prims, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&matmul_fallbacks, 1, memory_order_relaxed);
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC > PAR_MIN)
        for (size_t i = 0; i < N; i++)
            memcpy(out + i * OC, bias, OC * sizeof *out);
    }
    sgemm('N', 'T', N, OC, C, inp, C, w, C, bias ? 1.0f : 0.0f, out, OC);
}

void mt_k_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, size_t N, size_t C, size_t OC)
{
    if (dinp) sgemm('N', 'N', N, C, OC, dout, OC, w, C, 0.0f, dinp, C);
    if (dw) sgemm('T', 'N', OC, C, N, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) mt_k_colsum_add(dbias, dout, N, OC, OC);
}

void mt_k_encoder_fwd(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                      size_t T, size_t C)
{
#pragma omp parallel for schedule(static) if (B * T * C > PAR_MIN)
    for (size_t bt = 0; bt < B * T; bt++) {
        const float *e = wte + (size_t)inp[bt] * C;
        float *o = out + bt * C;
        if (!wpe) {
            memcpy(o, e, C * sizeof *o);
            continue;
        }
        const float *p = wpe + (bt % T) * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            o[c] = e[c] + p[c];
    }
}

void mt_k_add_positions(float *x, const float *wpe, size_t B, size_t T, size_t C)
{
#pragma omp parallel for schedule(static) if (B * T * C > PAR_MIN)
    for (size_t bt = 0; bt < B * T; bt++) {
        const float *p = wpe + (bt % T) * C;
        float *o = x + bt * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            o[c] += p[c];
    }
}

void mt_k_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                      size_t T, size_t C)
{
    size_t nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    /* Parallel over channel blocks: repeated tokens write the same row, never the same
     * channel from two threads. */
#pragma omp parallel for schedule(static) if (B * T * C > PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t c0 = blk * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        for (size_t bt = 0; bt < B * T; bt++) {
            const float *d = dout + bt * C + c0;
            float *e = dwte + (size_t)inp[bt] * C + c0;
#pragma omp simd
            for (size_t c = 0; c < w; c++)
                e[c] += d[c];
            if (!dwpe) continue;
            float *p = dwpe + (bt % T) * C + c0;
#pragma omp simd
            for (size_t c = 0; c < w; c++)
                p[c] += d[c];
        }
    }
}

void mt_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w,
                        const float *b, size_t N, size_t C)
{
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *o = out + i * C, m = 0.0f, v = 0.0f;
#pragma omp simd reduction(+ : m)
        for (size_t c = 0; c < C; c++)
            m += x[c];
        m /= (float)C;
#pragma omp simd reduction(+ : v)
        for (size_t c = 0; c < C; c++)
            v += (x[c] - m) * (x[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + 1e-5f);
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            o[c] = (x[c] - m) * s * w[c] + b[c];
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = s;
    }
}

/* The gain and bias gradients of a norm: dw[C] += sum over rows of (x - mean) * rstd *
 * dout, db[C] += the column sums of dout; parallel over column blocks. RMSNorm: mean and
 * db NULL. */
static void norm_param_grads(float *dw, float *db, const float *dout, const float *inp,
                             const float *mean, const float *rstd, size_t N, size_t C)
{
    if (!dw) return; /* frozen parameters (LoRA's base): no gradients */
    size_t nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t c0 = blk * COL_BLOCK, wd = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        float aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
        for (size_t i = 0; i < N; i++) {
            const float *d = dout + i * C + c0, *x = inp + i * C + c0;
            float m = mean ? mean[i] : 0.0f, s = rstd[i];
#pragma omp simd
            for (size_t c = 0; c < wd; c++) {
                ab[c] += d[c];
                aw[c] += (x[c] - m) * s * d[c];
            }
        }
        for (size_t c = 0; c < wd; c++) {
            dw[c0 + c] += aw[c];
            if (db) db[c0 + c] += ab[c];
        }
    }
}

void mt_k_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, size_t C)
{
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *d = dout + i * C, *x = inp + i * C;
        float *di = dinp + i * C, m = mean[i], s = rstd[i], dm = 0.0f, dnm = 0.0f;
#pragma omp simd reduction(+ : dm, dnm)
        for (size_t c = 0; c < C; c++) {
            float dnorm = w[c] * d[c];
            dm += dnorm;
            dnm += dnorm * (x[c] - m) * s;
        }
        dm /= (float)C;
        dnm /= (float)C;
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            di[c] += (w[c] * d[c] - dm - (x[c] - m) * s * dnm) * s;
    }
    norm_param_grads(dw, db, dout, inp, mean, rstd, N, C);
}

/* Attention runs per (batch, head) as small GEMMs: S = Q K^T, causal softmax in place,
 * O = P V (and the transposed products backward). The masked upper triangle costs a
 * few redundant FLOPs but the GEMMs beat any dot-product loop. Inside the parallel loop
 * oneDNN runs each GEMM on the calling thread. */
void mt_k_attention_fwd(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                        size_t Ckv, size_t NH, size_t window)
{
    struct mt_k_attn_geom g = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = g.hs, ld = g.ld;
    float scale = g.scale;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * ld + h * hs;
            const float *k = qkv + b * T * ld + C + (h / g.grp) * hs, *v = k + Ckv;
            float *a = att + (b * NH + h) * T * T;
            sgemm('N', 'T', T, T, hs, q, ld, k, ld, 0.0f, a, T);
            for (size_t t = 0; t < T; t++) {
                size_t lo = mt_k_window_start(t, window);
                float *row = a + t * T, maxv = -INFINITY, sum = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++)
                    maxv = row[t2] > maxv ? row[t2] : maxv;
#pragma omp simd reduction(+ : sum)
                for (size_t t2 = lo; t2 <= t; t2++) {
                    row[t2] = fast_expf((row[t2] - maxv) * scale);
                    sum += row[t2];
                }
                float inv = 1.0f / sum;
#pragma omp simd
                for (size_t t2 = lo; t2 <= t; t2++)
                    row[t2] *= inv;
                for (size_t t2 = 0; t2 < lo; t2++)
                    row[t2] = 0.0f;
                for (size_t t2 = t + 1; t2 < T; t2++)
                    row[t2] = 0.0f;
            }
            sgemm('N', 'N', T, hs, T, a, T, v, ld, 0.0f, out + b * T * C + h * hs, C);
        }
}

/* Parallel over (batch, key/value head): the query heads of a group add into the same dk
 * and dv, in head order. */
void mt_k_attention_bwd(float *dqkv, float *datt, const float *dout, const float *qkv,
                        const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                        size_t window)
{
    struct mt_k_attn_geom ge = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = ge.hs, ld = ge.ld, grp = ge.grp;
    float scale = ge.scale;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < ge.nkv; g++)
            for (size_t j = 0; j < grp; j++) {
                size_t h = g * grp + j;
                float beta = j ? 1.0f : 0.0f; /* the group's first head overwrites dk, dv */
                const float *q = qkv + b * T * ld + h * hs;
                const float *k = qkv + b * T * ld + C + g * hs, *v = k + Ckv;
                const float *a = att + (b * NH + h) * T * T, *d = dout + b * T * C + h * hs;
                float *da = datt + (b * NH + h) * T * T, *dq = dqkv + b * T * ld + h * hs;
                float *dk = dqkv + b * T * ld + C + g * hs, *dv = dk + Ckv;
                sgemm('N', 'T', T, T, hs, d, C, v, ld, 0.0f, da, T); /* dP = dO V^T */
                sgemm('T', 'N', T, hs, T, a, T, d, C, beta, dv, ld); /* dV = P^T dO */
                for (size_t t = 0; t < T; t++) {                     /* dS, causal */
                    size_t lo = mt_k_window_start(t, window);
                    const float *ar = a + t * T;
                    float *dr = da + t * T, dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (size_t t2 = lo; t2 <= t; t2++)
                        dot += ar[t2] * dr[t2];
#pragma omp simd
                    for (size_t t2 = lo; t2 <= t; t2++)
                        dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
                    for (size_t t2 = 0; t2 < lo; t2++)
                        dr[t2] = 0.0f;
                    for (size_t t2 = t + 1; t2 < T; t2++)
                        dr[t2] = 0.0f;
                }
                sgemm('N', 'N', T, hs, T, da, T, k, ld, 0.0f, dq, ld); /* dQ = dS K */
                sgemm('T', 'N', T, hs, T, da, T, q, ld, beta, dk, ld); /* dK = dS^T Q */
            }
}

/* Flash attention: per (batch, head), query tiles of TILE rows against key tiles of TILE
 * columns, S and P in one stack tile, the output accumulated in place in `out` and
 * rescaled as the running row maximum grows. */
#define TILE MT_K_FLASH_TILE

/* Columns [*c0, *c1) of a key tile starting at key j0 (nc keys) that query row t attends. */
static void tile_cols(size_t t, size_t window, size_t j0, size_t nc, size_t *c0, size_t *c1)
{
    size_t lo = mt_k_window_start(t, window);
    *c0 = lo > j0 ? lo - j0 : 0;
    *c1 = t < j0 ? 0 : (t - j0 + 1 < nc ? t - j0 + 1 : nc);
    if (*c0 > *c1) *c0 = *c1;
}

static void zero_rows(float *x, size_t rows, size_t w, size_t ld)
{
    for (size_t r = 0; r < rows; r++)
        memset(x + r * ld, 0, w * sizeof *x);
}

void mt_k_flash_attention_fwd(float *out, float *lse, const float *qkv, size_t B, size_t T,
                              size_t C, size_t Ckv, size_t NH, size_t window)
{
    struct mt_k_attn_geom ge = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = ge.hs, ld = ge.ld;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            const float *k = qkv + b * T * ld + C + (h / ge.grp) * hs, *v = k + Ckv;
            const float *q = qkv + b * T * ld + h * hs;
            float *o = out + b * T * C + h * hs, *l = lse + (b * NH + h) * T;
            for (size_t i0 = 0; i0 < T; i0 += TILE) {
                size_t nr = T - i0 < TILE ? T - i0 : TILE;
                float s[TILE * TILE], mx[TILE], sum[TILE];
                for (size_t r = 0; r < nr; r++)
                    mx[r] = -INFINITY, sum[r] = 0.0f;
                zero_rows(o + i0 * C, nr, hs, C);
                for (size_t j0 = mt_k_window_start(i0, window); j0 < i0 + nr; j0 += TILE) {
                    size_t nc = i0 + nr - j0 < TILE ? i0 + nr - j0 : TILE;
                    sgemm('N', 'T', nr, nc, hs, q + i0 * ld, ld, k + j0 * ld, ld, 0.0f, s, TILE);
                    for (size_t r = 0; r < nr; r++) {
                        size_t c0, c1;
                        float *row = s + r * TILE, m = mx[r], ts = 0.0f;
                        tile_cols(i0 + r, window, j0, nc, &c0, &c1);
                        for (size_t c = c0; c < c1; c++) {
                            row[c] *= ge.scale;
                            m = row[c] > m ? row[c] : m;
                        }
#pragma omp simd reduction(+ : ts)
                        for (size_t c = c0; c < c1; c++) {
                            row[c] = fast_expf(row[c] - m);
                            ts += row[c];
                        }
                        for (size_t c = 0; c < c0; c++)
                            row[c] = 0.0f;
                        for (size_t c = c1; c < nc; c++)
                            row[c] = 0.0f;
                        if (c0 == c1) continue; /* nothing attended here: keep the state */
                        float alpha = fast_expf(mx[r] - m); /* 0 while the row was empty */
                        sum[r] = sum[r] * alpha + ts;
                        mx[r] = m;
                        if (alpha != 1.0f) {
                            float *orow = o + (i0 + r) * C;
#pragma omp simd
                            for (size_t i = 0; i < hs; i++)
                                orow[i] *= alpha;
                        }
                    }
                    sgemm('N', 'N', nr, hs, nc, s, TILE, v + j0 * ld, ld, 1.0f, o + i0 * C, C);
                }
                for (size_t r = 0; r < nr; r++) {
                    float inv = 1.0f / sum[r], *orow = o + (i0 + r) * C;
#pragma omp simd
                    for (size_t i = 0; i < hs; i++)
                        orow[i] *= inv;
                    l[i0 + r] = mx[r] + logf(sum[r]);
                }
            }
        }
}

void mt_k_flash_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                              const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                              size_t window)
{
    struct mt_k_attn_geom ge = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = ge.hs, ld = ge.ld;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < ge.nkv; g++) {
            const float *k = qkv + b * T * ld + C + g * hs, *v = k + Ckv;
            float *dk = dqkv + b * T * ld + C + g * hs, *dv = dk + Ckv;
            zero_rows(dk, T, hs, ld);
            zero_rows(dv, T, hs, ld);
            for (size_t h = g * ge.grp; h < (g + 1) * ge.grp; h++) {
                const float *q = qkv + b * T * ld + h * hs, *l = lse + (b * NH + h) * T;
                const float *d = dout + b * T * C + h * hs, *o = out + b * T * C + h * hs;
                float *dq = dqkv + b * T * ld + h * hs;
                zero_rows(dq, T, hs, ld);
                for (size_t i0 = 0; i0 < T; i0 += TILE) {
                    size_t nr = T - i0 < TILE ? T - i0 : TILE;
                    float p[TILE * TILE], dp[TILE * TILE], D[TILE];
                    for (size_t r = 0; r < nr; r++) {
                        const float *dr = d + (i0 + r) * C, *orow = o + (i0 + r) * C;
                        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                        for (size_t i = 0; i < hs; i++)
                            acc += dr[i] * orow[i];
                        D[r] = acc;
                    }
                    for (size_t j0 = mt_k_window_start(i0, window); j0 < i0 + nr; j0 += TILE) {
                        size_t nc = i0 + nr - j0 < TILE ? i0 + nr - j0 : TILE;
                        sgemm('N', 'T', nr, nc, hs, q + i0 * ld, ld, k + j0 * ld, ld, 0.0f, p,
                              TILE);
                        sgemm('N', 'T', nr, nc, hs, d + i0 * C, C, v + j0 * ld, ld, 0.0f, dp,
                              TILE); /* dP = dO V^T */
                        for (size_t r = 0; r < nr; r++) {
                            size_t c0, c1;
                            float *pr = p + r * TILE, *dr = dp + r * TILE, lr = l[i0 + r];
                            float Dr = D[r];
                            tile_cols(i0 + r, window, j0, nc, &c0, &c1);
#pragma omp simd
                            for (size_t c = c0; c < c1; c++) {
                                pr[c] = fast_expf(pr[c] * ge.scale - lr);
                                dr[c] = pr[c] * (dr[c] - Dr) * ge.scale;
                            }
                            for (size_t c = 0; c < c0; c++)
                                pr[c] = dr[c] = 0.0f;
                            for (size_t c = c1; c < nc; c++)
                                pr[c] = dr[c] = 0.0f;
                        }
                        /* dV += P^T dO, dQ += dS K, dK += dS^T Q (dS already scaled) */
                        sgemm('T', 'N', nc, hs, nr, p, TILE, d + i0 * C, C, 1.0f, dv + j0 * ld, ld);
                        sgemm('N', 'N', nr, hs, nc, dp, TILE, k + j0 * ld, ld, 1.0f, dq + i0 * ld,
                              ld);
                        sgemm('T', 'N', nc, hs, nr, dp, TILE, q + i0 * ld, ld, 1.0f, dk + j0 * ld,
                              ld);
                    }
                }
            }
        }
}

/* p[j] = exp(l[j] - maxv) for j < n (p may be l): the exponentials of a softmax; returns
 * their sum. */
static inline float exp_shifted(float *p, const float *l, size_t n, float maxv)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t j = 0; j < n; j++) {
        p[j] = fast_expf(l[j] - maxv);
        sum += p[j];
    }
    return sum;
}

void mt_k_attention_decode(float *out, float *att, const float *q, const float *K, const float *V,
                           size_t n, size_t C, size_t Ckv, size_t NH)
{
    struct mt_k_attn_geom ge = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = ge.hs;
    float scale = ge.scale;
    for (size_t h = 0; h < NH; h++) {
        const float *qh = q + h * hs;
        size_t kh = (h / ge.grp) * hs;
        float maxv = -INFINITY, *o = out + h * hs;
        for (size_t t = 0; t < n; t++) {
            const float *k = K + t * Ckv + kh;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (size_t i = 0; i < hs; i++)
                dot += qh[i] * k[i];
            att[t] = dot * scale;
            maxv = att[t] > maxv ? att[t] : maxv;
        }
        float inv = 1.0f / exp_shifted(att, att, n, maxv);
#pragma omp simd
        for (size_t i = 0; i < hs; i++)
            o[i] = 0.0f;
        for (size_t t = 0; t < n; t++) {
            const float *v = V + t * Ckv + kh;
            float a = att[t] * inv;
#pragma omp simd
            for (size_t i = 0; i < hs; i++)
                o[i] += a * v[i];
        }
    }
}

void mt_k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C)
{
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *o = out + i * C, ms = 0.0f;
#pragma omp simd reduction(+ : ms)
        for (size_t c = 0; c < C; c++)
            ms += x[c] * x[c];
        float s = 1.0f / sqrtf(ms / (float)C + 1e-5f);
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            o[c] = x[c] * s * w[c];
        if (rstd) rstd[i] = s;
    }
}

void mt_k_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, size_t N, size_t C)
{
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *d = dout + i * C, *x = inp + i * C;
        float *di = dinp + i * C, s = rstd[i], dnm = 0.0f;
#pragma omp simd reduction(+ : dnm)
        for (size_t c = 0; c < C; c++)
            dnm += w[c] * d[c] * x[c] * s;
        dnm /= (float)C;
#pragma omp simd
        for (size_t c = 0; c < C; c++)
            di[c] += (w[c] * d[c] - x[c] * s * dnm) * s;
    }
    norm_param_grads(dw, NULL, dout, inp, NULL, rstd, N, C);
}

#define ROPE_BLOCK 64 /* channel pairs whose cos/sin are computed at once */

/* Parallel over positions: each computes its angles once, in blocks of ROPE_BLOCK
 * pairs, and rotates those pairs of every q and k head of every batch row. */
static void rope(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                 double theta, double sign)
{
    size_t ld = Ca + 2 * Ckv, half = hs / 2, nh = (Ca + Ckv) / hs;
#pragma omp parallel for schedule(static) if (B * T * ld > PAR_MIN)
    for (size_t t = 0; t < T; t++)
        for (size_t i0 = 0; i0 < half; i0 += ROPE_BLOCK) {
            size_t n = half - i0 < ROPE_BLOCK ? half - i0 : ROPE_BLOCK;
            float cs[ROPE_BLOCK], sn[ROPE_BLOCK];
            for (size_t i = 0; i < n; i++) {
                double a = (double)(pos0 + t) * pow(theta, -2.0 * (double)(i0 + i) / (double)hs);
                cs[i] = (float)cos(a);
                sn[i] = (float)(sign * sin(a));
            }
            for (size_t b = 0; b < B; b++)
                for (size_t h = 0; h < nh; h++) {
                    float *x0 = qkv + (b * T + t) * ld + h * hs + i0, *x1 = x0 + half;
#pragma omp simd
                    for (size_t i = 0; i < n; i++) {
                        float a0 = x0[i], a1 = x1[i];
                        x0[i] = a0 * cs[i] - a1 * sn[i];
                        x1[i] = a0 * sn[i] + a1 * cs[i];
                    }
                }
        }
}

void mt_k_rope_fwd(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                   double theta)
{
    rope(qkv, B, T, pos0, Ca, Ckv, hs, theta, 1.0);
}

void mt_k_rope_bwd(float *dqkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                   double theta)
{
    rope(dqkv, B, T, pos0, Ca, Ckv, hs, theta, -1.0);
}

void mt_k_swiglu_fwd(float *out, const float *inp, size_t N, size_t F)
{
#pragma omp parallel for schedule(static) if (N * F > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *g = inp + i * 2 * F, *u = g + F;
        float *o = out + i * F;
#pragma omp simd
        for (size_t j = 0; j < F; j++)
            o[j] = g[j] / (1.0f + fast_expf(-g[j])) * u[j];
    }
}

void mt_k_swiglu_bwd(float *dinp, const float *inp, const float *dout, size_t N, size_t F)
{
#pragma omp parallel for schedule(static) if (N * F > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        const float *g = inp + i * 2 * F, *u = g + F, *d = dout + i * F;
        float *dg = dinp + i * 2 * F, *du = dg + F;
#pragma omp simd
        for (size_t j = 0; j < F; j++) {
            float sig = 1.0f / (1.0f + fast_expf(-g[j]));
            dg[j] = d[j] * u[j] * sig * (1.0f + g[j] * (1.0f - sig));
            du[j] = d[j] * g[j] * sig;
        }
    }
}

void mt_k_gelu_fwd(float *out, const float *inp, size_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel : n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(gelu_tanh_arg(x)));
    }
}

void mt_k_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel : n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        dinp[i] = gelu_grad(x, fast_tanhf(gelu_tanh_arg(x))) * dout[i];
    }
}

void mt_k_residual_fwd(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel : n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* Softmax of one row in place or not; returns log(sum exp(l - max)) and max. */
static void softmax_row(float *p, const float *l, size_t V, float *maxp, float *lse)
{
    float maxv = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : maxv)
    for (size_t j = 0; j < V; j++)
        maxv = l[j] > maxv ? l[j] : maxv;
    sum = exp_shifted(p, l, V, maxv);
    float inv = 1.0f / sum;
#pragma omp simd
    for (size_t j = 0; j < V; j++)
        p[j] *= inv;
    *maxp = maxv;
    *lse = logf(sum);
}

void mt_k_softmax_fwd(float *probs, const float *logits, size_t N, size_t V)
{
#pragma omp parallel for schedule(static) if (N * V > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        float maxv, lse;
        softmax_row(probs + i * V, logits + i * V, V, &maxv, &lse);
    }
}

double mt_k_crossentropy_fwd(float *logits, float *losses, const int *targets, size_t N, size_t V)
{
#pragma omp parallel for schedule(static) if (N * V > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        float *l = logits + i * V, maxv, lse;
        float lt = targets[i] < 0 ? 0.0f : l[targets[i]];
        softmax_row(l, l, V, &maxv, &lse);
        losses[i] = targets[i] < 0 ? 0.0f : lse - (lt - maxv);
    }
    double total = 0.0;
    for (size_t i = 0; i < N; i++)
        total += losses[i];
    return total;
}

void mt_k_crossentropy_bwd(float *probs, const int *targets, float dloss, size_t N, size_t V)
{
#pragma omp parallel for schedule(static) if (N * V > PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        float *p = probs + i * V;
        float s = targets[i] < 0 ? 0.0f : dloss;
#pragma omp simd
        for (size_t j = 0; j < V; j++)
            p[j] *= s;
        if (targets[i] >= 0) p[targets[i]] -= dloss;
    }
}

void mt_k_adamw(float *p, float *g, float *m, float *v, size_t n, const struct mt_adamw_args *a)
{
    float c1 = 1.0f - powf(a->beta1, (float)a->step);
    float c2 = 1.0f - powf(a->beta2, (float)a->step);
    float b1 = a->beta1, b2 = a->beta2, lr = a->lr, eps = a->eps, wd = a->weight_decay;
    float gs = a->grad_scale, keep = a->zero_grad ? 0.0f : 1.0f;
#pragma omp parallel for simd schedule(static) if (parallel : n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        g[i] *= keep;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mh = mi / c1, vh = vi / c2;
        p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
    }
}

float mt_k_grad_norm(double sumsq, float grad_div)
{
    return (float)sqrt(sumsq) / grad_div;
}

double mt_k_sumsq(const float *x, size_t n)
{
    enum { GROUP = 256 };
    size_t nblk = (n + MT_K_SUMSQ_BLOCK - 1) / MT_K_SUMSQ_BLOCK;
    double total = 0.0;
    for (size_t g0 = 0; g0 < nblk; g0 += GROUP) {
        double part[GROUP];
        size_t ng = nblk - g0 < GROUP ? nblk - g0 : GROUP;
#pragma omp parallel for schedule(static) if (ng > 1)
        for (size_t k = 0; k < ng; k++) {
            size_t i0 = (g0 + k) * MT_K_SUMSQ_BLOCK;
            size_t i1 = i0 + MT_K_SUMSQ_BLOCK < n ? i0 + MT_K_SUMSQ_BLOCK : n;
            double s = 0.0;
#pragma omp simd reduction(+ : s)
            for (size_t i = i0; i < i1; i++)
                s += (double)x[i] * x[i];
            part[k] = s;
        }
        for (size_t k = 0; k < ng; k++)
            total += part[k];
    }
    return total;
}
