/* plots/plot_draw.c — the plots over configurations: trade-off, speed, knob curves, loss.
 *
 * What it is for: turning the aggregated configurations of struct pl_ctx into gnuplot
 * data files (one tab-separated row per point, one index block per series) and scripts.
 * Every label reaches gnuplot as a quoted string through pl_gp_str, never through a data
 * column; the data files keep labels too, for people and tests, in the last column.
 * What it is not for: per-run plots (plot_runs.c) or the HTML (plot_report.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pareto.h"
#include "plot_internal.h"

enum panel_kind { KIND_SERVING, KIND_TRAINING, KIND_DEVICE, KIND_ANY };

static int is_baseline(const struct pl_config *c)
{
    return strcmp(c->workload, "baseline") == 0;
}

static int has_metric(const struct pl_ctx *ctx, const struct pl_config *c, const char *m)
{
    struct pl_stat st;
    return pl_config_stat(ctx, c, m, &st);
}

static int in_panel(const struct pl_ctx *ctx, const struct pl_config *c, enum panel_kind kind)
{
    int infer = has_metric(ctx, c, "infer_peak_bytes");
    int model = has_metric(ctx, c, "model_bytes");
    int train =
        has_metric(ctx, c, "train_peak_bytes") || has_metric(ctx, c, "train_peak_bytes@rankmax");
    switch (kind) {
    case KIND_SERVING:
        return infer || (model && (!train || is_baseline(c)));
    case KIND_TRAINING:
        return train && (!infer || is_baseline(c));
    case KIND_DEVICE:
        return has_metric(ctx, c, "peak_device_bytes");
    default:
        return 1;
    }
}

/* Axis text for a metric: its name and unit, MiB for bytes. */
static char *axis_label(struct pl_ctx *ctx, const char *metric, const char *prefix)
{
    const char *unit = pl_is_bytes_metric(ctx, metric) ? "MiB" : pl_metric_unit(ctx, metric);
    return pl_asprintf(ctx, "%s%s%s (%s)", pl_s(prefix), prefix ? ": " : "", metric,
                       unit ? unit : "no unit recorded");
}

/* Points of the configurations in `kind`: x is the first of x_metrics a configuration
 * has (in MiB for bytes), y the median of y_metric with its range. Returns the count;
 * *n_fallback counts points that used a later x metric, *n_dropped those without x > 0. */
static size_t build_points(struct pl_ctx *ctx, enum panel_kind kind, const char *const *x_metrics,
                           const char *y_metric, struct pl_point *pts, size_t *n_fallback,
                           size_t *n_dropped)
{
    size_t n = 0;
    *n_fallback = *n_dropped = 0;
    for (size_t i = 0; i < ctx->n_configs; i++) {
        const struct pl_config *c = &ctx->configs[i];
        struct pl_stat sy, sx;
        if (!in_panel(ctx, c, kind) || !pl_config_stat(ctx, c, y_metric, &sy)) continue;
        size_t k = 0;
        while (x_metrics[k] && !pl_config_stat(ctx, c, x_metrics[k], &sx))
            k++;
        if (!x_metrics[k]) continue;
        double scale = pl_is_bytes_metric(ctx, x_metrics[k]) ? PL_MIB : 1.0;
        if (!(sx.median > 0)) {
            (*n_dropped)++;
            continue;
        }
        /* only the first metric is the named axis; '@rankmax' is the same metric per rank */
        if (k > 0 && !strstr(x_metrics[0], "@rankmax"))
            (*n_fallback)++;
        else if (k > 1)
            (*n_fallback)++;
        pts[n] = (struct pl_point){.cfg = i,
                                   .x = sx.median / scale,
                                   .y = sy.median,
                                   .ylo = sy.min,
                                   .yhi = sy.max,
                                   .n = sy.n,
                                   .baseline = is_baseline(c)};
        n++;
    }
    return n;
}

static int cmp_point_x(const void *a, const void *b)
{
    const struct pl_point *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

static void mark_pareto(struct pl_ctx *ctx, struct pl_point *pts, size_t n, int y_higher)
{
    double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    int *front = malloc((n + 1) * sizeof *front);
    if (!x || !y || !front) {
        ctx->oom = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            x[i] = pts[i].x;
            y[i] = pts[i].y;
        }
        mt_pareto_mark(x, y, NULL, n, 0, y_higher, front);
        for (size_t i = 0; i < n; i++)
            pts[i].pareto = front[i];
    }
    free(x);
    free(y);
    free(front);
}

