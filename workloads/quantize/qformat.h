/* qformat.h — packed low-bit weight formats for a row-major [N x K] weight matrix.
 *
 * What it is for: turning an fp32 weight matrix into one contiguous allocation that holds
 * the bit-packed codes plus every scale, zero point and codebook needed to use them
 * (mt_qtensor_pack), counting those bytes exactly (mt_qtensor_bytes), and decoding rows
 * back to float for tests, error measurement and references (mt_qtensor_unpack,
 * mt_qtensor_row). What it is not for: running inference — the matmul kernels in
 * qkernels.h work on the packed codes directly; nothing on the inference path decodes a
 * whole tensor.
 *
 * Every low-bit format decodes a code c of row n, column j through the quantization unit
 * u that holds it (the whole tensor, the row, or a group of `group_size` columns):
 *   linear-asym, linear-sym:  w = scale[u] * c + offset[u]      (c unsigned, 0..2^b-1)
 *   nf, log:                  w = scale[u] * lut[c]             (one fixed table)
 *   kmeans:                   w = lut_u[c]                      (a fitted table per unit)
 *   fp16, bf16:               w = the 16-bit float itself
 * linear-asym is min-max (offset = min, scale = (max-min)/(2^b-1)); linear-sym is absmax
 * with signed levels -(2^(b-1)-1)..2^(b-1)-1 stored as c = q + 2^(b-1), so offset =
 * -2^(b-1)*scale. Scales, offsets and codebooks are fp32.
 *
 * Code layout (chosen so an AVX-512 kernel unpacks 64 codes with a few register ops):
 * each row holds k_pad codes (K rounded up to a multiple of 64 and of the group size;
 * padding codes are 0 and meet zero activations), in blocks of 64 codes c[0..63]:
 *   8 bit: 64 bytes, byte i = c[i]
 *   4 bit: 32 bytes, byte i = c[i] | c[i+32] << 4
 *   2 bit: 16 bytes, byte i = c[i] | c[i+16] << 2 | c[i+32] << 4 | c[i+48] << 6
 *   3 bit: 24 bytes, the 2-bit layout of (c & 3), then a little-endian 64-bit word whose
 *          bit i is bit 2 of c[i]
 *   fp16/bf16: 2 bytes per value, no blocks.
 * The allocation is [scale floats][offset floats][lut floats][codes], no padding, so
 * mt_qtensor_bytes = 4*(n_scale + n_offset + n_lut) + n*row_bytes exactly.
 *
 * Double-quantized scales (QLoRA, Dettmers et al. 2023; nf and log, the schemes whose
 * units have a scale and no offset): the fp32 scales are not stored. Their mean m is
 * subtracted, and the centred scales are quantized to 8 bits in blocks of MT_QDQ_BLOCK,
 * one fp32 absmax a per block: code q = round(127 (s - m) / a), s' = m + a q / 127
 * (bitsandbytes' compress_statistics keeps the mean the same way; its 8-bit map is its
 * dynamic one, ours linear int8, which the centred, narrow spread of the scales suits).
 * The codes are chosen against the decoded s'. Layout [absmax floats][m][lut floats]
 * [codes][int8 scale codes]: mt_qtensor_bytes = 4*(n_scale_blk + 1 + n_lut) +
 * n*row_bytes + n_scale. scale is NULL; kernels get a view whose scale points at
 * mt_qtensor_scales' decoding (qmodel.c does that per GEMM, as bitsandbytes decodes the
 * absmax before its 4-bit kernels). With groups of 64 the scales go from 32/64 = 0.5 to
 * 8/64 + 32/(64*256) (+ 32 / weights for m) bits per weight: 0.373 saved, QLoRA's figure.
 *
 * Thread safety: a packed tensor is immutable after packing; any number of threads may
 * read it. Packing and freeing are not thread-safe with respect to the same tensor.
 */
