/* harness/runner_record.c — a reaped run's events into the store, its ranks aggregated,
 * its status decided (see runner_record.h). */
#define _GNU_SOURCE
#include "runner_record.h"
#include "witness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memtrade/metrics.h>

#include "child/child.h"
#include "heapingest.h"
#include "recover.h"

#define OUTPUT_TAIL 4096

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
    /* the plan beside what was measured (issue 21); a refusal is noted, never fatal */
    char werr[512];
    int wrc = rc == 0 && in.rs && job->plan
                  ? mt_witness_store(st, job->run_id, job->plan, werr, sizeof werr)
                  : 0;
    if (wrc == 1) {
        char note[600];
        snprintf(note, sizeof note, "no memory plan: %s", werr);
        wrc = mt_store_log(st, job->run_id, 0, job->wall_s, "info", note);
        if (wrc) snprintf(werr, sizeof werr, "%s", mt_store_error(st));
    }
    if (wrc != 0 && in.dropped++ == 0) snprintf(in.first_drop, sizeof in.first_drop, "%s", werr);
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
        /* Memory from the kernel: the started process (and its reaped descendants), or
         * a rank's own figure when larger: the child resets VmHWM per phase, which
         * lowers ru_maxrss, and reports the peak it kept across the resets. */
        if (!job->rusage_unknown) {
            double peak = (double)job->ru.ru_maxrss * 1024.0;
            for (int r = 0; in.rs && r < nr; r++)
                if ((double)in.rs[r].maxrss > peak) peak = (double)in.rs[r].maxrss;
            rc |= mt_store_metric(st, job->run_id, -1, "peak_rss_bytes", peak, "bytes");
        }
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
        mt_recover_remove(job->scratch);
    }
    *status = end.status;
    if (rc == 0 && lost[0]) {
        snprintf(err, errlen, "%s", lost);
        return -2;
    }
    return rc;
}
