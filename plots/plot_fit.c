/* plots/plot_fit.c — the report's "what fits" page (issue 21): what `memtrade fit
 * --verify` chose per budget, and how it compares with what was measured.
 *
 * What it is for: the runs `memtrade fit --verify` started (label "fit goal=... budget=...
 * family=... predicted_bytes=... runtime_bytes=... metric=... predicted_accuracy=...
 * kv_delta=..."), grouped by (model, goal), every run of the database read through the
 * read API (fit's runs share configurations, so the report's one-run-per-configuration
 * selection would hide budgets):
 *   fit_bytes     per budget two stacked bars: the prediction (the plan stored with the
 *                 run, by category, without the corpus; the runtime term on top) and the
 *                 measurement (infer_peak_bytes or train_peak_bytes by category), the budget
 *                 as a mark
 *   fit_accuracy  the accuracy metric against the budget: fit's choice as measured and as
 *                 predicted, and per family the best configuration measured within each
 *                 budget (fp32 / uniform / mixed for serving, precision-optimizer for
 *                 training), on the same model and scored text
 * and a table per group (ctx->fit_table). Groups past the first get `_2`, `_3`, ...
 * What it is not for: choosing (harness/fit.c), or the other trade-off plots.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

#include "plot_internal.h"

struct fit_pt {
    const struct mt_read_run *run;
    const char *model, *eval;
    char goal[16], family[40], metric[24];
    double budget, pred_bytes, runtime, pred_acc, kv_delta, meas_bytes, meas_acc;
};

/* The value of `key=` in a fit label (space-separated pairs) into buf; 0 when absent. */
static int label_str(const char *label, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = label; p && *p; p = strchr(p, ' ')) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(buf, cap, "%.*s", (int)strcspn(p + kl + 1, " "), p + kl + 1);
            return 1;
        }
    }
    return 0;
}

static double label_num(const char *label, const char *key)
{
    char b[64], *end;
    if (!label_str(label, key, b, sizeof b)) return NAN;
    double v = strtod(b, &end);
    return *end == 0 && end != b ? v : NAN;
}

static const char *param(const struct mt_read_run *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].key, key)) return r->params[i].value;
    return NULL;
}

static double metric(const struct mt_read_run *r, const char *name, const char *cat)
{
    for (size_t i = 0; i < r->n_metrics; i++) {
        const struct mt_read_metric *m = &r->metrics[i];
        if (strcmp(m->name, name) || !m->has) continue;
        if (cat ? m->category && !strcmp(m->category, cat) : !m->category || !m->category[0])
            return m->value;
    }
    return NAN;
}

/* The family fit gives a run's configuration for `goal` (serving, training, finetune),
 * into buf; NULL when not one fit searches for that goal. */
static const char *family_of(const struct mt_read_run *r, const char *goal, char *buf, size_t cap)
{
    if (strcmp(r->status, "ok")) return NULL;
    if (!strcmp(goal, "serving")) {
        if (!strcmp(r->workload, "baseline")) return "fp32";
        if (strcmp(r->workload, "quantize")) return NULL;
        const char *lb = param(r, "layer_bits");
        return lb && *lb ? "mixed" : "uniform";
    }
    if (!strcmp(goal, "finetune")) {
        if (strcmp(r->workload, "lora")) return NULL;
        return !strcmp(pl_s(param(r, "base")), "nf4") ? "fine-tune-qlora" : "fine-tune-lora";
    }
    if (param(r, "ranks") && param(r, "optimizer")) { /* a multi-rank workload (fit --ranks) */
        const char *st = param(r, "stage");
        snprintf(buf, cap, "%.20s%s%.8s", r->workload, st ? "-" : "", st ? st : "");
        return buf;
    }
    if (strcmp(r->workload, "mixed_precision")) return NULL;
    snprintf(buf, cap, "%s-%s", pl_s(param(r, "precision")), pl_s(param(r, "optimizer")));
    return buf;
}

static int cmp_budget(const void *a, const void *b)
{
    const struct fit_pt *p = a, *q = b;
    int d = strcmp(p->model, q->model);
    if (!d) d = strcmp(p->goal, q->goal);
    if (!d) d = (p->budget > q->budget) - (p->budget < q->budget);
    return d ? d : (p->run->id > q->run->id) - (p->run->id < q->run->id);
}

