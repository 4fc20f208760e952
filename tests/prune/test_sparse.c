/* test_sparse.c — tests of mt_sparse: kernels against references, exact mask counts,
 * exact stored bytes, pack/unpack round trips, structured unit selection.
 *
 * What it is for: `test_prune_sparse <name>` runs one group and exits non-zero on the
 * first failed check, printing what differed. What it is not for: model-level pruning
 * (see the prune plugin tests) or speed (see mt-bench-sparse).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparse.h"

#include "check.h"

/* xorshift64*: deterministic test data, state passed explicitly. */
static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static float next_uniform(uint64_t *s) /* in (-1, 1) */
{
    return (float)((double)(next_u64(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill_random(float *a, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        a[i] = next_uniform(s);
}

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* Masks w to `sparsity` by magnitude, or to n:m by magnitude when n > 0. */
static void mask_weights(float *w, size_t rows, size_t cols, double sparsity, unsigned n,
                         unsigned m)
{
    uint8_t *keep = malloc(rows * cols);
    float *mag = alloc_floats(rows * cols);
    for (size_t i = 0; i < rows * cols; i++)
        mag[i] = fabsf(w[i]);
    if (n)
        mt_sparse_select_nm(mag, rows, cols, n, m, keep);
    else
        mt_sparse_select(mag, rows, cols, sparsity, MT_SPARSE_SCOPE_LAYER, keep);
    mt_sparse_apply_mask(w, keep, rows * cols);
    free(keep);
    free(mag);
}

/* Dense scalar y = x·W^T + b, summing every column in order (zeros included). The sparse
 * scalar reference skips only exact zeros, and adding a +0.0 product leaves a sum
 * unchanged, so it must match this bit for bit. */
static void dense_ref(const float *w, size_t rows, size_t cols, const float *x, size_t mrows,
                      const float *bias, float *y)
{
    for (size_t i = 0; i < mrows; i++)
        for (size_t r = 0; r < rows; r++) {
            float acc = 0.0f;
            for (size_t c = 0; c < cols; c++)
                if (w[r * cols + c] != 0.0f) acc += w[r * cols + c] * x[i * cols + c];
            y[i * rows + r] = acc + (bias ? bias[r] : 0.0f);
        }
}

/* Tolerance of the AVX-512 paths against the reference: |diff| <= 1e-5 * sum_j |w_j x_j|
 * + 1e-6 per output (fp32 sums of up to ~3000 terms reordered; typical error is ~1e-7
 * relative to that sum). */
static double abs_sum(const float *w, size_t cols, const float *x)
{
    double s = 0.0;
    for (size_t c = 0; c < cols; c++)
        s += fabs((double)w[c] * x[c]);
    return s;
}

static void check_kernels(size_t rows, size_t cols, double sparsity, unsigned n, unsigned m,
                          uint64_t *seed)
{
    static const size_t mrows_list[] = {1, 3, 5, 16, 33, 64, 70};
    float *w = alloc_floats(rows * cols), *bias = alloc_floats(rows);
    fill_random(w, rows * cols, seed);
    fill_random(bias, rows, seed);
    mask_weights(w, rows, cols, sparsity, n, m);
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
        if (f == MT_SPARSE_NM && n == 0) continue;
        struct mt_sparse s;
        char err[256];
        if (mt_sparse_pack(&s, (enum mt_sparse_format)f, w, rows, cols, n, m, err, sizeof(err))) {
            CHECK(0, "pack %s: %s", mt_sparse_format_names[f], err);
            continue;
        }
        for (size_t mi = 0; mi < sizeof(mrows_list) / sizeof(mrows_list[0]); mi++) {
            size_t mr = mrows_list[mi];
            float *x = alloc_floats(mr * cols), *yref = alloc_floats(mr * rows);
            float *ys = alloc_floats(mr * rows), *yv = alloc_floats(mr * rows);
            fill_random(x, mr * cols, seed);
            dense_ref(w, rows, cols, x, mr, bias, yref);
            CHECK(mt_sparse_matmul(&s, x, mr, bias, ys, MT_SPARSE_IMPL_SCALAR) == 0, "scalar");
            CHECK(memcmp(yref, ys, mr * rows * sizeof(float)) == 0,
                  "scalar %s %zux%zu s=%.2f %u:%u mrows=%zu differs from dense reference",
                  mt_sparse_format_names[f], rows, cols, sparsity, n, m, mr);
            CHECK(mt_sparse_matmul(&s, x, mr, bias, yv, MT_SPARSE_IMPL_AUTO) == 0, "auto");
            double worst = 0.0;
            for (size_t i = 0; i < mr; i++)
                for (size_t r = 0; r < rows; r++) {
                    double tol = 1e-5 * abs_sum(w + r * cols, cols, x + i * cols) + 1e-6;
                    double d = fabs((double)yv[i * rows + r] - yref[i * rows + r]) / tol;
                    worst = d > worst ? d : worst;
                }
            CHECK(worst <= 1.0, "fast %s %zux%zu s=%.2f %u:%u mrows=%zu: error %.3g x tolerance",
                  mt_sparse_format_names[f], rows, cols, sparsity, n, m, mr, worst);
            free(x);
            free(yref);
            free(ys);
            free(yv);
        }
        mt_sparse_free(&s);
    }
    free(w);
    free(bias);
}

static void test_kernels(void)
{
    uint64_t seed = 42;
    if (!mt_sparse_have_avx512())
        fprintf(stderr, "note: no AVX-512 on this CPU, fast paths fall back to scalar\n");
    static const double sp[] = {0.0, 0.5, 0.9};
    for (int i = 0; i < 3; i++) {
        check_kernels(37, 100, sp[i], 0, 0, &seed); /* odd tails everywhere */
        check_kernels(64, 768, sp[i], 0, 0, &seed); /* a GPT-2 row width */
    }
    static const unsigned nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {2, 8}, {3, 8}, {8, 16}, {4, 4}};
    for (size_t i = 0; i < sizeof(nm) / sizeof(nm[0]); i++) {
        check_kernels(19, 96, 0.0, nm[i][0], nm[i][1], &seed); /* 96 % 16 = 0, tails in values */
        check_kernels(24, 784, 0.0, nm[i][0], nm[i][1], &seed);
    }
}

static void test_nm_masks(void)
{
    uint64_t seed = 7;
    static const unsigned nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 8}, {1, 2}, {8, 16}};
    size_t rows = 13, cols = 96;
    float *score = alloc_floats(rows * cols);
    uint8_t *keep = malloc(rows * cols);
    for (size_t t = 0; t < sizeof(nm) / sizeof(nm[0]); t++) {
        unsigned n = nm[t][0], m = nm[t][1];
        fill_random(score, rows * cols, &seed);
        for (size_t i = 0; i < rows * cols; i += 5) /* ties */
            score[i] = 0.25f;
        CHECK(mt_sparse_select_nm(score, rows, cols, n, m, keep) == 0, "select_nm %u:%u", n, m);
        for (size_t g = 0; g < rows * cols; g += m) {
            unsigned kept = 0;
            float min_kept = INFINITY, max_pruned = -INFINITY;
            for (unsigned j = 0; j < m; j++) {
                kept += keep[g + j];
                if (keep[g + j])
                    min_kept = fminf(min_kept, score[g + j]);
                else
                    max_pruned = fmaxf(max_pruned, score[g + j]);
            }
            CHECK(kept == n, "%u:%u group at %zu keeps %u", n, m, g, kept);
            CHECK(min_kept >= max_pruned, "%u:%u group at %zu keeps a lower score", n, m, g);
        }
    }
    CHECK(mt_sparse_select_nm(score, rows, 94, 2, 4, keep) == -1, "94 %% 4 must be refused");
    CHECK(mt_sparse_select_nm(score, rows, cols, 5, 4, keep) == -1, "5:4 must be refused");
    free(score);
    free(keep);
}

