/* optim.h — the optimizer state of the training engine (tmodel.h) when it is not the
 * plain in-RAM fp32 AdamW: 8-bit AdamW, Adafactor, and any of them offloaded to a file.
 *
 * What it is for:
 * - adamw8 (Dettmers et al. 2021): m and v in 8 bits, block-wise dynamic quantization in
 *   blocks of MT_Q8_BLOCK elements: one fp32 absmax per block and state, m coded on the
 *   signed dynamic map, v on the unsigned one (256 sorted codes each, mt_q8_map); each
 *   step dequantizes a block, runs the AdamW update in fp32, and requantizes with the new
 *   absmax. 2 bytes a parameter plus 8 bytes a block.
 * - adafactor (Shazeer & Stern 2018, relative step and parameter scaling off, the
 *   recipe's learning rate, beta1 = 0): factored second moment, row and column means of
 *   g^2 + 1e-30 for a matrix, a full v for a vector, decay 1 - t^-0.8, update clipped to
 *   RMS 1, decoupled weight decay as AdamW's. 4 (rows + cols) bytes a matrix.
 * - offload: the state in a file of the run's scratch folder, chunk by chunk through two
 *   RAM buffers; a helper thread writes chunk c-1 back and reads chunk c+1 while chunk c
 *   is updated (pread/pwrite).
 * The state is organised by units: a parameter tensor of the model is `count` units (its
 * per-layer matrices or vectors, or itself), each with its own blocks or factors, laid
 * out unit after unit; a chunk is consecutive units of one tensor.
 * What it is not for: plain AdamW in RAM (the engine's m/v slabs and mt_gpt_adamw_step,
 * bit-identical to the reference), the gradient norm and clipping factor (the engine's:
 * mt_gpt_adamw_args), weights and gradients.
 *
 * Errors: -1 with a message. Thread safety: one optimizer per thread; its I/O thread is
 * private.
 */
#ifndef MT_TRAIN_OPTIM_H
#define MT_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"
#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_optim_kind { MT_OPTIM_ADAMW, MT_OPTIM_ADAMW8, MT_OPTIM_ADAFACTOR };

/* Parses adamw|adamw8|adafactor into *k; returns 0 or -1. */
int mt_optim_parse(const char *s, enum mt_optim_kind *k);
const char *mt_optim_name(enum mt_optim_kind k);

#define MT_Q8_BLOCK ((size_t)2048)

/* The 256 sorted codes of the dynamic map (signed: sign, then the decimal exponent as
 * the count of leading zeros, then a linear fraction in [0.1, 1]; 0 and 1 included;
 * unsigned: the sign bit spent on the fraction), and the 255 midpoints between them
 * (mid[255] = +inf, for the branchless search). */
struct mt_q8_map {
    float code[256], mid[256];
};
void mt_q8_map_init(struct mt_q8_map *m, int is_signed);

/* Quantizes x[n] (n <= MT_Q8_BLOCK) as one block: q[i] = the number of midpoints below
 * x[i] / absmax (the nearest code, ties down); returns absmax = max |x| (0: all codes of
 * 0). The fast kernel (a branchless 8-step search, vectorized) and the reference (a
 * linear count) give the same bytes. */
float mt_q8_quantize(uint8_t *q, const float *x, size_t n, const struct mt_q8_map *m);
float mt_q8_quantize_ref(uint8_t *q, const float *x, size_t n, const struct mt_q8_map *m);
/* x[i] = code[q[i]] * absmax. */
void mt_q8_dequantize(float *x, const uint8_t *q, size_t n, float absmax,
                      const struct mt_q8_map *m);

/* One 8-bit AdamW update of one unit of n parameters (mt_k_adamw's math, in fp32 per
 * block): `state` is the unit's bytes (see mt_optim_unit_bytes). g is zeroed. `ref`
 * selects the reference quantizer. */
