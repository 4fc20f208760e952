/* test_distill.c — tests of the distillation loss and training step.
 *
 * What it is for: `test_distill <name>`:
 *   gradcheck  central finite differences of mt_distill_loss_row against its analytic
 *              gradient, for alpha in {0, 0.3, 1} and T in {1, 2, 4};
 *   fold       mt_distill_fold on softmax(z) gives P' with P' - onehot(y) equal to that
 *              gradient (what the model's cross-entropy backward then propagates);
 *   alpha0     five steps of mt_distill_step with alpha = 0 and a teacher present leave
 *              the student bit-identical to five mt_gpt_train_step steps.
 * What it is not for: the plugin (parameters, metrics), accuracy of distilled students.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill.h"
#include "gpt.h"
#include "rng.h"

#include "check.h"

#define V 17

/* Logits on a 2^-8 grid so z +- h (h = 2^-8) is exact in float. */
static void random_logits(struct mt_rng *r, float *z, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        z[i] = (float)(round(mt_rng_normal(r) * scale * 256.0) / 256.0);
}

static void test_gradcheck(void)
{
    struct mt_rng r;
    mt_rng_seed(&r, 1);
    static const double alphas[] = {0.0, 0.3, 1.0}, temps[] = {1.0, 2.0, 4.0};
    float z[V], zt[V];
    double dz[V];
    const float h = 1.0f / 256.0f;
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < 3; t++) {
            random_logits(&r, z, V, 2.0);
            random_logits(&r, zt, V, 2.0);
            int y = (int)mt_rng_below(&r, V);
            mt_distill_loss_row(z, zt, y, V, alphas[a], temps[t], dz);
            double worst = 0.0;
            for (size_t j = 0; j < V; j++) {
                float save = z[j];
                z[j] = save + h;
                double lp = mt_distill_loss_row(z, zt, y, V, alphas[a], temps[t], NULL);
                z[j] = save - h;
                double lm = mt_distill_loss_row(z, zt, y, V, alphas[a], temps[t], NULL);
                z[j] = save;
                double fd = (lp - lm) / (2.0 * h);
                /* central difference error ~ h^2 * f''' / 6, well under 1e-4 here */
                double e = fabs(fd - dz[j]) / (1e-4 + 1e-3 * fabs(dz[j]));
                worst = e > worst ? e : worst;
            }
            CHECK(worst <= 1.0, "alpha %.1f T %.0f: gradient off by %.3g x tolerance", alphas[a],
                  temps[t], worst);
        }
}

static void test_fold(void)
{
    struct mt_rng r;
    mt_rng_seed(&r, 2);
    enum { N = 6 };
    float z[N * V], zt[N * V], probs[N * V];
    int y[N];
    double dz[V];
    random_logits(&r, z, N * V, 3.0);
    random_logits(&r, zt, N * V, 3.0);
    for (size_t i = 0; i < N; i++)
        y[i] = (int)mt_rng_below(&r, V);
    y[N - 1] = -1; /* ignored row: left alone */
    static const double alphas[] = {0.0, 0.5, 1.0};
    for (int a = 0; a < 3; a++) {
        double temp = 2.0;
        for (size_t i = 0; i < N; i++) { /* softmax(z) in float, as the model leaves it */
            float mx = -INFINITY, s = 0.0f;
            for (size_t j = 0; j < V; j++)
                mx = fmaxf(mx, z[i * V + j]);
            for (size_t j = 0; j < V; j++)
                s += (probs[i * V + j] = expf(z[i * V + j] - mx));
            for (size_t j = 0; j < V; j++)
                probs[i * V + j] /= s;
        }
        float before[N * V];
        memcpy(before, probs, sizeof(probs));
        double kl = mt_distill_fold(probs, zt, y, N, V, alphas[a], temp);
        double kl_ref = 0.0;
        for (size_t i = 0; i + 1 < N; i++) {
            /* alpha = 1: the loss is T^2 * KL alone */
            kl_ref += mt_distill_loss_row(z + i * V, zt + i * V, y[i], V, 1.0, temp, NULL);
            mt_distill_loss_row(z + i * V, zt + i * V, y[i], V, alphas[a], temp, dz);
            for (size_t j = 0; j < V; j++) {
                double g = probs[i * V + j] - (j == (size_t)y[i]);
                CHECK(fabs(g - dz[j]) <= 2e-6, "alpha %.1f row %zu col %zu: %g vs %g", alphas[a], i,
                      j, g, dz[j]);
            }
        }
        CHECK(fabs(kl - kl_ref) <= 1e-5 * (1.0 + kl_ref), "kl %g vs %g", kl, kl_ref);
        CHECK(memcmp(probs + (N - 1) * V, before + (N - 1) * V, V * sizeof(float)) == 0,
              "ignored row changed");
        if (alphas[a] == 0.0)
            CHECK(memcmp(probs, before, sizeof(probs)) == 0, "alpha 0 changed the probs");
    }
}

static void test_alpha0(void)
{
    char err[256];
    struct mt_gpt_config cfg;
    struct mt_gpt *a, *b, *teacher;
    mt_gpt_config_preset(&cfg, "tiny", err, sizeof(err));
    size_t B = 4, T = 32;
    if (mt_gpt_create(&a, &cfg, MT_GPT_TRAIN, B, T, err, sizeof(err)) ||
        mt_gpt_create(&b, &cfg, MT_GPT_TRAIN, B, T, err, sizeof(err)) ||
        mt_gpt_create(&teacher, &cfg, MT_GPT_INFER, B, T, err, sizeof(err))) {
        fprintf(stderr, "create: %s\n", err);
        exit(2);
    }
    mt_gpt_init(a, 11);
    mt_gpt_init(b, 11);
    mt_gpt_init(teacher, 12);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(5);
    r.batch = B;
    r.seq = T;
    struct mt_rng rng;
    mt_rng_seed(&rng, 4);
    int in[4 * 32], tg[4 * 32];
    for (size_t s = 0; s < r.steps; s++) {
        for (size_t i = 0; i < B * T; i++) {
            in[i] = (int)mt_rng_below(&rng, cfg.vocab);
            tg[i] = (int)mt_rng_below(&rng, cfg.vocab);
        }
        float loss, gnorm;
        struct mt_distill_stats st;
        CHECK(mt_gpt_train_step(a, &r, s, in, tg, &loss, &gnorm, err, sizeof(err)) == 0, "%s", err);
        CHECK(mt_distill_step(b, teacher, &r, s, in, tg, 0.0, 2.0, &st, err, sizeof(err)) == 0,
              "%s", err);
        CHECK(st.loss == loss && st.gnorm == gnorm, "step %zu: loss %g vs %g", s, st.loss, loss);
        CHECK(st.kl > 0.0, "the teacher was not consulted");
    }
    CHECK(memcmp(a->params, b->params, a->slab_bytes[MT_MEM_WEIGHTS]) == 0,
          "alpha = 0 is not bit-identical to plain training");
    mt_gpt_free(a);
    mt_gpt_free(b);
    mt_gpt_free(teacher);
}

int main(int argc, char **argv)
{
    static const struct mt_test tests[] = {
        {"gradcheck", test_gradcheck}, {"fold", test_fold}, {"alpha0", test_alpha0}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), argc > 1 ? argv[1] : NULL);
}
