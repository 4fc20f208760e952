/* test_grad.c — finite-difference gradient check of every parameter tensor (tiny preset,
 * or the model spec given as the first argument, e.g. "tiny,attention=flash,n_kv_head=1,
 * window=3": the reference below does grouped-query heads and sliding windows, and the
 * Llama-family options: RMSNorm, RoPE, SwiGLU with any ffn, no biases, an untied head).
 *
 * What it is for: proving the model's backward is the derivative of its forward. A
 * second, independent forward written here in double precision gives numerical
 * derivatives by central differences (eps 1e-4, so truncation error ~1e-9 and rounding
 * ~1e-12); the model's float backward must match them:
 *   - per tensor, 2 random +-1 directions: |num - ana| <= 1e-3 * |num| + 1e-6;
 *   - per tensor, 3 random elements: |num - ana| <= 2e-3 * rms(grad of tensor) + 1e-6.
 * Parameters are randomized first (biases and LayerNorm params non-trivial) so no tensor
 * passes with a zero gradient. Also checks that backward accumulates (two backwards =
 * twice the gradient), that loss_scale / norm_tokens scale it, and that a caller-given
 * logits gradient (mt_gpt_backward_dlogits) reproduces mt_gpt_backward exactly.
 * What it is not for: kernel-level comparisons (test_kernels.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"
#include "kernels.h"
#include "rng.h"
#include "tf_test.h"

enum { B = 2, T = 8 };

/* Backward hook that counts its calls and runs the default (fail = refuse). */
struct bwd_count {
    struct mt_gpt *m;
    size_t calls;
    int fail;
};

static int counting_bwd(void *user, size_t layer, enum mt_linear which, const float *dout,
                        const float *in, float *din, size_t rows)
{
    struct bwd_count *c = user;
    c->calls++;
    return c->fail ? -1 : mt_gpt_linear_bwd_default(c->m, layer, which, dout, in, din, rows);
}

/* ---------------------------------------------------------------- double reference */

static void ref_ln(double *out, const double *x, const double *w, const double *b, size_t C)
{
    double m = 0, v = 0;
    for (size_t c = 0; c < C; c++)
        m += x[c];
    m /= (double)C;
    for (size_t c = 0; c < C; c++)
        v += (x[c] - m) * (x[c] - m);
    v /= (double)C;
    double s = 1.0 / sqrt(v + 1e-5);
    for (size_t c = 0; c < C; c++)
        out[c] = (x[c] - m) * s * w[c] + b[c];
}

/* The configuration's norm: LayerNorm, or RMSNorm (b NULL). */
static void ref_norm(const struct mt_gpt_config *cfg, double *out, const double *x, const double *w,
                     const double *b, size_t C)
{
    if (cfg->norm != MT_GPT_NORM_RMS) {
        ref_ln(out, x, w, b, C);
        return;
    }
    double ms = 0;
    for (size_t c = 0; c < C; c++)
        ms += x[c] * x[c];
    double s = 1.0 / sqrt(ms / (double)C + 1e-5);
    for (size_t c = 0; c < C; c++)
        out[c] = x[c] * s * w[c];
}

/* Rotates the q and k heads of one qkv row (rotate-half pairs) at position t. */
static void ref_rope(const struct mt_gpt_config *cfg, double *row, size_t t)
{
    size_t hs = cfg->n_embd / cfg->n_head, nh = (cfg->n_embd + mt_gpt_kv_dim(cfg)) / hs;
    for (size_t h = 0; h < nh; h++)
        for (size_t i = 0; i < hs / 2; i++) {
            double a = (double)t * pow(mt_gpt_rope_theta(cfg), -2.0 * (double)i / (double)hs);
            double *x = row + h * hs, x0 = x[i], x1 = x[i + hs / 2];
            x[i] = x0 * cos(a) - x1 * sin(a);
            x[i + hs / 2] = x0 * sin(a) + x1 * cos(a);
        }
}

