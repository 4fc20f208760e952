/* dist_driver.c — runs one distributed plugin under mpirun the way the harness child
 * does (dlopen RTLD_LOCAL, a ctx, run()), without the harness.
 *
 * What it is for: the plugin smoke and crash tests, and trying a plugin by hand:
 *   mpirun -np 2 dist_driver plugins/zero.so model=tiny steps=5 batch=4 stage=2
 * Parameters not given take the table's default; rank and size come from Open MPI's
 * environment, as in harness/child.c. Every metric is printed as
 * "rank R metric NAME VALUE UNIT". With --check the driver also fails unless every rank
 * reported the per-rank metrics of plugin.h and rank 0 the run-level ones.
 * What it is not for: anything the harness records (events, database, heap profiles).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#define MAX_SEEN 128

struct drv {
    struct mt_ctx base;
    const struct mt_workload *wl;
    char **argv;
    int argc;
    int rank, nranks;
    char seen[MAX_SEEN][64];
    int nseen, regions_open, bad;
    char error[1024];
};

static struct drv *D(struct mt_ctx *c)
{
    return (struct drv *)c;
}

static const char *value_of(struct drv *d, const char *name)
{
    size_t k = strlen(name);
    for (int i = 0; i < d->argc; i++)
        if (!strncmp(d->argv[i], name, k) && d->argv[i][k] == '=') return d->argv[i] + k + 1;
    for (size_t i = 0; i < d->wl->n_params; i++)
        if (!strcmp(d->wl->params[i].name, name)) return d->wl->params[i].def;
    fprintf(stderr, "driver: undeclared parameter '%s'\n", name);
    d->bad = 1;
    return NULL;
}

static int64_t p_int(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(D(c), n);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double p_float(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(D(c), n);
    return v ? strtod(v, NULL) : 0.0;
}
static const char *p_str(struct mt_ctx *c, const char *n)
{
    return value_of(D(c), n);
}
static int p_bool(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(D(c), n);
    return v && (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"));
}

static void metric(struct mt_ctx *c, const char *name, double v, const char *unit)
{
    struct drv *d = D(c);
    if (d->nseen < MAX_SEEN) snprintf(d->seen[d->nseen++], sizeof d->seen[0], "%s", name);
    if (!isfinite(v)) d->bad = 1;
    printf("rank %d metric %s %.9g %s\n", d->rank, name, v, unit);
}
static void metric_na(struct mt_ctx *c, const char *name, const char *unit, const char *why)
{
    printf("rank %d metric %s unavailable (%s): %s\n", D(c)->rank, name, unit, why);
}
static void sample(struct mt_ctx *c, const char *s, double x, double y)
{
    (void)c, (void)s, (void)x, (void)y;
}
static void region_begin(struct mt_ctx *c, const char *n)
{
    (void)n;
    D(c)->regions_open++;
}
static void region_end(struct mt_ctx *c, const char *n)
{
    (void)n;
    if (--D(c)->regions_open < 0) D(c)->bad = 1;
}
static int mem_category(struct mt_ctx *c, int cat)
{
    (void)c;
    return mt_memcat_set(cat);
}
static void progress(struct mt_ctx *c, double done, double total)
{
    (void)c, (void)done, (void)total;
}
static void vlog(struct mt_ctx *c, enum mt_log_level lvl, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    printf("rank %d log[%d] %s\n", D(c)->rank, (int)lvl, line);
}
static void verror(struct mt_ctx *c, const char *fmt, va_list ap)
{
    vsnprintf(D(c)->error, sizeof D(c)->error, fmt, ap);
}
static uint64_t rng_u64(struct mt_ctx *c)
{
    (void)c;
    return 42;
}
static uint64_t seed(struct mt_ctx *c)
{
    return (uint64_t)p_int(c, "seed");
}
static int threads(struct mt_ctx *c)
{
    (void)c;
    return 1;
}
static int rank(struct mt_ctx *c)
{
    return D(c)->rank;
}
static int nranks(struct mt_ctx *c)
{
    return D(c)->nranks;
}
static const char *dir(struct mt_ctx *c)
{
    (void)c;
    return "/tmp";
}
static const char *corpus(struct mt_ctx *c)
{
    (void)c;
    return "";
}

static const struct mt_ctx_ops ops = {
    .struct_size = sizeof(struct mt_ctx_ops),
    .param_int = p_int,
    .param_float = p_float,
    .param_str = p_str,
    .param_bool = p_bool,
    .metric = metric,
    .metric_na = metric_na,
    .sample = sample,
    .region_begin = region_begin,
    .region_end = region_end,
    .mem_category = mem_category,
    .progress = progress,
    .vlog = vlog,
    .verror = verror,
    .rng_u64 = rng_u64,
    .seed = seed,
    .threads = threads,
    .rank = rank,
    .nranks = nranks,
    .cache_dir = dir,
    .corpus = corpus,
    .scratch_dir = dir,
};

static int seen(const struct drv *d, const char *name)
{
    for (int i = 0; i < d->nseen; i++)
        if (!strcmp(d->seen[i], name)) return 1;
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
    struct drv d = {.base.ops = &ops, .wl = wl, .argv = argv + 2 + check, .argc = argc - 2 - check};
    const char *r = getenv("OMPI_COMM_WORLD_RANK"), *n = getenv("OMPI_COMM_WORLD_SIZE");
    d.rank = r ? atoi(r) : 0;
    d.nranks = n ? atoi(n) : 1;
    int rc = wl->run(&d.base);
    if (rc) fprintf(stderr, "rank %d: run failed: %s\n", d.rank, d.error);
    if (check && rc == 0) {
        static const char *const per_rank[] = {"train_peak_bytes",
                                               "peak_weights_bytes",
                                               "peak_gradients_bytes",
                                               "peak_optimizer_bytes",
                                               "peak_activations_bytes",
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
        if (d.bad || d.regions_open)
            fprintf(stderr, "rank %d: non-finite metric, bad parameter or unbalanced region\n",
                    d.rank),
                rc = 1;
    }
    return rc ? 1 : 0;
}
