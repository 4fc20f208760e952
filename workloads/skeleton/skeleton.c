/* workloads/skeleton/skeleton.c — a commented example plugin: copy this file to start a
 * new workload. It says, field by field and hook by hook, when each one is used and
 * whether it is required.
 *
 * What it does: fills a buffer with the run's seeded random numbers, `steps` times, and
 * reports their mean (which must approach 0.5) and the buffer's size. It touches no model;
 * real workloads use the reference transformer (workloads/transformer) the same way.
 * What it is not: a benchmark. It exists to be read and copied, and the harness tests
 * build it out of tree to prove the installed headers and package files work.
 *
 * Build: in the tree, workloads/<name>/CMakeLists.txt says `mt_add_plugin(<name> <name>.c)`
 * and the plugin lands in <build>/plugins/, where `memtrade` finds it. Out of tree, see
 * this folder's CMakeLists.txt (find_package(memtrade) + memtrade_add_plugin), or:
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags memtrade-workload) \
 *        skeleton.c -o skeleton.so
 *     memtrade run skeleton --plugin ./skeleton.so -p steps=10
 *
 * Rules every plugin follows (DESIGN.md): it never prints, never exits, never writes the
 * database; everything goes through `ctx`. Everything is `static` except the descriptor.
 */
#include <stdlib.h>

#include <memtrade/workload.h>

/* The parameter table. One row per parameter; the harness derives `memtrade describe`,
 * the defaults, the type and range checks and "did you mean" from it, before any child
 * starts, so run() can trust every value it reads.
 *   name     [a-z0-9_]+, unique in this table.
 *   type     MT_PARAM_INT / FLOAT (use min/max), CHOICE (use choices "a|b|c"),
 *            STRING, BOOL (on/off, true/false, 1/0, yes/no). An INT may also list its
 *            allowed values in choices ("16|8|4", ABI 1.3): a number is never a CHOICE,
 *            so run() reads it with mt_param_int instead of parsing text.
 *   def      the default, as text; it must pass its own checks or the plugin is refused.
 *   help     one line.
 * A parameter named `seed` (INT) is special: the harness uses it as the run's seed (the
 * RNG's and the one recorded in the database); [sweep] seed = N sets its default. */
static const struct mt_param_spec params[] = {
    {"steps", MT_PARAM_INT, "4", 1, 1000000, NULL, "how many times to fill the buffer"},
    {"size_kib", MT_PARAM_INT, "64", 1, 1 << 20, NULL, "buffer size, KiB"},
    {"seed", MT_PARAM_INT, "1", 0, 4294967295.0, NULL, "RNG seed"},
};

/* Optional hook: peak memory (bytes, per rank) one run with these parameters needs, so
 * `memtrade sweep --jobs N` can pack runs under --mem-budget. Runs in the PARENT with a
 * context whose only working hooks are the param_* getters. Leave it NULL when unknown
 * (the scheduler then counts 1 GiB). Keep it cheap and side-effect free. */
static size_t mem_estimate(struct mt_ctx *ctx)
{
    return (size_t)mt_param_int(ctx, "size_kib") * 1024 + (8u << 20); /* buffer + process */
}

/* Required hook: the work. Runs in a CHILD process, once per run (per rank for multi-rank
 * workloads). Returns 0 on success; on failure, `return mt_error(ctx, "...")`: the run is
 * recorded `failed` with that text. A crash, a timeout or running out of memory is
 * recorded by the harness as crashed/timeout/oom; whatever was reported before stays. */
static int run(struct mt_ctx *ctx)
{
    size_t n = (size_t)mt_param_int(ctx, "size_kib") * 1024 / sizeof(double);
    int64_t steps = mt_param_int(ctx, "steps");

    /* Tag allocations so the heap profiler attributes them (weights, activations, ...). */
    int previous = mt_mem_category(ctx, MT_MEM_WORKSPACE);
    double *buf = malloc(n * sizeof *buf);
    mt_mem_category(ctx, previous);
    if (!buf) return mt_error(ctx, "cannot allocate %zu doubles", n);

    double sum = 0;
    for (int64_t s = 0; s < steps; s++) {
        /* Regions name phases: wall time, CPU time and counters are recorded per region
         * path ("fill", or "train/step/forward" when nested). Pair begin/end on the
         * thread that entered run(). */
        mt_region_begin(ctx, "fill");
        for (size_t i = 0; i < n; i++) {
            /* The RNG is seeded from the run's seed: the same seed gives the same run. */
            buf[i] = (double)(mt_rng_u64(ctx) >> 11) * 0x1.0p-53;
            sum += buf[i];
        }
        mt_region_end(ctx, "fill");
        /* A timeline point of a named series (x = step here). */
        mt_sample(ctx, "running_mean", (double)s, sum / ((double)(s + 1) * (double)n));
        /* Drives the progress line and the ETA; any unit. */
        mt_progress(ctx, (double)(s + 1), (double)steps);
    }
    free(buf);

    /* Results: standard names from DESIGN.md where one fits, always with a unit. */
    mt_metric(ctx, "skeleton_mean", sum / ((double)steps * (double)n), "1");
    mt_metric(ctx, "workspace_bytes", (double)(n * sizeof *buf), "bytes");
    /* Something this workload cannot measure is unavailable with a reason, never 0. */
    mt_metric_na(ctx, "val_bpb", "bits/byte", "the skeleton has no model to evaluate");
    mt_log(ctx, MT_LOG_INFO, "filled %lld x %zu doubles with %d threads", (long long)steps, n,
           ctx->ops->threads(ctx));
    /* Hooks added in later ABI minors: test before use, e.g.
     *     if (MT_CTX_HAS(ctx, some_new_hook)) ctx->ops->some_new_hook(ctx, ...); */
    return 0;
}

/* The one exported symbol. The loader checks, at load time: abi_major equals the
 * harness's, struct_size covers ABI 1.0, name ([a-z0-9_]+) and summary set, run set, and
 * the parameter table sane. Fields appended in later minors are read as 0 from plugins
 * built against an older header (struct_size tells). */
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,  /* required: refused if it differs */
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,  /* informational: recorded with each run */
    .struct_size = sizeof(struct mt_workload), /* required */
    .name = "skeleton",                        /* required: `memtrade run skeleton` */
    .summary = "example plugin: seeded random fill, commented for copying", /* required */
    .params = params, /* optional (NULL with n_params 0) */
    .n_params = sizeof params / sizeof params[0],
    .ranks_param = NULL,          /* optional: name of an INT parameter giving the MPI ranks; the
                                     harness then starts the run through its launcher (mpirun) */
    .mem_estimate = mem_estimate, /* optional */
    .run = run,                   /* required */
    .unavailable = NULL,          /* optional (1.2): why this build cannot run it (a stand-in built
                                     without a dependency); listed with the reason, never run */
};
