/* calib.h — calibration statistics of the reference GPT's block linears: the one helper
 * every calibrated method uses (prune's wanda/heads/neurons and sparsegpt, quantize's
 * gptq and imatrix).
 *
 * What it is for: (1) drawing a declared number of calibration sequences from the
 * TRAINING split, seeded (never the evaluation text), (2) running them through the model
 * with a temporary linear hook that accumulates, per block linear, the sum over tokens
 * of x^2 per input channel (the importance matrix of llama.cpp, wanda's norms), the max
 * |x| per input channel (SmoothQuant) and/or the full Gram matrix sum x x^T (the Hessian of the
 * layer-wise squared error is H = 2 X^T X), and (3) the damped inverse Hessian's upper Cholesky
 * factor that GPTQ and SparseGPT feed their error back through, factored by LAPACK. What it is not
 * for: the methods themselves (workloads/quantize, workloads/prune), the LM head (never calibrated:
 * it is tied to the embedding), Fisher statistics (prune).
 *
 * The statistics are one-shot: every layer's inputs come from the unmodified model, not
 * from a model whose earlier layers are already compressed (GPTQ's sequential variant).
 * Errors: 0, or -1 with a message. Thread safety: one thread per struct; the Gram update
 * and LAPACK use threads inside.
 */
#ifndef MT_WL_CALIB_H
#define MT_WL_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The calibrated linear kinds of a block, in enum mt_linear order (the LM head is not):
 * linear (layer l, kind k) is slot l * MT_CALIB_KINDS + k. */
#define MT_CALIB_KINDS 4

/* What mt_calib_collect accumulates (bit flags). */
#define MT_CALIB_ACT_SQ 1  /* per input channel sum of x^2 */
#define MT_CALIB_HESSIAN 2 /* per layer in x in sum of x x^T */
#define MT_CALIB_ACT_MAX 4 /* per input channel max |x| (SmoothQuant) */

struct mt_calib {
    size_t n_slots;  /* n_layer * MT_CALIB_KINDS once allocated */
    size_t *in_dim;  /* per slot: input channels */
    double **act_sq; /* per slot: in_dim sums of x^2 (NULL when not collected) */
    float **gram;    /* per slot: in_dim x in_dim row-major sums of x x^T (or NULL) */
    float **act_max; /* per slot: in_dim maxima of |x| (or NULL) */
    size_t tokens;   /* calibration tokens seen */
};

/* Contract: fills inputs[nseq * T] (and targets, when not NULL, with the next bytes) with
 * nseq windows of T bytes drawn from the training split train[n_train] by a generator
 * seeded with `seed` (mixed with a constant of its own, so the stream is apart from
 * training's). Deterministic. Returns 0, or -1 with a message when the split holds no
 * window of T + 1 bytes. */
int mt_calib_sample(const uint8_t *train, size_t n_train, size_t nseq, size_t T, uint64_t seed,
                    int *inputs, int *targets, char *err, size_t errlen);

/* Contract: mt_calib_sample over token ids (a corpus's train_tokens, any tokenizer;
 * mt_calib_sample is this on a byte view, bit for bit). */
int mt_calib_sample_tokens(const struct mt_tokens *train, size_t nseq, size_t T, uint64_t seed,
                           int *inputs, int *targets, char *err, size_t errlen);

/* Contract: runs nseq / B forwards of B x T tokens from inputs (nseq a multiple of B) on
 * model m (any mode with activations) with a temporary linear hook that adds `what`
 * (MT_CALIB_* flags) of every block linear's inputs to c, and restores m's hook after.
 * Arrays are allocated on first use, in category workspace; calling again adds more
 * tokens. Returns 0, or -1 with a message (allocation, forward). */
int mt_calib_collect(struct mt_gpt *m, const int *inputs, size_t nseq, size_t B, size_t T,
                     unsigned what, struct mt_calib *c, char *err, size_t errlen);

/* Contract: frees c's arrays and zeroes it; a zeroed struct is a no-op. */
void mt_calib_free(struct mt_calib *c);

/* Contract: the upper Cholesky factor U (n x n row-major, lower part zero) of the inverse
 * of the damped, permuted Gram matrix: Hp = G[perm][perm] (perm NULL = identity), every
 * zero diagonal entry (a dead input channel) set to 1 and flagged in dead[i] (by
 * permuted index; dead may be NULL), plus damp * mean(diag) on the diagonal; then
 * Hp^-1 = U^T U. LAPACK (dpotrf, dpotri, dpotrf) in double precision. Returns 0, or -1
 * with a message (allocation, a matrix that is not positive definite). */
int mt_calib_inverse_factor(const float *gram, size_t n, const size_t *perm, double damp, float *u,
                            uint8_t *dead, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
