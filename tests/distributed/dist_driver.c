/* dist_driver.c — runs one distributed plugin under mpirun the way the harness child
 * does (dlopen RTLD_LOCAL, a ctx, run()), without the harness.
 *
 * What it is for: the plugin smoke and crash tests, and trying a plugin by hand:
 *   mpirun -np 2 dist_driver plugins/zero.so model=tiny steps=5 batch=4 stage=2
 * The ctx is tests/support's fake ctx: parameters not given take the table's default;
 * rank and size come from Open MPI's environment, as in harness/child.c. Every metric is
 * printed as "rank R metric NAME VALUE UNIT". With --check the driver also fails unless
 * every rank reported the per-rank metrics of plugin.h and rank 0 the run-level ones, and,
 * for the tests' runs (model=tiny steps=3 batch=4 on 2 ranks), that each rank's parameter
 * count, weight/gradient/optimizer bytes and bytes sent and received equal the values
 * worked out from the shapes (ZeRO's optimizer bytes 1/N of data parallel's; adamw8 and
 * adafactor: their state, ZeRO's range moved onto an 8-bit block / an Adafactor matrix),
 * and that the plugin's plan() hook, given the same parameters, has a phase equal to the
 * rank's train_peak_<category>_bytes in every category (the rank's own where it names it).
 * What it is not for: anything the harness records (events, database, heap profiles).
 */
#include <dlfcn.h>
#include <math.h>
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

/* The value of metric `name` (NaN when missing or unavailable). */
static double val(const struct fake_ctx *f, const char *name)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    return m && !m->na ? m->value : NAN;
}

static int expect(const struct fake_ctx *f, const char *name, double want)
{
    double got = val(f, name);
    if (got == want) return 0;
    fprintf(stderr, "rank %d: %s is %.0f, want %.0f from the shapes\n", f->rank, name, got, want);
    return 1;
}

/* 1 when "key=value" is among the run's arguments. */
static int has_arg(char **args, int n, const char *kv)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(args[i], kv)) return 1;
    return 0;
}

/* The exact per-rank bytes of the tests' runs (tiny: V 256, T 64, C 64, L 2; 3 steps of a
 * global batch of 4 over N ranks), worked out from the shapes, not read from the plugin:
 * the parameters each rank holds, weights/gradients/optimizer by precision, and the bytes
 * the ring algorithms move (README "Byte counts"). zero3: 0, or ZeRO-3's layer windows (2
 * with prefetch, 1 without). optim: adamw, adamw8 or adafactor. Returns the number of
 * mismatches. */
static int check_shapes(const struct fake_ctx *d, const char *plugin, int bf16, int zero3,
                        const char *optim)
{
    const double V = 256, T = 64, C = 64, L = 2, N = d->nranks, steps = 3, B = 4;
    const double layer = 12 * C * C + 13 * C, psi = V * C + T * C + L * layer + 2 * C;
    double held = psi, opt, grads, weights, wire;
    int bad = 0;
    if (!strcmp(plugin, "tensor_parallel")) /* LayerNorms, attproj/fcproj biases replicated */
        held = V * C + T * C + L * (6 * C + (12 * C * C + 7 * C) / N) + 2 * C;
    else if (!strcmp(plugin, "pipeline_parallel")) /* N = L = 2: one layer per stage */
        held = d->rank == 0 ? V * C + T * C + layer : layer + 2 * C + V * C;
    bad += expect(d, "flat_params", held);
    weights = (bf16 ? 2 : 4) * held;
    grads = weights;
    opt = (bf16 ? 12 : 8) * held;  /* AdamW m, v (and the fp32 master weights with bf16) */
    if (!strcmp(plugin, "zero")) { /* stage 1: the optimizer state of this rank's slice */
        double slice = floor(psi / N) + (d->rank < fmod(psi, N) ? 1 : 0);
        opt = (bf16 ? 12 : 8) * slice;
        if (zero3) { /* weights and gradients of the slice, + the (fp32) gather windows */
            weights = (bf16 ? 2 : 4) * slice + 4 * (V * C + T * C + 2 * C + zero3 * layer);
            grads = (bf16 ? 2 : 4) * slice;
        }
    }
    if (!strcmp(plugin, "data_parallel") || !strcmp(plugin, "zero")) /* all-reduce, or
        reduce-scatter + all-gather: 2 (N-1)/N of the flat vector a step */
        wire = steps * 2 * (N - 1) / N * psi * (bf16 ? 2 : 4);
    else if (!strcmp(plugin, "tensor_parallel")) /* 4 all-reduces of B x T x C a layer */
        wire = steps * L * 4 * 2 * (N - 1) / N * B * T * C * 4;
    else /* 4 micro-batches of 1 x T x C activations one way, their gradients back, and the
          * tied embedding's gradient between the two stages, every step */
        wire = steps * (4 * T * C * 4 + V * C * 4);
    if (zero3) /* and every layer but the last one or two (in the windows) again for backward */
        wire += steps * (N - 1) / N * (L - zero3) * layer * (bf16 ? 2 : 4);
    int z = !strcmp(plugin, "zero"), r0 = d->rank == 0;
    if (!strcmp(plugin, "pipeline_parallel") && strcmp(optim, "adamw")) {
        /* a stage's whole units: wte (on both stages), one layer, and wpe (first) or lnf
         * (last); adamw8 blocks 8 + 32 + 2 either way, Adafactor's statistics 1280 + 7424 +
         * 512 */
        opt = !strcmp(optim, "adamw8") ? 2 * held + 8 * (8 + 32 + 2) : 1280 + 7424 + 512;
    } else if (!strcmp(optim, "adamw8")) {
        /* 2 B an element + 8 B a block of 2048 counted from each unit's start: 76 blocks
         * (wte 8, wpe 2, 32 a layer, lnf 2). ZeRO's boundary psi/2 = 60288 moves to the
         * nearest block start, 60160 in layer 0's fcproj_w, with 36 blocks before it. */
        opt = !z ? 2 * psi + 8 * 76 : r0 ? 2 * 60160 + 8 * 36 : 2 * (psi - 60160) + 8 * 40;
    } else if (!strcmp(optim, "adafactor")) {
        /* 4 (rows + cols) a matrix, 4 rows a vector: wte 1280, wpe 512, 7424 a layer, lnf
         * 512 = 17152. ZeRO's boundary moves to the nearer end of the matrix it cuts:
         * 54016, the start of layer 0's fcproj_w (1280 B of its statistics after it). */
        double first = 1280 + 512 + 7424 - 1280 - 256; /* rank 0: up to fc_b of layer 0 */
        opt = !z ? 17152 : r0 ? first : 17152 - first;
    }
    if (bf16 && strcmp(optim, "adamw")) { /* + the fp32 master of the range: ZeRO's moved
                                           * boundary, 60160 (adamw8) or 54016 (adafactor) */
        double cut = !strcmp(optim, "adamw8") ? 60160 : 54016;
        opt += 4 * (!z ? held : r0 ? cut : psi - cut);
    }
    bad += expect(d, "train_peak_weights_bytes", weights);
    bad += expect(d, "train_peak_gradients_bytes", grads);
    bad += expect(d, "train_peak_optimizer_bytes", opt);
    bad += expect(d, "comm_bytes_sent", wire);
    bad += expect(d, "comm_bytes_recv", wire);
    /* orderings that must hold whatever the shapes */
    double total = val(d, "train_peak_bytes"), parts = 0;
    static const char *const cats[] = {"weights",   "gradients", "optimizer", "activations",
                                       "act_grads", "workspace", "data"};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "train_peak_%s_bytes", cats[i]);
        parts += val(d, name);
    }
    if (!(total <= parts && total >= weights + grads + opt)) {
        fprintf(stderr, "rank %d: train_peak_bytes %.0f outside [state %.0f, sum of peaks %.0f]\n",
                d->rank, total, weights + grads + opt, parts);
        bad++;
    }
    if (z && !strcmp(optim, "adamw") && opt * N != (bf16 ? 12 : 8) * psi) {
        fprintf(stderr, "rank %d: ZeRO optimizer %.0f is not 1/%g of data parallel's\n", d->rank,
                opt, N);
        bad++;
    }
    return bad;
}