/* Row r of an (L, n) bias tensor, or NULL where the tensor is absent. */
static const double *row_of(const double *t, size_t r, size_t n)
{
    return t ? t + r * n : NULL;
}

static void ref_lin(double *out, const double *in, const double *w, const double *b, size_t ind,
                    size_t outd)
{
    for (size_t o = 0; o < outd; o++) {
        double acc = b ? b[o] : 0.0;
        for (size_t i = 0; i < ind; i++)
            acc += in[i] * w[o * ind + i];
        out[o] = acc;
    }
}

/* Mean cross-entropy of the model with double parameters P over (B, T). */
static double ref_loss(const struct mt_gpt_config *cfg, double *const P[MT_P_COUNT], const int *in,
                       const int *tg)
{
    size_t C = cfg->n_embd, L = cfg->n_layer, NH = cfg->n_head, hs = C / NH, V = cfg->vocab;
    size_t KV = mt_gpt_kv_dim(cfg), Q = C + 2 * KV, grp = NH / (KV / hs), F = mt_gpt_ffn(cfg);
    size_t FO = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F;
    double *x = calloc(T * C, sizeof *x), *ln = calloc(T * C, sizeof *x);
    double *qkv = calloc(T * Q, sizeof *x), *y = calloc(T * C, sizeof *x);
    double *h = calloc(FO, sizeof *x), *o = calloc(C, sizeof *x), *lg = calloc(V, sizeof *x);
    double total = 0.0;
    for (size_t b = 0; b < B; b++) {
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++)
                x[t * C + c] = P[MT_P_WTE][(size_t)in[b * T + t] * C + c] +
                               (P[MT_P_WPE] ? P[MT_P_WPE][t * C + c] : 0.0);
        for (size_t l = 0; l < L; l++) {
            for (size_t t = 0; t < T; t++) {
                ref_norm(cfg, ln + t * C, x + t * C, P[MT_P_LN1W] + l * C,
                         row_of(P[MT_P_LN1B], l, C), C);
                ref_lin(qkv + t * Q, ln + t * C, P[MT_P_QKVW] + l * Q * C,
                        row_of(P[MT_P_QKVB], l, Q), C, Q);
                if (cfg->pos == MT_GPT_POS_ROPE) ref_rope(cfg, qkv + t * Q, t);
            }
            for (size_t t = 0; t < T; t++)
                for (size_t hh = 0; hh < NH; hh++) {
                    size_t lo = cfg->window && t >= cfg->window ? t + 1 - cfg->window : 0;
                    size_t kh = C + (hh / grp) * hs; /* this head's key columns */
                    double a[T], mx = -INFINITY, s = 0;
                    for (size_t u = lo; u <= t; u++) {
                        double d = 0;
                        for (size_t i = 0; i < hs; i++)
                            d += qkv[t * Q + hh * hs + i] * qkv[u * Q + kh + i];
                        a[u] = d / sqrt((double)hs);
                        mx = a[u] > mx ? a[u] : mx;
                    }
                    for (size_t u = lo; u <= t; u++)
                        s += (a[u] = exp(a[u] - mx));
                    for (size_t i = 0; i < hs; i++) {
                        double acc = 0;
                        for (size_t u = lo; u <= t; u++)
                            acc += a[u] / s * qkv[u * Q + kh + KV + i];
                        y[t * C + hh * hs + i] = acc;
                    }
                }
            for (size_t t = 0; t < T; t++) {
                ref_lin(o, y + t * C, P[MT_P_ATTPROJW] + l * C * C, row_of(P[MT_P_ATTPROJB], l, C),
                        C, C);
                for (size_t c = 0; c < C; c++)
                    x[t * C + c] += o[c];
                ref_norm(cfg, ln + t * C, x + t * C, P[MT_P_LN2W] + l * C,
                         row_of(P[MT_P_LN2B], l, C), C);
                ref_lin(h, ln + t * C, P[MT_P_FCW] + l * FO * C, row_of(P[MT_P_FCB], l, FO), C, FO);
                for (size_t i = 0; i < F; i++)
                    h[i] = cfg->mlp == MT_GPT_MLP_SWIGLU
                               ? h[i] / (1.0 + exp(-h[i])) * h[F + i]
                               : 0.5 * h[i] *
                                     (1.0 + tanh(sqrt(2.0 / M_PI) *
                                                 (h[i] + 0.044715 * h[i] * h[i] * h[i])));
                ref_lin(o, h, P[MT_P_FCPROJW] + l * F * C, row_of(P[MT_P_FCPROJB], l, C), F, C);
                for (size_t c = 0; c < C; c++)
                    x[t * C + c] += o[c];
            }
        }
        for (size_t t = 0; t < T; t++) {
            ref_norm(cfg, ln, x + t * C, P[MT_P_LNFW], P[MT_P_LNFB], C);
            ref_lin(lg, ln, P[mt_gpt_head_param(cfg)], NULL, C, V);
            double mx = -INFINITY, s = 0;
            for (size_t v = 0; v < V; v++)
                mx = lg[v] > mx ? lg[v] : mx;
            for (size_t v = 0; v < V; v++)
                s += exp(lg[v] - mx);
            total += log(s) + mx - lg[tg[b * T + t]];
        }
    }
    free(x), free(ln), free(qkv), free(y), free(h), free(o), free(lg);
    return total / (B * T);
}