/* Both plots' script: one size, the title with its note. */
static void script_head(struct pl_ctx *ctx, FILE *gp, const char *name, const char *title,
                        const char *note)
{
    pl_gp_preamble(ctx, gp, name, 1100, 640);
    pl_gp_title(gp, title, ctx, note);
}

static void bytes_plot(struct pl_ctx *ctx, const struct fit_pt *pt, size_t n, const char *name,
                       const char *title, int serving)
{
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    const char *peak = serving ? "infer_peak_bytes" : "train_peak_bytes";
    const char *plan = serving ? "plan_infer_peak_bytes" : "plan_train_peak_bytes";
    fputs("# x\tbudget_MiB\tkind\tcumulative MiB per category (memcat order), then runtime\n", dat);
    for (size_t i = 0; i < n; i++)
        for (int kind = 0; kind < 2; kind++) {
            const struct mt_read_run *r = pt[i].run;
            const char *cb = param(r, "corpus.bytes");
            double corpus = cb ? strtod(cb, NULL) : NAN;
            fprintf(dat, "%.2f\t%.6f\t%s", (double)i + (kind ? 0.2 : -0.2), pt[i].budget / PL_MIB,
                    kind ? "measured" : "predicted");
            double cum = 0.0;
            for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
                double v = kind ? metric(r, peak, mt_mem_cat_names[c])
                                : metric(r, plan, mt_mem_cat_names[c]);
                if (!kind && c == MT_MEM_DATA && !isnan(corpus) && !isnan(v)) v -= corpus;
                cum += isnan(v) ? 0.0 : v;
                pl_dat_num(dat, cum / PL_MIB, "\t");
            }
            pl_dat_num(dat, (cum + (kind ? 0.0 : pt[i].runtime)) / PL_MIB, "\t");
            fputc('\n', dat);
        }
    script_head(ctx, gp, name, title, "left bar of each budget: predicted; right: measured");
    /* two boxes per budget at i -+ 0.2, budgets as named ticks */
    fprintf(gp,
            "set style fill solid 0.85 border lc rgb '#333333'\nset boxwidth 0.36\n"
            "set key outside right top\nset ylabel 'MiB'\nset xlabel 'budget (MiB)'\n"
            "set yrange [0:*]\nset xrange [-0.7:%.1f]\nset xtics (",
            (double)n - 0.3);
    for (size_t i = 0; i < n; i++)
        fprintf(gp, "%s'%.3g' %zu", i ? ", " : "", pt[i].budget / PL_MIB, i);
    fputs(")\nplot ", gp);
    /* the tallest cumulative first, each next one drawn over it */
    fprintf(gp, "'%s.dat' using 1:%d with boxes lc rgb '#bbbbbb' title 'runtime term'", name,
            4 + MT_MEM_CAT_COUNT);
    for (int c = MT_MEM_CAT_COUNT - 1; c >= 0; c--)
        fprintf(gp, ", \\\n  '%s.dat' using 1:%d with boxes lc rgb '%s' title '%s'", name, 4 + c,
                pl_color((size_t)c), mt_mem_cat_names[c]);
    fprintf(gp, ", \\\n  '%s.dat' using 1:2 with points pt 6 ps 2 lc rgb 'black' title 'budget'\n",
            name);
    pl_finish(ctx, &dat, &gp, name, title);
}

/* The best measured accuracy of family `fam` within `budget` on the group's model and
 * scored text; NaN when none fits. */
static double family_best(const struct mt_read_run *runs, size_t nr, const struct fit_pt *g,
                          const char *fam, double budget, int serving)
{
    double best = NAN;
    char buf[64];
    for (size_t i = 0; i < nr; i++) {
        const struct mt_read_run *r = &runs[i];
        const char *f = family_of(r, g->goal, buf, sizeof buf);
        if (!f || strcmp(f, fam) || strcmp(pl_s(param(r, "model")), g->model) ||
            strcmp(pl_s(param(r, "eval_tokens")), pl_s(g->eval)))
            continue;
        if (!serving && strcmp(pl_s(param(r, "steps")), pl_s(param(g->run, "steps")))) continue;
        double b = metric(r, serving ? "infer_peak_bytes" : "train_peak_bytes", NULL);
        double a = metric(r, g->metric, NULL);
        if (!(b <= budget) || isnan(a)) continue;
        if (isnan(best) || a < best) best = a;
    }
    return best;
}

