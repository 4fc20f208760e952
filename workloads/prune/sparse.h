/* sparse.h — mt_sparse: sparse weight storage, pruning masks and sparse matmul kernels.
 *
 * What it is for: the prune workload (and anything else that wants real sparsity) keeps a
 * pruned row-major [rows x cols] fp32 weight (rows = outputs N, cols = inputs K, the
 * layout of a linear layer y = x·W^T) in one of four formats, picks the smallest one per
 * layer, counts its bytes exactly, and multiplies with it:
 *   - DENSE:  plain fp32, for layers where sparsity does not pay;
 *   - CSR:    row offsets (uint32) + column indices (uint16 when cols <= 65536, else
 *             uint32) + non-zero values;
 *   - BITMAP: one bit per weight + the non-zeros of each row packed in order + uint32 row
 *             offsets into the packed values (so rows can be split across threads);
 *   - NM:     N:M semi-structured: every group of M consecutive inputs keeps exactly N
 *             values; each kept value stores its in-group index in 2 bits (M <= 4) or
 *             4 bits (M <= 16). Needs cols % M == 0 and at most N non-zeros per group.
 * It also selects pruning masks from scores (magnitude, N:M, caller-supplied saliency such
 * as wanda |w|·‖x‖ or OBD 0.5·h·w², structured units).
 * What it is not for: it knows nothing about the transformer, the harness or training; it
 * stores no bias (kernels take an optional bias pointer) and no quantized values.
 *
 * Memory: a struct mt_sparse owns exactly one contiguous 64-byte-aligned block, allocated
 * under mt_memcat_set(MT_MEM_WEIGHTS); every section inside it starts on a 64-byte
 * boundary. mt_sparse_bytes() returns the size of that block, which is the stored size.
 * Thread-safety: functions on distinct objects are independent; a packed matrix is
 * read-only after packing, so any number of threads may multiply with it at once. The
 * kernels use OpenMP internally (the calling thread's team size).
 */
#ifndef MT_SPARSE_H
#define MT_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_sparse_format {
    MT_SPARSE_DENSE = 0,
    MT_SPARSE_CSR = 1,
    MT_SPARSE_BITMAP = 2,
    MT_SPARSE_NM = 3,
    MT_SPARSE_FORMAT_COUNT = 4
};

/* Lowercase names, index = enum value: "dense", "csr", "bitmap", "nm". */
extern const char *const mt_sparse_format_names[MT_SPARSE_FORMAT_COUNT];

/* A packed matrix. Fields are read-only for callers; the pointers are views into `block`. */
struct mt_sparse {
    enum mt_sparse_format format;
    size_t rows, cols;   /* N outputs x K inputs */
    size_t nnz;          /* non-zero weights of the masked dense matrix */
    unsigned n, m;       /* NM only: N kept per group of M */
    unsigned idx_bits;   /* CSR: 16 or 32; NM: 2 or 4; otherwise 0 */
    void *block;         /* the one allocation */
    size_t bytes;        /* its size */
    float *values;       /* DENSE: rows*cols; CSR/BITMAP: nnz; NM: rows*(cols/m)*n */
    uint32_t *row_off;   /* CSR/BITMAP: rows+1 offsets into values */
    void *col_idx;       /* CSR: nnz uint16 or uint32 */
    uint64_t *bitmap;    /* BITMAP: rows * ceil(cols/64) words, bit k%64 of word k/64 */
    uint8_t *nm_idx;     /* NM: per row nm_row_bytes bytes of packed in-group indices */
    size_t bitmap_words; /* BITMAP: words per row */
    size_t nm_row_bytes; /* NM: index bytes per row */
};

/* ---------------------------------------------------------------- storage */

/* Contract: exact bytes `format` would need for the masked dense matrix `w` ([rows x cols],
 * zeros are pruned weights). For NM, `n`/`m` give the pattern; returns 0 when the matrix
 * does not fit it (cols % m != 0, m > 16, n > m, or a group with more than n non-zeros).
 * Other formats ignore n and m. Pure function; never allocates. */
size_t mt_sparse_size(enum mt_sparse_format format, const float *w, size_t rows, size_t cols,
                      unsigned n, unsigned m);

/* Contract: the format with the smallest mt_sparse_size() for `w` among DENSE, CSR, BITMAP
 * and (when n > 0 and the matrix fits the pattern) NM. Ties go to the lower enum value.
 * Writes the size to *bytes_out when not NULL. */
