/* heapreport.h — reader of the heap profiler's report files (profilers/heap/FORMAT.md).
 *
 * What it is for: turning one report into calls on a table of callbacks — frames, stacks,
 * allocation sites, tensors, category counters, region peaks, timeline points and a summary —
 * shaped like the database tables (frames, stacks/stack_frames, alloc_sites, tensors, samples) so
 * the harness can insert them as they come. What it is not for: writing reports (the interposer
 * does) or touching SQLite.
 *
 * Thread-safety: no global state; concurrent reads of different files are fine. Strings
 * handed to callbacks are valid only during the call (copy what you keep).
 */
#ifndef MT_HEAPREPORT_H
#define MT_HEAPREPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { MT_HEAPREPORT_VERSION = 1, MT_HEAPREPORT_MAX_CATS = 32 };

/* Run facts from the header and totals from the exit report. Delivered once, last. */
struct mt_heapreport_summary {
    int version;
    long long pid, ppid;
    const char *mode;       /* "full" or "sampled" */
    long long sample_bytes; /* mean sampling interval (sampled mode), 0 in full mode */
    long long seed, interval_ms;
    const char *exe;              /* the profiled executable, "" when unknown */
    double start_unix;            /* wall clock at profiler start, seconds since the epoch */
    size_t ncat;                  /* number of memory categories (the header's list) */
    const char *const *cat_names; /* index = memtrade/memcat.h enum value */
    int complete;                 /* 1 when the end marker was seen; 0 after a crash */
    /* The fields below are -1 when !complete. */
    long long allocs, bytes, peak_bytes, leaked_bytes, leaked_allocs, sites;
    double peak_t, wall_s; /* seconds since profiler start */
    /* Switches to a region the profiler could not track (its table of 64 names was full,
     * or the name was too long); -1 when !complete or the report predates region peaks. */
    long long regions_dropped;
    /* 1: the header says the process is a fork (without exec) of a profiled one: its
     * counts include what it inherited from its parent (`M forked`). */
    int forked;
    /* Device memory (`M device 1`: recorded with MEMTRADE_HEAP_DEVICE=1); the figures are
     * -1 when !device or !complete. device_peak_bytes: peak of device + vmm bytes together;
     * device_mapped_peak_bytes: peak of VMM mapped bytes; device_unwrapped: driver entry
     * points handed back unwrapped (a second driver library: its calls are not counted). */
    int device;
    long long device_peak_bytes, device_mapped_peak_bytes, device_unwrapped;
    double device_peak_t;
};

enum { MT_HEAPREPORT_DEVICE_KINDS = 4 };
/* The device memory kinds, in the order of V columns: cuMemAlloc*, cuMemAllocAsync and
 * pools ("device"); cuMemCreate handles ("vmm"); cuMemAllocManaged ("managed");
 * cuMemHostAlloc/cuMemAllocHost ("pinned" host memory). */
extern const char *const mt_heapreport_device_kinds[MT_HEAPREPORT_DEVICE_KINDS];

/* G: exact counters of one device memory kind at exit. failed: calls the driver refused
 * (not booked); unknown_frees: frees of an address or handle never booked. */
struct mt_heapreport_device_kind {
    const char *kind;
    long long allocs, frees, bytes, live, peak, failed, unknown_frees;
};

/* H: exact counters of one (device kind, category) at exit; kind "gpu" is device and vmm
 * together (its peak is the peak of their sum, memory on the GPU). */
struct mt_heapreport_device_category {
    const char *kind, *category;
    long long allocs, frees, bytes, live, peak;
};

/* D: one device allocation site (stack, kind, category); peak_bytes is its share of its
 * kind's peak. */
struct mt_heapreport_site;
struct mt_heapreport_device_site {
    const char *kind;
    const struct mt_heapreport_site *site; /* as an A line's (temporary 0: not tracked for
                                            * device memory; estimated 0: always exact) */
};

/* V: device memory live per kind at time t (seconds since profiler start). */
struct mt_heapreport_device_sample {
    double t;
    const long long *live; /* MT_HEAPREPORT_DEVICE_KINDS values */
};

/* One region name's exact heap peaks, over every stretch of time it was the innermost
 * region (mt_memcat_region), counting the live bytes at the moment it became innermost. */
struct mt_heapreport_region {
    const char *name;
    long long peak_total;
    const long long *peak; /* ncat values, memcat enum order */
    size_t ncat;
};

/* Exact per-category counters at exit. */
struct mt_heapreport_category {
    const char *name;
    long long allocs, frees, bytes, live, peak;
};

/* One timeline point: maps to samples rows 'heap.live' (total, and per category in the
 * category column), 'rss'. */
struct mt_heapreport_sample {
    double t;            /* seconds since profiler start */
    long long rss_bytes; /* -1 when unavailable */
    const char *region;  /* NULL when none was set */
    long long live_total;
    const long long *live; /* ncat values, memcat enum order */
    size_t ncat;
};

/* One distinct code address; maps to a frames row (function, module, file, line, build_id). */
struct mt_heapreport_frame {
    uint64_t id;          /* > 0, referenced by stacks */
    uint64_t ip;          /* return address in the profiled process (ASLR-dependent) */
    const char *function; /* NULL when unknown (likewise module, file, build_id) */
    const char *module, *file, *build_id;
    long line; /* 0 when unknown */
};

/* One call stack: frame ids, innermost first (stack_frames depth 0 = frames[0]). */
struct mt_heapreport_stack {
    uint64_t id;
    const uint64_t *frames;
    size_t depth;
};

/* One alloc_sites row. Sampled-mode values are unbiased estimates (estimated = 1). */
struct mt_heapreport_site {
    uint64_t stack_id;
    const char *category;
    long long allocs, bytes, peak_bytes, temporary, leaked_bytes, leaked_allocs;
    int estimated;
};

struct mt_heapreport_tensor {
    const char *name, *category;
    long long bytes;
};

/* Callbacks; any may be NULL. A non-zero return stops reading; mt_heapreport_read then
 * returns that value and puts "stopped by callback" in err. */
struct mt_heapreport_cb {
    int (*summary)(const struct mt_heapreport_summary *s, void *user);
    int (*category)(const struct mt_heapreport_category *c, void *user);
    int (*sample)(const struct mt_heapreport_sample *p, void *user);
    int (*frame)(const struct mt_heapreport_frame *f, void *user);
    int (*stack)(const struct mt_heapreport_stack *s, void *user);
    int (*site)(const struct mt_heapreport_site *s, void *user);
    int (*tensor)(const struct mt_heapreport_tensor *t, void *user);
    int (*region)(const struct mt_heapreport_region *r, void *user); /* R lines */
    int (*device_kind)(const struct mt_heapreport_device_kind *k, void *user);         /* G */
    int (*device_category)(const struct mt_heapreport_device_category *c, void *user); /* H */
    int (*device_site)(const struct mt_heapreport_device_site *s, void *user);         /* D */
    int (*device_sample)(const struct mt_heapreport_device_sample *p, void *user);     /* V */
};

/* Contract: reads the report at `path`, calling `cb` in file order (frames before the
 * stacks using them, stacks before their sites) and `summary` once at the end. A last line
 * without its newline (a crash mid-write) is ignored; any other malformed line is an error.
 * Returns 0 on success; -1 with "PATH:LINE: reason" in err (if errlen > 0) on an I/O or
 * format error; or the callback's non-zero value. */
int mt_heapreport_read(const char *path, const struct mt_heapreport_cb *cb, void *user, char *err,
                       size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