static void accuracy_plot(struct pl_ctx *ctx, const struct mt_read_run *runs, size_t nr,
                          const struct fit_pt *pt, size_t n, const char *name, const char *title,
                          int serving)
{
    char fams[32][64], buf[64];
    size_t nf = 0;
    for (size_t i = 0; i < nr; i++) {
        const char *f = family_of(&runs[i], pt[0].goal, buf, sizeof buf);
        if (!f || strcmp(pl_s(param(&runs[i], "model")), pt[0].model)) continue;
        size_t k = 0;
        while (k < nf && strcmp(fams[k], f))
            k++;
        if (k == nf && nf < 32) snprintf(fams[nf++], sizeof fams[0], "%s", f);
    }
    FILE *dat, *gp;
    if (pl_open_pair(ctx, name, title, &dat, &gp)) return;
    fputs("# block 0: budget MiB, fit measured, fit predicted; then one block per family: "
          "budget MiB, best measured within it\n",
          dat);
    for (size_t i = 0; i < n; i++) {
        fprintf(dat, "%.6f", pt[i].budget / PL_MIB);
        pl_dat_num(dat, pt[i].meas_acc, "\t");
        pl_dat_num(dat, pt[i].pred_acc, "\t");
        fputc('\n', dat);
    }
    for (size_t k = 0; k < nf; k++) {
        fputs("\n\n", dat);
        for (size_t i = 0; i < n; i++) {
            fprintf(dat, "%.6f", pt[i].budget / PL_MIB);
            pl_dat_num(dat, family_best(runs, nr, &pt[0], fams[k], pt[i].budget, serving), "\t");
            fputc('\n', dat);
        }
    }
    script_head(ctx, gp, name, title,
                "families: the best configuration measured within each budget");
    fprintf(gp,
            "set key outside right top\nset xlabel 'budget (MiB)'\nset ylabel '%s (lower is "
            "better)'\nplot '%s.dat' index 0 using 1:2 with linespoints lw 3 pt 7 lc rgb 'black' "
            "title 'fit choice, measured', \\\n  '%s.dat' index 0 using 1:3 with linespoints "
            "dt 2 pt 6 lc rgb 'black' title 'fit choice, predicted'",
            pt[0].metric, name, name);
    for (size_t k = 0; k < nf; k++) {
        fprintf(gp, ", \\\n  '%s.dat' index %zu using 1:2 with steps lw 1.5 lc rgb '%s' title ",
                name, k + 1, pl_color(k));
        pl_gp_str(gp, fams[k]);
    }
    fputc('\n', gp);
    pl_finish(ctx, &dat, &gp, name, title);
}

static void table(struct pl_ctx *ctx, const struct fit_pt *pt, size_t n, const char *title)
{
    static const char *const knobs[] = {"bits",     "group_size", "method",    "layer_bits",
                                        "kv_cache", "precision",  "optimizer", "micro_batch",
                                        "every",    "recompute",  "attention", "decode_tokens"};
    struct pl_html_frag fr;
    FILE *f = pl_html_open(ctx, &fr);
    if (!f) return;
    fputs("<h3>", f);
    pl_html(f, title);
    fprintf(f,
            "</h3>\n<table>\n<tr><th>budget (bytes)</th><th>run</th><th>family</th>"
            "<th>configuration</th><th>predicted bytes</th><th>measured bytes</th>"
            "<th>unused</th><th>predicted %s</th><th>measured %s</th></tr>\n",
            pt[0].metric, pt[0].metric);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<tr><td class=\"n\">%.0f</td><td class=\"n\">%lld</td><td>", pt[i].budget,
                (long long)pt[i].run->id);
        pl_html(f, pt[i].family);
        fputs("</td><td>", f);
        pl_html(f, pt[i].run->workload);
        for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
            const char *v = param(pt[i].run, knobs[k]);
            if (!v || !*v) continue;
            fputc(' ', f);
            pl_html(f, knobs[k]);
            fputc('=', f);
            pl_html(f, v);
        }
        int over = pt[i].meas_bytes > pt[i].budget;
        fprintf(f,
                "</td><td class=\"n\">%.0f</td><td class=\"n\">%.0f%s</td><td class=\"n\">"
                "%.2f %%</td><td class=\"n\">%.6g</td><td class=\"n\">%.6g</td></tr>\n",
                pt[i].pred_bytes, pt[i].meas_bytes, over ? " <b class=\"over\">over</b>" : "",
                100.0 * (pt[i].budget - pt[i].meas_bytes) / pt[i].budget, pt[i].pred_acc,
                pt[i].meas_acc);
    }
    fputs("</table>\n", f);
    pl_html_close(ctx, f, &fr, &ctx->fit_table);
}