void mt_q8_adamw_unit(float *p, float *g, unsigned char *state, size_t n,
                      const struct mt_adamw_args *a, const struct mt_q8_map *mm,
                      const struct mt_q8_map *mv, int ref);

/* One Adafactor update of a rows x cols matrix (cols = 0: a vector of rows elements),
 * state = its row then column statistics (or its v); colacc: cols floats of scratch.
 * Uses a's lr, weight_decay, grad_scale, step; g is zeroed. */
void mt_adafactor_unit(float *p, float *g, float *state, size_t rows, size_t cols, float *colacc,
                       const struct mt_adamw_args *a);

/* The largest |x| of n values, and the codes of x against a given absmax (mt_q8_quantize
 * is the two in a row). */
float mt_q8_absmax(const float *x, size_t n);
void mt_q8_encode(uint8_t *q, const float *x, size_t n, float amax, const struct mt_q8_map *m);

/* A part of an 8-bit AdamW unit that ranks hold apart (tensor parallelism): the part's n
 * elements fall into n_runs runs [bound[r], bound[r + 1]) (bound has n_runs + 1 entries,
 * bound[0] = 0, bound[n_runs] = n), run r inside block block[r] of the whole unit's
 * n_blocks blocks of MT_Q8_BLOCK (a block's elements may lie on several ranks; a rank's
 * elements of one block are one run). maxf takes the elementwise max of its n values over
 * the ranks holding the unit's parts, in place. */
struct mt_q8_part {
    const size_t *bound, *block;
    size_t n_runs, n_blocks;
    void (*maxf)(void *user, float *v, size_t n);
    void *user;
};
/* Contract: the update one process's mt_q8_adamw_unit makes to the whole unit, restricted
 * to this part: state = n_runs absmax of m, n_runs of v (fp32), then the n codes of m and
 * of v; each run is stored against its whole block's absmax (the max over the ranks,
 * one maxf of 2 n_blocks floats; scratch: 2 n_blocks floats), so the codes and scales
 * are one process's, bit for bit, given the same gradients. Collective over the parts'
 * ranks. */
void mt_q8_adamw_part(float *p, float *g, unsigned char *state, size_t n,
                      const struct mt_q8_part *part, float *scratch,
                      const struct mt_adamw_args *a, const struct mt_q8_map *mm,
                      const struct mt_q8_map *mv);

/* A part of an Adafactor unit that ranks hold apart (tensor parallelism): the whole unit
 * is grows x gcols (gcols 0: a vector of grows); this part holds some of its rows (all
 * columns; a vector: some elements) or some of its columns (all rows). sumf / sumd add
 * their n values (sumd: one) over the ranks holding the unit's parts, in place. */
enum { MT_OPTIM_WHOLE = 0, MT_OPTIM_SPLIT_ROWS = 1, MT_OPTIM_SPLIT_COLS = 2 };
struct mt_optim_part {
    size_t grows, gcols;
    int split; /* MT_OPTIM_WHOLE, MT_OPTIM_SPLIT_ROWS or MT_OPTIM_SPLIT_COLS */
    void (*sumf)(void *user, float *v, size_t n);
    void (*sumd)(void *user, double *v);
    void *user;
};
/* Contract: the update one process's mt_adafactor_unit makes to the whole unit, restricted
 * to this part of rows x cols (the part's own shape): its row statistics (rows floats) and
 * column statistics (cols floats) as state. Split by rows, each part's column sums and the
 * row statistics' sum are added across the parts (one sumf of cols floats, one sumd);
 * split by columns, the row sums (one sumf of rows floats; colacc then needs cols + rows
 * floats); either way the update's RMS for the clipping (one sumd). part NULL or WHOLE:
 * mt_adafactor_unit, bit for bit. The sums across parts round in another order than one
 * process's running sums: equal to within float rounding, not bit for bit. Collective
 * over the parts' ranks when split. */
void mt_adafactor_part(float *p, float *g, float *state, size_t rows, size_t cols, float *colacc,
                       const struct mt_adamw_args *a, const struct mt_optim_part *part);

