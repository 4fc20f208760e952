/* harness/cmd_run.c — `memtrade run` and `memtrade sweep`: plan, check everything, then
 * open the database and hand the plans to the scheduler. Nothing touches the database
 * before every workload and parameter has been checked. Not for: the run loop itself. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "facts.h"
#include "recover.h"
#include "runtime_probe.h"
#include "scheduler.h"
#include "sweepspec.h"
#include "util.h"

enum { OPT_REPEAT = MT_OPT_OWN, OPT_BUDGET, OPT_SHARD, OPT_SEED };

#define COMMON_HELP                                                                                \
    "  --db FILE          database (default $MEMTRADE_DB, else OUT/memtrade.db)\n"                 \
    "  --out DIR          output folder (default out/)\n"                                          \
    "  --plugin PATH.so   load a workload plugin from outside the plugin folders\n"                \
    "  --heap MODE        heap profiler mode: full, sampled (default) or off\n"                    \
    "  --no-heap          same as --heap off\n"                                                    \
    "  --launcher TMPL    multi-rank launcher (default $MEMTRADE_LAUNCHER, else\n"                 \
    "                     \"" MT_DEFAULT_LAUNCHER "\"); {ranks} is replaced\n"                     \
    "  --keep-scratch     keep each run's scratch folder (OUT/scratch/run-ID.PID)\n"               \
    "  --measure-runtime  first probe the runtime terms of each class of the runs that\n"          \
    "                     this build and machine lacks (1-2 short runs per class, once:\n"         \
    "                     memtrade plan --measure-runtime); without it a run of an\n"              \
    "                     unprobed class stores its runtime terms unavailable, with why\n"         \
    "  --help             this text\n"

static int exit_for(int rc, const struct mt_sched_result *res)
{
    if (rc == -1) return MT_EXIT_DB;
    if (mt_cli_stop) return MT_EXIT_INTERRUPTED;
    if (rc == -2) return MT_EXIT_SYSTEM;
    size_t bad = 0;
    for (int s = MT_RUN_FAILED; s <= MT_RUN_INTERRUPTED; s++)
        bad += res->by_status[s];
    return bad ? MT_EXIT_RUNS_FAILED : MT_EXIT_OK;
}

static void print_summary(const struct mt_sched_result *res, const char *db)
{
    fprintf(stderr,
            "memtrade: %zu runs planned, %zu skipped (already ok), %zu started:", res->planned,
            res->skipped, res->started);
    for (int s = MT_RUN_OK; s <= MT_RUN_INTERRUPTED; s++)
        if (res->by_status[s]) fprintf(stderr, " %zu %s", res->by_status[s], mt_run_status_name(s));
    fprintf(stderr, "\nmemtrade: results in %s\n", db);
}

/* How long a write waits for another connection's lock (an `sqlite3` shell holding a
 * transaction) before the harness gives up with a database error; MEMTRADE_DB_WAIT
 * (seconds) overrides it. */
#define DB_WAIT_S 600.0

static void say_waiting(void *arg, const char *path, double max_s)
{
    (void)arg;
    fprintf(stderr,
            "\rmemtrade: %s: another connection holds the database's write lock; waiting up "
            "to %.0f s for it (finished runs keep their events on disk until stored)\n",
            path, max_s);
}

/* `--measure-runtime`: probes the classes of plans[0..n) the database lacks (their runs
 * then store their runtime terms and residual). MT_EXIT_OK, or MT_EXIT_DB after a message
 * (a failed probe is not an error: its runs store why). */
