/* doptim.c — the sharded 8-bit AdamW and Adafactor state (doptim.h). */
#include "doptim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"

/* The optimizer's units in the local flat order: [lo, hi) of tensor p, rows x cols. */
struct ounits {
    struct mt_dopt_piece *v; /* NULL: counting the runs (an upper bound of the units) */
    size_t n;
    const struct mt_gpt_config *cfg;
};

/* mt_shard_map visits the q/k/v parts and the projection rows as separate runs: runs of
 * one tensor that continue each other inside one unit are merged. */
static void unit_visit(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                       int owner)
{
    (void)owner;
    struct ounits *u = user;
    size_t count, rows, cols;
    mt_optim_unit_shape(u->cfg, (int)p, &count, &rows, &cols);
    size_t per = rows * (cols ? cols : 1);
    struct mt_dopt_piece *last = u->v && u->n ? &u->v[u->n - 1] : NULL;
    size_t w = cols ? cols : 1;
    int part_row = n % w != 0 || goff % w != 0; /* a run inside a row: split by columns */
    if (!u->v) {
        u->n++;
    } else if (last && last->p == (int)p && last->hi == loff && last->off == goff / per &&
               goff % per != 0) {
        last->hi += n;
        if (part_row) last->split = MT_OPTIM_SPLIT_COLS;
    } else { /* off holds the unit's index inside its tensor while collecting */
        u->v[u->n++] = (struct mt_dopt_piece){
            loff, loff + n,   rows,
            cols, goff / per, (int)p,
            rows, cols,       part_row ? MT_OPTIM_SPLIT_COLS : MT_OPTIM_WHOLE};
    }
}

static int collect(const struct mt_shard_spec *spec, struct ounits *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->cfg = &spec->cfg;
    mt_shard_map(spec, unit_visit, u); /* count, then fill */
    u->v = calloc(u->n ? u->n : 1, sizeof *u->v);
    if (!u->v) {
        snprintf(err, errlen, "out of memory for the optimizer's units");
        return -1;
    }
    u->n = 0;
    mt_shard_map(spec, unit_visit, u);
    for (size_t i = 0; i < u->n; i++) { /* a tensor-parallel part: its own shape */
        struct mt_dopt_piece *x = &u->v[i];
        size_t len = x->hi - x->lo, w = x->gcols ? x->gcols : 1;
        if (len == x->grows * w)
            x->split = MT_OPTIM_WHOLE;
        else if (x->split == MT_OPTIM_SPLIT_COLS)
            x->cols = len / x->grows;
        else
            x->split = MT_OPTIM_SPLIT_ROWS, x->rows = len / w;
    }
    return 0;
}

/* The place nearest t where a range may start: a block start of t's unit (adamw8) or
 * one of its ends (adafactor). */
static size_t snap(const struct ounits *u, enum mt_optim_kind k, size_t t)
{
    for (size_t i = 0; i < u->n; i++) {
        const struct mt_dopt_piece *x = &u->v[i];
        if (t < x->lo || t >= x->hi) continue;
        size_t q = k == MT_OPTIM_ADAMW8 ? MT_Q8_BLOCK : x->hi - x->lo;
        size_t lower = x->lo + (t - x->lo) / q * q;
        size_t upper = lower + q < x->hi ? lower + q : x->hi;
        return t - lower <= upper - t ? lower : upper;
    }
    return t; /* the end of the vector */
}

int mt_dopt_split(const struct mt_shard_spec *spec, enum mt_optim_kind k, int nranks,
                  size_t *counts, size_t *displs, char *err, size_t errlen)
{
    size_t n = mt_shard_num_params(spec), N = (size_t)nranks, prev = 0;
    struct ounits u = {0};
    if (k != MT_OPTIM_ADAMW && collect(spec, &u, err, errlen)) return -1;
    for (size_t r = 0, off = 0; r < N; r++) { /* balanced: sizes differ by at most one */
        size_t end = off + n / N + (r < n % N), b = r + 1 < N ? end : n;
        if (k != MT_OPTIM_ADAMW && r + 1 < N) b = snap(&u, k, end);
        if (b < prev) b = prev;
        displs[r] = prev;
        counts[r] = b - prev;
        prev = b;
        off = end;
    }
    free(u.v);
    return 0;
}

