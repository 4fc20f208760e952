/* sampling.c — sampled mode against full mode on one deterministic program, and the
 * byte sampler's statistics.
 *
 * What it is for: `heap_sampling run N` (under LD_PRELOAD=libmt_heap.so) makes N
 * allocations of 16..4096 bytes from a fixed xorshift stream (malloc, calloc, realloc,
 * posix_memalign) in categories weights, activations and workspace (nothing else uses
 * them), in a ring of 1024 live blocks, all freed at the end. `heap_sampling check N DIR`
 * replays the same stream without allocating and reads the reports of DIR/full,
 * DIR/sampled, DIR/again (sampled, same seed) and DIR/reseeded (sampled, another seed),
 * demanding:
 *   - exact totals: each category's allocs, frees, bytes, live and peak equal the replay's
 *     in both modes, every category line and the allocs/bytes/peak summary are the same
 *     in both modes, and full mode's sites add up to the replay exactly;
 *   - the sampler: the number of sampled allocations (stack_unwinds + stack_cache_hits)
 *     within 5 standard deviations of its expectation sum(1 - exp(-size/R)); the weighted
 *     estimates of bytes and allocations per test category within the stated tolerances
 *     (over 5 standard deviations at the sizes used); the same seed gives the same
 *     samples, another seed other ones.
 * What it is not for: timing (scripts/bench_heap.sh).
 */
#define _GNU_SOURCE
#include <memtrade/memcat.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_test.h"
#include "heap_test_cats.h"
#include "heapreport.h"

enum { RING = 1024, NTEST = 3 };
static const int test_cat[NTEST] = {MT_MEM_WEIGHTS, MT_MEM_ACTIVATIONS, MT_MEM_WORKSPACE};

/* What the program did, by the replay: exact counters per test category and the
 * sampler's expectation for mean interval r. */
struct tally {
    long long allocs[NTEST], frees[NTEST], bytes[NTEST], live[NTEST], peak[NTEST];
    double r, expect_samples, var_samples;
};

static void count_alloc(struct tally *t, int c, size_t n)
{
    t->allocs[c]++;
    t->bytes[c] += (long long)n;
    t->live[c] += (long long)n;
    if (t->live[c] > t->peak[c]) t->peak[c] = t->live[c];
    double p = -expm1(-(double)n / t->r);
    t->expect_samples += p;
    t->var_samples += p * (1 - p);
}

static void count_free(struct tally *t, int c, size_t n)
{
    t->frees[c]++;
    t->live[c] -= (long long)n;
}

/* The program, or its replay when t is not NULL (nothing allocated then). */
static void workload(size_t count, struct tally *t)
{
    static void *ring[RING];
    static size_t size[RING];
    static int cat[RING];
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i <= count; i++) {
        size_t slot = i % RING;
        if (i == count) { /* the end: free the whole ring */
            for (size_t k = 0; k < RING; k++) {
                if (!size[k]) continue;
                if (t)
                    count_free(t, cat[k], size[k]);
                else
                    free(ring[k]);
                size[k] = 0;
            }
            break;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545f4914f6cdd1dULL;
        size_t n = 16 + (size_t)(v % 4081);
        int c = (int)((v >> 32) % NTEST), kind = (int)((v >> 40) % 8);
        if (!t) mt_memcat_set(test_cat[c]);
        if (kind == 1 && size[slot]) { /* realloc: the old block's free, then the new one */
            if (t) {
                count_free(t, cat[slot], size[slot]);
                count_alloc(t, c, n);
            } else {
                ring[slot] = realloc(ring[slot], n);
                if (!ring[slot]) abort();
            }
        } else {
            if (size[slot]) {
                if (t)
                    count_free(t, cat[slot], size[slot]);
                else
                    free(ring[slot]);
            }
            if (t) {
                count_alloc(t, c, n);
            } else {
                void *p = NULL;
                if (kind == 0)
                    p = calloc(1, n);
                else if (kind == 2 && posix_memalign(&p, 64, n) != 0)
                    p = NULL;
                else if (kind != 2)
                    p = malloc(n);
                if (!p) abort();
                ((volatile char *)p)[n - 1] = (char)i;
                ring[slot] = p;
            }
        }
        size[slot] = n;
        cat[slot] = c;
    }
    if (!t) mt_memcat_set(MT_MEM_OTHER);
}

/* ---- reading the reports ------------------------------------------------------------ */

