/* plots/plot_memcheck.c — the "accounted vs measured" check: memory_check and its table.
 *
 * What it is for: for the runs a per-run plot would show (first run of each configuration,
 * at most max_runs), the peak the plugin ACCOUNTED (infer_peak_bytes for serving runs,
 * train_peak_bytes for training runs) beside the heap peak the profiler MEASURED while the
 * matching phase ran (region counter heap_peak_bytes, stacked by heap_peak_bytes.<category>),
 * as memory_check.dat/.gp/image and a report table with the ratio and the two categories
 * that make most of the difference. A measured figure that is unavailable is listed in the
 * table with its reason and left out of the data and the image (never drawn as 0).
 * What it is not for: the other per-run plots (plot_runs.c) or the rest of the page.
 *
 * Category values are each category's own peak while the phase ran (the harness folds
 * nested regions per category), so they need not add up to the total: the stack is drawn
 * from them and the measured total is marked on it; measured bytes no category reaches
 * are drawn as "untagged".
 *
 * The phase (one rule for every workload): the run's lowest rank that has regions; serving
 * runs (those reporting infer_peak_bytes) take the shallowest region named `infer`, else
 * the shallowest named `eval`; training runs the shallowest named `train`. Ties at one
 * depth go to the first path in byte order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

#define UNTAGGED PL_N_CATS /* measured bytes no category claims (total minus the categories) */

struct check {
    const struct pl_run *run;
    int serving; /* else training */
    char *desc;  /* pl_run_desc */
    char *phase; /* region path, NULL when the run has none */
    double accounted;
    int measured_ok;
    double measured;
    double cat[PL_N_CATS + 1]; /* measured per category, then the untagged rest */
    double acc_cat[PL_N_CATS]; /* accounted per category (<kind>_peak_<cat>_bytes) */
    int has_acc_cat;           /* the run reported at least one of those */
    char *unavailable;         /* why the measured figure is missing */
    int has_plan, has_resid;   /* the plan (plan_<phase>_peak_bytes) and the residual */
    double plan, resid;        /* (<phase>_unaccounted_bytes) the harness stored */
    int has_runtime;           /* the runtime terms of the run's class, as it stored them */
    double runtime;            /* (<phase>_runtime_bytes): heap beyond any plan */
    char *runtime_why;         /* why they are unavailable (NULL: not stored with the run) */
    int has_residual;          /* <phase>_residual_bytes: unaccounted minus runtime */
    double residual;
};

/* The run's value of metric `name` (category `cat`, NULL: the whole) at `rank` when it
 * reported one there, else its whole-run (rank -1) value. Returns 1 and sets *v when one
 * exists. rank_rows / run_rows: the run's metrics at that rank and at rank -1. */
static int metric_at(const struct mt_read_metric *rank_rows, size_t n_rank,
                     const struct mt_read_metric *run_rows, size_t n_run, const char *name,
                     const char *cat, double *v)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct mt_read_metric *m = pass ? run_rows : rank_rows;
        size_t n = pass ? n_run : n_rank;
        for (size_t i = 0; i < n; i++)
            if (m[i].has && strcmp(m[i].name, name) == 0 &&
                (cat ? m[i].category && strcmp(m[i].category, cat) == 0 : !m[i].category)) {
                *v = m[i].value;
                return 1;
            }
    }
    return 0;
}

/* The whole-run row of metric `name` (no category) among rows[0..n), or NULL. */
static const struct mt_read_metric *run_metric(const struct mt_read_metric *rows, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!rows[i].category && strcmp(rows[i].name, name) == 0) return &rows[i];
    return NULL;
}

/* The phase region of c->run (see the top of this file) among its regions (rank, then
 * path order); NULL with c->unavailable set when there is none. *rank: the lowest rank
 * with regions (0 when none). */
static const struct mt_read_region *find_phase(struct pl_ctx *ctx, struct check *c,
                                               const struct mt_read_region *regs, size_t n,
                                               int *rank)
{
    *rank = n ? regs[0].rank : 0;
    static const char *const serving[] = {"infer", "eval", NULL}, *const training[] = {"train",
                                                                                       NULL};
    const struct mt_read_region *best = NULL;
    for (const char *const *want = c->serving ? serving : training; *want && !best; want++)
        for (size_t i = 0; i < n && regs[i].rank == *rank; i++)
            if (strcmp(regs[i].name, *want) == 0 && (!best || regs[i].depth < best->depth))
                best = &regs[i]; /* path order within a depth: the first one stays */
    if (best)
        c->phase = pl_strdup(ctx, best->path);
    else
        c->unavailable = pl_asprintf(ctx, "no %s region in run %lld",
                                     c->serving ? "infer or eval" : "train", c->run->id);
    return best;
}