/* Writes the points, grouped by family in index blocks; returns the families written. */
static void write_points(struct pl_ctx *ctx, FILE *f, const struct pl_panel *p, int *fam_used)
{
    fprintf(f, "# %s\n# x = %s; y = %s\n", p->what, p->x_label, p->y_label);
    fputs("# family\tworkload\tx\ty\ty_min\ty_max\trepeats\tpareto\tbaseline\trun_id\tlabel\n", f);
    int block = 0;
    for (size_t fam = 0; fam < ctx->n_families; fam++) {
        fam_used[fam] = -1;
        for (size_t i = 0; i < p->n; i++) {
            const struct pl_point *pt = &p->pts[i];
            const struct pl_config *c = &ctx->configs[pt->cfg];
            if ((size_t)c->family != fam) continue;
            if (fam_used[fam] < 0) {
                if (block > 0) fputs("\n\n", f);
                fam_used[fam] = block++;
            }
            fprintf(f, "%zu\t", fam);
            pl_dat_text(f, c->workload);
            fprintf(f, "\t%.10g\t%.10g\t%.10g\t%.10g\t%zu\t%d\t%d\t%lld\t", pt->x, pt->y, pt->ylo,
                    pt->yhi, pt->n, pt->pareto, pt->baseline, ctx->runs[c->runs[0]].id);
            pl_dat_text(f, c->point_label);
            fputc('\n', f);
        }
    }
}

/* Draws a scatter of p->pts by family (log x), with optional Pareto step line. */
static void draw_scatter(struct pl_ctx *ctx, struct pl_panel *p, int with_pareto, const char *note)
{
    char err[512];
    int *fam_used = calloc(ctx->n_families + 1, sizeof *fam_used);
    if (!fam_used) {
        ctx->oom = 1;
        return;
    }
    qsort(p->pts, p->n, sizeof *p->pts, cmp_point_x);
    FILE *dat = pl_open(ctx, p->name, "dat", err, sizeof err);
    if (!dat) {
        pl_item_skip(ctx, p->name, p->what, "%s", err);
        free(fam_used);
        return;
    }
    write_points(ctx, dat, p, fam_used);
    fclose(dat);
    if (with_pareto) {
        char pname[256];
        snprintf(pname, sizeof pname, "%s_pareto", p->name);
        FILE *pf = pl_open(ctx, pname, "dat", err, sizeof err);
        if (pf) {
            fprintf(pf, "# Pareto front of %s: x\ty\trun_id\tlabel (ascending x)\n", p->name);
            for (size_t i = 0; i < p->n; i++) {
                if (!p->pts[i].pareto) continue;
                const struct pl_config *c = &ctx->configs[p->pts[i].cfg];
                fprintf(pf, "%.10g\t%.10g\t%lld\t", p->pts[i].x, p->pts[i].y,
                        ctx->runs[c->runs[0]].id);
                pl_dat_text(pf, c->point_label);
                fputc('\n', pf);
            }
            fclose(pf);
        }
    }
    FILE *gp = pl_open(ctx, p->name, "gp", err, sizeof err);
    if (!gp) {
        pl_item_skip(ctx, p->name, p->what, "%s", err);
        free(fam_used);
        return;
    }
    pl_gp_preamble(ctx, gp, p->name, 1100, 720);
    pl_gp_title(gp, p->what, ctx, note);
    double xmin = INFINITY, xmax = -INFINITY;
    for (size_t i = 0; i < p->n; i++) {
        xmin = fmin(xmin, p->pts[i].x);
        xmax = fmax(xmax, p->pts[i].x);
    }
    /* Log x with some room either side so labels and edge points stay visible. */
    fprintf(gp, "set logscale x 2\nset xrange [%.10g:%.10g]\nset format x '%%g'\n", xmin / 1.6,
            xmax * 2.2);
    fputs("set xlabel ", gp);
    pl_gp_str(gp, p->x_label);
    fputs("\nset ylabel ", gp);
    pl_gp_str(gp, p->y_label);
    fputs("\nset offsets 0, 0, graph 0.08, graph 0.08\n", gp);
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < p->n; i++) {
        ymin = fmin(ymin, p->pts[i].ylo);
        ymax = fmax(ymax, p->pts[i].yhi);
    }
    if (ymin == ymax) /* one value: give gnuplot a range instead of an empty one */
        fprintf(gp, "set yrange [%.10g:%.10g]\n", ymin - fmax(fabs(ymin) * 0.1, 0.5),
                ymax + fmax(fabs(ymax) * 0.1, 0.5));
    int label_no = 1;
    /* Past a few dozen points every label would be unreadable: name the front only. */
    int label_all = p->n <= 40;
    for (size_t i = 0; i < p->n; i++) {
        const struct pl_point *pt = &p->pts[i];
        if (!label_all && !pt->pareto && !pt->baseline) continue;
        fprintf(gp, "set label %d ", label_no++);
        pl_gp_str_max(gp, ctx->configs[pt->cfg].point_label, 40);
        fprintf(gp, " at %.10g,%.10g offset char 0.7,0.5 font ',8' tc rgb '#333333'\n", pt->x,
                pt->y);
        if (pt->baseline)
            fprintf(gp,
                    "set arrow from graph 0, first %.10g to graph 1, first %.10g nohead "
                    "dt 2 lc rgb '#888888'\n",
                    pt->y, pt->y);
    }
    fputs("plot ", gp);
    int first = 1;
    char pname[300];
    snprintf(pname, sizeof pname, "%s_pareto.dat", p->name);
    if (with_pareto) {
        fputs("'", gp);
        fputs(pname, gp);
        fputs("' using 1:2 with steps lw 2 dt 4 lc rgb '#555555' title 'Pareto front'", gp);
        first = 0;
    }
    for (size_t fam = 0; fam < ctx->n_families; fam++) {
        if (fam_used[fam] < 0) continue;
        int base = strcmp(ctx->families[fam], "baseline") == 0;
        const char *color = base ? "#000000" : pl_color(fam);
        int pt = base ? 3 : pl_marker(fam);
        fprintf(gp,
                "%s\\\n  '%s.dat' index %d using 3:4 with points pt %d ps %s lc rgb '%s' "
                "title ",
                first ? "" : ", ", p->name, fam_used[fam], pt, base ? "2.5" : "1.6", color);
        pl_gp_str_max(gp, base ? "baseline (fp32)" : ctx->families[fam], 40);
        int repeats = 0;
        for (size_t i = 0; i < p->n; i++)
            repeats |= (size_t)ctx->configs[p->pts[i].cfg].family == fam && p->pts[i].n > 1;
        if (repeats) /* error bars from min to max over repeats (vectors: no point drawn) */
            fprintf(gp,
                    ", \\\n  '%s.dat' index %d using 3:($7>1?$5:NaN):(0):($6-$5) "
                    "with vectors heads size screen 0.006,90 lw 1.5 lc rgb '%s' notitle",
                    p->name, fam_used[fam], color);
        first = 0;
    }
    fputc('\n', gp);
    fclose(gp);
    free(fam_used);
    pl_run_gnuplot(ctx, p->name, p->what);
}

