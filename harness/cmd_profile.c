/* harness/cmd_profile.c — `memtrade profile -- CMD ARGS...`: any program as a run of
 * workload `external`, under the heap profiler, with the statuses of any run.
 * Not for: plugins (run, sweep). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "child/child.h"
#include "cli.h"
#include "facts.h"
#include "nvml.h"
#include "runner_record.h"
#include "runner_spawn.h"
#include "reader.h"
#include "store.h"
#include "util.h"

static const char profile_help[] =
    "usage: memtrade profile [options] -- COMMAND ARGS...\n"
    "\n"
    "Runs COMMAND under the heap profiler (LD_PRELOAD) as a run of workload 'external'\n"
    "(parameter command = the command line), records its allocation sites, timeline and\n"
    "peak RSS, and ends with the status any run has (ok when it exits 0).\n"
    "\n"
    "  --db FILE          database (default $MEMTRADE_DB, else OUT/memtrade.db)\n"
    "  --out DIR          output folder (default out/)\n"
    "  --mode MODE        full (default: every allocation) or sampled\n"
    "  --timeout S        kill the program after S seconds -> timeout\n"
    "  --mem-limit BYTES  memory limit -> oom\n"
    "  --keep-scratch     keep the scratch folder (heap report, output)\n"
    "  --follow-exec      also profile the programs it runs (default): each process writes\n"
    "                     its own report; their sites and totals join the run's\n"
    "  --no-follow-exec   profile COMMAND's own process only (what it execs runs bare)\n"
    "  --device           also record device memory: the CUDA driver's memory calls\n"
    "                     (interposed, with stacks and categories) and NVML's used device\n"
    "                     memory of the program's processes every 10 ms (when NVML exists)\n"
    "\n"
    "A statically linked COMMAND cannot be profiled (LD_PRELOAD): its heap metrics are\n"
    "stored unavailable with that reason. A missing or non-executable COMMAND is an\n"
    "error (exit 2), not a run.\n"
    "\n"
    "Then: memtrade query sites RUN, or memtrade query sites RUN --format folded.\n";

/* The file execvp would run for `name`: a path as given, or the first PATH entry that
 * holds it. Returns 0, or -1 with why in err (missing, not executable, a folder). */
static int resolve_program(const char *name, char *out, size_t cap, char *err, size_t errlen)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    int saw_noexec = 0;
    for (const char *dir = path;;) {
        size_t len = strcspn(dir, ":");
        if (strchr(name, '/'))
            snprintf(out, cap, "%s", name);
        else
            snprintf(out, cap, "%.*s/%s", (int)len, len ? dir : ".", name);
        struct stat sb;
        if (stat(out, &sb) == 0) {
            if (S_ISREG(sb.st_mode) && access(out, X_OK) == 0) return 0;
            saw_noexec = 1;
            if (strchr(name, '/')) {
                snprintf(err, errlen, "cannot execute %s: %s", name,
                         S_ISDIR(sb.st_mode) ? "it is a directory" : "permission denied");
                return -1;
            }
        } else if (strchr(name, '/')) {
            snprintf(err, errlen, "cannot execute %s: %s", name, strerror(errno));
            return -1;
        }
        if (!dir[len]) break;
        dir += len + 1;
    }
    snprintf(err, errlen, "cannot execute %s: %s", name,
             saw_noexec ? "found in PATH but not an executable file" : "not found in PATH");
    return -1;
}

/* Is `file` an ELF executable without a program interpreter (statically linked)? The
 * preloaded heap profiler cannot enter such a process. */
static int is_static_elf(const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    Elf64_Ehdr eh;
    int is_static = 0;
    if (read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
        eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
        is_static = 1;
        for (int i = 0; i < eh.e_phnum && is_static; i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (size_t)i * sizeof ph)) !=
                (ssize_t)sizeof ph) {
                is_static = 0; /* unreadable: let the run say what happens */
                break;
            }
            if (ph.p_type == PT_INTERP) is_static = 0;
        }
    }
    close(fd);
    return is_static;
}

/* Stores NVML's witness for the run: the peak of the program's processes and of the
 * devices' used memory above the start, with their timelines; or, without NVML, the
 * reason (never 0). Returns 0 or -1 (store error). */
