/* harness/cli.h — the memtrade command-line commands and what they share.
 * What it is for: one function per command (cmd_*.c), the exit codes, and the common
 * setup (database path, output folder, plugin registry, runner options).
 * Not for: the work itself (plugins.c, sweepspec.c, scheduler.c, runner_*.c, results/). */
#ifndef MT_HARNESS_CLI_H
#define MT_HARNESS_CLI_H

#include <getopt.h>
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

/* The limits of each run a command starts (--timeout, --mem-limit, --threads; 0: none or
 * the default). */
struct mt_cli_limits {
    double timeout_s;
    uint64_t mem_limit;
    int threads;
};

/* ---- Options (cli_options.c) ----------------------------------------------------------
 * A command names the shared options it takes (MT_CLI_* bits; --help always) and lists its
 * own (ids: short option characters, or MT_OPT_OWN and up), then calls mt_cli_next_option
 * until it returns MT_CLI_END (operands from optind) or a negative code. */
enum {
    MT_CLI_DB = 1 << 0,
    MT_CLI_OUT = 1 << 1,
    MT_CLI_PLUGIN = 1 << 2,
    MT_CLI_HEAP = 1 << 3, /* --heap MODE and --no-heap */
    MT_CLI_LAUNCHER = 1 << 4,
    MT_CLI_KEEP = 1 << 5, /* --keep-scratch */
    MT_CLI_TIMEOUT = 1 << 6,
    MT_CLI_MEMLIMIT = 1 << 7,
    MT_CLI_THREADS = 1 << 8,
    MT_CLI_RUNNING = MT_CLI_DB | MT_CLI_OUT | MT_CLI_PLUGIN | MT_CLI_HEAP | MT_CLI_LAUNCHER |
                     MT_CLI_KEEP, /* what run and sweep share */
    MT_CLI_LIMITS = MT_CLI_TIMEOUT | MT_CLI_MEMLIMIT | MT_CLI_THREADS
};
/* The ids of the shared options (returned by no call), and the first id of a command's. */
enum {
    MT_OPT_DB = 1000,
    MT_OPT_OUT,
    MT_OPT_PLUGIN,
    MT_OPT_HEAP,
    MT_OPT_NO_HEAP,
    MT_OPT_LAUNCHER,
    MT_OPT_KEEP,
    MT_OPT_TIMEOUT,
    MT_OPT_MEMLIMIT,
    MT_OPT_THREADS,
    MT_OPT_HELP,
    MT_OPT_OWN = 1100,
    MT_OPT_TEXT = 2000 /* internal: the ids of `text` options (below) start here */
};
/* What mt_cli_next_option returns besides a command's own id. */
enum { MT_CLI_END = 0, MT_CLI_BAD = -1, MT_CLI_HELP = -2 };

/* One option of a command's own: long name, whether it takes an argument, id. An option
 * that only sets a variable says where instead of being returned (getopt_long's flag):
 * `flag`, an option without argument that stores `id` there; `text`, an option whose
 * argument is stored there (`arg` implied). A table ends with a zero entry; one with
 * `flag` or `text` rows is an automatic array (it points at the command's locals).
 * Rows are written with the MT_CLI_* macros below. */
struct mt_cli_opt {
    const char *name;
    int arg;
    int id;
    int *flag;
    const char **text;
};
/* --NAME ARG, returned as ID */
#define MT_CLI_ARG(NAME, ID)                                                                       \
    {                                                                                              \
        .name = (NAME), .arg = 1, .id = (ID)                                                       \
    }
/* --NAME, returned as ID */
#define MT_CLI_BARE(NAME, ID)                                                                      \
    {                                                                                              \
        .name = (NAME), .id = (ID)                                                                 \
    }
/* --NAME, stores VALUE in *VAR */
#define MT_CLI_FLAG(NAME, VAR, VALUE)                                                              \
    {                                                                                              \
        .name = (NAME), .id = (VALUE), .flag = (VAR)                                               \
    }
/* --NAME ARG, stores ARG in *VAR */
#define MT_CLI_TEXT(NAME, VAR)                                                                     \
    {                                                                                              \
        .name = (NAME), .text = (VAR)                                                              \
    }

struct mt_cli_parser {
    const char *cmd;              /* for messages: "run", "query" */
    unsigned shared;              /* MT_CLI_* bits */
    const char *shortopts;        /* getopt's, e.g. "p:" or "+" (NULL: none) */
    const struct mt_cli_opt *own; /* the command's own options (NULL: none) */
    const char *help;             /* printed to stdout for --help */
    struct mt_cli_common co;      /* filled by --db, --out, --plugin, --heap, ... */
    struct mt_cli_limits lim;     /* filled by --timeout, --mem-limit, --threads */
    int started;
    struct option table[48]; /* getopt_long's, built at the first call */
};

/* Contract: the next of the command's own options (its id, the argument in optarg), after
 * handling every shared one before it; MT_CLI_END when the options end (optind: the first
 * operand); MT_CLI_HELP after printing p->help; MT_CLI_BAD after getopt or a shared
 * option's check printed why. Starts over at argv[1] on a fresh parser. Not thread-safe
 * (getopt's globals). */
int mt_cli_next_option(struct mt_cli_parser *p, int argc, char **argv);
/* Contract: the exit code of a negative mt_cli_next_option result (help: MT_EXIT_OK, else
 * MT_EXIT_USAGE). */
int mt_cli_options_exit(int c);
/* Contract: after the option loop ended with c: the exit code the command returns now (c
 * negative: mt_cli_options_exit; not exactly `operands` operands: usage "memtrade CMD
 * USAGE (see --help)" printed, MT_EXIT_USAGE), or -1 when it goes on. */
int mt_cli_options_end(const struct mt_cli_parser *p, int c, int argc, int operands,
                       const char *usage);

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