static int measure_runtime(const struct mt_cli_common *co, struct mt_plan *plans, size_t n, int dry)
{
    char err[2048];
    struct mt_runtime_probe_count k;
    if (mt_runtime_probe_plans(co->exe, co->db, plans, n, dry, stderr, &k, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_DB;
    }
    fprintf(stderr,
            "memtrade: runtime terms of %zu classes: %zu stored, %zu %s (%.1f s of probes), %zu "
            "failed, %zu skipped\n",
            k.classes, k.stored, k.measured, dry ? "missing" : "measured now", k.probe_s, k.failed,
            k.skipped);
    return MT_EXIT_OK;
}

/* `--resume --measure-runtime`: the plans of plans[0..n) the scheduler will run, those
 * without an ok run in the database (it skips the others, so their classes need no
 * probe), copied (shallow: they share the plans' strings) into *out, a malloc'ed array
 * the caller frees, *kept of them. No database: all of them. Returns MT_EXIT_OK, or
 * MT_EXIT_DB after a message. */
static int plans_to_run(const char *db, const struct mt_plan *plans, size_t n, struct mt_plan **out,
                        size_t *kept)
{
    char err[2048];
    struct mt_store *st = NULL;
    *kept = 0;
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) {
        fprintf(stderr, "memtrade: out of memory\n");
        return MT_EXIT_DB;
    }
    if (access(db, F_OK) == 0 && mt_store_open(db, MT_STORE_READONLY, &st, err, sizeof err)) {
        fprintf(stderr, "memtrade: %s\n", err);
        free(*out);
        *out = NULL;
        return MT_EXIT_DB;
    }
    for (size_t i = 0; i < n; i++) {
        int found = st ? mt_store_find_ok(st, plans[i].config_key, (int)plans[i].repeat, NULL) : 0;
        if (found < 0) {
            fprintf(stderr, "memtrade: %s\n", mt_store_error(st));
            mt_store_close(st);
            free(*out);
            *out = NULL;
            return MT_EXIT_DB;
        }
        if (found == 0) (*out)[(*kept)++] = plans[i];
    }
    if (st) mt_store_close(st);
    fprintf(stderr,
            "memtrade: --resume: %zu of %zu runs already ok; probing the classes of the "
            "%zu that will run\n",
            n - *kept, n, *kept);
    return MT_EXIT_OK;
}

