/* plots/plot_runs.c — plots of single runs: memory timeline, allocation sites, regions.
 *
 * What it is for: for up to opts->max_runs runs that recorded the data (one run per
 * configuration, any status: a run that died of OOM is the one whose timeline matters),
 * read its samples, alloc_sites (+ stacks and frames) or regions (+ counters) through
 * results/reader.h and draw them. What it is not for: plots across configurations (plot_draw.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

/* Contract in plot_internal.h. */
size_t pl_pick_runs(struct pl_ctx *ctx, pl_probe *probe, size_t *idx, size_t max, size_t *n_more)
{
    size_t n = 0;
    *n_more = 0;
    for (size_t i = 0; i < ctx->n_runs; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(pl_s(ctx->runs[j].config_key), pl_s(ctx->runs[i].config_key)) == 0 &&
                  strcmp(pl_s(ctx->runs[j].status), pl_s(ctx->runs[i].status)) == 0;
        if (dup) continue;
        if (probe(ctx, &ctx->runs[i]) != 1) continue;
        if (n < max)
            idx[n++] = i;
        else
            (*n_more)++;
    }
    return n;
}

/* Contract in plot_internal.h. */
char *pl_run_desc(struct pl_ctx *ctx, const struct pl_run *r)
{
    return pl_asprintf(ctx, "run %lld %s%s%s%s (%s)", r->id, pl_s(r->workload),
                       r->label && *r->label ? " [" : "", pl_s(r->label),
                       r->label && *r->label ? "]" : "", pl_s(r->status));
}

/* Contract in plot_internal.h. */
size_t *pl_runs_buffer(struct pl_ctx *ctx)
{
    size_t *idx = calloc(ctx->n_runs + 1, sizeof *idx);
    if (!idx) ctx->oom = 1;
    return idx;
}

/* Contract in plot_internal.h. */
size_t pl_max_runs(const struct pl_ctx *ctx)
{
    return ctx->opts->max_runs ? ctx->opts->max_runs : 8;
}

/* Contract in plot_internal.h. */
size_t *pl_pick(struct pl_ctx *ctx, pl_probe *probe, size_t *n, size_t *more)
{
    size_t *idx = pl_runs_buffer(ctx);
    *n = *more = 0;
    if (idx) *n = pl_pick_runs(ctx, probe, idx, pl_max_runs(ctx), more);
    return idx;
}

void *pl_pick_records(struct pl_ctx *ctx, pl_probe *probe, size_t elem, size_t **idx, size_t *n,
                      size_t *more, const char *name, const char *title, const char *none)
{
    *idx = pl_pick(ctx, probe, n, more);
    if (!*idx) return NULL;
    if (*n == 0) {
        pl_item_skip(ctx, name, title, "%s", none);
        return NULL;
    }
    void *v = calloc(*n, elem);
    if (!v) ctx->oom = 1;
    return v;
}

/* ---- memory timeline ---------------------------------------------------------------- */

struct series {
    char *name; /* category, or "rss" */
    double *x, *y;
    size_t n, cap;
};

const char *const pl_cats[PL_N_CATS] = {"weights",     "gradients", "optimizer",
                                        "activations", "act_grads", "kv_cache",
                                        "workspace",   "data",      "other"};

/* Contract in plot_internal.h. */
int pl_cat_rank(const char *c)
{
    for (size_t i = 0; i < PL_N_CATS; i++)
        if (strcmp(pl_cats[i], c) == 0) return (int)i;
    return 100;
}

/* Contracts in plot_internal.h. */
void pl_html_top_two(struct pl_ctx *ctx, FILE *f, double *d, const char *none, const char *note)
{
    struct pl_buf b = {0};
    for (int pick = 0; pick < 2; pick++) {
        size_t best = 0;
        for (size_t k = 1; k <= PL_N_CATS; k++)
            if (d[k] > d[best]) best = k;
        if (!(d[best] > 0)) break;
        pl_buf_printf(&b, "%s%s +%.2f MiB", pick ? ", " : "",
                      best == PL_N_CATS ? "untagged" : pl_cats[best], d[best] / PL_MIB);
        d[best] = 0;
    }
    if (!b.len) pl_buf_printf(&b, "%s", none);
    if (note) pl_buf_printf(&b, "%s", note);
    if (b.oom) ctx->oom = 1;
    pl_html(f, b.s);
    free(b.s);
}

