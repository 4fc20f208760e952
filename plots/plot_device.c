/* plots/plot_device.c — device memory (issue 22): the device_memory plot and its table.
 *
 * What it is for: for the runs that measured device memory (`memtrade run ... -p
 * device=cuda`, `memtrade profile --device`), the three witnesses side by side: the
 * plan's prediction for the phase the device run held (plan_<phase>_peak_bytes, stacked
 * by category), the interposer's device peak (peak_device_bytes, stacked by category)
 * and NVML's per-process used memory (nvml_peak_device_bytes, one bar: it adds the CUDA
 * context and what allocators keep in reserve). The report table gives the totals and the
 * two differences with their causes: interposer minus plan (library workspaces such as
 * cuBLAS's, by category) and NVML minus interposer (the context). A figure that is
 * unavailable is listed with its reason and never drawn as 0.
 * What it is not for: accuracy against device memory (tradeoff_device, plot_draw.c) or
 * the host-memory check (plot_memcheck.c).
 *
 * Category values are each category's own peak, so a stack can pass the total: the total
 * is marked on each bar.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

/* The phases a plan names, in the order a device run's plan is looked up. */
static const char *const phases[] = {"train", "infer", "eval"};

struct devrun {
    const struct pl_run *run;
    char *desc;        /* pl_run_desc */
    const char *phase; /* the planned phase (phases[]), NULL without a plan */
    double plan, dev;  /* totals: the plan of that phase, the interposer's peak */
    double plan_cat[PL_N_CATS], dev_cat[PL_N_CATS];
    int has_nvml;
    double nvml;
    const char *nvml_why; /* NVML's reason when unavailable */
};

static int metric_value(const struct pl_run *r, const char *name, const char *cat, double *v)
{
    const struct mt_read_metric *m = pl_run_metric_cat(r, name, cat);
    if (!m || !m->has) return 0;
    *v = m->value;
    return 1;
}

static void load_devrun(struct devrun *d)
{
    const struct pl_run *r = d->run;
    metric_value(r, "peak_device_bytes", NULL, &d->dev);
    for (size_t k = 0; k < PL_N_CATS; k++)
        metric_value(r, "peak_device_bytes", pl_cats[k], &d->dev_cat[k]);
    for (size_t p = 0; p < sizeof phases / sizeof phases[0] && !d->phase; p++) {
        char name[64];
        snprintf(name, sizeof name, "plan_%s_peak_bytes", phases[p]);
        if (!metric_value(r, name, NULL, &d->plan)) continue;
        d->phase = phases[p];
        for (size_t k = 0; k < PL_N_CATS; k++)
            metric_value(r, name, pl_cats[k], &d->plan_cat[k]);
    }
    const struct mt_read_metric *nv = pl_run_metric(r, "nvml_peak_device_bytes");
    d->has_nvml = nv && nv->has;
    if (d->has_nvml) d->nvml = nv->value;
    d->nvml_why = !nv ? "not recorded" : nv->has ? NULL : pl_s(nv->unavailable);
}

/* "workspace +32.02 MiB, other +0.01 MiB": the two categories where the interposer saw
 * most above the plan. */
static void html_top_excess(struct pl_ctx *ctx, FILE *f, const struct devrun *d)
{
    double e[PL_N_CATS + 1] = {0}; /* no untagged entry: the plan names every byte */
    for (size_t k = 0; k < PL_N_CATS; k++)
        e[k] = d->dev_cat[k] - d->plan_cat[k];
    pl_html_top_two(ctx, f, e, "none above the plan", NULL);
}

