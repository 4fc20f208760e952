/* regions.c — exact per-region heap peaks (R lines), both sides of the test in one program.
 *
 * What it is for: `heap_regions run` (under LD_PRELOAD=libmt_heap.so) allocates known
 * sizes in category kv_cache, which nothing else in the process uses, while regions `a`,
 * `a/b` (nested: the harness passes paths) and `c` are innermost; `heap_regions check DIR`
 * then reads the report and demands the exact peaks:
 *   a    4000   (1000, then 3000 more after `a/b` ended; a/b's 6000 is a/b's own)
 *   a/b  6000   (1000 live when it became innermost, plus 5000)
 *   c    1000   (live when it became innermost; freed, then only 700)
 * Totals hold the same baseline (what else was live) in every region, so total - kv_cache
 * must be equal across them. Exact in full and sampled mode alike.
 * What it is not for: the harness side (tests/harness/regions.sh).
 */
#include <memtrade/memcat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_test.h"
#include "heapreport.h"

static void *volatile keep[4];

static void run(void)
{
    mt_memcat_set(MT_MEM_KV_CACHE);
    mt_memcat_region("a");
    keep[0] = malloc(1000);
    mt_memcat_region("a/b");
    keep[1] = malloc(5000);
    free(keep[1]);
    mt_memcat_region("a");
    keep[2] = malloc(3000);
    free(keep[2]);
    mt_memcat_region("c");
    free(keep[0]);
    keep[3] = malloc(700);
    free(keep[3]);
    mt_memcat_region(NULL);
    mt_memcat_set(MT_MEM_OTHER);
}

struct seen {
    int complete, found[3];
    long long kv[3], other[3], dropped;
};
static const char *const names[3] = {"a", "a/b", "c"};

static int on_region(const struct mt_heapreport_region *r, void *u)
{
    struct seen *v = u;
    for (int i = 0; i < 3; i++) {
        if (strcmp(r->name, names[i])) continue;
        v->found[i]++;
        v->kv[i] = r->peak[MT_MEM_KV_CACHE];
        v->other[i] = r->peak_total - r->peak[MT_MEM_KV_CACHE];
    }
    return 0;
}

static int on_summary(const struct mt_heapreport_summary *s, void *u)
{
    struct seen *v = u;
    v->complete = s->complete;
    v->dropped = s->regions_dropped;
    return 0;
}

static void check(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return;
    int reports = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct seen v = {0};
        struct mt_heapreport_cb cb = {.summary = on_summary, .region = on_region};
        CHECK(mt_heapreport_read(path, &cb, &v, err, sizeof err) == 0, "%s", err);
        reports++;
        CHECK(v.complete && v.dropped == 0, "complete %d dropped %lld", v.complete, v.dropped);
        static const long long want[3] = {4000, 6000, 1000};
        for (int i = 0; i < 3; i++)
            CHECK(v.found[i] == 1 && v.kv[i] == want[i],
                  "region %s: %d lines, kv peak %lld, want %lld", names[i], v.found[i], v.kv[i],
                  want[i]);
        CHECK(v.other[0] == v.other[1] && v.other[1] == v.other[2],
              "baselines differ: %lld %lld %lld", v.other[0], v.other[1], v.other[2]);
    }
    closedir(d);
    CHECK(reports == 1, "%d reports, want 1", reports);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "run")) {
        run();
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check")) {
        fprintf(stderr, "usage: %s run | check DIR\n", argv[0]);
        return 2;
    }
    check(argv[2]);
    if (failures) return 1;
    printf("ok: regions\n");
    return 0;
}