/* ---------------------------------------------------------------- the check */

int main(int argc, char **argv)
{
    char err[512];
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    const char *spec = argc > 1 ? argv[1] : "tiny";
    CHECK_OK(mt_gpt_config_parse(&cfg, spec, err, sizeof err), err);
    printf("model %s\n", spec);
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    mt_gpt_init(m, 7);
    struct mt_rng rng;
    mt_rng_seed(&rng, 99);
    for (int p = 0; p < MT_P_COUNT; p++) /* make every tensor matter */
        for (size_t i = 0; i < m->param_len[p]; i++)
            m->param[p][i] += (float)(0.05 * mt_rng_normal(&rng));
    int in[B * T], tg[B * T];
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int)mt_rng_below(&rng, cfg.vocab);
        tg[i] = (int)mt_rng_below(&rng, cfg.vocab);
    }
    float loss;
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err), err);
    mt_gpt_zero_grad(m);
    CHECK_OK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err), err);

    double *P[MT_P_COUNT];
    for (int p = 0; p < MT_P_COUNT; p++) { /* absent tensors (options): NULL */
        P[p] = m->param_len[p] ? malloc(m->param_len[p] * sizeof(double)) : NULL;
        for (size_t i = 0; i < m->param_len[p]; i++)
            P[p][i] = m->param[p][i];
    }
    double l0 = ref_loss(&cfg, P, in, tg);
    printf("float loss %.7f, double reference loss %.7f\n", loss, l0);
    CHECK(fabs(l0 - loss) < 1e-4);

    const double eps = 1e-4;
    int failures = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        size_t n = m->param_len[p];
        const float *g = m->grad[p];
        double rms = 0;
        if (!n) continue; /* a tensor the configuration does not have */
        for (size_t i = 0; i < n; i++)
            rms += (double)g[i] * g[i];
        rms = sqrt(rms / (double)n);
        double worst = 0;
        for (int k = 0; k < 2; k++) { /* directional derivatives over the whole tensor */
            signed char *d = malloc(n);
            double ana = 0;
            for (size_t i = 0; i < n; i++) {
                d[i] = (mt_rng_next(&rng) & 1) ? 1 : -1;
                ana += d[i] * (double)g[i];
                P[p][i] += eps * d[i];
            }
            double fp = ref_loss(&cfg, P, in, tg);
            for (size_t i = 0; i < n; i++)
                P[p][i] -= 2 * eps * d[i];
            double fm = ref_loss(&cfg, P, in, tg);
            for (size_t i = 0; i < n; i++)
                P[p][i] = m->param[p][i];
            free(d);
            double num = (fp - fm) / (2 * eps), e = fabs(num - ana) / (fabs(num) + 1e-6);
            worst = e > worst ? e : worst;
            if (fabs(num - ana) > 1e-3 * fabs(num) + 1e-6) {
                printf("FAIL %s direction %d: numeric %.9g analytic %.9g\n", mt_gpt_param_name(p),
                       k, num, ana);
                failures++;
            }
        }
        for (int k = 0; k < 3; k++) { /* single elements */
            size_t i = (size_t)mt_rng_below(&rng, n);
            P[p][i] += eps;
            double fp = ref_loss(&cfg, P, in, tg);
            P[p][i] -= 2 * eps;
            double fm = ref_loss(&cfg, P, in, tg);
            P[p][i] = m->param[p][i];
            double num = (fp - fm) / (2 * eps);
            if (fabs(num - g[i]) > 2e-3 * rms + 1e-6) {
                printf("FAIL %s[%zu]: numeric %.9g analytic %.9g (rms %.3g)\n",
                       mt_gpt_param_name(p), i, num, (double)g[i], rms);
                failures++;
            }
        }
        printf("%-10s n=%-6zu grad rms %.3e worst directional rel err %.2e\n", mt_gpt_param_name(p),
               n, rms, worst);
        CHECK(rms > 0);
    }
    CHECK(failures == 0);

    /* Accumulation and scaling: two backwards of the same forward with loss_scale 0.5 and
     * norm_tokens = 2*B*T each add a quarter of the mean-loss gradient: half in total. */
    float *g1 = malloc(m->slab_bytes[MT_MEM_GRADIENTS]);
    memcpy(g1, m->grads, m->slab_bytes[MT_MEM_GRADIENTS]);
    mt_gpt_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err), err);
        CHECK_OK(mt_gpt_backward(m, 0.5f, 2 * B * T, err, sizeof err), err);
    }
    size_t nf = m->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float);
    double maxdiff = 0;
    for (size_t i = 0; i < nf; i++) {
        double d = fabs(m->grads[i] - 0.5 * g1[i]);
        maxdiff = d > maxdiff ? d : maxdiff;
    }
    printf("accumulated/scaled gradient max abs diff %.3g\n", maxdiff);
    CHECK(maxdiff < 1e-6);
    /* backward without a fresh forward is refused */
    CHECK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err) != 0);
    /* a caller-computed logits gradient (here the cross-entropy's own) through
     * mt_gpt_backward_dlogits gives exactly the gradient of mt_gpt_backward */
    mt_gpt_zero_grad(m);
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err), err);
    mt_k_crossentropy_bwd(m->act[MT_A_LOGITS], tg, 1.0f / (B * T), B * T, cfg.vocab);
    CHECK_OK(mt_gpt_backward_dlogits(m, err, sizeof err), err);
    CHECK(memcmp(m->grads, g1, m->slab_bytes[MT_MEM_GRADIENTS]) == 0);
    CHECK(mt_gpt_backward_dlogits(m, err, sizeof err) != 0); /* consumed */
    /* the backward hook sees the 4 linears of each block and the LM head, and the
     * gradient is unchanged when it runs the default; a failing hook fails backward */
    struct bwd_count bc = {.m = m};
    m->bwd_hook = (struct mt_gpt_linear_bwd_hook){counting_bwd, &bc};
    mt_gpt_zero_grad(m);
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err), err);
    CHECK_OK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err), err);
    CHECK(bc.calls == 4 * cfg.n_layer + 1);
    CHECK(memcmp(m->grads, g1, m->slab_bytes[MT_MEM_GRADIENTS]) == 0);
    bc.fail = 1;
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err), err);
    CHECK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err) != 0);
    m->bwd_hook.matmul_bwd = NULL;
    free(g1);
    for (int p = 0; p < MT_P_COUNT; p++)
        free(P[p]);
    mt_gpt_free(m);
    printf("ok\n");
    return 0;
}
