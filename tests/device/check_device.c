/* check_device.c — checks the device memory part of a heap profiler report of cuda_prog.c.
 *
 * What it is for: `check_device KIND DIR` (KIND: direct or runtime; both make the same
 * calls) reads the one report in DIR and asserts the exact bytes cuda_prog.c books: per
 * kind (G) and per kind and category (H) allocs, frees, bytes, live, peak, refused calls
 * and unknown frees; the device peak of device + vmm; sites (D) adding up to their kinds'
 * totals, peaks and leaks, with the allocating function in the stack; a timeline (V)
 * ordered in time, ending at the live bytes at exit, that saw both VMM handles live.
 * Exits 0 when all hold, 1 with one line per failure. What it is not for: running the
 * program (tests/heap/run_heap.sh does).
 */
#define _GNU_SOURCE
#include "heap_test.h"
#include "heapreport.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NK = MT_HEAPREPORT_DEVICE_KINDS, MAXF = 4096 };

struct report {
    struct mt_heapreport_summary sum;
    struct mt_heapreport_device_kind kind[NK];
    int kind_seen[NK];
    struct {
        char kind[16], cat[32];
        long long v[5];
    } cats[64];
    size_t ncats;
    long long site_bytes[NK], site_peak[NK], site_leak[NK], site_leak_allocs[NK];
    size_t nsites;
    int weights_site_ok;   /* the 1 MiB site of alloc_weights, with its exact figures */
    char *fn[MAXF];        /* frame id -> function */
    uint64_t *stack[MAXF]; /* stack id -> frame ids, [0] = depth */
    size_t npoints;
    double last_t;
    int ordered;
    long long last[NK], max_vmm;
};

static int kind_index(const char *k)
{
    for (int i = 0; i < NK; i++)
        if (!strcmp(k, mt_heapreport_device_kinds[i])) return i;
    return -1;
}

static int on_summary(const struct mt_heapreport_summary *s, void *u)
{
    ((struct report *)u)->sum = *s;
    return 0;
}

static int on_frame(const struct mt_heapreport_frame *f, void *u)
{
    struct report *r = u;
    if (f->id < MAXF) r->fn[f->id] = f->function ? strdup(f->function) : NULL;
    return 0;
}

static int on_stack(const struct mt_heapreport_stack *s, void *u)
{
    struct report *r = u;
    if (s->id >= MAXF) return 0;
    r->stack[s->id] = calloc(s->depth + 1, sizeof *r->stack[s->id]);
    r->stack[s->id][0] = s->depth;
    memcpy(r->stack[s->id] + 1, s->frames, s->depth * sizeof *s->frames);
    return 0;
}

static int stack_has(const struct report *r, uint64_t id, const char *function)
{
    if (id >= MAXF || !r->stack[id]) return 0;
    for (uint64_t d = 1; d <= r->stack[id][0]; d++) {
        uint64_t f = r->stack[id][d];
        if (f < MAXF && r->fn[f] && !strcmp(r->fn[f], function)) return 1;
    }
    return 0;
}

static int on_kind(const struct mt_heapreport_device_kind *k, void *u)
{
    struct report *r = u;
    int i = kind_index(k->kind);
    r->kind[i] = *k;
    r->kind_seen[i]++;
    return 0;
}

static int on_cat(const struct mt_heapreport_device_category *c, void *u)
{
    struct report *r = u;
    if (r->ncats == 64) return 0;
    snprintf(r->cats[r->ncats].kind, sizeof r->cats[0].kind, "%s", c->kind);
    snprintf(r->cats[r->ncats].cat, sizeof r->cats[0].cat, "%s", c->category);
    long long v[5] = {c->allocs, c->frees, c->bytes, c->live, c->peak};
    memcpy(r->cats[r->ncats++].v, v, sizeof v);
    return 0;
}

static int on_site(const struct mt_heapreport_device_site *d, void *u)
{
    struct report *r = u;
    const struct mt_heapreport_site *s = d->site;
    int k = kind_index(d->kind);
    r->nsites++;
    r->site_bytes[k] += s->bytes;
    r->site_peak[k] += s->peak_bytes;
    r->site_leak[k] += s->leaked_bytes;
    r->site_leak_allocs[k] += s->leaked_allocs;
    if (k == 0 && !strcmp(s->category, "weights") && s->bytes == 1048576 &&
        stack_has(r, s->stack_id, "alloc_weights"))
        r->weights_site_ok = s->allocs == 1 && s->peak_bytes == 1048576 && s->leaked_bytes == 0;
    return 0;
}

static int on_point(const struct mt_heapreport_device_sample *p, void *u)
{
    struct report *r = u;
    if (r->npoints && p->t < r->last_t) r->ordered = 0;
    r->last_t = p->t;
    r->npoints++;
    memcpy(r->last, p->live, sizeof r->last);
    if (p->live[1] > r->max_vmm) r->max_vmm = p->live[1];
    return 0;
}

static const long long *cat_of(const struct report *r, const char *kind, const char *cat)
{
    for (size_t i = 0; i < r->ncats; i++)
        if (!strcmp(r->cats[i].kind, kind) && !strcmp(r->cats[i].cat, cat)) return r->cats[i].v;
    return NULL;
}