void pl_td_mib(FILE *f, int has, double bytes, const char *none)
{
    if (has)
        fprintf(f, "<td class=\"n\">%.3f</td>", bytes / PL_MIB);
    else
        fprintf(f, "<td class=\"none\">%s</td>", none);
}

void pl_td_unavailable(FILE *f, int colspan, const char *why)
{
    fprintf(f, "<td colspan=\"%d\" class=\"none\">unavailable: ", colspan);
    pl_html(f, why);
    fputs("</td></tr>\n", f);
}

void pl_tr_start(FILE *f, const char *desc, const char *text)
{
    fputs("<tr><td>", f);
    pl_html(f, desc);
    fputs("</td><td>", f);
    pl_html(f, text);
}

void pl_dat_cum_header(FILE *dat)
{
    for (size_t k = 0; k < PL_N_CATS; k++)
        fprintf(dat, "\tcum_%s_MiB", pl_cats[k]);
    fputs("\tcum_untagged_MiB", dat);
}

void pl_gp_hbar_head(FILE *gp, const char *xlabel, size_t rows)
{
    fprintf(gp,
            "set xlabel '%s'\nset xrange [0:*]\nset offsets 0, graph 0.08, 0, 0\nset yrange "
            "[-0.7:%zu.7]\nset grid noytics\nset style fill solid 0.85 noborder\nset key outside "
            "top center horizontal\nset lmargin at screen 0.40\nset ytics (",
            xlabel, rows - 1);
}

void pl_gp_ytic(FILE *gp, int first, const char *desc, const char *what, size_t y)
{
    char tic[700];
    snprintf(tic, sizeof tic, "%s: %s", pl_s(desc), pl_s(what));
    fputs(first ? "" : ", ", gp);
    pl_gp_str_max(gp, tic, 64);
    fprintf(gp, " %zu", y);
}

void pl_gp_cat_box(FILE *gp, const char *lead, size_t k, size_t col, const char *y, const char *lo,
                   const char *hi)
{
    char lower[16];
    snprintf(lower, sizeof lower, k ? "%zu" : "(0)", col - 1);
    fprintf(gp,
            "%s using %s:(Y($1)%s):%s:%zu:(Y($1)%s):(Y($1)%s) with boxxyerror lc rgb '%s' title "
            "'%s'",
            lead, lower, y, lower, col, lo, hi, pl_color(k),
            k < PL_N_CATS ? pl_cats[k] : "untagged");
}

