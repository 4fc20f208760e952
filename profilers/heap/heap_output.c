/* heap_output.c — the heap profiler's report file: header, streamed timeline, exit report.
 *
 * What it is for: writing the text format of FORMAT.md with write(2) only (no stdio, no
 * malloc), from the timeline thread during the run and from the destructor at exit, and
 * resolving the recorded instruction pointers to frames once, at exit (libdw when the
 * build found it, dladdr otherwise). It reads the tracker and the tags only through their
 * interfaces (heap_tracker.h, heap_tags.h). What it is not for: recording or reading
 * reports (heapreport.c).
 */
#define _GNU_SOURCE
#include "heap_output.h"

#include "heap_device.h"
#include "heap_tags.h"
#include "heap_tracker.h"
#include "procfile.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef MT_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

#define O mt_heap_g.out
#define C (*mt_heap_config())

/* ---- a write(2) buffer with the formatting we need --------------------------------- */

struct wbuf {
    int fd;
    size_t n, cap;
    char *b;
};

static void w_flush(struct wbuf *w)
{
    size_t off = 0;
    while (w->fd >= 0 && off < w->n) {
        ssize_t k = write(w->fd, w->b + off, w->n - off);
        if (k <= 0) break;
        off += (size_t)k;
    }
    w->n = 0;
}

static void w_ch(struct wbuf *w, char c)
{
    if (w->n == w->cap) w_flush(w);
    w->b[w->n++] = c;
}

static void w_raw(struct wbuf *w, const char *s)
{
    while (*s)
        w_ch(w, *s++);
}

/* Escapes backslash, tab, newline and carriage return; NULL writes an empty field. */
static void w_esc(struct wbuf *w, const char *s)
{
    static const char special[] = "\\\t\n\r", escaped[] = "\\tnr"; /* pairwise */
    for (; s && *s; s++) {
        const char *e = strchr(special, *s);
        if (e) {
            w_ch(w, '\\');
            w_ch(w, escaped[e - special]);
        } else {
            w_ch(w, *s);
        }
    }
}