/* Checks that exactly `expect` of count entries are pruned and none kept scores lower. */
static void check_selection(const float *score, const uint8_t *keep, size_t count, size_t expect,
                            const char *what)
{
    size_t pruned = 0;
    float min_kept = INFINITY, max_pruned = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        pruned += !keep[i];
        if (keep[i])
            min_kept = fminf(min_kept, score[i]);
        else
            max_pruned = fmaxf(max_pruned, score[i]);
    }
    CHECK(pruned == expect, "%s: pruned %zu, expected %zu", what, pruned, expect);
    CHECK(min_kept >= max_pruned, "%s: a kept score %g is below a pruned one %g", what, min_kept,
          max_pruned);
}

static void test_sparsity(void)
{
    uint64_t seed = 11;
    static const double sp[] = {0.0, 0.1, 0.333, 0.5, 0.75, 0.9, 0.95, 1.0};
    size_t rows = 48, cols = 77, count = rows * cols;
    float *score = alloc_floats(count), *w = alloc_floats(count);
    uint8_t *keep = malloc(count);
    fill_random(w, count, &seed);
    for (size_t i = 0; i < count; i++) /* coarse scores: many ties, negatives too */
        score[i] = roundf(w[i] * 40.0f) / 40.0f;
    for (int t = 0; t < 8; t++) {
        char what[64];
        size_t expect = (size_t)llround(sp[t] * (double)count);
        snprintf(what, sizeof(what), "layer s=%.3f", sp[t]);
        CHECK(mt_sparse_select(score, rows, cols, sp[t], MT_SPARSE_SCOPE_LAYER, keep) == expect,
              "%s return", what);
        check_selection(score, keep, count, expect, what);

        snprintf(what, sizeof(what), "row s=%.3f", sp[t]);
        mt_sparse_select(score, rows, cols, sp[t], MT_SPARSE_SCOPE_ROW, keep);
        for (size_t r = 0; r < rows; r++)
            check_selection(score + r * cols, keep + r * cols, cols,
                            (size_t)llround(sp[t] * (double)cols), what);

        snprintf(what, sizeof(what), "magnitude s=%.3f", sp[t]);
        mt_sparse_select_magnitude(w, rows, cols, sp[t], keep);
        float *mag = alloc_floats(count);
        for (size_t i = 0; i < count; i++)
            mag[i] = fabsf(w[i]);
        check_selection(mag, keep, count, expect, what);
        float *wm = alloc_floats(count);
        memcpy(wm, w, count * sizeof(float));
        CHECK(mt_sparse_apply_mask(wm, keep, count) == expect, "%s: zeros after mask", what);
        free(wm);
        free(mag);

        /* global over three layers of different sizes, as one concatenated selection */
        const float *layers[3] = {score, score + 1000, score + 1500};
        size_t counts[3] = {1000, 500, count - 1500};
        uint8_t *keeps[3] = {keep, keep + 1000, keep + 1500};
        snprintf(what, sizeof(what), "global s=%.3f", sp[t]);
        CHECK(mt_sparse_select_global(layers, counts, 3, sp[t], keeps) == expect, "%s", what);
        check_selection(score, keep, count, expect, what);
    }
    free(score);
    free(w);
    free(keep);
}