void pl_table(struct pl_ctx *ctx, const char *head, const void *recs, size_t n, size_t elem,
              pl_table_row_fn *row, struct pl_buf *dest, size_t more, const char *what)
{
    struct pl_html_frag fr;
    FILE *f = pl_html_open(ctx, &fr);
    if (!f) return;
    fputs(head, f);
    for (size_t i = 0; i < n; i++)
        row(ctx, f, (const char *)recs + i * elem);
    fputs("</table>\n", f);
    if (more) fprintf(f, "<p>%zu more runs %s; raise --max-runs to list them.</p>\n", more, what);
    pl_html_close(ctx, f, &fr, dest);
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *p = a, *q = b;
    int ra = pl_cat_rank(p->name), rb = pl_cat_rank(q->name);
    return ra != rb ? ra - rb : strcmp(p->name, q->name);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Value of a step series at t: the last sample at or before t, else 0. */
static double step_at(const struct series *s, double t, size_t *cursor)
{
    while (*cursor < s->n && s->x[*cursor] <= t)
        (*cursor)++;
    return *cursor ? s->y[*cursor - 1] : 0.0;
}

struct interval {
    double t0, t1;
    char *region;
};

/* The series of a memory timeline: the live heap (total and per category) and RSS. */
static const char *const timeline_series[] = {"heap.live", "rss"};

static void timeline_one(struct pl_ctx *ctx, const struct pl_run *r)
{
    struct series *ser = NULL, rss = {0}, total = {0};
    size_t n_ser = 0, ser_cap = 0;
    struct interval *iv = NULL;
    size_t n_iv = 0, iv_cap = 0;
    double *ts = NULL;
    size_t n_ts = 0, ts_cap = 0;
    char *name = pl_asprintf(ctx, "timeline_run%lld", r->id);
    char *desc = pl_run_desc(ctx, r);
    char *title = pl_asprintf(ctx, "Memory timeline: %s", pl_s(desc));
    struct mt_read_sample *smp;
    size_t n_smp;
    if (mt_read_samples(ctx->rd, r->id, timeline_series, 2, &smp, &n_smp) != 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title), "cannot read samples: %s",
                     mt_store_error(ctx->st));
        goto out;
    }
    const char *cur_region = NULL;
    for (size_t k = 0; k < n_smp && !ctx->oom; k++) {
        const struct mt_read_sample *p = &smp[k];
        double x = p->x, y = p->y;
        const char *reg = p->region;
        struct series *s = strcmp(p->series, "rss") == 0 ? &rss : &total;
        if (s == &total && p->category) {
            const char *cat = p->category;
            s = NULL;
            for (size_t i = 0; i < n_ser && !s; i++)
                if (strcmp(ser[i].name, cat) == 0) s = &ser[i];
            if (!s) {
                struct series *g = pl_grow(ctx, ser, &ser_cap, n_ser + 1, sizeof *ser);
                if (!g) break;
                ser = g;
                s = &ser[n_ser++];
                memset(s, 0, sizeof *s);
                s->name = pl_strdup(ctx, cat);
            }
        }
        if (s != &rss) { /* the stacked block's times */
            double *g = pl_grow(ctx, ts, &ts_cap, n_ts + 1, sizeof *ts);
            if (!g) break;
            ts = g;
            ts[n_ts++] = x;
        }
        size_t cap = s->cap;
        double *gx = pl_grow(ctx, s->x, &cap, s->n + 1, sizeof *gx);
        if (gx) s->x = gx;
        cap = s->cap;
        double *gy = pl_grow(ctx, s->y, &cap, s->n + 1, sizeof *gy);
        if (!gx || !gy) break;
        s->y = gy;
        s->cap = cap;
        s->x[s->n] = x;
        s->y[s->n++] = y;
        /* Region intervals: a change of the samples' region closes the current one. */
        if (n_iv > 0 && cur_region) iv[n_iv - 1].t1 = x;
        if (reg && (!cur_region || strcmp(reg, cur_region) != 0)) {
            struct interval *g = pl_grow(ctx, iv, &iv_cap, n_iv + 1, sizeof *iv);
            if (!g) break;
            iv = g;
            iv[n_iv++] = (struct interval){.t0 = x, .t1 = x, .region = pl_strdup(ctx, reg)};
            cur_region = iv[n_iv - 1].region;
        } else if (!reg) {
            cur_region = NULL;
        }
    }
    if (ctx->oom) goto out;
    /* Without categories, the heap total stands alone; without the heap profiler, RSS. */
    if (n_ser == 0 && total.n > 0) {
        ser = malloc(sizeof *ser);
        if (!ser) {
            ctx->oom = 1;
            goto out;
        }
        ser[n_ser++] = total;
        ser[0].name = pl_strdup(ctx, "heap (all categories)");
        memset(&total, 0, sizeof total);
    }
    if (n_ser == 0 && rss.n == 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title), "run %lld has no heap.live or rss samples",
                     r->id);
        goto out;
    }
    /* Categories that never held a byte would only crowd the key. */
    for (size_t i = 0; i < n_ser;) {
        double max = 0;
        for (size_t k = 0; k < ser[i].n; k++)
            max = fmax(max, ser[i].y[k]);
        if (max > 0 || n_ser == 1) {
            i++;
            continue;
        }
        free(ser[i].name);
        free(ser[i].x);
        free(ser[i].y);
        ser[i] = ser[--n_ser];
    }
    if (n_ser > 1) qsort(ser, n_ser, sizeof *ser, cmp_series);
    if (n_ts > 1) qsort(ts, n_ts, sizeof *ts, cmp_dbl); /* NULL when RSS stands alone */
    FILE *dat, *gp;
    if (pl_open_pair(ctx, pl_s(name), pl_s(title), &dat, &gp)) goto out;
    /* Block 0: cumulative stacked MiB per category at every sample time. */
    fputs("# t_s", dat);
    for (size_t i = 0; i < n_ser; i++)
        fprintf(dat, "\tcum_%s_MiB", ser[i].name);
    fputc('\n', dat);
    size_t *cur = calloc(n_ser, sizeof *cur);
    for (size_t k = 0; cur && k < n_ts; k++) {
        if (k > 0 && ts[k] == ts[k - 1]) continue;
        double sum = 0;
        fprintf(dat, "%.10g", ts[k]);
        for (size_t i = 0; i < n_ser; i++) {
            sum += step_at(&ser[i], ts[k], &cur[i]) / PL_MIB;
            fprintf(dat, "\t%.10g", sum);
        }
        fputc('\n', dat);
    }
    free(cur);
    if (n_ser == 0) fputs("NaN\n", dat); /* keep the block, so the indices stay put */
    /* Block 1: RSS. Block 2: region intervals. */
    fputs("\n\n# t_s\trss_MiB\n", dat);
    for (size_t k = 0; k < rss.n; k++)
        fprintf(dat, "%.10g\t%.10g\n", rss.x[k], rss.y[k] / PL_MIB);
    if (rss.n == 0) fputs("NaN\tNaN\n", dat);
    fputs("\n\n# t0_s\tt1_s\tregion\n", dat);
    for (size_t k = 0; k < n_iv; k++) {
        fprintf(dat, "%.10g\t%.10g\t", iv[k].t0, iv[k].t1);
        pl_dat_text(dat, iv[k].region);
        fputc('\n', dat);
    }
    fclose(dat);

    pl_gp_preamble(ctx, gp, name, 1100, 650);
    pl_gp_title(gp, title, ctx,
                rss.n ? (n_ser ? NULL : "no heap samples (run without the heap profiler)")
                      : "no rss samples");
    fputs("set xlabel 'time since run start (s)'\nset ylabel 'memory (MiB)'\nset yrange [0:*]\n"
          "set style fill transparent solid 0.75 noborder\n",
          gp);
    /* Shade regions: one colour per distinct region name, each named once in the key. */
    char **names = calloc(n_iv + 1, sizeof *names);
    size_t n_names = 0;
    for (size_t k = 0; names && k < n_iv && k < 2000; k++) {
        size_t c = 0;
        while (c < n_names && strcmp(names[c], iv[k].region) != 0)
            c++;
        if (c == n_names) names[n_names++] = iv[k].region;
        if (iv[k].t1 > iv[k].t0)
            fprintf(gp,
                    "set object %zu rect from %.10g, graph 0 to %.10g, graph 1 fc rgb '%s' "
                    "fs transparent solid 0.12 noborder behind\n",
                    k + 1, iv[k].t0, iv[k].t1, pl_color(c + 5));
    }
    fputs("plot ", gp);
    for (size_t i = 0; i < n_ser; i++) {
        /* filled between the previous cumulative column (or 0) and this one */
        char lower[32];
        snprintf(lower, sizeof lower, i ? "%zu" : "(0)", i + 1);
        fprintf(gp, "%s'%s.dat' index 0 using 1:%s:%zu with filledcurves lc rgb '%s' title ",
                i ? ", \\\n  " : "", name, lower, i + 2, pl_color(i));
        pl_gp_str_max(gp, ser[i].name, 30);
    }
    if (rss.n)
        fprintf(gp, "%s'%s.dat' index 1 using 1:2 with lines lw 2 lc rgb '#000000' title 'rss'",
                n_ser ? ", \\\n  " : "", name);
    for (size_t c = 0; c < n_names && c < 12; c++) {
        fprintf(gp, ", \\\n  keyentry with boxes fs solid 0.25 fc rgb '%s' title ",
                pl_color(c + 5));
        pl_gp_str_max(gp, names[c], 30);
    }
    fputc('\n', gp);
    free(names);
    fclose(gp);
    pl_run_gnuplot(ctx, name, title);