void pl_draw_fit(struct pl_ctx *ctx)
{
    struct mt_read_run *runs;
    size_t nr;
    if (mt_read_runs(ctx->rd, MT_READ_ALL_SWEEPS, &runs, &nr) != 0) {
        pl_item_skip(ctx, "fit_bytes", "What fits", "the runs could not be read: %s",
                     mt_store_error(ctx->st));
        return;
    }
    struct fit_pt *pt = calloc(nr + 1, sizeof *pt);
    size_t n = 0;
    if (!pt) {
        ctx->oom = 1;
        return;
    }
    for (size_t i = 0; i < nr; i++) {
        const struct mt_read_run *r = &runs[i];
        if (strcmp(r->status, "ok") || !r->label || strncmp(r->label, "fit ", 4)) continue;
        struct fit_pt p = {
            .run = r, .model = pl_s(param(r, "model")), .eval = param(r, "eval_tokens")};
        int ok = label_str(r->label, "goal", p.goal, sizeof p.goal) &&
                 label_str(r->label, "family", p.family, sizeof p.family) &&
                 label_str(r->label, "metric", p.metric, sizeof p.metric);
        p.budget = label_num(r->label, "budget");
        p.pred_bytes = label_num(r->label, "predicted_bytes");
        p.runtime = label_num(r->label, "runtime_bytes");
        p.pred_acc = label_num(r->label, "predicted_accuracy");
        p.kv_delta = label_num(r->label, "kv_delta");
        if (!ok || isnan(p.budget) || isnan(p.pred_bytes)) continue;
        int serving = !strcmp(p.goal, "serving");
        p.meas_bytes = metric(r, serving ? "infer_peak_bytes" : "train_peak_bytes", NULL);
        p.meas_acc = metric(r, p.metric, NULL) + (isnan(p.kv_delta) ? 0.0 : p.kv_delta);
        if (isnan(p.runtime)) p.runtime = 0.0;
        pt[n++] = p;
    }
    if (!n) {
        pl_item_skip(ctx, "fit_bytes", "What fits: predicted and measured bytes per budget",
                     "no run of `memtrade fit --verify` in this database");
        free(pt);
        return;
    }
    qsort(pt, n, sizeof *pt, cmp_budget);
    /* one point per budget of a group: the newest verify run */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(pt[k - 1].model, pt[i].model) && !strcmp(pt[k - 1].goal, pt[i].goal) &&
            pt[k - 1].budget == pt[i].budget)
            k--;
        pt[k++] = pt[i];
    }
    size_t group = 0;
    for (size_t s = 0; s < k;) {
        size_t e = s;
        while (e < k && !strcmp(pt[e].model, pt[s].model) && !strcmp(pt[e].goal, pt[s].goal))
            e++;
        int serving = !strcmp(pt[s].goal, "serving");
        group++;
        char *suffix = group > 1 ? pl_asprintf(ctx, "_%zu", group) : pl_strdup(ctx, "");
        char *nb = pl_asprintf(ctx, "fit_bytes%s", pl_s(suffix));
        char *na = pl_asprintf(ctx, "fit_accuracy%s", pl_s(suffix));
        char *tb =
            pl_asprintf(ctx, "What fits: %s for %s, predicted and measured %s per budget",
                        pt[s].model, pt[s].goal, serving ? "infer_peak_bytes" : "train_peak_bytes");
        char *ta = pl_asprintf(ctx, "What fits: %s for %s, %s against the budget", pt[s].model,
                               pt[s].goal, pt[s].metric);
        char *tt = pl_asprintf(ctx, "What fits: %s for %s", pt[s].model, pt[s].goal);
        if (nb && na && tb && ta && tt) {
            bytes_plot(ctx, pt + s, e - s, nb, tb, serving);
            accuracy_plot(ctx, runs, nr, pt + s, e - s, na, ta, serving);
            table(ctx, pt + s, e - s, tt);
        }
        free(suffix), free(nb), free(na), free(tb), free(ta), free(tt);
        s = e;
    }
    free(pt);
}