static void w_u64(struct wbuf *w, uint64_t v)
{
    char t[24];
    int i = 0;
    do {
        t[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        w_ch(w, t[--i]);
}

static void w_i64(struct wbuf *w, long long v)
{
    if (v < 0) {
        w_ch(w, '-');
        w_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        w_u64(w, (uint64_t)v);
    }
}

static void w_hex(struct wbuf *w, uint64_t v)
{
    char t[20];
    int i = 0;
    do {
        t[i++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    w_raw(w, "0x");
    while (i)
        w_ch(w, t[--i]);
}

/* Seconds with microsecond precision. */
static void w_sec(struct wbuf *w, double s)
{
    if (!(s >= 0)) s = 0;
    uint64_t us = (uint64_t)llround(s * 1e6);
    w_u64(w, us / 1000000);
    w_ch(w, '.');
    char t[6];
    uint64_t f = us % 1000000;
    for (int i = 5; i >= 0; i--, f /= 10)
        t[i] = (char)('0' + f % 10);
    for (int i = 0; i < 6; i++)
        w_ch(w, t[i]);
}

static void w_tab(struct wbuf *w)
{
    w_ch(w, '\t');
}

/* The start of a named record: its tag ("R\t", "N\t"), the escaped name, a tab. */
static void w_named(struct wbuf *w, const char *tag, const char *name)
{
    w_raw(w, tag);
    w_esc(w, name);
    w_tab(w);
}

static void w_meta_str(struct wbuf *w, const char *key, const char *val)
{
    w_raw(w, "M\t");
    w_raw(w, key);
    w_tab(w);
    w_esc(w, val);
    w_ch(w, '\n');
}

static void w_meta_int(struct wbuf *w, const char *key, long long val)
{
    w_raw(w, "M\t");
    w_raw(w, key);
    w_tab(w);
    w_i64(w, val);
    w_ch(w, '\n');
}

/* ---- opening and the header -------------------------------------------------------- */

static void expand_path(char *dst, size_t cap, const char *pat, long pid)
{
    size_t n = 0;
    for (const char *s = pat; *s && n + 24 < cap; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            char t[24];
            int i = 0;
            unsigned long v = (unsigned long)pid;
            do {
                t[i++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            while (i)
                dst[n++] = t[--i];
            s++;
        } else if (s[0] == '%' && s[1] == '%') {
            dst[n++] = '%';
            s++;
        } else {
            dst[n++] = *s;
        }
    }
    dst[n] = '\0';
}

void mt_heap_out_open(int forked)
{
    char hdr_buf[4096];
    char path[sizeof C.out_pattern + 64];
    expand_path(path, sizeof path, C.out_pattern, (long)getpid());
    /* Without %p, a forked child must not truncate its parent's report: it writes
     * PATH.<pid> instead (exec'd descendants are told PATH.%p: steer_descendants). */
    if (!strstr(C.out_pattern, "%p") && forked) {
        size_t n = strlen(path);
        path[n++] = '.';
        expand_path(path + n, sizeof path - n, "%p", (long)getpid());
    }
    O.report_pid = (long)getpid();
    O.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (O.fd < 0) return;
    struct wbuf hw = {.fd = O.fd, .cap = sizeof hdr_buf, .b = hdr_buf}, *w = &hw;
    w_raw(w, "memtrade-heap\t1\n");
    w_meta_int(w, "pid", (long long)getpid());
    w_meta_int(w, "ppid", (long long)getppid());
    if (forked) w_meta_int(w, "forked", 1); /* a copy of its parent: inherited counts */
    w_meta_str(w, "mode", C.mode == MT_HEAP_SAMPLED ? "sampled" : "full");
    w_meta_int(w, "sample_bytes", C.mode == MT_HEAP_SAMPLED ? (long long)C.sample_bytes : 0);
    w_meta_int(w, "seed", (long long)C.seed);
    w_meta_int(w, "interval_ms", C.interval_ms);
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = '\0';
    w_meta_str(w, "exe", exe);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w_raw(w, "M\tstart_unix\t");
    w_sec(w, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    w_raw(w, "\nM\tcategories\t");
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        if (c) w_ch(w, ',');
        w_raw(w, mt_mem_cat_names[c]);
    }
    w_ch(w, '\n');
    if (C.device) {
        w_meta_int(w, "device", 1);
        w_raw(w, "M\tdevice_kinds\t");
        for (int d = 0; d < MT_DEV_NKIND; d++) {
            if (d) w_ch(w, ',');
            w_raw(w, mt_heap_dev_kind_names[d]);
        }
        w_ch(w, '\n');
    }
    w_flush(w);
}

void mt_heap_out_after_fork(int follow)
{
    atomic_store(&O.helper_running, 0);
    if (O.fd >= 0) {
        close(O.fd);
        O.fd = -1;
    }
    if (follow) mt_heap_out_open(1);
}

int mt_heap_out_is_ours(void)
{
    return (long)getpid() == O.report_pid;
}

/* ---- the timeline thread ----------------------------------------------------------- */

static long long rss_bytes(void)
{
    char b[128];
    if (mt_proc_read("/proc/self/statm", b, sizeof b) <= 0) return -1;
    const char *s = b; /* "size resident shared ...": the second field */
    while (*s && *s != ' ')
        s++;
    if (!*s) return -1;
    long long pages = 0;
    int any = 0;
    for (s++; *s >= '0' && *s <= '9'; s++, any = 1)
        pages = pages * 10 + (*s - '0');
    return any ? pages * C.page_size : -1;
}

static void write_point(struct wbuf *w)
{
    long long live[MT_HEAP_NCAT], total;
    mt_heap_tracker_live(live, &total);
    double t = (double)(mt_heap_now_ns() - C.t0_ns) * 1e-9;
    if (C.device) { /* V: device memory live per kind, at the same time as T */
        long long dev[MT_DEV_NKIND];
        mt_heap_dev_live(dev);
        w_raw(w, "V\t");
        w_sec(w, t);
        for (int k = 0; k < MT_DEV_NKIND; k++) {
            w_tab(w);
            w_i64(w, dev[k]);
        }
        w_ch(w, '\n');
    }
    w_raw(w, "T\t");
    w_sec(w, t);
    w_tab(w);
    w_i64(w, rss_bytes());
    w_tab(w);
    w_esc(w, mt_heap_tags_region_now());
    w_tab(w);
    w_i64(w, total);
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        w_tab(w);
        w_i64(w, live[c]);
    }
    w_ch(w, '\n');
    w_flush(w);
}

/* Without a helper thread the hooks call this every few hundred allocations. */
void mt_heap_point_if_due(void)
{
    if (C.interval_ms <= 0 || O.fd < 0 || atomic_load(&O.helper_running)) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    unsigned long long now =
        (unsigned long long)ts.tv_sec * 1000000000u + (unsigned long long)ts.tv_nsec;
    unsigned long long due = atomic_load(&O.next_point_ns);
    if (now < due ||
        !atomic_compare_exchange_strong(&O.next_point_ns, &due,
                                        now + (unsigned long long)C.interval_ms * 1000000u))
        return;
    char b[512];
    struct wbuf w = {.fd = O.fd, .cap = sizeof b, .b = b};
    write_point(&w);
}

static void *helper_main(void *arg)
{
    (void)arg;
    mt_heap_guard(1);
    struct wbuf wb = {.cap = 4096}, *w = &wb;
    w->b = mt_heap_pages(w->cap);
    if (!w->b) return NULL;
    uint64_t next = mt_heap_now_ns();
    while (!atomic_load(&O.helper_stop)) {
        next += (uint64_t)C.interval_ms * 1000000u;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                              .tv_nsec = (long)(next % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0 &&
               !atomic_load(&O.helper_stop))
            ;
        if (atomic_load(&O.helper_stop)) break;
        w->fd = O.fd;
        write_point(w);
    }
    mt_heap_pages_free(w->b, w->cap);
    return NULL;
}

void mt_heap_helper_start(void)
{
    int expect = 0;
    if (C.interval_ms <= 0 || O.fd < 0 ||
        !atomic_compare_exchange_strong(&O.helper_running, &expect, 1))
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_store(&O.helper_stop, 0);
    if (mt_heap_real.pthread_create(&O.helper, NULL, helper_main, NULL) != 0)
        atomic_store(&O.helper_running, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void mt_heap_helper_stop(void)
{
    if (!atomic_load(&O.helper_running)) return;
    atomic_store(&O.helper_stop, 1);
    pthread_join(O.helper, NULL);
    atomic_store(&O.helper_running, 0);
}

/* ---- symbolization ----------------------------------------------------------------- */

/* Maps each distinct ip to a frame id (index + 1), in first-seen order. */
struct ipmap {
    uintptr_t *keys;
    uint32_t *ids;
    uintptr_t *order; /* id - 1 -> ip */
    size_t cap, count;
};

static size_t ip_slot(uintptr_t ip, size_t cap)
{
    uint64_t x = ip * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> 17) & (cap - 1);
}

static uint32_t ipmap_get(struct ipmap *m, uintptr_t ip)
{
    size_t j = ip_slot(ip, m->cap);
    while (m->keys[j] && m->keys[j] != ip)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) {
        m->keys[j] = ip;
        m->order[m->count] = ip;
        m->ids[j] = (uint32_t)++m->count;
    }
    return m->ids[j];
}

struct frame_info {
    const char *function, *module, *file;
    int line;
    char build_id[84];
};

#ifdef MT_HAVE_LIBDW
/* DWARF is taken from the module files themselves. Separate debug files (/usr/lib/debug,
 * debuginfod) are searched only with MEMTRADE_HEAP_DEBUGINFO=separate: inflating libc's
 * costs ~40 ms per process at exit, may hit the network, and only adds names of static
 * functions and lines inside system libraries. */
static int no_separate_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                                 Dwarf_Addr base, const char *file_name, const char *debuglink_file,
                                 GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    (void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
    return -1;
}

static Dwfl *dwfl_open(void)
{
    static char *debuginfo_path;
    static const Dwfl_Callbacks own = {.find_elf = dwfl_linux_proc_find_elf,
                                       .find_debuginfo = no_separate_debuginfo,
                                       .debuginfo_path = &debuginfo_path};
    static const Dwfl_Callbacks separate = {.find_elf = dwfl_linux_proc_find_elf,
                                            .find_debuginfo = dwfl_standard_find_debuginfo,
                                            .debuginfo_path = &debuginfo_path};
    const char *want = getenv("MEMTRADE_HEAP_DEBUGINFO");
    Dwfl *d = dwfl_begin(want && !strcmp(want, "separate") ? &separate : &own);
    if (!d) return NULL;
    if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0) {
        dwfl_end(d);
        return NULL;
    }
    return d;
}
#endif

static void hexify(char *dst, size_t cap, const unsigned char *bits, int n)
{
    size_t k = 0;
    for (int i = 0; i < n && k + 2 < cap; i++) {
        dst[k++] = "0123456789abcdef"[bits[i] >> 4];
        dst[k++] = "0123456789abcdef"[bits[i] & 15];
    }
    dst[k] = '\0';
}

static void resolve_frame(void *dwfl, uintptr_t ip, struct frame_info *fi)
{
    memset(fi, 0, sizeof *fi);
    uintptr_t pc = ip ? ip - 1 : ip; /* return address -> the call instruction */
#ifdef MT_HAVE_LIBDW
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule((Dwfl *)dwfl, pc) : NULL;
    if (mod) {
        fi->module = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        fi->function = dwfl_module_addrname(mod, pc);
        Dwfl_Line *ln = dwfl_module_getsrc(mod, pc);
        if (ln) {
            int line = 0;
            fi->file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
            fi->line = fi->file ? line : 0;
        }
        const unsigned char *bits;
        GElf_Addr vaddr;
        int n = dwfl_module_build_id(mod, &bits, &vaddr);
        if (n > 0) hexify(fi->build_id, sizeof fi->build_id, bits, n);
    }
#else
    (void)dwfl;
#endif
    if (!fi->function || !fi->module) {
        Dl_info di;
        if (dladdr((void *)pc, &di)) {
            if (!fi->function) fi->function = di.dli_sname;
            if (!fi->module) fi->module = di.dli_fname;
        }
    }
}

/* ---- the exit report --------------------------------------------------------------- */

static long long round_ll(double v)
{
    return (long long)llround(v);
}

static void write_categories(struct wbuf *w)
{
    struct mt_heap_totals k;
    mt_heap_tracker_cats(&k);
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        w_raw(w, "C\t");
        w_raw(w, mt_mem_cat_names[c]);
        long long v[5] = {k.allocs[c], k.frees[c], k.bytes[c], k.live[c], k.peak[c]};
        for (int i = 0; i < 5; i++) {
            w_tab(w);
            w_i64(w, v[i]);
        }
        w_ch(w, '\n');
    }
}

/* R lines: each tracked region's peaks (folded at exit by finish()). */
static void write_regions(struct wbuf *w)
{
    for (size_t i = 0; i < mt_heap_tags_region_count(); i++) {
        const struct mt_heap_region *r = mt_heap_tags_region(i);
        w_named(w, "R\t", r->name);
        w_i64(w, r->peak_total);
        for (int c = 0; c < MT_HEAP_NCAT; c++) {
            w_tab(w);
            w_i64(w, r->peak[c]);
        }
        w_ch(w, '\n');
    }
}

/* G, H lines and the device S keys: device memory's exact counters at exit. */
static void write_device(struct wbuf *w)
{
    const struct mt_heap_device *d = mt_heap_dev_state();
    for (int k = 0; k < MT_DEV_NKIND; k++) {
        const struct mt_heap_dev_counts *c = &d->k[k];
        long long v[] = {c->allocs, c->frees, c->bytes, c->live, c->peak, c->failed, c->unknown_frees};
        w_raw(w, "G\t");
        w_raw(w, mt_heap_dev_kind_names[k]);
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            w_tab(w);
            w_i64(w, v[i]);
        }
        w_ch(w, '\n');
    }
    for (int k = 0; k < MT_DEV_NKIND; k++)
        for (int c = 0; c < MT_HEAP_NCAT; c++) {
            const struct mt_heap_dev_counts *x = &d->cat[k][c];
            if (!x->allocs) continue;
            long long v[] = {x->allocs, x->frees, x->bytes, x->live, x->peak};
            w_raw(w, "H\t");
            w_raw(w, mt_heap_dev_kind_names[k]);
            w_tab(w);
            w_raw(w, mt_mem_cat_names[c]);
            for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
                w_tab(w);
                w_i64(w, v[i]);
            }
            w_ch(w, '\n');
        }
    for (int c = 0; c < MT_HEAP_NCAT; c++) { /* device and vmm together: memory on the GPU */
        if (!d->gpu_cat_peak[c]) continue;
        w_raw(w, "H\tgpu\t");
        w_raw(w, mt_mem_cat_names[c]);
        long long v[] = {d->cat[MT_DEV_DEVICE][c].allocs + d->cat[MT_DEV_VMM][c].allocs,
                         d->cat[MT_DEV_DEVICE][c].frees + d->cat[MT_DEV_VMM][c].frees,
                         d->cat[MT_DEV_DEVICE][c].bytes + d->cat[MT_DEV_VMM][c].bytes,
                         d->gpu_cat_live[c], d->gpu_cat_peak[c]};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            w_tab(w);
            w_i64(w, v[i]);
        }
        w_ch(w, '\n');
    }
    w_raw(w, "S\tdevice_peak_bytes\t");
    w_i64(w, d->gpu_peak);
    w_raw(w, "\nS\tdevice_peak_t\t");
    w_sec(w, d->gpu_peak_t);
    w_raw(w, "\nS\tdevice_mapped_peak_bytes\t");
    w_i64(w, d->mapped_peak);
    w_raw(w, "\nS\tdevice_unwrapped\t");
    w_i64(w, (long long)atomic_load(&mt_heap_g.cuda.unwrapped));
    w_ch(w, '\n');
}