enum mt_sparse_format mt_sparse_choose(const float *w, size_t rows, size_t cols, unsigned n,
                                       unsigned m, size_t *bytes_out);

/* Contract: the block mt_sparse_pack allocates for a [rows x cols] matrix of `nnz`
 * non-zeros in `format` (NM: pattern n:m, nnz ignored; DENSE: nnz ignored): the stored
 * size, exact, from the shape alone (what `memtrade plan` counts). Pure. */
size_t mt_sparse_layout_bytes(enum mt_sparse_format format, size_t rows, size_t cols, size_t nnz,
                              unsigned n, unsigned m);

/* Contract: mt_sparse_choose's rule for a matrix of `nnz` non-zeros known to fit the n:m
 * pattern (n = 0: it does not, NM is no candidate). Pure. */
enum mt_sparse_format mt_sparse_choose_nnz(size_t rows, size_t cols, size_t nnz, unsigned n,
                                           unsigned m, size_t *bytes_out);

/* Contract: how many of `count` scores a selection at `sparsity` removes:
 * round(sparsity x count), 0 for sparsity <= 0, all for >= 1. Pure. */
size_t mt_sparse_prune_count(double sparsity, size_t count);

/* Contract: packs the masked dense matrix `w` into `out` in `format` (one allocation,
 * tagged as weights). Returns 0, or -1 with a message in err (allocation failure, pattern
 * that does not fit NM, sizes beyond uint32 offsets); on failure `out` owns nothing.
 * The caller frees with mt_sparse_free(). `w` is not kept. */
int mt_sparse_pack(struct mt_sparse *out, enum mt_sparse_format format, const float *w, size_t rows,
                   size_t cols, unsigned n, unsigned m, char *err, size_t errlen);

/* Contract: writes the dense [rows x cols] matrix back to `w` (zeros where pruned).
 * Exact: pack followed by unpack reproduces the input bit for bit (a stored -0.0f or a
 * stored zero in an NM slot unpacks as +0.0f, which is the same masked weight). */
void mt_sparse_unpack(const struct mt_sparse *s, float *w);

/* Contract: stored bytes (the block size); 0 for a zeroed/freed struct. */
size_t mt_sparse_bytes(const struct mt_sparse *s);

/* Contract: releases the block and zeroes the struct; safe on a zeroed struct. */
void mt_sparse_free(struct mt_sparse *s);

/* ---------------------------------------------------------------- kernels */

enum mt_sparse_impl {
    MT_SPARSE_IMPL_AUTO = 0,   /* fastest this CPU supports */
    MT_SPARSE_IMPL_SCALAR = 1, /* plain C reference, single thread */
    MT_SPARSE_IMPL_AVX512 = 2  /* AVX-512F/BW/VL/DQ + OpenMP; falls back to SCALAR if absent */
};

/* Contract: y[mrows x rows] = x[mrows x cols] · W^T (+ bias[rows] when bias != NULL), for
 * any format. x and y are row-major and must not overlap. `impl` picks the code path; the
 * AVX-512 path uses a row-gather/expand kernel for small mrows and a transposed SpMM
 * (y^T = W·x^T, vectorised over mrows) for mrows >= 64. Sums are in fp32 in a different
 * order than the reference, so results differ from it by rounding only. Returns 0, or -1
 * when scratch memory (tagged workspace) cannot be allocated; y is then unspecified. */
int mt_sparse_matmul(const struct mt_sparse *w, const float *x, size_t mrows, const float *bias,
                     float *y, enum mt_sparse_impl impl);

/* The code path one multiply ran: the scalar reference, the AVX-512 row kernels (small
 * mrows) or the AVX-512 transposed SpMM (mrows >= 64). Names, index = value: "scalar",
 * "avx512_rows", "avx512_spmm". */
enum mt_sparse_path {
    MT_SPARSE_PATH_SCALAR = 0,
    MT_SPARSE_PATH_AVX512_ROWS = 1,
    MT_SPARSE_PATH_AVX512_SPMM = 2,
    MT_SPARSE_PATH_COUNT = 3
};
extern const char *const mt_sparse_path_names[MT_SPARSE_PATH_COUNT];

