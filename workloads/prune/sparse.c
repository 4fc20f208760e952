/* sparse.c — mt_sparse storage formats (size, choose, pack, unpack) and mask selection.
 *
 * What it is for: the byte layout of each format and the exact-count selection of pruning
 * masks (see sparse.h for the formats and the contracts). What it is not for: the matmul
 * kernels, which live in sparse_kernels.c.
 *
 * Selection is a radix select on order-preserving 32-bit keys of the float scores (three
 * passes with 11/11/10-bit digits), then one marking pass that prunes everything below the
 * k-th smallest key and as many of its ties as needed in index order. It copies nothing,
 * so a global threshold over a whole model costs one histogram and four scans.
 */
#include "sparse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

const char *const mt_sparse_format_names[MT_SPARSE_FORMAT_COUNT] = {"dense", "csr", "bitmap", "nm"};

#define SECTION_ALIGN 64

static size_t align_up(size_t n)
{
    return (n + SECTION_ALIGN - 1) & ~(size_t)(SECTION_ALIGN - 1);
}

static size_t count_nonzero(const float *w, size_t count)
{
    size_t nz = 0;
    for (size_t i = 0; i < count; i++)
        nz += w[i] != 0.0f;
    return nz;
}

static unsigned nm_idx_bits(unsigned m)
{
    return m <= 4 ? 2 : 4;
}

/* 1 when every group of m in every row of w has at most n non-zeros and the shape fits. */
static int nm_fits(const float *w, size_t rows, size_t cols, unsigned n, unsigned m)
{
    if (n == 0 || m == 0 || m > 16 || n > m || cols % m != 0) return 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < cols; g += m)
            if (count_nonzero(w + r * cols + g, m) > n) return 0;
    return 1;
}

/* Section sizes of each format, in layout order; the sum of their aligned sizes is the
 * block. Returns the number of sections. */
static size_t layout(enum mt_sparse_format format, size_t rows, size_t cols, size_t nnz, unsigned n,
                     unsigned m, size_t sec[3])
{
    switch (format) {
    case MT_SPARSE_DENSE:
        sec[0] = rows * cols * sizeof(float);
        return 1;
    case MT_SPARSE_CSR:
        sec[0] = (rows + 1) * sizeof(uint32_t);
        sec[1] = nnz * (cols <= 65536 ? sizeof(uint16_t) : sizeof(uint32_t));
        sec[2] = nnz * sizeof(float);
        return 3;
    case MT_SPARSE_BITMAP:
        sec[0] = (rows + 1) * sizeof(uint32_t);
        sec[1] = rows * ((cols + 63) / 64) * sizeof(uint64_t);
        sec[2] = nnz * sizeof(float);
        return 3;
    case MT_SPARSE_NM: {
        size_t per_row = cols / m * n;
        sec[0] = rows * per_row * sizeof(float);
        sec[1] = rows * ((per_row * nm_idx_bits(m) + 7) / 8);
        return 2;
    }
    default:
        return 0;
    }
}

size_t mt_sparse_layout_bytes(enum mt_sparse_format format, size_t rows, size_t cols, size_t nnz,
                              unsigned n, unsigned m)
{
    size_t sec[3], total = 0, ns = layout(format, rows, cols, nnz, n, m, sec);
    for (size_t i = 0; i < ns; i++)
        total += align_up(sec[i]);
    return total;
}

size_t mt_sparse_size(enum mt_sparse_format format, const float *w, size_t rows, size_t cols,
                      unsigned n, unsigned m)
{
    if (format == MT_SPARSE_NM && !nm_fits(w, rows, cols, n, m)) return 0;
    size_t nnz = format == MT_SPARSE_DENSE ? 0 : count_nonzero(w, rows * cols);
    return mt_sparse_layout_bytes(format, rows, cols, nnz, n, m);
}

