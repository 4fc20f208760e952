/* tests/harness/plugins/t_regions.c — a test workload of known per-region heap peaks.
 *
 * What it is for: allocates known sizes in category kv_cache (which nothing else in the
 * run uses; the category is set only around its own mallocs, so the harness's own
 * allocations between regions stay out of it) in regions a, a/b, c, c/b. The exact
 * kv_cache peaks, own (while innermost) / stored (with nested regions):
 *   a    9000 / 9000  (1000, then 8000 more after a/b ended)
 *   a/b  6000 / 6000  (1000 live at entry, plus 5000)
 *   c    1000 / 2000  (1000 live at entry, freed, then 700; c/b's 2000 is nested)
 *   c/b  2000 / 2000  (same leaf name as a/b: peaks are per path, not per name)
 * Not for: anything outside tests (tests/harness/regions.sh checks the numbers).
 */
#include <memtrade/memcat.h>
#include <stdlib.h>

#include "../test_plugin.h"

static void *kv_alloc(struct mt_ctx *ctx, size_t n)
{
    int old = mt_mem_category(ctx, MT_MEM_KV_CACHE);
    void *p = malloc(n);
    mt_mem_category(ctx, old);
    return p;
}

/* Allocates n bytes of kv_cache and frees them again. volatile: the pair must stay. */
static void kv_spike(struct mt_ctx *ctx, size_t n)
{
    void *volatile p = kv_alloc(ctx, n);
    free(p);
}

static int run(struct mt_ctx *ctx)
{
    mt_region_begin(ctx, "a");
    void *volatile a = kv_alloc(ctx, 1000);
    mt_region_begin(ctx, "b");
    kv_spike(ctx, 5000);
    mt_region_end(ctx, "b");
    kv_spike(ctx, 8000);
    mt_region_end(ctx, "a");
    mt_region_begin(ctx, "c");
    free(a);
    kv_spike(ctx, 700);
    mt_region_begin(ctx, "b");
    kv_spike(ctx, 2000);
    mt_region_end(ctx, "b");
    mt_region_end(ctx, "c");
    mt_metric(ctx, "kv_bytes_total", 16700.0, "bytes");
    return 0;
}

MT_TEST_PLUGIN(.name = "t_regions", .summary = "test: known heap peaks per region");
