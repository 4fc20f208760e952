/* plots/plot_kvcache.c — the KV-cache plots of the `kv_cache` workload (issue 17).
 *
 * What it is for: three plots per comparison group of kv_cache configurations, from their
 * medians over repeats:
 *   kv_memory     kv_cache_bytes (solid) and infer_peak_bytes (dashed) in MiB against the
 *                 serving context (metric decode_context), one colour per cache series;
 *   kv_accuracy   kv_val_loss (left; the fp32 cache's kv_val_loss_fp32 dashed) and kv_kl,
 *                 the KL divergence against the fp32 cache (right, log y: a KL of 0, the
 *                 fp32 cache's own, is left out and said so), against the context;
 *   kv_sequences  kv_max_sequences as clustered bars: one cluster per (budget, context),
 *                 one bar per series.
 * A series is a cache format with whatever cache parameters (kv_group, kv_residual,
 * kv_block) vary among the workload's configurations. Like with like: a group holds the
 * configurations of one model (parameter `model`), one training budget and one text
 * scored (the read API's train_budget and eval_bytes, the key the trade-off panels use);
 * the largest group keeps the plain names, the others get _2, _3, ... and their key in
 * the title. Without kv_cache runs every plot is skipped with the reason.
 * What it is not for: the trade-off panels (plot_draw.c) or per-run plots.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

#define KV_WORKLOAD "kv_cache"

/* One kv_cache configuration as the plots see it. */
struct kv_pt {
    size_t cfg;
    const char *series; /* into kv_state.series */
    double ctx, kv, infer, loss, loss32, kl, seqs, budget, seq_ctx;
};

/* The columns of the memory and accuracy data files, in order (gnuplot column = +1). */
enum kv_col { KC_CTX, KC_KV, KC_INFER, KC_LOSS, KC_LOSS32, KC_KL, KC_COUNT };

static double kv_col(const struct kv_pt *p, enum kv_col c)
{
    const double v[KC_COUNT] = {p->ctx, p->kv, p->infer, p->loss, p->loss32, p->kl};
    return v[c];
}

struct kv_state {
    struct kv_pt *pts;
    size_t n;
    char **series; /* distinct series labels, in format order */
    size_t n_series;
};

static double stat_or_nan(const struct pl_ctx *ctx, const struct pl_config *c, const char *m)
{
    struct pl_stat st;
    return pl_config_stat(ctx, c, m, &st) ? st.median : NAN;
}

/* The series of a run: its format, then the kv_* parameters that vary in the workload. */
static char *series_of(struct pl_ctx *ctx, const struct pl_run *r, const char **vary, size_t nv)
{
    struct pl_buf b = {0};
    pl_buf_printf(&b, "%s", pl_s(pl_run_param(r, "kv_cache")));
    if (!b.len) pl_buf_printf(&b, "fp32"); /* a run before the parameter: today's cache */
    for (size_t k = 0; k < nv; k++)
        if (strncmp(vary[k], "kv_", 3) == 0 && strcmp(vary[k], "kv_cache") != 0)
            pl_buf_printf(&b, " %s=%s", vary[k] + 3, pl_s(pl_run_param(r, vary[k])));
    if (b.oom) ctx->oom = 1;
    return b.s;
}

/* Format order (fp32 first, then falling bits), then the label. */
static int format_rank(const char *s)
{
    static const char *const order[] = {"fp32", "bf16", "fp16", "int8", "int4", "int3", "int2"};
    enum { N_ORDER = sizeof order / sizeof order[0] };
    for (int i = 0; i < N_ORDER; i++) {
        size_t n = strlen(order[i]);
        if (strncmp(s, order[i], n) == 0 && (!s[n] || s[n] == ' ')) return i;
    }
    return N_ORDER;
}

static int cmp_series(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int d = format_rank(x) - format_rank(y);
    return d ? d : strcmp(x, y);
}