enum mt_sparse_format mt_sparse_choose(const float *w, size_t rows, size_t cols, unsigned n,
                                       unsigned m, size_t *bytes_out)
{
    int fits = n != 0 && nm_fits(w, rows, cols, n, m);
    return mt_sparse_choose_nnz(rows, cols, count_nonzero(w, rows * cols), fits ? n : 0, m,
                                bytes_out);
}

enum mt_sparse_format mt_sparse_choose_nnz(size_t rows, size_t cols, size_t nnz, unsigned n,
                                           unsigned m, size_t *bytes_out)
{
    enum mt_sparse_format best = MT_SPARSE_DENSE;
    size_t best_bytes = mt_sparse_layout_bytes(MT_SPARSE_DENSE, rows, cols, 0, 0, 0);
    for (int f = MT_SPARSE_CSR; f < MT_SPARSE_FORMAT_COUNT; f++) {
        if (f == MT_SPARSE_NM && n == 0) continue;
        size_t b = mt_sparse_layout_bytes((enum mt_sparse_format)f, rows, cols, nnz, n, m);
        if (b < best_bytes) {
            best = (enum mt_sparse_format)f;
            best_bytes = b;
        }
    }
    if (bytes_out) *bytes_out = best_bytes;
    return best;
}

static void nm_put(uint8_t *row_idx, size_t j, unsigned bits, unsigned v)
{
    unsigned per_byte = 8 / bits, shift = (unsigned)(j % per_byte) * bits;
    row_idx[j / per_byte] |= (uint8_t)(v << shift);
}

static unsigned nm_get(const uint8_t *row_idx, size_t j, unsigned bits)
{
    unsigned per_byte = 8 / bits, shift = (unsigned)(j % per_byte) * bits;
    return (row_idx[j / per_byte] >> shift) & ((1u << bits) - 1);
}

static void fill_dense(struct mt_sparse *s, const float *w)
{
    memcpy(s->values, w, s->rows * s->cols * sizeof(float));
}

static void fill_csr(struct mt_sparse *s, const float *w)
{
    size_t p = 0;
    for (size_t r = 0; r < s->rows; r++) {
        s->row_off[r] = (uint32_t)p;
        for (size_t c = 0; c < s->cols; c++) {
            float v = w[r * s->cols + c];
            if (v == 0.0f) continue;
            if (s->idx_bits == 16)
                ((uint16_t *)s->col_idx)[p] = (uint16_t)c;
            else
                ((uint32_t *)s->col_idx)[p] = (uint32_t)c;
            s->values[p++] = v;
        }
    }
    s->row_off[s->rows] = (uint32_t)p;
}

static void fill_bitmap(struct mt_sparse *s, const float *w)
{
    size_t p = 0;
    for (size_t r = 0; r < s->rows; r++) {
        uint64_t *bits = s->bitmap + r * s->bitmap_words;
        s->row_off[r] = (uint32_t)p;
        for (size_t c = 0; c < s->cols; c++) {
            float v = w[r * s->cols + c];
            if (v == 0.0f) continue;
            bits[c / 64] |= (uint64_t)1 << (c % 64);
            s->values[p++] = v;
        }
    }
    s->row_off[s->rows] = (uint32_t)p;
}

/* Each group keeps its non-zeros and, when it has fewer than n, zero-valued slots at its
 * lowest free indices; slots are in ascending index order. */
static void fill_nm(struct mt_sparse *s, const float *w)
{
    size_t per_row = s->cols / s->m * s->n;
    for (size_t r = 0; r < s->rows; r++) {
        const float *wr = w + r * s->cols;
        float *vr = s->values + r * per_row;
        uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
        size_t j = 0;
        for (size_t g = 0; g < s->cols; g += s->m) {
            size_t fill = s->n - count_nonzero(wr + g, s->m);
            for (unsigned k = 0; k < s->m; k++) {
                float v = wr[g + k];
                if (v == 0.0f) {
                    if (fill == 0) continue;
                    fill--;
                    v = 0.0f; /* a stored -0.0f would unpack as a distinct bit pattern */
                }
                vr[j] = v;
                nm_put(ir, j, s->idx_bits, k);
                j++;
            }
        }
    }
}

