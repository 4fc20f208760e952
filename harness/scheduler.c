/* harness/scheduler.c — the run loop behind `memtrade run` and `memtrade sweep`
 * (see scheduler.h). */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "facts.h"
#include "runner_record.h"
#include "runner_spawn.h"
#include "util.h"

#define POLL_S 0.025
#define PROGRESS_EVERY_S 0.25

struct sched {
    struct mt_store *st;
    const struct mt_sched_opts *o;
    struct mt_sched_result *res;
    struct mt_job *slots; /* o->jobs entries; pid 0 = free */
    size_t running;
    uint64_t used;   /* sum of the running runs' estimates */
    double wall_sum; /* of finished runs */
    size_t finished;
    size_t total; /* runs to start (after resume skips are known: upper bound) */
    double last_progress;
    int line_open; /* a progress line is on screen (tty) */
};

static void clear_line(struct sched *s)
{
    if (s->line_open) {
        fputs("\r\033[K", s->o->progress);
        s->line_open = 0;
    }
}

static void fmt_eta(char *buf, size_t cap, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 90)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 5400)
        snprintf(buf, cap, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else
        snprintf(buf, cap, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

static void show_progress(struct sched *s, size_t next, size_t n, double now)
{
    if (!s->o->tty || now - s->last_progress < PROGRESS_EVERY_S) return;
    s->last_progress = now;
    /* The most advanced running run names the line. */
    struct mt_job *show = NULL;
    double left = (double)(n - next);
    for (size_t i = 0; i < s->o->jobs; i++) {
        struct mt_job *j = &s->slots[i];
        if (!j->pid) continue;
        double frac = j->total > 0 ? j->done / j->total : 0;
        left += 1 - (frac > 1 ? 1 : frac);
        if (!show || j->plan->grid_index < show->plan->grid_index) show = j;
    }
    if (!show) return;
    char brief[160], eta[32] = "?";
    mt_plan_brief(show->plan, brief, sizeof brief);
    if (s->finished)
        fmt_eta(eta, sizeof eta, s->wall_sum / (double)s->finished * left / (double)s->o->jobs);
    char pct[16] = "";
    if (show->total > 0) snprintf(pct, sizeof pct, " %3.0f%%", 100.0 * show->done / show->total);
    clear_line(s);
    fprintf(s->o->progress, "[%zu/%zu] %.100s%s  %zu running  ETA %s", s->res->started, s->total,
            brief, pct, s->running, eta);
    fflush(s->o->progress);
    s->line_open = 1;
}

static int start_one(struct sched *s, struct mt_plan *p, struct mt_job *slot, char *err,
                     size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    struct mt_store_kv *kv = calloc(wl->n_params + MT_PLAN_EXTRA_KV, sizeof *kv);
    if (!kv) {
        snprintf(err, errlen, "out of memory");
        return -2;
    }
    size_t nkv = mt_plan_kv(p, kv, 0); /* the parameters and the corpus identity */
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", (unsigned)wl->abi_major, (unsigned)wl->abi_minor);
    struct mt_store_run_info info = {
        .sweep_id = s->o->sweep_id,
        .workload = wl->name,
        .label = p->label,
        .config_key = p->config_key,
        .repeat = (int)p->repeat,
        .seed = (int64_t)p->seed,
        .ranks = p->ranks,
        .threads = p->threads,
        .git_rev = mt_facts_git_rev(),
        .abi_version = abi,
        .facts_json = s->o->facts_json,
        .params = kv,
        .n_params = nkv,
    };
    int64_t run_id;
    int rc = mt_store_run_begin(s->st, &info, &run_id);
    free(kv);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mt_store_error(s->st));
        return -1;
    }
    memset(slot, 0, sizeof *slot);
    slot->plan = p;
    slot->run_id = run_id;
    slot->ranks = p->ranks;
    slot->mem_limit = p->mem_limit;
    slot->timeout_s = p->timeout_s;
    if (mt_runner_start(s->o->runner, slot, err, errlen) != 0) {
        struct mt_store_run_end end = {
            .status = MT_RUN_FAILED, .exit_code = -1, .signal = -1, .error = err, .wall_s = 0};
        if (mt_store_run_finish(s->st, run_id, &end) != 0)
            snprintf(err, errlen, "%s", mt_store_error(s->st));
        memset(slot, 0, sizeof *slot);
        return -2;
    }
    s->res->started++;
    s->running++;
    s->used += p->mem_estimate;
    if (!s->o->tty) {
        char brief[200];
        fprintf(s->o->progress, "start %zu/%zu run %lld %s\n", s->res->started, s->total,
                (long long)run_id, mt_plan_brief(p, brief, sizeof brief));
        fflush(s->o->progress);
    }
    return 0;
}

