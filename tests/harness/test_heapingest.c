/* test_heapingest.c — region peaks from a heap report into region counters (heapingest.c).
 *
 * What it is for: hand-written reports against region rows a, a/b, c of a fresh database:
 * the stored heap_peak_bytes are the exact maxima over each path and its nested paths
 * (a = max(a, a/b)); per category only for categories the run allocated; and a region
 * without a figure (the profiler's table was full, the report is incomplete, predates
 * region peaks or cannot be read; or the rank has no report: mt_heapingest_no_report) is
 * unavailable with the reason, never 0. Raw stacks resolving to the same frames are one
 * site whose figures add up.
 * What it is not for: the profiler (tests/heap) or a whole run (regions.sh).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "heapingest.h"
#include "reader.h"
#include "store_internal.h" /* mt_store_db: the sites check reads the table itself */

#define HEADER                                                                                     \
    "memtrade-heap\t1\nM\tmode\tfull\nM\tcategories\tother,weights\n"                              \
    "C\tother\t3\t3\t900\t0\t900\nC\tweights\t0\t0\t0\t0\t0\n"

static void no_metric(void *arg, const char *name, double value, const char *unit,
                      const char *reason)
{
    (void)arg, (void)name, (void)value, (void)unit, (void)reason;
}

/* Stores a run with regions a, a/b, c, ingests `text` as its report; returns the run id. */
static int64_t ingest(struct mt_store *st, const char *dir, const char *text)
{
    struct mt_store_run_info info = {.workload = "t", .config_key = "k"};
    int64_t run = 0;
    CHECK(mt_store_run_begin(st, &info, &run) == 0);
    const char *paths[] = {"a", "a/b", "c"};
    for (size_t i = 0; i < 3; i++)
        CHECK(mt_store_region(st, run, 0, paths[i], 1, 0.1, 0.1, NULL) == 0);
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/heap.%lld", dir, (long long)run);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return run;
    fputs(text, f);
    fclose(f);
    mt_heapingest_file(st, run, 0, path, no_metric, NULL, err, sizeof err);
    return run;
}

/* The counter's value (category NULL: the whole) as an integer, or -1 with its reason in
 * why; -2 when the region has no such counter. Read through the read API, which gives
 * the category as a field. */
static long long counter(struct mt_store *st, int64_t run, const char *path, const char *name,
                         const char *category, char *why, size_t whylen)
{
    struct mt_read *rd;
    struct mt_read_region *regs;
    size_t n = 0;
    long long v = -2;
    why[0] = '\0';
    if (mt_read_open(st, &rd) != 0 || mt_read_regions(rd, run, &regs, &n) != 0) n = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(regs[i].path, path) != 0) continue;
        for (size_t k = 0; k < regs[i].n_counters; k++) {
            const struct mt_read_counter *c = &regs[i].counters[k];
            if (strcmp(c->name, name) != 0 ||
                (category ? !c->category || strcmp(c->category, category) : c->category != NULL))
                continue;
            v = c->has ? (long long)c->value : -1;
            snprintf(why, whylen, "%s", c->unavailable ? c->unavailable : "");
        }
    }
    mt_read_close(rd);
    return v;
}

static int unavailable_for(struct mt_store *st, int64_t run, const char *path, const char *reason)
{
    char why[512];
    long long v = counter(st, run, path, "heap_peak_bytes", NULL, why, sizeof why);
    if (v != -1 || !strstr(why, reason)) {
        fprintf(stderr, "run %lld %s: value %lld reason '%s', want unavailable '%s'\n",
                (long long)run, path, v, why, reason);
        return 0;
    }
    return 1;
}

