/* fake_ctx.c — the fake ctx of fake_ctx.h (what it records and prints is said there). */
#include "fake_ctx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fake_ctx *F(struct mt_ctx *c)
{
    return (struct fake_ctx *)c;
}

/* The value text of parameter `name`: an override, else the table default. */
static const char *value_of(struct fake_ctx *f, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i < f->n_overrides; i++)
        if (!strncmp(f->overrides[i], name, k) && f->overrides[i][k] == '=')
            return f->overrides[i] + k + 1;
    for (size_t i = 0; i < f->wl->n_params; i++)
        if (!strcmp(f->wl->params[i].name, name)) return f->wl->params[i].def;
    fprintf(stderr, "fake ctx: plugin asked for undeclared parameter '%s'\n", name);
    f->n_undeclared++;
    return NULL;
}

static int64_t p_int(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(F(c), n);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double p_float(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(F(c), n);
    return v ? strtod(v, NULL) : 0.0;
}
static const char *p_str(struct mt_ctx *c, const char *n)
{
    return value_of(F(c), n);
}
static int p_bool(struct mt_ctx *c, const char *n)
{
    const char *v = value_of(F(c), n);
    return v && (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"));
}

static struct fake_metric *slot(struct fake_ctx *f, const char *name)
{
    for (size_t i = 0; i < f->n_metrics; i++)
        if (!strcmp(f->metrics[i].name, name)) return &f->metrics[i];
    if (f->n_metrics == FAKE_MAX) return NULL;
    struct fake_metric *m = &f->metrics[f->n_metrics++];
    snprintf(m->name, sizeof m->name, "%s", name);
    return m;
}

static void metric(struct mt_ctx *c, const char *name, double v, const char *unit)
{
    struct fake_metric *m = slot(F(c), name);
    if (m) {
        m->value = v, m->na = 0, m->reason[0] = 0;
        snprintf(m->unit, sizeof m->unit, "%s", unit);
    }
    F(c)->n_nonfinite += !isfinite(v);
    printf("rank %d metric %-20s %.9g %s\n", F(c)->rank, name, v, unit);
}

static void metric_na(struct mt_ctx *c, const char *name, const char *unit, const char *why)
{
    struct fake_metric *m = slot(F(c), name);
    if (m) {
        m->na = 1;
        snprintf(m->unit, sizeof m->unit, "%s", unit);
        snprintf(m->reason, sizeof m->reason, "%s", why ? why : "");
    }
    printf("rank %d metric %-20s unavailable (%s): %s\n", F(c)->rank, name, unit, why);
}

static void sample(struct mt_ctx *c, const char *s, double x, double y)
{
    F(c)->n_samples++;
    if (F(c)->on_sample) F(c)->on_sample(F(c)->sample_user, s, x, y);
}

static void region_begin(struct mt_ctx *c, const char *n)
{
    if (F(c)->on_region) F(c)->on_region(F(c)->region_user, n, 1);
    F(c)->open_regions++;
    F(c)->regions_begun++;
}

static void region_end(struct mt_ctx *c, const char *n)
{
    if (F(c)->on_region) F(c)->on_region(F(c)->region_user, n, 0);
    if (F(c)->open_regions == 0)
        F(c)->region_errors++;
    else
        F(c)->open_regions--;
}

static int mem_category(struct mt_ctx *c, int cat)
{
    (void)c;
    return mt_memcat_set(cat);
}

static void progress(struct mt_ctx *c, double d, double t)
{
    F(c)->progress_done = d;
    F(c)->progress_total = t;
}

static void vlog(struct mt_ctx *c, enum mt_log_level lvl, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    printf("rank %d log[%d] %s\n", F(c)->rank, (int)lvl, line);
    F(c)->n_warnings += lvl >= MT_LOG_WARN;
    if (!strncmp(line, "sample", 6))
        snprintf(F(c)->last_sample_log, sizeof F(c)->last_sample_log, "%s", line);
}

static void verror(struct mt_ctx *c, const char *fmt, va_list ap)
{
    vsnprintf(F(c)->error, sizeof F(c)->error, fmt, ap);
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
    return F(c)->threads;
}
static int rank(struct mt_ctx *c)
{
    return F(c)->rank;
}
static int nranks(struct mt_ctx *c)
{
    return F(c)->nranks;
}
static const char *cache_dir(struct mt_ctx *c)
{
    return F(c)->cache_dir;
}
static const char *corpus(struct mt_ctx *c)
{
    return F(c)->corpus;
}
static const char *scratch_dir(struct mt_ctx *c)
{
    return F(c)->scratch_dir;
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
    .cache_dir = cache_dir,
    .corpus = corpus,
    .scratch_dir = scratch_dir,
};

void fake_ctx_init(struct fake_ctx *f, const struct mt_workload *wl, const char **overrides,
                   size_t n)
{
    memset(f, 0, sizeof *f);
    f->base.ops = &ops;
    f->wl = wl;
    for (size_t i = 0; i < n && i < FAKE_MAX; i++)
        f->overrides[f->n_overrides++] = overrides[i];
    f->threads = 2;
    f->nranks = 1;
}

const struct fake_metric *fake_ctx_metric(const struct fake_ctx *f, const char *name)
{
    for (size_t i = 0; i < f->n_metrics; i++)
        if (!strcmp(f->metrics[i].name, name)) return &f->metrics[i];
    return NULL;
}
