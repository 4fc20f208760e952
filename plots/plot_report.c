/* plots/plot_report.c — report.html: one static page over the plots and the runs.
 *
 * What it is for: the page a person opens from file:// after a sweep: every drawn image
 * (relative paths), plots skipped with their reason, the Pareto set and the best
 * configuration under each memory budget per trade-off panel, every run's parameters,
 * status and key metrics, failed runs with their error. Inline CSS, no script, no
 * external resource; every database string is HTML-escaped by pl_html. What it is not
 * for: drawing (plot_draw.c, plot_runs.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plot_internal.h"

/* Writes literal HTML and escaped text in turn: literal, text, literal, text, ... until a
 * NULL literal; a NULL text writes nothing. E.g. (f, "<b>", name, "</b>", NULL, NULL). */
__attribute__((sentinel)) static void html_seq(FILE *f, const char *lit, ...)
{
    va_list ap;
    va_start(ap, lit);
    while (lit) {
        fputs(lit, f);
        const char *text = va_arg(ap, const char *);
        if (text) pl_html(f, text);
        lit = va_arg(ap, const char *);
    }
    va_end(ap);
}

static void cell(FILE *f, const char *s)
{
    fputs("<td>", f);
    pl_html(f, s);
    fputs("</td>", f);
}

static void cell_num(FILE *f, double v)
{
    fprintf(f, "<td class=\"n\">%.6g</td>", v);
}

/* An integer cell, empty when the database has NULL. */
static void cell_int(FILE *f, int has, long long v)
{
    if (has)
        fprintf(f, "<td class=\"n\">%lld</td>", v);
    else
        fputs("<td></td>", f);
}

/* The cells that start every run row: id, workload, label. */
static void run_head(FILE *f, const struct pl_run *r)
{
    fputs("<tr>", f);
    cell_int(f, 1, r->id);
    cell(f, r->workload);
    cell(f, r->label);
}

/* Budgets in MiB: the caller's, else powers of two spanning the panel's memory range. */
static size_t panel_budgets(const struct pl_ctx *ctx, const struct pl_panel *p, double *out,
                            size_t max)
{
    if (ctx->opts->budgets_mib && ctx->opts->n_budgets) {
        size_t n = ctx->opts->n_budgets < max ? ctx->opts->n_budgets : max;
        memcpy(out, ctx->opts->budgets_mib, n * sizeof *out);
        return n;
    }
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < p->n; i++) {
        lo = fmin(lo, p->pts[i].x);
        hi = fmax(hi, p->pts[i].x);
    }
    if (!(lo > 0)) return 0;
    double b = exp2(floor(log2(lo)));
    /* from the power of two at or below the smallest point: the first row may show that
       nothing fits, so the table says where the range starts */
    int step = (int)ceil((log2(hi) - log2(b) + 1) / (double)max);
    step = step < 1 ? 1 : step;
    size_t n = 0;
    for (double v = b; n < max && v <= hi * 2 + 1e-9; v *= exp2(step))
        out[n++] = v;
    return n;
}

static int better(double a, double b, int higher)
{
    return higher ? a > b : a < b;
}