/* What must be equal for two points to share an accuracy axis: the text scored
 * (eval_bytes) and, for training, the training budget (the read API's train_budget, the
 * definition the tradeoff view shares). NAN where a run does not say; NAN equals NAN here
 * (an older run is grouped with its like). */
struct cmp_key {
    double eval_bytes, budget;
};

static struct cmp_key point_key(const struct pl_ctx *ctx, const struct pl_point *pt,
                                enum panel_kind kind)
{
    const struct pl_config *c = &ctx->configs[pt->cfg];
    struct pl_stat st;
    struct cmp_key k = {NAN, NAN};
    if (pl_config_stat(ctx, c, "eval_bytes", &st)) k.eval_bytes = st.median;
    if (kind == KIND_TRAINING || kind == KIND_DEVICE)
        k.budget = ctx->runs[c->runs[0]].row->train_budget;
    return k;
}

static int same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static int same_key(struct cmp_key a, struct cmp_key b)
{
    return same_value(a.eval_bytes, b.eval_bytes) && same_value(a.budget, b.budget);
}

/* One panel of points that share a comparison key: Pareto front, plot, report table. */
static void tradeoff_group(struct pl_ctx *ctx, const char *name, const char *title,
                           const char *x_metric, const char *x_label, const char *y_label,
                           struct pl_point *pts, size_t n, const char *note)
{
    mark_pareto(ctx, pts, n, pl_higher_is_better(ctx->y_metric));
    struct pl_panel p = {.name = name,
                         .what = title,
                         .x_metric = x_metric,
                         .x_label = x_label,
                         .y_metric = ctx->y_metric,
                         .y_label = y_label,
                         .pts = pts,
                         .n = n};
    draw_scatter(ctx, &p, 1, note);
    pl_report_panel(ctx, &p);
}

/* Accuracy is compared only between runs that scored the same text with the same
 * training budget: the points are split by that key, the largest group (the one holding
 * the baseline on a tie) keeps the panel's name, every other group gets a panel of its
 * own (name_2, name_3, ...) whose title states its key. */