out:
    for (size_t i = 0; i < n_ser; i++) {
        free(ser[i].name);
        free(ser[i].x);
        free(ser[i].y);
    }
    free(ser);
    free(rss.x);
    free(rss.y);
    free(total.x);
    free(total.y);
    for (size_t k = 0; k < n_iv; k++)
        free(iv[k].region);
    free(iv);
    free(ts);
    free(name);
    free(desc);
    free(title);
}

/* ---- allocation sites --------------------------------------------------------------- */

/* Frames that say where memory was asked for, not how it was handed out. */
static int boring_frame(const char *fn, const char *module)
{
    static const char *const exact[] = {"malloc",
                                        "calloc",
                                        "realloc",
                                        "free",
                                        "reallocarray",
                                        "posix_memalign",
                                        "aligned_alloc",
                                        "memalign",
                                        "valloc",
                                        "pvalloc",
                                        "strdup",
                                        "strndup",
                                        "mmap",
                                        "mmap64",
                                        "operator new",
                                        "operator new[]",
                                        NULL};
    static const char *const prefix[] = {
        "mt_heap_", "mt_memcat_",    "__libc_",         "__GI_",     "_dl_",  "_Znw",
        "_Zna",     "operator new(", "operator new[](", "heap_hook", "hook_", NULL};
    if (!fn || !*fn) return 1;
    for (size_t i = 0; exact[i]; i++)
        if (strcmp(fn, exact[i]) == 0) return 1;
    for (size_t i = 0; prefix[i]; i++)
        if (strncmp(fn, prefix[i], strlen(prefix[i])) == 0) return 1;
    /* the preloaded heap profiler's own frames */
    const char *base = module ? strrchr(module, '/') : NULL;
    base = base ? base + 1 : module;
    return base && strstr(base, "heap") && strstr(base, ".so");
}