/* Collects the points of the configurations whose group key is `key` (NULL: any). */
static void collect(struct pl_ctx *ctx, struct kv_state *s, char **keys, const size_t *kv_cfg,
                    size_t n_kv, const char *key, const char **vary, size_t nv)
{
    s->n = s->n_series = 0;
    for (size_t i = 0; i < n_kv; i++) {
        if (strcmp(pl_s(keys[i]), key) != 0) continue;
        const struct pl_config *c = &ctx->configs[kv_cfg[i]];
        const struct pl_run *r = &ctx->runs[c->runs[0]];
        char *ser = series_of(ctx, r, vary, nv);
        if (!ser) continue;
        size_t k = 0;
        while (k < s->n_series && strcmp(s->series[k], ser) != 0)
            k++;
        if (k == s->n_series)
            s->series[s->n_series++] = ser;
        else
            free(ser);
        struct kv_pt *p = &s->pts[s->n++];
        double ctx_param = pl_run_param_num(r, "context");
        *p = (struct kv_pt){.cfg = kv_cfg[i],
                            .series = s->series[k],
                            .ctx = stat_or_nan(ctx, c, "decode_context"),
                            .kv = stat_or_nan(ctx, c, "kv_cache_bytes") / PL_MIB,
                            .infer = stat_or_nan(ctx, c, "infer_peak_bytes") / PL_MIB,
                            .loss = stat_or_nan(ctx, c, "kv_val_loss"),
                            .loss32 = stat_or_nan(ctx, c, "kv_val_loss_fp32"),
                            .kl = stat_or_nan(ctx, c, "kv_kl"),
                            .seqs = stat_or_nan(ctx, c, "kv_max_sequences"),
                            .budget = pl_run_param_num(r, "budget")};
        p->seq_ctx = ctx_param > 0 ? ctx_param : p->ctx;
    }
    qsort(s->series, s->n_series, sizeof *s->series, cmp_series);
    for (size_t i = 0; i < s->n; i++) /* re-point after the sort */
        for (size_t k = 0; k < s->n_series; k++)
            if (strcmp(s->pts[i].series, s->series[k]) == 0) s->pts[i].series = s->series[k];
}

static int cmp_pt_ctx(const void *a, const void *b)
{
    const struct kv_pt *p = a, *q = b;
    if (p->ctx != q->ctx) return (p->ctx > q->ctx) - (p->ctx < q->ctx);
    return (p->cfg > q->cfg) - (p->cfg < q->cfg);
}

/* A number for a data file: NaN (gnuplot's missing value here) when not finite. */
/* Whether point i is the row written for its series and context (see write_series). */
static int written(const struct kv_state *s, size_t i)
{
    const struct kv_pt *p = &s->pts[i];
    if (!(p->ctx > 0)) return 0;
    for (size_t j = 0; j < i; j++)
        if (s->pts[j].series == p->series && s->pts[j].ctx == p->ctx) return 0;
    return 1;
}

/* Range of a column over the written rows (values > 0 only when positive); 0 when none. */
static int range_of(const struct kv_state *s, enum kv_col c, int positive, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < s->n; i++) {
        double v = kv_col(&s->pts[i], c);
        if (!written(s, i) || !isfinite(v) || (positive && !(v > 0))) continue;
        *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
    return *lo <= *hi;
}

/* "set xrange" / "set yrange" with room either side (a factor on a log axis). */
static void set_range(FILE *gp, char axis, double lo, double hi, int log)
{
    if (log)
        fprintf(gp, "set %crange [%.10g:%.10g]\n", axis, lo / 1.5, hi * 1.5);
    else if (lo == hi)
        fprintf(gp, "set %crange [%.10g:%.10g]\n", axis, lo - fmax(fabs(lo) * 0.1, 0.5),
                hi + fmax(fabs(hi) * 0.1, 0.5));
}

/* Writes one index block per series (context ascending, one row per context: the first
 * configuration at a context, others at the same context left out) with the columns
 * context, kv MiB, infer MiB, val loss, fp32-cache loss, KL, run id, series; returns how
 * many rows have column `need`. */