static int finish_one(struct sched *s, struct mt_job *j, char *err, size_t errlen)
{
    enum mt_run_status status;
    int rc = mt_runner_record(s->st, s->o->runner, j, &status, err, errlen);
    s->running--;
    s->used -= j->plan->mem_estimate;
    if (rc == -2) s->res->by_status[status]++; /* recorded, and the sweep stops */
    if (rc == 0) {
        s->res->by_status[status]++;
        s->wall_sum += j->wall_s;
        s->finished++;
        char brief[200];
        clear_line(s);
        double ref = j->reference_s > 0.0 && j->reference_s < j->wall_s ? j->reference_s : 0.0;
        fprintf(s->o->progress, "%s %-11s run %lld %s  %.1fs", s->o->tty ? " " : "end",
                mt_run_status_name(status), (long long)j->run_id,
                mt_plan_brief(j->plan, brief, sizeof brief), j->wall_s - ref);
        if (ref >= 0.1) fprintf(s->o->progress, " (+ %.1fs preparing its reference model)", ref);
        fputc('\n', s->o->progress);
        /* what the run's log says went wrong is not left for someone to find in the db */
        if (j->warnings)
            fprintf(s->o->progress, "    run %lld logged %zu warning%s: %s%s\n",
                    (long long)j->run_id, j->warnings, j->warnings > 1 ? "s, the first" : "",
                    j->first_warning, j->warnings > 1 ? " (memtrade query show for all)" : "");
        fflush(s->o->progress);
    }
    memset(j, 0, sizeof *j);
    return rc;
}

/* Can plan p start now without exceeding the budget? */
static int fits(struct sched *s, const struct mt_plan *p)
{
    if (s->running == 0) return 1;
    return s->used + p->mem_estimate <= s->o->mem_budget;
}

int mt_sched_run(struct mt_store *st, struct mt_plan *plans, size_t n,
                 const struct mt_sched_opts *o, struct mt_sched_result *res, char *err,
                 size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->planned = n;
    struct sched s = {.st = st, .o = o, .res = res, .total = n};
    s.slots = calloc(o->jobs, sizeof *s.slots);
    if (!s.slots) {
        snprintf(err, errlen, "out of memory");
        return -2;
    }
    int rc = 0, stopping = 0;
    size_t next = 0;
    while (next < n || s.running > 0) {
        double now = mt_runner_now();
        if (((o->stop && *o->stop) || rc != 0) && !stopping) {
            stopping = 1;
            for (size_t i = 0; i < o->jobs; i++)
                if (s.slots[i].pid) mt_runner_interrupt(&s.slots[i], now);
        }
        while (!stopping && next < n && s.running < o->jobs) {
            struct mt_plan *p = &plans[next];
            if (o->resume) {
                int found = mt_store_find_ok(st, p->config_key, (int)p->repeat, NULL);
                if (found < 0) {
                    snprintf(err, errlen, "%s", mt_store_error(st));
                    rc = -1;
                    break;
                }
                if (found == 1) {
                    res->skipped++;
                    s.total--;
                    next++;
                    continue;
                }
            }
            if (!fits(&s, p)) break;
            if (s.running == 0 && p->mem_estimate > o->mem_budget) {
                char a[32], b[32];
                clear_line(&s);
                fprintf(o->progress,
                        "memtrade: warning: run %zu needs about %s, more than the budget %s; "
                        "running it alone\n",
                        next + 1, mt_util_fmt_bytes(a, sizeof a, (double)p->mem_estimate),
                        mt_util_fmt_bytes(b, sizeof b, (double)o->mem_budget));
            }
            struct mt_job *slot = NULL;
            for (size_t i = 0; i < o->jobs && !slot; i++)
                if (!s.slots[i].pid) slot = &s.slots[i];
            int started = start_one(&s, p, slot, err, errlen);
            if (started == -2) {
                res->by_status[MT_RUN_FAILED]++;
                clear_line(&s);
                fprintf(o->progress, "memtrade: %s\n", err);
                rc = rc ? rc : -2;
                next++;
                break;
            }
            if (started != 0) {
                rc = -1;
                break;
            }
            next++;
        }
        if (stopping && s.running == 0) break;
        for (size_t i = 0; i < o->jobs; i++) {
            struct mt_job *j = &s.slots[i];
            if (!j->pid || mt_runner_poll(j, mt_runner_now()) != 1) continue;
            int done = finish_one(&s, j, err, errlen); /* -2: measurements lost, stop */
            if (done == -2) {
                clear_line(&s);
                fprintf(o->progress, "memtrade: %s\n", err);
            }
            if (done != 0 && rc != -1) rc = done;
        }
        show_progress(&s, next, n, mt_runner_now());
        struct timespec ts = {0, (long)(POLL_S * 1e9)};
        nanosleep(&ts, NULL);
    }
    clear_line(&s);
    free(s.slots);
    return rc;
}
