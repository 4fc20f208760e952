/* harness/child/phaserss.h — the kernel's witness per phase (issue 21): the resident set's
 * peak of each top-level region of a run, from VmHWM, reset at the region's start.
 *
 * What it is for: the child context calls begin() when a top-level region opens and end()
 * when it closes. begin() keeps the peak so far, then resets VmHWM to the current RSS
 * (writes "5" to /proc/self/clear_refs, profilers/counters' mt_counters_mem_reset_peak);
 * end() reads VmHWM, which then covers that phase alone. A phase entered several times
 * keeps its largest peak. Resetting also resets getrusage's ru_maxrss, so the whole-run
 * peak is kept here (mt_phase_rss_whole) and reported with the DONE event.
 * Where the kernel refuses the reset (an old kernel, a locked-down /proc), every phase is
 * reported unavailable with the kernel's reason, never as the whole run's peak.
 * What it is not for: heap bytes (the heap profiler), other processes, storing anything
 * (the context emits the metrics `<phase>_rss_peak_bytes`).
 *
 * Thread safety: one thread, the one that runs run(); no allocation (safe beside the heap
 * profiler's hooks). mt_phase_rss_whole may be read from a signal handler.
 */
#ifndef MT_HARNESS_PHASERSS_H
#define MT_HARNESS_PHASERSS_H

#include <stddef.h>
#include <stdint.h>

#define MT_PHASE_RSS_MAX 16 /* distinct top-level regions measured; later ones are not */

struct mt_phase_rss {
    uint64_t whole;   /* the largest VmHWM read before any reset, and of every phase */
    int open;         /* a phase is being measured */
    char why[200];    /* the first reason a figure is missing ("" when none) */
    size_t n;
    struct {
        char name[64];
        uint64_t peak; /* bytes, when measured */
        int measured;  /* 0: unavailable, for r->why */
    } phase[MT_PHASE_RSS_MAX];
};

/* Contract: zeroes *r. */
void mt_phase_rss_init(struct mt_phase_rss *r);

/* Contract: a top-level region `name` opens: keeps the peak so far in r->whole and resets
 * VmHWM. Never fails; a refused reset is remembered (r->why) and the phase reported
 * unavailable. */
void mt_phase_rss_begin(struct mt_phase_rss *r, const char *name);

/* Contract: the top-level region `name` closes: reads VmHWM into the phase's peak (the
 * largest over its entries) and r->whole. Never fails. */
void mt_phase_rss_end(struct mt_phase_rss *r, const char *name);

/* Contract: the whole run's resident peak in bytes: the larger of `rusage_bytes`
 * (getrusage's ru_maxrss, which a reset lowers) and every peak read here. Async-signal
 * safe. */
long long mt_phase_rss_whole(const struct mt_phase_rss *r, long long rusage_bytes);

/* Contract: calls emit(user, name, bytes, why) once per phase: `why` NULL with the peak,
 * or the reason it is unavailable. Returns nothing; `emit` must not fail loudly. */
typedef void (*mt_phase_rss_fn)(void *user, const char *phase, uint64_t bytes, const char *why);
void mt_phase_rss_foreach(const struct mt_phase_rss *r, mt_phase_rss_fn emit, void *user);

#endif
