/* test_dopt.c — the optimizer plan's closed form (doptim.h's mt_dopt_plan: a column part's
 * 8-bit AdamW runs counted from one period of its rows) equals the walk the runs allocate
 * by (mt_dopt_layout: every row cut at the blocks), piece by piece and in bytes, for 8-bit
 * AdamW and Adafactor on every rank of tensor parallelism over 2, 3 and 4 ranks, pipeline
 * stages over 2 and 3 ranks and the ZeRO ranges (mt_dopt_split; stages 1, 2 and 3 share
 * them) over 2, 3 and 4 ranks. Shapes: tiny, small, and C 192 / 12 heads / T 72 (rows of
 * 192 and 768 floats: a block pattern repeating every 32 and 8 rows, remainders left), and
 * C 48 (a period longer than the rows). No MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doptim.h"
#include "mt_check.h"
#include "shard.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

static void compare(const struct mt_shard_spec *s, enum mt_optim_kind k, size_t lo, size_t hi,
                    const char *what)
{
    char err[256];
    struct mt_dopt a, b;
    if (mt_dopt_layout(&a, s, k, lo, hi, err, sizeof err)) {
        CHECK(0, "%s: layout: %s", what, err);
        return;
    }
    if (mt_dopt_plan(&b, s, k, lo, hi, err, sizeof err)) {
        CHECK(0, "%s: plan: %s", what, err);
        mt_dopt_free(&a);
        return;
    }
    CHECK(a.n_pc == b.n_pc, "%s: %zu pieces, plan %zu", what, a.n_pc, b.n_pc);
    for (size_t i = 0; i < a.n_pc && i < b.n_pc; i++) {
        const struct mt_dopt_piece *x = &a.pc[i], *y = &b.pc[i];
        CHECK(x->lo == y->lo && x->hi == y->hi && x->rows == y->rows && x->cols == y->cols &&
                  x->off == y->off && x->p == y->p && x->split == y->split &&
                  x->n_blocks == y->n_blocks,
              "%s: piece %zu differs", what, i);
        CHECK(x->n_runs == y->n_runs, "%s: piece %zu (tensor %d): %zu runs, plan %zu", what, i,
              x->p, x->n_runs, y->n_runs);
        CHECK(!y->bound && !y->block, "%s: the plan made tables", what);
    }
    CHECK(a.state_bytes == b.state_bytes && a.scratch_bytes == b.scratch_bytes &&
              a.max_piece == b.max_piece,
          "%s: state %zu scratch %zu max %zu, plan %zu %zu %zu", what, a.state_bytes,
          a.scratch_bytes, a.max_piece, b.state_bytes, b.scratch_bytes, b.max_piece);
    mt_dopt_free(&a);
    mt_dopt_free(&b);
}

static struct mt_shard_spec base(const struct mt_gpt_config *cfg)
{
    return mt_shard_spec_whole(cfg, 1, 8);
}

static void shape(const char *name)
{
    char err[256], what[160];
    struct mt_gpt_config cfg;
    if (mt_gpt_config_parse(&cfg, name, err, sizeof err)) {
        CHECK(0, "%s: %s", name, err);
        return;
    }
    const enum mt_optim_kind kinds[2] = {MT_OPTIM_ADAMW8, MT_OPTIM_ADAFACTOR};
    for (int ki = 0; ki < 2; ki++) {
        enum mt_optim_kind k = kinds[ki];
        for (size_t tp = 2; tp <= 4; tp++) { /* tensor parallel: every rank */
            if (cfg.n_head % tp) continue;
            for (size_t r = 0; r < tp; r++) {
                struct mt_shard_spec s = base(&cfg);
                s.tp = tp;
                s.tp_rank = r;
                snprintf(what, sizeof what, "%s %s tp %zu rank %zu", name, mt_optim_name(k), tp, r);
                compare(&s, k, 0, mt_shard_num_params(&s), what);
            }
        }
        for (size_t n = 2; n <= 3; n++) /* pipeline stages */
            for (size_t r = 0; r < n && n <= cfg.n_layer; r++) {
                struct mt_shard_spec s = base(&cfg);
                size_t L = cfg.n_layer, b = L / n, e = L % n;
                s.l0 = r * b + (r < e ? r : e);
                s.l1 = s.l0 + b + (r < e);
                s.embed = r == 0;
                s.head = r == n - 1;
                snprintf(what, sizeof what, "%s %s pp %zu stage %zu", name, mt_optim_name(k), n, r);
                compare(&s, k, 0, mt_shard_num_params(&s), what);
            }
        for (int n = 2; n <= 4; n++) { /* ZeRO ranges */
            struct mt_shard_spec s = base(&cfg);
            size_t counts[4], displs[4];
            if (mt_dopt_split(&s, k, n, counts, displs, err, sizeof err)) {
                CHECK(0, "%s: split: %s", name, err);
                continue;
            }
            for (int r = 0; r < n; r++) {
                snprintf(what, sizeof what, "%s %s zero %d rank %d", name, mt_optim_name(k), n, r);
                compare(&s, k, displs[r], displs[r] + counts[r], what);
            }
        }
    }
}

int main(void)
{
    const char *shapes[] = {"tiny", "small", "small,n_embd=192,n_head=12,seq_len=72,n_layer=2",
                            "tiny,n_embd=48,n_head=12,seq_len=40"};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        shape(shapes[i]);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("optimizer plan equals the layout walk: all shapes and splits\n");
    return 0;
}