#ifndef MT_QUANT_QFORMAT_H
#define MT_QUANT_QFORMAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_qscheme {
    MT_QS_FP16 = 0,
    MT_QS_BF16 = 1,
    MT_QS_LINEAR_ASYM = 2,
    MT_QS_LINEAR_SYM = 3,
    MT_QS_NF = 4,
    MT_QS_KMEANS = 5,
    MT_QS_LOG = 6,
    MT_QS_COUNT = 7
};

enum mt_qgran { MT_QG_TENSOR = 0, MT_QG_CHANNEL = 1, MT_QG_GROUP = 2, MT_QG_COUNT = 3 };

#define MT_QBLOCK 64     /* codes per packed block */
#define MT_QDQ_BLOCK 256 /* double-quantized scales per fp32 absmax */
#define MT_QLOG_MU 16.0f /* companding strength of the `log` scheme */

struct mt_qformat {
    enum mt_qscheme scheme;
    unsigned bits;      /* 16 for fp16/bf16; 8, 4, 3 or 2 otherwise */
    enum mt_qgran gran; /* ignored for fp16/bf16 */
    size_t group_size;  /* 32, 64 or 128 when gran == MT_QG_GROUP */
    uint64_t seed;      /* kmeans sampling seed; the fit is deterministic given it */
};

struct mt_qtensor {
    struct mt_qformat fmt;
    size_t n, k;          /* logical shape: n output rows of k inputs */
    size_t k_pad;         /* codes per row, a multiple of MT_QBLOCK and of the unit */
    size_t row_bytes;     /* bytes of codes per row */
    size_t unit_len;      /* columns per quantization unit: group_size, or k_pad */
    size_t units_per_row; /* k_pad / unit_len */
    /* Metadata index of unit u of row n: n * meta_row_stride + u (0 for a tensor-wide
     * unit). Scales and offsets use it directly; kmeans tables are lut + idx * lut_len,
     * nf/log share the single table at lut. */
    size_t meta_row_stride;
    size_t n_scale, n_offset, n_lut; /* float counts of each metadata array */
    size_t lut_len;                  /* 2^bits for codebook schemes, else 0 */
    float *scale;                    /* NULL for kmeans and fp16/bf16 */
    float *offset;                   /* linear schemes only, else NULL */
    float *lut;                      /* codebook schemes only, else NULL */
    uint8_t *codes;                  /* n * row_bytes */
    void *block;                     /* the one allocation holding all of the above */
    size_t bytes;                    /* its exact size */
    /* double_quant (scale is NULL): n_scale int8 codes, n_scale_blk fp32 absmax, the mean */
    int8_t *scale_code;
    float *scale_absmax, *scale_mean;
    size_t n_scale_blk;
};

/* Contract: name <-> enum for schemes ("fp16", "bf16", "linear-asym", "linear-sym",
 * "nf", "kmeans", "log") and granularities ("tensor", "channel", "group"). The
 * *_from_name functions return 0 and set *out, or -1 for an unknown name. */
const char *mt_qscheme_name(enum mt_qscheme s);
int mt_qscheme_from_name(const char *name, enum mt_qscheme *out);
const char *mt_qgran_name(enum mt_qgran g);
int mt_qgran_from_name(const char *name, enum mt_qgran *out);

/* Contract: checks that a format is one this library packs (bits 16 only with fp16/bf16,
 * 8/4/3/2 with the others; group sizes 32/64/128). Returns 0, or -1 with a message. */
int mt_qformat_check(const struct mt_qformat *f, char *err, size_t errlen);

/* Contract: packs w[n*k] (row-major, not modified) into a new tensor; the packed block is
 * allocated as MT_MEM_WEIGHTS. Returns NULL with a message on a bad format, a zero
 * shape, a non-finite weight or an allocation failure. The caller frees it with
 * mt_qtensor_free. Deterministic: the same input and format give the same bytes. */
struct mt_qtensor *mt_qtensor_pack(const float *w, size_t n, size_t k, const struct mt_qformat *f,
                                   char *err, size_t errlen);

