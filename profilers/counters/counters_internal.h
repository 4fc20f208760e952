/* profilers/counters/counters_internal.h — the handle's layout, shared by the files of
 * mt_counters (handle and regions in counters.c, PAPI in papi_source.c, perf_event in
 * perf_source.c). Not installed, not for the harness: it uses counters.h only. */
#ifndef MT_COUNTERS_INTERNAL_H
#define MT_COUNTERS_INTERNAL_H

#include "counters.h"

#include <pthread.h>
#include <stdarg.h>

enum {
    MT_CTR_REASON_MAX = 320,
    MT_CTR_NOTE_MAX = 160,
    MT_CTR_PAPI_SETS = 8,
    MT_CTR_PERF_READERS = 16
};

/* One counter: its public face plus the storage its strings point into. */
struct mt_ctr {
    struct mt_counter pub;
    char name[MT_COUNTERS_NAME_MAX];
    char reason[MT_CTR_REASON_MAX];
    char note[MT_CTR_NOTE_MAX];
};

/* One PAPI eventset: all available events of one component. */
struct mt_papi_set {
    int es;   /* PAPI eventset handle */
    int cidx; /* its component */
    int started;
    int inherit_rc;              /* PAPI_set_opt(PAPI_INHERIT) result: PAPI_OK = process */
    size_t n;                    /* events in the set, in add order */
    size_t ctr[MT_COUNTERS_MAX]; /* counter index of each event */
    int code[MT_COUNTERS_MAX];   /* PAPI event code of each event */
    long long vals[MT_COUNTERS_MAX];
};

/* One perf_event fd to read(): a group leader (read_format GROUP, members in order) or a
 * single event. Both use TOTAL_TIME_ENABLED|RUNNING to scale multiplexed counts. */
struct mt_perf_reader {
    int fd;
    int group;
    size_t n;
    size_t ctr[8];
};

struct mt_region_node; /* counters.c */

struct mt_counters {
    pthread_t owner; /* the opening thread: PAPI eventsets belong to it */
    struct mt_ctr ctr[MT_COUNTERS_MAX];
    size_t n;

    struct mt_papi_set papi[MT_CTR_PAPI_SETS];
    size_t npapi;

    struct mt_perf_reader perf[MT_CTR_PERF_READERS];
    size_t nperf;
    int perf_fds[MT_COUNTERS_MAX]; /* every fd opened, members included, for close */
    size_t nperf_fds;

    /* regions (counters.c) */
    struct mt_region_node *root;   /* depth -1, path "" */
    struct mt_region_node **order; /* every node but the root, in creation order */
    size_t norder, order_cap;
    struct mt_region_frame *stack; /* MT_COUNTERS_DEPTH_MAX frames */
    int64_t *snaps;                /* MT_COUNTERS_DEPTH_MAX * n, the frames' snapshots */
    size_t depth;

    /* totals */
    double wall0, cpu0;
    int64_t snap0[MT_COUNTERS_MAX], snap_now[MT_COUNTERS_MAX];
    struct mt_counter total[MT_COUNTERS_MAX];
};

/* Formats into err (if errlen > 0); always returns -1 so callers can `return mt_ctr_err(...)`. */
int mt_ctr_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends a counter (unavailable until a source marks it available); NULL when full. */
struct mt_ctr *mt_ctr_add(struct mt_counters *c, const char *name, const char *unit,
                          enum mt_counter_source source);
/* Marks a counter unavailable with a printf-formatted reason. */
void mt_ctr_unavailable(struct mt_ctr *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* PAPI source: parses `events`, probes, builds and starts the eventsets. Returns -1 only
 * for a malformed list or a full handle. Sets *want_cycles / *want_ins when PAPI_TOT_CYC /
 * PAPI_TOT_INS were asked for and are unavailable (the perf fallback then opens them). */
int mt_ctr_papi_open(struct mt_counters *c, const char *events, int *want_cycles, int *want_ins,
                     char *err, size_t errlen);
int mt_ctr_papi_read(struct mt_counters *c, int64_t *snap, char *err, size_t errlen);
void mt_ctr_papi_close(struct mt_counters *c);

/* perf_event source: opens the software events and the requested hardware fallbacks.
 * Never fails: what cannot be opened is unavailable with errno's reason. */
void mt_ctr_perf_open(struct mt_counters *c, int want_cycles, int want_ins);
int mt_ctr_perf_read(struct mt_counters *c, int64_t *snap, char *err, size_t errlen);
void mt_ctr_perf_close(struct mt_counters *c);

#endif