int mt_sparse_pack(struct mt_sparse *out, enum mt_sparse_format format, const float *w, size_t rows,
                   size_t cols, unsigned n, unsigned m, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (rows == 0 || cols == 0 || (unsigned)format >= MT_SPARSE_FORMAT_COUNT) {
        snprintf(err, errlen, "sparse pack: empty matrix or unknown format");
        return -1;
    }
    if (format == MT_SPARSE_NM && !nm_fits(w, rows, cols, n, m)) {
        snprintf(err, errlen, "sparse pack: %zux%zu matrix does not fit the %u:%u pattern", rows,
                 cols, n, m);
        return -1;
    }
    size_t nnz = count_nonzero(w, rows * cols);
    if (nnz > UINT32_MAX || cols > UINT32_MAX) {
        snprintf(err, errlen, "sparse pack: %zu non-zeros exceed 32-bit offsets", nnz);
        return -1;
    }
    size_t sec[3], ns = layout(format, rows, cols, nnz, n, m, sec), bytes = 0;
    for (size_t i = 0; i < ns; i++)
        bytes += align_up(sec[i]);
    int prev = mt_memcat_set(MT_MEM_WEIGHTS);
    void *block = aligned_alloc(SECTION_ALIGN, bytes);
    mt_memcat_set(prev);
    if (!block) {
        snprintf(err, errlen, "sparse pack: cannot allocate %zu bytes", bytes);
        return -1;
    }
    memset(block, 0, bytes);
    char *base[3];
    size_t off = 0;
    for (size_t i = 0; i < ns; i++) {
        base[i] = (char *)block + off;
        off += align_up(sec[i]);
    }
    out->format = format;
    out->rows = rows;
    out->cols = cols;
    out->nnz = nnz;
    out->block = block;
    out->bytes = bytes;
    switch (format) {
    case MT_SPARSE_DENSE:
        out->values = (float *)base[0];
        fill_dense(out, w);
        break;
    case MT_SPARSE_CSR:
        out->idx_bits = cols <= 65536 ? 16 : 32;
        out->row_off = (uint32_t *)base[0];
        out->col_idx = base[1];
        out->values = (float *)base[2];
        fill_csr(out, w);
        break;
    case MT_SPARSE_BITMAP:
        out->bitmap_words = (cols + 63) / 64;
        out->row_off = (uint32_t *)base[0];
        out->bitmap = (uint64_t *)base[1];
        out->values = (float *)base[2];
        fill_bitmap(out, w);
        break;
    case MT_SPARSE_NM:
        out->n = n;
        out->m = m;
        out->idx_bits = nm_idx_bits(m);
        out->values = (float *)base[0];
        out->nm_idx = (uint8_t *)base[1];
        out->nm_row_bytes = (cols / m * n * out->idx_bits + 7) / 8;
        fill_nm(out, w);
        break;
    default:
        break;
    }
    return 0;
}

void mt_sparse_unpack(const struct mt_sparse *s, float *w)
{
    size_t rows = s->rows, cols = s->cols;
    if (s->format == MT_SPARSE_DENSE) {
        memcpy(w, s->values, rows * cols * sizeof(float));
        return;
    }
    memset(w, 0, rows * cols * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        float *wr = w + r * cols;
        if (s->format == MT_SPARSE_CSR) {
            for (size_t p = s->row_off[r]; p < s->row_off[r + 1]; p++)
                wr[s->idx_bits == 16 ? ((const uint16_t *)s->col_idx)[p]
                                     : ((const uint32_t *)s->col_idx)[p]] = s->values[p];
        } else if (s->format == MT_SPARSE_BITMAP) {
            const uint64_t *bits = s->bitmap + r * s->bitmap_words;
            size_t p = s->row_off[r];
            for (size_t c = 0; c < cols; c++)
                if (bits[c / 64] >> (c % 64) & 1) wr[c] = s->values[p++];
        } else {
            size_t per_row = cols / s->m * s->n;
            const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
            for (size_t j = 0; j < per_row; j++)
                wr[j / s->n * s->m + nm_get(ir, j, s->idx_bits)] = s->values[r * per_row + j];
        }
    }
}