/* Contract: re-encodes the codes of `qt` from w[n*k] keeping its scales, offsets and
 * codebooks (each value gets its nearest representable level). Used to check that
 * encode(decode(codes)) gives back the codes. Returns 0, or -1 if scratch allocation
 * failed (codes then partly rewritten). */
int mt_qtensor_encode(struct mt_qtensor *qt, const float *w);

/* Contract: frees a tensor from mt_qtensor_pack; NULL is a no-op. */
void mt_qtensor_free(struct mt_qtensor *qt);

/* Contract: exact bytes stored for the tensor: codes plus all metadata (the size of its
 * single allocation). The small descriptor struct itself is not counted. */
size_t mt_qtensor_bytes(const struct mt_qtensor *qt);

/* Contract: the bytes mt_qtensor_pack would allocate for n rows of k weights in format f
 * (codes, scales, zero points and codebooks: mt_qtensor_bytes of the packed tensor),
 * without packing anything. Pure; f must pass mt_qformat_check. */
size_t mt_qformat_bytes(const struct mt_qformat *f, size_t n, size_t k);

/* Contract: mt_qtensor_pack with the scales double-quantized (see above; f's scheme nf or
 * log, else NULL with a message), and mt_qformat_bytes of such a tensor. */
struct mt_qtensor *mt_qtensor_pack_dq(const float *w, size_t n, size_t k,
                                      const struct mt_qformat *f, char *err, size_t errlen);
size_t mt_qformat_bytes_dq(const struct mt_qformat *f, size_t n, size_t k);

/* Contract: the number of unit scales of n rows of k in format f (stored as fp32, or
 * double-quantized). Pure; f must pass mt_qformat_check. */
size_t mt_qformat_scale_count(const struct mt_qformat *f, size_t n, size_t k);

/* Contract: out[n_scale] = the tensor's unit scales as its decoding uses them (fp32, or
 * decoded from the double quantization). A kernel reads `scale` directly: for a
 * double-quantized tensor, call it with a copy of *qt whose scale is out. */
void mt_qtensor_scales(const struct mt_qtensor *qt, float *out);

/* Contract: 8 * mt_qtensor_bytes / (n * k). */
double mt_qtensor_bits_per_weight(const struct mt_qtensor *qt);

/* Contract: code j (< k_pad) of row `row`, decoded from the packed layout. Scalar. */
unsigned mt_qtensor_code(const struct mt_qtensor *qt, size_t row, size_t j);

/* Contract: decodes row `row` into out[k] (the real columns only). Scalar reference of
 * the format; used by tests, error measurement and embedding lookups (one row per
 * token), never by the matmul kernels. Thread safe: reads qt only. */
void mt_qtensor_row(const struct mt_qtensor *qt, size_t row, float *out);

/* Contract: decodes the whole tensor into out[n*k]. Tests and references only. */
void mt_qtensor_unpack(const struct mt_qtensor *qt, float *out);

/* Contract: mean squared and maximum absolute error of the packed tensor against w[n*k],
 * decoding one row at a time (no full fp32 copy). */
void mt_qtensor_error(const struct mt_qtensor *qt, const float *w, double *mse, double *maxabs);

/* Scalar fp16/bf16 conversions, round to nearest even; NaN stays NaN (quiet),
 * infinities and overflow give infinity, fp16 subnormals are exact. */
uint16_t mt_q_f32_to_bf16(float x);
float mt_q_bf16_to_f32(uint16_t h);
uint16_t mt_q_f32_to_f16(float x);
float mt_q_f16_to_f32(uint16_t h);

/* Contract: converts n floats; the AVX-512 path (AVX512-BF16 `vcvtne2ps2bf16`, F16C-class
 * `vcvtps2ph`) is used when the CPU has it, else the scalar functions above. Results are
 * identical either way (tests check). `force_scalar` selects the reference. */
void mt_q_f32_to_bf16_n(const float *x, uint16_t *out, size_t n, int force_scalar);
void mt_q_f32_to_f16_n(const float *x, uint16_t *out, size_t n, int force_scalar);

#ifdef __cplusplus
}
#endif
#endif
