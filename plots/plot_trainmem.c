/* plots/plot_trainmem.c — training memory against context length and per method.
 *
 * What it is for: two plots of the accounted training peak (train_peak_bytes and its rows
 * per memory category), from each configuration's medians over repeats:
 *   train_context  (issue 17) train_peak_bytes (solid) and its activations row (dashed) in
 *                  MiB against the training sequence length T, one line per attention
 *                  kind (parameter `attention`; a run without it is dense, the only kind
 *                  before the parameter) and whatever other knob differs, one panel per
 *                  (model, batch) group that has two or more lengths. T is the parameter
 *                  `seq`; seq=0 (or absent) is resolved from the stored train_tokens as
 *                  train_tokens / (steps x batch), and the title says so. Log axes when
 *                  a range spans more than 10x.
 *   train_methods  (issue 19) one bar per training configuration, stacked by memory
 *                  category (the category rows of train_peak_bytes; what the rows leave
 *                  of the total is drawn as "unattributed"), one chart per (model,
 *                  train_tokens): only runs of one model and one training budget share it.
 *                  A bar is named by its workload and the knobs whose value differs from
 *                  the most common one among the chart's configurations that have them.
 * The largest group keeps the plain name, the others get _2, _3, ... and their key in the
 * title. Without the data each plot is skipped with the reason.
 * What it is not for: the trade-off panels (plot_draw.c), per-run timelines (plot_runs.c)
 * or the accounted-vs-measured check (plot_memcheck.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

#define TM_PEAK "train_peak_bytes"

/* Parameters that never name a knob in a label: the group key, the budget, the seed. */
static const char *const quiet_keys[] = {"model", "steps", "eval_tokens", "seed", "lr", NULL};
/* For train_context also what the axes and the line colour already say. */
static const char *const context_keys[] = {"model",     "steps", "eval_tokens", "seed", "lr",
                                           "attention", "seq",   "batch",       NULL};

static int in_list(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0) return 1;
    return 0;
}

static const char *or_unknown(const char *s)
{
    return s && *s ? s : "?";
}

static const struct pl_run *first_run(const struct pl_ctx *ctx, size_t cfg)
{
    return &ctx->runs[ctx->configs[cfg].runs[0]];
}

/* The label of configuration cfg among cfgs[0..n): its workload when with_workload, then
 * each parameter (not in skip) whose value differs from the most common one among the
 * configurations in cfgs that have that parameter (first seen on a tie). */
static char *knob_label(struct pl_ctx *ctx, size_t cfg, const size_t *cfgs, size_t n,
                        const char *const *skip, int with_workload)
{
    const struct pl_run *r = first_run(ctx, cfg);
    struct pl_buf b = {0};
    if (with_workload) pl_buf_printf(&b, "%s", ctx->configs[cfg].workload);
    for (size_t p = 0; p < r->n_params; p++) {
        const char *key = r->params[p].key, *mode = NULL;
        if (in_list(skip, key)) continue;
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            const char *v = pl_run_param(first_run(ctx, cfgs[i]), key);
            size_t count = 0;
            for (size_t j = 0; j < n && v; j++) {
                const char *o = pl_run_param(first_run(ctx, cfgs[j]), key);
                count += o && strcmp(o, v) == 0;
            }
            if (count > best) best = count, mode = v;
        }
        if (mode && strcmp(mode, pl_s(r->params[p].value)) != 0)
            pl_buf_printf(&b, "%s%s=%s", b.len ? " " : "", key, pl_s(r->params[p].value));
    }
    if (b.oom) ctx->oom = 1;
    if (!b.s) return pl_strdup(ctx, "");
    return b.s;
}

/* Groups items by equal keys: gid[i] numbers the groups largest first (first seen on a
 * tie). Returns the number of groups; keys may be NULL (an allocation that failed). */
