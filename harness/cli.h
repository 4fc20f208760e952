/* harness/cli.h — the memtrade command-line commands and what they share.
 * What it is for: one function per command (cmd_*.c), the exit codes, and the common
 * setup (database path, output folder, plugin registry, runner options).
 * Not for: the work itself (plugins.c, sweepspec.c, scheduler.c, runner_*.c, results/). */
#ifndef MT_HARNESS_CLI_H
#define MT_HARNESS_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "plugins.h"
#include "runner.h"

/* Exit codes: stable, documented in `memtrade --help`. */
enum mt_exit {
    MT_EXIT_OK = 0,          /* everything ran and every run is ok */
    MT_EXIT_RUNS_FAILED = 1, /* some runs ended failed/crashed/timeout/oom */
    MT_EXIT_USAGE = 2,       /* bad command line, sweep file, workload, parameter, plugin */
    MT_EXIT_DB = 3,          /* database error (cannot open, refused, query failed) */
    MT_EXIT_SYSTEM = 4,      /* cannot fork, create folders, out of memory; full scratch disk */
    MT_EXIT_INTERRUPTED = 5  /* stopped by SIGINT/SIGTERM/SIGHUP; running runs interrupted */
};

/* Set by the SIGINT/SIGTERM handler of run, sweep and profile. */
extern volatile sig_atomic_t mt_cli_stop;

/* Options every running command shares. */
struct mt_cli_common {
    const char *db;       /* --db, else $MEMTRADE_DB, else <out>/memtrade.db */
    const char *out;      /* --out, default "out" */
    const char *plugin;   /* --plugin PATH.so */
    const char *heap;     /* full|sampled|off */
    const char *launcher; /* --launcher, else $MEMTRADE_LAUNCHER, else default */
    int keep_scratch;
    char db_buf[4096], scratch[4096], cache[4096], exe[4096];
};

#define MT_DEFAULT_LAUNCHER "mpirun -np {ranks}"
#define MT_UNKNOWN_ESTIMATE (1ULL << 30)

/* Contract: fills the derived paths (db, scratch, cache, exe) and creates the cache
 * folder. Returns 0, or -1 with err. */
int mt_cli_finish_common(struct mt_cli_common *c, char *err, size_t errlen);
/* Contract: scans the plugin folders (warnings to stderr) and adds --plugin. Returns 0
 * (free *reg with mt_plugins_free), or -1 with err when the --plugin file was refused
 * (*reg is then empty and needs no freeing). */
int mt_cli_load_plugins(const struct mt_cli_common *c, struct mt_registry *reg, char *err,
                        size_t errlen);
/* Contract: the runner options from the common options. */
struct mt_runner_opts mt_cli_runner_opts(const struct mt_cli_common *c);
/* Contract: installs the SIGINT/SIGTERM/SIGHUP handler that sets mt_cli_stop. */
void mt_cli_catch_stop(void);
/* Contract: 75 % of MemTotal, or 4 GiB when /proc/meminfo cannot be read. */
uint64_t mt_cli_default_budget(void);
/* Contract: online CPUs (>= 1). */
int mt_cli_cores(void);
/* Contract: the threads a run uses when --threads is not given: OMP_NUM_THREADS when it
 * holds a positive integer (the first level of a list), else mt_cli_cores(). */
int mt_cli_default_threads(void);

/* Contract: 0 when metric `name` (NULL: nothing asked) is stored in the database or is
 * `pseudo` (a computed column; NULL for none); else prints "memtrade CMD: unknown metric
 * 'NAME' for OPT; ..." with the valid names, nearest first, and returns MT_EXIT_USAGE
 * (MT_EXIT_DB when the names cannot be read). */
struct mt_store;
int mt_cli_check_metric(struct mt_store *st, const char *cmd, const char *opt, const char *name,
                        const char *pseudo);

/* Contract: one `-p key=value` option of command `cmd`: cuts `arg` at its '=' (argv is
 * the command's to cut) and appends the key and value to keys/vals (capacity cap, *n
 * filled). Returns 0, or -1 after printing why (no '=', empty key, more than cap). */
int mt_cli_param_option(const char *cmd, char *arg, const char **keys, const char **vals, size_t *n,
                        size_t cap);
int mt_cmd_list(int argc, char **argv);
int mt_cmd_describe(int argc, char **argv);
int mt_cmd_run(int argc, char **argv);
int mt_cmd_sweep(int argc, char **argv);
int mt_cmd_query(int argc, char **argv);
int mt_cmd_merge(int argc, char **argv);
int mt_cmd_profile(int argc, char **argv);
int mt_cmd_plot(int argc, char **argv);
int mt_cmd_export(int argc, char **argv);
/* `memtrade describe PATH` of a model file (a folder or a .gguf): its shape and tensors. */
int mt_cmd_describe_model(const char *path);
int mt_cmd_plan(int argc, char **argv);
int mt_cmd_fit(int argc, char **argv);

#endif
