/* tests/results/test_reader.c — the read API (results/reader.h) and the Pareto definition
 * (results/pareto.h), subcommands of test_store (ctest store.reader, store.pareto_mark).
 *
 * What it is for: a small database written through the store's writers, read back row by
 * row: the selection of a sweep with its resumed attempt, parameters in key order,
 * run-level metrics with the memory category as a field, per-rank maxima, comparability
 * keys, samples at the lowest rank in x order, regions and counters, the top sites and a
 * stack, facts from JSON; and hand-computed fronts with groups, ties, NaN and
 * higher-is-better axes. What it is not for: the canned query tables (test_store.c).
 */
#include <math.h>

#include "pareto.h"
#include "reader.h"
#include "test_util.h"

static const struct mt_read_metric *find_metric(const struct mt_read_metric *v, size_t n,
                                                const char *name, const char *cat)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, name) &&
            (cat ? v[i].category && !strcmp(v[i].category, cat) : !v[i].category))
            return &v[i];
    return NULL;
}

static int64_t run(struct mt_store *st, int64_t sweep, const char *key, int repeat,
                   const struct mt_store_kv *params, size_t n, enum mt_run_status status)
{
    int64_t id = 0;
    struct mt_store_run_info ri = {.sweep_id = sweep,
                                   .workload = "w",
                                   .config_key = key,
                                   .repeat = repeat,
                                   .facts_json = sweep ? NULL : "{\"cpu_model\":\"X\",\"cores\":4}",
                                   .params = params,
                                   .n_params = n};
    if (mt_store_run_begin(st, &ri, &id) != 0) return 0;
    struct mt_store_run_end end = {.status = status, .exit_code = 0, .wall_s = 1.5};
    return mt_store_run_finish(st, id, &end) == 0 ? id : 0;
}

