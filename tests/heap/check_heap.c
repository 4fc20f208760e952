/* check_heap.c — compares heap profiler reports of known.c / omp.c with the known numbers.
 *
 * What it is for: `check_heap KIND DIR` reads every report in DIR with mt_heapreport_read
 * and asserts what KIND (known, sampled, fork, omp, crash) must show: exact bytes per site, the
 * exact peak and its consumers, exact leaks, exact per-category counters, timeline points,
 * tensors, frames with file:line; estimates within 5 % in sampled mode. Exits 0 when all
 * hold, 1 with one line per failure otherwise. What it is not for: running the programs
 * (run_heap.sh does).
 */
#define _GNU_SOURCE
#include "heap_test.h"
#include "heap_test_cats.h"
#include "heap_test_xt.h"
#include "heapreport.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a report in memory ------------------------------------------------------------- */

struct site {
    uint64_t stack;
    char cat[32];
    long long allocs, bytes, peak, temporary, leaked_bytes, leaked_allocs;
    int estimated;
};
struct frame {
    char *function, *module, *file, *build_id;
    long line;
};
struct report {
    char path[4096];
    struct mt_heapreport_summary sum;
    char mode[16];
    struct frame *frames;
    size_t nframes;
    uint64_t **stacks; /* stacks[id-1][0] = depth, then frame ids */
    size_t nstacks;
    struct site *sites;
    size_t nsites;
    struct heap_test_cats cats;
    char tensor_names[16][32], tensor_cats[16][32];
    long long tensor_bytes[16];
    size_t ntensors;
    size_t npoints;
    int peak_point_ok; /* a point in "peak_phase" matched the expected live bytes */
    long long peak_phase_total;
};

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int on_frame(const struct mt_heapreport_frame *f, void *u)
{
    struct report *r = u;
    r->frames = realloc(r->frames, (r->nframes + 1) * sizeof *r->frames);
    r->frames[r->nframes++] =
        (struct frame){dup(f->function), dup(f->module), dup(f->file), dup(f->build_id), f->line};
    return 0;
}

static int on_stack(const struct mt_heapreport_stack *s, void *u)
{
    struct report *r = u;
    r->stacks = realloc(r->stacks, (r->nstacks + 1) * sizeof *r->stacks);
    uint64_t *v = malloc((s->depth + 1) * sizeof *v);
    v[0] = s->depth;
    memcpy(v + 1, s->frames, s->depth * sizeof *v);
    r->stacks[r->nstacks++] = v;
    return 0;
}

static int on_site(const struct mt_heapreport_site *s, void *u)
{
    struct report *r = u;
    r->sites = realloc(r->sites, (r->nsites + 1) * sizeof *r->sites);
    struct site *d = &r->sites[r->nsites++];
    *d = (struct site){.stack = s->stack_id,
                       .allocs = s->allocs,
                       .bytes = s->bytes,
                       .peak = s->peak_bytes,
                       .temporary = s->temporary,
                       .leaked_bytes = s->leaked_bytes,
                       .leaked_allocs = s->leaked_allocs,
                       .estimated = s->estimated};
    snprintf(d->cat, sizeof d->cat, "%s", s->category);
    return 0;
}

HEAP_TEST_ON_CATEGORY(struct report, cats)

static int on_tensor(const struct mt_heapreport_tensor *t, void *u)
{
    struct report *r = u;
    if (r->ntensors < 16) {
        snprintf(r->tensor_names[r->ntensors], 32, "%s", t->name);
        snprintf(r->tensor_cats[r->ntensors], 32, "%s", t->category);
        r->tensor_bytes[r->ntensors++] = t->bytes;
    }
    return 0;
}

static size_t crash_points; /* points in region "crashing" with 100000 weights bytes live */

/* known.c's live bytes per category during its "peak_phase" (memcat enum order) */
static const long long peak_live[9] = {-1, 362144, 0, 0, 5049152, 0, 131072, 0, 6427};

static int on_sample(const struct mt_heapreport_sample *p, void *u)
{
    struct report *r = u;
    r->npoints++;
    if (p->region && !strcmp(p->region, "crashing") && p->ncat > 1 && p->live[1] == 100000)
        crash_points++;
    if (p->region && !strcmp(p->region, "peak_phase") && p->ncat == 9) {
        int ok = 1;
        for (size_t c = 1; c < 9; c++)
            ok &= p->live[c] == peak_live[c];
        if (ok) {
            r->peak_point_ok = 1;
            r->peak_phase_total = p->live_total;
        }
    }
    return 0;
}

