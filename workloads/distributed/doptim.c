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
        u->v[u->n++] =
            (struct mt_dopt_piece){.lo = loff,
                                   .hi = loff + n,
                                   .rows = rows,
                                   .cols = cols,
                                   .off = goff / per,
                                   .p = (int)p,
                                   .grows = rows,
                                   .gcols = cols,
                                   .split = part_row ? MT_OPTIM_SPLIT_COLS : MT_OPTIM_WHOLE};
    }
}

/* A column part's rows continue its first one inside one unit: they merge into its piece. */
static void unit_rows(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                      size_t rows, size_t gstride, int owner)
{
    (void)gstride;
    struct ounits *u = user;
    unit_visit(user, p, goff, loff, n, owner);
    if (u->v && rows > 1) u->v[u->n - 1].hi += (rows - 1) * n;
}

static int collect(const struct mt_shard_spec *spec, struct ounits *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->cfg = &spec->cfg;
    mt_shard_map_rows(spec, unit_rows, u); /* count, then fill */
    u->v = calloc(u->n ? u->n : 1, sizeof *u->v);
    if (!u->v) {
        snprintf(err, errlen, "out of memory for the optimizer's units");
        return -1;
    }
    u->n = 0;
    mt_shard_map_rows(spec, unit_rows, u);
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

/* adamw8 tensor-parallel parts: the walk that cuts their runs at the unit's blocks. */
struct runwalk {
    struct mt_dopt *o;
    const struct mt_gpt_config *cfg;
    size_t at; /* the piece the last run fell in (runs and pieces come in local order) */
    int oom;
};

/* Appends [lp, lp + len) of block blk to piece x (extending its last run when it goes on). */
static int run_add(struct mt_dopt_piece *x, size_t lp, size_t len, size_t blk)
{
    if (x->n_runs && x->block[x->n_runs - 1] == blk && x->bound[x->n_runs] == lp) {
        x->bound[x->n_runs] += len;
        return 0;
    }
    if (!x->n_runs || (x->n_runs & (x->n_runs - 1)) == 0) { /* room doubles at powers of 2 */
        size_t cap = x->n_runs ? 2 * x->n_runs : 1;
        size_t *b = realloc(x->bound, (cap + 1) * sizeof *b);
        if (b) x->bound = b;
        size_t *k = b ? realloc(x->block, cap * sizeof *k) : NULL;
        if (!k) return -1;
        x->block = k;
    }
    x->bound[x->n_runs] = lp;
    x->block[x->n_runs] = blk;
    x->bound[++x->n_runs] = lp + len;
    return 0;
}

static void run_visit(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                      int owner)
{
    (void)owner;
    struct runwalk *w = user;
    struct mt_dopt *o = w->o;
    while (w->at < o->n_pc && o->pc[w->at].hi <= loff)
        w->at++;
    if (w->at == o->n_pc) return;
    struct mt_dopt_piece *x = &o->pc[w->at];
    if (x->lo > loff || x->p != (int)p || x->split == MT_OPTIM_WHOLE) return;
    size_t per = x->grows * (x->gcols ? x->gcols : 1), u = goff % per;
    for (size_t done = 0; done < n && !w->oom;) {
        size_t blk = (u + done) / MT_Q8_BLOCK, end = (blk + 1) * MT_Q8_BLOCK - u;
        size_t len = (end < n ? end : n) - done;
        w->oom |= run_add(x, loff - x->lo + done, len, blk) != 0;
        done += len;
    }
}

/* The plan's count of the same runs (no tables): per row, the blocks it touches, less one
 * where it goes on the piece's last run (same block, next local element). A column part's
 * rows repeat their blocks' pattern every P rows (P = MT_Q8_BLOCK / gcd(stride, block)),
 * so its count is a period's times the periods plus a remainder: at most P rows read. */
struct runcount {
    struct mt_dopt *o;
    size_t at, cur, last_blk, last_end; /* cur: the piece last_* are of (n_pc: none) */
};

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Runs of elements [u, u + len) of the unit (len > 0) that do not go on run ending at
 * element `prev_end` (exclusive; a row before; 0 = none). */
static size_t row_runs(size_t u, size_t len, size_t prev_end)
{
    size_t b0 = u / MT_Q8_BLOCK, touched = (u + len - 1) / MT_Q8_BLOCK - b0 + 1;
    return touched - (prev_end && (prev_end - 1) / MT_Q8_BLOCK == b0);
}

static void count_rows(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                       size_t rows, size_t gstride, int owner)
{
    (void)owner;
    struct runcount *c = user;
    struct mt_dopt *o = c->o;
    for (size_t i = 0; i < rows && n;) {
        size_t l = loff + i * n, g = goff + i * gstride;
        while (c->at < o->n_pc && o->pc[c->at].hi <= l)
            c->at++;
        if (c->at == o->n_pc) return;
        struct mt_dopt_piece *x = &o->pc[c->at];
        if (x->lo > l || x->p != (int)p || x->split == MT_OPTIM_WHOLE) {
            i++;
            continue;
        }
        size_t per = x->grows * (x->gcols ? x->gcols : 1), u = g % per, lp = l - x->lo;
        int on = c->cur == c->at && c->last_end == lp;
        x->n_runs += row_runs(u, n, on ? c->last_blk * MT_Q8_BLOCK + 1 : 0);
        /* the rows after this one inside x: a period's count, times, plus the remainder */
        size_t m = rows - i - 1, in_x = (x->hi - l) / n - 1;
        if (m > in_x) m = in_x;
        size_t P = MT_Q8_BLOCK / gcd(gstride % MT_Q8_BLOCK, MT_Q8_BLOCK);
        size_t lim = m < P ? m : P, sum = 0, rem = 0;
        for (size_t k = 1; k <= lim; k++) {
            sum += row_runs(u + k * gstride, n, u + (k - 1) * gstride + n);
            if (k == m % P) rem = sum;
        }
        x->n_runs += m / P * sum + rem;
        c->cur = c->at;
        c->last_blk = (u + m * gstride + n - 1) / MT_Q8_BLOCK;
        c->last_end = lp + (m + 1) * n;
        i += m + 1;
    }
}

void mt_dopt_free(struct mt_dopt *o)
{
    for (size_t i = 0; o->pc && i < o->n_pc; i++) {
        free(o->pc[i].bound);
        free(o->pc[i].block);
    }
    free(o->pc);
    o->pc = NULL;
    o->n_pc = 0;
}

/* mt_dopt_layout (tables = 1) and mt_dopt_plan (0: the runs counted, not listed). */
static int layout(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                  size_t lo, size_t hi, int tables, char *err, size_t errlen)
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
        if (b - a > o->max_piece) o->max_piece = b - a;
        o->pc[o->n_pc++] = x;
    }
    free(u.v);
    if (k == MT_OPTIM_ADAMW8 && spec->tp > 1 && !tables) {
        struct runcount c = {.o = o, .cur = o->n_pc};
        mt_shard_map_rows(spec, count_rows, &c);
    } else if (k == MT_OPTIM_ADAMW8 && spec->tp > 1) { /* the parts' runs in the unit's blocks */
        struct runwalk w = {.o = o, .cfg = &spec->cfg};
        mt_shard_map(spec, run_visit, &w);
        if (w.oom) {
            mt_dopt_free(o);
            snprintf(err, errlen, "out of memory for the optimizer's block runs");
            return -1;
        }
    }
    for (size_t i = 0; i < o->n_pc; i++) { /* state offsets, bytes, scratch */
        struct mt_dopt_piece *x = &o->pc[i];
        size_t n = x->hi - x->lo, scratch = 0;
        x->off = o->state_bytes;
        if (x->n_runs) { /* 2 B an element, an absmax of m and of v a run */
            x->n_blocks = (x->grows * (x->gcols ? x->gcols : 1) + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK;
            o->state_bytes += 2 * n + 2 * x->n_runs * sizeof(float);
            scratch = 2 * x->n_blocks * sizeof(float);
        } else {
            o->state_bytes += mt_optim_unit_bytes(k, x->rows, x->cols);
            /* adafactor: column sums, and a column part's row sums after them */
            if (k == MT_OPTIM_ADAFACTOR)
                scratch =
                    (x->cols + (x->split == MT_OPTIM_SPLIT_COLS ? x->rows : 0)) * sizeof(float);
        }
        if (scratch > o->scratch_bytes) o->scratch_bytes = scratch;
    }
    mt_q8_map_init(&o->mm, 1);
    mt_q8_map_init(&o->mv, 0);
    return 0;
}

int mt_dopt_layout(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                   size_t lo, size_t hi, char *err, size_t errlen)
{
    return layout(o, spec, k, lo, hi, 1, err, errlen);
}

int mt_dopt_plan(struct mt_dopt *o, const struct mt_shard_spec *spec, enum mt_optim_kind k,
                 size_t lo, size_t hi, char *err, size_t errlen)
{
    return layout(o, spec, k, lo, hi, 0, err, errlen);
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
        if (x->n_runs) { /* adamw8, a tensor-parallel part: one process's blocks */
            struct mt_q8_part part = {x->bound,    x->block,   x->n_runs,
                                      x->n_blocks, comm->maxf, comm->user};
            mt_q8_adamw_part(w + (x->lo - o->lo), gp, state + x->off, x->hi - x->lo, &part, colacc,
                             &a, &o->mm, &o->mv);
            continue;
        }
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