int test_reader(void)
{
    struct mt_store *st;
    char err[512];
    CHECK(mt_store_open(tu_path("reader.db"), MT_STORE_READWRITE_CREATE, &st, err, sizeof err) == 0,
          "%s", err);
    int64_t s1, s2, s3;
    struct mt_store_sweep_info a = {.name = "a", .spec_path = "a.ini", .facts_json = "{\"cpu\":1}"};
    struct mt_store_sweep_info b = {.name = "b", .spec_path = "b.ini"};
    OK(st, mt_store_sweep_begin(st, &a, &s1));
    OK(st, mt_store_sweep_begin(st, &b, &s2));
    OK(st, mt_store_sweep_begin(st, &a, &s3)); /* a resumed attempt of sweep a */
    struct mt_store_kv p1[] = {{"steps", "10"}, {"batch", "4"}, {"a", "x"}};
    int64_t r1 = run(st, s1, "w?a=x", 0, p1, 3, MT_RUN_OK);
    int64_t r2 = run(st, s2, "w?b", 0, NULL, 0, MT_RUN_OK);
    int64_t r3 = run(st, s3, "w?c", 0, NULL, 0, MT_RUN_FAILED);
    int64_t r4 = run(st, 0, "w?d", 0, NULL, 0, MT_RUN_OK);
    CHECK(r1 && r2 && r3 && r4, "runs: %s", mt_store_error(st));
    OK(st, mt_store_metric(st, r1, -1, "val_bpb", 2.5, "bits/byte"));
    OK(st, mt_store_metric(st, r1, -1, "eval_bytes", 4096, "bytes"));
    OK(st, mt_store_metric(st, r1, -1, "train_peak_bytes", 1000, "bytes"));
    OK(st, mt_store_metric(st, r1, -1, "train_peak_weights_bytes", 600, "bytes"));
    OK(st, mt_store_metric_unavailable(st, r1, -1, "peak_rss_bytes", "bytes", "no /proc"));
    OK(st, mt_store_metric(st, r1, 0, "train_peak_bytes", 700, "bytes"));
    OK(st, mt_store_metric(st, r1, 1, "train_peak_bytes", 900, "bytes"));
    OK(st, mt_store_metric(st, r1, 1, "train_peak_weights_bytes", 400, "bytes"));
    /* samples: rank 1 only for rss; heap at ranks 0 and 1; out of x order on purpose */
    OK(st, mt_store_sample(st, r1, 1, "rss", 0.5, 10, NULL));
    OK(st, mt_store_sample(st, r1, 0, "heap.live.weights", 2, 64, "train"));
    OK(st, mt_store_sample(st, r1, 0, "heap.live", 1, 32, ""));
    OK(st, mt_store_sample(st, r1, 0, "heap.live.weights", 1, 32, "train"));
    OK(st, mt_store_sample(st, r1, 1, "heap.live", 0.1, 8, NULL));
    OK(st, mt_store_sample(st, r1, 0, "train_loss", 0, 5.5, NULL));
    int64_t g1, g2, g3;
    OK(st, mt_store_region(st, r1, 0, "train", 1, 3.0, NAN, &g1));
    OK(st, mt_store_region(st, r1, 0, "train/step", 4, 2.0, 1.0, &g2));
    OK(st, mt_store_region(st, r1, 1, "train", 1, 3.5, NAN, &g3));
    OK(st, mt_store_region_counter(st, g1, "heap_peak_bytes", 800));
    OK(st, mt_store_region_counter(st, g1, "heap_peak_bytes.weights", 500));
    OK(st, mt_store_region_counter_unavailable(st, g1, "PAPI_TOT_INS", "no PAPI"));
    struct mt_store_frame fr[] = {{"malloc", "libc.so", NULL, -1, NULL},
                                  {"f", "p", "/src/f.c", 12, NULL}};
    int64_t k1, k2;
    OK(st, mt_store_stack_from_frames(st, fr, 2, &k1));
    OK(st, mt_store_stack_from_frames(st, fr + 1, 1, &k2));
    /* rank, stack, category, allocs, bytes, peak_bytes, temporary, leaked, leaked allocs,
     * estimated, space (host) */
    const struct mt_store_alloc_site rows[] = {{0, k1, "weights", 2, 300, 200, 0, 0, 0, 0, NULL},
                                               {0, k2, "data", 1, 900, 250, 0, 0, 0, 1, NULL},
                                               {0, k2, "other", 1, 5, 0, 0, 0, 0, 0, NULL},
                                               {1, k1, "weights", 9, 9999, 9999, 0, 0, 0, 0, NULL}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        OK(st, mt_store_alloc_site(st, r1, &rows[i]));

    struct mt_read *rd;
    OK(st, mt_read_open(st, &rd));
    int64_t latest = 0;
    CHECK(mt_read_latest_sweep(rd, &latest) == 1 && latest == s3, "latest %lld", (long long)latest);
    struct mt_read_sweep sw;
    CHECK(mt_read_sweep(rd, s1, &sw) == 1 && !strcmp(sw.name, "a") &&
              !strcmp(sw.spec_path, "a.ini") && !strcmp(sw.facts_json, "{\"cpu\":1}") && sw.host,
          "sweep row");
    CHECK(mt_read_sweep(rd, 99, &sw) == 0, "sweep 99 found");

    /* Sweep s3 selects its earlier attempt s1 too, not s2 or the run outside sweeps. */
    struct mt_read_run *runs;
    size_t n;
    OK(st, mt_read_runs(rd, s3, &runs, &n));
    CHECK(n == 2 && runs[0].id == r1 && runs[1].id == r3, "selection of s3: %zu runs", n);
    const struct mt_read_run *x = &runs[0];
    CHECK(!strcmp(x->status, "ok") && !strcmp(runs[1].status, "failed") && x->has_wall &&
              x->wall_s == 1.5 && x->sweep_id == s1,
          "run row");
    CHECK(x->n_params == 3 && !strcmp(x->params[0].key, "a") &&
              !strcmp(x->params[1].key, "batch") && !strcmp(x->params[2].key, "steps") &&
              !strcmp(x->params[2].value, "10"),
          "params in key order");
    CHECK(x->eval_bytes == 4096 && x->train_budget == 40, "keys %g %g", x->eval_bytes,
          x->train_budget);
    CHECK(isnan(runs[1].eval_bytes) && isnan(runs[1].train_budget), "no keys for run 3");
    /* run level: 5 rows, the category as a field, the unavailable one with its reason */
    CHECK(x->n_metrics == 5, "%zu run-level metrics", x->n_metrics);
    const struct mt_read_metric *m =
        find_metric(x->metrics, x->n_metrics, "train_peak_bytes", "weights");
    CHECK(m && m->has && m->value == 600 && m->rank == -1 && !strcmp(m->unit, "bytes"),
          "train_peak_bytes[weights]");
    m = find_metric(x->metrics, x->n_metrics, "train_peak_bytes", NULL);
    CHECK(m && m->value == 1000, "train_peak_bytes");
    m = find_metric(x->metrics, x->n_metrics, "peak_rss_bytes", NULL);
    CHECK(m && !m->has && !strcmp(m->unavailable, "no /proc"), "unavailable");
    CHECK(!strcmp(x->metrics[0].name, "eval_bytes") && !x->metrics[2].category &&
              !strcmp(x->metrics[3].category, "weights"),
          "metric order (name, then whole before categories)");
    m = find_metric(x->rank_max, x->n_rank_max, "train_peak_bytes", NULL);
    CHECK(x->n_rank_max == 2 && m && m->value == 900, "per-rank maximum");
    m = find_metric(x->rank_max, x->n_rank_max, "train_peak_bytes", "weights");
    CHECK(m && m->value == 400, "per-rank maximum of a category");
    OK(st, mt_read_runs(rd, MT_READ_ALL_SWEEPS, &runs, &n));
    CHECK(n == 4 && runs[3].id == r4 && runs[3].sweep_id == 0, "all runs: %zu", n);
    struct mt_read_run *one, *none;
    CHECK(mt_read_run(rd, r4, &one) == 1 && one->id == r4 && one->facts_json, "one run");
    CHECK(mt_read_run(rd, 999, &none) == 0 && !none, "run 999 found");
    const char *fact = NULL;
    static const char *const cpu[] = {"$.cpu_model", NULL}, *const cores[] = {"$.nproc", "$.cores",
                                                                              NULL};
    OK(st, mt_read_json_fact(rd, one->facts_json, cpu, &fact));
    CHECK(fact && !strcmp(fact, "X"), "cpu fact");
    OK(st, mt_read_json_fact(rd, one->facts_json, cores, &fact));
    CHECK(fact && !strcmp(fact, "4"), "cores fact (second path)");
    OK(st, mt_read_json_fact(rd, "not json", cpu, &fact));
    CHECK(!fact, "fact from junk");

    struct mt_read_metric *ms;
    OK(st, mt_read_metrics(rd, r1, 1, &ms, &n));
    CHECK(n == 2 && !strcmp(ms[0].name, "train_peak_bytes") && !ms[0].category &&
              ms[0].value == 900 && !strcmp(ms[1].category, "weights") && ms[1].rank == 1,
          "rank 1 metrics");

    /* Samples: the heap at its lowest rank (0), x order, then as recorded; the category as
     * a field; '' region read as none. rss alone lives at rank 1. */
    static const char *const heap[] = {"heap.live"}, *const rss[] = {"rss"};
    struct mt_read_sample *smp;
    OK(st, mt_read_samples(rd, r1, heap, 1, &smp, &n));
    CHECK(n == 3, "%zu heap samples", n);
    CHECK(smp[0].x == 1 && !smp[0].category && !smp[0].region && smp[0].y == 32 &&
              !strcmp(smp[0].series, "heap.live"),
          "sample 0");
    CHECK(smp[1].x == 1 && !strcmp(smp[1].category, "weights") && !strcmp(smp[1].region, "train"),
          "sample 1");
    CHECK(smp[2].x == 2 && smp[2].y == 64, "sample 2");
    OK(st, mt_read_samples(rd, r1, rss, 1, &smp, &n));
    CHECK(n == 1 && smp[0].y == 10, "rss at rank 1");
    CHECK(mt_read_has_samples(rd, r1, rss, 1) == 1 && mt_read_has_samples(rd, r2, heap, 1) == 0,
          "has samples");

    struct mt_read_region *regs;
    OK(st, mt_read_regions(rd, r1, &regs, &n));
    CHECK(n == 3 && regs[0].id == g1 && regs[1].id == g2 && regs[2].id == g3 && regs[2].rank == 1,
          "regions by rank, path");
    CHECK(!strcmp(regs[1].name, "step") && regs[1].depth == 1 && regs[1].calls == 4 &&
              regs[1].has_cpu && !regs[0].has_cpu,
          "region row");
    CHECK(regs[0].n_counters == 3 && !strcmp(regs[0].counters[0].name, "PAPI_TOT_INS") &&
              !regs[0].counters[0].has && !strcmp(regs[0].counters[0].unavailable, "no PAPI") &&
              !regs[0].counters[1].category && regs[0].counters[1].value == 800 &&
              !strcmp(regs[0].counters[2].name, "heap_peak_bytes") &&
              !strcmp(regs[0].counters[2].category, "weights") && regs[0].counters[2].value == 500,
          "counters");
    CHECK(mt_read_has(rd, r1, MT_READ_SITES) == 1 && mt_read_has(rd, r2, MT_READ_SITES) == 0 &&
              mt_read_has(rd, r1, MT_READ_REGIONS) == 1,
          "probes");
    struct mt_read_site *sites;
    OK(st, mt_read_top_sites(rd, r1, 0, &sites, &n));
    CHECK(n == 2 && sites[0].stack_id == k2 && sites[0].peak_bytes == 250 && sites[0].estimated &&
              !strcmp(sites[0].category, "data") && sites[1].stack_id == k1 && sites[1].allocs == 2,
          "top sites of rank 0 (the peak-less one left out)");
    OK(st, mt_read_top_sites(rd, r1, 1, &sites, &n));
    CHECK(n == 1, "limit");
    struct mt_read_frame *frames;
    OK(st, mt_read_stack(rd, k1, &frames, &n));
    CHECK(n == 2 && !strcmp(frames[0].function, "malloc") && frames[0].line == -1 &&
              !frames[0].file && frames[1].line == 12 && !strcmp(frames[1].file, "/src/f.c"),
          "stack frames innermost first");
    mt_read_close(rd);
    mt_store_close(st);
    return 0;
}

int test_pareto_mark(void)
{
    /* lower x, lower y: (1,3) (2,2) (3,1) on the front; (2,3) dominated; (3,1) twice:
     * equal points do not dominate each other; NaN never on it. */
    double x[] = {1, 2, 3, 2, 3, NAN, 0.5};
    double y[] = {3, 2, 1, 3, 1, 0, NAN};
    int f[7];
    mt_pareto_mark(x, y, NULL, 7, 0, 0, f);
    CHECK(f[0] && f[1] && f[2] && !f[3] && f[4] && !f[5] && !f[6], "lower/lower %d%d%d%d%d%d%d",
          f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
    /* higher y is better: (1,3) dominates (2,2), (2,3) and (3,1)s */
    mt_pareto_mark(x, y, NULL, 5, 0, 1, f);
    CHECK(f[0] && !f[1] && !f[2] && !f[3] && !f[4], "lower x, higher y");
    /* groups: (2,3) alone in its group is on its front */
    size_t group[] = {0, 0, 0, 1, 0};
    mt_pareto_mark(x, y, group, 5, 0, 0, f);
    CHECK(f[0] && f[1] && f[2] && f[3] && f[4], "groups");
    mt_pareto_mark(x, y, NULL, 5, 1, 1, f); /* both higher: (3,1) and (2,3) */
    CHECK(!f[0] && !f[1] && f[2] && f[3] && f[4], "higher/higher");
    return 0;
}