static int store_nvml(struct mt_store *st, int64_t run_id, struct mt_nvml *nv, const char *absent)
{
    char why[512];
    long long peak;
    int rc = mt_store_begin(st);
    if (!nv) {
        if (!rc)
            rc = mt_store_metric_unavailable(st, run_id, -1, "nvml_peak_device_bytes", "bytes",
                                             absent);
        if (!rc)
            rc = mt_store_metric_unavailable(st, run_id, -1, "nvml_device_used_peak_bytes", "bytes",
                                             absent);
        return rc ? rc : mt_store_commit(st);
    }
    size_t n;
    const struct mt_nvml_sample *s = mt_nvml_samples(nv, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        if (s[i].tree_bytes >= 0)
            rc = mt_store_sample(st, run_id, 0, "nvml.used", s[i].t, (double)s[i].tree_bytes, NULL);
        if (!rc)
            rc = mt_store_sample(st, run_id, 0, "nvml.device_used", s[i].t,
                                 (double)s[i].used_delta_bytes, NULL);
    }
    long long delta = mt_nvml_used_delta_peak(nv);
    if (!rc)
        rc = mt_nvml_tree_peak(nv, &peak, why, sizeof why) == 0
                 ? mt_store_metric(st, run_id, -1, "nvml_peak_device_bytes", (double)peak, "bytes")
                 : mt_store_metric_unavailable(st, run_id, -1, "nvml_peak_device_bytes", "bytes",
                                               why);
    if (!rc)
        rc = mt_store_metric(st, run_id, -1, "nvml_device_used_peak_bytes", (double)delta, "bytes");
    return rc ? rc : mt_store_commit(st);
}

/* Prints the run's device memory figures (both witnesses) for the terminal. */
static void print_device(struct mt_store *st, int64_t run_id)
{
    static const char *const names[] = {"peak_device_bytes",      "peak_device_mapped_bytes",
                                        "peak_pinned_bytes",      "peak_managed_bytes",
                                        "device_failed_calls",    "device_unknown_frees",
                                        "nvml_peak_device_bytes", "nvml_device_used_peak_bytes"};
    struct mt_read *rd;
    struct mt_read_run *run;
    if (mt_read_open(st, &rd) != 0) return;
    if (mt_read_run(rd, run_id, &run) == 1)
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            for (size_t i = 0; i < run->n_metrics; i++) {
                const struct mt_read_metric *m = &run->metrics[i];
                if (m->category || strcmp(m->name, names[k])) continue;
                if (m->has)
                    fprintf(stderr, "memtrade: device: %s %.0f\n", m->name, m->value);
                else
                    fprintf(stderr, "memtrade: device: %s unavailable: %s\n", m->name,
                            m->unavailable ? m->unavailable : "?");
            }
    mt_read_close(rd);
}

/* The run's error text (malloc'd), or NULL when it has none. */
static char *run_error(struct mt_store *st, int64_t run_id)
{
    struct mt_read *rd;
    struct mt_read_run *run;
    char *text = NULL;
    if (mt_read_open(st, &rd) != 0) return NULL;
    if (mt_read_run(rd, run_id, &run) == 1 && run->error) text = strdup(run->error);
    mt_read_close(rd);
    return text;
}