static void tradeoff_panel(struct pl_ctx *ctx, const char *name, const char *what,
                           enum panel_kind kind, const char *const *x_metrics, const char *x_prefix)
{
    struct pl_point *pts = calloc(ctx->n_configs + 1, sizeof *pts);
    struct pl_point *grp = calloc(ctx->n_configs + 1, sizeof *grp);
    struct cmp_key *keys = calloc(ctx->n_configs + 1, sizeof *keys);
    int *done = calloc(ctx->n_configs + 1, sizeof *done);
    if (!pts || !grp || !keys || !done) {
        ctx->oom = 1;
        goto out;
    }
    size_t n_fallback, n_dropped;
    size_t n = build_points(ctx, kind, x_metrics, ctx->y_metric, pts, &n_fallback, &n_dropped);
    const char *x_metric = x_metrics[strstr(x_metrics[0], "@rankmax") ? 1 : 0];
    char *x_label = axis_label(ctx, x_metric, x_prefix);
    char *y_label = axis_label(ctx, ctx->y_metric, NULL);
    char *title = pl_asprintf(ctx, "%s: %s against %s", what, ctx->y_metric, x_metric);
    if (n == 0) {
        pl_item_skip(ctx, name, title, "no successful run has both %s and %s%s", ctx->y_metric,
                     kind == KIND_SERVING    ? "infer_peak_bytes or model_bytes"
                     : kind == KIND_TRAINING ? "train_peak_bytes"
                     : kind == KIND_DEVICE   ? "peak_device_bytes (runs with -p device=cuda on a "
                                               "GPU)"
                                             : x_metrics[1],
                     n_dropped ? " (some have memory <= 0)" : "");
    } else {
        char note[300] = "";
        int len = 0;
        if (n_fallback)
            len = snprintf(note, sizeof note, "%zu point(s) use %s (no %s)", n_fallback,
                           kind == KIND_SERVING ? "model_bytes" : "another memory metric",
                           kind == KIND_SERVING ? "infer_peak_bytes" : x_metrics[0]);
        if (n_dropped && len >= 0 && (size_t)len < sizeof note)
            snprintf(note + len, sizeof note - (size_t)len,
                     "%s%zu configuration(s) with memory <= 0 left out", len ? "; " : "",
                     n_dropped);
        for (size_t i = 0; i < n; i++)
            keys[i] = point_key(ctx, &pts[i], kind);
        size_t n_groups = 0;
        for (size_t i = 0; i < n; i++)
            if (!done[i]) {
                n_groups++;
                for (size_t j = i; j < n; j++)
                    done[j] |= same_key(keys[i], keys[j]);
            }
        memset(done, 0, (n + 1) * sizeof *done);
        for (size_t g = 0; g < n_groups; g++) {
            /* the largest group left (the baseline's on a tie) */
            size_t best = n, best_n = 0;
            int best_base = 0;
            for (size_t i = 0; i < n; i++) {
                if (done[i]) continue;
                size_t cnt = 0;
                int base = 0;
                for (size_t j = 0; j < n; j++)
                    if (!done[j] && same_key(keys[i], keys[j])) {
                        cnt++;
                        base |= pts[j].baseline;
                    }
                if (cnt > best_n || (cnt == best_n && base && !best_base)) {
                    best = i;
                    best_n = cnt;
                    best_base = base;
                }
            }
            size_t m = 0;
            struct cmp_key key = keys[best];
            for (size_t j = 0; j < n; j++)
                if (!done[j] && same_key(key, keys[j])) {
                    grp[m++] = pts[j];
                    done[j] = 1;
                }
            if (n_groups == 1) {
                tradeoff_group(ctx, name, title, x_metrics[0], x_label, y_label, grp, m, note);
                continue;
            }
            struct pl_buf k = {0};
            if (!isnan(key.eval_bytes))
                pl_buf_printf(&k, "scored on %.0f bytes", key.eval_bytes);
            else
                pl_buf_printf(&k, "text scored not recorded");
            if (kind == KIND_TRAINING || kind == KIND_DEVICE) {
                if (!isnan(key.budget))
                    pl_buf_printf(&k, ", %.0f training sequences (steps x batch)", key.budget);
                else
                    pl_buf_printf(&k, ", training budget not recorded");
            }
            char *gname = g ? pl_asprintf(ctx, "%s_%zu", name, g + 1) : NULL;
            char *gtitle = pl_asprintf(ctx, "%s (%s)", pl_s(title), k.s ? k.s : "");
            tradeoff_group(ctx, g ? pl_s(gname) : name, pl_s(gtitle), x_metrics[0], x_label,
                           y_label, grp, m, note);
            free(gname);
            free(gtitle);
            pl_buf_free(&k);
        }
    }
    free(x_label);
    free(y_label);
    free(title);
out:
    free(pts);
    free(grp);
    free(keys);
    free(done);
}