/* "function (file:line)" of the innermost interesting frame of a stack. */
static char *site_label(struct pl_ctx *ctx, long long stack_id)
{
    char *label = NULL, *fallback = NULL;
    struct mt_read_frame *fr;
    size_t n_fr;
    if (mt_read_stack(ctx->rd, stack_id, &fr, &n_fr) != 0) n_fr = 0;
    for (size_t i = 0; i < n_fr && !label; i++) {
        const char *fn = fr[i].function, *mod = fr[i].module, *file = fr[i].file;
        int line = fr[i].line < 0 ? 0 : fr[i].line; /* an unknown line reads as 0 */
        const char *fbase = file ? strrchr(file, '/') : NULL;
        fbase = fbase ? fbase + 1 : file;
        if (!fallback && (fn || mod)) fallback = pl_asprintf(ctx, "%s", fn ? fn : mod);
        if (boring_frame(fn, mod)) continue;
        if (fbase)
            label = pl_asprintf(ctx, "%s (%s:%d)", fn, fbase, line);
        else
            label = pl_asprintf(ctx, "%s", fn);
    }
    if (label) {
        free(fallback);
        return label;
    }
    return fallback ? fallback : pl_asprintf(ctx, "stack %lld (not symbolized)", stack_id);
}

#define MAX_SITES 15