static void write_summary(struct wbuf *w)
{
    struct mt_heap_summary m;
    mt_heap_tracker_summary(&m);
    const char *keys[] = {"allocs",         "bytes", "peak_bytes",    "leaked_bytes",
                          "leaked_allocs",  "sites", "stack_unwinds", "stack_cache_hits",
                          "regions_dropped"};
    long long vals[] = {m.allocs,        m.bytes,         m.peak_bytes,
                        m.leaked_bytes,  m.leaked_allocs, m.sites,
                        m.stack_unwinds, m.stack_hits,    mt_heap_tags_regions_dropped()};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        w_raw(w, "S\t");
        w_raw(w, keys[i]);
        w_tab(w);
        w_i64(w, vals[i]);
        w_ch(w, '\n');
    }
    w_raw(w, "S\tpeak_t\t");
    w_sec(w, m.peak_t);
    w_raw(w, "\nS\twall_s\t");
    w_sec(w, (double)(mt_heap_now_ns() - C.t0_ns) * 1e-9);
    w_ch(w, '\n');
}

/* Frames (F lines) for every distinct ip; stacks (K lines) deduplicated across categories;
 * sites (A lines) pointing at them. Scratch tables come from mt_heap_pages. */
/* Site i's stack: the host heap's sites first, then device memory's. */
static void site_stack(size_t i, size_t nhost, const uintptr_t **frames, uint32_t *depth)
{
    if (i < nhost) {
        const struct mt_heap_site *s = mt_heap_tracker_site(i);
        *frames = s->frames;
        *depth = s->depth;
    } else {
        const struct mt_heap_dev_site *s = &mt_heap_dev_state()->sites[i - nhost];
        *frames = s->frames;
        *depth = s->depth;
    }
}

