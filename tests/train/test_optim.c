/* test_optim.c — the optimizer kernels of optim.h on their own.
 *
 * What it is for: the dynamic 8-bit maps (256 sorted codes, 0 and 1 among them); the
 * vectorized block quantizer against the scalar reference (the same bytes and absmax);
 * the round trip of a block within half the widest gap between codes times its absmax;
 * the 8-bit AdamW unit update with either quantizer (the same bytes and weights) and
 * close to fp32 AdamW on its first step; Adafactor's factored state on a matrix whose g^2
 * is rank one (its second moment is then exact: the update equals sign-like g/|g|
 * clipped to RMS 1); Adafactor against Shazeer & Stern 2018, Algorithm 4 written out in
 * double (row sums R, column sums C of G^2 + eps1, V = R C / sum(R), beta2_t = 1 -
 * t^-0.8, U = G / sqrt(V) clipped to RMS d = 1; the unfactored v of a vector; the
 * recipe's lr instead of the relative step, decay decoupled as AdamW's) over 6 steps of
 * random gradients: weights within 1e-5 of the update's size, state within
 * 1e-5 relative of R / cols and C / rows (means: the same V); the exact state bytes of
 * each kind per unit. Parts of a unit held apart (tensor parallelism, mt_q8_adamw_part,
 * mt_adafactor_part), two threads standing for two ranks: 8-bit AdamW bit for bit the
 * whole unit's weights and codes, Adafactor within float rounding.
 * What it is not for: the engine and training (test_engine.c optim/offload).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "rng.h"
#include "tf_adamw.h"
#include "tf_test.h"

enum { N = 5000 }; /* two full blocks and a partial one */

static void fill(float *x, size_t n, uint64_t seed, float scale)
{
    struct mt_rng r;
    mt_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) { /* wide dynamic range: a normal times 10^U(-4, 0) */
        float e = (float)mt_rng_uniform(&r) * 4.0f;
        x[i] = scale * (float)mt_rng_normal(&r) * powf(10.0f, -e);
    }
}

static float max_gap(const struct mt_q8_map *m)
{
    float g = 0.0f;
    for (int k = 0; k < 255; k++)
        g = fmaxf(g, m->code[k + 1] - m->code[k]);
    return g;
}

static void test_maps(void)
{
    for (int s = 0; s < 2; s++) {
        struct mt_q8_map m;
        mt_q8_map_init(&m, s);
        int zero = 0, one = 0;
        for (int k = 0; k < 256; k++) {
            if (k) CHECK(m.code[k] > m.code[k - 1]);
            zero |= m.code[k] == 0.0f, one |= m.code[k] == 1.0f;
        }
        CHECK(zero && one);
        CHECK(s ? m.code[0] < -0.99f : m.code[0] == 0.0f);
        printf("%s map: codes %g .. %g, widest gap %g\n", s ? "signed" : "unsigned",
               (double)m.code[0], (double)m.code[255], (double)max_gap(&m));
    }
}

static void test_quantize(void)
{
    static float x[N], y[N];
    static uint8_t q1[N], q2[N];
    for (int s = 0; s < 2; s++) {
        struct mt_q8_map m;
        mt_q8_map_init(&m, s);
        fill(x, N, 7 + (uint64_t)s, 3.0f);
        if (!s)
            for (size_t i = 0; i < N; i++)
                x[i] = x[i] * x[i]; /* v: non-negative */
        x[17] = 0.0f;
        double worst = 0.0;
        for (size_t i0 = 0; i0 < N; i0 += MT_Q8_BLOCK) {
            size_t k = N - i0 < MT_Q8_BLOCK ? N - i0 : MT_Q8_BLOCK;
            float a1 = mt_q8_quantize(q1 + i0, x + i0, k, &m);
            float a2 = mt_q8_quantize_ref(q2 + i0, x + i0, k, &m);
            CHECK(a1 == a2);
            CHECK(memcmp(q1 + i0, q2 + i0, k) == 0);
            mt_q8_dequantize(y + i0, q1 + i0, k, a1, &m);
            float bound = a1 * (0.5f * max_gap(&m)) * (1.0f + 1e-5f);
            for (size_t i = i0; i < i0 + k; i++) {
                double e = fabs((double)x[i] - y[i]);
                CHECK(e <= bound);
                worst = fmax(worst, e / a1);
            }
        }
        CHECK(y[17] == 0.0f);
        float zeros[4] = {0}, back[4];
        uint8_t qz[4];
        CHECK(mt_q8_quantize(qz, zeros, 4, &m) == 0.0f);
        mt_q8_dequantize(back, qz, 4, 0.0f, &m);
        CHECK(back[0] == 0.0f);
        printf("%s: fast = reference on %d values; worst |x - deq(q(x))| / absmax %.5f <= %.5f\n",
               s ? "signed" : "unsigned", N, worst, 0.5 * max_gap(&m));
    }
}