static size_t write_series(struct pl_ctx *ctx, FILE *f, const struct kv_state *s, enum kv_col need)
{
    size_t have = 0;
    fputs("# context\tkv_cache_MiB\tinfer_peak_MiB\tkv_val_loss\tkv_val_loss_fp32\tkv_kl\t"
          "run_id\tseries\n",
          f);
    for (size_t k = 0; k < s->n_series; k++) {
        if (k) fputs("\n\n", f);
        for (size_t i = 0; i < s->n; i++) {
            const struct kv_pt *p = &s->pts[i];
            if (p->series != s->series[k] || !written(s, i)) continue;
            have += !isnan(kv_col(p, need));
            for (int j = 0; j < KC_COUNT; j++)
                pl_dat_num(f, kv_col(p, (enum kv_col)j), j ? "\t" : "");
            fprintf(f, "\t%lld\t", ctx->runs[ctx->configs[p->cfg].runs[0]].id);
            pl_dat_text(f, s->series[k]);
            fputc('\n', f);
        }
    }
    return have;
}

/* `plot` lines over the series: column y of each block, in the series' colour. */
static void plot_series(FILE *gp, const struct kv_state *s, const char *name, int y,
                        const char *style)
{
    for (size_t k = 0; k < s->n_series; k++) {
        fprintf(gp, "%s\\\n  '%s.dat' index %zu using 1:%d with %s lc rgb '%s' title ",
                k ? ", " : "", name, k, y, style, pl_color(k));
        pl_gp_str_max(gp, s->series[k], 48);
    }
}

