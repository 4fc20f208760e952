/* harness/main.c — `memtrade`: dispatches to a command, holds the shared setup.
 * Not for: any command's logic (cmd_*.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child/child.h"
#include "cli.h"

volatile sig_atomic_t mt_cli_stop = 0;

static void on_stop(int sig)
{
    (void)sig;
    mt_cli_stop = 1;
}

void mt_cli_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* a closed terminal or ssh session stops cleanly too */
}

uint64_t mt_cli_default_budget(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib ? kib * 1024ULL / 4 * 3 : 4ULL << 30;
}

int mt_cli_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int mt_cli_default_threads(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long n = strtol(env, &end, 10);
        /* "4" or the first level of a nested list ("4,2"); anything else is ignored */
        if (!errno && end != env && (*end == 0 || *end == ',') && n >= 1 && n <= 4096)
            return (int)n;
    }
    return mt_cli_cores();
}

static int mkdir_parents(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            if (!c) return 0;
            *p = c;
        }
    }
}

int mt_cli_finish_common(struct mt_cli_common *c, char *err, size_t errlen)
{
    if (!c->out) c->out = "out";
    if (!c->db) {
        const char *env = getenv("MEMTRADE_DB");
        if (env && *env) {
            c->db = env;
        } else {
            snprintf(c->db_buf, sizeof c->db_buf, "%s/memtrade.db", c->out);
            c->db = c->db_buf;
        }
    }
    if (!c->launcher) {
        const char *env = getenv("MEMTRADE_LAUNCHER");
        c->launcher = env && *env ? env : MT_DEFAULT_LAUNCHER;
    }
    if (!c->heap) c->heap = "sampled";
    snprintf(c->scratch, sizeof c->scratch, "%s/scratch", c->out);
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(c->cache, sizeof c->cache, "%s/memtrade", xdg);
    else
        snprintf(c->cache, sizeof c->cache, "%s/.cache/memtrade", home && *home ? home : "/tmp");
    if (mkdir_parents(c->cache) != 0) {
        snprintf(err, errlen, "cannot create the model cache %s: %s", c->cache, strerror(errno));
        return -1;
    }
    ssize_t n = readlink("/proc/self/exe", c->exe, sizeof c->exe - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot find my own executable: %s", strerror(errno));
        return -1;
    }
    c->exe[n] = '\0';
    return 0;
}

static void warn_plugin(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "memtrade: warning: plugin refused: %s\n", msg);
}

int mt_cli_load_plugins(const struct mt_cli_common *c, struct mt_registry *reg, char *err,
                        size_t errlen)
{
    memset(reg, 0, sizeof *reg);
    char **dirs = mt_plugins_default_dirs();
    size_t n = 0;
    while (dirs && dirs[n])
        n++;
    mt_plugins_scan(reg, (const char *const *)dirs, n, warn_plugin, NULL);
    mt_plugins_free_dirs(dirs);
    if (c && c->plugin && mt_plugins_add(reg, c->plugin, err, errlen) != 0) {
        mt_plugins_free(reg);
        return -1;
    }
    return 0;
}

struct mt_runner_opts mt_cli_runner_opts(const struct mt_cli_common *c)
{
    return (struct mt_runner_opts){.exe = c->exe,
                                   .scratch_root = c->scratch,
                                   .cache_dir = c->cache,
                                   .heap_mode = c->heap,
                                   .launcher = c->launcher,
                                   .keep_scratch = c->keep_scratch,
                                   .db_path = c->db};
}

static const char usage[] =
    "usage: memtrade COMMAND [OPTIONS]\n"
    "\n"
    "Benchmarks and memory-profiles LLM memory optimizations (workload plugins).\n"
    "\n"
    "commands:\n"
    "  list [--json]               workloads found, with their parameters\n"
    "  describe WORKLOAD|MODEL     one workload's parameters, ranges and help, or the\n"
    "                              shape of a model file (Hugging Face folder, .gguf)\n"
    "  run WORKLOAD [-p k=v]...    run one configuration\n"
    "  sweep FILE.ini              run a grid of configurations\n"
    "  query ...                   read the database (runs, show, compare, pareto, sites, sql)\n"
    "  merge OUT.db IN.db...       join shard databases\n"
    "  profile [...] -- CMD ARGS   profile any program as a run of workload 'external'\n"
    "  plot [--db F] [--out DIR]   plots and report.html (see memtrade plot --help)\n"
    "  export MODEL --format hf|gguf OUT   a checkpoint or model file as HF folder / GGUF\n"
    "  plan WORKLOAD [-p k=v]...   predicted bytes per category and phase, nothing run\n"
    "  fit --budget B --for G M    the most accurate configuration of model M within B\n"
    "\n"
    "'memtrade COMMAND --help' describes each command.\n"
    "\n"
    "exit codes:\n"
    "  0  ok: every run ended ok (or was skipped by --resume)\n"
    "  1  some runs ended failed, crashed, timeout or oom (all were recorded)\n"
    "  2  usage or input error: options, sweep file, workload, parameter, plugin\n"
    "  3  database error: cannot open, not a memtrade database, query refused or failed\n"
    "  4  system error: cannot fork, create folders, out of memory; a full scratch\n"
    "     disk (the sweep stops: measurements could not be written)\n"
    "  5  interrupted by SIGINT/SIGTERM/SIGHUP (running runs recorded as interrupted)\n"
    "\n"
    "environment:\n"
    "  MEMTRADE_DB           database (default out/memtrade.db; --db overrides)\n"
    "  MEMTRADE_PLUGIN_PATH  ':'-separated plugin folders searched first\n"
    "  MEMTRADE_LAUNCHER     launcher template for multi-rank workloads\n"
    "                        (default \"" MT_DEFAULT_LAUNCHER "\")\n"
    "  MEMTRADE_CORPUS       training text (default: the model library's, fortunes)\n"
    "  XDG_CACHE_HOME        model cache in $XDG_CACHE_HOME/memtrade (else ~/.cache)\n";

int mt_cli_param_option(const char *cmd, char *arg, const char **keys, const char **vals, size_t *n,
                        size_t cap)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "memtrade %s: -p takes key=value, not '%s'\n", cmd, arg);
        return -1;
    }
    if (*n == cap) {
        fprintf(stderr, "memtrade %s: more than %zu -p options\n", cmd, cap);
        return -1;
    }
    *eq = '\0';
    keys[*n] = arg;
    vals[(*n)++] = eq + 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "__child") == 0) return mt_child_main(argc, argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? MT_EXIT_USAGE : MT_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"list", mt_cmd_list},       {"describe", mt_cmd_describe}, {"run", mt_cmd_run},
                {"sweep", mt_cmd_sweep},     {"query", mt_cmd_query},       {"merge", mt_cmd_merge},
                {"profile", mt_cmd_profile}, {"plot", mt_cmd_plot},
                {"export", mt_cmd_export},   {"plan", mt_cmd_plan},
                {"fit", mt_cmd_fit}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "memtrade: unknown command '%s' (see memtrade --help)\n", argv[1]);
    return MT_EXIT_USAGE;
}
