/* harness/runner.c — one run's process: start, watch, stop, record (see runner.h). */
#define _GNU_SOURCE
#include "runner.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "heapingest.h"
#include <memtrade/metrics.h>
#include "recover.h"
#include "util.h"

#define KILL_GRACE_S 2.0
#define OUTPUT_TAIL 4096

double mt_runner_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

/* ---------------------------------------------------------------- argv */

struct argv_buf {
    char **v;
    size_t n, cap;
};

static int argv_push(struct argv_buf *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 32;
        char **grown = realloc(a->v, ncap * sizeof *grown);
        if (!grown) return -1;
        a->v = grown;
        a->cap = ncap;
    }
    if (!(a->v[a->n] = strdup(s))) return -1;
    a->v[++a->n] = NULL;
    return 0;
}

static void argv_free(struct argv_buf *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

/* Splits the launcher template on whitespace and replaces {ranks}. */
static int push_launcher(struct argv_buf *a, const char *tmpl, int ranks)
{
    char *copy = strdup(tmpl), *save = NULL;
    if (!copy) return -1;
    int rc = 0;
    for (char *tok = strtok_r(copy, " \t", &save); tok && rc == 0;
         tok = strtok_r(NULL, " \t", &save)) {
        char buf[1024];
        size_t off = 0;
        for (const char *p = tok; *p && off + 16 < sizeof buf;) {
            if (strncmp(p, "{ranks}", 7) == 0) {
                off += (size_t)snprintf(buf + off, sizeof buf - off, "%d", ranks);
                p += 7;
            } else {
                buf[off++] = *p++;
            }
        }
        buf[off] = '\0';
        rc = argv_push(a, buf);
    }
    free(copy);
    return rc;
}

static int build_child_argv(const struct mt_runner_opts *o, const struct mt_job *job,
                            struct argv_buf *a)
{
    const struct mt_plan *p = job->plan;
    char num[32];
    int rc = 0;
    if (job->ranks > 1) rc |= push_launcher(a, o->launcher, job->ranks);
    rc |= argv_push(a, o->exe);
    rc |= argv_push(a, "__child");
    rc |= argv_push(a, "--plugin") | argv_push(a, p->plugin->path);
    rc |= argv_push(a, "--events") | argv_push(a, job->scratch);
    rc |= argv_push(a, "--scratch") | argv_push(a, job->scratch);
    snprintf(num, sizeof num, "%llu", (unsigned long long)p->seed);
    rc |= argv_push(a, "--seed") | argv_push(a, num);
    snprintf(num, sizeof num, "%d", p->threads);
    rc |= argv_push(a, "--threads") | argv_push(a, num);
    rc |= argv_push(a, "--cache") | argv_push(a, o->cache_dir ? o->cache_dir : "");
    rc |= argv_push(a, "--heap") | argv_push(a, o->heap_mode ? o->heap_mode : "off");
    const struct mt_workload *wl = &p->plugin->desc;
    for (size_t i = 0; i < wl->n_params; i++) {
        char *kv;
        if (asprintf(&kv, "%s=%s", wl->params[i].name, p->params.value[i]) < 0) return -1;
        rc |= argv_push(a, "-p") | argv_push(a, kv);
        free(kv);
    }
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- start */

int mt_runner_start(const struct mt_runner_opts *o, struct mt_job *job, char *err, size_t errlen)
{
    /* The harness pid too: two harnesses may share an output folder with two databases. */
    snprintf(job->scratch, sizeof job->scratch, "%s/run-%lld.%d", o->scratch_root,
             (long long)job->run_id, (int)getpid());
    if (access(job->scratch, F_OK) == 0) nftw(job->scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir_p(job->scratch) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", job->scratch, strerror(errno));
        return -1;
    }
    job->event_ranks = job->plan ? job->ranks : 0;
    job->exec_errno = 0;
    job->exec_what[0] = '\0';
    if (mt_recover_mark(o, job, err, errlen) != 0) return -1;
    struct argv_buf a = {0};
    int built = 0;
    if (job->plan) {
        built = build_child_argv(o, job, &a);
    } else {
        for (char *const *c = job->command; *c && built == 0; c++)
            built = argv_push(&a, *c);
    }
    char logpath[PATH_MAX + 32];
    snprintf(logpath, sizeof logpath, "%s/output.log", job->scratch);
    char heapbuf[PATH_MAX];
    const char *heap = job->plan ? NULL : mt_child_heap_lib(heapbuf, sizeof heapbuf);
    char heap_out[PATH_MAX + 32];
    snprintf(heap_out, sizeof heap_out, "%s/heap.0", job->scratch);
    job->progress = calloc((size_t)job->ranks, sizeof *job->progress);
    for (int r = 0; job->progress && r < job->ranks; r++) {
        char ev[PATH_MAX + 32];
        snprintf(ev, sizeof ev, "%s/events.%d", job->scratch, r);
        built |= mt_events_reader_init(&job->progress[r], ev);
    }
    if (built != 0 || !job->progress) {
        argv_free(&a);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* A program that cannot be executed says so through this pipe (closed by a successful
     * exec), so that the run is recorded failed with the reason, not crashed with 127. */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        argv_free(&a);
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        argv_free(&a);
        close(errpipe[0]);
        close(errpipe[1]);
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        close(errpipe[0]);
#ifndef MT_ASAN
        if (job->mem_limit) {
            struct rlimit rl = {(rlim_t)job->mem_limit, (rlim_t)job->mem_limit};
            setrlimit(RLIMIT_AS, &rl);
        }
#endif
        int out = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (in >= 0) dup2(in, 0);
        /* Spinning OpenMP workers steal the cores of the runs (or ranks) beside them:
         * measured here, a training step went from 40 ms to 730 ms. A user's own setting
         * wins. */
        if (o->shared_cores || job->ranks > 1) setenv("OMP_WAIT_POLICY", "passive", 0);
        if (job->ranks > 1) {
            /* More ranks than cores is a valid experiment here (4 ranks on 2 cores);
             * Open MPI refuses it unless told. A user's own setting wins. */
            setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
            if (geteuid() == 0) {
                setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
                setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
            }
        }
        if (heap && o->heap_mode && strcmp(o->heap_mode, "off") != 0) {
            setenv("LD_PRELOAD", heap, 1);
            setenv("MEMTRADE_HEAP_OUT", heap_out, 1);
            setenv("MEMTRADE_HEAP_MODE", o->heap_mode, 1);
        }
        execvp(a.v[0], a.v);
        int e = errno;
        dprintf(2, "memtrade: cannot execute %s: %s\n", a.v[0], strerror(e));
        ssize_t w = write(errpipe[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the kill below */
    close(errpipe[1]);
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(errpipe[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(errpipe[0]);
    job->pid = pid;
    job->started = mt_runner_now();
    job->term_sent = 0;
    job->reaped = 0;
    if (got == (ssize_t)sizeof exec_errno && exec_errno) {
        if (job->plan && job->ranks > 1)
            snprintf(job->exec_what, sizeof job->exec_what,
                     "the launcher '%.100s' (from --launcher or MEMTRADE_LAUNCHER: \"%.200s\")",
                     a.v[0], o->launcher);
        else
            snprintf(job->exec_what, sizeof job->exec_what, "'%.400s'", a.v[0]);
        job->exec_errno = exec_errno;
        while (wait4(pid, &job->wstatus, 0, &job->ru) < 0 && errno == EINTR) {
        }
        job->reaped = 1;
        job->wall_s = mt_runner_now() - job->started;
    }
    argv_free(&a);
    return 0;
}

/* ---------------------------------------------------------------- watch */

/* Resident bytes of the largest process in process group `pgid`, or of `pid` alone. */
static uint64_t group_max_rss(pid_t pgid, int whole_group)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!whole_group) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/statm", (int)pgid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 0;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) return 0;
        buf[n] = '\0';
        unsigned long long size, res;
        return sscanf(buf, "%llu %llu", &size, &res) == 2 ? res * (uint64_t)page : 0;
    }
    uint64_t best = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may contain spaces */
        int pgrp;
        long long rss;
        /* Fields after the name: state ppid pgrp ... rss is field 24 (22 after ')'). */
        if (!p || sscanf(p + 2,
                         "%*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                         "%*d %*d %*d %*d %*u %*u %lld",
                         &pgrp, &rss) != 2)
            continue;
        if (pgrp == pgid && (uint64_t)rss * (uint64_t)page > best)
            best = (uint64_t)rss * (uint64_t)page;
    }
    if (d) closedir(d);
    return best;
}

static int progress_event(void *arg, const struct mt_event *ev)
{
    struct mt_job *job = arg;
    if (ev->tag == MT_EV_PROGRESS) {
        job->done = strtod(ev->field[0], NULL);
        job->total = strtod(ev->field[1], NULL);
    }
    return 0;
}

int mt_runner_poll(struct mt_job *job, double now)
{
    if (job->reaped) return 1;
    pid_t got = wait4(job->pid, &job->wstatus, WNOHANG, &job->ru);
    if (got == job->pid) {
        job->reaped = 1;
        job->wall_s = now - job->started;
        kill(-job->pid, SIGKILL); /* anything the run left behind in its group */
        return 1;
    }
    if (job->timeout_s > 0 && !job->term_sent && now - job->started > job->timeout_s) {
        job->timed_out = 1;
        job->term_sent = now;
        kill(-job->pid, SIGTERM);
    }
    if (job->term_sent && now - job->term_sent > KILL_GRACE_S) kill(-job->pid, SIGKILL);
    if (job->mem_limit && !job->oom_killed && !job->term_sent) {
        uint64_t rss = group_max_rss(job->pid, job->ranks > 1);
        if (rss > job->mem_limit) {
            job->oom_killed = 1;
            job->oom_rss = rss;
            job->term_sent = now;
            kill(-job->pid, SIGKILL);
        }
    }
    if (job->progress) mt_events_reader_poll(&job->progress[0], progress_event, job);
    return 0;
}

void mt_runner_interrupt(struct mt_job *job, double now)
{
    if (job->reaped || job->interrupted) return;
    job->interrupted = 1;
    if (!job->term_sent) {
        job->term_sent = now;
        kill(-job->pid, SIGTERM);
    }
}

/* ---------------------------------------------------------------- record */

struct rank_state {
    int hello, done, fatal;
    long long rc, maxrss, vmpeak;
    int signo, fatal_errno, error_errno;
    char *error; /* last ERROR text */
};

struct run_metric { /* run-level aggregate of a multi-rank metric (metrics.h says how) */
    char *name, *unit;
    double value; /* max, or rank 0's */
    double sum;   /* over the ranks that reported it */
    size_t n;
    enum mt_metric_agg agg;
};

struct ingest {
    struct mt_job *job;
    struct mt_store *st;
    int64_t run_id;
    int rank, nranks;
    struct rank_state *rs;
    char region_path[1024];
    int64_t region_id;
    struct run_metric *agg;
    size_t nagg;
    size_t dropped;       /* events the store refused (the run is still recorded) */
    char first_drop[512]; /* the store's message for the first of them */
    char heap_note[1024]; /* why the heap profile is not (fully) stored; "" when it is */
};

/* Folds one rank's value of `name` into the run-level value, as the metric vocabulary's
 * aggregation for the name says (metrics.h). */
static void aggregate(struct ingest *in, const char *name, double v, const char *unit)
{
    struct run_metric *m = NULL;
    for (size_t i = 0; i < in->nagg && !m; i++)
        if (strcmp(in->agg[i].name, name) == 0) m = &in->agg[i];
    if (!m) {
        struct run_metric *grown = realloc(in->agg, (in->nagg + 1) * sizeof *grown);
        if (!grown) return;
        in->agg = grown;
        m = &in->agg[in->nagg++];
        *m =
            (struct run_metric){strdup(name), strdup(unit), v, 0.0, 0, mt_metric_lookup(name)->agg};
        if (m->agg == MT_AGG_RANK0 && in->rank != 0) m->value = NAN; /* until rank 0 says */
    }
    m->sum += v;
    m->n++;
    if (m->agg == MT_AGG_MAX ? v > m->value || m->n == 1 : in->rank == 0) m->value = v;
}

/* The run-level value of an aggregate; NAN when rank 0 never reported a RANK0 metric. */
static double aggregate_value(const struct run_metric *m)
{
    switch (m->agg) {
    case MT_AGG_SUM:
        return m->sum;
    case MT_AGG_MEAN:
        return m->sum / (double)m->n;
    default:
        return m->value;
    }
}

static int ingest_event(void *arg, const struct mt_event *ev)
{
    struct ingest *in = arg;
    struct rank_state *rs = &in->rs[in->rank];
    const char *const *f = ev->field;
    int mrank = in->nranks > 1 ? in->rank : -1;
    int rc = 0;
    switch (ev->tag) {
    case MT_EV_HELLO:
        rs->hello = 1;
        break;
    case MT_EV_METRIC:
        rc = mt_store_metric(in->st, in->run_id, mrank, f[0], strtod(f[1], NULL), f[2]);
        if (in->nranks > 1) aggregate(in, f[0], strtod(f[1], NULL), f[2]);
        break;
    case MT_EV_METRIC_NA:
        rc = mt_store_metric_unavailable(in->st, in->run_id, mrank, f[0], f[1], f[2]);
        break;
    case MT_EV_SAMPLE: {
        double x = strtod(f[1], NULL), y = strtod(f[2], NULL);
        if (isfinite(x) && isfinite(y))
            rc = mt_store_sample(in->st, in->run_id, in->rank, f[0], x, y, *f[3] ? f[3] : NULL);
        break;
    }
    case MT_EV_LOG:
        rc = mt_store_log(in->st, in->run_id, in->rank, strtod(f[0], NULL), f[1], f[2]);
        if (strcmp(f[1], "warn") == 0 || strcmp(f[1], "error") == 0) {
            if (in->job->warnings++ == 0 && in->nranks > 1)
                snprintf(in->job->first_warning, sizeof in->job->first_warning, "rank %d: %s",
                         in->rank, f[2]);
            else if (in->job->warnings == 1)
                snprintf(in->job->first_warning, sizeof in->job->first_warning, "%s", f[2]);
        }
        break;
    case MT_EV_ERROR:
        free(rs->error);
        rs->error = strdup(f[0]);
        rs->error_errno = atoi(f[1]);
        break;
    case MT_EV_REGION: {
        double cpu = *f[4] ? strtod(f[4], NULL) : NAN;
        if (in->rank == 0 && strcmp(f[0], "reference") == 0)
            in->job->reference_s = strtod(f[3], NULL);
        snprintf(in->region_path, sizeof in->region_path, "%s", f[0]);
        rc = mt_store_region(in->st, in->run_id, in->rank, f[0], strtoll(f[2], NULL, 10),
                             strtod(f[3], NULL), cpu, &in->region_id);
        break;
    }
    case MT_EV_COUNTER:
        if (strcmp(f[0], in->region_path) != 0) break; /* counters follow their region's line */
        rc = *f[2] ? mt_store_region_counter(in->st, in->region_id, f[1], strtod(f[2], NULL))
                   : mt_store_region_counter_unavailable(in->st, in->region_id, f[1], f[3]);
        break;
    case MT_EV_FACT: {
        char text[1024];
        snprintf(text, sizeof text, "fact %s=%s", f[0], f[1]);
        rc = mt_store_log(in->st, in->run_id, in->rank, 0, "debug", text);
        break;
    }
    case MT_EV_DONE:
        rs->done = 1;
        rs->rc = strtoll(f[0], NULL, 10);
        rs->maxrss = strtoll(f[1], NULL, 10);
        rs->vmpeak = strtoll(f[2], NULL, 10);
        break;
    case MT_EV_FATAL:
        rs->fatal = 1;
        rs->signo = atoi(f[0]);
        rs->fatal_errno = atoi(f[1]);
        rs->maxrss = strtoll(f[2], NULL, 10);
        rs->vmpeak = strtoll(f[3], NULL, 10);
        break;
    default:
        break;
    }
    if (rc != 0 && in->dropped++ == 0)
        snprintf(in->first_drop, sizeof in->first_drop, "%s", mt_store_error(in->st));
    return 0;
}

static void heap_metric(void *arg, const char *name, double value, const char *unit,
                        const char *reason)
{
    struct ingest *in = arg;
    int mrank = in->nranks > 1 ? in->rank : -1;
    int rc = reason ? mt_store_metric_unavailable(in->st, in->run_id, mrank, name, unit, reason)
                    : mt_store_metric(in->st, in->run_id, mrank, name, value, unit);
    if (!reason && in->nranks > 1) aggregate(in, name, value, unit);
    if (rc != 0 && in->dropped++ == 0)
        snprintf(in->first_drop, sizeof in->first_drop, "%s", mt_store_error(in->st));
}

/* Each rank's heap report, when the profiler ran; a problem is logged, not fatal. A rank
 * without one gets its region heap peaks stored as unavailable, with the reason. */
static int ingest_heap(struct ingest *in, const struct mt_job *job, const char *heap_mode)
{
    int rc = 0;
    int off = !heap_mode || strcmp(heap_mode, "off") == 0;
    for (int r = 0; r < job->ranks && rc == 0; r++) {
        char path[PATH_MAX + 32], err[1024];
        snprintf(path, sizeof path, "%s/heap.%d", job->scratch, r);
        in->rank = r;
        if (off || access(path, R_OK) != 0) {
            const char *why = off                ? "heap profiler off (--heap off)"
                              : job->heap_absent ? job->heap_absent
                                                 : "no heap report: the process died before "
                                                   "writing it";
            if (!off) { /* the run's totals are unknown, not absent */
                heap_metric(in, "peak_heap_bytes", NAN, "bytes", why);
                heap_metric(in, "heap_allocs", NAN, "count", why);
                heap_metric(in, "leaked_bytes", NAN, "bytes", why);
                snprintf(in->heap_note, sizeof in->heap_note, "%s", why);
            }
            if (mt_heapingest_no_report(in->st, job->run_id, r, why, err, sizeof err) != 0)
                rc = mt_store_log(in->st, job->run_id, r, job->wall_s, "warn", err);
            continue;
        }
        if (mt_heapingest_file(in->st, job->run_id, r, path, heap_metric, in, err, sizeof err) !=
            0) {
            char msg[1200];
            snprintf(msg, sizeof msg, "heap report not (fully) stored: %s", err);
            snprintf(in->heap_note, sizeof in->heap_note, "%s", err);
            rc = mt_store_log(in->st, job->run_id, r, job->wall_s, "warn", msg);
        }
    }
    return rc;
}

/* The last bytes the run printed (its libraries, the launcher, a sanitizer). */
static char *output_tail(const char *scratch)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/output.log", scratch);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > OUTPUT_TAIL ? size - OUTPUT_TAIL : 0;
    fseek(f, from, SEEK_SET);
    char *buf = calloc(1, OUTPUT_TAIL + 1);
    size_t n = buf ? fread(buf, 1, OUTPUT_TAIL, f) : 0;
    fclose(f);
    if (!buf || n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Near the limit: the address space (or RSS) came within 10 % of it. */
static int near_limit(long long bytes, uint64_t limit)
{
    return limit && bytes > 0 && (double)bytes >= 0.9 * (double)limit;
}

static void decide(const struct mt_job *job, const struct ingest *in, struct mt_store_run_end *end,
                   char *text, size_t cap)
{
    int ws = job->wstatus;
    end->exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    end->signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : -1;
    /* the run's own time: preparing its reference model (training it when the cache did
     * not have it) is the cache's work, not the method's; metric reference_s keeps it */
    end->wall_s = job->reference_s > 0.0 && job->reference_s < job->wall_s
                      ? job->wall_s - job->reference_s
                      : job->wall_s;
    text[0] = '\0';
    char lim[32];
    snprintf(lim, sizeof lim, "%.1f MiB", (double)job->mem_limit / 1048576.0);
    if (job->exec_errno) {
        end->status = MT_RUN_FAILED;
        snprintf(text, cap, "cannot execute %s: %s", job->exec_what, strerror(job->exec_errno));
        return;
    }
    if (job->harness_died) {
        end->status = MT_RUN_INTERRUPTED;
        snprintf(text, cap,
                 "harness stopped before the run ended; what the run reported was "
                 "stored from its scratch folder by --resume");
        return;
    }
    if (job->interrupted) {
        end->status = MT_RUN_INTERRUPTED;
        snprintf(text, cap, "harness interrupted; run stopped after %.1f s", job->wall_s);
        return;
    }
    if (job->timed_out) {
        end->status = MT_RUN_TIMEOUT;
        snprintf(text, cap, "timed out after %.3g s (limit %.3g s)", job->wall_s, job->timeout_s);
        return;
    }
    if (job->oom_killed) {
        end->status = MT_RUN_OOM;
        snprintf(text, cap, "memory limit %s exceeded: resident %.1f MiB; killed", lim,
                 (double)job->oom_rss / 1048576.0);
        return;
    }
    int nr = job->event_ranks;
    /* A rank that caught a fatal signal, or failed, decides; then the process status. */
    for (int r = 0; r < nr; r++) {
        const struct rank_state *rs = &in->rs[r];
        char who[32] = "";
        if (nr > 1) snprintf(who, sizeof who, "rank %d: ", r);
        if (rs->fatal) {
            int oom = rs->fatal_errno == ENOMEM || near_limit(rs->vmpeak, job->mem_limit);
            end->status = oom ? MT_RUN_OOM : MT_RUN_CRASHED;
            end->signal = rs->signo;
            snprintf(text, cap, "%s%s%s (signal %d)%s", who, oom ? "out of memory: " : "",
                     strsignal(rs->signo), rs->signo,
                     oom ? (rs->fatal_errno == ENOMEM ? " after an allocation failed (ENOMEM)"
                                                      : " with the address space at the limit")
                         : "");
            return;
        }
    }
    for (int r = 0; r < nr; r++) {
        const struct rank_state *rs = &in->rs[r];
        char who[32] = "";
        if (nr > 1) snprintf(who, sizeof who, "rank %d: ", r);
        if ((rs->done && rs->rc != 0) || (!rs->done && rs->error && !WIFSIGNALED(ws))) {
            int oom = rs->error_errno == ENOMEM || near_limit(rs->vmpeak, job->mem_limit);
            end->status = oom && job->mem_limit ? MT_RUN_OOM : MT_RUN_FAILED;
            snprintf(text, cap, "%s%s", who, rs->error ? rs->error : "run() failed");
            return;
        }
    }
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        int oom = job->mem_limit && near_limit((long long)job->ru.ru_maxrss * 1024, job->mem_limit);
        end->status = oom ? MT_RUN_OOM : MT_RUN_CRASHED;
        snprintf(text, cap, "%s%s (signal %d)%s", oom ? "out of memory: " : "", strsignal(sig), sig,
                 sig == SIGKILL ? "; not sent by the harness (kernel OOM killer?)" : "");
        return;
    }
    for (int r = 0; r < nr; r++) {
        /* Never said hello and exited 127 under an address-space limit: the dynamic loader
         * could not map the program and its libraries (oneDNN, OpenMP, MPI) within it. */
        if (!in->rs[r].hello && job->mem_limit && end->exit_code == 127) {
            end->status = MT_RUN_OOM;
            snprintf(text, cap,
                     "%s%d could not start within the memory limit %s: the dynamic loader "
                     "could not map the program and its libraries (exit status 127)",
                     nr > 1 ? "rank " : "child ", nr > 1 ? r : 0, lim);
            return;
        }
        if (!in->rs[r].done) {
            end->status = MT_RUN_CRASHED;
            snprintf(text, cap, "%s%d ended without reporting (exit status %d)",
                     nr > 1 ? "rank " : "child ", nr > 1 ? r : 0, end->exit_code);
            return;
        }
    }
    if (end->exit_code != 0) {
        int oom = job->mem_limit && near_limit((long long)job->ru.ru_maxrss * 1024, job->mem_limit);
        end->status = oom ? MT_RUN_OOM : MT_RUN_FAILED;
        snprintf(text, cap, "exited with status %d", end->exit_code);
        return;
    }
    end->status = MT_RUN_OK;
}

/* The name of a write error that loses measurements. */
static const char *errno_name(int e)
{
    switch (e) {
    case ENOSPC:
        return "ENOSPC";
    case EDQUOT:
        return "EDQUOT";
    case EFBIG:
        return "EFBIG";
    case EIO:
        return "EIO";
    case EROFS:
        return "EROFS";
    default:
        return "errno";
    }
}

/* Why a child could not write its event file (it exited MT_CHILD_EXIT_EVENTS): its own
 * message is on the same full disk, so look at the scratch folder's filesystem now. */
static void describe_lost(const struct mt_job *job, char *buf, size_t cap)
{
    const uint64_t room = 64 * 1024;
    char cause[600];
    struct statvfs vs;
    int e = 0;
    if (statvfs(job->scratch, &vs) == 0 && (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize < room) {
        e = ENOSPC;
        snprintf(cause, sizeof cause, "%s (ENOSPC: %llu bytes free there)", strerror(ENOSPC),
                 (unsigned long long)vs.f_bavail * (unsigned long long)vs.f_frsize);
    } else {
        /* Try what the child did: write a little. */
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof probe, "%s/space.probe", job->scratch);
        int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        static const char zeros[4096];
        for (uint64_t done = 0; fd >= 0 && done < room && !e; done += sizeof zeros)
            if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros) e = errno ? errno : ENOSPC;
        if (fd < 0) e = errno;
        if (fd >= 0) close(fd);
        unlink(probe);
        if (e)
            snprintf(cause, sizeof cause, "%s (%s)", strerror(e), errno_name(e));
        else
            snprintf(cause, sizeof cause,
                     "a write failed (the disk may have been full for a while; there is room now)");
    }
    snprintf(buf, cap,
             "run %lld's measurements were lost: its event file could not be written in %.1024s: "
             "%s; the sweep stops here (free space there, or give --out on another disk, then "
             "run again with --resume)",
             (long long)job->run_id, job->scratch, cause);
}

int mt_runner_record(struct mt_store *st, const struct mt_runner_opts *o, struct mt_job *job,
                     enum mt_run_status *status, char *err, size_t errlen)
{
    int nr = job->event_ranks;
    mt_recover_save_outcome(o, job); /* the folder can be stored later if this fails */
    struct ingest in = {.job = job, .st = st, .run_id = job->run_id, .nranks = job->ranks};
    job->warnings = 0;
    job->first_warning[0] = '\0';
    job->reference_s = 0.0;
    in.rs = calloc((size_t)(nr > 0 ? nr : 1), sizeof *in.rs);
    int rc = mt_store_begin(st);
    for (int r = 0; rc == 0 && in.rs && r < nr; r++) {
        struct mt_events_reader rd;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/events.%d", job->scratch, r);
        if (mt_events_reader_init(&rd, path) != 0) break;
        in.rank = r;
        in.region_path[0] = '\0';
        mt_events_reader_poll(&rd, ingest_event, &in);
        mt_events_reader_free(&rd);
    }
    if (rc == 0 && in.rs) rc = ingest_heap(&in, job, o->heap_mode);
    if (rc == 0 && job->reference_s > 0.0 &&
        mt_store_metric(st, job->run_id, -1, "reference_s", job->reference_s, "s") != 0 &&
        in.dropped++ == 0)
        snprintf(in.first_drop, sizeof in.first_drop, "%s", mt_store_error(st));
    for (size_t i = 0; i < in.nagg; i++) {
        double v = aggregate_value(&in.agg[i]);
        if (rc == 0 && !isnan(v) &&
            mt_store_metric(st, job->run_id, -1, in.agg[i].name, v, in.agg[i].unit) != 0 &&
            in.dropped++ == 0)
            snprintf(in.first_drop, sizeof in.first_drop, "%s", mt_store_error(st));
        free(in.agg[i].name);
        free(in.agg[i].unit);
    }
    free(in.agg);

    struct mt_store_run_end end = {0};
    char text[4096];
    if (in.rs) decide(job, &in, &end, text, sizeof text);
    /* An ok run whose heap profile is missing or partial says why (issue 14). */
    if (in.rs && end.status == MT_RUN_OK && in.heap_note[0])
        snprintf(text, sizeof text, "heap profile not (fully) stored: %s", in.heap_note);
    char lost[2048] = "";
    if (in.rs && nr > 0 && !job->interrupted && !job->timed_out && !job->oom_killed &&
        WIFEXITED(job->wstatus) && WEXITSTATUS(job->wstatus) == MT_CHILD_EXIT_EVENTS) {
        describe_lost(job, lost, sizeof lost);
        end.status = MT_RUN_INTERRUPTED;
        snprintf(text, sizeof text, "%s", lost);
    }
    end.error = text[0] ? text : NULL;
    if (rc == 0) {
        if (in.dropped) {
            char msg[700];
            snprintf(msg, sizeof msg, "%zu events could not be stored; first: %s", in.dropped,
                     in.first_drop);
            rc |= mt_store_log(st, job->run_id, 0, job->wall_s, "warn", msg);
        }
        /* Memory from the kernel: the started process (and its reaped descendants). */
        if (!job->rusage_unknown)
            rc |= mt_store_metric(st, job->run_id, -1, "peak_rss_bytes",
                                  (double)job->ru.ru_maxrss * 1024.0, "bytes");
        for (int r = 0; nr > 1 && r < nr; r++)
            if (in.rs[r].maxrss > 0)
                rc |= mt_store_metric(st, job->run_id, r, "peak_rss_bytes", (double)in.rs[r].maxrss,
                                      "bytes");
        char *tail = output_tail(job->scratch);
        if (tail) {
            rc |= mt_store_log(st, job->run_id, 0, job->wall_s,
                               end.status == MT_RUN_OK ? "info" : "error", tail);
            free(tail);
        }
        rc |= mt_store_run_finish(st, job->run_id, &end);
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", mt_store_error(st));
        mt_store_rollback(st);
        rc = -1;
    } else if (mt_store_commit(st) != 0) {
        snprintf(err, errlen, "%s", mt_store_error(st));
        rc = -1;
    }
    for (int r = 0; in.rs && r < nr; r++)
        free(in.rs[r].error);
    free(in.rs);
    for (int r = 0; job->progress && r < job->ranks; r++)
        mt_events_reader_free(&job->progress[r]);
    free(job->progress);
    job->progress = NULL;
    if (rc != 0) { /* keep the events until they are stored (recover.h) */
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0,
                 "; run %lld's events are kept in %s: `memtrade sweep --resume` stores them",
                 (long long)job->run_id, job->scratch);
    } else if (!o->keep_scratch) {
        nftw(job->scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    *status = end.status;
    if (rc == 0 && lost[0]) {
        snprintf(err, errlen, "%s", lost);
        return -2;
    }
    return rc;
}
