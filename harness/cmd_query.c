/* harness/cmd_query.c — `memtrade query` and `memtrade merge`: thin front ends to the
 * store's readers and merge (results/store.h), which bind every parameter and open the
 * database read-only for queries. Not for: SQL of its own. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"
#include "util.h"

static const char query_help[] =
    "usage: memtrade query [--db FILE] [--format table|csv|json] WHAT\n"
    "\n"
    "WHAT:\n"
    "  runs [--sweep ID] [--workload W] [--status S]   every run, by id\n"
    "  show RUN                     one run: row, params, metrics, regions, counters\n"
    "  compare A B                  metrics of two runs side by side, with ratio b/a\n"
    "  check RUN                    the three witnesses per phase and category: plan,\n"
    "                               accounted, heap peak, RSS; residuals over 5 % / 4 MiB flagged\n"
    "  pareto [--x M] [--y M] [--sweep ID]\n"
    "                               Pareto front (default x memory_bytes, y val_bpb,\n"
    "                               lower is better; --x-higher/--y-higher flip)\n"
    "  sites RUN [--limit N]        top allocation sites by bytes live at peak\n"
    "  sites RUN --format folded [--weight peak|bytes|leaked|allocs]\n"
    "                               collapsed stacks for flamegraph tools\n"
    "  sql \"SELECT ...\"             one read-only statement (writes are refused)\n"
    "\n"
    "The database is opened read-only. Errors (missing or foreign database, unknown run,\n"
    "refused statement) exit 3.\n";

int mt_cli_check_metric(struct mt_store *st, const char *cmd, const char *opt, const char *name,
                        const char *pseudo)
{
    if (!name || (pseudo && strcmp(name, pseudo) == 0)) return 0;
    char **names;
    size_t n;
    if (mt_store_metric_names(st, &names, &n) != 0) {
        fprintf(stderr, "memtrade: %s\n", mt_store_error(st));
        return MT_EXIT_DB;
    }
    int found = 0;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(names[i], name) == 0;
    if (!found) {
        const char **all = malloc((n + 1) * sizeof *all);
        size_t k = 0;
        for (size_t i = 0; all && i < n; i++)
            all[k++] = names[i];
        if (all && pseudo) all[k++] = pseudo;
        char list[4096];
        mt_util_names_nearest_first(name, all ? all : (const char **)names, all ? k : n, list,
                                    sizeof list);
        fprintf(stderr,
                "memtrade %s: unknown metric '%s' for %s; the metrics of %s, nearest "
                "first: %s\n",
                cmd, name, opt, mt_store_path(st), k || n ? list : "(none)");
        free(all);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return found ? 0 : MT_EXIT_USAGE;
}

static int parse_id(const char *text, int64_t *id)
{
    if (mt_util_parse_i64(text, id) != 0 || *id < 1) {
        fprintf(stderr, "memtrade query: '%s' is not a run id\n", text);
        return -1;
    }
    return 0;
}

int mt_cmd_query(int argc, char **argv)
{
    enum { O_SWEEP = MT_OPT_OWN, O_LIMIT };
    const char *format = "table", *weight = "peak";
    struct mt_store_pareto_opts po = {0};
    struct mt_store_runs_filter rf = {0};
    const struct mt_cli_opt own[] = {MT_CLI_TEXT("format", &format),
                                     MT_CLI_TEXT("x", &po.x_metric),
                                     MT_CLI_TEXT("y", &po.y_metric),
                                     MT_CLI_FLAG("x-higher", &po.x_higher_better, 1),
                                     MT_CLI_FLAG("y-higher", &po.y_higher_better, 1),
                                     MT_CLI_ARG("sweep", O_SWEEP),
                                     MT_CLI_TEXT("workload", &rf.workload),
                                     MT_CLI_TEXT("status", &rf.status),
                                     MT_CLI_ARG("limit", O_LIMIT),
                                     MT_CLI_TEXT("weight", &weight),
                                     {0}};
    struct mt_cli_parser op = {.cmd = "query", .shared = MT_CLI_DB, .own = own, .help = query_help};
    int64_t limit = 20, sweep = 0;
    int c;
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) {
        if (c == O_SWEEP) {
            if (mt_util_parse_i64(optarg, &sweep) || sweep < 1) {
                fprintf(stderr, "memtrade query: --sweep takes a sweep id\n");
                return MT_EXIT_USAGE;
            }
        } else if (mt_util_parse_i64(optarg, &limit) || limit < 0) { /* O_LIMIT */
            fprintf(stderr, "memtrade query: --limit takes a count (0 = all)\n");
            return MT_EXIT_USAGE;
        }
    }
    if (c < 0) return mt_cli_options_exit(c);
    po.sweep_id = rf.sweep_id = sweep;
    if (optind >= argc) {
        fputs(query_help, stderr);
        return MT_EXIT_USAGE;
    }
    const char *what = argv[optind];
    int nargs = argc - optind - 1;
    char *const *args = argv + optind + 1;
    int folded = strcmp(format, "folded") == 0;
    enum mt_store_format fmt = MT_FORMAT_TABLE;
    if (!folded && mt_store_format_parse(format, &fmt) != 0) {
        fprintf(stderr,
                "memtrade query: --format takes table, csv or json (folded for sites), not '%s'\n",
                format);
        return MT_EXIT_USAGE;
    }
    static const char *const whats[] = {"runs",  "show", "compare", "pareto",
                                        "sites", "sql",  "check"};
    static const int want[] = {0, 1, 2, 0, 1, 1, 1};
    int k = -1;
    for (int i = 0; i < 7; i++)
        if (strcmp(what, whats[i]) == 0) k = i;
    if (k < 0) {
        const char *near = mt_util_nearest(what, whats, 7);
        fprintf(stderr, "memtrade query: unknown query '%s'%s%s%s\n", what,
                near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
        return MT_EXIT_USAGE;
    }
    if (nargs != want[k] || (folded && k != 4)) {
        fputs(query_help, stderr);
        return MT_EXIT_USAGE;
    }
    int64_t a = 0, b = 0;
    if ((k == 1 || k == 2 || k == 4 || k == 6) && parse_id(args[0], &a) != 0) return MT_EXIT_USAGE;
    if (k == 2 && parse_id(args[1], &b) != 0) return MT_EXIT_USAGE;
    enum mt_store_folded_weight fw = MT_FOLDED_PEAK_BYTES;
    if (strcmp(weight, "bytes") == 0)
        fw = MT_FOLDED_BYTES;
    else if (strcmp(weight, "leaked") == 0)
        fw = MT_FOLDED_LEAKED_BYTES;
    else if (strcmp(weight, "allocs") == 0)
        fw = MT_FOLDED_ALLOCS;
    else if (strcmp(weight, "peak") != 0) {
        fprintf(stderr, "memtrade query: --weight takes peak, bytes, leaked or allocs\n");
        return MT_EXIT_USAGE;
    }
    enum mt_run_status want_status;
    if (rf.status && mt_run_status_parse(rf.status, &want_status) != 0) {
        const char *statuses[MT_RUN_INTERRUPTED + 1];
        for (int i = 0; i <= MT_RUN_INTERRUPTED; i++)
            statuses[i] = mt_run_status_name((enum mt_run_status)i);
        char list[256];
        fprintf(stderr,
                "memtrade query: unknown status '%s' for --status; the statuses, nearest "
                "first: %s\n",
                rf.status,
                mt_util_names_nearest_first(rf.status, statuses, MT_RUN_INTERRUPTED + 1, list,
                                            sizeof list));
        return MT_EXIT_USAGE;
    }
    char err[2048];
    if (mt_cli_finish_common(&op.co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_SYSTEM;
    }
    struct mt_store *st;
    if (mt_store_open(op.co.db, MT_STORE_READONLY, &st, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_DB;
    }
    if (k == 3) { /* a misspelt metric gives an empty front: say so instead */
        int bad = mt_cli_check_metric(st, "query pareto", "--x", po.x_metric, "memory_bytes");
        if (!bad) bad = mt_cli_check_metric(st, "query pareto", "--y", po.y_metric, NULL);
        if (bad) {
            mt_store_close(st);
            return bad;
        }
    }
    int rc;
    switch (k) {
    case 0:
        rc = mt_store_query_runs(st, &rf, fmt, stdout);
        break;
    case 1:
        rc = mt_store_query_show(st, a, fmt, stdout);
        break;
    case 2:
        rc = mt_store_query_compare(st, a, b, fmt, stdout);
        break;
    case 3:
        rc = mt_store_query_pareto(st, &po, fmt, stdout);
        break;
    case 4:
        rc = folded ? mt_store_query_folded(st, a, fw, stdout)
                    : mt_store_query_sites(st, a, (size_t)limit, fmt, stdout);
        break;
    case 6:
        rc = mt_store_query_check(st, a, fmt, stdout);
        break;
    default:
        rc = mt_store_query_sql(st, args[0], fmt, stdout);
        break;
    }
    fflush(stdout);
    if (rc != 0) fprintf(stderr, "memtrade: %s\n", mt_store_error(st));
    mt_store_close(st);
    return rc != 0 ? MT_EXIT_DB : MT_EXIT_OK;
}

int mt_cmd_merge(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        puts("usage: memtrade merge OUT.db IN.db...\n\n"
             "Joins shard databases (memtrade sweep --shard I/N) into OUT.db (created if\n"
             "missing). An ok run whose configuration and repeat already has an ok row in\n"
             "OUT.db is skipped; other runs are copied as history. All or nothing.");
        return MT_EXIT_OK;
    }
    if (argc < 3) {
        fputs("usage: memtrade merge OUT.db IN.db... (see --help)\n", stderr);
        return MT_EXIT_USAGE;
    }
    char err[2048];
    struct mt_store_merge_stats stats;
    if (mt_store_merge(argv[1], (const char *const *)argv + 2, (size_t)argc - 2, &stats, err,
                       sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_DB;
    }
    fprintf(stderr,
            "memtrade: merged %zu databases into %s: %zu sweeps, %zu runs copied, %zu ok runs "
            "skipped (already present), %zu new frames, %zu new stacks, %zu runtime terms\n",
            stats.inputs, argv[1], stats.sweeps, stats.runs, stats.runs_skipped, stats.frames_new,
            stats.stacks_new, stats.runtime_terms);
    return MT_EXIT_OK;
}