static void test_adamw8_unit(void)
{
    static float p1[N], p2[N], p0[N], g1[N], g2[N], m[N], v[N], g0[N];
    size_t nb = (N + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK,
           bytes = mt_optim_unit_bytes(MT_OPTIM_ADAMW8, N, 0);
    CHECK(bytes == 2 * N + 8 * nb);
    unsigned char *s1 = calloc(1, bytes), *s2 = calloc(1, bytes);
    CHECK(s1 && s2);
    struct mt_q8_map mm, mv;
    mt_q8_map_init(&mm, 1);
    mt_q8_map_init(&mv, 0);
    fill(p0, N, 3, 0.02f);
    memcpy(p1, p0, sizeof p0);
    memcpy(p2, p0, sizeof p0);
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    for (uint64_t step = 1; step <= 3; step++) {
        struct mt_adamw_args a = tf_adamw_args(1e-3f, 1.0f, step, 1);
        fill(g1, N, 100 + step, 1.0f);
        memcpy(g2, g1, sizeof g1);
        memcpy(g0, g1, sizeof g1);
        mt_q8_adamw_unit(p1, g1, s1, N, &a, &mm, &mv, 0);
        mt_q8_adamw_unit(p2, g2, s2, N, &a, &mm, &mv, 1);
        CHECK(memcmp(s1, s2, bytes) == 0);
        CHECK(memcmp(p1, p2, sizeof p1) == 0);
        CHECK(g1[0] == 0.0f && g1[N - 1] == 0.0f);
        if (step == 1) { /* the first step reads zero state: fp32 AdamW's (to rounding) */
            mt_k_adamw_ref(p0, g0, m, v, N, &a);
            for (size_t i = 0; i < N; i++)
                CHECK(fabsf(p0[i] - p1[i]) <= 1e-6f * fmaxf(fabsf(p0[i]), 1e-3f));
        }
    }
    printf("adamw8 unit: vectorized = reference over 3 steps, %zu state bytes for %d params\n",
           bytes, N);
    free(s1);
    free(s2);
}

static void test_adafactor_unit(void)
{
    enum { R = 6, C = 5 };
    float p[R * C], g[R * C], st[R + C] = {0}, acc[C];
    for (size_t r = 0; r < R; r++) /* g_rc = a_r b_c: g^2 is rank one */
        for (size_t c = 0; c < C; c++)
            g[r * C + c] = (float)(r + 1) * (c % 2 ? -0.5f : 0.25f * (float)(c + 1));
    memset(p, 0, sizeof p);
    struct mt_adamw_args a = {.lr = 0.1f, .grad_scale = 1.0f, .step = 1};
    float g0[R * C];
    memcpy(g0, g, sizeof g);
    mt_adafactor_unit(p, g, st, R, C, acc, &a);
    /* step 1: beta2_t = 0, V = g^2 exactly (up to eps1 and rounding): u = sign(g), RMS 1 */
    for (size_t i = 0; i < R * C; i++) {
        CHECK(fabsf(p[i] + 0.1f * (g0[i] > 0 ? 1.0f : -1.0f)) < 1e-5f);
        CHECK(g[i] == 0.0f);
    }
    CHECK(mt_optim_unit_bytes(MT_OPTIM_ADAFACTOR, R, C) == 4 * (R + C));
    CHECK(mt_optim_unit_bytes(MT_OPTIM_ADAFACTOR, R, 0) == 4 * R);
    CHECK(mt_optim_unit_bytes(MT_OPTIM_ADAMW, R, C) == 8 * R * C);
    printf("adafactor unit: rank-one g^2 gives the sign update on step 1\n");
}

/* Algorithm 4 of the paper, in double, one step: x (rows x cols, cols = 0: a vector),
 * R[rows] and C[cols] as sums (a vector: v[rows]). */
static void adafactor_paper(double *x, const float *g, double *R, double *C, size_t rows,
                            size_t cols, double lr, double wd, int t)
{
    const double eps1 = 1e-30, d = 1.0, b2 = 1.0 - pow((double)t, -0.8);
    size_t w = cols ? cols : 1, n = rows * w;
    double *u = malloc(n * sizeof *u), ss = 0.0;
    if (!cols) {
        for (size_t i = 0; i < n; i++) {
            R[i] = b2 * R[i] + (1 - b2) * ((double)g[i] * g[i] + eps1);
            u[i] = g[i] / sqrt(R[i]);
        }
    } else {
        double rsum = 0.0;
        for (size_t r = 0; r < rows; r++) {
            double s = 0.0;
            for (size_t c = 0; c < cols; c++)
                s += (double)g[r * cols + c] * g[r * cols + c] + eps1;
            R[r] = b2 * R[r] + (1 - b2) * s;
            rsum += R[r];
        }
        for (size_t c = 0; c < cols; c++) {
            double s = 0.0;
            for (size_t r = 0; r < rows; r++)
                s += (double)g[r * cols + c] * g[r * cols + c] + eps1;
            C[c] = b2 * C[c] + (1 - b2) * s;
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                u[r * cols + c] = g[r * cols + c] / sqrt(R[r] * C[c] / rsum);
    }
    for (size_t i = 0; i < n; i++)
        ss += u[i] * u[i];
    double clip = fmax(1.0, sqrt(ss / (double)n) / d);
    for (size_t i = 0; i < n; i++)
        x[i] -= lr * (u[i] / clip + wd * x[i]);
    free(u);
}

static void test_adafactor_paper(void)
{
    enum { R = 24, C = 40, STEPS = 6 };
    for (int vec = 0; vec < 2; vec++) {
        size_t cols = vec ? 0 : C, n = R * (vec ? 1 : C);
        float p[R * C], g[R * C], st[R + C] = {0}, acc[C];
        double x[R * C], Rs[R] = {0}, Cs[C] = {0}, worst = 0.0, worst_st = 0.0;
        fill(p, n, 7, 0.02f); /* weights of the init's scale: float rounding << lr */
        for (size_t i = 0; i < n; i++)
            x[i] = p[i];
        for (int t = 1; t <= STEPS; t++) {
            struct mt_adamw_args a = {
                .lr = 0.01f, .weight_decay = 0.1f, .grad_scale = 1.0f, .step = t};
            fill(g, n, 100 + (uint64_t)t, 0.5f);
            /* rows of very different scales: the factored V must follow them */
            for (size_t i = 0; i < n; i++)
                g[i] *= (float)(1 + (i / (vec ? 1 : C)) % 5);
            adafactor_paper(x, g, Rs, Cs, R, cols, a.lr, a.weight_decay, t);
            mt_adafactor_unit(p, g, st, R, cols, acc, &a);
            for (size_t i = 0; i < n; i++) /* the update's size is lr: compare against it */
                worst = fmax(worst, fabs((double)p[i] - x[i]) / (double)a.lr);
            for (size_t r = 0; r < R; r++)
                worst_st = fmax(worst_st, fabs(st[r] * (double)(vec ? 1 : C) - Rs[r]) / Rs[r]);
            for (size_t c = 0; c < cols; c++)
                worst_st = fmax(worst_st, fabs(st[R + c] * (double)R - Cs[c]) / Cs[c]);
        }
        printf("adafactor vs the paper (%s %dx%d, %d steps): weights within %.2g lr, state "
               "within %.2g relative\n",
               vec ? "vector" : "matrix", R, vec ? 1 : C, STEPS, worst, worst_st);
        CHECK(worst <= 1e-5);
        CHECK(worst_st <= 1e-5);
    }
}

/* ---------------------------------------------------------------- parts (tensor parallel) */

/* Two "ranks" (threads) holding the column halves of one matrix, meeting at a barrier to
 * sum or max their buffers, as the distributed engine's all-reduces do. */
enum { PR = 48, PC = 96, PH = PC / 2, PSTEPS = 4 };
struct parts {
    pthread_barrier_t bar;
    float fbuf[2][2 * PR * PC];
    double dbuf[2];
};
struct rank_arg {
    struct parts *sh;
    int rank, kind, split; /* kind: 0 adamw8, 1 adafactor; split: MT_OPTIM_SPLIT_ROWS/COLS */
    size_t lr, lc;         /* the part's rows and columns */
    float p[PR * PH], g[PSTEPS][PR * PH];
    unsigned char state[4 * PR * PH + 8 * PR * PC];
    float scratch[2 * PR * PC + PR + PC];
    size_t bound[PR * PH + 1], block[PR * PH], n_runs;
};
static void part_reduce(struct rank_arg *a, float *v, size_t n, int max)
{
    struct parts *sh = a->sh;
    memcpy(sh->fbuf[a->rank], v, n * sizeof *v);
    pthread_barrier_wait(&sh->bar);
    for (size_t i = 0; i < n; i++) /* the other rank's value: the same sum on both */
        v[i] = max ? fmaxf(sh->fbuf[0][i], sh->fbuf[1][i]) : sh->fbuf[0][i] + sh->fbuf[1][i];
    pthread_barrier_wait(&sh->bar);
}
static void part_sumf(void *u, float *v, size_t n)
{
    part_reduce(u, v, n, 0);
}
static void part_maxf(void *u, float *v, size_t n)
{
    part_reduce(u, v, n, 1);
}
static void part_sumd(void *u, double *v)
{
    struct rank_arg *a = u;
    a->sh->dbuf[a->rank] = *v;
    pthread_barrier_wait(&a->sh->bar);
    *v = a->sh->dbuf[0] + a->sh->dbuf[1];
    pthread_barrier_wait(&a->sh->bar);
}
/* The recipe of step t + 1 of the parts test. */
static struct mt_adamw_args part_args(int t)
{
    return tf_adamw_args(1e-2f, 1.0f, (uint64_t)t + 1, 0);
}

static void *part_rank(void *arg)
{
    struct rank_arg *a = arg;
    struct mt_q8_map mm, mv;
    mt_q8_map_init(&mm, 1);
    mt_q8_map_init(&mv, 0);
    struct mt_q8_part q8 = {
        a->bound, a->block, a->n_runs, (PR * PC + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK, part_maxf, a};
    struct mt_optim_part af = {PR, PC, a->split, part_sumf, part_sumd, a};
    for (int t = 0; t < PSTEPS; t++) {
        struct mt_adamw_args aa = part_args(t);
        if (a->kind == 0)
            mt_q8_adamw_part(a->p, a->g[t], a->state, a->lr * a->lc, &q8, a->scratch, &aa, &mm,
                             &mv);
        else
            mt_adafactor_part(a->p, a->g[t], (float *)(void *)a->state, a->lr, a->lc, a->scratch,
                              &aa, &af);
    }
    return NULL;
}

/* The column halves, then the row halves, of a 48 x 96 matrix (2048-blocks of the whole
 * cross its rows and both halves) against the whole unit over 4 steps: 8-bit AdamW's
 * weights and codes bit for bit (each half's runs carry the whole block's absmax);
 * Adafactor's weights within 1e-6 (its sums across the halves round in another order). */
static void test_parts(void)
{
    for (int t4 = 0; t4 < 4; t4++) {
        int kind = t4 % 2, split = t4 < 2 ? MT_OPTIM_SPLIT_COLS : MT_OPTIM_SPLIT_ROWS;
        size_t lr = split == MT_OPTIM_SPLIT_COLS ? PR : PR / 2;
        size_t lc = split == MT_OPTIM_SPLIT_COLS ? PH : PC;
        static struct parts sh;
        static struct rank_arg ra[2];
        static float p[PR * PC], g[PSTEPS][PR * PC], scratch[2 * PR * PC];
        static unsigned char state[4 * PR * PC + 8 * PR * PC];
        struct mt_q8_map mm, mv;
        mt_q8_map_init(&mm, 1);
        mt_q8_map_init(&mv, 0);
        memset(state, 0, sizeof state);
        fill(p, PR * PC, 11, 1.0f);
        for (int t = 0; t < PSTEPS; t++)
            fill(g[t], PR * PC, 20 + (uint64_t)t, 1e-2f);
        pthread_barrier_init(&sh.bar, NULL, 2);
        for (int k = 0; k < 2; k++) {
            struct rank_arg *a = &ra[k];
            memset(a, 0, sizeof *a);
            a->sh = &sh, a->rank = k, a->kind = kind, a->split = split, a->lr = lr, a->lc = lc;
            for (size_t r = 0; r < lr; r++)
                for (size_t c = 0; c < lc; c++) {
                    size_t li = r * lc + c, gr = split == MT_OPTIM_SPLIT_ROWS ? k * lr + r : r;
                    size_t gi = gr * PC + (split == MT_OPTIM_SPLIT_COLS ? (size_t)k * lc : 0) + c;
                    a->p[li] = p[gi];
                    for (int t = 0; t < PSTEPS; t++)
                        a->g[t][li] = g[t][gi];
                    size_t blk = gi / MT_Q8_BLOCK; /* a run per block met, as doptim cuts */
                    if (!a->n_runs || a->block[a->n_runs - 1] != blk) {
                        a->bound[a->n_runs] = li;
                        a->block[a->n_runs++] = blk;
                    }
                }
            a->bound[a->n_runs] = PR * PH;
        }
        pthread_t th[2];
        for (int k = 0; k < 2; k++)
            CHECK(pthread_create(&th[k], NULL, part_rank, &ra[k]) == 0);
        for (int t = 0; t < PSTEPS; t++) { /* the whole unit, one process */
            struct mt_adamw_args aa = part_args(t);
            if (kind == 0)
                mt_q8_adamw_unit(p, g[t], state, PR * PC, &aa, &mm, &mv, 0);
            else
                mt_adafactor_unit(p, g[t], (float *)(void *)state, PR, PC, scratch, &aa);
        }
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        pthread_barrier_destroy(&sh.bar);
        double worst = 0.0;
        size_t nb = (PR * PC + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK, same_codes = 1;
        for (int k = 0; k < 2; k++)
            for (size_t li = 0; li < PR * PH; li++) {
                size_t r = li / lc, c = li % lc;
                size_t gr = split == MT_OPTIM_SPLIT_ROWS ? k * lr + r : r;
                size_t gi = gr * PC + (split == MT_OPTIM_SPLIT_COLS ? (size_t)k * lc : 0) + c;
                worst = fmax(worst, fabs((double)ra[k].p[li] - p[gi]));
                if (kind == 0) { /* the codes of m and v, against the whole's */
                    const unsigned char *q = ra[k].state + 8 * ra[k].n_runs;
                    same_codes &= q[li] == state[8 * nb + gi] &&
                                  q[PR * PH + li] == state[8 * nb + PR * PC + gi];
                }
            }
        printf("%s: two %s halves vs the whole over %d steps: weights max abs diff %.3g%s\n",
               kind ? "adafactor" : "adamw8", split == MT_OPTIM_SPLIT_COLS ? "column" : "row",
               PSTEPS, worst,
               kind         ? ""
               : same_codes ? ", codes equal"
                            : ", codes DIFFER");
        CHECK(kind ? worst <= 1e-6 : worst == 0.0);
        CHECK(same_codes);
    }
}

int main(void)
{
    test_maps();
    test_quantize();
    test_adamw8_unit();
    test_adafactor_unit();
    test_adafactor_paper();
    test_parts();
    printf("ok\n");
    return 0;
}
