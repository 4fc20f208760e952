/* plots/plot_main.c — mt-plot: the standalone front end of the plot generator.
 *
 * What it is for: `mt-plot [--db FILE] [--out DIR] [--sweep ID|latest|all] [--format png|svg]
 * [--x METRIC] [--y METRIC] [--budgets LIST] [--max-runs N] [--gnuplot PATH]`, the same
 * options `memtrade plot` takes, for use and tests before and besides the harness.
 * What it is not for: anything but parsing options and printing the result.
 * Exit status: 0 drawn, 1 nothing to plot (no successful run), 2 error, 3 some plot failed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

static void usage(FILE *f)
{
    fputs("usage: mt-plot [--db FILE] [--out DIR] [--sweep ID|latest|all] [--format png|svg]\n"
          "               [--x METRIC] [--y METRIC] [--budgets MiB,MiB,...] [--max-runs N]\n"
          "               [--gnuplot PATH]\n"
          "Draws the trade-off, memory timelines, allocation sites, region costs, speed and\n"
          "knob curves of a memtrade results database into OUT/plots and OUT/report.html.\n"
          "  --db FILE      results database (default $MEMTRADE_DB, else OUT/memtrade.db)\n"
          "  --out DIR      output folder (default ./out)\n"
          "  --sweep ID     sweep to draw: an id, 'latest' (default) or 'all'\n"
          "  --format F     png (default) or svg\n"
          "  --x METRIC     one trade-off panel against this memory metric instead of the\n"
          "                 serving (infer_peak_bytes) and training (train_peak_bytes) panels\n"
          "  --y METRIC     accuracy metric (default val_bpb)\n"
          "  --budgets L    memory budgets in MiB for the report (default: powers of two)\n"
          "  --max-runs N   per-run plots for at most N runs (default 8)\n"
          "  --gnuplot P    gnuplot program (default: gnuplot on PATH)\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"db", required_argument, NULL, 'd'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"sweep", required_argument, NULL, 's'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"x", required_argument, NULL, 'x'},
                                             {"y", required_argument, NULL, 'y'},
                                             {"budgets", required_argument, NULL, 'b'},
                                             {"max-runs", required_argument, NULL, 'n'},
                                             {"gnuplot", required_argument, NULL, 'g'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct mt_plot_opts opts = {.sweep_id = MT_PLOT_SWEEP_LATEST};
    double *budgets = NULL;
    char err[1024];
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            opts.db_path = optarg;
            break;
        case 'o':
            opts.out_dir = optarg;
            break;
        case 'x':
            opts.x_metric = optarg;
            break;
        case 'y':
            opts.y_metric = optarg;
            break;
        case 'g':
            opts.gnuplot = optarg;
            break;
        case 's':
            if (strcmp(optarg, "latest") == 0) {
                opts.sweep_id = MT_PLOT_SWEEP_LATEST;
            } else if (strcmp(optarg, "all") == 0) {
                opts.sweep_id = MT_PLOT_SWEEP_ALL;
            } else {
                opts.sweep_id = strtoll(optarg, &end, 10);
                if (*end || opts.sweep_id <= 0) {
                    fprintf(stderr,
                            "mt-plot: --sweep wants a positive id, 'latest' or 'all', "
                            "not '%s'\n",
                            optarg);
                    return 2;
                }
            }
            break;
        case 'f':
            if (strcmp(optarg, "png") == 0)
                opts.format = MT_PLOT_PNG;
            else if (strcmp(optarg, "svg") == 0)
                opts.format = MT_PLOT_SVG;
            else {
                fprintf(stderr, "mt-plot: --format is png or svg, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b':
            free(budgets);
            if (mt_plot_parse_budgets(optarg, &budgets, &opts.n_budgets, err, sizeof err) != 0) {
                fprintf(stderr, "mt-plot: %s\n", err);
                return 2;
            }
            opts.budgets_mib = budgets;
            break;
        case 'n': {
            long long v = strtoll(optarg, &end, 10);
            if (*end || v <= 0) {
                fprintf(stderr, "mt-plot: --max-runs wants a positive count, not '%s'\n", optarg);
                return 2;
            }
            opts.max_runs = (size_t)v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mt-plot: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char dbdefault[4200];
    if (!opts.db_path && getenv("MEMTRADE_DB") && *getenv("MEMTRADE_DB"))
        opts.db_path = getenv("MEMTRADE_DB"); /* as the memtrade CLI does */
    if (!opts.db_path) {
        snprintf(dbdefault, sizeof dbdefault, "%s/memtrade.db",
                 opts.out_dir ? opts.out_dir : "out");
        opts.db_path = dbdefault;
    }
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    free(budgets);
    if (rc < 0) {
        fprintf(stderr, "mt-plot: %s\n", err);
        mt_plot_result_free(&res);
        return 2;
    }
    for (size_t i = 0; i < res.n_items; i++) {
        const struct mt_plot_item *it = &res.items[i];
        if (it->failed)
            fprintf(stderr, "mt-plot: FAILED %s: %s\n", it->name, it->failed);
        else if (it->skip)
            printf("skipped %s: %s\n", it->name, it->skip);
        else if (it->warnings)
            fprintf(stderr, "mt-plot: gnuplot warnings for %s: %s\n", it->name, it->warnings);
    }
    if (rc == 1) printf("%s\n", err);
    printf("%s\n", res.message);
    int status = rc == 1 ? 1 : res.n_failed ? 3 : 0;
    mt_plot_result_free(&res);
    return status;
}