/* Reads the measured peak of the phase and the accounted figures at the same rank. */
static void load_check(struct pl_ctx *ctx, struct check *c)
{
    const char *kind = c->serving ? "infer_peak_bytes" : "train_peak_bytes";
    struct mt_read_region *regs;
    struct mt_read_metric *at_rank = NULL, *at_run = NULL;
    size_t n_regs = 0, n_rank = 0, n_run = 0;
    int rank;
    if (mt_read_regions(ctx->rd, c->run->id, &regs, &n_regs) != 0) {
        c->unavailable = pl_asprintf(ctx, "cannot read regions: %s", mt_store_error(ctx->st));
        return;
    }
    const struct mt_read_region *region = find_phase(ctx, c, regs, n_regs, &rank);
    if (mt_read_metrics(ctx->rd, c->run->id, rank, &at_rank, &n_rank) != 0 ||
        mt_read_metrics(ctx->rd, c->run->id, -1, &at_run, &n_run) != 0)
        n_rank = n_run = 0;
    metric_at(at_rank, n_rank, at_run, n_run, kind, NULL, &c->accounted);
    for (size_t k = 0; k < PL_N_CATS; k++)
        c->has_acc_cat |=
            metric_at(at_rank, n_rank, at_run, n_run, kind, pl_cats[k], &c->acc_cat[k]);
    if (!region) return;
    char name[96];
    snprintf(name, sizeof name, "plan_%s_peak_bytes", region->name);
    c->has_plan = metric_at(at_rank, n_rank, at_run, n_run, name, NULL, &c->plan);
    snprintf(name, sizeof name, "%s_unaccounted_bytes", region->name);
    c->has_resid = metric_at(at_rank, n_rank, at_run, n_run, name, NULL, &c->resid);
    snprintf(name, sizeof name, "%s_runtime_bytes", region->name);
    const struct mt_read_metric *rt = run_metric(at_run, n_run, name);
    c->has_runtime = rt && rt->has;
    c->runtime = c->has_runtime ? rt->value : 0.0;
    if (rt && !rt->has) c->runtime_why = pl_strdup(ctx, pl_s(rt->unavailable));
    snprintf(name, sizeof name, "%s_residual_bytes", region->name);
    c->has_residual = metric_at(at_rank, n_rank, at_run, n_run, name, NULL, &c->residual);
    int has_total = 0;
    double sum = 0;
    for (size_t i = 0; i < region->n_counters; i++) {
        const struct mt_read_counter *ct = &region->counters[i];
        if (strcmp(ct->name, "heap_peak_bytes") != 0) continue;
        if (!ct->category) {
            has_total = 1;
            c->measured_ok = ct->has;
            c->measured = ct->value;
            if (!ct->has) c->unavailable = pl_strdup(ctx, pl_s(ct->unavailable));
            continue;
        }
        for (size_t k = 0; k < PL_N_CATS && ct->has; k++)
            if (strcmp(ct->category, pl_cats[k]) == 0) {
                c->cat[k] = ct->value;
                sum += ct->value;
            }
    }
    if (!has_total)
        c->unavailable = pl_asprintf(ctx,
                                     "no heap_peak_bytes counter in region %s (run without "
                                     "the heap profiler?)",
                                     pl_s(c->phase));
    if (c->measured_ok) c->cat[UNTAGGED] = c->measured > sum ? c->measured - sum : 0;
}

/* "workspace +9.83 MiB, other +4.03 MiB": the two categories with the largest measured
 * excess over the accounted figure (the measured size when the run accounts no category). */
static void html_top_difference(struct pl_ctx *ctx, FILE *f, const struct check *c)
{
    double d[PL_N_CATS + 1];
    for (size_t k = 0; k <= PL_N_CATS; k++)
        d[k] = c->cat[k] - (k < PL_N_CATS && c->has_acc_cat ? c->acc_cat[k] : 0);
    pl_html_top_two(ctx, f, d, "none (nothing measured above the accounting)",
                    c->has_acc_cat ? NULL : " (no per-category accounting: measured sizes)");
}