static void table_row(struct pl_ctx *ctx, FILE *f, const void *rec)
{
    const struct devrun *d = rec;
    pl_tr_start(f, d->desc, d->phase ? d->phase : "(no plan)");
    fputs("</td>", f);
    pl_td_mib(f, d->phase != NULL, d->plan, "no plan");
    fprintf(f, "<td class=\"n\">%.3f</td><td>", d->dev / PL_MIB);
    if (d->phase) html_top_excess(ctx, f, d);
    fputs("</td>", f);
    if (d->has_nvml)
        fprintf(f, "<td class=\"n\">%.3f</td><td class=\"n\">%.3f</td></tr>\n", d->nvml / PL_MIB,
                (d->nvml - d->dev) / PL_MIB);
    else
        pl_td_unavailable(f, 2, d->nvml_why);
}

static void write_table(struct pl_ctx *ctx, const struct devrun *ds, size_t n, size_t more)
{
    pl_table(ctx,
             "<p>Three witnesses of device memory per run: <b>planned</b>, <code>memtrade "
             "plan</code>'s prediction of the phase (<code>plan_&lt;phase&gt;_peak_bytes</code>); "
             "<b>interposer</b>, the device peak of the CUDA driver's allocations that the "
             "preloaded profiler booked (<code>peak_device_bytes</code>); <b>NVML</b>, the "
             "driver's used memory of the process (<code>nvml_peak_device_bytes</code>), which "
             "adds the CUDA context and kernels' code. Interposer minus planned is what libraries "
             "allocate beside the plan's slabs (cuBLAS's workspace); NVML minus interposer is "
             "the context.</p>\n<table class=\"memcheck\"><caption>device memory: planned, "
             "interposer, NVML</caption><tr><th>run</th><th>phase</th><th>planned (MiB)</th>"
             "<th>interposer (MiB)</th><th>above the plan</th><th>NVML (MiB)</th>"
             "<th>NVML &minus; interposer (MiB)</th></tr>\n",
             ds, n, sizeof *ds, table_row, &ctx->device_table, more, "measured device memory");
}

/* device_memory.dat: three rows per run (planned, interposer, NVML), each with the
 * cumulative MiB of its categories in memcat order (NaN for the NVML row and a missing
 * plan), the untagged rest on top (total minus the categories, when positive) and its total
 * (NaN when unavailable). */
static void write_dat(FILE *dat, const struct devrun *ds, size_t n)
{
    fputs("# row\trun_id\twitness\ttotal_MiB", dat);
    pl_dat_cum_header(dat);
    fputs("\tlabel\n", dat);
    static const char *const witness[] = {"planned", "interposer", "nvml"};
    for (size_t i = 0; i < n; i++) {
        const struct devrun *d = &ds[i];
        for (int w = 0; w < 3; w++) {
            int has = w == 0 ? d->phase != NULL : w == 1 ? 1 : d->has_nvml;
            double total = w == 0 ? d->plan : w == 1 ? d->dev : d->nvml;
            fprintf(dat, "%zu\t%lld\t%s", 3 * i + (size_t)w, d->run->id, witness[w]);
            pl_dat_num(dat, has ? total / PL_MIB : NAN, "\t");
            double cum = 0;
            for (size_t k = 0; k < PL_N_CATS; k++) {
                cum += w == 0 ? d->plan_cat[k] : d->dev_cat[k];
                pl_dat_num(dat, w < 2 && has ? cum / PL_MIB : NAN, "\t");
            }
            /* what no category names (a profiled program without tags) tops the stack */
            pl_dat_num(dat, w < 2 && has ? fmax(cum, total) / PL_MIB : NAN, "\t");
            fputc('\t', dat);
            pl_dat_text(dat, d->desc);
            fputc('\n', dat);
        }
    }
}

