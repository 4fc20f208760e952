/* tests/counters/check.h — assertion macros for the counters tests: print the failing
 * expression with its file and line, count failures, and let main() return the count.
 * Not a framework: each test is one small program run by ctest. */
#ifndef MT_COUNTERS_CHECK_H
#define MT_COUNTERS_CHECK_H

#include "counters.h"
#include "mt_check.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int check_failures;

#define CHECK(cond) MT_CHECK_OR(check_failures++, cond, #cond, "%s", "")

#define CHECK_I64(got, want)                                                                       \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, got_,       \
                    want_);                                                                        \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

/* Fails and returns from main when an API call fails, printing its message. */
#define MUST(call, err) MT_CALL_OK_OR(return 1, call, #call, err)

/* The counter called name in a list, or NULL. */
static inline const struct mt_counter *find_counter(const struct mt_counter *v, size_t n,
                                                    const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

/* Every counter is either available or carries a non-empty reason: never a silent 0. */
static inline int counter_is_honest(const struct mt_counter *k)
{
    if (k->available) return k->reason == NULL;
    return k->reason != NULL && k->reason[0] != '\0';
}

/* Maps npages fresh pages (no huge pages: one fault per page), writes each once, unmaps. */
static inline void touch_fresh_pages(size_t npages)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = npages * page;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    madvise(p, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < len; i += page)
        p[i] = (char)i;
    munmap(p, len);
}

/* Spins until the calling thread has used `seconds` of CPU; returns the CPU it used. */
static inline double busy_thread_cpu(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    double t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec, t = t0;
    volatile double x = 1.0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 10000; i++)
            x = x * 1.0000001 + 1e-9;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    return t - t0;
}

/* A copy of one region's result, kept after mt_counters_region_foreach returns. */
struct region_copy {
    char path[256];
    size_t depth;
    unsigned long long calls;
    double wall_s, cpu_s;
    size_t n;
    struct mt_counter v[MT_COUNTERS_MAX];
};

struct region_list {
    struct region_copy r[48];
    size_t n;
};

static inline int collect_region(const struct mt_counters_region *r, void *user)
{
    struct region_list *l = user;
    if (l->n == sizeof l->r / sizeof l->r[0]) return 1;
    struct region_copy *c = &l->r[l->n++];
    snprintf(c->path, sizeof c->path, "%s", r->path);
    c->depth = r->depth;
    c->calls = r->calls;
    c->wall_s = r->wall_s;
    c->cpu_s = r->cpu_s;
    c->n = r->ncounters;
    memcpy(c->v, r->counters, r->ncounters * sizeof r->counters[0]);
    return 0;
}

static inline const struct region_copy *find_region(const struct region_list *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->r[i].path, path) == 0) return &l->r[i];
    return NULL;
}

/* The value of counter `name` in region `path`; -12345 when missing or unavailable. */
static inline long long region_value(const struct region_list *l, const char *path,
                                     const char *name)
{
    const struct region_copy *r = find_region(l, path);
    const struct mt_counter *k = r ? find_counter(r->v, r->n, name) : NULL;
    return k && k->available ? (long long)k->value : -12345;
}

#endif