static void table_row(struct pl_ctx *ctx, FILE *f, const void *rec)
{
    const struct check *c = rec;
    pl_tr_start(f, c->desc, c->phase ? c->phase : "(none)");
    fprintf(f, "</td><td class=\"n\">%.3f</td>", c->accounted / PL_MIB);
    pl_td_mib(f, c->has_plan, c->plan, "no plan");
    if (c->has_runtime || !c->runtime_why) {
        pl_td_mib(f, c->has_runtime, c->runtime, "not measured");
    } else {
        fputs("<td class=\"none\">unavailable: ", f);
        pl_html(f, c->runtime_why);
        fputs("</td>", f);
    }
    if (!c->measured_ok) {
        pl_td_unavailable(f, 4, c->unavailable);
        return;
    }
    fprintf(f, "<td class=\"n\">%.3f</td><td class=\"n\">", c->measured / PL_MIB);
    if (c->accounted > 0) fprintf(f, "%.2f", c->measured / c->accounted);
    fputs("</td><td class=\"n\">", f);
    /* against plan + runtime when the run's class was probed, else against the plan */
    if (c->has_residual || c->has_resid) {
        double r = c->has_residual ? c->residual : c->resid;
        int over = fabs(r) > MT_WITNESS_FLAG_FRAC * c->measured && fabs(r) > MT_WITNESS_FLAG_BYTES;
        fprintf(f, "%.3f%s", r / PL_MIB, over ? " <b class=\"over\">over</b>" : "");
    }
    fputs("</td><td>", f);
    html_top_difference(ctx, f, c);
    fputs("</td></tr>\n", f);
}

static void write_table(struct pl_ctx *ctx, const struct check *cs, size_t n, size_t more)
{
    pl_table(ctx,
             "<p>Accounted: the plugin's <code>infer_peak_bytes</code> (serving) or "
             "<code>train_peak_bytes</code> (training). Measured: the heap profiler's exact peak "
             "while the phase region ran (<code>heap_peak_bytes</code>); the difference by "
             "category is measured minus the plugin's <code>&lt;kind&gt;_peak_&lt;category&gt;"
             "_bytes</code> where it reports them. Planned: <code>memtrade plan</code>'s "
             "prediction for the phase (<code>plan_&lt;phase&gt;_peak_bytes</code>). Runtime: "
             "what the plan cannot derive (library workspace, untagged allocations), measured "
             "once per build, machine and class by a probe (<code>memtrade run "
             "--measure-runtime</code>, <code>memtrade plan --measure-runtime</code>) and "
             "stored with each run (<code>&lt;phase&gt;_runtime_bytes</code>, unavailable with "
             "the reason when its class was not probed). Residual: measured minus planned minus "
             "runtime (<code>&lt;phase&gt;_residual_bytes</code>), or minus planned alone "
             "(<code>&lt;phase&gt;_unaccounted_bytes</code>) where the runtime is not measured, "
             "flagged <b>over</b> beyond 5 % of the measured peak and 4 MiB."
             "</p>\n<table "
             "class=\"memcheck\"><caption>accounted vs measured</caption><tr><th>run</th>"
             "<th>phase</th><th>accounted (MiB)</th><th>planned (MiB)</th><th>runtime (MiB)</th>"
             "<th>measured (MiB)</th>"
             "<th>ratio</th><th>residual (MiB)</th><th>top two categories of the difference"
             "</th></tr>\n",
             cs, n, sizeof *cs, table_row, &ctx->memcheck_table, more, "have an accounted peak");
}

/* memory_check.dat: one row per run with a measured peak; cumulative MiB of the category
 * peaks in memcat order, then the untagged rest (measured total minus the categories'
 * sum, when positive). */
static void write_dat(FILE *dat, const struct check *cs, size_t n)
{
    fputs("# row\trun_id\tkind\taccounted_MiB\tmeasured_MiB\tratio", dat);
    pl_dat_cum_header(dat);
    fputs("\tphase\tlabel\n", dat);
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        const struct check *c = &cs[i];
        if (!c->measured_ok) continue;
        fprintf(dat, "%zu\t%lld\t%s\t%.10g\t%.10g\t", row++, c->run->id,
                c->serving ? "serving" : "training", c->accounted / PL_MIB, c->measured / PL_MIB);
        fprintf(dat, c->accounted > 0 ? "%.10g" : "NaN", c->measured / c->accounted);
        double cum = 0;
        for (size_t k = 0; k <= PL_N_CATS; k++) {
            cum += c->cat[k];
            fprintf(dat, "\t%.10g", cum / PL_MIB);
        }
        fputc('\t', dat);
        pl_dat_text(dat, c->phase);
        fputc('\t', dat);
        pl_dat_text(dat, c->desc);
        fputc('\n', dat);
    }
}

