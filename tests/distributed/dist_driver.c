/* dist_driver.c — runs one distributed plugin under mpirun the way the harness child
 * does (dlopen RTLD_LOCAL, a ctx, run()), without the harness.
 *
 * What it is for: the plugin smoke and crash tests, and trying a plugin by hand:
 *   mpirun -np 2 dist_driver plugins/zero.so model=tiny steps=5 batch=4 stage=2
 * The ctx is tests/support's fake ctx: parameters not given take the table's default;
 * rank and size come from Open MPI's environment, as in harness/child.c. Every metric is
 * printed as "rank R metric NAME VALUE UNIT". With --check the driver also fails unless
 * every rank reported the per-rank metrics of plugin.h and rank 0 the run-level ones.
 * What it is not for: anything the harness records (events, database, heap profiles).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#include "fake_ctx.h"

/* Reported and available. */
static int seen(const struct fake_ctx *f, const char *name)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    return m && !m->na;
}

int main(int argc, char **argv)
{
    int check = argc > 1 && !strcmp(argv[1], "--check");
    if (argc < 2 + check) {
        fprintf(stderr, "usage: dist_driver [--check] PLUGIN.so [key=value...]\n");
        return 2;
    }
    void *h = dlopen(argv[1 + check], RTLD_NOW | RTLD_LOCAL);
    const struct mt_workload *wl = h ? dlsym(h, MEMTRADE_WORKLOAD_SYMBOL) : NULL;
    if (!wl) {
        fprintf(stderr, "driver: %s\n", dlerror());
        return 2;
    }
    static struct fake_ctx d;
    fake_ctx_init(&d, wl, (const char **)argv + 2 + check, (size_t)(argc - 2 - check));
    const char *r = getenv("OMPI_COMM_WORLD_RANK"), *n = getenv("OMPI_COMM_WORLD_SIZE");
    d.rank = r ? atoi(r) : 0;
    d.nranks = n ? atoi(n) : 1;
    d.threads = 1;
    snprintf(d.cache_dir, sizeof d.cache_dir, "/tmp");
    snprintf(d.scratch_dir, sizeof d.scratch_dir, "/tmp");
    d.corpus = "";
    int rc = wl->run(&d.base);
    if (rc) fprintf(stderr, "rank %d: run failed: %s\n", d.rank, d.error);
    if (check && rc == 0) {
        static const char *const per_rank[] = {"train_peak_bytes",
                                               "train_peak_weights_bytes",
                                               "train_peak_gradients_bytes",
                                               "train_peak_optimizer_bytes",
                                               "train_peak_activations_bytes",
                                               "comm_bytes_sent",
                                               "comm_bytes_recv",
                                               "comm_s",
                                               "compute_s"};
        static const char *const rank0[] = {"train_tokens_per_s", "val_loss", "val_bpb", "val_top1",
                                            "run_sum_train_peak_bytes"};
        for (size_t i = 0; i < sizeof per_rank / sizeof per_rank[0]; i++)
            if (!seen(&d, per_rank[i]))
                fprintf(stderr, "rank %d: missing metric %s\n", d.rank, per_rank[i]), rc = 1;
        for (size_t i = 0; d.rank == 0 && i < sizeof rank0 / sizeof rank0[0]; i++)
            if (!seen(&d, rank0[i]))
                fprintf(stderr, "rank 0: missing metric %s\n", rank0[i]), rc = 1;
        if (d.n_nonfinite || d.n_undeclared || d.region_errors || d.open_regions)
            fprintf(stderr, "rank %d: non-finite metric, bad parameter or unbalanced region\n",
                    d.rank),
                rc = 1;
    }
    return rc ? 1 : 0;
}
