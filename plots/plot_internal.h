/* plots/plot_internal.h — types shared by the files of the plot generator (not public).
 *
 * What it is for: the in-memory copy of the selected runs (loaded once, read-only, from
 * the database), the per-configuration aggregates every plot uses, and small helpers:
 * string building, gnuplot and HTML quoting, running gnuplot. What it is not for: the
 * harness or any other module; only the files in plots/ include it.
 *
 * Memory: everything hangs off struct pl_ctx and is freed by pl_ctx_free. Allocation
 * failures set ctx->oom and return NULL; mt_plot_generate turns that into an error at the
 * end instead of checking every string.
 */
#ifndef MEMTRADE_PLOT_INTERNAL_H
#define MEMTRADE_PLOT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "plot.h"
#include "reader.h"

#define PL_MIB (1024.0 * 1024.0)

/* A growable string. */
struct pl_buf {
    char *s;
    size_t len, cap;
    int oom;
};
void pl_buf_printf(struct pl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pl_buf_free(struct pl_buf *b);

/* A selected run: its row as the read API gave it (strings live in ctx->rd). */
struct pl_run {
    long long id;
    const char *workload, *label, *config_key, *status, *error;
    long long repeat, exit_code, signal;
    int has_exit, has_signal;
    double wall_s;
    int has_wall;
    const struct mt_read_param *params; /* sorted by key */
    size_t n_params;
    const struct mt_read_run *row; /* metrics, per-rank maxima, comparability keys */
};

/* The successful runs of one configuration (same config_key): repeats are aggregated. */
struct pl_config {
    const char *config_key, *workload;
    size_t *runs; /* indices into ctx->runs, ascending repeat */
    size_t n_runs;
    int family;        /* index into ctx->families */
    char *point_label; /* the run label, or the params that vary within the workload */
};

/* Median and range of one metric over a configuration's repeats. */
struct pl_stat {
    double median, min, max;
    size_t n;
};

struct pl_ctx {
    const struct mt_plot_opts *opts;
    struct mt_plot_result *res;
    struct mt_store *st; /* opened read-only; every read goes through rd (results/reader.h) */
    struct mt_read *rd;
    const char *gnuplot; /* resolved program path */
    char out_dir[4096], plots_dir[4096];
    const char *ext; /* "png" or "svg" */
    const char *y_metric;
    long long sweep_id;
    char *sweep_name, *machine;
    struct pl_run *runs; /* ascending id, one per (config_key, repeat) */
    size_t n_runs;
    size_t n_superseded; /* earlier attempts left out (see drop_superseded) */
    struct pl_config *configs;
    size_t n_configs;
    char **families; /* distinct workloads with a successful run, "baseline" first */
    size_t n_families;
    struct pl_buf report_tables;  /* HTML tables the trade-off step hands to the report */
    struct pl_buf memcheck_table; /* "accounted vs measured" table (plot_memcheck.c) */
    struct pl_buf fit_table;      /* "what fits" tables (plot_fit.c) */
    struct pl_buf device_table;   /* device memory's three witnesses (plot_device.c) */
    int oom;
};

/* Allocation helpers: on failure they set ctx->oom and return NULL. */
char *pl_strdup(struct pl_ctx *ctx, const char *s);
char *pl_asprintf(struct pl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *pl_grow(struct pl_ctx *ctx, void *p, size_t *cap, size_t need, size_t elem);
/* "" for NULL, so optional strings can be printed directly. */
static inline const char *pl_s(const char *s)
{
    return s ? s : "";
}

/* plot_data.c: loading and aggregation. */
int pl_load(struct pl_ctx *ctx, char *err, size_t errlen);
void pl_ctx_free(struct pl_ctx *ctx);
/* The run-level metric `name` (whole, no category); "NAME@rankmax" is the largest value
 * any rank reported. NULL when the run has none. */
const struct mt_read_metric *pl_run_metric(const struct pl_run *run, const char *name);
/* The same for the row of one memory category (NULL: the whole, as pl_run_metric). */
const struct mt_read_metric *pl_run_metric_cat(const struct pl_run *run, const char *name,
                                               const char *category);
const char *pl_run_param(const struct pl_run *run, const char *key);
/* A parameter as a number: NaN when absent or not a number as a whole. */
double pl_run_param_num(const struct pl_run *run, const char *key);
/* Median and range of `metric` over cfg's repeats that have it; 0 when none has. The _cat
 * form reads the row of one memory category (NULL: the whole). */
int pl_config_stat(const struct pl_ctx *ctx, const struct pl_config *cfg, const char *metric,
                   struct pl_stat *st);
int pl_config_stat_cat(const struct pl_ctx *ctx, const struct pl_config *cfg, const char *metric,
                       const char *category, struct pl_stat *st);
/* The comparison key of a configuration (model, training budget, text scored), as text
 * for a title; malloc'ed, NULL when out of memory (ctx->oom set). */
char *pl_config_group_key(struct pl_ctx *ctx, const struct pl_config *c);
const char *pl_metric_unit(const struct pl_ctx *ctx, const char *metric);
int pl_higher_is_better(const char *metric);
int pl_is_bytes_metric(const struct pl_ctx *ctx, const char *metric);

/* plot_gp.c: gnuplot scripts and HTML text. */
void pl_gp_str(FILE *f, const char *s); /* a single-quoted gnuplot string */
void pl_gp_str_max(FILE *f, const char *s, size_t max_chars);
void pl_gp_preamble(struct pl_ctx *ctx, FILE *f, const char *name, int width, int height);
/* "set title" line: `what`, then "sweep S — machine", then `extra` when not NULL. */
void pl_gp_title(FILE *f, const char *what, const struct pl_ctx *ctx, const char *extra);
/* The same title as a gnuplot string expression (for multiplot titles). */
void pl_gp_title_expr(FILE *f, const char *what, const struct pl_ctx *ctx, const char *extra);
void pl_html(FILE *f, const char *s); /* HTML-escaped text */
/* An HTML fragment for the report: pl_html_open returns a memory stream (NULL, with
 * ctx->oom set, when it cannot); pl_html_close closes it and appends what was written to
 * `dest`, setting ctx->oom when memory ran out. */
struct pl_html_frag {
    char *html;
    size_t len;
};
FILE *pl_html_open(struct pl_ctx *ctx, struct pl_html_frag *fr);
void pl_html_close(struct pl_ctx *ctx, FILE *f, struct pl_html_frag *fr, struct pl_buf *dest);
void pl_dat_text(FILE *f, const char *s); /* text for a data file column: no tabs/newlines */
/* `sep` then v (%.10g) for a data file column; NaN, which gnuplot skips, when not finite. */
void pl_dat_num(FILE *f, double v, const char *sep);
const char *pl_color(size_t i);
int pl_marker(size_t i);
int pl_find_program(const char *name, char *path, size_t pathlen);
/* Opens OUT/plots/<name>.<suffix> for writing; NULL with err on failure. */
FILE *pl_open(struct pl_ctx *ctx, const char *name, const char *suffix, char *err, size_t errlen);
/* Opens OUT/plots/<name>.dat and <name>.gp: 0, or -1 with both NULL and the item
 * recorded as skipped with the reason. */
int pl_open_pair(struct pl_ctx *ctx, const char *name, const char *title, FILE **dat, FILE **gp);
/* Runs gnuplot on OUT/plots/<name>.gp and records the item (drawn or failed). */
void pl_run_gnuplot(struct pl_ctx *ctx, const char *name, const char *title);
/* Closes a plot's data file and script (setting both to NULL) and runs gnuplot on it. */
void pl_finish(struct pl_ctx *ctx, FILE **dat, FILE **gp, const char *name, const char *title);
void pl_item_skip(struct pl_ctx *ctx, const char *name, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* File-name-safe copy of s: [A-Za-z0-9_-], other bytes become '_'. */
char *pl_safe_name(struct pl_ctx *ctx, const char *s);

/* plot_draw.c / plot_runs.c: the plots. Each records its items in ctx->res. */
void pl_draw_tradeoff(struct pl_ctx *ctx);
void pl_draw_speed(struct pl_ctx *ctx);
void pl_draw_curves(struct pl_ctx *ctx);
void pl_draw_loss(struct pl_ctx *ctx);
void pl_draw_timelines(struct pl_ctx *ctx);
void pl_draw_sites(struct pl_ctx *ctx);
void pl_draw_regions(struct pl_ctx *ctx);
void pl_draw_memory_check(struct pl_ctx *ctx); /* plot_memcheck.c */
void pl_draw_kvcache(struct pl_ctx *ctx);      /* plot_kvcache.c */
void pl_draw_trainmem(struct pl_ctx *ctx);     /* plot_trainmem.c */
void pl_draw_quant(struct pl_ctx *ctx);        /* plot_quant.c */
void pl_draw_fit(struct pl_ctx *ctx);          /* plot_fit.c */
void pl_draw_device(struct pl_ctx *ctx);       /* plot_device.c */
/* plot_draw.c: keys of the params that take more than one value among the configurations
 * of `workload` (at most max, in first-seen order; strings live in ctx->rd). */
size_t pl_varying_keys(struct pl_ctx *ctx, const char *workload, const char **keys, size_t max);

/* plot_runs.c helpers for per-run plots. Runs to draw: the first run of each
 * configuration for which `probe` returns 1, at most max; indices into ctx->runs go to
 * idx, the runs past max are counted in *n_more. */
typedef int pl_probe(struct pl_ctx *ctx, const struct pl_run *run);
size_t pl_pick_runs(struct pl_ctx *ctx, pl_probe *probe, size_t *idx, size_t max, size_t *n_more);
/* "run 12 quantize [int4] (ok)": how titles and labels name a run (caller frees). */
char *pl_run_desc(struct pl_ctx *ctx, const struct pl_run *r);
size_t *pl_runs_buffer(struct pl_ctx *ctx);   /* calloc'ed, room for every run */
size_t pl_max_runs(const struct pl_ctx *ctx); /* opts->max_runs, else 8 */
/* pl_pick_runs into a new buffer of pl_runs_buffer (caller frees; NULL, with ctx->oom set,
 * when out of memory): *n runs picked, at most pl_max_runs, *more past that. */
size_t *pl_pick(struct pl_ctx *ctx, pl_probe *probe, size_t *n, size_t *more);
/* pl_pick (*idx: the caller frees it, NULL or not), then a zeroed array of one `elem`-byte
 * record per picked run, for plots that draw a table and a chart of those runs. Returns
 * the array (caller frees), or NULL: when no run was picked (the item `name` skipped with
 * the reason `none`), when pl_pick failed, or when out of memory (ctx->oom set). */
void *pl_pick_records(struct pl_ctx *ctx, pl_probe *probe, size_t elem, size_t **idx, size_t *n,
                      size_t *more, const char *name, const char *title, const char *none);
/* The memory categories in memcat order (the stacking order of every plot). */
#define PL_N_CATS 9
extern const char *const pl_cats[PL_N_CATS];
/* Rank of a memory category in memcat order (the stacking order); unknown ones: 100. */
int pl_cat_rank(const char *category);
/* Report table cells: a MiB figure (class n), or `none` (class none) when !has; the
 * "unavailable: why" cell spanning `colspan` columns, ending the row; the run's
 * description and a second text cell opening a row ("<tr><td>desc</td><td>text"). */
void pl_td_mib(FILE *f, int has, double bytes, const char *none);
void pl_td_unavailable(FILE *f, int colspan, const char *why);
void pl_tr_start(FILE *f, const char *desc, const char *text);
/* A .dat header's category columns: "\tcum_<category>_MiB" for each, then cum_untagged. */
void pl_dat_cum_header(FILE *dat);
/* A horizontal stacked-bar chart of `rows` bars per category (memory_check, device_memory;
 * bar r drawn at y = rows - 1 - r): pl_gp_hbar_head writes the x label, axes, grid, fill,
 * key and margin and opens "set ytics ("; pl_gp_ytic adds the tic "<desc>: <what>" (cut to
 * 64 characters) at y, after ", " unless it is the first; pl_gp_cat_box draws category k's
 * segment (pl_cats[k], k == PL_N_CATS: untagged) from column col - 1 (0 for k == 0) to
 * column col of the .dat, its y centre and edges offset from Y($1) by the gnuplot numbers
 * y, lo, hi ("-0.35"), the plot clause opened by `lead` (", \\\n  ''" to continue a plot). */
void pl_gp_hbar_head(FILE *gp, const char *xlabel, size_t rows);
void pl_gp_ytic(FILE *gp, int first, const char *desc, const char *what, size_t y);
void pl_gp_cat_box(FILE *gp, const char *lead, size_t k, size_t col, const char *y, const char *lo,
                   const char *hi);
/* "workspace +9.83 MiB, other +4.03 MiB", HTML-escaped into f: the (at most) two largest
 * positive entries of d[0..PL_N_CATS] (categories in pl_cats order, then "untagged"), or
 * `none` when no entry is positive, then `note` when not NULL; d is consumed. Out of
 * memory sets ctx->oom. */
void pl_html_top_two(struct pl_ctx *ctx, FILE *f, double *d, const char *none, const char *note);
/* A per-run report table (memory_check, device_memory): writes `head` (the introduction,
 * <table>, caption and header row), row(ctx, f, rec) for each of the n records of `elem`
 * bytes at recs, then closes the table, says how many more runs `what` (raise
 * --max-runs) and appends the fragment to `dest`. Out of memory sets ctx->oom. */
typedef void pl_table_row_fn(struct pl_ctx *ctx, FILE *f, const void *rec);
void pl_table(struct pl_ctx *ctx, const char *head, const void *recs, size_t n, size_t elem,
              pl_table_row_fn *row, struct pl_buf *dest, size_t more, const char *what);

/* One point of a scatter plot: a configuration's medians. */
struct pl_point {
    size_t cfg;
    double x, y, ylo, yhi; /* x in MiB when the metric is in bytes */
    size_t n;              /* repeats behind y */
    int pareto, baseline;
};

/* One trade-off panel, as drawn; the report lists its Pareto set and budget table. */
struct pl_panel {
    const char *name, *what, *x_metric, *x_label, *y_metric, *y_label;
    struct pl_point *pts;
    size_t n;
};

/* plot_report.c */
void pl_report_panel(struct pl_ctx *ctx, const struct pl_panel *p);
int pl_write_report(struct pl_ctx *ctx, char *err, size_t errlen);

#endif