void pl_draw_tradeoff(struct pl_ctx *ctx)
{
    if (ctx->n_configs == 0) {
        pl_item_skip(ctx, "tradeoff", "accuracy against memory", "no successful run");
        return;
    }
    if (ctx->opts->x_metric) {
        char *rankmax = pl_asprintf(ctx, "%s@rankmax", ctx->opts->x_metric);
        char *name = pl_safe_name(ctx, ctx->opts->x_metric);
        char *file = pl_asprintf(ctx, "tradeoff_%s", pl_s(name));
        const char *xs[] = {pl_s(rankmax), ctx->opts->x_metric, NULL};
        tradeoff_panel(ctx, pl_s(file), "Trade-off", KIND_ANY, xs, "memory");
        free(rankmax);
        free(name);
        free(file);
        return;
    }
    static const char *const serving[] = {"infer_peak_bytes", "model_bytes", NULL};
    static const char *const training[] = {"train_peak_bytes@rankmax", "train_peak_bytes", NULL};
    tradeoff_panel(ctx, "tradeoff_serving", "Serving memory trade-off", KIND_SERVING, serving,
                   "serving memory");
    tradeoff_panel(ctx, "tradeoff_training", "Training memory trade-off", KIND_TRAINING, training,
                   "training memory, per rank");
    /* runs on a GPU: accuracy against the interposer's device peak (issue 22) */
    static const char *const device[] = {"peak_device_bytes", NULL};
    tradeoff_panel(ctx, "tradeoff_device", "Device memory trade-off", KIND_DEVICE, device,
                   "device memory (interposer)");
}

void pl_draw_speed(struct pl_ctx *ctx)
{
    static const struct {
        const char *speed, *name;
        const char *mem[4];
    } kinds[] = {
        {"train_tokens_per_s",
         "speed_train",
         {"train_peak_bytes", "peak_heap_bytes", "peak_rss_bytes", NULL}},
        {"eval_tokens_per_s",
         "speed_eval",
         {"infer_peak_bytes", "peak_heap_bytes", "peak_rss_bytes", NULL}},
        {"decode_tokens_per_s",
         "speed_decode",
         {"infer_peak_bytes", "peak_heap_bytes", "peak_rss_bytes", NULL}},
    };
    struct pl_point *pts = calloc(ctx->n_configs + 1, sizeof *pts);
    if (!pts) {
        ctx->oom = 1;
        return;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        /* One memory metric per plot: the first that some configuration with speed has. */
        const char *mem = NULL;
        size_t n = 0, n_fallback, n_dropped;
        for (size_t m = 0; kinds[k].mem[m] && n == 0; m++) {
            const char *one[] = {kinds[k].mem[m], NULL};
            n = build_points(ctx, KIND_ANY, one, kinds[k].speed, pts, &n_fallback, &n_dropped);
            mem = kinds[k].mem[m];
        }
        char *title = pl_asprintf(ctx, "Speed against memory: %s", kinds[k].speed);
        if (n == 0) {
            pl_item_skip(ctx, kinds[k].name, title,
                         "no successful run has %s with a peak memory metric", kinds[k].speed);
        } else {
            char *x_label = axis_label(ctx, mem, "peak memory");
            char *y_label = axis_label(ctx, kinds[k].speed, NULL);
            struct pl_panel p = {.name = kinds[k].name,
                                 .what = title,
                                 .x_metric = mem,
                                 .x_label = x_label,
                                 .y_metric = kinds[k].speed,
                                 .y_label = y_label,
                                 .pts = pts,
                                 .n = n};
            draw_scatter(ctx, &p, 0, NULL);
            free(x_label);
            free(y_label);
        }
        free(title);
    }
    free(pts);
}

/* Parses a whole string as a finite number. */
static int numeric(const char *s, double *v)
{
    char *end;
    if (!s || !*s) return 0;
    *v = strtod(s, &end);
    return *end == 0 && isfinite(*v);
}

