/* plots/plot.h — draw a memtrade results database: gnuplot images and report.html.
 *
 * What it is for: `memtrade plot` (and the standalone `mt-plot`) read a results database
 * (results/schema.sql) read-only, write gnuplot data files, scripts and images into
 * OUT/plots/ and one static OUT/report.html that shows them with the Pareto set, the
 * best configuration under each memory budget and every run's parameters and status.
 * What it is not for: writing the database, running workloads, or serving the report.
 *
 * Thread-safety: mt_plot_generate keeps no global state; concurrent calls must use
 * different output folders. It runs gnuplot as a child process (fork/exec) per plot.
 */
#ifndef MEMTRADE_PLOT_H
#define MEMTRADE_PLOT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_plot_format { MT_PLOT_PNG = 0, MT_PLOT_SVG = 1 };

/* Which sweep to draw: a sweep id (> 0), or one of these. */
#define MT_PLOT_SWEEP_LATEST 0 /* the sweep with the highest id that has runs */
#define MT_PLOT_SWEEP_ALL (-1) /* every run in the database, whatever its sweep */

struct mt_plot_opts {
    const char *db_path;        /* required: the results database (opened read-only) */
    const char *out_dir;        /* NULL: "out"; images go to OUT/plots, report to OUT */
    long long sweep_id;         /* > 0, MT_PLOT_SWEEP_LATEST or MT_PLOT_SWEEP_ALL */
    enum mt_plot_format format; /* PNG (pngcairo) or SVG */
    const char *x_metric;       /* NULL: two trade-off panels (serving and training
                                   memory); else one panel against this memory metric */
    const char *y_metric;       /* NULL: "val_bpb" */
    const double *budgets_mib;  /* memory budgets for the report, in MiB; NULL: powers
                                   of two spanning the data */
    size_t n_budgets;
    size_t max_runs;     /* per-run plots (timeline, sites, regions): at most this
                            many runs; 0: 8 */
    const char *gnuplot; /* NULL: "gnuplot" searched on PATH */
};

/* One plot that was drawn, skipped or failed. */
struct mt_plot_item {
    char *name;     /* stable id, e.g. "tradeoff_serving", "timeline_run12" */
    char *title;    /* human title (the one drawn on the image) */
    char *image;    /* path relative to OUT ("plots/x.png"), NULL when not drawn */
    char *skip;     /* NULL when drawn; else a one-line reason (missing data) */
    char *failed;   /* NULL unless gnuplot failed: its first stderr line or exit status */
    char *warnings; /* gnuplot's stderr when it succeeded but complained, else NULL */
};

struct mt_plot_result {
    struct mt_plot_item *items; /* in drawing order; owned, free with mt_plot_result_free */
    size_t n_items;
    size_t n_drawn, n_skipped, n_failed;
    size_t n_runs, n_ok;    /* runs selected, and how many of them succeeded */
    long long sweep_id;     /* the sweep drawn (-1 for all runs) */
    char report_path[4096]; /* OUT/report.html, empty if not written */
    char plots_dir[4096];   /* OUT/plots */
    char message[8448];     /* one-line summary for the terminal */
};

/* Contract: reads opts->db_path read-only and writes OUT/plots/{*.dat,*.gp,*.png|svg,
 * *.err} and OUT/report.html, creating the folders. Returns 0 when the report was
 * written (some plots may be skipped for missing data, listed in res with a reason, or
 * failed, counted in res->n_failed); 1 when the selection has no successful run (a
 * report saying so is still written, and err says so); -1 on an error (gnuplot not
 * found, database unreadable or not a memtrade database, unknown sweep, output not
 * writable) with a message in err and nothing drawn. `res` is always initialised and
 * must be released with mt_plot_result_free. */
int mt_plot_generate(const struct mt_plot_opts *opts, struct mt_plot_result *res, char *err,
                     size_t errlen);

/* Contract: frees what mt_plot_generate put in res and zeroes it; NULL is fine. */
void mt_plot_result_free(struct mt_plot_result *res);

/* Contract: parses a budget list "1,2.5,64" (MiB, positive, ascending or not) into a
 * malloc'ed array the caller frees. Returns 0, or -1 with a message in err. */
int mt_plot_parse_budgets(const char *list, double **out, size_t *n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
