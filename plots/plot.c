/* plots/plot.c — mt_plot_generate: the order of work of `memtrade plot`.
 *
 * What it is for: checking the options, finding gnuplot, opening the database read-only,
 * loading the selection, drawing every plot (each records itself as drawn, skipped with
 * a reason, or failed) and writing report.html. What it is not for: the plots themselves
 * (plot_draw.c, plot_runs.c) or the page (plot_report.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot_internal.h"

/* mkdir -p for one path; returns 0 or -1 with errno set. */
static int make_dirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

void mt_plot_result_free(struct mt_plot_result *res)
{
    if (!res) return;
    for (size_t i = 0; i < res->n_items; i++) {
        struct mt_plot_item *it = &res->items[i];
        free(it->name);
        free(it->title);
        free(it->image);
        free(it->skip);
        free(it->failed);
        free(it->warnings);
    }
    free(res->items);
    memset(res, 0, sizeof *res);
}

int mt_plot_parse_budgets(const char *list, double **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    double *v = malloc(cap * sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (end == p || errno || !(d > 0) || (*end && *end != ',') || d > 1e12) {
            snprintf(err, errlen,
                     "bad budget list '%s': expected positive MiB values like "
                     "1,2,4.5,64",
                     list);
            free(v);
            return -1;
        }
        v[(*n)++] = d;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        snprintf(err, errlen, "empty budget list");
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}

static int open_db(struct pl_ctx *ctx, char *err, size_t errlen)
{
    const char *path = ctx->opts->db_path;
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "cannot read database %s: %s", path, strerror(errno));
        return -1;
    }
    /* Read-only: never migrates the file, waits while the harness writes (WAL). */
    char why[1024];
    if (mt_store_open(path, MT_STORE_READONLY, &ctx->st, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s is not a memtrade results database this build can read: %s", path,
                 why);
        return -1;
    }
    return 0;
}

static void draw_all(struct pl_ctx *ctx)
{
    if (ctx->n_configs > 0) {
        pl_draw_tradeoff(ctx);
        pl_draw_trainmem(ctx); /* beside tradeoff_training */
        pl_draw_speed(ctx);
        pl_draw_curves(ctx);
        pl_draw_kvcache(ctx);
        pl_draw_quant(ctx);
        pl_draw_loss(ctx);
    }
    /* Per-run plots also explain runs that failed (an OOM's timeline), so they do not
       need a successful run. */
    if (ctx->n_runs > 0) {
        pl_draw_timelines(ctx);
        pl_draw_sites(ctx);
        pl_draw_regions(ctx);
    }
    /* Always tried, so an empty database says why there is no check either. */
    pl_draw_memory_check(ctx);
    pl_draw_fit(ctx);
    if (ctx->n_runs > 0) pl_draw_device(ctx);
}

int mt_plot_generate(const struct mt_plot_opts *opts, struct mt_plot_result *res, char *err,
                     size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (errlen) err[0] = 0;
    if (!opts || !opts->db_path) {
        snprintf(err, errlen, "no database given (--db FILE)");
        return -1;
    }
    struct pl_ctx ctx = {.opts = opts, .res = res};
    char gnuplot[4096];
    const char *prog = opts->gnuplot ? opts->gnuplot : "gnuplot";
    if (pl_find_program(prog, gnuplot, sizeof gnuplot) != 0) {
        snprintf(err, errlen,
                 "gnuplot not found%s%s: install gnuplot-nox (apt-get install "
                 "gnuplot-nox) or put gnuplot on PATH",
                 strchr(prog, '/') ? " at " : " on PATH", strchr(prog, '/') ? prog : "");
        return -1;
    }
    ctx.gnuplot = gnuplot;
    ctx.ext = opts->format == MT_PLOT_SVG ? "svg" : "png";
    ctx.y_metric = opts->y_metric && *opts->y_metric ? opts->y_metric : "val_bpb";
    const char *out = opts->out_dir && *opts->out_dir ? opts->out_dir : "out";
    if (snprintf(ctx.out_dir, sizeof ctx.out_dir, "%s", out) >= (int)sizeof ctx.out_dir ||
        snprintf(ctx.plots_dir, sizeof ctx.plots_dir, "%s/plots", out) >=
            (int)sizeof ctx.plots_dir) {
        snprintf(err, errlen, "output folder name too long");
        return -1;
    }
    snprintf(res->plots_dir, sizeof res->plots_dir, "%s", ctx.plots_dir);
    int rc = -1;
    if (open_db(&ctx, err, errlen) != 0 || pl_load(&ctx, err, errlen) != 0) goto out;
    if (make_dirs(ctx.plots_dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", ctx.plots_dir, strerror(errno));
        goto out;
    }
    draw_all(&ctx);
    if (ctx.oom) {
        snprintf(err, errlen, "out of memory while plotting");
        goto out;
    }
    if (pl_write_report(&ctx, err, errlen) != 0) goto out;
    if (ctx.n_runs == 0) {
        snprintf(err, errlen, "no runs in %s%s: nothing to plot (report: %s)", opts->db_path,
                 opts->sweep_id > 0 ? " for this sweep" : "", res->report_path);
        rc = 1;
    } else if (res->n_ok == 0) {
        snprintf(err, errlen,
                 "no successful run among %zu runs: no trade-off to plot (report "
                 "lists the failures: %s)",
                 ctx.n_runs, res->report_path);
        rc = 1;
    } else {
        rc = 0;
    }
    snprintf(res->message, sizeof res->message,
             "%zu plots in %s (%zu skipped, %zu failed); report: %s", res->n_drawn, ctx.plots_dir,
             res->n_skipped, res->n_failed, res->report_path);
out:
    pl_ctx_free(&ctx);
    return rc;
}