static int on_summary(const struct mt_heapreport_summary *s, void *u)
{
    struct report *r = u;
    r->sum = *s;
    snprintf(r->mode, sizeof r->mode, "%s", s->mode);
    r->sum.mode = r->mode;
    r->sum.exe = NULL;
    r->sum.cat_names = NULL;
    return 0;
}

static int load(const char *path, struct report *r)
{
    static const struct mt_heapreport_cb cb = {.summary = on_summary,
                                               .category = on_category,
                                               .sample = on_sample,
                                               .frame = on_frame,
                                               .stack = on_stack,
                                               .site = on_site,
                                               .tensor = on_tensor};
    char err[512];
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    if (mt_heapreport_read(path, &cb, r, err, sizeof err) != 0) {
        printf("FAIL reading %s: %s\n", path, err);
        failures++;
        return -1;
    }
    return 0;
}

/* ---- queries ------------------------------------------------------------------------ */

static const char *frame_fn(const struct report *r, uint64_t id)
{
    return id >= 1 && id <= r->nframes ? r->frames[id - 1].function : NULL;
}

/* Does the stack of site s contain a frame of function fn? */
static int site_has(const struct report *r, const struct site *s, const char *fn)
{
    if (s->stack < 1 || s->stack > r->nstacks) return 0;
    const uint64_t *v = r->stacks[s->stack - 1];
    for (uint64_t d = 0; d < v[0]; d++) {
        const char *f = frame_fn(r, v[1 + d]);
        if (f && !strcmp(f, fn)) return 1;
    }
    return 0;
}

static int is_test_site(const struct report *r, const struct site *s)
{
    const uint64_t *v = r->stacks[s->stack - 1];
    for (uint64_t d = 0; d < v[0]; d++) {
        const char *f = frame_fn(r, v[1 + d]);
        if (f && (!strncmp(f, "site_", 5) || !strcmp(f, "omp_site"))) return 1;
    }
    return 0;
}

/* Sums the sites of function fn in category cat (NULL: any). */
static struct site sum_sites(const struct report *r, const char *fn, const char *cat)
{
    struct site t = {0};
    for (size_t i = 0; i < r->nsites; i++) {
        const struct site *s = &r->sites[i];
        if (!site_has(r, s, fn) || (cat && strcmp(s->cat, cat))) continue;
        t.allocs += s->allocs;
        t.bytes += s->bytes;
        t.peak += s->peak;
        t.temporary += s->temporary;
        t.leaked_bytes += s->leaked_bytes;
        t.leaked_allocs += s->leaked_allocs;
        t.estimated |= s->estimated;
        t.stack++; /* number of sites summed */
    }
    return t;
}

static const struct mt_heapreport_category *cat_of(const struct report *r, const char *name)
{
    return heap_test_cat(&r->cats, name);
}

struct want {
    const char *fn, *cat;
    long long allocs, bytes, peak, temporary, leaked_bytes, leaked_allocs;
};

static void expect_site(const struct report *r, const struct want *w)
{
    struct site s = sum_sites(r, w->fn, w->cat);
    CHECK(s.stack >= 1, "%s/%s: no site", w->fn, w->cat);
    CHECK(s.allocs == w->allocs, "%s/%s: allocs %lld, want %lld", w->fn, w->cat, s.allocs,
          w->allocs);
    CHECK(s.bytes == w->bytes, "%s/%s: bytes %lld, want %lld", w->fn, w->cat, s.bytes, w->bytes);
    CHECK(s.peak == w->peak, "%s/%s: peak %lld, want %lld", w->fn, w->cat, s.peak, w->peak);
    if (w->temporary >= 0)
        CHECK(s.temporary == w->temporary, "%s/%s: temporary %lld, want %lld", w->fn, w->cat,
              s.temporary, w->temporary);
    CHECK(s.leaked_bytes == w->leaked_bytes, "%s/%s: leaked %lld, want %lld", w->fn, w->cat,
          s.leaked_bytes, w->leaked_bytes);
    CHECK(s.leaked_allocs == w->leaked_allocs, "%s/%s: leaked allocs %lld, want %lld", w->fn,
          w->cat, s.leaked_allocs, w->leaked_allocs);
}

/* allocs/bytes/live/peak of a category; -1 = not checked */
static void expect_cat(const struct report *r, const char *name, long long allocs, long long bytes,
                       long long live, long long peak)
{
    const struct mt_heapreport_category *c = cat_of(r, name);
    CHECK(c != NULL, "no category %s", name);
    if (!c) return;
    CHECK(allocs < 0 || c->allocs == allocs, "%s: allocs %lld, want %lld", name, c->allocs, allocs);
    CHECK(bytes < 0 || c->bytes == bytes, "%s: bytes %lld, want %lld", name, c->bytes, bytes);
    CHECK(live < 0 || c->live == live, "%s: live %lld, want %lld", name, c->live, live);
    CHECK(peak < 0 || c->peak == peak, "%s: peak %lld, want %lld", name, c->peak, peak);
}