void mt_dopt_free(struct mt_dopt *o)
{
    free(o->pc);
    o->pc = NULL;
    o->n_pc = 0;
}

int mt_dopt_layout(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                   size_t lo, size_t hi, char *err, size_t errlen)
{
    struct ounits u;
    memset(o, 0, sizeof *o);
    o->kind = k;
    o->lo = lo;
    o->hi = hi;
    if (collect(spec, &u, err, errlen)) return -1;
    o->pc = calloc(u.n ? u.n : 1, sizeof *o->pc);
    if (!o->pc) {
        free(u.v);
        snprintf(err, errlen, "out of memory for the optimizer's pieces");
        return -1;
    }
    for (size_t i = 0; i < u.n; i++) {
        struct mt_dopt_piece x = u.v[i];
        size_t a = x.lo > lo ? x.lo : lo, b = x.hi < hi ? x.hi : hi;
        if (a >= b) continue;
        if (k == MT_OPTIM_ADAFACTOR && (a != x.lo || b != x.hi)) {
            snprintf(err, errlen, "range [%zu, %zu) cuts an Adafactor unit [%zu, %zu)", lo, hi,
                     x.lo, x.hi);
            mt_dopt_free(o);
            free(u.v);
            return -1;
        }
        if (k == MT_OPTIM_ADAMW8) x.rows = b - a, x.cols = 0;
        x.lo = a;
        x.hi = b;
        x.off = o->state_bytes;
        o->state_bytes += mt_optim_unit_bytes(k, x.rows, x.cols);
        /* column sums, and a column part's row sums after them */
        size_t scratch = (x.cols + (x.split == MT_OPTIM_SPLIT_COLS ? x.rows : 0)) * sizeof(float);
        if (k == MT_OPTIM_ADAFACTOR && scratch > o->scratch_bytes) o->scratch_bytes = scratch;
        if (b - a > o->max_piece) o->max_piece = b - a;
        o->pc[o->n_pc++] = x;
    }
    free(u.v);
    mt_q8_map_init(&o->mm, 1);
    mt_q8_map_init(&o->mv, 0);
    return 0;
}

void mt_dopt_step(const struct mt_dopt *o, unsigned char *state, float *colacc, float *w, float *g,
                  const uint16_t *gb, float *gbuf, const struct mt_dopt_comm *comm,
                  const struct mt_gpt_recipe *r, float lr, float norm, uint64_t step)
{
    for (size_t i = 0; i < o->n_pc; i++) {
        const struct mt_dopt_piece *x = &o->pc[i];
        struct mt_adamw_args a;
        mt_gpt_adamw_args(&a, r, lr, mt_gpt_param_decays((enum mt_gpt_param)x->p), norm, 1.0f,
                          step);
        float *gp = gb ? gbuf : g + (x->lo - o->lo);
        if (gb) mt_half_unpack(MT_PREC_BF16, gbuf, gb + (x->lo - o->lo), x->hi - x->lo);
        if (o->kind == MT_OPTIM_ADAFACTOR && x->split != MT_OPTIM_WHOLE) {
            struct mt_optim_part part = {x->grows,   x->gcols,   x->split,
                                         comm->sumf, comm->sumd, comm->user};
            mt_adafactor_part(w + (x->lo - o->lo), gp, (float *)(void *)(state + x->off), x->rows,
                              x->cols, colacc, &a, &part);
            continue;
        }
        mt_optim_unit_step(o->kind, w + (x->lo - o->lo), gp, state + x->off, x->rows, x->cols,
                           colacc, &a, &o->mm, &o->mv);
    }
}