/* Contract: mt_sparse_matmul that also says which path ran (*path) and whether that was a
 * fallback (*fallback = 1 when `impl` allowed AVX-512 and a slower path than the shape's
 * ran instead: the CPU lacks AVX-512, an N:M pattern whose N does not divide 16 at small
 * mrows, or the SpMM path could not allocate its scratch; else 0). Either pointer may be
 * NULL. Setting MT_TEST_SPMM_FAIL=1 in the environment makes the SpMM path fail, so tests
 * can force that fallback. */
int mt_sparse_matmul_ex(const struct mt_sparse *w, const float *x, size_t mrows, const float *bias,
                        float *y, enum mt_sparse_impl impl, enum mt_sparse_path *path,
                        int *fallback);

/* Contract: the most bytes of scratch one mt_sparse_matmul(w, x, mrows, ..., impl) call
 * holds at once (workspace memory, freed before it returns), with `threads` OpenMP
 * threads: the transposed input and output of the SpMM path plus each thread's row
 * decode buffers, or the reference's decode buffers. For exact serving-memory accounts. */
size_t mt_sparse_matmul_scratch(const struct mt_sparse *w, size_t mrows, enum mt_sparse_impl impl,
                                size_t threads);

/* Contract: 1 when the AVX-512 path can run on this CPU. */
int mt_sparse_have_avx512(void);

/* ---------------------------------------------------------------- masks */

/* Masks are uint8_t arrays, one byte per weight: 1 = keep, 0 = prune. Every selection
 * prunes exactly round(sparsity * count) entries (count = the elements of the selection
 * unit: the layer, the row, or all layers for global), lowest scores first; ties are
 * broken by lower flat index pruned first, so results are deterministic. Scores are any
 * floats (NaN is treated as +inf, i.e. kept). sparsity is clamped to [0, 1]. */

enum mt_sparse_scope {
    MT_SPARSE_SCOPE_LAYER = 0, /* one threshold per matrix */
    MT_SPARSE_SCOPE_ROW = 1    /* one threshold per output row (wanda's choice) */
};

/* Contract: selects per `scope` on one [rows x cols] score matrix and writes keep.
 * Returns the number of pruned entries. Allocates a small histogram only; returns
 * (size_t)-1 when that allocation fails. */
size_t mt_sparse_select(const float *score, size_t rows, size_t cols, double sparsity,
                        enum mt_sparse_scope scope, uint8_t *keep);

/* Contract: one global threshold over `nlayers` score arrays of sizes count[i]; writes
 * keep[i] for each. Returns the number pruned, (size_t)-1 on allocation failure. */
size_t mt_sparse_select_global(const float *const *score, const size_t *count, size_t nlayers,
                               double sparsity, uint8_t *const *keep);

/* Contract: magnitude pruning of one matrix: score = |w|, scope LAYER. */
size_t mt_sparse_select_magnitude(const float *w, size_t rows, size_t cols, double sparsity,
                                  uint8_t *keep);

/* Contract: N:M selection: in every group of m consecutive entries of each row, keeps
 * exactly the n with the highest score (ties: lower index kept). Requires cols % m == 0,
 * 0 < n <= m <= 16; returns -1 otherwise, else 0. */
int mt_sparse_select_nm(const float *score, size_t rows, size_t cols, unsigned n, unsigned m,
                        uint8_t *keep);

/* Contract: zeroes w[i] where keep[i] == 0; returns the number of zero weights after. */
size_t mt_sparse_apply_mask(float *w, const uint8_t *keep, size_t count);

/* Contract: number of exactly-zero entries in w[count]. */
size_t mt_sparse_count_zeros(const float *w, size_t count);

/* ---------------------------------------------------------------- structured */

/* Contract: out[r] += sum over columns of score[r*cols + c] (row importances, e.g. MLP
 * neurons of an fc layer) — accumulates so several matrices can contribute. */
void mt_sparse_sum_rows(const float *score, size_t rows, size_t cols, double *out);

/* Contract: out[c] += sum over rows of score[r*cols + c] (column importances, e.g. MLP
 * neurons seen from the projection that reads them). */
void mt_sparse_sum_cols(const float *score, size_t rows, size_t cols, double *out);

/* Contract: keeps the units (heads, neurons) with the highest summed score: prunes exactly
 * `nprune` of `nunits` (lowest first, ties: lower index pruned), writes keep[nunits].
 * Returns 0, or -1 if nprune > nunits or allocation fails. */
int mt_sparse_select_units(const double *unit_score, size_t nunits, size_t nprune, uint8_t *keep);

#ifdef __cplusplus
}
#endif
#endif
