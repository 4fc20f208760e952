/* cquant.h — batch-1 decode GEMV kernels on the GPU that read weights as stored: packed
 * weight-only int8 and 4-bit (workloads/quantize's mt_qtensor bytes, copied verbatim to
 * the device) and bf16 (the model's bf16 mirror).
 *
 * What it is for: y = W x for one token (x has K floats, y N floats, W row-major N x K),
 * the matrix products of KV-cache decoding, where reading W once is the whole cost. The
 * packed tensor's single allocation (scales, zero points, codes: qformat.h's layout, the
 * same bytes mt_qtensor_bytes counts) is uploaded as one device block; the kernels decode
 * codes in registers (w = scale[unit] * c + offset[unit]) and never write a dequantized
 * copy. One warp per output row, fp32 accumulation.
 * What it is not for: batches of tokens (cuBLAS, cgpt.c), codebook schemes (nf, log,
 * kmeans), 2- and 3-bit codes, or fp16 packed tensors: mt_cu_qmat_upload refuses them.
 * Kernels are queued on the default stream; callers synchronize and check errors.
 */
#ifndef MT_TRANSFORMER_CUDA_CQUANT_H
#define MT_TRANSFORMER_CUDA_CQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "qformat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A packed linear-scheme tensor on the device (8 or 4 bits, any granularity). */
struct mt_cu_qmat {
    size_t n, k, row_bytes, unit_len, meta_row_stride;
    unsigned bits;
    const float *scale, *offset; /* inside block */
    const uint8_t *codes;        /* inside block */
    void *block;                 /* device copy of qt->block, qt->bytes long */
    size_t bytes;
};

/* Contract: copies host tensor qt (linear-asym or linear-sym, 8 or 4 bits) to one device
 * allocation of exactly qt->bytes, under category MT_MEM_WEIGHTS; *out describes it
 * (free with mt_cu_qmat_free). Returns 0, or -1 with a message (scheme or width not
 * supported, out of device memory); nothing stays allocated on failure. */
int mt_cu_qmat_upload(struct mt_cu_qmat *out, const struct mt_qtensor *qt, char *err,
                      size_t errlen);
/* Contract: frees the device block of q (block NULL: no-op) and zeroes q. */
void mt_cu_qmat_free(struct mt_cu_qmat *q);

/* What a decode GEMV does around its product: with norm_w, x is first normalized as
 * decoding's norm does it (ckernels.h mt_cuda_decode_kernels: the same bits; LayerNorm
 * with norm_b, which may be NULL, or RMSNorm when rms; the block computes it into
 * shared memory, so k * 4 bytes must fit: mt_cu_epi_norm_fits); then with row r's sum
 * acc = (W x)[r]: v = acc + bias[r] (bias NULL: acc), v = GELU(v) when gelu (cdev.cuh:
 * the float operations of ckernels' GELU kernel), y[r] = res[r] + v (res NULL: v; the
 * residual kernel's add; res may be y): the bits of the kernels and the linear one after
 * the other, in one launch. */
struct mt_cu_epi {
    const float *bias, *res;
    int gelu;
    const float *norm_w, *norm_b;
    int rms;
};
int mt_cu_epi_norm_fits(size_t k);

/* Contract: y[n] = W x + bias with W = q (device), x[k], y[n] and bias[n] (NULL: none)
 * device floats (y overwritten, no aliasing); queued on the default stream. Padding
 * columns of the codes are skipped. */
void mt_cu_qgemv(float *y, const float *x, const float *bias, const struct mt_cu_qmat *q);
/* Contract: the same with epilogue e (x must not overlap y). */
void mt_cu_qgemv_epi(float *y, const float *x, const struct mt_cu_epi *e,
                     const struct mt_cu_qmat *q);

/* Contract: y[n] = W x + bias (bias NULL: none) for a row-major bf16 W (n x k, device). W and x
 * must be 16-byte aligned and k a multiple of 8 (mt_cu_gemv_bf16_ok says so); queued on the default
 * stream. */
int mt_cu_gemv_bf16_ok(const void *w, const float *x, size_t k);
void mt_cu_gemv_bf16(float *y, const float *x, const float *bias, const void *w, size_t n,
                     size_t k);
void mt_cu_gemv_bf16_epi(float *y, const float *x, const struct mt_cu_epi *e, const void *w,
                         size_t n, size_t k);

#ifdef __cplusplus
}
#endif
#endif
