/* plots/plot_quant.c — how far compression moves a model from its base (issue 20).
 *
 * What it is for: two plots from each configuration's medians over repeats:
 *   kl_bytes    kl_mean, the mean KL divergence of the served model's next-token
 *               distributions from its base model's (nats, log y), against model_bytes
 *               (MiB, log x), for every serving configuration that reports both, one
 *               series per workload and method (parameter `method` where the workload has
 *               it): quantize's RTN beside GPTQ/AWQ/..., prune's saliencies, LoRA, distill's
 *               students. A KL of 0 (the base itself) has no place on a log axis: such
 *               points are left out and counted in the title.
 *   quant_bits  the plot's y metric (val_bpb unless --y says otherwise) against `bits` for
 *               quantize configurations, one line per method and format (scheme,
 *               granularity, group size, int8 activations).
 * Like with like: each plot draws the largest comparison group (model, training budget,
 * text scored: the key the KV-cache plots use); configurations of other groups are
 * counted in the title. Without the data each plot is skipped with the reason.
 * What it is not for: the trade-off panels (plot_draw.c), the KV cache's own accuracy
 * (plot_kvcache.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

struct q_pt {
    size_t cfg;
    char *key, *series;
    double x, y;
};

static double median_or_nan(const struct pl_ctx *ctx, const struct pl_config *c, const char *m)
{
    struct pl_stat st;
    return pl_config_stat(ctx, c, m, &st) ? st.median : NAN;
}

static int cmp_pt(const void *a, const void *b)
{
    const struct q_pt *p = a, *q = b;
    int d = strcmp(p->series, q->series);
    return d ? d : (p->x > q->x) - (p->x < q->x);
}

/* The series of a configuration: kl_bytes by workload and method, quant_bits by method and
 * format. */
static char *series_of(struct pl_ctx *ctx, const struct pl_run *r, int by_format)
{
    const char *method = pl_run_param(r, "method");
    struct pl_buf b = {0};
    if (!by_format) {
        pl_buf_printf(&b, "%s", r->workload);
        if (method) pl_buf_printf(&b, " %s", method);
    } else {
        const char *gran = pl_s(pl_run_param(r, "granularity"));
        pl_buf_printf(&b, "%s %s %s", method ? method : "rtn", pl_s(pl_run_param(r, "scheme")),
                      gran);
        if (!strcmp(gran, "group")) pl_buf_printf(&b, " %s", pl_s(pl_run_param(r, "group_size")));
        if (!strcmp(pl_s(pl_run_param(r, "activations")), "int8-dynamic"))
            pl_buf_printf(&b, " W8A8");
    }
    if (b.oom) ctx->oom = 1;
    return b.s;
}

/* Keeps the points of the largest group (first seen on a tie), sorted by series and x;
 * returns how many it kept, *others how many it dropped. */
static size_t keep_largest(struct q_pt *pts, size_t n, size_t *others, const char **key)
{
    size_t best = 0, best_n = 0;
    for (size_t i = 0; i < n; i++) {
        size_t cnt = 0;
        for (size_t j = 0; j < n; j++)
            cnt += strcmp(pts[i].key, pts[j].key) == 0;
        if (cnt > best_n) best = i, best_n = cnt;
    }
    *key = n ? pts[best].key : "";
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(pts[i].key, *key) == 0) {
            struct q_pt t = pts[k];
            pts[k++] = pts[i], pts[i] = t;
        }
    *others = n - k;
    qsort(pts, k, sizeof *pts, cmp_pt);
    return k;
}

/* Writes one index block per series (x, y, run_id, series) and the plot command. */
static void draw(struct pl_ctx *ctx, struct q_pt *pts, size_t n, const char *name,
                 const char *title, const char *extra, const char *axes, const char *style)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    fputs("# x\ty\trun_id\tseries\n", dat);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(pts[i].series, pts[i - 1].series)) fputs("\n\n", dat), k++;
        fprintf(dat, "%.10g\t%.10g\t%lld\t", pts[i].x, pts[i].y,
                ctx->runs[ctx->configs[pts[i].cfg].runs[0]].id);
        pl_dat_text(dat, pts[i].series);
        fputc('\n', dat);
    }
    pl_gp_preamble(ctx, gp, name, 1100, 720);
    pl_gp_title(gp, title, ctx, extra);
    fprintf(gp, "%sset key outside right top\nplot ", axes);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(pts[i].series, pts[i - 1].series)) continue;
        fprintf(gp, "%s\\\n  '%s.dat' index %zu using 1:2 with %s pt %d lc rgb '%s' title ",
                k ? ", " : "", name, k, style, pl_marker(k), pl_color(k));
        pl_gp_str_max(gp, pts[i].series, 40);
        k++;
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static void plot_one(struct pl_ctx *ctx, int bits_plot)
{
    const char *name = bits_plot ? "quant_bits" : "kl_bytes";
    char *what = bits_plot
                     ? pl_asprintf(ctx, "Quantization: %s against bits by method", ctx->y_metric)
                     : pl_strdup(ctx, "KL divergence from the base against model bytes");
    struct q_pt *pts = calloc(ctx->n_configs + 1, sizeof *pts);
    size_t n = 0, zeros = 0, others = 0;
    if (!pts || !what) {
        ctx->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < ctx->n_configs; i++) {
        const struct pl_config *c = &ctx->configs[i];
        const struct pl_run *r = &ctx->runs[c->runs[0]];
        double x =
            bits_plot ? pl_run_param_num(r, "bits") : median_or_nan(ctx, c, "model_bytes") / PL_MIB;
        double y = median_or_nan(ctx, c, bits_plot ? ctx->y_metric : "kl_mean");
        if ((bits_plot && strcmp(c->workload, "quantize")) || isnan(x) || isnan(y)) continue;
        if (!bits_plot && !(y > 0)) {
            zeros++;
            continue;
        }
        pts[n] = (struct q_pt){i, pl_config_group_key(ctx, c), series_of(ctx, r, bits_plot), x, y};
        if (!pts[n].key || !pts[n].series) {
            free(pts[n].key), free(pts[n].series);
            ctx->oom = 1;
            goto out;
        }
        n++;
    }
    if (!n) {
        pl_item_skip(ctx, name, what,
                     bits_plot ? "no successful quantize run with bits and %s"
                               : "no serving run with kl_mean > 0 and model_bytes%s",
                     bits_plot ? ctx->y_metric : "");
        goto out;
    }
    const char *key;
    size_t kept = keep_largest(pts, n, &others, &key);
    char *extra = pl_asprintf(ctx, "%s; %zu configuration(s) of other groups left out%s", key,
                              others, zeros ? "; KL 0 (the base) not on the log axis" : "");
    char *axes = bits_plot ? pl_asprintf(ctx,
                                         "set xlabel 'bits per weight (parameter bits)'\n"
                                         "set ylabel '%s'\nset xtics 1\n",
                                         ctx->y_metric)
                           : pl_strdup(ctx, "set logscale xy 10\nset xlabel 'model_bytes (MiB)'\n"
                                            "set ylabel 'kl_mean (nats)'\n");
    if (extra && axes)
        draw(ctx, pts, kept, name, what, extra, axes, bits_plot ? "linespoints lw 2" : "points");
    else
        ctx->oom = 1;
    free(extra), free(axes);
out:
    for (size_t i = 0; pts && i < n; i++)
        free(pts[i].key), free(pts[i].series);
    free(pts), free(what);
}

void pl_draw_quant(struct pl_ctx *ctx)
{
    plot_one(ctx, 0);
    plot_one(ctx, 1);
}
