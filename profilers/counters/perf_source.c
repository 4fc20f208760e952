/* profilers/counters/perf_source.c — the perf_event_open counter source of mt_counters.
 *
 * What it is for: the kernel's software events (page faults, task clock, context
 * switches, CPU migrations), which every Linux machine has even when PAPI sees no
 * hardware counters, and perf's cycles/instructions as a fallback when the PAPI presets
 * for them are unavailable. Events are opened on the calling thread with inherit=1, so
 * threads created afterwards add to the counts; software events share one group read
 * (one read() per snapshot). What cannot be opened stays listed, unavailable, with
 * errno's text and the perf_event_paranoid level when permission is the cause.
 * What it is not for: PAPI (papi_source.c), anything sampling-based.
 */
#include "counters_internal.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct perf_def {
    const char *name;
    const char *unit;
    uint32_t type;
    uint64_t config;
};

static const struct perf_def sw_events[] = {
    {"page_faults", "count", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
    {"page_faults_min", "count", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"page_faults_maj", "count", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ},
    {"task_clock_ns", "ns", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK},
    {"context_switches", "count", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu_migrations", "count", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
};
static const struct perf_def hw_cycles = {"perf_cycles", "count", PERF_TYPE_HARDWARE,
                                          PERF_COUNT_HW_CPU_CYCLES};
static const struct perf_def hw_ins = {"perf_instructions", "count", PERF_TYPE_HARDWARE,
                                       PERF_COUNT_HW_INSTRUCTIONS};

static const uint64_t time_fmt = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;

static int paranoid_level(void)
{
    FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
    int v = -100;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = -100;
        fclose(f);
    }
    return v;
}

static void perf_unavailable(struct mt_ctr *k, int e)
{
    const char *hint = "";
    char buf[96] = "";
    if (e == EACCES || e == EPERM) {
        snprintf(buf, sizeof buf, " (kernel.perf_event_paranoid=%d)", paranoid_level());
        hint = buf;
    } else if (e == ENOENT || e == EOPNOTSUPP || e == ENODEV) {
        hint = " (the kernel or CPU offers no such event: no PMU, e.g. in a VM)";
    } else if (e == ENOSYS) {
        hint = " (kernel built without perf events)";
    }
    mt_ctr_unavailable(k, "perf_event_open: %s%s", strerror(e), hint);
}

/* Opens one event on this thread (inherit), kernel+user first, user-only when the
 * paranoid level forbids kernel counting. Returns the fd or -1 with errno set. */
static int open_event(struct mt_ctr *k, const struct perf_def *d, int group_fd,
                      uint64_t read_format)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = d->type;
    a.config = d->config;
    a.inherit = 1;
    a.read_format = read_format;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
        if (fd >= 0) {
            snprintf(k->note, sizeof k->note,
                     "user mode only (kernel.perf_event_paranoid=%d forbids kernel counting)",
                     paranoid_level());
            k->pub.note = k->note;
        }
    }
    return fd;
}

/* Opens defs[0..n) as one group (first success leads); a member the group refuses is
 * opened alone. Each opened event joins a reader; the rest are unavailable. */
static void open_group(struct mt_counters *c, const struct perf_def *const *defs, size_t n)
{
    struct mt_perf_reader *group = NULL;
    for (size_t i = 0; i < n; i++) {
        struct mt_ctr *k = mt_ctr_add(c, defs[i]->name, defs[i]->unit, MT_COUNTER_PERF);
        if (!k) return;
        size_t idx = (size_t)(k - c->ctr);
        if (c->nperf == MT_CTR_PERF_READERS || c->nperf_fds == MT_COUNTERS_MAX) {
            mt_ctr_unavailable(k, "too many perf events in one handle");
            continue;
        }
        int fd = -1;
        if (group && group->n < sizeof group->ctr / sizeof group->ctr[0]) {
            fd = open_event(k, defs[i], group->fd, PERF_FORMAT_GROUP | time_fmt);
            if (fd >= 0) {
                group->ctr[group->n++] = idx;
                c->perf_fds[c->nperf_fds++] = fd;
                k->pub.available = 1;
                continue;
            }
        }
        int as_leader = group == NULL;
        fd = open_event(k, defs[i], -1, (as_leader ? PERF_FORMAT_GROUP : 0) | time_fmt);
        if (fd < 0) {
            perf_unavailable(k, errno);
            continue;
        }
        struct mt_perf_reader *r = &c->perf[c->nperf++];
        r->fd = fd;
        r->group = as_leader;
        r->n = 1;
        r->ctr[0] = idx;
        c->perf_fds[c->nperf_fds++] = fd;
        k->pub.available = 1;
        if (as_leader) group = r;
    }
}

void mt_ctr_perf_open(struct mt_counters *c, int want_cycles, int want_ins)
{
    const struct perf_def *defs[sizeof sw_events / sizeof sw_events[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof sw_events / sizeof sw_events[0]; i++)
        defs[n++] = &sw_events[i];
    open_group(c, defs, n);
    n = 0;
    if (want_cycles) defs[n++] = &hw_cycles;
    if (want_ins) defs[n++] = &hw_ins;
    open_group(c, defs, n);
    for (size_t i = 0; i < c->n; i++)
        if (c->ctr[i].pub.source == MT_COUNTER_PERF) c->ctr[i].pub.scope = "process";
}

/* Count scaled up when the kernel multiplexed the event (ran part of the time). */
static int64_t scaled(uint64_t v, uint64_t enabled, uint64_t running)
{
    if (running == 0 || running >= enabled) return (int64_t)v;
    return (int64_t)((double)v * (double)enabled / (double)running);
}

int mt_ctr_perf_read(struct mt_counters *c, int64_t *snap, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nperf; i++) {
        struct mt_perf_reader *r = &c->perf[i];
        uint64_t buf[3 + 8];
        size_t want = (r->group ? 3 + r->n : 3) * sizeof(uint64_t);
        ssize_t got = read(r->fd, buf, want);
        if (got != (ssize_t)want)
            return mt_ctr_err(err, errlen, "read of perf event %s: %s", c->ctr[r->ctr[0]].name,
                              got < 0 ? strerror(errno) : "short read");
        if (r->group) { /* nr, enabled, running, values... */
            for (size_t j = 0; j < r->n; j++)
                snap[r->ctr[j]] = scaled(buf[3 + j], buf[1], buf[2]);
        } else { /* value, enabled, running */
            snap[r->ctr[0]] = scaled(buf[0], buf[1], buf[2]);
        }
    }
    return 0;
}

void mt_ctr_perf_close(struct mt_counters *c)
{
    for (size_t i = 0; i < c->nperf_fds; i++)
        close(c->perf_fds[i]);
    c->nperf_fds = 0;
    c->nperf = 0;
}