static void write_gp(struct pl_ctx *ctx, FILE *gp, const struct devrun *ds, size_t n,
                     const char *title)
{
    size_t rows = 3 * n;
    pl_gp_preamble(ctx, gp, "device_memory", 1100, 190 + 40 * (int)rows);
    pl_gp_title(gp, title, ctx, "planned / interposer by category; NVML adds the CUDA context");
    pl_gp_hbar_head(gp, "device memory (MiB)", rows);
    static const char *const witness[] = {"planned", "interposer", "NVML"};
    for (size_t i = 0; i < n; i++)
        for (int w = 0; w < 3; w++)
            pl_gp_ytic(gp, !i && !w, ds[i].desc, witness[w], rows - 1 - (3 * i + (size_t)w));
    fputs(")\n", gp);
    /* a witness without a figure says so on its row (never a bar of 0) */
    for (size_t i = 0; i < n; i++)
        for (int w = 0; w < 3; w += 2)
            if (w == 0 ? !ds[i].phase : !ds[i].has_nvml)
                fprintf(gp,
                        "set label ' %s (see the report)' at first 0, first %zu left tc rgb "
                        "'#777777'\n",
                        w == 0 ? "no plan" : "unavailable", rows - 1 - (3 * i + (size_t)w));
    fprintf(gp, "Y(r) = %zu - r\nplot ", rows - 1);
    int first = 1;
    for (size_t k = 0; k <= PL_N_CATS; k++) {
        int used = 0;
        for (size_t i = 0; i < n; i++) {
            double sum_dev = 0, sum_plan = 0;
            for (size_t j = 0; j < PL_N_CATS; j++) {
                sum_dev += ds[i].dev_cat[j];
                sum_plan += ds[i].plan_cat[j];
            }
            used |= k < PL_N_CATS ? ds[i].dev_cat[k] > 0 || ds[i].plan_cat[k] > 0
                                  : ds[i].dev > sum_dev || (ds[i].phase && ds[i].plan > sum_plan);
        }
        if (!used) continue;
        /* column 5 + k: cum_<category>_MiB */
        pl_gp_cat_box(gp, first ? "'device_memory.dat'" : ", \\\n  'device_memory.dat'", k, 5 + k,
                      "-0.35", "-0.35", "+0.35");
        first = 0;
    }
    /* NVML has no categories: one grey bar from 0 to its total (NaN elsewhere) */
    fprintf(gp,
            "%s'device_memory.dat' using (0):(Y($1)):(0):(strcol(3) eq 'nvml' ? $4 : NaN):"
            "(Y($1)-0.35):(Y($1)+0.35) with boxxyerror lc rgb '#9a9a9a' title 'NVML (whole "
            "process)', \\\n  '' using 4:(Y($1)-0.42):(0):(0.84) with vectors nohead lw 3 lc "
            "rgb '#000000' title 'total', \\\n  '' using 4:(Y($1)):(sprintf(' %%.1f', $4)) "
            "with labels left notitle\n",
            first ? "" : ", \\\n  ");
}

static int has_device_peak(struct pl_ctx *ctx, const struct pl_run *r)
{
    (void)ctx;
    const struct mt_read_metric *m = pl_run_metric(r, "peak_device_bytes");
    return m && m->has;
}

void pl_draw_device(struct pl_ctx *ctx)
{
    const char *name = "device_memory";
    const char *title = "Device memory per run: planned, interposer, NVML";
    size_t n, more, *idx;
    struct devrun *ds =
        pl_pick_records(ctx, has_device_peak, sizeof *ds, &idx, &n, &more, name, title,
                        "no run measured device memory (peak_device_bytes: runs "
                        "with -p device=cuda on a GPU, or memtrade profile "
                        "--device)");
    FILE *dat = NULL, *gp = NULL;
    if (!ds) goto out;
    for (size_t i = 0; i < n; i++) {
        ds[i].run = &ctx->runs[idx[i]];
        ds[i].desc = pl_run_desc(ctx, ds[i].run);
        load_devrun(&ds[i]);
    }
    write_table(ctx, ds, n, more);
    if (pl_open_pair(ctx, name, title, &dat, &gp)) goto out;
    write_dat(dat, ds, n);
    write_gp(ctx, gp, ds, n, title);
    pl_finish(ctx, &dat, &gp, name, title);
out:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    for (size_t i = 0; ds && i < n; i++)
        free(ds[i].desc);
    free(ds);
    free(idx);
}