static size_t group_keys(char *const *keys, size_t n, size_t *gid)
{
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++)
        gid[i] = (size_t)-1;
    for (;;) {
        size_t best = (size_t)-1, best_n = 0;
        for (size_t i = 0; i < n; i++) {
            if (gid[i] != (size_t)-1) continue;
            size_t cnt = 0;
            for (size_t j = 0; j < n; j++)
                cnt += gid[j] == (size_t)-1 && strcmp(pl_s(keys[i]), pl_s(keys[j])) == 0;
            if (cnt > best_n) best = i, best_n = cnt;
        }
        if (best == (size_t)-1) return n_groups;
        for (size_t j = 0; j < n; j++)
            if (gid[j] == (size_t)-1 && strcmp(pl_s(keys[best]), pl_s(keys[j])) == 0)
                gid[j] = n_groups;
        n_groups++;
    }
}

/* The configurations a plot selects, their group keys and group numbers (group_keys). */
struct tm_sel {
    size_t *cfgs, *gid;
    char **keys;
    size_t n;
};

/* Room for every configuration plus `elem`-sized items of the plot's own; 0, or -1 with
 * ctx->oom set (tm_sel_free is still due). */
static int tm_sel_alloc(struct pl_ctx *ctx, struct tm_sel *s, void **items, size_t elem)
{
    *s = (struct tm_sel){calloc(ctx->n_configs + 1, sizeof *s->cfgs),
                         calloc(ctx->n_configs + 1, sizeof *s->gid),
                         calloc(ctx->n_configs + 1, sizeof *s->keys), 0};
    *items = calloc(ctx->n_configs + 1, elem);
    if (s->cfgs && s->gid && s->keys && *items) return 0;
    ctx->oom = 1;
    return -1;
}

/* Selects configuration cfg under group key `key` (owned by the selection from now on);
 * returns its index. */
static size_t tm_sel_add(struct tm_sel *s, size_t cfg, char *key)
{
    s->cfgs[s->n] = cfg;
    s->keys[s->n] = key;
    return s->n++;
}

/* The members of group g of a selection grouped by group_keys: their configurations into
 * *mine and their items (elem bytes each, from items) into *out, both fresh (free them);
 * their count into *m and the group's key into *key. 0, or -1 with ctx->oom set. */
static int tm_group(struct pl_ctx *ctx, const struct tm_sel *s, size_t g, const void *items,
                    size_t elem, size_t **mine, void **out, size_t *m, const char **key)
{
    *mine = calloc(s->n + 1, sizeof **mine);
    *out = calloc(s->n + 1, elem);
    if (!*mine || !*out) {
        free(*mine), free(*out);
        ctx->oom = 1;
        return -1;
    }
    *m = 0;
    *key = "";
    for (size_t i = 0; i < s->n; i++)
        if (s->gid[i] == g) {
            *key = pl_s(s->keys[i]);
            (*mine)[*m] = s->cfgs[i];
            memcpy((char *)*out + (*m)++ * elem, (const char *)items + i * elem, elem);
        }
    return 0;
}

/* One plot of this file: its file name and title; group i > 0 of it is drawn as base_<i+1>,
 * each titled "what (the group's key)". */
struct tm_plot {
    const char *base, *what;
};

/* The file name (NULL for the first group: base) and title of group i with key `key`; free
 * both. NULL where memory ran out (ctx->oom set by pl_asprintf). */
static void tm_names(struct pl_ctx *ctx, const struct tm_plot *pl, size_t i, const char *key,
                     char **name, char **title)
{
    *name = i ? pl_asprintf(ctx, "%s_%zu", pl->base, i + 1) : NULL;
    *title = pl_asprintf(ctx, "%s (%s)", pl->what, key);
}

static void tm_sel_free(struct tm_sel *s, void *items)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->cfgs), free(s->gid), free(s->keys), free(items);
}

static double median_or_nan(const struct pl_ctx *ctx, size_t cfg, const char *metric,
                            const char *category)
{
    struct pl_stat st;
    return pl_config_stat_cat(ctx, &ctx->configs[cfg], metric, category, &st) ? st.median : NAN;
}

/* ---- train_context -------------------------------------------------------------------- */

struct ctx_pt {
    size_t cfg;
    double T, peak, act; /* MiB */
    int derived;         /* T from train_tokens / (steps x batch) */
    char *series;
};