int main(void)
{
#ifndef MT_HAVE_HEAPREPORT
    printf("skipped: this build has no heap report reader\n");
    return 77;
#endif
    char dir[] = "/tmp/mt_heapingest.XXXXXX", db[64], err[512], why[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(db, sizeof db, "%s/t.db", dir);
    struct mt_store *st = NULL;
    CHECK(mt_store_open(db, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) == 0);
    if (!st) return 1;

    /* c is missing: the profiler's table was full. */
    int64_t r1 = ingest(
        st, dir, HEADER "R\ta\t500\t500\t0\nR\ta/b\t900\t700\t0\nS\tregions_dropped\t1\nE\n");
    CHECK(counter(st, r1, "a", "heap_peak_bytes", NULL, why, sizeof why) == 900);
    CHECK(counter(st, r1, "a/b", "heap_peak_bytes", NULL, why, sizeof why) == 900);
    CHECK(counter(st, r1, "a", "heap_peak_bytes", "other", why, sizeof why) == 700);
    CHECK(counter(st, r1, "a", "heap_peak_bytes", "weights", why, sizeof why) == -2);
    CHECK(unavailable_for(st, r1, "c", "table of 64 region paths was full"));

    /* Own peak above the nested one; a nested region without a figure spoils its outer. */
    int64_t r2 = ingest(st, dir,
                        HEADER "R\ta\t800\t800\t0\nR\ta/b\t600\t600\t0\nR\tc\t40\t40\t0\n"
                               "S\tregions_dropped\t0\nE\n");
    CHECK(counter(st, r2, "a", "heap_peak_bytes", NULL, why, sizeof why) == 800);
    CHECK(counter(st, r2, "a/b", "heap_peak_bytes", NULL, why, sizeof why) == 600);
    CHECK(counter(st, r2, "c", "heap_peak_bytes", "other", why, sizeof why) == 40);
    int64_t r3 =
        ingest(st, dir, HEADER "R\ta\t800\t800\t0\nR\tc\t40\t40\t0\nS\tregions_dropped\t0\nE\n");
    CHECK(unavailable_for(st, r3, "a", "nested in it"));
    CHECK(unavailable_for(st, r3, "a/b", "no figure"));
    CHECK(counter(st, r3, "c", "heap_peak_bytes", NULL, why, sizeof why) == 40);

    int64_t r4 = ingest(st, dir, HEADER "R\ta\t800\t800\t0\n"); /* died: no end marker */
    CHECK(unavailable_for(st, r4, "a", "heap report incomplete"));
    CHECK(unavailable_for(st, r4, "c", "heap report incomplete"));
    int64_t r5 = ingest(st, dir, HEADER "E\n"); /* a profiler without region peaks */
    CHECK(unavailable_for(st, r5, "a/b", "older profiler"));
    int64_t r6 = ingest(st, dir, "not a heap report\n");
    CHECK(unavailable_for(st, r6, "a", "heap report unreadable"));
    /* No report at all (the runner's call when the profiler was off). */
    int64_t r7 = ingest(st, dir, HEADER "R\ta\t800\t800\t0\nE\n");
    CHECK(mt_heapingest_no_report(st, r7, 0, "heap profiler off (--heap off)", err, sizeof err) ==
          0);
    CHECK(unavailable_for(st, r7, "a", "heap profiler off (--heap off)"));
    CHECK(unavailable_for(st, r7, "c", "heap profiler off (--heap off)"));

    /* Two raw stacks that resolve to the same frames (two call sites in one function
     * without line information) are one stored site: their figures add up (issue 14). */
    int64_t r8 = ingest(st, dir,
                        HEADER "F\t1\t0x10\tmain\t/bin/p\t\t0\t\nF\t2\t0x20\tmain\t/bin/p\t\t0\t\n"
                               "K\t1\t1\nK\t2\t2\n"
                               "A\t1\tother\t1\t100\t100\t0\t100\t1\t0\n"
                               "A\t2\tother\t2\t800\t500\t1\t300\t1\t0\nE\n");
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(mt_store_db(st),
                       "SELECT count(*) || ' ' || sum(allocs) || ' ' || sum(bytes) || ' ' ||"
                       " sum(peak_bytes) || ' ' || sum(temporary) || ' ' || sum(leaked_bytes) ||"
                       " ' ' || sum(leaked_allocs) FROM alloc_sites WHERE run_id = ?1",
                       -1, &q, NULL);
    sqlite3_bind_int64(q, 1, r8);
    const char *want = "1 3 900 600 1 400 2";
    CHECK(q && sqlite3_step(q) == SQLITE_ROW &&
          !strcmp((const char *)sqlite3_column_text(q, 0), want));
    if (q && sqlite3_column_text(q, 0) && strcmp((const char *)sqlite3_column_text(q, 0), want))
        fprintf(stderr, "sites: got '%s', want '%s'\n", sqlite3_column_text(q, 0), want);
    sqlite3_finalize(q);

    mt_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    if (failures) return 1;
    printf("ok\n");
    return 0;
}
