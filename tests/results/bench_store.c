/* tests/results/bench_store.c — throughput of the store's writers and of merge (a benchmark,
 * not a test: it prints numbers and asserts nothing). Usage: bench_store [SCRATCH_DIR].
 * Not for: correctness (test_store.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct mt_store *open_or_die(const char *path)
{
    struct mt_store *st;
    char err[512];
    if (mt_store_open(path, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return st;
}

#define DIE_IF(st, call)                                                                           \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s\n", mt_store_error(st));                                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* runs x (samples + metrics + 50 stacks of 15 frames over 300 distinct frames). */
static void fill(const char *path, int shard, int runs, int samples, double *t_samples,
                 double *t_stacks)
{
    struct mt_store *st = open_or_die(path);
    *t_samples = *t_stacks = 0;
    for (int r = 0; r < runs; r++) {
        char key[64];
        snprintf(key, sizeof key, "w?i=%d", r * 2 + shard);
        int64_t run;
        struct mt_store_run_info info = {.workload = "w", .config_key = key, .seed = 1};
        DIE_IF(st, mt_store_run_begin(st, &info, &run));
        double t0 = now();
        DIE_IF(st, mt_store_begin(st));
        for (int i = 0; i < samples; i++) {
            DIE_IF(st,
                   mt_store_sample(st, run, 0, "heap.live.weights", i * 0.01, i * 100.0, "train"));
            if (i % 1000 == 999) {
                DIE_IF(st, mt_store_commit(st));
                DIE_IF(st, mt_store_begin(st));
            }
        }
        DIE_IF(st, mt_store_metric(st, run, -1, "val_bpb", 1.0 + r, "bits/byte"));
        DIE_IF(st, mt_store_commit(st));
        double t1 = now();
        DIE_IF(st, mt_store_begin(st));
        for (int k = 0; k < 50; k++) {
            struct mt_store_frame f[15];
            char names[15][32];
            for (int d = 0; d < 15; d++) {
                snprintf(names[d], sizeof names[d], "fn_%d", (k * 7 + d * 13 + r) % 300);
                f[d] = (struct mt_store_frame){names[d], "/bin/mt", "x.c", d, NULL};
            }
            int64_t stack;
            DIE_IF(st, mt_store_stack_from_frames(st, f, 15, &stack));
            struct mt_store_alloc_site a = {0, stack, "weights", 1, 100, 100, 0, 0, 0, 0, NULL};
            DIE_IF(st, mt_store_alloc_site(st, run, &a));
        }
        DIE_IF(st, mt_store_commit(st));
        *t_stacks += now() - t1;
        *t_samples += t1 - t0;
        struct mt_store_run_end end = {MT_RUN_OK, 0, -1, NULL, 1.0};
        DIE_IF(st, mt_store_run_finish(st, run, &end));
    }
    mt_store_close(st);
}

int main(int argc, char **argv)
{
    char dir[512], a[600], b[600], out[600];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp/mt_store_bench.XXXXXX");
    if (argc <= 1 && !mkdtemp(dir)) return 1;
    snprintf(a, sizeof a, "%s/a.db", dir);
    snprintf(b, sizeof b, "%s/b.db", dir);
    snprintf(out, sizeof out, "%s/out.db", dir);
    const int runs = 50, samples = 5000;
    double ts, tk;
    fill(a, 0, runs, samples, &ts, &tk);
    printf("samples: %d in %.3f s = %.0f inserts/s (batches of 1000)\n", runs * samples, ts,
           runs * samples / ts);
    printf("stacks: %d stacks of 15 frames + sites in %.3f s = %.0f stacks/s\n", runs * 50, tk,
           runs * 50 / tk);
    fill(b, 1, runs, samples, &ts, &tk);
    const char *ins[] = {a, b};
    struct mt_store_merge_stats ms;
    char err[512];
    double t0 = now();
    if (mt_store_merge(out, ins, 2, &ms, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double tm = now() - t0;
    printf("merge: 2 shards, %zu runs, %d samples in %.3f s (frames new %zu, stacks new %zu)\n",
           ms.runs, 2 * runs * samples, tm, ms.frames_new, ms.stacks_new);
    unlink(a);
    unlink(b);
    unlink(out);
    return 0;
}
