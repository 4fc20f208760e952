/* distill.h — knowledge distillation of the reference GPT: the loss, its gradient with
 * respect to the student's logits, and one training step of a student against a teacher.
 *
 * What it is for: loss = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T))
 *                        + (1 - alpha) * CE(softmax(z_s), y)        (mean over tokens)
 * with gradient dL/dz_s = alpha * T * (softmax(z_s/T) - softmax(z_t/T))
 *                         + (1 - alpha) * (softmax(z_s) - onehot(y)) per token.
 * mt_distill_step runs it on the model's own forward/backward: the student's forward with
 * targets leaves softmax(z_s) in act[MT_A_LOGITS]; mt_distill_fold rewrites those
 * probabilities into P' = alpha*T*(q_T - p_T) + (1 - alpha)*q + alpha*onehot(y), so that
 * the model's cross-entropy backward, which computes (P' - onehot(y)) * dloss (kernels.h
 * contract), yields exactly the distillation gradient. With alpha = 0, P' = q bit for bit
 * and the step is the plain training step.
 * What it is not for: the harness (distill_plugin.c), choosing the student shape.
 * Thread-safety: one thread per model; kernels use OpenMP inside.
 */
#ifndef MT_DISTILL_H
#define MT_DISTILL_H

#include <stddef.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Contract: loss of one token from raw student logits z[V], teacher logits zt[V], target
 * y (>= 0), and when dz != NULL its gradient with respect to z (the formula above).
 * Pure; computes in double. */
double mt_distill_loss_row(const float *z, const float *zt, int y, size_t V, double alpha,
                           double temperature, double *dz);

/* Contract: in place on probs[N x V] = softmax(z_s) (a forward with targets): rewrites each
 * row whose target is >= 0 into P' (see the file comment) using teacher logits zt[N x V].
 * The student's tempered distribution is recomputed from log(probs), which equals z_s up
 * to a per-row constant (probabilities below FLT_MIN are clamped there: their tempered
 * share is below e^-87/T). Returns the sum over rows of T^2 * KL(p_T || q_T); rows
 * with a negative target are left alone and not counted. alpha == 0 leaves probs
 * unchanged and returns the KL all the same. */
double mt_distill_fold(float *probs, const float *zt, const int *targets, size_t N, size_t V,
                       double alpha, double temperature);

struct mt_distill_stats {
    double loss; /* alpha * T^2 * KL + (1 - alpha) * CE, mean per token */
    double ce;   /* the student's cross-entropy, mean per token */
    double kl;   /* T^2 * KL(p_T || q_T), mean per token */
    float gnorm; /* gradient norm before clipping */
};

/* Contract: one AdamW step of `student` (TRAIN mode) on the batch (r->batch x r->seq):
 * teacher forward (INFER or TRAIN model, no targets; skipped when teacher is NULL, which
 * requires alpha == 0), student forward with targets, fold, zero_grad, backward, AdamW at
 * mt_gpt_lr_at(r, step) — the same order as mt_gpt_train_step. Returns 0 or -1 with a
 * message. */
int mt_distill_step(struct mt_gpt *student, struct mt_gpt *teacher, const struct mt_gpt_recipe *r,
                    size_t step, const int *inputs, const int *targets, double alpha,
                    double temperature, struct mt_distill_stats *st, char *err, size_t errlen);

/* Contract: the distillation term of a step, between the student's forward with targets
 * (mean cross-entropy ce over the batch's N tokens) and its backward: folds the teacher's
 * logits zt[N x V] (NULL requires alpha == 0) into the student's act[MT_A_LOGITS]
 * (mt_distill_fold), so that mt_gpt_backward then differentiates the distillation loss,
 * and fills st's loss, ce and kl (gnorm untouched). The training loop's loss hook
 * (distill_plugin.c) and mt_distill_step_logits call it. 0 or -1 with a message. */
int mt_distill_loss(struct mt_gpt *student, const float *zt, const int *targets, size_t N,
                    double alpha, double temperature, float ce, struct mt_distill_stats *st,
                    char *err, size_t errlen);

/* Contract: the same step with the teacher's logits given: zt[r->batch * r->seq x V]
 * (e.g. read back from a cache; NULL requires alpha == 0). Bit-identical to
 * mt_distill_step when zt holds the teacher forward's logits of the same inputs. Not
 * kept; 0 or -1 with a message. */
int mt_distill_step_logits(struct mt_gpt *student, const float *zt, const struct mt_gpt_recipe *r,
                           size_t step, const int *inputs, const int *targets, double alpha,
                           double temperature, struct mt_distill_stats *st, char *err,
                           size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