/* The training sequence length of cfg: the parameter seq when > 0, else train_tokens /
 * (steps x batch) (*derived = 1); NaN when neither is known. */
static double resolve_seq(const struct pl_ctx *ctx, size_t cfg, int *derived)
{
    const struct pl_run *r = first_run(ctx, cfg);
    double seq = pl_run_param_num(r, "seq"), steps = pl_run_param_num(r, "steps"),
           batch = pl_run_param_num(r, "batch"),
           tokens = median_or_nan(ctx, cfg, "train_tokens", NULL);
    *derived = 0;
    if (seq > 0) return seq;
    if (!(steps > 0 && batch > 0 && tokens > 0)) return NAN;
    *derived = 1;
    return tokens / (steps * batch);
}

static int cmp_ctx_pt(const void *a, const void *b)
{
    const struct ctx_pt *p = a, *q = b;
    int c = strcmp(p->series, q->series);
    return c ? c : (p->T > q->T) - (p->T < q->T);
}

/* Range of the positive values of the points' T (which = 0) or memory (1); 0 when none. */
static int pos_range(const struct ctx_pt *pts, size_t n, int which, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v[2] = {which ? pts[i].peak : pts[i].T, which ? pts[i].act : NAN};
        for (int k = 0; k < 2; k++)
            if (v[k] > 0 && isfinite(v[k])) *lo = fmin(*lo, v[k]), *hi = fmax(*hi, v[k]);
    }
    return *lo <= *hi;
}

