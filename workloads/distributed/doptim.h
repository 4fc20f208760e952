/* doptim.h — 8-bit AdamW and Adafactor (workloads/train/optim.h) on a rank's range of the
 * flat parameter vector of a data-parallel or ZeRO shard (shard.h).
 *
 * What it is for: where the ranks' ranges may start, the state a range holds and its
 * update, so that a sharded step is the single-process step of the same optimizer:
 * optim.h quantizes in blocks of MT_Q8_BLOCK counted from the start of each unit (a
 * layer's matrix or vector, wte, wpe, ...), and Adafactor's row and column statistics
 * need a whole matrix. So adamw8 ranges start on a block of a unit (a rank quantizes
 * whole blocks, the ones one process would) and adafactor ranges on a unit (a rank owns
 * whole matrices, their factored statistics and nothing else). Plain AdamW keeps the
 * balanced split (sizes differ by at most one float) and its m/v slabs in train.c.
 * A pipeline stage (layers [l0, l1), embeddings on the first, the final LayerNorm on the
 * last, the tied wte on both ends) holds whole units: its range is its whole flat vector
 * and its state is one process's for those units (wte's twice, once per end, updated alike
 * from the summed gradient).
 * A tensor-parallel rank holds the replicated units whole (updated alike on every rank)
 * and a part of each split one: some rows (qkv_w, fc_w and their biases) or some columns
 * (attproj_w, fcproj_w) of it. adamw8 keeps one process's blocks (counted from the whole
 * unit's start): a part holds its elements of each block as a run, with the block's
 * absmax, which the ranks agree on with a max all-reduce (optim.h's mt_q8_adamw_part), so
 * its codes and scales are one process's. Adafactor keeps
 * the part's row and column statistics and adds across the ranks what one process sums
 * over the whole matrix (optim.h's mt_adafactor_part): split by rows, the column sums
 * (every rank then holds all the column statistics, equal) and the row statistics' mean;
 * split by columns, the row sums (every rank holds all the row statistics); the update's
 * RMS for the clipping either way. So the factored second moment is one process's.
 * What it is not for: the kernels (optim.c), the gradient norm and the reductions
 * (train.c).
 *
 * Errors: -1 with a message (out of memory). Thread safety: one per rank.
 */
#ifndef MT_DIST_DOPTIM_H
#define MT_DIST_DOPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "shard.h"

/* A unit of the optimizer inside a rank's range: flat [lo, hi) of tensor p, its shape
 * (adamw8: rows = hi - lo, cols = 0; adafactor: the unit's rows x cols) and its state at
 * byte `off` of the rank's state. */
struct mt_dopt_piece {
    size_t lo, hi, rows, cols, off;
    int p;
    size_t grows, gcols; /* the whole unit's shape (tensor parallel: rows x cols is a part) */
    int split;           /* optim.h's MT_OPTIM_WHOLE, _SPLIT_ROWS, _SPLIT_COLS */
    /* adamw8, a tensor-parallel part: its runs inside the unit's blocks (optim.h's struct
     * mt_q8_part; bound has n_runs + 1 entries); NULL otherwise */
    size_t *bound, *block, n_runs, n_blocks;
};

/* The sums across the tensor-parallel ranks a split Adafactor matrix needs (optim.h's
 * struct mt_optim_part); NULL where no piece is split. */
struct mt_dopt_comm {
    void (*sumf)(void *user, float *v, size_t n);
    void (*sumd)(void *user, double *v);
    void (*maxf)(void *user, float *v, size_t n); /* adamw8: the blocks' absmax */
    void *user;
};

struct mt_dopt {
    enum mt_optim_kind kind;
    size_t lo, hi; /* the rank's flat range */
    struct mt_dopt_piece *pc;
    size_t n_pc;
    size_t state_bytes;   /* MT_MEM_OPTIMIZER: every piece's mt_optim_unit_bytes */
    size_t scratch_bytes; /* MT_MEM_WORKSPACE: adafactor's column sums of the widest piece,
                           * (+ a column part's row sums), adamw8 parts' 2 absmax a block */
    size_t max_piece;     /* elements of the largest piece (bf16 gradients: decoded one piece
                           * at a time into a buffer of this many floats) */
    struct mt_q8_map mm, mv;
};

/* Contract: splits the flat vector of spec (an unsplit shard: tp = 1) over
 * nranks ranks into counts/displs (nranks ints each): the balanced split, then, for
 * adamw8 and adafactor, each boundary moved to the nearest place a range may start (see
 * above; ties to the lower one; a range may be empty). Returns 0 or -1 with a message. */
int mt_dopt_split(const struct mt_shard_spec *spec, enum mt_optim_kind k, int nranks,
                  size_t *counts, size_t *displs, char *err, size_t errlen);

/* Contract: fills *o with the pieces of [lo, hi) (a range mt_dopt_split gave) for kind k
 * (adamw8 or adafactor) and their bytes. Free with mt_dopt_free. Returns 0 or -1 with a
 * message (out of memory; a range that cuts an adafactor matrix). */
int mt_dopt_layout(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                   size_t lo, size_t hi, char *err, size_t errlen);
/* Contract: what mt_dopt_layout gives (the same pieces, n_runs, n_blocks, state_bytes,
 * scratch_bytes, max_piece) without the runs' tables (bound and block stay NULL): the
 * runs of a tensor-parallel column part are counted from its first rows' blocks, which
 * repeat, not walked row by row, so the plan of a 70B shape takes microseconds a unit.
 * For the memory plan only, not for mt_dopt_step; free with mt_dopt_free. Returns 0 or -1
 * as mt_dopt_layout. tests/distributed/test_dopt.c holds it equal to mt_dopt_layout. */
int mt_dopt_plan(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                 size_t lo, size_t hi, char *err, size_t errlen);
void mt_dopt_free(struct mt_dopt *o);

/* Contract: one step over the range: w and g are the weights and the reduced gradients of
 * [lo, hi) (element lo first), state the state_bytes, colacc the scratch; each piece
 * gets mt_gpt_adamw_args(r, lr, its tensor's decay, norm, 1, step). g is zeroed. With
 * gb != NULL (bf16 mixed precision; g is then NULL) the reduced gradients are bf16: each
 * piece's are decoded into gbuf (max_piece floats) and stepped from there; w is the fp32
 * master of the range, gb is left as it is. comm: the tensor-parallel sums of split
 * Adafactor pieces (collective over those ranks; NULL when none is split). */
void mt_dopt_step(const struct mt_dopt *o, unsigned char *state, float *colacc, float *w, float *g,
                  const uint16_t *gb, float *gbuf, const struct mt_dopt_comm *comm,
                  const struct mt_gpt_recipe *r, float lr, float norm, uint64_t step);

#endif
