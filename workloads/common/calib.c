/* calib.c — calibration sequences, activation statistics through the linear hook, and the
 * damped inverse Hessian factor (see calib.h).
 *
 * What it is for: the statistics every calibrated method reads. What it is not for: the
 * methods, or reporting (the plugins).
 */
#include "calib.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#include "data.h"
#include "util.h"

#define CALIB_STREAM 0xca11b7a7e5ull /* mixed into the seed: a stream apart from training's */

int mt_calib_sample(const uint8_t *train, size_t n_train, size_t nseq, size_t T, uint64_t seed,
                    int *inputs, int *targets, char *err, size_t errlen)
{
    struct mt_tokens s = mt_tokens_of_bytes(train, n_train);
    return mt_calib_sample_tokens(&s, nseq, T, seed, inputs, targets, err, errlen);
}

int mt_calib_sample_tokens(const struct mt_tokens *train, size_t nseq, size_t T, uint64_t seed,
                           int *inputs, int *targets, char *err, size_t errlen)
{
    if (train->n < T + 1)
        return mt_tf_fail(err, errlen, "calibration: the training split holds %zu %s, need %zu",
                          train->n, train->bytes ? "bytes" : "tokens", T + 1);
    int *tg = targets ? targets : malloc(T * sizeof *tg);
    if (!tg) return mt_tf_fail(err, errlen, "calibration: out of memory");
    struct mt_rng rng;
    mt_rng_seed(&rng, seed ^ CALIB_STREAM);
    for (size_t q = 0; q < nseq; q++) /* one window at a time: targets may be a scratch row */
        mt_batch_sample_tokens(train, 1, T, &rng, inputs + q * T, tg + (targets ? q * T : 0));
    if (!targets) free(tg);
    return 0;
}

struct collect {
    struct mt_gpt *m;
    struct mt_calib *c;
    unsigned what;
};

static int collect_matmul(void *user, size_t layer, enum mt_linear which, const float *in,
                          float *out, size_t rows)
{
    struct collect *h = user;
    if (which < MT_CALIB_KINDS) {
        size_t s = layer * MT_CALIB_KINDS + which, n = h->c->in_dim[s];
        if (h->what & MT_CALIB_ACT_SQ) {
            double *acc = h->c->act_sq[s];
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < n; j++)
                    acc[j] += (double)in[r * n + j] * in[r * n + j];
        }
        if (h->what & MT_CALIB_ACT_MAX) {
            float *mx = h->c->act_max[s];
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < n; j++)
                    mx[j] = fmaxf(mx[j], fabsf(in[r * n + j]));
        }
        if ((h->what & MT_CALIB_HESSIAN) &&
            dnnl_sgemm('T', 'N', (dnnl_dim_t)n, (dnnl_dim_t)n, (dnnl_dim_t)rows, 1.0f, in,
                       (dnnl_dim_t)n, in, (dnnl_dim_t)n, 1.0f, h->c->gram[s],
                       (dnnl_dim_t)n) != dnnl_success)
            return -1;
    }
    return mt_gpt_linear_default(h->m, layer, which, in, out, rows);
}

/* Allocates c's per-slot arrays that `what` asks for and c lacks. */
static int alloc_arrays(const struct mt_gpt *m, unsigned what, struct mt_calib *c)
{
    size_t n = m->cfg.n_layer * MT_CALIB_KINDS;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE), rc = 0;
    if (!c->in_dim) {
        c->n_slots = n;
        c->in_dim = calloc(n, sizeof *c->in_dim);
        for (size_t s = 0; c->in_dim && s < n; s++) {
            float *w, *b;
            size_t out;
            mt_gpt_linear_weights(m, s / MT_CALIB_KINDS, (enum mt_linear)(s % MT_CALIB_KINDS), &w,
                                  &b, &c->in_dim[s], &out);
        }
    }
    if (!c->in_dim) rc = -1;
/* c->field, when `what` has flag and c lacks it: n zeroed rows, row s of len elements (len
 * may use s) */