struct report {
    int complete;
    char mode[16];
    long long sample_bytes, allocs, bytes, peak_bytes;
    struct heap_test_cats cats;
    double site_allocs[NTEST], site_bytes[NTEST]; /* sums over the sites of each test cat */
    int estimated;
    long long samples; /* stack_unwinds + stack_cache_hits */
};

static int test_index(const char *name)
{
    for (int i = 0; i < NTEST; i++)
        if (!strcmp(name, mt_mem_cat_names[test_cat[i]])) return i;
    return -1;
}

static int on_summary(const struct mt_heapreport_summary *s, void *u)
{
    struct report *r = u;
    r->complete = s->complete;
    snprintf(r->mode, sizeof r->mode, "%s", s->mode ? s->mode : "");
    r->sample_bytes = s->sample_bytes;
    r->allocs = s->allocs;
    r->bytes = s->bytes;
    r->peak_bytes = s->peak_bytes;
    return 0;
}

HEAP_TEST_ON_CATEGORY(struct report, cats)

static int on_site(const struct mt_heapreport_site *s, void *u)
{
    struct report *r = u;
    int i = test_index(s->category);
    if (i < 0) return 0;
    r->site_allocs[i] += (double)s->allocs;
    r->site_bytes[i] += (double)s->bytes;
    r->estimated |= s->estimated;
    return 0;
}

/* The S lines the reader leaves out: the profiler's own stack counts. */
static long long stack_count(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    long long n = 0;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "S\tstack_unwinds\t%lld", &v) == 1 ||
            sscanf(line, "S\tstack_cache_hits\t%lld", &v) == 1)
            n += v;
    }
    fclose(f);
    return n;
}