/* Bytes computed by hand from the layout in sparse.h: sections start on 64-byte
 * boundaries, so each section's size is rounded up to a multiple of 64. */
static void test_bytes(void)
{
    size_t rows = 8, cols = 64;
    float *w = alloc_floats(rows * cols);
    /* 2:4 pattern: positions 0 and 2 of every group non-zero: 256 non-zeros */
    for (size_t i = 0; i < rows * cols; i++)
        w[i] = (i % 4 == 0 || i % 4 == 2) ? 1.0f + (float)i : 0.0f;
    /* dense: 8*64*4 = 2048 */
    /* csr: row_off 9*4 = 36 -> 64; idx 256*2 = 512; values 256*4 = 1024; total 1600 */
    /* bitmap: row_off 64; bits 8 rows * 1 word * 8 = 64; values 1024; total 1152 */
    /* nm 2:4: values 8*32*4 = 1024; idx 8 rows * (32*2/8 = 8) = 64; total 1088 */
    static const size_t expect[4] = {2048, 1600, 1152, 1088};
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
        struct mt_sparse s;
        char err[128];
        CHECK(mt_sparse_pack(&s, (enum mt_sparse_format)f, w, rows, cols, 2, 4, err, sizeof(err)) ==
                  0,
              "%s", err);
        CHECK(mt_sparse_bytes(&s) == expect[f], "%s: %zu bytes, expected %zu",
              mt_sparse_format_names[f], mt_sparse_bytes(&s), expect[f]);
        CHECK(mt_sparse_size((enum mt_sparse_format)f, w, rows, cols, 2, 4) == expect[f], "size %s",
              mt_sparse_format_names[f]);
        mt_sparse_free(&s);
        CHECK(mt_sparse_bytes(&s) == 0, "freed struct reports bytes");
    }
    size_t chosen = 0;
    CHECK(mt_sparse_choose(w, rows, cols, 2, 4, &chosen) == MT_SPARSE_NM && chosen == 1088,
          "choose 2:4 pattern: %zu", chosen);
    CHECK(mt_sparse_choose(w, rows, cols, 0, 0, &chosen) == MT_SPARSE_BITMAP && chosen == 1152,
          "choose without n:m: %zu", chosen);
    /* 4:8 with 4-bit indices on the same matrix: values 1024; idx 8*(32*4/8 = 16) = 128 */
    CHECK(mt_sparse_size(MT_SPARSE_NM, w, rows, cols, 4, 8) == 1152, "4:8 size");
    /* an extra non-zero breaks 2:4 */
    w[1] = 5.0f;
    CHECK(mt_sparse_size(MT_SPARSE_NM, w, rows, cols, 2, 4) == 0, "2:4 must not fit");
    free(w);

    /* wide matrix: 32-bit column indices. 1 x 70000, 3 non-zeros:
     * row_off 8 -> 64; idx 12 -> 64; values 12 -> 64; total 192 */
    float *wide = alloc_floats(70000);
    wide[5] = 1.0f;
    wide[65600] = 2.0f;
    wide[69999] = 3.0f;
    struct mt_sparse s;
    char err[128];
    CHECK(mt_sparse_pack(&s, MT_SPARSE_CSR, wide, 1, 70000, 0, 0, err, sizeof(err)) == 0, "%s",
          err);
    CHECK(s.idx_bits == 32 && mt_sparse_bytes(&s) == 192, "wide csr: %u bits, %zu bytes",
          s.idx_bits, mt_sparse_bytes(&s));
    float x[70000], y[1];
    for (size_t i = 0; i < 70000; i++)
        x[i] = 1.0f;
    mt_sparse_matmul(&s, x, 1, NULL, y, MT_SPARSE_IMPL_AUTO);
    CHECK(y[0] == 6.0f, "wide csr product %g", y[0]);
    mt_sparse_free(&s);
    free(wide);
}