/* The plugin's plan() hook (ABI 1.4) with the run's parameters against what this rank's
 * ledger held: its train_peak_<category>_bytes equal, category for category, a phase of
 * the plan ("train" for rank 0, "train_r<rank>" where the plan names this rank, else
 * another rank's equal plan). Returns the number of mismatches. */
static int check_plan(struct fake_ctx *d, const struct mt_workload *wl)
{
    struct mt_mem_plan plan = {0};
    if (!wl->plan || wl->plan(&d->base, &plan)) {
        fprintf(stderr, "rank %d: no plan: %s\n", d->rank, wl->plan ? d->error : "no hook");
        return 1;
    }
    char mine[24];
    snprintf(mine, sizeof mine, d->rank ? "train_r%d" : "train", d->rank);
    int named = 0, match = -1;
    for (size_t i = 0; i < plan.n_phases; i++) {
        const struct mt_mem_plan_phase *ph = &plan.phase[i];
        int same = 1;
        for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
            char name[64];
            snprintf(name, sizeof name, "train_peak_%s_bytes", mt_mem_cat_names[c]);
            double got = val(d, name);
            same &= (isnan(got) ? 0.0 : got) == (double)ph->bytes[c];
        }
        if (!strcmp(ph->name, mine)) named = 1;
        if (same && (match < 0 || !strcmp(ph->name, mine))) match = (int)i;
    }
    if (match < 0 || (named && strcmp(plan.phase[match].name, mine))) {
        fprintf(stderr,
                "rank %d: the ledger's per-category peaks match no phase of the plan "
                "(%zu phases%s)\n",
                d->rank, plan.n_phases, named ? ", its own named" : "");
        return 1;
    }
    printf("rank %d: plan phase %s = the ledger's peaks, every category\n", d->rank,
           plan.phase[match].name);
    return 0;
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
        int nargs = argc - 2 - check;
        char **args = argv + 2 + check;
        if (has_arg(args, nargs, "model=tiny") && has_arg(args, nargs, "steps=3") &&
            has_arg(args, nargs, "batch=4") && d.nranks == 2 &&
            check_shapes(&d, wl->name, has_arg(args, nargs, "precision=bf16"),
                         has_arg(args, nargs, "stage=3")
                             ? (has_arg(args, nargs, "prefetch=off") ? 1 : 2)
                             : 0,
                         has_arg(args, nargs, "optimizer=adamw8")      ? "adamw8"
                         : has_arg(args, nargs, "optimizer=adafactor") ? "adafactor"
                                                                       : "adamw"))
            rc = 1;
        rc |= check_plan(&d, wl);
        if (d.n_nonfinite || d.n_undeclared || d.region_errors || d.open_regions)
            fprintf(stderr, "rank %d: non-finite metric, bad parameter or unbalanced region\n",
                    d.rank),
                rc = 1;
    }
    return rc ? 1 : 0;
}
