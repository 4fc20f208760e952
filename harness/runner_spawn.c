/* harness/runner_spawn.c — the watchdog: start, watch, stop and reap one run's process
 * (see runner_spawn.h). */
#define _GNU_SOURCE
#include "runner_spawn.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child/child.h"
#include "recover.h"
#include "util.h"

#define KILL_GRACE_S 2.0

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

/* ---------------------------------------------------------------- argv (mt_util_strv) */

/* Splits the launcher template on whitespace and replaces {ranks}. */
static int push_launcher(struct mt_util_strv *a, const char *tmpl, int ranks)
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
        rc = mt_util_strv_push(a, buf);
    }
    free(copy);
    return rc;
}

static int build_child_argv(const struct mt_runner_opts *o, const struct mt_job *job,
                            struct mt_util_strv *a)
{
    const struct mt_plan *p = job->plan;
    char num[32];
    int rc = 0;
    if (job->ranks > 1) rc |= push_launcher(a, o->launcher, job->ranks);
    rc |= mt_util_strv_push(a, o->exe);
    rc |= mt_util_strv_push(a, "__child");
    rc |= mt_util_strv_push(a, "--plugin") | mt_util_strv_push(a, p->plugin->path);
    rc |= mt_util_strv_push(a, "--events") | mt_util_strv_push(a, job->scratch);
    rc |= mt_util_strv_push(a, "--scratch") | mt_util_strv_push(a, job->scratch);
    snprintf(num, sizeof num, "%llu", (unsigned long long)p->seed);
    rc |= mt_util_strv_push(a, "--seed") | mt_util_strv_push(a, num);
    snprintf(num, sizeof num, "%d", p->threads);
    rc |= mt_util_strv_push(a, "--threads") | mt_util_strv_push(a, num);
    rc |= mt_util_strv_push(a, "--cache") | mt_util_strv_push(a, o->cache_dir ? o->cache_dir : "");
    rc |=
        mt_util_strv_push(a, "--heap") | mt_util_strv_push(a, o->heap_mode ? o->heap_mode : "off");
    const struct mt_workload *wl = &p->plugin->desc;
    for (size_t i = 0; i < wl->n_params; i++) {
        char *kv;
        if (asprintf(&kv, "%s=%s", wl->params[i].name, p->params.value[i]) < 0) return -1;
        rc |= mt_util_strv_push(a, "-p") | mt_util_strv_push(a, kv);
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
    if (access(job->scratch, F_OK) == 0) mt_recover_remove(job->scratch);
    if (mkdir_p(job->scratch) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", job->scratch, strerror(errno));
        return -1;
    }
    job->event_ranks = job->plan ? job->ranks : 0;
    job->exec_errno = 0;
    job->exec_what[0] = '\0';
    if (mt_recover_mark(o, job, err, errlen) != 0) return -1;
    struct mt_util_strv a = {0};
    int built = 0;
    if (job->plan) {
        built = build_child_argv(o, job, &a);
    } else {
        for (char *const *c = job->command; *c && built == 0; c++)
            built = mt_util_strv_push(&a, *c);
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
        mt_util_strv_free(&a);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* A program that cannot be executed says so through this pipe (closed by a successful
     * exec), so that the run is recorded failed with the reason, not crashed with 127. */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        mt_util_strv_free(&a);
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        mt_util_strv_free(&a);
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
    mt_util_strv_free(&a);
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