static void test_roundtrip(void)
{
    uint64_t seed = 3;
    size_t rows = 21, cols = 160;
    float *w = alloc_floats(rows * cols), *back = alloc_floats(rows * cols);
    static const double sp[] = {0.0, 0.3, 0.8, 1.0};
    for (int t = 0; t < 4; t++) {
        for (int nm = 0; nm < 2; nm++) {
            fill_random(w, rows * cols, &seed);
            if (nm) {
                mask_weights(w, rows, cols, 0.0, 2, 4);
                for (size_t i = 0; i < rows * cols; i += 7) /* groups with < 2 non-zeros */
                    w[i] = 0.0f;
            } else {
                mask_weights(w, rows, cols, sp[t], 0, 0);
            }
            for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
                if (f == MT_SPARSE_NM && !nm) continue;
                struct mt_sparse s;
                char err[128];
                CHECK(mt_sparse_pack(&s, (enum mt_sparse_format)f, w, rows, cols, 2, 4, err,
                                     sizeof(err)) == 0,
                      "%s", err);
                memset(back, 0xff, rows * cols * sizeof(float));
                mt_sparse_unpack(&s, back);
                CHECK(memcmp(w, back, rows * cols * sizeof(float)) == 0,
                      "%s s=%.1f nm=%d: round trip differs", mt_sparse_format_names[f], sp[t], nm);
                CHECK(s.nnz == rows * cols - mt_sparse_count_zeros(w, rows * cols), "nnz");
                mt_sparse_free(&s);
            }
        }
    }
    char err[128];
    struct mt_sparse s;
    w[0] = w[1] = w[2] = 1.0f;
    CHECK(mt_sparse_pack(&s, MT_SPARSE_NM, w, rows, cols, 2, 4, err, sizeof(err)) == -1 &&
              s.block == NULL,
          "3 non-zeros in a 2:4 group must be refused");
    free(w);
    free(back);
}

static void test_units(void)
{
    double score[6] = {3.0, 1.0, 2.0, 1.0, NAN, 0.5};
    uint8_t keep[6];
    CHECK(mt_sparse_select_units(score, 6, 3, keep) == 0, "select_units");
    /* lowest: 0.5 (5), 1.0 (1), 1.0 (3); NaN counts as +inf */
    static const uint8_t expect[6] = {1, 0, 1, 0, 1, 0};
    CHECK(memcmp(keep, expect, 6) == 0, "units kept %d%d%d%d%d%d", keep[0], keep[1], keep[2],
          keep[3], keep[4], keep[5]);
    CHECK(mt_sparse_select_units(score, 6, 7, keep) == -1, "nprune > nunits");
    float m[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3 */
    double rs[2] = {0, 0}, cs[3] = {0, 0, 0};
    mt_sparse_sum_rows(m, 2, 3, rs);
    mt_sparse_sum_cols(m, 2, 3, cs);
    CHECK(rs[0] == 6 && rs[1] == 15, "row sums %g %g", rs[0], rs[1]);
    CHECK(cs[0] == 5 && cs[1] == 7 && cs[2] == 9, "col sums %g %g %g", cs[0], cs[1], cs[2]);
}

int main(int argc, char **argv)
{
    static const struct mt_test tests[] = {
        {"kernels", test_kernels}, {"nm_masks", test_nm_masks},   {"sparsity", test_sparsity},
        {"bytes", test_bytes},     {"roundtrip", test_roundtrip}, {"units", test_units}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), argc > 1 ? argv[1] : NULL);
}