#define ALLOC_ROWS(field, flag, len)                                                               \
    if (!rc && (what & (flag)) && !c->field) {                                                     \
        c->field = calloc(n, sizeof *c->field);                                                    \
        for (size_t s = 0; c->field && s < n && !rc; s++)                                          \
            rc = (c->field[s] = calloc(len, sizeof **c->field)) ? 0 : -1;                          \
        if (!c->field) rc = -1;                                                                    \
    }
    ALLOC_ROWS(act_sq, MT_CALIB_ACT_SQ, c->in_dim[s])
    ALLOC_ROWS(gram, MT_CALIB_HESSIAN, c->in_dim[s] * c->in_dim[s])
    ALLOC_ROWS(act_max, MT_CALIB_ACT_MAX, c->in_dim[s])
#undef ALLOC_ROWS
    mt_memcat_set(prev);
    return rc;
}

int mt_calib_collect(struct mt_gpt *m, const int *inputs, size_t nseq, size_t B, size_t T,
                     unsigned what, struct mt_calib *c, char *err, size_t errlen)
{
    if (B == 0 || nseq % B)
        return mt_tf_fail(err, errlen, "calibration: %zu sequences are not batches of %zu", nseq,
                          B);
    if (c->in_dim && c->n_slots != m->cfg.n_layer * MT_CALIB_KINDS)
        return mt_tf_fail(err, errlen, "calibration statistics of another model");
    if (alloc_arrays(m, what, c)) {
        mt_calib_free(c);
        return mt_tf_fail(err, errlen, "calibration: out of memory");
    }
    struct collect h = {m, c, what};
    struct mt_gpt_linear_hook saved = m->hook;
    m->hook = (struct mt_gpt_linear_hook){collect_matmul, &h};
    int rc = 0;
    for (size_t q = 0; q < nseq && rc == 0; q += B) {
        rc = mt_gpt_forward(m, inputs + q * T, NULL, B, T, NULL, err, errlen);
        c->tokens += B * T;
    }
    m->hook = saved;
    return rc;
}

void mt_calib_free(struct mt_calib *c)
{
    for (size_t s = 0; s < c->n_slots; s++) {
        if (c->act_sq) free(c->act_sq[s]);
        if (c->gram) free(c->gram[s]);
        if (c->act_max) free(c->act_max[s]);
    }
    free(c->act_sq);
    free(c->gram);
    free(c->act_max);
    free(c->in_dim);
    memset(c, 0, sizeof *c);
}

int mt_calib_inverse_factor(const float *gram, size_t n, const size_t *perm, double damp, float *u,
                            uint8_t *dead, char *err, size_t errlen)
{
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    double *h = malloc(n * n * sizeof *h);
    mt_memcat_set(prev);
    if (!h) return mt_tf_fail(err, errlen, "inverse Hessian: out of memory (%zu x %zu)", n, n);
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        size_t pi = perm ? perm[i] : i;
        for (size_t j = 0; j < n; j++)
            h[i * n + j] = gram[pi * n + (perm ? perm[j] : j)];
        if (dead) dead[i] = h[i * n + i] == 0.0;
        if (h[i * n + i] == 0.0) h[i * n + i] = 1.0;
        mean += h[i * n + i] / (double)n;
    }
    for (size_t i = 0; i < n; i++)
        h[i * n + i] += damp * mean;
    lapack_int N = (lapack_int)n, info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', N, h, N);
    if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', N, h, N);
    for (size_t i = 0; info == 0 && i < n; i++) /* dpotri fills the lower triangle only */
        for (size_t j = i + 1; j < n; j++)
            h[i * n + j] = h[j * n + i];
    if (info == 0) info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', N, h, N);
    if (info != 0) {
        free(h);
        return mt_tf_fail(err, errlen,
                          "inverse Hessian: LAPACK reports %d (not positive definite; raise damp)",
                          (int)info);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            u[i * n + j] = j < i ? 0.0f : (float)h[i * n + j];
    free(h);
    return 0;
}