static void draw_memory(struct pl_ctx *ctx, const struct kv_state *s, const char *name,
                        const char *title)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    size_t have = write_series(ctx, dat, s, KC_KV);
    if (!have) {
        fclose(dat), fclose(gp);
        pl_item_skip(ctx, name, title, "no kv_cache run has kv_cache_bytes and decode_context");
        return;
    }
    pl_gp_preamble(ctx, gp, name, 1100, 720);
    pl_gp_title(gp, title, ctx, "solid: kv_cache_bytes; dashed: infer_peak_bytes");
    double lo, hi;
    if (range_of(s, KC_CTX, 1, &lo, &hi)) set_range(gp, 'x', lo, hi, 1);
    fputs("set logscale x 2\nset format x '%g'\nset offsets 0, 0, graph 0.05, "
          "0\nset xlabel 'serving context: decode_context (tokens)'\nset ylabel 'MiB'\n"
          "set yrange [0:*]\nplot ",
          gp);
    plot_series(gp, s, name, 2, "linespoints lw 2 pt 7");
    fputs(", \\\n", gp);
    for (size_t k = 0; k < s->n_series; k++)
        fprintf(gp,
                "%s  '%s.dat' index %zu using 1:3 with linespoints lw 1.5 dt 2 pt 6 lc rgb "
                "'%s' notitle",
                k ? ", \\\n" : "", name, k, pl_color(k));
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static void draw_accuracy(struct pl_ctx *ctx, const struct kv_state *s, const char *name,
                          const char *title)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    size_t have = write_series(ctx, dat, s, KC_LOSS);
    size_t zero_kl = 0;
    for (size_t i = 0; i < s->n; i++)
        zero_kl += written(s, i) && !(s->pts[i].kl > 0) && !isnan(s->pts[i].kl);
    if (!have) {
        fclose(dat), fclose(gp);
        pl_item_skip(ctx, name, title, "no kv_cache run has kv_val_loss and decode_context");
        return;
    }
    pl_gp_preamble(ctx, gp, name, 1400, 640);
    fputs("set multiplot layout 1,2 title ", gp);
    pl_gp_title_expr(gp, title, ctx, NULL);
    fputc('\n', gp);
    double lo, hi, klo, khi;
    if (range_of(s, KC_CTX, 1, &lo, &hi)) set_range(gp, 'x', lo, hi, 1);
    if (range_of(s, KC_LOSS, 0, &lo, &hi)) {
        double l32, h32;
        if (range_of(s, KC_LOSS32, 0, &l32, &h32)) lo = fmin(lo, l32), hi = fmax(hi, h32);
        set_range(gp, 'y', lo, hi, 0);
    }
    fputs("set logscale x 2\nset format x '%g'\nset offsets 0, 0, graph "
          "0.08, graph 0.08\nset xlabel 'serving context: decode_context (tokens)'\n"
          "set key inside top left\nset title 'kv_val_loss (dashed: fp32 cache)'\n"
          "set ylabel 'kv_val_loss (nats/byte)'\nplot ",
          gp);
    plot_series(gp, s, name, 4, "linespoints lw 2 pt 7");
    fprintf(gp,
            ", \\\n  for [k=0:%zu] '%s.dat' index k using 1:5 with lines dt 2 lw 1 lc rgb "
            "'#555555' notitle\n",
            s->n_series - 1, name);
    if (zero_kl)
        fprintf(gp, "set title 'kv_kl vs fp32 cache (%zu point(s) with KL 0 not on log axis)'\n",
                zero_kl);
    else
        fputs("set title 'kv_kl vs fp32 cache'\n", gp);
    if (!range_of(s, KC_KL, 1, &klo, &khi)) { /* nothing positive */
        fputs("set yrange [0:1]\nset label 1 'no KL > 0' at graph 0.4, graph 0.5\n"
              "plot NaN notitle\nunset multiplot\n",
              gp);
        pl_finish(ctx, &dat, &gp, name, title);
        return;
    }
    fputs("unset key\nunset yrange\nset logscale y 10\nset ylabel 'kv_kl (nats)'\n", gp);
    set_range(gp, 'y', klo, khi, 1);
    fputs("plot ", gp);
    int first = 1;
    for (size_t k = 0; k < s->n_series; k++) {
        int any = 0; /* a series without a KL > 0 (the fp32 cache) has nothing on a log axis */
        for (size_t i = 0; i < s->n; i++)
            any |= s->pts[i].series == s->series[k] && written(s, i) && s->pts[i].kl > 0;
        if (!any) continue;
        fprintf(gp,
                "%s\\\n  '%s.dat' index %zu using 1:($6>0?$6:NaN) with linespoints lw 2 pt 7 lc "
                "rgb '%s' notitle",
                first ? "" : ", ", name, k, pl_color(k));
        first = 0;
    }
    fputs("\nunset multiplot\n", gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static int cmp_pt_cluster(const void *a, const void *b)
{
    const struct kv_pt *p = a, *q = b;
    if (p->budget != q->budget) return p->budget < q->budget ? -1 : 1;
    return (p->seq_ctx > q->seq_ctx) - (p->seq_ctx < q->seq_ctx);
}

static void draw_sequences(struct pl_ctx *ctx, struct kv_state *s, const char *name,
                           const char *title)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    qsort(s->pts, s->n, sizeof *s->pts, cmp_pt_cluster);
    fputs("# budget_MiB\tcontext", dat);
    for (size_t k = 0; k < s->n_series; k++) {
        fputc('\t', dat);
        pl_dat_text(dat, s->series[k]);
    }
    fputs("\n", dat);
    size_t rows = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        int any = 0;
        double *v = calloc(s->n_series + 1, sizeof *v);
        if (!v) {
            ctx->oom = 1;
            break;
        }
        for (size_t k = 0; k < s->n_series; k++)
            v[k] = NAN;
        for (; j < s->n && !cmp_pt_cluster(&s->pts[i], &s->pts[j]); j++)
            for (size_t k = 0; k < s->n_series; k++)
                if (s->pts[j].series == s->series[k] && isnan(v[k]) && !isnan(s->pts[j].seqs)) {
                    v[k] = s->pts[j].seqs;
                    any = 1;
                }
        if (any && !isnan(s->pts[i].budget) && !isnan(s->pts[i].seq_ctx)) {
            fprintf(dat, "%.10g\t%.10g", s->pts[i].budget / PL_MIB, s->pts[i].seq_ctx);
            for (size_t k = 0; k < s->n_series; k++)
                pl_dat_num(dat, v[k], "\t");
            fputc('\n', dat);
            rows++;
        }
        free(v);
        i = j;
    }
    if (!rows) {
        fclose(dat), fclose(gp);
        pl_item_skip(ctx, name, title,
                     "no kv_cache run has kv_max_sequences with its budget and context");
        return;
    }
    pl_gp_preamble(ctx, gp, name, 1100, 720);
    pl_gp_title(gp, title, ctx, "clusters: budget MiB @ context tokens");
    fputs("set style data histograms\nset style histogram clustered gap 1\n"
          "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
          "set ylabel 'kv_max_sequences (count)'\nset xlabel 'KV budget @ context'\nplot ",
          gp);
    for (size_t k = 0; k < s->n_series; k++) {
        fprintf(gp, "%s\\\n  '%s.dat' using %zu", k ? ", " : "", name, k + 3);
        if (!k) fputs(":xtic(sprintf('%g MiB @ %g', $1, $2))", gp);
        fprintf(gp, " lc rgb '%s' title ", pl_color(k));
        pl_gp_str_max(gp, s->series[k], 48);
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

void pl_draw_kvcache(struct pl_ctx *ctx)
{
    static const char *const names[] = {"kv_memory", "kv_accuracy", "kv_sequences"};
    static const char *const whats[] = {"KV cache: serving memory against context",
                                        "KV cache: accuracy against context (vs the fp32 cache)",
                                        "KV cache: most sequences that fit a budget"};
    size_t *kv_cfg = calloc(ctx->n_configs + 1, sizeof *kv_cfg), n_kv = 0;
    char **keys = calloc(ctx->n_configs + 1, sizeof *keys);
    const char **vary = calloc(64, sizeof *vary);
    struct kv_state s = {calloc(ctx->n_configs + 1, sizeof *s.pts), 0,
                         calloc(ctx->n_configs + 1, sizeof *s.series), 0};
    int *done = calloc(ctx->n_configs + 1, sizeof *done);
    if (!kv_cfg || !keys || !vary || !s.pts || !s.series || !done) {
        ctx->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < ctx->n_configs; i++)
        if (strcmp(ctx->configs[i].workload, KV_WORKLOAD) == 0) kv_cfg[n_kv++] = i;
    if (!n_kv) {
        for (size_t p = 0; p < 3; p++)
            pl_item_skip(ctx, names[p], whats[p], "no successful %s run", KV_WORKLOAD);
        goto out;
    }
    size_t nv = pl_varying_keys(ctx, KV_WORKLOAD, vary, 64);
    for (size_t i = 0; i < n_kv; i++)
        keys[i] = pl_config_group_key(ctx, &ctx->configs[kv_cfg[i]]);
    size_t n_groups = 0;
    for (size_t i = 0; i < n_kv; i++)
        if (!done[i]) {
            n_groups++;
            for (size_t j = i; j < n_kv; j++)
                done[j] |= strcmp(pl_s(keys[i]), pl_s(keys[j])) == 0;
        }
    memset(done, 0, (n_kv + 1) * sizeof *done);
    for (size_t g = 0; g < n_groups; g++) {
        size_t best = 0, best_n = 0; /* the largest group left, first seen on a tie */
        for (size_t i = 0; i < n_kv; i++) {
            size_t cnt = 0;
            for (size_t j = 0; j < n_kv && !done[i]; j++)
                cnt += !done[j] && strcmp(pl_s(keys[i]), pl_s(keys[j])) == 0;
            if (cnt > best_n) best = i, best_n = cnt;
        }
        const char *key = pl_s(keys[best]);
        for (size_t j = 0; j < n_kv; j++)
            done[j] |= strcmp(key, pl_s(keys[j])) == 0;
        collect(ctx, &s, keys, kv_cfg, n_kv, key, vary, nv);
        qsort(s.pts, s.n, sizeof *s.pts, cmp_pt_ctx);
        for (size_t p = 0; p < 3; p++) {
            char *name = g ? pl_asprintf(ctx, "%s_%zu", names[p], g + 1) : NULL;
            char *title = n_groups > 1 ? pl_asprintf(ctx, "%s (%s)", whats[p], key) : NULL;
            const char *nm = g ? pl_s(name) : names[p], *tt = title ? title : whats[p];
            if (p == 0) draw_memory(ctx, &s, nm, tt);
            if (p == 1) draw_accuracy(ctx, &s, nm, tt);
            if (p == 2) draw_sequences(ctx, &s, nm, tt);
            free(name), free(title);
        }
        for (size_t k = 0; k < s.n_series; k++)
            free(s.series[k]);
    }
out:
    for (size_t i = 0; i < n_kv; i++)
        free(keys[i]);
    free(kv_cfg), free(keys), free(vary), free(s.pts), free(s.series), free(done);
}
