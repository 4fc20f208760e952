/* harness/child/phaserss.c — the resident peak per top-level region (phaserss.h). */
#include "phaserss.h"

#include <stdio.h>
#include <string.h>

#ifdef MT_HAVE_COUNTERS
#include "counters.h"
#endif

void mt_phase_rss_init(struct mt_phase_rss *r)
{
    memset(r, 0, sizeof *r);
}

static void note(struct mt_phase_rss *r, const char *why)
{
    if (!r->why[0]) snprintf(r->why, sizeof r->why, "%s", why);
}

/* VmHWM now, folded into r->whole; 0 after note() when /proc cannot say. */
static uint64_t read_peak(struct mt_phase_rss *r)
{
#ifdef MT_HAVE_COUNTERS
    struct mt_memsnap m;
    char err[160];
    if (mt_counters_mem(&m, err, sizeof err) != 0) {
        note(r, err);
        return 0;
    }
    if (m.peak_rss_bytes > r->whole) r->whole = m.peak_rss_bytes;
    return m.peak_rss_bytes;
#else
    note(r, "memtrade was built without the counters library (profilers/counters)");
    return 0;
#endif
}

void mt_phase_rss_begin(struct mt_phase_rss *r, const char *name)
{
    (void)name;
    (void)read_peak(r); /* the peak before this phase must survive the reset */
#ifdef MT_HAVE_COUNTERS
    char err[120], why[200];
    if (!r->why[0] && mt_counters_mem_reset_peak(err, sizeof err) != 0) {
        snprintf(why, sizeof why, "the kernel refused to reset the resident peak (%s)", err);
        note(r, why);
    }
#endif
    r->open = 1;
}

void mt_phase_rss_end(struct mt_phase_rss *r, const char *name)
{
    if (!r->open) return;
    r->open = 0;
    uint64_t peak = read_peak(r);
    if (!name[0]) return; /* a name too long to keep: only the whole run's peak */
    size_t i = 0;
    while (i < r->n && strcmp(r->phase[i].name, name) != 0)
        i++;
    if (i == r->n) {
        if (r->n == MT_PHASE_RSS_MAX || strlen(name) >= sizeof r->phase[0].name) return;
        memcpy(r->phase[i].name, name, strlen(name) + 1);
        r->n++;
    }
    if (r->why[0]) return; /* a figure since an earlier start, not this phase's */
    if (!r->phase[i].measured || peak > r->phase[i].peak) r->phase[i].peak = peak;
    r->phase[i].measured = 1;
}

long long mt_phase_rss_whole(const struct mt_phase_rss *r, long long rusage_bytes)
{
    return (long long)r->whole > rusage_bytes ? (long long)r->whole : rusage_bytes;
}

void mt_phase_rss_foreach(const struct mt_phase_rss *r, mt_phase_rss_fn emit, void *user)
{
    for (size_t i = 0; i < r->n; i++)
        emit(user, r->phase[i].name, r->phase[i].peak,
             r->why[0] ? r->why : r->phase[i].measured ? NULL : "the phase never ended");
}