static void expect_cat(const struct report *r, const char *kind, const char *cat, long long allocs,
                       long long frees, long long bytes, long long live, long long peak)
{
    const long long *v = cat_of(r, kind, cat);
    CHECK(v != NULL, "no H line for %s/%s", kind, cat);
    if (!v) return;
    long long want[5] = {allocs, frees, bytes, live, peak};
    const char *names[5] = {"allocs", "frees", "bytes", "live", "peak"};
    for (int i = 0; i < 5; i++)
        CHECK(v[i] == want[i], "%s/%s %s: %lld, expected %lld", kind, cat, names[i], v[i], want[i]);
}

static void expect_kind(const struct report *r, int k, long long allocs, long long frees,
                        long long bytes, long long live, long long peak, long long failed,
                        long long unknown)
{
    const struct mt_heapreport_device_kind *g = &r->kind[k];
    long long got[7] = {g->allocs, g->frees, g->bytes, g->live, g->peak, g->failed, g->unknown_frees};
    long long want[7] = {allocs, frees, bytes, live, peak, failed, unknown};
    const char *names[7] = {"allocs", "frees", "bytes", "live", "peak", "failed", "unknown_frees"};
    CHECK(r->kind_seen[k] == 1, "%d G lines for %s", r->kind_seen[k], mt_heapreport_device_kinds[k]);
    for (int i = 0; i < 7; i++)
        CHECK(got[i] == want[i], "%s %s: %lld, expected %lld", mt_heapreport_device_kinds[k], names[i],
              got[i], want[i]);
    /* sites add up to their kind */
    CHECK(r->site_bytes[k] == bytes, "%s: sites hold %lld bytes, G %lld",
          mt_heapreport_device_kinds[k], r->site_bytes[k], bytes);
    CHECK(r->site_peak[k] == peak, "%s: sites' peak shares %lld, G peak %lld",
          mt_heapreport_device_kinds[k], r->site_peak[k], peak);
    CHECK(r->site_leak[k] == live, "%s: sites leak %lld, G live %lld",
          mt_heapreport_device_kinds[k], r->site_leak[k], live);
}

static int read_dir(const char *dir, struct report *r, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    char path[4096] = "";
    int n = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "heap.", 5)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            n++;
        }
    closedir(d);
    if (n != 1) {
        snprintf(err, errlen, "%d reports in %s, expected 1", n, dir);
        return -1;
    }
    struct mt_heapreport_cb cb = {.summary = on_summary,
                                  .frame = on_frame,
                                  .stack = on_stack,
                                  .device_kind = on_kind,
                                  .device_category = on_cat,
                                  .device_site = on_site,
                                  .device_sample = on_point};
    return mt_heapreport_read(path, &cb, r, err, errlen);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: check_device direct|runtime DIR\n");
        return 2;
    }
    static struct report r = {.ordered = 1};
    char err[1024];
    if (read_dir(argv[2], &r, err, sizeof err) != 0) {
        fprintf(stderr, "check_device: %s\n", err);
        return 1;
    }
    CHECK(r.sum.complete && r.sum.device, "report complete %d, device %d", r.sum.complete,
          r.sum.device);
    /*                 allocs frees bytes    live    peak     failed unknown */
    expect_kind(&r, 0, 6, 3, 1288192, 108544, 1255424, 2, 1);
    expect_kind(&r, 1, 2, 2, 4194304, 0, 4194304, 1, 1);
    expect_kind(&r, 2, 1, 1, 8192, 0, 8192, 0, 0);
    expect_kind(&r, 3, 2, 1, 20480, 16384, 20480, 0, 0);
    expect_cat(&r, "device", "weights", 2, 1, 1058816, 10240, 1058816);
    expect_cat(&r, "device", "activations", 4, 2, 229376, 98304, 196608);
    expect_cat(&r, "managed", "data", 1, 1, 8192, 0, 8192);
    expect_cat(&r, "pinned", "data", 2, 1, 20480, 16384, 20480);
    expect_cat(&r, "vmm", "kv_cache", 2, 2, 4194304, 0, 4194304);
    expect_cat(&r, "gpu", "weights", 2, 1, 1058816, 10240, 1058816);
    expect_cat(&r, "gpu", "activations", 4, 2, 229376, 98304, 196608);
    expect_cat(&r, "gpu", "kv_cache", 2, 2, 4194304, 0, 4194304);
    CHECK(r.ncats == 8, "%zu H lines, expected 8 (a refused call books nothing)", r.ncats);
    CHECK(r.sum.device_peak_bytes == 5351424, "device peak %lld, expected 5351424",
          r.sum.device_peak_bytes);
    CHECK(r.sum.device_mapped_peak_bytes == 4194304, "mapped peak %lld",
          r.sum.device_mapped_peak_bytes);
    CHECK(r.sum.device_unwrapped == 0, "%lld entry points unwrapped", r.sum.device_unwrapped);
    CHECK(r.site_leak_allocs[0] == 3 && r.site_leak_allocs[3] == 1, "leaked blocks %lld, %lld",
          r.site_leak_allocs[0], r.site_leak_allocs[3]);
    CHECK(r.weights_site_ok, "no exact device site for alloc_weights");
    CHECK(r.npoints >= 3 && r.ordered, "%zu timeline points, ordered %d", r.npoints, r.ordered);
    long long last[NK] = {108544, 0, 0, 16384};
    CHECK(!memcmp(r.last, last, sizeof last), "last point %lld %lld %lld %lld", r.last[0],
          r.last[1], r.last[2], r.last[3]);
    CHECK(r.max_vmm == 4194304, "the timeline's vmm peak %lld, expected 4194304", r.max_vmm);
    return mt_check_status(failures);
}