static void sites_one(struct pl_ctx *ctx, const struct pl_run *r)
{
    char *name = pl_asprintf(ctx, "sites_run%lld", r->id);
    char *desc = pl_run_desc(ctx, r);
    char *title = pl_asprintf(ctx, "Top allocation sites at peak: %s", pl_s(desc));
    FILE *dat = NULL, *gp = NULL;
    struct mt_read_site *top;
    size_t n_top;
    struct row {
        char *label;
        const char *cat;
        double peak, bytes, allocs;
    } rows[MAX_SITES];
    size_t n = 0;
    int estimated = 0;
    if (mt_read_top_sites(ctx->rd, r->id, MAX_SITES, &top, &n_top) != 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title), "cannot read alloc_sites: %s",
                     mt_store_error(ctx->st));
        goto out;
    }
    for (; n < n_top && n < MAX_SITES; n++) {
        rows[n].label = site_label(ctx, top[n].stack_id);
        rows[n].cat = top[n].category;
        rows[n].peak = top[n].peak_bytes;
        rows[n].bytes = top[n].bytes;
        rows[n].allocs = top[n].allocs;
        estimated |= top[n].estimated;
    }
    if (n == 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title),
                     "no allocation site of run %lld was live at the peak", r->id);
        goto out;
    }
    if (pl_open_pair(ctx, pl_s(name), pl_s(title), &dat, &gp)) goto free_rows;
    fputs("# rank\tpeak_MiB\ttotal_MiB\tallocs\tcategory\tsite (largest first)\n", dat);
    pl_gp_preamble(ctx, gp, name, 1100, 160 + 34 * (int)n);
    pl_gp_title(gp, title, ctx, estimated ? "sampled profile: bytes are estimates" : NULL);
    fputs("set xlabel 'bytes live at the global heap peak (MiB)'\nset xrange [0:*]\n"
          "set offsets 0, graph 0.05, 0, 0\n"
          "set yrange [-0.7:",
          gp);
    fprintf(gp,
            "%zu.7]\nset key off\nset grid noytics\nset style fill solid 0.85 noborder\n"
            "set lmargin at screen 0.42\nset ytics (",
            n - 1);
    for (size_t i = 0; i < n; i++) {
        fprintf(dat, "%zu\t%.10g\t%.10g\t%.0f\t", i, rows[i].peak / PL_MIB, rows[i].bytes / PL_MIB,
                rows[i].allocs);
        pl_dat_text(dat, rows[i].cat);
        fputc('\t', dat);
        pl_dat_text(dat, rows[i].label);
        fputc('\n', dat);
        char tic[600];
        snprintf(tic, sizeof tic, "%s [%s]", pl_s(rows[i].label), pl_s(rows[i].cat));
        fputs(i ? ", " : "", gp);
        pl_gp_str_max(gp, tic, 60);
        fprintf(gp, " %zu", n - 1 - i);
    }
    fprintf(gp,
            ")\nplot '%s.dat' using (0):(%zu-$1):(0):2:(%zu-$1-0.38):(%zu-$1+0.38) "
            "with boxxyerror lc rgb '%s'\n",
            name, n - 1, n - 1, n - 1, pl_color(0));
    pl_finish(ctx, &dat, &gp, name, title);
free_rows:
    for (size_t i = 0; i < n; i++)
        free(rows[i].label);
out:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    free(name);
    free(desc);
    free(title);
}

/* ---- per-region cost ---------------------------------------------------------------- */

#define MAX_REGIONS 25
#define MAX_COUNTERS 3

/* One counter over the regions of a run: how many regions have a value, and the first
 * reason (byte order) of those that do not. */
struct counter_sum {
    const char *name;
    size_t n_values;
    const char *unavailable;
};