/* ---- the kinds ---------------------------------------------------------------------- */

static void check_known(const struct report *r)
{
    CHECK(r->sum.complete, "report not complete");
    CHECK(!strcmp(r->sum.mode, "full"), "mode %s", r->sum.mode);
    static const struct want w[] = {
        {"site_a", "weights", 100, 100000, 100000, 0, 0, 0},
        {"site_arena", "other", 1, 655360, 655360, 0, 0, 0},
        {"site_arena", "weights", 0, 262144, 262144, 0, 0, 0},
        {"site_arena", "kv_cache", 0, 131072, 131072, 0, 0, 0},
        {"site_map", "activations", 1, 65536, 49152, 0, 16384, 1},
        {"site_pm", "data", 1, 4096, 4096, 0, 4096, 1},
        {"site_leak", "data", 7, 2331, 2331, 0, 2331, 7},
        {"site_big", "activations", 1, 5000000, 5000000, 1, 0, 0},
        {"site_tmp", "workspace", 10, 2000, 0, 10, 0, 0},
        {"site_r0", "optimizer", 1, 100, 0, 1, 0, 0},
        {"site_realloc", "optimizer", 3, 1400, 0, 3, 0, 0},
        {"site_aligned", "act_grads", 1, 512, 0, 1, 0, 0},
        {"site_memalign", "act_grads", 1, 384, 0, 1, 0, 0},
        {"site_valloc", "act_grads", 1, 1000, 0, 1, 0, 0},
        {"site_thread", "gradients", 4000, 192000, 0, -1, 0, 0},
        {"site_mremap_src", "workspace", 1, 8192, 0, 1, 0, 0},
        {"site_mremap", "workspace", 1, 16384, 0, 1, 0, 0},
        {"path_a", "other", 700, 16800, 0, 700, 0, 0},
        {"path_b", "other", 300, 7200, 0, 300, 0, 0},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        expect_site(r, &w[i]);
    CHECK(sum_sites(r, "site_filemap", NULL).stack == 0, "a file mapping was counted as heap");

    /* the peak: its consumers add up to it; test sites hold exactly what was live; the
     * rest is start-up memory of the runtime (thread TLS; libstdc++'s 71 KiB exception pool
     * when the sanitizer runtime pulls libstdc++ in) */
    long long all = 0, known = 0, leaked_known = 0;
    for (size_t i = 0; i < r->nsites; i++) {
        all += r->sites[i].peak;
        if (is_test_site(r, &r->sites[i])) {
            known += r->sites[i].peak;
            leaked_known += r->sites[i].leaked_bytes;
        }
    }
    CHECK(all == r->sum.peak_bytes, "site peak shares add up to %lld, peak is %lld", all,
          r->sum.peak_bytes);
    CHECK(known == 6204155, "test sites hold %lld at the peak, want 6204155", known);
    CHECK(r->sum.peak_bytes >= known && r->sum.peak_bytes - known < 256 * 1024,
          "peak %lld vs test sites %lld", r->sum.peak_bytes, known);
    CHECK(leaked_known == 22811, "test sites leak %lld, want 22811", leaked_known);
    CHECK(r->sum.leaked_bytes >= 22811, "summary leaks %lld", r->sum.leaked_bytes);

    expect_cat(r, "weights", 100, 362144, 0, 362144);
    expect_cat(r, "activations", 2, 5065536, 16384, 5049152);
    expect_cat(r, "kv_cache", 0, 131072, 0, 131072);
    expect_cat(r, "data", 8, 6427, 6427, 6427);
    expect_cat(r, "workspace", 12, 26576, 0, 16384);
    expect_cat(r, "optimizer", 4, 1500, 0, 800);
    expect_cat(r, "act_grads", 3, 1896, 0, 1000);
    expect_cat(r, "gradients", 4000, 192000, 0, -1);
    const struct mt_heapreport_category *g = cat_of(r, "gradients");
    CHECK(g && g->peak >= 48 && g->peak <= 192, "gradients peak %lld", g ? g->peak : -1);

    CHECK(r->peak_point_ok, "no timeline point in peak_phase with the known live bytes");
    CHECK(r->peak_phase_total == r->sum.peak_bytes, "peak_phase point total %lld, peak %lld",
          r->peak_phase_total, r->sum.peak_bytes);
    CHECK(r->npoints >= 3, "only %zu timeline points", r->npoints);

    int wte = 0, kv = 0;
    for (size_t i = 0; i < r->ntensors; i++) {
        wte |= !strcmp(r->tensor_names[i], "wte") && !strcmp(r->tensor_cats[i], "weights") &&
               r->tensor_bytes[i] == 262144;
        kv |= !strcmp(r->tensor_names[i], "kv") && !strcmp(r->tensor_cats[i], "kv_cache") &&
              r->tensor_bytes[i] == 131072;
    }
    CHECK(wte && kv, "tensors wte/kv missing or wrong");

    /* symbols: the innermost frame of site_a has file:line in known.c and a build id */
    int sym_ok = 0;
    for (size_t i = 0; i < r->nframes; i++) {
        const struct frame *f = &r->frames[i];
        if (f->function && !strcmp(f->function, "site_a"))
            sym_ok = f->file && strstr(f->file, "known.c") && f->line > 0 && f->module &&
                     strstr(f->module, "heap_known") && f->build_id && strlen(f->build_id) >= 16;
    }
    CHECK(sym_ok, "frame of site_a lacks file:line, module or build id");
}

static void near(const char *what, long long got, double want, double tol)
{
    CHECK(fabs((double)got - want) <= tol * want, "%s: %lld, want %.0f within %.0f %%", what, got,
          want, tol * 100);
}

static void check_sampled(const struct report *r)
{
    CHECK(r->sum.complete, "report not complete");
    CHECK(!strcmp(r->sum.mode, "sampled"), "mode %s", r->sum.mode);
    CHECK(r->sum.sample_bytes == 512 * 1024, "sample_bytes %lld", r->sum.sample_bytes);
    struct site s1 = sum_sites(r, "site_s1", "weights"),
                s2 = sum_sites(r, "site_s2", "activations");
    near("site_s1 bytes", s1.bytes, 2000.0 * 1048576, 0.05);
    near("site_s1 allocs", s1.allocs, 2000, 0.05);
    near("site_s2 bytes", s2.bytes, 4000.0 * 262144, 0.05);
    near("site_s2 allocs", s2.allocs, 4000, 0.05);
    CHECK(s1.estimated && s2.estimated, "sampled sites not marked estimated");
    /* exact counters whatever the mode */
    expect_cat(r, "weights", 2000, 2000LL * 1048576, 0, 1048576);
    expect_cat(r, "activations", 4000, 4000LL * 262144, 0, 262144);
    expect_cat(r, "data", 100000, 6400000, 0, 64);
}

/* A SIGKILLed process: no exit report, but its timeline up to the kill. */
static void check_crash(const struct report *r)
{
    CHECK(!r->sum.complete, "a killed process cannot have an exit report");
    CHECK(r->sum.peak_bytes == -1 && r->nsites == 0, "exit data in a killed process's report");
    CHECK(crash_points >= 2, "%zu timeline points with the live weights before the kill",
          crash_points);
}

static void check_omp(const struct report *r)
{
    CHECK(r->sum.complete, "report not complete");
    long long want = 0;
    for (long i = 0; i < 40000; i++)
        want += 32 + i % 64;
    struct site s = sum_sites(r, "omp_site", "workspace");
    if (!strcmp(r->sum.mode, "full")) {
        CHECK(s.allocs == 40000, "omp_site allocs %lld, want 40000", s.allocs);
        CHECK(s.bytes == want, "omp_site bytes %lld, want %lld", s.bytes, want);
    } else { /* R = 4 KiB (the test sets it): about 620 samples of 2.54 MB, so the
              * site must be there and its estimates within 25 % (6 standard deviations) */
        CHECK(r->sum.sample_bytes == 4096, "sample_bytes %lld, want 4096", r->sum.sample_bytes);
        CHECK(s.stack > 0, "omp_site missing from a sampled report");
        CHECK(s.estimated, "sampled sites not marked estimated");
        near("omp_site bytes", s.bytes, (double)want, 0.25);
        near("omp_site allocs", s.allocs, 40000.0, 0.25);
    }
    CHECK(s.leaked_bytes == 0, "omp_site leaked %lld", s.leaked_bytes);
    /* exact in every mode, whatever the threads did */
    expect_cat(r, "workspace", 40000, want, 0, -1);
}

/* known.c's threads kind: kv_cache holds the four threads' blocks only, so its counters
 * and peak are exact sums, in both modes, whichever thread freed which block. */
static void check_threads(const struct report *r)
{
    CHECK(r->sum.complete, "report not complete");
    long long allocs = 0, bytes = 0, kept = 0;
    for (int t = 0; t < XT_THREADS; t++) {
        for (int i = 0; i < XT_TEMPS; i++)
            bytes += (long long)xt_temp_size(t, i);
        for (int i = 0; i < XT_BLOCKS; i++)
            kept += (long long)xt_size(t, i);
        allocs += XT_TEMPS + XT_BLOCKS;
    }
    bytes += kept;
    expect_cat(r, "kv_cache", allocs, bytes, 0, kept);
    const struct mt_heapreport_category *c = cat_of(r, "kv_cache");
    CHECK(c && c->frees == allocs, "kv_cache frees %lld, want %lld", c ? c->frees : -1, allocs);
    long long churn = 0;
    for (int i = 0; i < 20000; i++)
        churn += 64 + i % 512;
    expect_cat(r, "activations", 20000, churn, 0, -1);
    long long handoff = 0; /* made by one thread, freed by it and then by the threads */
    for (int i = 0; i < XT_HANDOFF; i++)
        handoff += (long long)xt_handoff_size(i);
    expect_cat(r, "workspace", XT_HANDOFF, handoff, 0, handoff);
    const struct mt_heapreport_category *w = cat_of(r, "workspace");
    CHECK(w && w->frees == XT_HANDOFF, "workspace frees %lld, want %d", w ? w->frees : -1,
          XT_HANDOFF);
    if (!strcmp(r->sum.mode, "full")) {
        struct site s = sum_sites(r, "site_xt", "kv_cache");
        struct site sc = sum_sites(r, "site_xt_calloc", "kv_cache");
        CHECK(s.allocs + sc.allocs == XT_THREADS * XT_BLOCKS, "site_xt allocs %lld + %lld",
              s.allocs, sc.allocs);
        CHECK(s.bytes + sc.bytes == kept, "site_xt bytes %lld + %lld, want %lld", s.bytes, sc.bytes,
              kept);
        CHECK(s.leaked_bytes == 0 && sc.leaked_bytes == 0, "site_xt leaks");
    }
}

/* Three processes: the parent, a fork that exits, an exec'd child; each its own file. */
static void check_fork(struct report *r, size_t n)
{
    CHECK(n == 3, "%zu reports, want 3 (parent, fork child, exec child)", n);
    int parent = 0, child = 0, exec_child = 0;
    long long parent_pid = -1, exec_ppid = -2;
    for (size_t i = 0; i < n; i++) {
        CHECK(r[i].sum.complete, "%s not complete", r[i].path);
        struct site p = sum_sites(&r[i], "site_parent", "data");
        struct site c = sum_sites(&r[i], "site_child_nofork", "data");
        struct site e = sum_sites(&r[i], "site_exec_child", "data");
        if (e.leaked_bytes == 2220 && p.stack == 0) {
            exec_child++;
            exec_ppid = r[i].sum.ppid;
        } else if (c.leaked_bytes == 666 && p.leaked_bytes == 222) {
            child++;
        } else if (p.leaked_bytes == 222 && c.stack == 0) {
            parent++;
            parent_pid = r[i].sum.pid;
        }
    }
    CHECK(parent == 1 && child == 1 && exec_child == 1, "parent %d, fork child %d, exec child %d",
          parent, child, exec_child);
    CHECK(exec_ppid == parent_pid, "exec child's ppid %lld, parent pid %lld", exec_ppid,
          parent_pid);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s known|sampled|omp|fork|crash DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[2]);
    if (!d) {
        perror(argv[2]);
        return 1;
    }
    struct report *r = calloc(8, sizeof *r);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 8) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", argv[2], e->d_name);
        if (load(path, &r[n]) == 0) n++;
    }
    closedir(d);
    const char *kind = argv[1];
    if (!strcmp(kind, "fork")) {
        check_fork(r, n);
    } else {
        CHECK(n == 1, "%zu reports in %s, want 1", n, argv[2]);
        if (n >= 1) {
            if (!strcmp(kind, "known"))
                check_known(&r[0]);
            else if (!strcmp(kind, "sampled"))
                check_sampled(&r[0]);
            else if (!strcmp(kind, "omp"))
                check_omp(&r[0]);
            else if (!strcmp(kind, "crash"))
                check_crash(&r[0]);
            else if (!strcmp(kind, "threads"))
                check_threads(&r[0]);
            else
                CHECK(0, "unknown kind %s", kind);
        }
    }
    if (failures)
        printf("%d check(s) failed\n", failures);
    else
        printf("ok: %s\n", kind);
    return failures ? 1 : 0;
}
