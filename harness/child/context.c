/* harness/child/context.c — the hooks of struct mt_ctx_ops (see context.h). */
#include "context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memtrade/memcat.h>

#include "events.h"

#ifdef MT_HAVE_COUNTERS
#include "counters.h"
#endif

#define CTX(pub) ((struct mt_context *)(pub))

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mt_context_emit(struct mt_context *c, char tag, const char *const *fields, size_t n)
{
    if (c->events_fd >= 0) (void)mt_events_write(c->events_fd, tag, fields, n);
}

/* Records the first ABI misuse; the run then fails with it. */
__attribute__((format(printf, 2, 3))) static void plugin_bug(struct mt_context *c, const char *fmt,
                                                             ...)
{
    if (c->bug[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->bug, sizeof c->bug, fmt, ap);
    va_end(ap);
    if (c->events_fd >= 0) {
        char e[24];
        const char *f[] = {c->bug, mt_events_fmt_i64(e, 0)};
        mt_context_emit(c, MT_EV_ERROR, f, 2);
    }
}

/* ---------------------------------------------------------------- parameters */

static const char *param_lookup(struct mt_context *c, const char *name, int want1, int want2)
{
    long k = name ? mt_params_index(c->params->wl, name) : -1;
    if (k < 0) {
        plugin_bug(c, "plugin asked for undeclared parameter '%s'", name ? name : "(null)");
        return NULL;
    }
    int type = (int)c->params->wl->params[k].type;
    if (type != want1 && type != want2) {
        plugin_bug(c, "plugin read parameter '%s' with the wrong type getter", name);
        return NULL;
    }
    return c->params->value[k];
}

static int64_t ctx_param_int(struct mt_ctx *pub, const char *name)
{
    const char *v = param_lookup(CTX(pub), name, MT_PARAM_INT, MT_PARAM_INT);
    return v ? strtoll(v, NULL, 10) : 0;
}

static double ctx_param_float(struct mt_ctx *pub, const char *name)
{
    const char *v = param_lookup(CTX(pub), name, MT_PARAM_FLOAT, MT_PARAM_INT);
    return v ? strtod(v, NULL) : 0.0;
}

static const char *ctx_param_str(struct mt_ctx *pub, const char *name)
{
    return param_lookup(CTX(pub), name, MT_PARAM_STRING, MT_PARAM_CHOICE);
}

static int ctx_param_bool(struct mt_ctx *pub, const char *name)
{
    const char *v = param_lookup(CTX(pub), name, MT_PARAM_BOOL, MT_PARAM_BOOL);
    return v && strcmp(v, "true") == 0;
}

/* ---------------------------------------------------------------- results */

static void ctx_metric(struct mt_ctx *pub, const char *name, double value, const char *unit)
{
    struct mt_context *c = CTX(pub);
    if (!name || !*name || !unit) {
        plugin_bug(c, "metric '%s' reported without a name or a unit", name ? name : "(null)");
        return;
    }
    char v[40];
    const char *f[] = {name, mt_events_fmt_double(v, sizeof v, value), unit};
    mt_context_emit(c, MT_EV_METRIC, f, 3);
}

static void ctx_metric_na(struct mt_ctx *pub, const char *name, const char *unit,
                          const char *reason)
{
    struct mt_context *c = CTX(pub);
    if (!name || !*name || !unit) {
        plugin_bug(c, "metric '%s' reported without a name or a unit", name ? name : "(null)");
        return;
    }
    const char *f[] = {name, unit, reason && *reason ? reason : "unavailable (no reason given)"};
    mt_context_emit(c, MT_EV_METRIC_NA, f, 3);
}

static const char *current_region(struct mt_context *c)
{
#ifdef MT_HAVE_COUNTERS
    if (c->counters && pthread_equal(pthread_self(), c->owner))
        return mt_counters_region_path(c->counters);
#endif
    return pthread_equal(pthread_self(), c->owner) ? c->open_path : "";
}

static void ctx_sample(struct mt_ctx *pub, const char *series, double x, double y)
{
    struct mt_context *c = CTX(pub);
    if (!series || !*series) {
        plugin_bug(c, "sample reported without a series name");
        return;
    }
    char xs[40], ys[40];
    const char *f[] = {series, mt_events_fmt_double(xs, sizeof xs, x),
                       mt_events_fmt_double(ys, sizeof ys, y), current_region(c)};
    mt_context_emit(c, MT_EV_SAMPLE, f, 4);
}

static void ctx_progress(struct mt_ctx *pub, double done, double total)
{
    struct mt_context *c = CTX(pub);
    /* At most ten lines a second, but always the last one. */
    int64_t ns = (int64_t)(now_s(CLOCK_MONOTONIC) * 1e9);
    int64_t last = atomic_load(&c->last_progress_ns);
    if (done < total && ns - last < 100000000) return;
    atomic_store(&c->last_progress_ns, ns);
    char d[40], t[40];
    const char *f[] = {mt_events_fmt_double(d, sizeof d, done),
                       mt_events_fmt_double(t, sizeof t, total)};
    mt_context_emit(c, MT_EV_PROGRESS, f, 2);
}

static void ctx_vlog(struct mt_ctx *pub, enum mt_log_level level, const char *fmt, va_list ap)
{
    struct mt_context *c = CTX(pub);
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char text[4096], t[40];
    vsnprintf(text, sizeof text, fmt ? fmt : "", ap);
    const char *f[] = {mt_events_fmt_double(t, sizeof t, now_s(CLOCK_MONOTONIC) - c->t0),
                       names[(unsigned)level <= MT_LOG_ERROR ? level : MT_LOG_INFO], text};
    mt_context_emit(c, MT_EV_LOG, f, 3);
}

static void ctx_verror(struct mt_ctx *pub, const char *fmt, va_list ap)
{
    struct mt_context *c = CTX(pub);
    int saved = errno; /* ENOMEM here marks an out-of-memory failure */
    vsnprintf(c->error, sizeof c->error, fmt ? fmt : "", ap);
    c->error_errno = saved;
    char e[24];
    const char *f[] = {c->error, mt_events_fmt_i64(e, saved)};
    mt_context_emit(c, MT_EV_ERROR, f, 2);
    errno = saved;
}

/* ---------------------------------------------------------------- regions */

static void fallback_add(struct mt_context *c, const char *path, double wall, double cpu)
{
    for (size_t i = 0; i < c->nregions; i++) {
        if (strcmp(c->regions[i].path, path) == 0) {
            c->regions[i].calls++;
            c->regions[i].wall_s += wall;
            c->regions[i].cpu_s += cpu;
            return;
        }
    }
    struct mt_context_region *grown = realloc(c->regions, (c->nregions + 1) * sizeof *grown);
    if (!grown) return;
    c->regions = grown;
    c->regions[c->nregions++] = (struct mt_context_region){strdup(path), 1, wall, cpu};
}

/* The heap profiler is told the innermost region's path ("train/step", as the regions
 * table names it): its timeline shows it and it keeps exact peaks per path. It keeps the
 * pointer, so it points into the context's own stack of copies, never into the plugin's
 * strings. A path too long for a copy is not told (NULL), never told truncated. */
static void memcat_push(struct mt_context *c, const char *name)
{
    size_t d = c->memcat_depth;
    /* A top-level region is a phase: the kernel's resident peak is measured per phase. */
    if (d == 0 && c->events_fd >= 0) mt_phase_rss_begin(&c->rss, name);
    if (d < MT_CONTEXT_DEPTH) {
        char path[sizeof c->memcat_names[0]];
        int n = snprintf(path, sizeof path, "%s%s%s", d ? c->memcat_names[d - 1] : "", d ? "/" : "",
                         name);
        int fits =
            n >= 0 && (size_t)n < sizeof path && (d == 0 || c->memcat_names[d - 1][0] != '\0');
        memcpy(c->memcat_names[d], fits ? path : "", fits ? (size_t)n + 1 : 1);
        mt_memcat_region(fits ? c->memcat_names[d] : NULL);
    }
    c->memcat_depth++;
}

static void memcat_pop(struct mt_context *c, const char *name)
{
    if (c->memcat_depth > 0) c->memcat_depth--;
    if (c->memcat_depth == 0 && c->events_fd >= 0) mt_phase_rss_end(&c->rss, name);
    size_t top = c->memcat_depth < MT_CONTEXT_DEPTH ? c->memcat_depth : MT_CONTEXT_DEPTH;
    mt_memcat_region(top && c->memcat_names[top - 1][0] ? c->memcat_names[top - 1] : NULL);
}

#ifdef MT_HAVE_COUNTERS
/* A region's begin (begin = 1) or end, when the counters time regions: the counters open
 * or close it and the memory-category stack follows; a refusal is the plugin's bug. */
static void counters_region(struct mt_context *c, const char *name, int begin)
{
    char err[256];
    int rc = begin ? mt_counters_region_begin(c->counters, name, err, sizeof err)
                   : mt_counters_region_end(c->counters, name, err, sizeof err);
    if (rc != 0)
        plugin_bug(c, "%s: %s", begin ? "region_begin" : "region_end", err);
    else if (begin)
        memcat_push(c, name);
    else
        memcat_pop(c, name);
}
#endif

static void ctx_region_begin(struct mt_ctx *pub, const char *name)
{
    struct mt_context *c = CTX(pub);
    if (!name || !*name || strchr(name, '/')) {
        plugin_bug(c, "region name '%s' is empty or contains '/'", name ? name : "(null)");
        return;
    }
    if (!pthread_equal(pthread_self(), c->owner)) return; /* counted on the run() thread only */
#ifdef MT_HAVE_COUNTERS
    if (c->counters) {
        counters_region(c, name, 1);
        return;
    }
#endif
    size_t len = strlen(c->open_path);
    if (c->depth >= MT_CONTEXT_DEPTH || len + strlen(name) + 2 > sizeof c->open_path) {
        plugin_bug(c, "regions nested too deep at '%s'", name);
        return;
    }
    snprintf(c->open_path + len, sizeof c->open_path - len, "%s%s", len ? "/" : "", name);
    c->open_wall[c->depth] = now_s(CLOCK_MONOTONIC);
    c->open_cpu[c->depth] = now_s(CLOCK_PROCESS_CPUTIME_ID);
    c->depth++;
    memcat_push(c, name);
}

static void ctx_region_end(struct mt_ctx *pub, const char *name)
{
    struct mt_context *c = CTX(pub);
    if (!name || !pthread_equal(pthread_self(), c->owner)) return;
#ifdef MT_HAVE_COUNTERS
    if (c->counters) {
        counters_region(c, name, 0);
        return;
    }
#endif
    char *slash = strrchr(c->open_path, '/');
    const char *last = slash ? slash + 1 : c->open_path;
    if (c->depth == 0 || strcmp(last, name) != 0) {
        plugin_bug(c, "region_end('%s') does not match the innermost open region", name);
        return;
    }
    c->depth--;
    fallback_add(c, c->open_path, now_s(CLOCK_MONOTONIC) - c->open_wall[c->depth],
                 now_s(CLOCK_PROCESS_CPUTIME_ID) - c->open_cpu[c->depth]);
    if (slash)
        *slash = '\0';
    else
        c->open_path[0] = '\0';
    memcat_pop(c, name);
}

static int ctx_mem_category(struct mt_ctx *pub, int cat)
{
    (void)pub;
    if (cat < 0 || cat >= MT_MEM_CAT_COUNT) cat = MT_MEM_OTHER;
    return mt_memcat_set(cat);
}

/* ---------------------------------------------------------------- environment */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t ctx_rng_u64(struct mt_ctx *pub)
{
    uint64_t *s = CTX(pub)->rng; /* xoshiro256** */
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The accessors that hand out a field of the context as it is. */
#define CTX_FIELD(type, name)                                                                      \
    static type ctx_##name(struct mt_ctx *pub)                                                     \
    {                                                                                              \
        return CTX(pub)->run.name;                                                                 \
    }
CTX_FIELD(uint64_t, seed)
CTX_FIELD(int, threads)
CTX_FIELD(int, rank)
CTX_FIELD(int, nranks)
CTX_FIELD(const char *, cache_dir)
CTX_FIELD(const char *, corpus)
CTX_FIELD(const char *, scratch_dir)
#undef CTX_FIELD

static void fill_ops(struct mt_context *c)
{
    c->ops = (struct mt_ctx_ops){
        .struct_size = sizeof(struct mt_ctx_ops),
        .param_int = ctx_param_int,
        .param_float = ctx_param_float,
        .param_str = ctx_param_str,
        .param_bool = ctx_param_bool,
        .metric = ctx_metric,
        .metric_na = ctx_metric_na,
        .sample = ctx_sample,
        .region_begin = ctx_region_begin,
        .region_end = ctx_region_end,
        .mem_category = ctx_mem_category,
        .progress = ctx_progress,
        .vlog = ctx_vlog,
        .verror = ctx_verror,
        .rng_u64 = ctx_rng_u64,
        .seed = ctx_seed,
        .threads = ctx_threads,
        .rank = ctx_rank,
        .nranks = ctx_nranks,
        .cache_dir = ctx_cache_dir,
        .corpus = ctx_corpus,
        .scratch_dir = ctx_scratch_dir,
    };
    c->pub.ops = &c->ops;
}

void mt_context_init_params_only(struct mt_context *c, const struct mt_params *params)
{
    memset(c, 0, sizeof *c);
    c->params = params;
    c->events_fd = -1;
    c->run = (struct mt_context_run){
        .threads = 1, .nranks = 1, .cache_dir = "", .corpus = "", .scratch_dir = ""};
    c->owner = pthread_self();
    c->t0 = now_s(CLOCK_MONOTONIC);
    fill_ops(c);
}

void mt_context_init(struct mt_context *c, const struct mt_params *params, int events_fd,
                     const struct mt_context_run *run, struct mt_counters *counters)
{
    mt_context_init_params_only(c, params);
    c->events_fd = events_fd;
    c->run = *run;
    uint64_t x = run->seed;
    for (int i = 0; i < 4; i++)
        c->rng[i] = splitmix64(&x);
    c->counters = counters;
    mt_phase_rss_init(&c->rss);
}

/* One phase's resident peak as a metric event (phaserss.h). */
static void emit_phase_rss(void *user, const char *phase, uint64_t bytes, const char *why)
{
    struct mt_context *c = user;
    char name[96], v[40];
    snprintf(name, sizeof name, "%s_rss_peak_bytes", phase);
    if (why) {
        const char *f[] = {name, "bytes", why};
        mt_context_emit(c, MT_EV_METRIC_NA, f, 3);
        return;
    }
    const char *f[] = {name, mt_events_fmt_double(v, sizeof v, (double)bytes), "bytes"};
    mt_context_emit(c, MT_EV_METRIC, f, 3);
}

#ifdef MT_HAVE_COUNTERS
static int emit_counter_region(const struct mt_counters_region *r, void *user)
{
    struct mt_context *c = user;
    char depth[24], calls[24], wall[40], cpu[40], val[40];
    const char *f[] = {r->path, mt_events_fmt_i64(depth, (long long)r->depth),
                       mt_events_fmt_i64(calls, (long long)r->calls),
                       mt_events_fmt_double(wall, sizeof wall, r->wall_s),
                       mt_events_fmt_double(cpu, sizeof cpu, r->cpu_s)};
    mt_context_emit(c, MT_EV_REGION, f, 5);
    for (size_t i = 0; i < r->ncounters; i++) {
        const struct mt_counter *k = &r->counters[i];
        const char *cf[] = {r->path, k->name,
                            k->available ? mt_events_fmt_i64(val, (long long)k->value) : "",
                            k->available ? "" : (k->reason ? k->reason : "unavailable")};
        mt_context_emit(c, MT_EV_COUNTER, cf, 4);
    }
    return 0;
}
#endif

void mt_context_finish(struct mt_context *c)
{
    /* Regions left open end here: their phases' resident peaks are read at the end. */
    if (c->memcat_depth > 0 && c->events_fd >= 0)
        mt_phase_rss_end(&c->rss, c->memcat_names[0]);
    if (c->events_fd >= 0) mt_phase_rss_foreach(&c->rss, emit_phase_rss, c);
    /* The heap profiler must not keep a pointer into this context past its life. */
    mt_memcat_region(NULL);
    c->memcat_depth = 0;
#ifdef MT_HAVE_COUNTERS
    if (c->counters) {
        char err[256];
        while (mt_counters_region_depth(c->counters) > 0) {
            const char *p = mt_counters_region_path(c->counters);
            const char *slash = strrchr(p, '/');
            char last[256];
            snprintf(last, sizeof last, "%s", slash ? slash + 1 : p);
            if (mt_counters_region_end(c->counters, last, err, sizeof err) != 0) break;
        }
        mt_counters_region_foreach(c->counters, emit_counter_region, c);
        return;
    }
#endif
    while (c->depth > 0) {
        char *slash = strrchr(c->open_path, '/');
        ctx_region_end(&c->pub, slash ? slash + 1 : c->open_path);
    }
    for (size_t i = 0; i < c->nregions; i++) {
        const struct mt_context_region *r = &c->regions[i];
        size_t depth = 0;
        for (const char *p = r->path; *p; p++)
            depth += *p == '/';
        char d[24], calls[24], wall[40], cpu[40];
        const char *f[] = {r->path, mt_events_fmt_i64(d, (long long)depth),
                           mt_events_fmt_i64(calls, (long long)r->calls),
                           mt_events_fmt_double(wall, sizeof wall, r->wall_s),
                           mt_events_fmt_double(cpu, sizeof cpu, r->cpu_s)};
        mt_context_emit(c, MT_EV_REGION, f, 5);
        free(r->path);
    }
    free(c->regions);
    c->regions = NULL;
    c->nregions = 0;
}