static void draw_context(struct pl_ctx *ctx, struct ctx_pt *pts, size_t n, const char *name,
                         const char *title)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    qsort(pts, n, sizeof *pts, cmp_ctx_pt);
    fputs("# T\ttrain_peak_MiB\tactivations_MiB\trun_id\tT_from\tseries\n", dat);
    size_t n_series = 0, n_dup = 0;
    int derived = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (prev && strcmp(prev, pts[i].series) == 0 && pts[i - 1].T == pts[i].T) {
            n_dup++; /* another configuration at the same length: the first one drawn */
            continue;
        }
        if (!prev || strcmp(prev, pts[i].series) != 0) fputs(n_series++ ? "\n\n" : "", dat);
        prev = pts[i].series;
        derived |= pts[i].derived;
        fprintf(dat, "%.10g", pts[i].T);
        pl_dat_num(dat, pts[i].peak, "\t");
        pl_dat_num(dat, pts[i].act, "\t");
        fprintf(dat, "\t%lld\t%s\t", first_run(ctx, pts[i].cfg)->id,
                pts[i].derived ? "train_tokens" : "seq");
        pl_dat_text(dat, pts[i].series);
        fputc('\n', dat);
    }
    struct pl_buf extra = {0};
    pl_buf_printf(&extra, "solid: train_peak_bytes; dashed: its activations");
    if (derived) pl_buf_printf(&extra, "; seq=0 resolved as train_tokens / (steps x batch)");
    if (n_dup) pl_buf_printf(&extra, "; %zu configuration(s) at a drawn length left out", n_dup);
    pl_gp_preamble(ctx, gp, name, 1100, 720);
    pl_gp_title(gp, title, ctx, pl_s(extra.s));
    if (extra.oom) ctx->oom = 1;
    pl_buf_free(&extra);
    double lo, hi;
    int logx = pos_range(pts, n, 0, &lo, &hi) && hi > 10 * lo;
    if (logx) fprintf(gp, "set logscale x 2\nset xrange [%.10g:%.10g]\n", lo / 1.3, hi * 1.3);
    int logy = pos_range(pts, n, 1, &lo, &hi) && hi > 10 * lo;
    if (logy)
        fprintf(gp, "set logscale y 10\nset yrange [%.10g:%.10g]\n", lo / 1.5, hi * 1.5);
    else
        fputs("set yrange [0:*]\n", gp);
    fputs("set format x '%g'\nset offsets graph 0.03, graph 0.03, graph 0.05, 0\n"
          "set xlabel 'training sequence length T (tokens)'\n"
          "set ylabel 'train_peak_bytes (MiB)'\nplot ",
          gp);
    prev = NULL;
    for (size_t i = 0, k = 0; i < n; i++) {
        if (prev && strcmp(prev, pts[i].series) == 0) continue;
        prev = pts[i].series;
        fprintf(gp,
                "%s\\\n  '%s.dat' index %zu using 1:2 with linespoints lw 2 pt 7 lc rgb '%s' "
                "title ",
                k ? ", " : "", name, k, pl_color(k));
        pl_gp_str_max(gp, pts[i].series, 48);
        fprintf(gp,
                ", \\\n  '%s.dat' index %zu using 1:%s with linespoints lw 1.5 dt 2 pt 6 lc "
                "rgb '%s' notitle",
                name, k, logy ? "($3>0?$3:NaN)" : "3", pl_color(k));
        k++;
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static void plot_context(struct pl_ctx *ctx, const struct tm_plot *pl)
{
    struct tm_sel sel;
    struct ctx_pt *pts;
    size_t n_no_seq = 0, n_peak = 0;
    if (tm_sel_alloc(ctx, &sel, (void **)&pts, sizeof *pts)) goto out;
    for (size_t i = 0; i < ctx->n_configs; i++) {
        double peak = median_or_nan(ctx, i, TM_PEAK, NULL);
        n_peak += !isnan(peak);
        if (isnan(peak)) continue;
        int derived;
        double T = resolve_seq(ctx, i, &derived);
        if (!(T > 0)) {
            n_no_seq++;
            continue;
        }
        const struct pl_run *r = first_run(ctx, i);
        size_t k =
            tm_sel_add(&sel, i,
                       pl_asprintf(ctx, "model %s, batch %s", or_unknown(pl_run_param(r, "model")),
                                   or_unknown(pl_run_param(r, "batch"))));
        pts[k] = (struct ctx_pt){.cfg = i,
                                 .T = T,
                                 .peak = peak / PL_MIB,
                                 .act = median_or_nan(ctx, i, TM_PEAK, "activations") / PL_MIB,
                                 .derived = derived};
    }
    size_t n = sel.n, *gid = sel.gid;
    if (!n_peak) {
        pl_item_skip(ctx, pl->base, pl->what, "no successful run has %s", TM_PEAK);
        goto out;
    }
    size_t n_groups = group_keys(sel.keys, n, gid), n_drawn = 0, n_one = 0;
    size_t *lengths = calloc(n_groups + 1, sizeof *lengths);
    if (!lengths) {
        ctx->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) { /* distinct lengths per group */
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = gid[j] == gid[i] && pts[j].T == pts[i].T;
        lengths[gid[i]] += !seen;
    }
    for (size_t g = 0; g < n_groups; g++)
        n_one += lengths[g] < 2;
    for (size_t g = 0; g < n_groups; g++) {
        if (lengths[g] < 2) continue;
        size_t *mine, m;
        struct ctx_pt *gpts;
        const char *key;
        if (tm_group(ctx, &sel, g, pts, sizeof *pts, &mine, (void **)&gpts, &m, &key)) break;
        int multi = 0;
        for (size_t i = 1; i < m; i++)
            multi |= strcmp(ctx->configs[mine[i]].workload, ctx->configs[mine[0]].workload) != 0;
        for (size_t i = 0; i < m; i++) {
            const char *att = pl_run_param(first_run(ctx, gpts[i].cfg), "attention");
            char *knobs = knob_label(ctx, gpts[i].cfg, mine, m, context_keys, multi);
            gpts[i].series = pl_asprintf(ctx, "%s%s%s", att && *att ? att : "dense",
                                         knobs && *knobs ? " " : "", pl_s(knobs));
            free(knobs);
            if (!gpts[i].series) gpts[i].series = pl_strdup(ctx, "");
        }
        char *name, *title;
        tm_names(ctx, pl, n_drawn, key, &name, &title);
        if (!ctx->oom) draw_context(ctx, gpts, m, name ? name : pl->base, title ? title : pl->what);
        n_drawn++;
        for (size_t i = 0; i < m; i++)
            free(gpts[i].series);
        free(name), free(title), free(mine), free(gpts);
    }
    free(lengths);
    if (!n_drawn)
        pl_item_skip(ctx, pl->base, pl->what,
                     "fewer than two training sequence lengths (parameter seq) in every (model, "
                     "batch) group: %zu group(s) with one length; %zu configuration(s) without a "
                     "length (no seq > 0, nor train_tokens with steps and batch)",
                     n_one, n_no_seq);
out:
    tm_sel_free(&sel, pts);
}

/* ---- train_methods -------------------------------------------------------------------- */

struct bar {
    size_t cfg;
    double total; /* MiB */
    char *label;
};

/* Bar order: workload, then label. */
static int cmp_bar_label(const struct pl_ctx *ctx, const struct bar *p, const struct bar *q)
{
    int c = strcmp(ctx->configs[p->cfg].workload, ctx->configs[q->cfg].workload);
    return c ? c : strcmp(p->label, q->label);
}

/* Distinct categories of train_peak_bytes among the bars' first runs, in memcat order. */
static size_t bar_categories(const struct pl_ctx *ctx, const struct bar *bars, size_t n,
                             const char **cats, size_t max)
{
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mt_read_run *row = first_run(ctx, bars[i].cfg)->row;
        for (size_t m = 0; m < row->n_metrics; m++) {
            const struct mt_read_metric *x = &row->metrics[m];
            if (!x->category || strcmp(x->name, TM_PEAK) != 0) continue;
            size_t k = 0;
            while (k < nc && strcmp(cats[k], x->category) != 0)
                k++;
            if (k == nc && nc < max) cats[nc++] = x->category;
        }
    }
    for (size_t i = 1; i < nc; i++) /* insertion sort: memcat order, then name */
        for (size_t j = i; j > 0; j--) {
            int a = pl_cat_rank(cats[j - 1]), b = pl_cat_rank(cats[j]);
            if (a < b || (a == b && strcmp(cats[j - 1], cats[j]) <= 0)) break;
            const char *t = cats[j];
            cats[j] = cats[j - 1], cats[j - 1] = t;
        }
    return nc;
}

