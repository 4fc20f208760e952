/* sparsegpt.c — SparseGPT (Frantar & Alistarh 2023) on one weight matrix (see
 * prune_model.h, mt_prune_sparsegpt_matrix).
 *
 * What it is for: the column sweep that prunes a matrix and compensates the weights it
 * keeps: blocks of MT_SPARSEGPT_BLOCK columns; at a block's start the mask of its
 * columns is chosen by the OBS saliency w^2 / [H^-1]_ii^2 of the weights as the feedback
 * has left them (unstructured: the lowest round(sparsity * rows * block) over the whole
 * block; N:M: the same saliency inside each group of M columns of a row, chosen when the
 * group's first column comes up); then, column by column, each pruned weight's error
 * (w - 0) / U_ii is fed to the block's later columns through the upper Cholesky factor U
 * of the damped inverse Hessian, and the block's errors to the columns after it in one
 * GEMM (lazy batch updates, as GPTQ's).
 * What it is not for: the statistics and the factor (calib.h), the model (prune_model.c),
 * storing the result (the sparse formats of sparse.h take the pruned matrix as is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#include "prune_model.h"

/* One row's sweep over block columns [b0, b1): N:M groups chosen at their first column,
 * pruned weights zeroed, every column's error fed to the block's later columns; the
 * errors go to e[b1 - b0]. */
static void sweep_row(float *wr, uint8_t *kr, const float *u, size_t k, unsigned nm_n,
                      unsigned nm_m, size_t b0, size_t b1, float *e)
{
    for (size_t i = b0; i < b1; i++) {
        if (nm_n && i % nm_m == 0) {
            float s[16];
            for (unsigned j = 0; j < nm_m; j++) {
                float d = u[(i + j) * k + i + j];
                s[j] = wr[i + j] * wr[i + j] / (d * d);
            }
            mt_sparse_select_nm(s, 1, nm_m, nm_n, nm_m, kr + i);
        }
        float d = kr[i] ? 0.0f : wr[i] / u[i * k + i];
        if (!kr[i]) wr[i] = 0.0f;
        e[i - b0] = d;
        for (size_t j = i + 1; j < b1; j++)
            wr[j] -= d * u[i * k + j];
    }
}

int mt_prune_sparsegpt_matrix(float *w, size_t n, size_t k, const float *u, const uint8_t *dead,
                              double sparsity, unsigned nm_n, unsigned nm_m, uint8_t *keep,
                              char *err, size_t errlen)
{
    if (nm_n && (nm_m == 0 || nm_n > nm_m || nm_m > 16 || k % nm_m)) {
        snprintf(err, errlen, "SparseGPT: %u:%u does not fit %zu columns", nm_n, nm_m, k);
        return -1;
    }
    /* blocks hold whole N:M groups */
    size_t bs = nm_n ? MT_SPARSEGPT_BLOCK - MT_SPARSEGPT_BLOCK % nm_m : MT_SPARSEGPT_BLOCK;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *e = malloc(n * bs * sizeof *e), *score = nm_n ? NULL : malloc(n * bs * sizeof *score);
    uint8_t *bk = nm_n ? NULL : malloc(n * bs);
    mt_memcat_set(prev);
    int rc = 0;
    if (!e || (!nm_n && (!score || !bk))) {
        snprintf(err, errlen, "SparseGPT: out of memory for %zu x %zu", n, k);
        rc = -1;
    }
    memset(keep, 1, n * k);
    for (size_t r = 0; dead && r < n; r++) /* inputs calibration never saw: no evidence */
        for (size_t i = 0; i < k; i++)
            if (dead[i]) w[r * k + i] = 0.0f;
    for (size_t b0 = 0; rc == 0 && b0 < k; b0 += bs) {
        size_t b1 = b0 + bs < k ? b0 + bs : k, nb = b1 - b0;
        if (!nm_n) {
            for (size_t r = 0; r < n; r++)
                for (size_t i = b0; i < b1; i++) {
                    float d = u[i * k + i], v = w[r * k + i];
                    score[r * nb + i - b0] = v * v / (d * d);
                }
            if (mt_sparse_select(score, n, nb, sparsity, MT_SPARSE_SCOPE_LAYER, bk) == (size_t)-1) {
                rc = -1;
                snprintf(err, errlen, "SparseGPT: out of memory selecting");
                break;
            }
            for (size_t r = 0; r < n; r++)
                memcpy(keep + r * k + b0, bk + r * nb, nb);
        }
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < n; r++)
            sweep_row(w + r * k, keep + r * k, u, k, nm_n, nm_m, b0, b1, e + r * nb);
        if (b1 < k && dnnl_sgemm('N', 'N', (dnnl_dim_t)n, (dnnl_dim_t)(k - b1), (dnnl_dim_t)nb,
                                 -1.0f, e, (dnnl_dim_t)nb, u + b0 * k + b1, (dnnl_dim_t)k, 1.0f,
                                 w + b1, (dnnl_dim_t)k) != dnnl_success) {
            rc = -1;
            snprintf(err, errlen, "SparseGPT: the block update GEMM failed");
        }
    }
    free(e), free(score), free(bk);
    return rc;
}