static int cmp_point_x_only(const void *a, const void *b)
{
    const struct pl_point *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

size_t pl_varying_keys(struct pl_ctx *ctx, const char *workload, const char **keys, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ctx->n_configs; i++) {
        const struct pl_config *c = &ctx->configs[i];
        if (strcmp(c->workload, workload) != 0) continue;
        const struct pl_run *r = &ctx->runs[c->runs[0]];
        for (size_t p = 0; p < r->n_params; p++) {
            const char *key = r->params[p].key;
            int seen = 0, varies = 0;
            for (size_t k = 0; k < n; k++)
                seen |= strcmp(keys[k], key) == 0;
            for (size_t j = 0; j < ctx->n_configs && !seen && !varies; j++) {
                const struct pl_config *o = &ctx->configs[j];
                if (strcmp(o->workload, workload) != 0) continue;
                const char *v = pl_run_param(&ctx->runs[o->runs[0]], key);
                varies = !v || strcmp(v, pl_s(r->params[p].value)) != 0;
            }
            if (varies && n < max) keys[n++] = key;
        }
    }
    return n;
}

/* The values of every varying key but `skip`, as "k=v, k=v": the series a point is on. */
static char *fixed_part(struct pl_ctx *ctx, const struct pl_run *r, const char **keys, size_t n,
                        size_t skip)
{
    struct pl_buf b = {0};
    for (size_t k = 0; k < n; k++)
        if (k != skip)
            pl_buf_printf(&b, "%s%s=%s", b.len ? ", " : "", keys[k],
                          pl_s(pl_run_param(r, keys[k])));
    if (b.oom) ctx->oom = 1;
    if (!b.s) return pl_strdup(ctx, "");
    return b.s;
}

/* One curve plot: y against param keys[kx] of `workload`, one line per setting of the
 * other varying params. Returns 1 when drawn, 0 when no setting has two points. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The knob's values among the workload's configurations with y. Returns 1 when one is
 * not a number: then cats holds the distinct values, sorted, placed at x = 0, 1, ... */
static int knob_categories(struct pl_ctx *ctx, const char *workload, const char *key,
                           const char **cats, size_t *n_cats)
{
    int categorical = 0;
    *n_cats = 0;
    for (size_t i = 0; i < ctx->n_configs; i++) {
        const struct pl_config *c = &ctx->configs[i];
        struct pl_stat sy;
        double v;
        const char *value = pl_run_param(&ctx->runs[c->runs[0]], key);
        if (strcmp(c->workload, workload) != 0 || !value ||
            !pl_config_stat(ctx, c, ctx->y_metric, &sy))
            continue;
        categorical |= !numeric(value, &v);
        size_t k = 0;
        while (k < *n_cats && strcmp(cats[k], value) != 0)
            k++;
        if (k == *n_cats) cats[(*n_cats)++] = value;
    }
    if (categorical) qsort(cats, *n_cats, sizeof *cats, cmp_str);
    return categorical;
}