/* Opens the store, runs the plans (in a sweep row when `info` is given), closes. */
static int execute(struct mt_cli_common *co, struct mt_plan *plans, size_t n, size_t jobs,
                   uint64_t budget, int resume, const struct mt_store_sweep_info *info)
{
    char err[2048] = "";
    struct mt_store *st;
    if (mt_store_open(co->db, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_DB;
    }
    double wait_s = DB_WAIT_S;
    const char *env_wait = getenv("MEMTRADE_DB_WAIT");
    if (env_wait && *env_wait && (mt_util_parse_seconds(env_wait, &wait_s) != 0 || wait_s < 0)) {
        fprintf(stderr, "memtrade: MEMTRADE_DB_WAIT takes seconds (e.g. 30, 5m), not '%s'\n",
                env_wait);
        mt_store_close(st);
        return MT_EXIT_USAGE;
    }
    mt_store_set_wait(st, wait_s, say_waiting, NULL, &mt_cli_stop);
    char *facts = mt_facts_json();
    int rc = 0;
    size_t stale = 0;
    struct mt_recover_counts rec = {0};
    struct mt_runner_opts ro_rec = mt_cli_runner_opts(co);
    if (resume && mt_recover_scratch(st, &ro_rec, &rec, err, sizeof err) != 0) rc = -1;
    if (rec.stored || rec.removed)
        fprintf(stderr,
                "memtrade: scratch folders left by an earlier harness: %zu runs stored from "
                "their events, %zu folders of recorded runs removed\n",
                rec.stored, rec.removed);
    if (rc == 0 && resume &&
        mt_store_mark_interrupted_running(
            st, "harness stopped before the run ended (found by --resume)", &stale) != 0)
        rc = -1;
    stale += rec.interrupted;
    if (stale)
        fprintf(stderr,
                "memtrade: %zu runs left 'running' by an earlier harness marked interrupted\n",
                stale);
    int64_t sweep_id = 0;
    if (rc == 0 && info) {
        struct mt_store_sweep_info si = *info;
        si.facts_json = facts;
        if (mt_store_sweep_begin(st, &si, &sweep_id) != 0) rc = -1;
    }
    struct mt_sched_result res = {0};
    if (rc == 0) {
        mt_cli_catch_stop();
        struct mt_runner_opts ro = mt_cli_runner_opts(co);
        ro.shared_cores = jobs > 1;
        struct mt_sched_opts so = {.runner = &ro,
                                   .jobs = jobs,
                                   .mem_budget = budget,
                                   .resume = resume,
                                   .sweep_id = sweep_id,
                                   .facts_json = facts,
                                   .progress = stderr,
                                   .tty = isatty(2),
                                   .stop = &mt_cli_stop};
        rc = mt_sched_run(st, plans, n, &so, &res, err, sizeof err);
        if (rc == 0 && sweep_id && mt_store_sweep_finish(st, sweep_id) != 0) rc = -1;
    }
    if (rc == -1)
        fprintf(stderr, "memtrade: database error: %s\n", err[0] ? err : mt_store_error(st));
    else if (rc == -2)
        fprintf(stderr, "memtrade: %s\n", err);
    print_summary(&res, co->db);
    free(facts);
    mt_store_close(st);
    return exit_for(rc, &res);
}

static const char run_help[] =
    "usage: memtrade run WORKLOAD [-p key=value]... [options]\n\n"
    "Runs one configuration of a workload (--repeat times) in child processes\n"
    "and records each run, whatever its outcome, in the database.\n\n"
    "  -p, --param k=v    set a parameter (see memtrade describe WORKLOAD)\n"
    "  --repeat N         runs of this configuration (default 1)\n"
    "  --timeout S        kill a run after S seconds (suffix s, m, h) -> timeout\n"
    "  --mem-limit BYTES  per-rank memory limit (K, M, G, KiB...) -> oom\n"
    "  --threads N        threads per rank (default: OMP_NUM_THREADS, else all cores)\n"
    "  --seed N           run seed for workloads without a 'seed' parameter\n"
    "  --label TEXT       stored as the run's label (memtrade fit --verify marks its "
    "runs)\n" COMMON_HELP;

int mt_cmd_run(int argc, char **argv)
{
    enum { MAX_P = 256 };
    const char *keys[MAX_P], *vals[MAX_P];
    size_t nkv = 0;
    int64_t repeat = 1, seed = 1;
    const char *label = NULL;
    int c, measure = 0;
    const struct mt_cli_opt own[] = {MT_CLI_ARG("param", 'p'),
                                     MT_CLI_ARG("repeat", OPT_REPEAT),
                                     MT_CLI_ARG("seed", OPT_SEED),
                                     MT_CLI_TEXT("label", &label),
                                     MT_CLI_FLAG("measure-runtime", &measure, 1),
                                     {0}};
    struct mt_cli_parser op = {.cmd = "run",
                               .shared = MT_CLI_RUNNING | MT_CLI_LIMITS,
                               .shortopts = "p:",
                               .own = own,
                               .help = run_help};
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) {
        if (c == 'p') {
            if (mt_cli_param_option("run", optarg, keys, vals, &nkv, MAX_P)) return MT_EXIT_USAGE;
        } else if (c == OPT_REPEAT) {
            if (mt_util_parse_i64(optarg, &repeat) || repeat < 1 || repeat > 10000) {
                fprintf(stderr, "memtrade run: --repeat takes an integer in [1, 10000]\n");
                return MT_EXIT_USAGE;
            }
        } else if (mt_util_parse_i64(optarg, &seed) || seed < 0) { /* OPT_SEED */
            fprintf(stderr, "memtrade run: --seed takes a non-negative integer\n");
            return MT_EXIT_USAGE;
        }
    }
    int rc = mt_cli_options_end(&op, c, argc, 1, "WORKLOAD [-p key=value]...");
    if (rc >= 0) return rc;
    char err[2048];
    struct mt_registry reg;
    if (mt_cli_finish_common(&op.co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_SYSTEM;
    }
    if (mt_cli_load_plugins(&op.co, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    const char *name = argv[optind];
    const struct mt_plugin *pl = mt_plugins_find(&reg, name);
    struct mt_plan *plans = calloc((size_t)repeat, sizeof *plans);
    int code = MT_EXIT_USAGE;
    if (!pl) {
        mt_plugins_explain_unknown(&reg, name, err, sizeof err);
        fprintf(stderr, "memtrade: %s\n", err);
        goto out;
    }
    if (!plans) {
        code = MT_EXIT_SYSTEM;
        goto out;
    }
    for (int64_t i = 0; i < repeat; i++) {
        struct mt_plan *p = &plans[i];
        p->plugin = pl;
        p->repeat = (size_t)i;
        p->grid_index = (size_t)i;
        p->threads = op.lim.threads ? op.lim.threads : mt_cli_default_threads();
        p->threads_auto = !op.lim.threads;
        p->timeout_s = op.lim.timeout_s;
        p->mem_limit = op.lim.mem_limit;
        if (label && !(p->label = strdup(label))) {
            code = MT_EXIT_SYSTEM;
            goto out;
        }
        if (mt_params_resolve(&pl->desc, keys, vals, nkv, &p->params, err, sizeof err) != 0 ||
            mt_plan_finish(p, (uint64_t)seed, MT_UNKNOWN_ESTIMATE, err, sizeof err) != 0) {
            fprintf(stderr, "memtrade: %s\n", err);
            goto out;
        }
    }
    code = measure ? measure_runtime(&op.co, plans, (size_t)repeat, 0) : MT_EXIT_OK;
    if (code == MT_EXIT_OK)
        code = execute(&op.co, plans, (size_t)repeat, 1, mt_cli_default_budget(), 0, NULL);
out:
    for (int64_t i = 0; plans && i < repeat; i++)
        mt_plan_free(&plans[i]);
    free(plans);
    mt_plugins_free(&reg);
    return code;
}

static void print_grid(const struct mt_plan *plans, size_t n, size_t total)
{
    printf("%zu runs (of %zu in the grid)\n", n, total);
    printf("%-6s %-20s %-6s %-6s %-7s %-10s %s\n", "index", "workload", "repeat", "seed", "threads",
           "estimate", "config_key");
    for (size_t i = 0; i < n; i++) {
        const struct mt_plan *p = &plans[i];
        char wl[128], est[32];
        snprintf(wl, sizeof wl, "%s%s%s", p->plugin->desc.name, p->label ? "." : "",
                 p->label ? p->label : "");
        mt_util_fmt_bytes(est, sizeof est, (double)p->mem_estimate);
        printf("%-6zu %-20s %-6zu %-6llu %-7d %-10s %s\n", p->grid_index, wl, p->repeat,
               (unsigned long long)p->seed, p->threads, p->estimate_known ? est : "unknown",
               p->config_key);
    }
}

static const char sweep_help[] =
    "usage: memtrade sweep FILE.ini [options]\n\n"
    "Runs the grid a sweep file describes (format: harness/sweepspec.h and\n"
    "README): every workload section's cartesian product, each repeat.\n"
    "Everything is checked before the database is touched.\n\n"
    "  -j, --jobs N       runs in parallel (default 1)\n"
    "  --mem-budget BYTES memory the parallel runs may need together, from each\n"
    "                     workload's estimate (default 75% of RAM; unknown\n"
    "                     estimates count 1 GiB)\n"
    "  --resume           skip configurations already ok in the database; mark\n"
    "                     runs left 'running' by a killed harness interrupted\n"
    "  --dry-run          print the grid and exit (no database); with\n"
    "                     --measure-runtime also the classes a probe would measure\n"
    "  --shard I/N        run only grid indexes with index % N == I-1\n"
    "  --threads N        threads per rank when the file does not say\n"
    "                     (default OMP_NUM_THREADS, else cores, / jobs)\n"
    "  --timeout S        per-run timeout when the file does not say\n"
    "  --mem-limit BYTES  per-rank memory limit when the file does not "
    "say\n" COMMON_HELP;

int mt_cmd_sweep(int argc, char **argv)
{
    int64_t jobs = 1;
    uint64_t budget = 0;
    int resume = 0, dry = 0, measure = 0, c;
    size_t shard_i = 1, shard_n = 1;
    const char *shard = NULL;
    const struct mt_cli_opt own[] = {MT_CLI_ARG("jobs", 'j'),
                                     MT_CLI_ARG("mem-budget", OPT_BUDGET),
                                     MT_CLI_FLAG("resume", &resume, 1),
                                     MT_CLI_FLAG("dry-run", &dry, 1),
                                     MT_CLI_ARG("shard", OPT_SHARD),
                                     MT_CLI_FLAG("measure-runtime", &measure, 1),
                                     {0}};
    struct mt_cli_parser op = {.cmd = "sweep",
                               .shared = MT_CLI_RUNNING | MT_CLI_LIMITS,
                               .shortopts = "j:",
                               .own = own,
                               .help = sweep_help};
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) {
        if (c == 'j') {
            if (mt_util_parse_i64(optarg, &jobs) || jobs < 1 || jobs > 256) {
                fprintf(stderr, "memtrade sweep: --jobs takes an integer in [1, 256]\n");
                return MT_EXIT_USAGE;
            }
        } else if (c == OPT_BUDGET) {
            if (mt_util_parse_bytes(optarg, &budget) || budget == 0) {
                fprintf(stderr, "memtrade sweep: --mem-budget takes a byte size (e.g. 8G)\n");
                return MT_EXIT_USAGE;
            }
        } else if (mt_spec_parse_shard(optarg, &shard_i, &shard_n)) { /* OPT_SHARD */
            fprintf(stderr, "memtrade sweep: --shard takes I/N with 1 <= I <= N, not '%s'\n",
                    optarg);
            return MT_EXIT_USAGE;
        } else {
            shard = optarg;
        }
    }
    int rc = mt_cli_options_end(&op, c, argc, 1, "FILE.ini [options]");
    if (rc >= 0) return rc;
    char err[4096];
    struct mt_spec spec;
    if (mt_spec_parse(argv[optind], &spec, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    if (mt_cli_finish_common(&op.co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        mt_spec_free(&spec);
        return MT_EXIT_SYSTEM;
    }
    struct mt_registry reg;
    if (mt_cli_load_plugins(&op.co, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        mt_spec_free(&spec);
        return MT_EXIT_USAGE;
    }
    int threads = op.lim.threads ? op.lim.threads : mt_cli_default_threads() / (int)jobs;
    struct mt_plan *plans;
    size_t n;
    if (mt_spec_expand(&spec, &reg, threads > 0 ? threads : 1, MT_UNKNOWN_ESTIMATE, &plans, &n, err,
                       sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        mt_plugins_free(&reg);
        mt_spec_free(&spec);
        return MT_EXIT_USAGE;
    }
    /* The shard: grid indexes congruent to I-1 modulo N. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (plans[i].grid_index % shard_n == shard_i - 1)
            plans[kept++] = plans[i];
        else
            mt_plan_free(&plans[i]);
    }
    for (size_t i = 0; i < kept; i++) { /* command-line limits apply where the file is silent */
        if (!plans[i].timeout_s) plans[i].timeout_s = op.lim.timeout_s;
        if (!plans[i].mem_limit) plans[i].mem_limit = op.lim.mem_limit;
    }
    /* the classes to probe: those of the runs that will run (--resume skips those ok) */
    struct mt_plan *probe = plans, *will = NULL;
    size_t n_probe = kept;
    int code =
        measure && resume ? plans_to_run(op.co.db, plans, kept, &will, &n_probe) : MT_EXIT_OK;
    if (will) probe = will;
    if (code != MT_EXIT_OK) {
        /* the database could not say which runs will run: nothing probed, nothing run */
    } else if (dry) {
        print_grid(plans, kept, n);
        code = measure ? measure_runtime(&op.co, probe, n_probe, 1) : MT_EXIT_OK;
    } else {
        struct mt_store_sweep_info info = {
            .name = spec.name, .spec_path = spec.path, .spec_text = spec.text, .shard = shard};
        code = measure ? measure_runtime(&op.co, probe, n_probe, 0) : MT_EXIT_OK;
        if (code == MT_EXIT_OK)
            code = execute(&op.co, plans, kept, (size_t)jobs,
                           budget ? budget : mt_cli_default_budget(), resume, &info);
    }
    free(will);
    for (size_t i = 0; i < kept; i++)
        mt_plan_free(&plans[i]);
    free(plans);
    mt_spec_free(&spec);
    mt_plugins_free(&reg);
    return code;
}