/* The unit shape of parameter tensor p of cfg (see "units" above): *count units of rows x
 * cols (cols = 0: vectors of rows elements); *count = 0 for a tensor cfg does not have.
 * A layer tensor [L, rows, cols] or [L, n] is L units; the others are one. Pure. */
void mt_optim_unit_shape(const struct mt_gpt_config *cfg, int p, size_t *count, size_t *rows,
                         size_t *cols);

/* One update of one unit by kind k (adamw: state = m then v, 8 bytes an element; adamw8:
 * mt_q8_adamw_unit with the maps mm, mv; adafactor: mt_adafactor_unit with colacc of
 * cols floats). An adamw8 unit may be any run of a tensor that starts on one of its
 * blocks (rows = the run's elements, cols = 0); an adafactor unit must be whole. g is
 * zeroed. This is the one dispatch mt_optim_update and the distributed engine share. */
void mt_optim_unit_step(enum mt_optim_kind k, float *w, float *g, unsigned char *state, size_t rows,
                        size_t cols, float *colacc, const struct mt_adamw_args *a,
                        const struct mt_q8_map *mm, const struct mt_q8_map *mv);

/* State bytes of one unit of rows x cols (cols = 0: a vector of rows) for kind k:
 * adamw 8 rows cols, adamw8 2 n + 8 ceil(n / MT_Q8_BLOCK), adafactor 4 (rows + cols) or
 * 4 rows for a vector. */
size_t mt_optim_unit_bytes(enum mt_optim_kind k, size_t rows, size_t cols);

/* What an optimizer holds, in bytes: the state (total, in RAM or in the file), the RAM
 * part (the state, or the two offload buffers), the column scratch (workspace). */
struct mt_optim_plan {
    size_t state_bytes, ram_bytes, scratch_bytes, chunk_bytes, n_chunks;
};
int mt_optim_plan(const struct mt_gpt_config *cfg, enum mt_optim_kind k, int offload,
                  struct mt_optim_plan *p);

struct mt_optim;

/* Creates the optimizer for cfg (state zero). offload: the state goes to a new file in
 * dir (removed by mt_optim_free), else RAM. RAM blocks are allocated in memory category
 * MT_MEM_OPTIMIZER (state or buffers) and MT_MEM_WORKSPACE (scratch). Returns 0 or -1
 * with a message (out of memory, the file cannot be created or filled: its cause). */
int mt_optim_create(struct mt_optim **out, const struct mt_gpt_config *cfg, enum mt_optim_kind k,
                    int offload, const char *dir, char *err, size_t errlen);
void mt_optim_free(struct mt_optim *o);

/* One step: the caller visits the chunks in order, c = 0 .. n_chunks - 1, calling
 * mt_optim_chunk for its element range (tensor *p, elements [*e0, *e0 + *n)) and then
 * mt_optim_update with the fp32 weights and gradients of that range; mt_optim_end after
 * the last. Returns 0 or -1 with a message (an I/O error of the offload file: its cause;
 * the step is then incomplete). */
size_t mt_optim_n_chunks(const struct mt_optim *o);
void mt_optim_chunk(const struct mt_optim *o, size_t c, int *p, size_t *e0, size_t *n);
int mt_optim_begin(struct mt_optim *o, char *err, size_t errlen);
int mt_optim_update(struct mt_optim *o, size_t c, float *w, float *g, const struct mt_adamw_args *a,
                    char *err, size_t errlen);
int mt_optim_end(struct mt_optim *o, char *err, size_t errlen);

/* Offload figures: file bytes, bytes read and written, seconds the caller waited for I/O
 * and seconds the helper spent in pread/pwrite. */
struct mt_optim_io {
    size_t file_bytes, read_bytes, written_bytes;
    double wait_s, io_s;
};
void mt_optim_io_stats(const struct mt_optim *o, struct mt_optim_io *s);

#ifdef __cplusplus
}
#endif
#endif
