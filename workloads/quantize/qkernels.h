/* qkernels.h — matrix products on packed weights: y[M x N] = x[M x K] · W^T.
 *
 * What it is for: running a linear layer whose weight is an mt_qtensor without ever
 * decoding the tensor: the fast kernels unpack 64 codes at a time in registers (as ggml
 * does) and either multiply them with fp32 activations (codes -> float, codebooks through
 * a 16-entry register table) or, for linear schemes with int8 activations, feed the
 * unsigned codes straight into AVX512-VNNI `vpdpbusd` (W8A8 / W4A8 with per-token dynamic
 * activation scales, as PyTorch's quantize_dynamic; for decode, 16 output rows at a time
 * with 4- and 2-bit codes split into bit planes). 8-bit tensor/channel weights with
 * int8 activations can also go through oneDNN's u8s8s32 GEMM. Every kernel has a scalar
 * reference (MT_QIMPL_SCALAR) that defines the result.
 * What it is not for: fp32 weights (the transformer's own matmul does those), training,
 * bias, or activations other than a dense row-major fp32 x.
 *
 * Numerics: with int8 activations each token row x_m gets s_m = max|x_m| / 127 and
 * a = round(x_m / s_m) in [-127, 127]; each unit's dot sum(c * a) is an exact int32, and
 * y = s_m * sum_u (scale_u * isum_u + offset_u * asum_u) evaluated in unit order in fp32.
 * The integer paths (scalar, AVX-512 VNNI, oneDNN) therefore agree bit for bit. With fp32
 * activations the fast kernels sum in a different order than the reference; they agree
 * to float rounding (the tests state the bound).
 *
 * Thread safety: kernels parallelize over output rows with OpenMP. A workspace belongs to
 * one caller at a time; packed tensors may be shared.
 */
#ifndef MT_QUANT_QKERNELS_H
#define MT_QUANT_QKERNELS_H

#include <stddef.h>

#include "qformat.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_qact {
    MT_QACT_F32 = 0, /* weight-only: fp32 activations */
    MT_QACT_INT8 = 1 /* per-token dynamic int8 activations (linear schemes only) */
};

enum mt_qimpl {
    MT_QIMPL_AUTO = 0,   /* the fastest available for the shape */
    MT_QIMPL_SCALAR = 1, /* the reference */
    MT_QIMPL_AVX512 = 2, /* register-unpacking AVX-512 (VNNI for int8 activations) */
    MT_QIMPL_DNNL = 3    /* oneDNN u8s8s32; 8-bit linear tensor/channel with int8 only */
};

struct mt_qws; /* grow-only scratch: padded / quantized activations, unit sums */

/* Contract: a new empty workspace (NULL on allocation failure); its buffers are
 * allocated as MT_MEM_WORKSPACE on first use. Free with mt_qws_destroy (NULL ok). */
struct mt_qws *mt_qws_create(void);
void mt_qws_destroy(struct mt_qws *ws);
/* Contract: bytes the workspace currently holds. */
size_t mt_qws_bytes(const struct mt_qws *ws);

/* Contract: 1 when `impl` can run this tensor with these activations on this CPU, else
 * 0 with the reason in err (when err is not NULL). MT_QIMPL_AUTO is always available for
 * a supported combination. */
int mt_qimpl_available(enum mt_qimpl impl, const struct mt_qtensor *w, enum mt_qact act, char *err,
                       size_t errlen);

/* Contract: y[m x n] = x[m x k] · W^T, x and y row-major and dense (y overwritten).
 * Returns 0, or -1 with a message when the combination is unsupported (int8 activations
 * with a non-linear scheme, an unavailable impl) or scratch cannot be allocated. */
int mt_qgemm(struct mt_qws *ws, const struct mt_qtensor *w, const float *x, size_t m, float *y,
             enum mt_qact act, enum mt_qimpl impl, char *err, size_t errlen);

/* Contract: the impl MT_QIMPL_AUTO picks for this call shape (for reports). */
enum mt_qimpl mt_qgemm_pick(const struct mt_qtensor *w, size_t m, enum mt_qact act);
const char *mt_qimpl_name(enum mt_qimpl impl);

#ifdef __cplusplus
}
#endif
#endif