static int curve_plot(struct pl_ctx *ctx, const char *workload, const char **keys, size_t nk,
                      size_t kx, struct pl_point *pts)
{
    size_t n = 0, n_cats = 0;
    char **series = calloc(ctx->n_configs + 1, sizeof *series);
    const char **cats = calloc(ctx->n_configs + 1, sizeof *cats);
    if (!series || !cats) {
        free(series);
        free(cats);
        ctx->oom = 1;
        return 0;
    }
    int categorical = knob_categories(ctx, workload, keys[kx], cats, &n_cats);
    for (size_t i = 0; i < ctx->n_configs; i++) {
        const struct pl_config *c = &ctx->configs[i];
        struct pl_stat sy;
        double xv = 0;
        if (strcmp(c->workload, workload) != 0 || !pl_config_stat(ctx, c, ctx->y_metric, &sy))
            continue;
        const struct pl_run *r = &ctx->runs[c->runs[0]];
        const char *value = pl_run_param(r, keys[kx]);
        if (!value) continue;
        if (categorical) {
            while (strcmp(cats[(size_t)xv], value) != 0)
                xv++;
        } else if (!numeric(value, &xv)) {
            continue;
        }
        pts[n] = (struct pl_point){
            .cfg = i, .x = xv, .y = sy.median, .ylo = sy.min, .yhi = sy.max, .n = sy.n};
        series[n++] = fixed_part(ctx, r, keys, nk, kx);
    }
    /* Group by series (stable on x): selection into blocks of equal series text. */
    int drawn = 0;
    char *name = NULL, *title = NULL;
    int *done = calloc(n + 1, sizeof *done);
    size_t n_series = 0;
    FILE *dat = NULL, *gp = NULL;
    struct pl_point *line = calloc(n + 1, sizeof *line);
    char *safe_w = pl_safe_name(ctx, workload), *safe_k = pl_safe_name(ctx, keys[kx]);
    name = pl_asprintf(ctx, "curve_%s_%s", pl_s(safe_w), pl_s(safe_k));
    title = pl_asprintf(ctx, "%s: %s against %s", workload, ctx->y_metric, keys[kx]);
    if (!done || !line || !name || !title) goto out;
    for (size_t i = 0; i < n; i++) {
        size_t m = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && strcmp(series[j], series[i]) == 0) m++;
        if (!done[i] && m >= 2) n_series++;
    }
    if (n_series == 0) goto out;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) {
        drawn = 1;
        goto out;
    }
    fprintf(dat, "# %s: %s (y) against %s (x), one block per setting of the other params\n",
            workload, ctx->y_metric, keys[kx]);
    if (categorical) {
        fprintf(dat, "# x is the index of the %s value:", keys[kx]);
        for (size_t k = 0; k < n_cats; k++) {
            fprintf(dat, " %zu=", k);
            pl_dat_text(dat, cats[k]);
        }
        fputc('\n', dat);
    }
    fputs("# x\ty\ty_min\ty_max\trepeats\trun_id\tlabel\n", dat);
    pl_gp_preamble(ctx, gp, name, 1000, 650);
    /* A flat curve (recomputation, an allocator or a schedule leave the accuracy bit for
     * bit the same) says so and gets a range of its own instead of gnuplot's "empty y
     * range" warning. */
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        size_t same = 0; /* only the points of drawn series (two or more points) count */
        for (size_t j = 0; j < n && same < 2; j++)
            same += strcmp(series[j], series[i]) == 0;
        if (same < 2) continue;
        ymin = fmin(ymin, pts[i].ylo);
        ymax = fmax(ymax, pts[i].yhi);
    }
    char *flat = ymin == ymax
                     ? pl_asprintf(ctx, "the same %s (%.6g) at every setting", ctx->y_metric, ymin)
                     : NULL;
    pl_gp_title(gp, title, ctx, flat);
    if (flat)
        fprintf(gp, "set yrange [%.10g:%.10g]\n", ymin - fmax(fabs(ymin) * 0.01, 0.01),
                ymax + fmax(fabs(ymax) * 0.01, 0.01));
    free(flat);
    fputs("set xlabel ", gp);
    pl_gp_str(gp, keys[kx]);
    fputs("\nset ylabel ", gp);
    char *yl = axis_label(ctx, ctx->y_metric, NULL);
    pl_gp_str(gp, yl);
    free(yl);
    fputs("\nset offsets graph 0.05, graph 0.05, graph 0.08, graph 0.08\n", gp);
    if (categorical) {
        fprintf(gp,
                "set offsets 0, 0, graph 0.08, graph 0.08\nset xrange [-0.5:%zu.5]\n"
                "set xtics (",
                n_cats - 1);
        for (size_t k = 0; k < n_cats; k++) {
            fputs(k ? ", " : "", gp);
            pl_gp_str_max(gp, cats[k], 30);
            fprintf(gp, " %zu", k);
        }
        fputs(")\n", gp);
    }
    fputs("plot ", gp);
    int block = 0;
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        size_t m = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && strcmp(series[j], series[i]) == 0) {
                line[m++] = pts[j];
                done[j] = 1;
            }
        if (m < 2) continue;
        qsort(line, m, sizeof *line, cmp_point_x_only);
        if (block > 0) fputs("\n\n", dat);
        for (size_t j = 0; j < m; j++) {
            const struct pl_config *c = &ctx->configs[line[j].cfg];
            fprintf(dat, "%.10g\t%.10g\t%.10g\t%.10g\t%zu\t%lld\t", line[j].x, line[j].y,
                    line[j].ylo, line[j].yhi, line[j].n, ctx->runs[c->runs[0]].id);
            pl_dat_text(dat, c->point_label);
            fputc('\n', dat);
        }
        fprintf(gp,
                "%s\\\n  '%s.dat' index %d using 1:2 with linespoints lw 2 pt %d lc rgb '%s' "
                "title ",
                block ? ", " : "", name, block, pl_marker((size_t)block), pl_color((size_t)block));
        pl_gp_str_max(gp, *series[i] ? series[i] : workload, 50);
        int repeats = 0;
        for (size_t j = 0; j < m; j++)
            repeats |= line[j].n > 1;
        if (repeats)
            fprintf(gp,
                    ", \\\n  '%s.dat' index %d using 1:($5>1?$3:NaN):(0):($4-$3) "
                    "with vectors heads size screen 0.006,90 lw 1.5 lc rgb '%s' notitle",
                    name, block, pl_color((size_t)block));
        block++;
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
    drawn = 1;
out:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    for (size_t i = 0; i < n; i++)
        free(series[i]);
    free(series);
    free(cats);
    free(done);
    free(line);
    free(safe_w);
    free(safe_k);
    free(name);
    free(title);
    return drawn;
}

void pl_draw_curves(struct pl_ctx *ctx)
{
    struct pl_point *pts = calloc(ctx->n_configs + 1, sizeof *pts);
    const char *keys[32];
    struct pl_buf why = {0};
    size_t drawn = 0;
    if (!pts) {
        ctx->oom = 1;
        return;
    }
    for (size_t fam = 0; fam < ctx->n_families; fam++) {
        const char *w = ctx->families[fam];
        size_t nk = pl_varying_keys(ctx, w, keys, 32);
        for (size_t k = 0; k < nk; k++) {
            if (curve_plot(ctx, w, keys, nk, k, pts))
                drawn++;
            else
                pl_buf_printf(&why, "%s%s.%s", why.len ? ", " : "", w, keys[k]);
        }
    }
    if (drawn == 0)
        pl_item_skip(ctx, "curves", "accuracy against one knob",
                     "no workload reports %s for two or more values of one numeric "
                     "parameter with its other parameters fixed%s%s",
                     ctx->y_metric, why.len ? "; tried " : "", pl_s(why.s));
    pl_buf_free(&why);
    free(pts);
}

/* The train_loss curve of a run (lowest rank that has one); n = 0 when it has none. */
static void loss_samples(struct pl_ctx *ctx, long long run_id, struct mt_read_sample **v, size_t *n)
{
    static const char *const series[] = {"train_loss"};
    if (mt_read_samples(ctx->rd, run_id, series, 1, v, n) != 0) *n = 0;
}

void pl_draw_loss(struct pl_ctx *ctx)
{
    size_t drawn = 0;
    for (size_t fam = 0; fam < ctx->n_families; fam++) {
        const char *w = ctx->families[fam];
        char err[512];
        char *safe = pl_safe_name(ctx, w);
        char *name = pl_asprintf(ctx, "loss_%s", pl_s(safe));
        char *title = pl_asprintf(ctx, "%s: training loss", w);
        FILE *dat = name ? pl_open(ctx, name, "dat", err, sizeof err) : NULL;
        int lines = 0;
        if (dat) fputs("# step\ttrain_loss, one block per configuration (first repeat)\n", dat);
        for (size_t i = 0; dat && i < ctx->n_configs && lines < 12; i++) {
            const struct pl_config *c = &ctx->configs[i];
            if (strcmp(c->workload, w) != 0) continue;
            struct mt_read_sample *v;
            size_t rows;
            loss_samples(ctx, ctx->runs[c->runs[0]].id, &v, &rows);
            for (size_t k = 0; k < rows; k++) {
                if (k == 0) {
                    fprintf(dat, "%s# run %lld: ", lines ? "\n\n" : "", ctx->runs[c->runs[0]].id);
                    pl_dat_text(dat, c->point_label);
                    fputc('\n', dat);
                }
                fprintf(dat, "%.10g\t%.10g\n", v[k].x, v[k].y);
            }
            lines += rows > 0;
        }
        if (dat) fclose(dat);
        FILE *gp = lines ? pl_open(ctx, name, "gp", err, sizeof err) : NULL;
        if (gp) {
            pl_gp_preamble(ctx, gp, name, 1000, 650);
            pl_gp_title(gp, title, ctx, NULL);
            fputs("set xlabel 'step'\nset ylabel 'train_loss (nats/byte)'\nplot ", gp);
            int block = 0;
            for (size_t i = 0; i < ctx->n_configs && block < lines; i++) {
                const struct pl_config *c = &ctx->configs[i];
                if (strcmp(c->workload, w) != 0) continue;
                static const char *const series[] = {"train_loss"};
                if (mt_read_has_samples(ctx->rd, ctx->runs[c->runs[0]].id, series, 1) != 1)
                    continue;
                fprintf(gp,
                        "%s\\\n  '%s.dat' index %d using 1:2 with lines lw 2 lc rgb '%s' title ",
                        block ? ", " : "", name, block, pl_color((size_t)block));
                pl_gp_str_max(gp, c->point_label, 50);
                block++;
            }
            fputc('\n', gp);
            fclose(gp);
            pl_run_gnuplot(ctx, name, title);
            drawn++;
        } else if (name) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s.dat", ctx->plots_dir, name);
            remove(path); /* no curve for this workload: leave no empty data file */
        }
        free(safe);
        free(name);
        free(title);
    }
    if (drawn == 0)
        pl_item_skip(ctx, "loss", "training loss curves",
                     "no successful run recorded train_loss samples");
}