static void write_gp(struct pl_ctx *ctx, FILE *gp, const struct check *cs, size_t n, size_t m,
                     const char *title, const char *note)
{
    pl_gp_preamble(ctx, gp, "memory_check", 1100, 190 + 56 * (int)m);
    pl_gp_title(gp, title, ctx, note);
    pl_gp_hbar_head(gp,
                    "heap peak of the phase (MiB): upper bar accounted, lower bar measured by "
                    "category",
                    m);
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].measured_ok) continue;
        pl_gp_ytic(gp, !row, cs[i].desc, cs[i].phase, m - 1 - row);
        row++;
    }
    /* y of a row: m-1-row; accounted above the centre, measured below */
    fprintf(gp,
            ")\nY(r) = %zu - r\nplot 'memory_check.dat' using (0):(Y($1)+0.2):(0):4:(Y($1)+0.02):"
            "(Y($1)+0.38) with boxxyerror lc rgb '#4d4d4d' title 'accounted'",
            m - 1);
    for (size_t k = 0; k <= PL_N_CATS; k++) {
        int used = 0;
        for (size_t i = 0; i < n; i++)
            used |= cs[i].measured_ok && cs[i].cat[k] > 0;
        if (!used) continue;
        /* column 7 + k: cum_<category>_MiB */
        pl_gp_cat_box(gp, ", \\\n  ''", k, 7 + k, "-0.2", "-0.38", "-0.02");
    }
    /* Categories peak at different moments, so the stack can pass the measured total: a
       black tick marks the total, the label gives measured / accounted */
    fputs(", \\\n  '' using 5:(Y($1)-0.42):(0):(0.44) with vectors nohead lw 3 lc rgb "
          "'#000000' title 'measured total', \\\n  '' using (column(16) > $5 ? column(16) : "
          "$5):(Y($1)-0.2):(sprintf(' %.2fx', $6)) with labels left notitle\n",
          gp);
}

/* A run with an accounted peak (run level) and a region (any rank) that can be its phase:
 * infer or eval for infer_peak_bytes, train for train_peak_bytes. */
static int has_accounted_phase(struct pl_ctx *ctx, const struct pl_run *r)
{
    const struct mt_read_metric *inf = pl_run_metric(r, "infer_peak_bytes"),
                                *train = pl_run_metric(r, "train_peak_bytes");
    int want_infer = inf && inf->has, want_train = train && train->has;
    if (!want_infer && !want_train) return 0;
    struct mt_read_region *regs;
    size_t n;
    if (mt_read_regions(ctx->rd, r->id, &regs, &n) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        if ((want_infer && (!strcmp(regs[i].name, "infer") || !strcmp(regs[i].name, "eval"))) ||
            (want_train && !strcmp(regs[i].name, "train")))
            return 1;
    return 0;
}

void pl_draw_memory_check(struct pl_ctx *ctx)
{
    const char *name = "memory_check";
    const char *title = "Accounted vs measured heap peak per run";
    size_t n, more, m = 0, *idx;
    struct check *cs =
        pl_pick_records(ctx, has_accounted_phase, sizeof *cs, &idx, &n, &more, name, title,
                        "no run has an accounted peak (infer_peak_bytes or "
                        "train_peak_bytes) and its phase region (infer, eval or "
                        "train)");
    FILE *dat = NULL, *gp = NULL;
    char *note = NULL;
    if (!cs) goto out;
    for (size_t i = 0; i < n; i++) {
        const struct mt_read_metric *inf = pl_run_metric(&ctx->runs[idx[i]], "infer_peak_bytes");
        cs[i].run = &ctx->runs[idx[i]];
        cs[i].serving = inf && inf->has;
        cs[i].desc = pl_run_desc(ctx, cs[i].run);
        load_check(ctx, &cs[i]);
        m += cs[i].measured_ok;
    }
    write_table(ctx, cs, n, more);
    if (more)
        pl_item_skip(ctx, "memory_check_more", title,
                     "%zu more runs have an accounted peak; raise max_runs to draw them", more);
    if (m == 0) {
        pl_item_skip(ctx, name, title,
                     "no measured heap peak (heap_peak_bytes) in the phase regions of %zu runs "
                     "(listed in the report with the reason)",
                     n);
        goto out;
    }
    if (pl_open_pair(ctx, name, title, &dat, &gp)) goto out;
    if (m < n) note = pl_asprintf(ctx, "%zu runs without a measured peak: see the report", n - m);
    write_dat(dat, cs, n);
    write_gp(ctx, gp, cs, n, m, title, note);
    pl_finish(ctx, &dat, &gp, name, title);
out:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    for (size_t i = 0; cs && i < n; i++) {
        free(cs[i].desc);
        free(cs[i].phase);
        free(cs[i].unavailable);
        free(cs[i].runtime_why);
    }
    free(cs);
    free(note);
    free(idx);
}
