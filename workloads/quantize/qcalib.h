/* qcalib.h — calibrated packing of one weight matrix: GPTQ and the importance matrix.
 *
 * What it is for: the same packed formats mt_qtensor_pack produces (qformat.h: same
 * layout, same bytes, served by the same kernels), with the codes (and, for groups, the
 * scales) chosen from calibration statistics instead of by rounding each weight alone:
 * - GPTQ (Frantar et al. 2022): columns rounded one by one, each one's error
 *   (w - q) / [H^-1]_ii fed forward to the columns not yet rounded through the upper
 *   Cholesky factor U of the damped inverse Hessian H = 2 X^T X (calib.h factors it),
 *   inside blocks of MT_GPTQ_BLOCK columns with the block's error applied to the rest in
 *   one GEMM (lazy batch updates); optionally in act-order (columns by descending H_ii).
 *   Group scales are fitted when their group's first column comes up, from the weights
 *   as the feedback has left them; tensor and channel scales, codebooks (kmeans) and
 *   groups under act-order are fitted on the original weights first (static groups).
 *   With H = I no error moves, and the result is RTN's bit for bit.
 * - imatrix (llama.cpp's importance matrix): RTN whose scales minimise the error weighted
 *   by the mean squared activation of each input channel (linear and nf/log schemes).
 * - AWQ (Lin et al. 2023): per input channel scales s_j = rms(x_j)^alpha, or with
 *   AutoAWQ's duo scaling rms(x_j)^alpha / wmean_j^(1 - alpha) (wmean: the mean over rows
 *   of |w| relative to its unit's largest), normalised by sqrt(max s * min s); alpha and
 *   the variant searched on a grid of MT_AWQ_GRID points in [0, 1) each for the least
 *   output error ||X W^T - (X / s) Q(W diag s)^T||_F measured through the Gram matrix;
 *   then AWQ's clipping search: each unit's range clamped to [-M f, M f] (M its largest
 *   |w s|) for f = 1 - i / MT_AWQ_CLIP_GRID down to 1/2, keeping the f of least output
 *   error over the unit's inputs. W diag s is packed (any scheme RTN packs) and 1 / s must
 *   be folded into what produces the layer's input. alpha = 0 with f = 1 is RTN, so the
 *   error is never above RTN's.
 * - SmoothQuant (Xiao et al. 2022), for int8 activations: per input channel factors
 *   s_j = max|x_j|^alpha / max_i |w_ij|^(1 - alpha) move activation outliers into the
 *   weights; W diag s is packed and 1 / s folded like AWQ's.
 * - HQQ (Badri & Shaji 2023), calibration-free, linear-asym: each unit's offset (zero
 *   point) optimised with its min-max scale fixed, by half-quadratic splitting on the lp
 *   norm (p = MT_HQQ_P < 1) of W - dequant(quant(W)): a shrinkage step on the error, then
 *   the closed-form offset, MT_HQQ_ITERS times (beta x MT_HQQ_KAPPA each), stopping when the
 *   lp error stops falling; a unit keeps RTN's fit unless HQQ lowers its lp error.
 * What it is not for: collecting the statistics (calib.h), the model (qmodel.h).
 */
#ifndef MT_QUANT_QCALIB_H
#define MT_QUANT_QCALIB_H

#include <stddef.h>
#include <stdint.h>

#include "qformat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_GPTQ_BLOCK 128 /* columns per lazy block: a multiple of every group size */

/* Contract: packs w[n*k] (not modified) like mt_qtensor_pack with format f, rounding by
 * GPTQ: u is the k x k upper factor of the damped inverse Hessian in processing order
 * (mt_calib_inverse_factor with the same perm), perm the processing order of the
 * columns (NULL = 0..k-1; act-order otherwise), dead[i] (may be NULL) flags processed
 * column i as a dead input (zeroed first). *update_s (may be NULL) gets the seconds of
 * the rounding and error updates. f must not be fp16/bf16. Returns the tensor, or NULL
 * with a message. Deterministic for a given thread count. */
struct mt_qtensor *mt_qtensor_pack_gptq(const float *w, size_t n, size_t k,
                                        const struct mt_qformat *f, const float *u,
                                        const size_t *perm, const uint8_t *dead, double *update_s,
                                        char *err, size_t errlen);

/* Contract: packs w[n*k] like mt_qtensor_pack, each unit's scale (and offset) chosen to
 * minimise sum_j imp[j] (w_j - q_j)^2 with imp[j] the importance of input column j
 * (the mean squared activation); never worse than RTN under that weight. Linear, nf and
 * log schemes; NULL with a message otherwise. */
struct mt_qtensor *mt_qtensor_pack_imatrix(const float *w, size_t n, size_t k,
                                           const struct mt_qformat *f, const float *imp, char *err,
                                           size_t errlen);

#define MT_AWQ_GRID 20      /* alpha = 0, 1/20, ..., 19/20 (AWQ's grid) */
#define MT_AWQ_CLIP_GRID 20 /* clip ratios 1, 0.95, ..., 0.5 (AWQ's auto_clip grid) */

/* Contract: AWQ on w[n*k] (not modified): act_sq[k] the mean x^2 of each input channel,
 * gram[k*k] the inputs' X^T X (any positive scale). Writes the chosen scales to s[k] and
 * alpha to *alpha (may be NULL; negative: -alpha with duo scaling); returns W diag s
 * packed in format f with the clipped ranges (tensor granularity and kmeans: not
 * clipped), or NULL with a message. Deterministic for a given thread count. */
struct mt_qtensor *mt_qtensor_pack_awq(const float *w, size_t n, size_t k,
                                       const struct mt_qformat *f, const float *act_sq,
                                       const float *gram, float *s, double *alpha, char *err,
                                       size_t errlen);

/* Contract: SmoothQuant's factors for w[n*k] and act_max[k] (max |x| per input channel)
 * into s[k]: max|x_j|^alpha / max_i |w_ij|^(1 - alpha), 1 where either max is 0. */
void mt_smoothquant_scales(const float *w, size_t n, size_t k, const float *act_max, double alpha,
                           float *s);

#define MT_HQQ_P 0.7      /* the lp norm HQQ minimises (HQQ's default) */
#define MT_HQQ_BETA 10.0  /* the initial half-quadratic penalty */
#define MT_HQQ_KAPPA 1.01 /* its growth per iteration */
#define MT_HQQ_ITERS 20

/* Contract: packs w[n*k] like mt_qtensor_pack with a linear-asym format f (NULL with a
 * message for any other scheme), each unit's offset optimised by HQQ (see above) and the
 * codes re-encoded to their nearest level. The sum over units of sum |w - q|^p is never
 * above RTN's. Deterministic for a given thread count. */
struct mt_qtensor *mt_qtensor_pack_hqq(const float *w, size_t n, size_t k,
                                       const struct mt_qformat *f, char *err, size_t errlen);

/* Contract: sum over w[n*k] of |w - q|^p for the packed q (p = 2: the squared L2 error). */
double mt_qtensor_lp_error(const struct mt_qtensor *q, const float *w, double p);

#ifdef __cplusplus
}
#endif
#endif
