/* distill.c — distillation loss, gradient fold and training step (see distill.h).
 *
 * What it is for: the math of distill.h. What it is not for: parameters, metrics, data.
 */
#include "distill.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* p[V] = softmax(a / temp) in double over float logits af or double logits ad (exactly
 * one non-NULL); returns the log of the normaliser (logsumexp of a / temp). */
static double softmax_any(const float *af, const double *ad, size_t V, double temp, double *p)
{
    double mx = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < V; j++)
        mx = fmax(mx, (af ? af[j] : ad[j]) / temp);
    for (size_t j = 0; j < V; j++)
        sum += (p[j] = exp((af ? af[j] : ad[j]) / temp - mx));
    for (size_t j = 0; j < V; j++)
        p[j] /= sum;
    return mx + log(sum);
}

static double softmax_f(const float *a, size_t V, double temp, double *p)
{
    return softmax_any(a, NULL, V, temp, p);
}

/* sum_j p[j] * (log p[j] - log q[j]) with 0 * log 0 = 0. */
static double kl_div(const double *p, const double *q, size_t V)
{
    double kl = 0.0;
    for (size_t j = 0; j < V; j++)
        if (p[j] > 0.0) kl += p[j] * (log(p[j]) - log(fmax(q[j], DBL_MIN)));
    return kl;
}

double mt_distill_loss_row(const float *z, const float *zt, int y, size_t V, double alpha,
                           double temperature, double *dz)
{
    double *buf = malloc(3 * V * sizeof(double));
    if (!buf) return NAN;
    double *q = buf, *qT = buf + V, *pT = buf + 2 * V, T = temperature;
    double lse = softmax_f(z, V, 1.0, q);
    softmax_f(z, V, T, qT);
    softmax_f(zt, V, T, pT);
    double kl = kl_div(pT, qT, V), ce = lse - z[y];
    if (dz)
        for (size_t j = 0; j < V; j++)
            dz[j] = alpha * T * (qT[j] - pT[j]) + (1.0 - alpha) * (q[j] - (j == (size_t)y));
    free(buf);
    return alpha * T * T * kl + (1.0 - alpha) * ce;
}

double mt_distill_fold(float *probs, const float *zt, const int *targets, size_t N, size_t V,
                       double alpha, double temperature)
{
    double T = temperature, total = 0.0;
    double *row_kl = calloc(N ? N : 1, sizeof(double));
    if (!row_kl) return NAN;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        double *buf = malloc(3 * V * sizeof(double));
        if (!buf) failed = 1;
#pragma omp for schedule(static)
        for (size_t i = 0; i < N; i++) {
            if (!buf || targets[i] < 0) continue;
            float *p = probs + i * V;
            double *logq = buf, *qT = buf + V, *pT = buf + 2 * V;
            for (size_t j = 0; j < V; j++)
                logq[j] = log(fmax(p[j], FLT_MIN));
            softmax_any(NULL, logq, V, T, qT);
            softmax_f(zt + i * V, V, T, pT);
            row_kl[i] = T * T * kl_div(pT, qT, V);
            if (alpha != 0.0)
                for (size_t j = 0; j < V; j++)
                    p[j] = (float)(alpha * T * (qT[j] - pT[j]) + (1.0 - alpha) * p[j] +
                                   alpha * (j == (size_t)targets[i]));
        }
        free(buf);
    }
    for (size_t i = 0; i < N; i++) /* fixed order: independent of the thread count */
        total += row_kl[i];
    free(row_kl);
    return failed ? NAN : total;
}

int mt_distill_step(struct mt_gpt *student, struct mt_gpt *teacher, const struct mt_gpt_recipe *r,
                    size_t step, const int *inputs, const int *targets, double alpha,
                    double temperature, struct mt_distill_stats *st, char *err, size_t errlen)
{
    size_t B = r->batch, T = r->seq, V = student->cfg.vocab;
    if ((!teacher && alpha != 0.0) || (teacher && teacher->cfg.vocab != V)) {
        snprintf(err, errlen, "distillation needs a teacher with the student's vocab %zu", V);
        return -1;
    }
    if (teacher && mt_gpt_forward(teacher, inputs, NULL, B, T, NULL, err, errlen)) return -1;
    return mt_distill_step_logits(student, teacher ? teacher->act[MT_A_LOGITS] : NULL, r, step,
                                  inputs, targets, alpha, temperature, st, err, errlen);
}

int mt_distill_loss(struct mt_gpt *student, const float *zt, const int *targets, size_t N,
                    double alpha, double temperature, float ce, struct mt_distill_stats *st,
                    char *err, size_t errlen)
{
    if (!zt && alpha != 0.0) {
        snprintf(err, errlen, "distillation with alpha %g needs teacher logits", alpha);
        return -1;
    }
    double kl = 0.0;
    if (zt) {
        kl = mt_distill_fold(student->act[MT_A_LOGITS], zt, targets, N, student->cfg.vocab, alpha,
                             temperature);
        if (isnan(kl)) {
            snprintf(err, errlen, "distillation fold: out of memory");
            return -1;
        }
    }
    size_t counted = 0;
    for (size_t i = 0; i < N; i++)
        counted += targets[i] >= 0;
    st->ce = ce;
    st->kl = counted ? kl / (double)counted : 0.0;
    st->loss = alpha * st->kl + (1.0 - alpha) * st->ce;
    return 0;
}

int mt_distill_step_logits(struct mt_gpt *student, const float *zt, const struct mt_gpt_recipe *r,
                           size_t step, const int *inputs, const int *targets, double alpha,
                           double temperature, struct mt_distill_stats *st, char *err,
                           size_t errlen)
{
    size_t B = r->batch, T = r->seq;
    struct mt_distill_stats local;
    if (!st) st = &local;
    float ce = 0.0f;
    if (mt_gpt_forward(student, inputs, targets, B, T, &ce, err, errlen) ||
        mt_distill_loss(student, zt, targets, B * T, alpha, temperature, ce, st, err, errlen))
        return -1;
    mt_gpt_zero_grad(student);
    if (mt_gpt_backward(student, 1.0f, 0, err, errlen)) return -1;
    st->gnorm = mt_gpt_adamw_step(student, r, mt_gpt_lr_at(r, step), 1.0f);
    return 0;
}