static int cmp_counter_sum(const void *a, const void *b)
{
    const struct counter_sum *x = a, *y = b;
    if (x->n_values != y->n_values) return x->n_values > y->n_values ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Most expensive first (ties in path order), then path order. */
static int cmp_region_cost(const void *a, const void *b)
{
    const struct mt_read_region *x = *(const struct mt_read_region *const *)a,
                                *y = *(const struct mt_read_region *const *)b;
    if (x->wall_s != y->wall_s) return x->wall_s > y->wall_s ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int cmp_region_path(const void *a, const void *b)
{
    return strcmp((*(const struct mt_read_region *const *)a)->path,
                  (*(const struct mt_read_region *const *)b)->path);
}

static double counter_value(const struct mt_read_region *g, const char *counter)
{
    for (size_t k = 0; k < g->n_counters; k++)
        if (g->counters[k].has && !g->counters[k].category &&
            strcmp(g->counters[k].name, counter) == 0)
            return g->counters[k].value;
    return NAN;
}

/* The counters of the run's regions (any rank), those with values first; the heap peaks
 * are memory_check's. */
static struct counter_sum *sum_counters(struct pl_ctx *ctx, const struct mt_read_region *regs,
                                        size_t n_regs, size_t *n_out)
{
    size_t n = 0, cap = 0;
    struct counter_sum *v = NULL;
    *n_out = 0;
    for (size_t i = 0; i < n_regs; i++)
        for (size_t k = 0; k < regs[i].n_counters; k++) {
            const struct mt_read_counter *c = &regs[i].counters[k];
            if (c->category || strcmp(c->name, "heap_peak_bytes") == 0) continue;
            size_t j = 0;
            while (j < n && strcmp(v[j].name, c->name) != 0)
                j++;
            if (j == n) {
                struct counter_sum *g = pl_grow(ctx, v, &cap, n + 1, sizeof *v);
                if (!g) {
                    free(v);
                    return NULL;
                }
                v = g;
                v[n++] = (struct counter_sum){.name = c->name};
            }
            v[j].n_values += c->has;
            if (c->unavailable &&
                (!v[j].unavailable || strcmp(c->unavailable, v[j].unavailable) < 0))
                v[j].unavailable = c->unavailable;
        }
    if (n > 1) qsort(v, n, sizeof *v, cmp_counter_sum);
    *n_out = n;
    return v;
}

static void regions_one(struct pl_ctx *ctx, const struct pl_run *r)
{
    char *name = pl_asprintf(ctx, "regions_run%lld", r->id);
    char *desc = pl_run_desc(ctx, r);
    char *title = pl_asprintf(ctx, "Cost per region: %s", pl_s(desc));
    const char *counters[MAX_COUNTERS] = {0};
    size_t nc = 0;
    struct pl_buf note = {0};
    FILE *dat = NULL, *gp = NULL;
    struct {
        const char *path;
        double wall, c[MAX_COUNTERS];
    } rows[MAX_REGIONS];
    size_t n = 0, n_regs = 0, n_low = 0, n_sums = 0;
    struct mt_read_region *regs;
    const struct mt_read_region **low = NULL;
    struct counter_sum *sums = NULL;
    if (mt_read_regions(ctx->rd, r->id, &regs, &n_regs) != 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title), "cannot read regions: %s",
                     mt_store_error(ctx->st));
        goto out;
    }
    /* The most expensive regions of the lowest rank (regions come in rank order), shown in
     * path order. */
    low = calloc(n_regs + 1, sizeof *low);
    sums = sum_counters(ctx, regs, n_regs, &n_sums);
    if (!low || ctx->oom) {
        ctx->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < n_regs && regs[i].rank == regs[0].rank; i++)
        low[n_low++] = &regs[i];
    qsort(low, n_low, sizeof *low, cmp_region_cost);
    if (n_low > MAX_REGIONS) n_low = MAX_REGIONS;
    qsort(low, n_low, sizeof *low, cmp_region_path);
    size_t unavailable = 0;
    for (size_t k = 0; k < n_sums; k++) {
        if (sums[k].n_values > 0 && nc < MAX_COUNTERS) {
            counters[nc++] = sums[k].name;
        } else if (sums[k].n_values == 0) {
            if (unavailable++ == 0)
                pl_buf_printf(&note, "unavailable: %s (%s)", sums[k].name,
                              pl_s(sums[k].unavailable));
        }
    }
    if (unavailable > 1) pl_buf_printf(&note, " and %zu more counters", unavailable - 1);
    for (; n < n_low; n++) {
        rows[n].path = low[n]->path;
        rows[n].wall = low[n]->wall_s;
        for (size_t c = 0; c < nc; c++)
            rows[n].c[c] = counter_value(low[n], counters[c]);
    }
    if (n == 0) {
        pl_item_skip(ctx, pl_s(name), pl_s(title), "run %lld has no regions", r->id);
        goto out;
    }
    if (pl_open_pair(ctx, pl_s(name), pl_s(title), &dat, &gp)) goto out;
    fputs("# row\twall_s", dat);
    for (size_t c = 0; c < nc; c++)
        fprintf(dat, "\t%s", counters[c]);
    fputs("\tpath\n", dat);
    for (size_t i = 0; i < n; i++) {
        fprintf(dat, "%zu\t%.10g", i, rows[i].wall);
        for (size_t c = 0; c < nc; c++)
            fprintf(dat, isnan(rows[i].c[c]) ? "\tNaN" : "\t%.10g", rows[i].c[c]);
        fputc('\t', dat);
        pl_dat_text(dat, rows[i].path);
        fputc('\n', dat);
    }
    int width = 900 + 380 * (int)nc;
    pl_gp_preamble(ctx, gp, name, width, 200 + 30 * (int)n);
    fprintf(gp,
            "set key off\nset grid noytics\nset style fill solid 0.85 noborder\n"
            "set yrange [%zu.6:-0.6]\nset tmargin 5\nset multiplot layout 1,%zu title ",
            n - 1, nc + 1);
    pl_gp_title_expr(gp, title, ctx, note.len ? note.s : (nc ? NULL : "no counters recorded"));
    fputc('\n', gp);
    double left = 0.36 * 900.0 / width;
    double panel = (0.97 - left) / (double)(nc + 1);
    for (size_t c = 0; c <= nc; c++) {
        fprintf(gp, "set lmargin at screen %.4f\nset rmargin at screen %.4f\n",
                left + panel * (double)c, left + panel * (double)(c + 1) - 0.02);
        /* A panel whose values are all zero (cpu_migrations on a quiet run) gets a range
         * of its own and says so, instead of gnuplot's empty [0:0] and its warning. */
        double top = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = c == 0 ? rows[i].wall : rows[i].c[c - 1];
            if (v > top) top = v;
        }
        const char *zero = top > 0.0 ? "" : ": 0 in every region";
        if (c == 0) {
            fputs("set ytics (", gp);
            for (size_t i = 0; i < n; i++) {
                fputs(i ? ", " : "", gp);
                pl_gp_str_max(gp, rows[i].path, 45);
                fprintf(gp, " %zu", i);
            }
            fprintf(gp, ")\nset xlabel 'wall time (s)%s'\n", zero);
        } else {
            fputs("set ytics autofreq\nset format y ''\nset xlabel ", gp);
            pl_gp_str_max(gp, counters[c - 1], 40);
            fprintf(gp, " . ' (count)%s'\n", zero);
        }
        fprintf(gp,
                "set xrange [0:%s]\nplot '%s.dat' using (0):1:(0):%zu:($1-0.38):($1+0.38) "
                "with boxxyerror lc rgb '%s'\n",
                top > 0.0 ? "*" : "1", name, c + 2, pl_color(c));
    }
    fputs("unset multiplot\n", gp);
    pl_finish(ctx, &dat, &gp, name, title);
out:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    free(low);
    free(sums);
    pl_buf_free(&note);
    free(name);
    free(desc);
    free(title);
}

/* Draws `one` for each run picked by `probe`; `name` and `what` name the skip items. */
static void per_run(struct pl_ctx *ctx, pl_probe *probe, const char *name, const char *what,
                    void (*one)(struct pl_ctx *, const struct pl_run *))
{
    size_t n, more, *idx = pl_pick(ctx, probe, &n, &more);
    if (!idx) return;
    if (n == 0) pl_item_skip(ctx, name, what, "no run recorded %s", what);
    for (size_t i = 0; i < n; i++)
        one(ctx, &ctx->runs[idx[i]]);
    if (more) {
        char *more_name = pl_asprintf(ctx, "%s_more", name);
        pl_item_skip(ctx, pl_s(more_name), what,
                     "%zu more runs have %s; raise max_runs to draw them", more, what);
        free(more_name);
    }
    free(idx);
}

static int has_timeline(struct pl_ctx *ctx, const struct pl_run *r)
{
    return mt_read_has_samples(ctx->rd, r->id, timeline_series, 2);
}

static int has_sites(struct pl_ctx *ctx, const struct pl_run *r)
{
    return mt_read_has(ctx->rd, r->id, MT_READ_SITES);
}

static int has_regions(struct pl_ctx *ctx, const struct pl_run *r)
{
    return mt_read_has(ctx->rd, r->id, MT_READ_REGIONS);
}

void pl_draw_timelines(struct pl_ctx *ctx)
{
    per_run(ctx, has_timeline, "timeline", "heap.live or rss samples", timeline_one);
}

void pl_draw_sites(struct pl_ctx *ctx)
{
    per_run(ctx, has_sites, "sites", "allocation sites", sites_one);
}

void pl_draw_regions(struct pl_ctx *ctx)
{
    per_run(ctx, has_regions, "regions", "regions", regions_one);
}