void pl_report_panel(struct pl_ctx *ctx, const struct pl_panel *p)
{
    struct pl_html_frag fr;
    FILE *f = pl_html_open(ctx, &fr);
    if (!f) return;
    int higher = pl_higher_is_better(p->y_metric);
    html_seq(f, "<h3>", p->what, "</h3>\n<p>x: ", p->x_label, "; y: ", p->y_label, NULL);
    fprintf(f, " (%s is better). Repeats are aggregated by their median.</p>\n",
            higher ? "higher" : "lower");
    fputs("<table class=\"pareto\"><caption>Pareto set</caption><tr><th>configuration</th>"
          "<th>workload</th><th>memory (MiB)</th><th>",
          f);
    pl_html(f, p->y_metric);
    fputs("</th><th>range</th><th>repeats</th><th>run</th><th>config key</th></tr>\n", f);
    for (size_t i = 0; i < p->n; i++) {
        const struct pl_point *pt = &p->pts[i];
        if (!pt->pareto) continue;
        const struct pl_config *c = &ctx->configs[pt->cfg];
        fputs("<tr>", f);
        cell(f, c->point_label);
        cell(f, c->workload);
        cell_num(f, pt->x);
        cell_num(f, pt->y);
        if (pt->n > 1)
            fprintf(f, "<td class=\"n\">%.6g&ndash;%.6g</td>", pt->ylo, pt->yhi);
        else
            fputs("<td></td>", f);
        fprintf(f, "<td class=\"n\">%zu</td><td class=\"n\">%lld</td>", pt->n,
                ctx->runs[c->runs[0]].id);
        cell(f, c->config_key);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);

    double budgets[24];
    size_t nb = panel_budgets(ctx, p, budgets, 24);
    fputs("<table class=\"budgets\"><caption>Best configuration under each memory budget"
          "</caption><tr><th>budget (MiB)</th><th>configuration</th><th>workload</th>"
          "<th>memory (MiB)</th><th>",
          f);
    pl_html(f, p->y_metric);
    fputs("</th></tr>\n", f);
    for (size_t b = 0; b < nb; b++) {
        const struct pl_point *best = NULL;
        for (size_t i = 0; i < p->n; i++)
            if (p->pts[i].x <= budgets[b] && (!best || better(p->pts[i].y, best->y, higher) ||
                                              (p->pts[i].y == best->y && p->pts[i].x < best->x)))
                best = &p->pts[i];
        fprintf(f, "<tr><td class=\"n\">%g</td>", budgets[b]);
        if (best) {
            cell(f, ctx->configs[best->cfg].point_label);
            cell(f, ctx->configs[best->cfg].workload);
            cell_num(f, best->x);
            cell_num(f, best->y);
        } else {
            fputs("<td colspan=\"4\" class=\"none\">nothing fits</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    pl_html_close(ctx, f, &fr, &ctx->report_tables);
}

static const char *const css =
    "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px auto;max-width:1200px;"
    "color:#222;padding:0 12px}"
    "h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "caption{text-align:left;font-weight:bold;padding:4px 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}"
    "th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.none{color:#888}b.over{color:#b00}figure{margin:1.5em 0}img{max-width:100%;height:auto;"
    "border:1px solid #eee}figcaption{font-size:0.9em;color:#555}"
    ".status-ok{color:#1a7f37}.status-bad{color:#b3261e;font-weight:bold}"
    ".msg{background:#fff4e5;border:1px solid #f0c36d;padding:8px 12px}"
    "pre{white-space:pre-wrap;margin:0;font-size:0.9em}";

static void run_metric_cell(FILE *f, const struct pl_run *r, const char *name)
{
    const struct mt_read_metric *m = pl_run_metric(r, name);
    if (!m) {
        fputs("<td></td>", f);
    } else if (!m->has) {
        fputs("<td class=\"none\" title=\"", f);
        pl_html(f, m->unavailable);
        fputs("\">n/a</td>", f);
    } else if (m->unit && strcmp(m->unit, "bytes") == 0) {
        fprintf(f, "<td class=\"n\">%.3f MiB</td>", m->value / PL_MIB);
    } else {
        fprintf(f, "<td class=\"n\">%.6g</td>", m->value);
    }
}

static void write_runs(struct pl_ctx *ctx, FILE *f)
{
    static const char *const mem[] = {"infer_peak_bytes", "model_bytes", "train_peak_bytes",
                                      "peak_rss_bytes"};
    fputs("<h2>Runs</h2>\n<table class=\"runs\"><tr><th>run</th><th>workload</th><th>label</th>"
          "<th>repeat</th><th>status</th><th>wall (s)</th><th>parameters</th><th>",
          f);
    pl_html(f, ctx->y_metric);
    fputs("</th>", f);
    for (size_t m = 0; m < sizeof mem / sizeof mem[0]; m++)
        fprintf(f, "<th>%s</th>", mem[m]);
    fputs("</tr>\n", f);
    for (size_t i = 0; i < ctx->n_runs; i++) {
        const struct pl_run *r = &ctx->runs[i];
        int ok = r->status && strcmp(r->status, "ok") == 0;
        run_head(f, r);
        cell_int(f, 1, r->repeat);
        fprintf(f, "<td class=\"%s\">", ok ? "status-ok" : "status-bad");
        pl_html(f, r->status);
        fputs("</td>", f);
        if (r->has_wall)
            fprintf(f, "<td class=\"n\">%.2f</td>", r->wall_s);
        else
            fputs("<td></td>", f);
        fputs("<td>", f);
        for (size_t p = 0; p < r->n_params; p++) {
            fputs(p ? "<br>" : "", f);
            pl_html(f, r->params[p].key);
            fputs("=", f);
            pl_html(f, r->params[p].value);
        }
        fputs("</td>", f);
        run_metric_cell(f, r, ctx->y_metric);
        for (size_t m = 0; m < sizeof mem / sizeof mem[0]; m++)
            run_metric_cell(f, r, mem[m]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);

    size_t n_bad = 0;
    for (size_t i = 0; i < ctx->n_runs; i++)
        n_bad += !ctx->runs[i].status || strcmp(ctx->runs[i].status, "ok") != 0;
    fprintf(f, "<h2>Runs that did not succeed (%zu)</h2>\n", n_bad);
    if (n_bad == 0) {
        fputs("<p>None.</p>\n", f);
        return;
    }
    fputs("<table class=\"failed\"><tr><th>run</th><th>workload</th><th>label</th><th>status</th>"
          "<th>exit</th><th>signal</th><th>error</th><th>config key</th></tr>\n",
          f);
    for (size_t i = 0; i < ctx->n_runs; i++) {
        const struct pl_run *r = &ctx->runs[i];
        if (r->status && strcmp(r->status, "ok") == 0) continue;
        run_head(f, r);
        fputs("<td class=\"status-bad\">", f);
        pl_html(f, r->status);
        fputs("</td>", f);
        cell_int(f, r->has_exit, r->exit_code);
        cell_int(f, r->has_signal, r->signal);
        fputs("<td><pre>", f);
        pl_html(f, r->error ? r->error : "(no error text recorded)");
        fputs("</pre></td>", f);
        cell(f, r->config_key);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void write_plots(struct pl_ctx *ctx, FILE *f)
{
    const struct mt_plot_result *res = ctx->res;
    fputs("<h2>Plots</h2>\n", f);
    if (res->n_drawn == 0) fputs("<p>No plot was drawn.</p>\n", f);
    for (size_t i = 0; i < res->n_items; i++) {
        const struct mt_plot_item *it = &res->items[i];
        if (!it->image) continue;
        html_seq(f, "<figure id=\"", it->name, "\"><img src=\"", it->image, "\" alt=\"", it->title,
                 "\"><figcaption>", it->title, " &mdash; <a href=\"", it->image,
                 "\">image</a></figcaption></figure>\n", NULL, NULL);
    }
    int heading = 0;
    for (size_t i = 0; i < res->n_items; i++) {
        const struct mt_plot_item *it = &res->items[i];
        if (it->image) continue;
        if (!heading++) fputs("<h3>Not drawn</h3>\n<ul class=\"skipped\">\n", f);
        fputs("<li><b>", f);
        pl_html(f, it->title);
        fputs("</b>: ", f);
        pl_html(f, it->failed ? it->failed : it->skip);
        fputs("</li>\n", f);
    }
    if (heading) fputs("</ul>\n", f);
}

int pl_write_report(struct pl_ctx *ctx, char *err, size_t errlen)
{
    char *path = ctx->res->report_path, tmp[4300];
    if (snprintf(path, sizeof ctx->res->report_path, "%s/report.html", ctx->out_dir) >=
        (int)sizeof ctx->res->report_path) {
        snprintf(err, errlen, "output folder name too long");
        path[0] = 0;
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        path[0] = 0;
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
          "memtrade report: ",
          f);
    html_seq(f, "", ctx->sweep_name, "</title>\n<style>", NULL, css, NULL,
             "</style>\n</head>\n<body>\n<h1>memtrade report: sweep ", ctx->sweep_name,
             "</h1>\n<p>Machine: ", ctx->machine, ". Database: ", ctx->opts->db_path, NULL);
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(f, ". Generated %s.</p>\n<p>%zu runs, %zu succeeded", when, ctx->n_runs,
            ctx->res->n_ok);
    if (ctx->n_runs > ctx->res->n_ok)
        fprintf(f, ", %zu did not (listed below)", ctx->n_runs - ctx->res->n_ok);
    fputs(".", f);
    if (ctx->n_superseded)
        fprintf(f,
                " %zu earlier attempts of the same configuration and repeat (re-run later, "
                "e.g. by --resume) are not shown.",
                ctx->n_superseded);
    fputs("</p>\n", f);
    if (ctx->n_runs == 0)
        fputs("<p class=\"msg\">No runs in this database (or sweep): nothing to plot. Run a sweep "
              "first, e.g. <code>memtrade sweep sweeps/quick.ini</code>.</p>\n",
              f);
    else if (ctx->res->n_ok == 0)
        fputs("<p class=\"msg\">No run succeeded: there is no trade-off to draw. The runs and "
              "their errors are listed below.</p>\n",
              f);
    write_plots(ctx, f);
    if (ctx->fit_table.len) {
        fputs("<h2>What fits</h2>\n<p>What <code>memtrade fit --verify</code> chose per budget: "
              "the prediction (plan + runtime term) against the run's measurement (plots "
              "<code>fit_bytes</code>, <code>fit_accuracy</code>).</p>\n",
              f);
        fputs(ctx->fit_table.s, f);
    }
    if (ctx->report_tables.len) {
        fputs("<h2>Pareto sets and memory budgets</h2>\n", f);
        fputs(ctx->report_tables.s, f);
    }
    if (ctx->memcheck_table.len) {
        fputs("<h2>Accounted vs measured memory</h2>\n", f);
        fputs(ctx->memcheck_table.s, f);
    }
    if (ctx->device_table.len) {
        fputs("<h2>Device memory</h2>\n", f);
        fputs(ctx->device_table.s, f);
    }
    write_runs(ctx, f);
    fputs("</body>\n</html>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        path[0] = 0;
        return -1;
    }
    return 0;
}