size_t mt_sparse_bytes(const struct mt_sparse *s)
{
    return s->block ? s->bytes : 0;
}

void mt_sparse_free(struct mt_sparse *s)
{
    free(s->block);
    memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------- selection */

/* Order-preserving key: a < b as floats iff key(a) < key(b); NaN maps to the top. */
static uint32_t score_key(float f)
{
    if (isnan(f)) return UINT32_MAX;
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct span {
    const float *const *arr;
    const size_t *count;
    size_t n;
};

#define RADIX_BUCKETS 2048

/* The k-th smallest key (1 <= k <= total) over all arrays of `sp`. hist has
 * RADIX_BUCKETS entries. Digits: bits 31..21, 20..10, 9..0. */
static uint32_t kth_key(struct span sp, size_t k, size_t *hist)
{
    static const unsigned shift[3] = {21, 10, 0};
    static const uint32_t width[3] = {11, 11, 10};
    uint32_t prefix = 0, prefix_mask = 0;
    for (int d = 0; d < 3; d++) {
        memset(hist, 0, RADIX_BUCKETS * sizeof(*hist));
        uint32_t digit_mask = (1u << width[d]) - 1;
        for (size_t a = 0; a < sp.n; a++)
            for (size_t i = 0; i < sp.count[a]; i++) {
                uint32_t key = score_key(sp.arr[a][i]);
                if ((key & prefix_mask) == prefix) hist[(key >> shift[d]) & digit_mask]++;
            }
        uint32_t b = 0;
        while (k > hist[b])
            k -= hist[b++];
        prefix |= b << shift[d];
        prefix_mask |= digit_mask << shift[d];
    }
    return prefix;
}

/* Prunes exactly k entries of `sp` (lowest keys, ties in index order). */
static size_t select_span(struct span sp, size_t k, uint8_t *const *keep, size_t *hist)
{
    size_t total = 0;
    for (size_t a = 0; a < sp.n; a++)
        total += sp.count[a];
    if (k == 0) {
        for (size_t a = 0; a < sp.n; a++)
            memset(keep[a], 1, sp.count[a]);
        return 0;
    }
    if (k > total) k = total;
    uint32_t t = kth_key(sp, k, hist);
    size_t below = 0;
    for (size_t a = 0; a < sp.n; a++)
        for (size_t i = 0; i < sp.count[a]; i++)
            below += score_key(sp.arr[a][i]) < t;
    size_t ties = k - below;
    for (size_t a = 0; a < sp.n; a++)
        for (size_t i = 0; i < sp.count[a]; i++) {
            uint32_t key = score_key(sp.arr[a][i]);
            if (key < t) {
                keep[a][i] = 0;
            } else if (key == t && ties > 0) {
                keep[a][i] = 0;
                ties--;
            } else {
                keep[a][i] = 1;
            }
        }
    return k;
}

size_t mt_sparse_prune_count(double sparsity, size_t count)
{
    if (!(sparsity > 0.0)) return 0;
    if (sparsity >= 1.0) return count;
    return (size_t)llround(sparsity * (double)count);
}

size_t mt_sparse_select(const float *score, size_t rows, size_t cols, double sparsity,
                        enum mt_sparse_scope scope, uint8_t *keep)
{
    size_t *hist = malloc(RADIX_BUCKETS * sizeof(*hist));
    if (!hist) return (size_t)-1;
    size_t pruned = 0;
    if (scope == MT_SPARSE_SCOPE_ROW) {
        for (size_t r = 0; r < rows; r++) {
            const float *row = score + r * cols;
            uint8_t *kr = keep + r * cols;
            struct span sp = {&row, &cols, 1};
            pruned += select_span(sp, mt_sparse_prune_count(sparsity, cols), &kr, hist);
        }
    } else {
        size_t count = rows * cols;
        struct span sp = {&score, &count, 1};
        pruned = select_span(sp, mt_sparse_prune_count(sparsity, count), &keep, hist);
    }
    free(hist);
    return pruned;
}

size_t mt_sparse_select_global(const float *const *score, const size_t *count, size_t nlayers,
                               double sparsity, uint8_t *const *keep)
{
    size_t *hist = malloc(RADIX_BUCKETS * sizeof(*hist));
    if (!hist) return (size_t)-1;
    size_t total = 0;
    for (size_t a = 0; a < nlayers; a++)
        total += count[a];
    struct span sp = {score, count, nlayers};
    size_t pruned = select_span(sp, mt_sparse_prune_count(sparsity, total), keep, hist);
    free(hist);
    return pruned;
}

size_t mt_sparse_select_magnitude(const float *w, size_t rows, size_t cols, double sparsity,
                                  uint8_t *keep)
{
    /* One matrix's worth of |w| is small next to the model; global magnitude pruning goes
     * through mt_sparse_select_global with caller-made |w| arrays. */
    size_t count = rows * cols;
    float *mag = malloc(count * sizeof(float));
    if (!mag) return (size_t)-1;
    for (size_t i = 0; i < count; i++)
        mag[i] = fabsf(w[i]);
    size_t pruned = mt_sparse_select(mag, rows, cols, sparsity, MT_SPARSE_SCOPE_LAYER, keep);
    free(mag);
    return pruned;
}

int mt_sparse_select_nm(const float *score, size_t rows, size_t cols, unsigned n, unsigned m,
                        uint8_t *keep)
{
    if (n == 0 || m == 0 || n > m || m > 16 || cols % m != 0) return -1;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < cols; g += m) {
            const float *s = score + r * cols + g;
            for (unsigned i = 0; i < m; i++) {
                /* rank = entries that beat i: higher key, or equal key and lower index */
                uint32_t ki = score_key(s[i]);
                unsigned rank = 0;
                for (unsigned j = 0; j < m; j++) {
                    uint32_t kj = score_key(s[j]);
                    rank += kj > ki || (kj == ki && j < i);
                }
                keep[r * cols + g + i] = rank < n;
            }
        }
    return 0;
}

size_t mt_sparse_apply_mask(float *w, const uint8_t *keep, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!keep[i]) w[i] = 0.0f;
    return mt_sparse_count_zeros(w, count);
}

size_t mt_sparse_count_zeros(const float *w, size_t count)
{
    return count - count_nonzero(w, count);
}

void mt_sparse_sum_rows(const float *score, size_t rows, size_t cols, double *out)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t c = 0; c < cols; c++)
            s += score[r * cols + c];
        out[r] += s;
    }
}

void mt_sparse_sum_cols(const float *score, size_t rows, size_t cols, double *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            out[c] += score[r * cols + c];
}

struct unit {
    double score;
    size_t index;
};

static int unit_cmp(const void *pa, const void *pb)
{
    const struct unit *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

int mt_sparse_select_units(const double *unit_score, size_t nunits, size_t nprune, uint8_t *keep)
{
    if (nprune > nunits) return -1;
    struct unit *u = malloc((nunits ? nunits : 1) * sizeof(*u));
    if (!u) return -1;
    for (size_t i = 0; i < nunits; i++)
        u[i] = (struct unit){isnan(unit_score[i]) ? INFINITY : unit_score[i], i};
    qsort(u, nunits, sizeof(*u), unit_cmp);
    for (size_t i = 0; i < nunits; i++)
        keep[u[i].index] = i >= nprune;
    free(u);
    return 0;
}