static void draw_methods(struct pl_ctx *ctx, struct bar *bars, size_t n, const char *name,
                         const char *title)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    for (size_t i = 1; i < n; i++) /* insertion sort: few bars, no qsort context needed */
        for (size_t j = i; j > 0 && cmp_bar_label(ctx, &bars[j - 1], &bars[j]) > 0; j--) {
            struct bar t = bars[j];
            bars[j] = bars[j - 1], bars[j - 1] = t;
        }
    const char *cats[32];
    size_t nc = bar_categories(ctx, bars, n, cats, 32);
    double *rest = calloc(n + 1, sizeof *rest);
    if (!rest) {
        ctx->oom = 1;
        fclose(dat), fclose(gp);
        return;
    }
    int any_rest = 0;
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        for (size_t k = 0; k < nc; k++) {
            double v = median_or_nan(ctx, bars[i].cfg, TM_PEAK, cats[k]);
            sum += isnan(v) ? 0 : v / PL_MIB;
        }
        rest[i] = bars[i].total - sum;
        any_rest |= rest[i] > 1.0 / PL_MIB; /* more than a byte the rows do not name */
    }
    fputs("# run_id\tworkload\tconfiguration\ttrain_peak_MiB", dat);
    for (size_t k = 0; k < nc; k++)
        fprintf(dat, "\t%s_MiB", cats[k]);
    fputs(any_rest ? "\tunattributed_MiB\n" : "\n", dat);
    for (size_t i = 0; i < n; i++) {
        fprintf(dat, "%lld\t", first_run(ctx, bars[i].cfg)->id);
        pl_dat_text(dat, ctx->configs[bars[i].cfg].workload);
        fputc('\t', dat);
        pl_dat_text(dat, bars[i].label);
        pl_dat_num(dat, bars[i].total, "\t");
        for (size_t k = 0; k < nc; k++)
            pl_dat_num(dat, median_or_nan(ctx, bars[i].cfg, TM_PEAK, cats[k]) / PL_MIB, "\t");
        if (any_rest) pl_dat_num(dat, rest[i] > 1.0 / PL_MIB ? rest[i] : 0, "\t");
        fputc('\n', dat);
    }
    free(rest);
    int width = 900 + (int)(n > 12 ? 12 : n) * 60;
    pl_gp_preamble(ctx, gp, name, width, 760);
    pl_gp_title(gp, title, ctx, "stacked: the memory categories of train_peak_bytes");
    fputs("set style data histograms\nset style histogram rowstacked\n"
          "set style fill solid 0.85 border -1\nset boxwidth 0.7\nset yrange [0:*]\n"
          "set xtics rotate by -35 left\nset bmargin 12\n"
          "set ylabel 'train_peak_bytes (MiB)'\nplot ",
          gp);
    for (size_t k = 0; k < nc + (size_t)any_rest; k++) {
        size_t col = 5 + k;
        fprintf(gp, "%s\\\n  '%s.dat' using (valid(%zu)?column(%zu):0)%s lc rgb '%s' title ",
                k ? ", " : "", name, col, col, k ? "" : ":xtic(3)",
                k < nc ? pl_color(k) : "#aaaaaa");
        pl_gp_str(gp, k < nc ? cats[k] : "unattributed");
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static void plot_methods(struct pl_ctx *ctx, const struct tm_plot *pl)
{
    struct tm_sel sel;
    struct bar *bars;
    size_t n_no_budget = 0, n_no_cat = 0;
    if (tm_sel_alloc(ctx, &sel, (void **)&bars, sizeof *bars)) goto out;
    for (size_t i = 0; i < ctx->n_configs; i++) {
        double total = median_or_nan(ctx, i, TM_PEAK, NULL);
        if (isnan(total)) continue;
        const struct mt_read_run *row = first_run(ctx, i)->row;
        int has_cat = 0;
        for (size_t m = 0; m < row->n_metrics && !has_cat; m++)
            has_cat = row->metrics[m].category && row->metrics[m].has &&
                      strcmp(row->metrics[m].name, TM_PEAK) == 0;
        double tokens = median_or_nan(ctx, i, "train_tokens", NULL);
        if (!has_cat || isnan(tokens)) {
            n_no_cat += !has_cat;
            n_no_budget += has_cat;
            continue;
        }
        size_t k =
            tm_sel_add(&sel, i,
                       pl_asprintf(ctx, "model %s, %.0f training tokens",
                                   or_unknown(pl_run_param(first_run(ctx, i), "model")), tokens));
        bars[k] = (struct bar){.cfg = i, .total = total / PL_MIB};
    }
    size_t n = sel.n;
    if (!n) {
        pl_item_skip(ctx, pl->base, pl->what,
                     "no successful run has %s with its memory categories and train_tokens "
                     "(%zu without categories, %zu without train_tokens)",
                     TM_PEAK, n_no_cat, n_no_budget);
        goto out;
    }
    size_t n_groups = group_keys(sel.keys, n, sel.gid);
    for (size_t g = 0; g < n_groups; g++) {
        size_t *mine, m;
        struct bar *gb;
        const char *key;
        if (tm_group(ctx, &sel, g, bars, sizeof *bars, &mine, (void **)&gb, &m, &key)) break;
        for (size_t i = 0; i < m; i++) {
            gb[i].label = knob_label(ctx, gb[i].cfg, mine, m, quiet_keys, 1);
            if (!gb[i].label) gb[i].label = pl_strdup(ctx, "");
        }
        char *name, *title;
        tm_names(ctx, pl, g, key, &name, &title);
        if (!ctx->oom) draw_methods(ctx, gb, m, name ? name : pl->base, title ? title : pl->what);
        for (size_t i = 0; i < m; i++)
            free(gb[i].label);
        free(name), free(title), free(mine), free(gb);
    }
out:
    tm_sel_free(&sel, bars);
}

void pl_draw_trainmem(struct pl_ctx *ctx)
{
    static const struct tm_plot context = {
        "train_context", "Training memory against context length by attention kind"};
    static const struct tm_plot methods = {"train_methods",
                                           "Training memory per method, by memory category"};
    plot_context(ctx, &context);
    plot_methods(ctx, &methods);
}