/* D lines: device memory's sites (stack ids of the device sites follow the host's). */
static void write_device_sites(struct wbuf *w, const uint32_t *stack_of)
{
    const struct mt_heap_device *d = mt_heap_dev_state();
    for (size_t i = 0; i < d->site_count; i++) {
        const struct mt_heap_dev_site *s = &d->sites[i];
        if (!s->allocs) continue;
        w_raw(w, "D\t");
        w_u64(w, stack_of[i]);
        w_tab(w);
        w_raw(w, mt_heap_dev_kind_names[s->kind]);
        w_tab(w);
        w_raw(w, mt_mem_cat_names[s->cat]);
        long long v[] = {s->allocs, s->bytes, s->peak_live, s->leaked_bytes, s->leaked_allocs};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            w_tab(w);
            w_i64(w, v[k]);
        }
        w_ch(w, '\n');
    }
}

static void write_stacks_and_sites(struct wbuf *w)
{
    const size_t nhost = mt_heap_tracker_site_count();
    const size_t nsites = nhost + (C.device ? mt_heap_dev_state()->site_count : 0);
    size_t nframes = 0;
    const uintptr_t *fr, *ofr;
    uint32_t depth, odepth;
    for (size_t i = 0; i < nsites; i++) {
        site_stack(i, nhost, &fr, &depth);
        nframes += depth;
    }
    size_t cap = 1024;
    while (cap < nframes * 2 + 2)
        cap *= 2;
    struct ipmap m = {.cap = cap};
    m.keys = mt_heap_pages(cap * sizeof *m.keys);
    m.ids = mt_heap_pages(cap * sizeof *m.ids);
    m.order = mt_heap_pages(cap * sizeof *m.order);
    size_t scap = 1024;
    while (scap < nsites * 2 + 2)
        scap *= 2;
    uint32_t *stack_of = mt_heap_pages((nsites + 1) * sizeof *stack_of);
    uint32_t *stab = mt_heap_pages(scap * sizeof *stab); /* site index + 1 of first holder */
    if (!m.keys || !m.ids || !m.order || !stack_of || !stab) goto out;

    for (size_t i = 0; i < nsites; i++) {
        site_stack(i, nhost, &fr, &depth);
        for (uint32_t d = 0; d < depth; d++)
            ipmap_get(&m, fr[d]);
    }
    void *dwfl = NULL;
#ifdef MT_HAVE_LIBDW
    dwfl = dwfl_open();
#endif
    for (size_t k = 0; k < m.count; k++) {
        struct frame_info fi;
        resolve_frame(dwfl, m.order[k], &fi);
        w_raw(w, "F\t");
        w_u64(w, k + 1);
        w_tab(w);
        w_hex(w, m.order[k]);
        w_tab(w);
        w_esc(w, fi.function);
        w_tab(w);
        w_esc(w, fi.module);
        w_tab(w);
        w_esc(w, fi.file);
        w_tab(w);
        w_i64(w, fi.line);
        w_tab(w);
        w_raw(w, fi.build_id);
        w_ch(w, '\n');
    }
#ifdef MT_HAVE_LIBDW
    if (dwfl) dwfl_end((Dwfl *)dwfl);
#endif

    /* stacks: the same frames under several categories share one id */
    uint32_t nstacks = 0;
    for (size_t i = 0; i < nsites; i++) {
        site_stack(i, nhost, &fr, &depth);
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ depth;
        for (uint32_t d = 0; d < depth; d++)
            h = (h ^ fr[d]) * 0x100000001b3ULL;
        size_t j = (size_t)(h >> 7) & (scap - 1);
        for (;; j = (j + 1) & (scap - 1)) {
            if (!stab[j]) {
                stab[j] = (uint32_t)i + 1;
                stack_of[i] = ++nstacks;
                w_raw(w, "K\t");
                w_u64(w, nstacks);
                for (uint32_t d = 0; d < depth; d++) {
                    w_tab(w);
                    w_u64(w, ipmap_get(&m, fr[d]));
                }
                w_ch(w, '\n');
                break;
            }
            site_stack(stab[j] - 1, nhost, &ofr, &odepth);
            if (odepth == depth && memcmp(ofr, fr, depth * sizeof *fr) == 0) {
                stack_of[i] = stack_of[stab[j] - 1];
                break;
            }
        }
    }

    int est = C.mode == MT_HEAP_SAMPLED;
    for (size_t i = 0; i < nhost; i++) {
        const struct mt_heap_site *s = mt_heap_tracker_site(i);
        if (round_ll(s->allocs) == 0 && round_ll(s->bytes) == 0) continue;
        w_raw(w, "A\t");
        w_u64(w, stack_of[i]);
        w_tab(w);
        w_raw(w, mt_mem_cat_names[s->cat]);
        double v[] = {s->allocs,    s->bytes,        s->peak_live,
                      s->temporary, s->leaked_bytes, s->leaked_allocs};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            w_tab(w);
            w_i64(w, round_ll(v[k]));
        }
        w_tab(w);
        w_i64(w, est);
        w_ch(w, '\n');
    }
    if (C.device) write_device_sites(w, stack_of + nhost);