/* Reads the one report in dir/sub. */
static int read_one(const char *dir, const char *sub, struct report *r)
{
    char cmd[4200], path[4096] = "";
    snprintf(cmd, sizeof cmd, "ls %s/%s/*.txt 2>/dev/null", dir, sub);
    FILE *ls = popen(cmd, "r");
    int found = 0;
    if (ls) {
        char extra[4096];
        if (fgets(path, sizeof path, ls)) found = 1;
        while (fgets(extra, sizeof extra, ls))
            found++;
        pclose(ls);
    }
    CHECK(found == 1, "%s/%s: %d reports, want 1", dir, sub, found);
    if (found != 1) return -1;
    path[strcspn(path, "\n")] = '\0';
    memset(r, 0, sizeof *r);
    char err[512];
    struct mt_heapreport_cb cb = {.summary = on_summary, .category = on_category, .site = on_site};
    int rc = mt_heapreport_read(path, &cb, r, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    CHECK(r->complete, "%s: report not complete", path);
    r->samples = stack_count(path);
    return rc == 0 && r->complete ? 0 : -1;
}

static const struct mt_heapreport_category *cat_of(const struct report *r, const char *name)
{
    return heap_test_cat(&r->cats, name);
}

/* ---- the checks --------------------------------------------------------------------- */

static void exact_totals(const char *what, const struct report *r, const struct tally *t)
{
    for (int i = 0; i < NTEST; i++) {
        const char *name = mt_mem_cat_names[test_cat[i]];
        const struct mt_heapreport_category *c = cat_of(r, name);
        CHECK(c != NULL, "%s: no category %s", what, name);
        if (!c) continue;
        CHECK(c->allocs == t->allocs[i] && c->frees == t->frees[i] && c->bytes == t->bytes[i] &&
                  c->live == 0 && c->peak == t->peak[i],
              "%s %s: allocs %lld frees %lld bytes %lld live %lld peak %lld, want %lld %lld %lld 0 "
              "%lld",
              what, name, c->allocs, c->frees, c->bytes, c->live, c->peak, t->allocs[i],
              t->frees[i], t->bytes[i], t->peak[i]);
    }
}

static void same_totals(const struct report *a, const struct report *b)
{
    CHECK(a->allocs == b->allocs && a->bytes == b->bytes && a->peak_bytes == b->peak_bytes,
          "summary differs: full allocs %lld bytes %lld peak %lld, sampled %lld %lld %lld",
          a->allocs, a->bytes, a->peak_bytes, b->allocs, b->bytes, b->peak_bytes);
    CHECK(a->cats.n == b->cats.n && a->cats.n > 0, "%zu vs %zu categories", a->cats.n, b->cats.n);
    for (size_t i = 0; i < a->cats.n && i < b->cats.n; i++) {
        const struct mt_heapreport_category *x = &a->cats.v[i], *y = &b->cats.v[i];
        CHECK(!strcmp(x->name, y->name) && x->allocs == y->allocs && x->frees == y->frees &&
                  x->bytes == y->bytes && x->live == y->live && x->peak == y->peak,
              "category %s: full %lld/%lld/%lld/%lld/%lld, sampled %lld/%lld/%lld/%lld/%lld",
              x->name, x->allocs, x->frees, x->bytes, x->live, x->peak, y->allocs, y->frees,
              y->bytes, y->live, y->peak);
    }
}

static void within(const char *what, double got, double want, double tol)
{
    CHECK(fabs(got - want) <= tol * want, "%s: %.0f, want %.0f within %.1f %%", what, got, want,
          tol * 100);
}

static void check(size_t count, const char *dir)
{
    struct report full, sampled, again, reseeded;
    if (read_one(dir, "full", &full) || read_one(dir, "sampled", &sampled) ||
        read_one(dir, "again", &again) || read_one(dir, "reseeded", &reseeded))
        return;
    CHECK(!strcmp(full.mode, "full") && !strcmp(sampled.mode, "sampled"), "modes %s %s",
          full.mode, sampled.mode);
    struct tally t = {.r = (double)sampled.sample_bytes};
    CHECK(t.r > 0, "sample_bytes %lld", sampled.sample_bytes);
    if (!(t.r > 0)) return;
    workload(count, &t);

    exact_totals("full", &full, &t);
    exact_totals("sampled", &sampled, &t);
    same_totals(&full, &sampled);
    for (int i = 0; i < NTEST; i++)
        CHECK(full.site_allocs[i] == (double)t.allocs[i] && full.site_bytes[i] == (double)t.bytes[i],
              "full mode's %s sites: %.0f allocs %.0f bytes, want %lld %lld",
              mt_mem_cat_names[test_cat[i]], full.site_allocs[i], full.site_bytes[i], t.allocs[i],
              t.bytes[i]);
    CHECK(!full.estimated && sampled.estimated, "estimated flags: full %d, sampled %d",
          full.estimated, sampled.estimated);

    /* The sampler: how many, and what they estimate. A few allocations outside the test
     * categories (the runtime's) may be sampled too: at most a handful against thousands. */
    double sd = sqrt(t.var_samples);
    CHECK(fabs((double)sampled.samples - t.expect_samples) <= 5 * sd + 5,
          "%lld sampled allocations, expected %.0f +- %.0f (5 sd)", sampled.samples,
          t.expect_samples, 5 * sd);
    double est_bytes = 0, est_allocs = 0, bytes = 0, allocs = 0;
    for (int i = 0; i < NTEST; i++) {
        char what[64];
        snprintf(what, sizeof what, "estimated %s bytes", mt_mem_cat_names[test_cat[i]]);
        within(what, sampled.site_bytes[i], (double)t.bytes[i], 0.05);
        est_bytes += sampled.site_bytes[i];
        est_allocs += sampled.site_allocs[i];
        bytes += (double)t.bytes[i];
        allocs += (double)t.allocs[i];
    }
    within("estimated bytes, all test categories", est_bytes, bytes, 0.03);
    within("estimated allocations, all test categories", est_allocs, allocs, 0.05);

    /* A fixed seed: the same samples; another seed: other ones. */
    exact_totals("sampled again", &again, &t);
    CHECK(again.samples == sampled.samples, "same seed: %lld vs %lld samples", again.samples,
          sampled.samples);
    for (int i = 0; i < NTEST; i++)
        CHECK(again.site_bytes[i] == sampled.site_bytes[i],
              "same seed, %s: estimated bytes %.0f vs %.0f", mt_mem_cat_names[test_cat[i]],
              again.site_bytes[i], sampled.site_bytes[i]);
    exact_totals("reseeded", &reseeded, &t);
    int differs = reseeded.samples != sampled.samples;
    for (int i = 0; i < NTEST; i++)
        differs |= reseeded.site_bytes[i] != sampled.site_bytes[i];
    CHECK(differs, "another seed gave the very same samples");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "run")) {
        workload(strtoul(argv[2], NULL, 10), NULL);
        return 0;
    }
    if (argc != 4 || strcmp(argv[1], "check")) {
        fprintf(stderr, "usage: %s run N | check N DIR\n", argv[0]);
        return 2;
    }
    check(strtoul(argv[2], NULL, 10), argv[3]);
    if (failures) return 1;
    printf("ok: sampling\n");
    return 0;
}