int mt_cmd_profile(int argc, char **argv)
{
    enum { O_MODE = MT_OPT_OWN };
    int follow_exec = 1, device = 0;
    const struct mt_cli_opt own[] = {MT_CLI_ARG("mode", O_MODE),
                                     MT_CLI_FLAG("follow-exec", &follow_exec, 1),
                                     MT_CLI_FLAG("no-follow-exec", &follow_exec, 0),
                                     MT_CLI_FLAG("device", &device, 1),
                                     {0}};
    struct mt_cli_parser op = {.cmd = "profile",
                               .co = {.heap = "full"},
                               .shared = MT_CLI_DB | MT_CLI_OUT | MT_CLI_KEEP | MT_CLI_TIMEOUT |
                                         MT_CLI_MEMLIMIT,
                               .shortopts = "+",
                               .own = own,
                               .help = profile_help};
    int c;
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) { /* O_MODE */
        if (strcmp(optarg, "full") && strcmp(optarg, "sampled")) {
            fprintf(stderr, "memtrade profile: --mode takes full or sampled\n");
            return MT_EXIT_USAGE;
        }
        op.co.heap = optarg;
    }
    if (c < 0) return mt_cli_options_exit(c);
    if (optind >= argc) {
        fputs(profile_help, stderr);
        return MT_EXIT_USAGE;
    }
    char **command = argv + optind;
    char err[2048] = "", exe[PATH_MAX + 256];
    if (resolve_program(command[0], exe, sizeof exe, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade profile: %s\n", err);
        return MT_EXIT_USAGE;
    }
    if (mt_cli_finish_common(&op.co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_SYSTEM;
    }
    char heapbuf[4096];
    const char *heap_absent = NULL;
    if (!mt_child_heap_lib(heapbuf, sizeof heapbuf)) {
        heap_absent = "heap profiler library not available in this build";
        fprintf(stderr, "memtrade: warning: the heap profiler library is not available in "
                        "this build; recording the run without allocation sites\n");
    } else if (is_static_elf(exe)) {
        heap_absent = "statically linked program: the heap profiler (LD_PRELOAD) cannot see "
                      "its allocations";
        fprintf(stderr,
                "memtrade: warning: %s is statically linked: the heap profiler "
                "(LD_PRELOAD) cannot see its allocations; its heap metrics will be "
                "stored unavailable\n",
                exe);
    }
    /* Read by the profiler in the program (MEMTRADE_HEAP_FOLLOW_EXEC, profilers/heap). */
    setenv("MEMTRADE_HEAP_FOLLOW_EXEC", follow_exec ? "1" : "0", 1);
    if (device) setenv("MEMTRADE_HEAP_DEVICE", "1", 1);
    /* The parameter: the command line, words joined by spaces. */
    size_t len = 1;
    for (char **a = command; *a; a++)
        len += strlen(*a) + 1;
    char *line = calloc(1, len);
    if (!line) return MT_EXIT_SYSTEM;
    for (char **a = command; *a; a++)
        strcat(strcat(line, a == command ? "" : " "), *a);
    struct mt_store_kv kv = {"command", line};
    char *key = mt_store_config_key("external", &kv, 1, err, sizeof err);
    struct mt_store *st;
    if (!key || mt_store_open(op.co.db, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        free(line), free(key);
        return MT_EXIT_DB;
    }
    char *facts = mt_facts_json();
    struct mt_store_run_info info = {.workload = "external",
                                     .config_key = key,
                                     .ranks = 1,
                                     .threads = -1,
                                     .git_rev = mt_facts_git_rev(),
                                     .facts_json = facts,
                                     .params = &kv,
                                     .n_params = 1};
    int64_t run_id;
    int code = MT_EXIT_OK;
    if (mt_store_run_begin(st, &info, &run_id) != 0) {
        fprintf(stderr, "memtrade: %s\n", mt_store_error(st));
        code = MT_EXIT_DB;
        goto out;
    }
    struct mt_runner_opts ro = mt_cli_runner_opts(&op.co);
    struct mt_job job = {.command = command,
                         .run_id = run_id,
                         .ranks = 1,
                         .mem_limit = op.lim.mem_limit,
                         .timeout_s = op.lim.timeout_s,
                         .heap_absent = heap_absent};
    mt_cli_catch_stop();
    if (mt_runner_start(&ro, &job, err, sizeof err) != 0) {
        struct mt_store_run_end end = {
            .status = MT_RUN_FAILED, .exit_code = -1, .signal = -1, .error = err, .wall_s = 0};
        mt_store_run_finish(st, run_id, &end);
        fprintf(stderr, "memtrade: %s\n", err);
        code = MT_EXIT_SYSTEM;
        goto out;
    }
    char nvml_absent[512] = "";
    struct mt_nvml *nv =
        device ? mt_nvml_start(job.pid, 10, nvml_absent, sizeof nvml_absent) : NULL;
    while (mt_runner_poll(&job, mt_runner_now()) == 0) {
        if (mt_cli_stop) mt_runner_interrupt(&job, mt_runner_now());
        struct timespec ts = {0, 25000000};
        nanosleep(&ts, NULL);
    }
    mt_nvml_stop(nv);
    enum mt_run_status status;
    if (mt_runner_record(st, &ro, &job, &status, err, sizeof err) != 0) {
        mt_nvml_free(nv);
        fprintf(stderr, "memtrade: database error: %s\n", err);
        code = MT_EXIT_DB;
        goto out;
    }
    int stored = 0;
    if (device && heap_absent)
        stored =
            mt_store_metric_unavailable(st, run_id, -1, "peak_device_bytes", "bytes", heap_absent);
    if (device && stored == 0) stored = store_nvml(st, run_id, nv, nvml_absent);
    mt_nvml_free(nv);
    if (stored != 0) {
        fprintf(stderr, "memtrade: database error: %s\n", mt_store_error(st));
        code = MT_EXIT_DB;
        goto out;
    }
    fprintf(stderr,
            "memtrade: run %lld %s (%.2f s); see: memtrade query show %lld; memtrade "
            "query sites %lld\n",
            (long long)run_id, mt_run_status_name(status), job.wall_s, (long long)run_id,
            (long long)run_id);
    if (device) print_device(st, run_id);
    /* An ok run with something missing carries the reason (the runs table's error). */
    char *why = status == MT_RUN_OK ? run_error(st, run_id) : NULL;
    if (why) fprintf(stderr, "memtrade: run %lld: %s\n", (long long)run_id, why);
    free(why);
    code = status == MT_RUN_OK            ? MT_EXIT_OK
           : status == MT_RUN_INTERRUPTED ? MT_EXIT_INTERRUPTED
                                          : MT_EXIT_RUNS_FAILED;
out:
    free(facts);
    free(key);
    free(line);
    mt_store_close(st);
    return code;
}