out:
    mt_heap_pages_free(m.keys, cap * sizeof *m.keys);
    mt_heap_pages_free(m.ids, cap * sizeof *m.ids);
    mt_heap_pages_free(m.order, cap * sizeof *m.order);
    mt_heap_pages_free(stack_of, (nsites + 1) * sizeof *stack_of);
    mt_heap_pages_free(stab, scap * sizeof *stab);
}

static void write_tensors(struct wbuf *w)
{
    for (size_t i = 0; i < mt_heap_tags_tensor_count(); i++) {
        const struct mt_heap_tensor *t = mt_heap_tags_tensor(i);
        w_named(w, "N\t", t->name);
        w_raw(w, mt_mem_cat_names[t->cat]);
        w_tab(w);
        w_u64(w, t->size);
        w_ch(w, '\n');
    }
}

void mt_heap_write_report(void)
{
    if (O.fd < 0) return;
    struct wbuf wb = {.fd = O.fd, .cap = 1 << 16}, *w = &wb;
    w->b = mt_heap_pages(w->cap);
    if (!w->b) return;
    write_point(w);
    write_categories(w);
    write_regions(w);
    write_summary(w);
    if (C.device) write_device(w);
    write_stacks_and_sites(w);
    write_tensors(w);
    w_raw(w, "E\n");
    w_flush(w);
    mt_heap_pages_free(w->b, w->cap);
    close(O.fd);
    O.fd = -1;
}
