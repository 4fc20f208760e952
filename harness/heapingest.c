/* harness/heapingest.c — heap profiler report -> store (see heapingest.h). */
#include "heapingest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MT_HAVE_HEAPREPORT
#include "heapreport.h"

/* Report ids (1, 2, 3... in file order) -> database ids. */
struct idmap {
    int64_t *v;
    size_t n;
};

static int idmap_set(struct idmap *m, uint64_t id, int64_t db)
{
    if (id >= m->n) {
        size_t n = m->n ? m->n : 1024;
        while (n <= id)
            n *= 2;
        int64_t *grown = realloc(m->v, n * sizeof *grown);
        if (!grown) return -1;
        memset(grown + m->n, 0, (n - m->n) * sizeof *grown);
        m->v = grown;
        m->n = n;
    }
    m->v[id] = db;
    return 0;
}

static int64_t idmap_get(const struct idmap *m, uint64_t id)
{
    return id < m->n ? m->v[id] : 0;
}

struct heapingest {
    struct mt_store *st;
    int64_t run_id;
    int rank;
    struct idmap frames, stacks;
    int64_t unknown_frame; /* for stacks whose unwinding failed */
    long long last_live[MT_HEAPREPORT_MAX_CATS];
    const char *const *cat_names;
    size_t ncat;
    mt_heapingest_metric_fn metric;
    void *arg;
};

static int store_fail(struct heapingest *h)
{
    (void)h;
    return 1; /* stops the reader; the store's message is read by the caller */
}

static int on_frame(const struct mt_heapreport_frame *f, void *user)
{
    struct heapingest *h = user;
    struct mt_store_frame fr = {f->function, f->module, f->file, f->line > 0 ? (int)f->line : -1,
                                f->build_id};
    int64_t id;
    if (mt_store_frame_id(h->st, &fr, &id) != 0 || idmap_set(&h->frames, f->id, id) != 0)
        return store_fail(h);
    return 0;
}

static int on_stack(const struct mt_heapreport_stack *s, void *user)
{
    struct heapingest *h = user;
    size_t n = s->depth ? s->depth : 1;
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids) return store_fail(h);
    if (s->depth == 0) {
        if (!h->unknown_frame) {
            struct mt_store_frame unknown = {NULL, NULL, NULL, -1, NULL};
            if (mt_store_frame_id(h->st, &unknown, &h->unknown_frame) != 0) {
                free(ids);
                return store_fail(h);
            }
        }
        ids[0] = h->unknown_frame;
    }
    for (size_t i = 0; i < s->depth; i++)
        ids[i] = idmap_get(&h->frames, s->frames[i]);
    int64_t id;
    int rc = mt_store_stack_id(h->st, ids, n, &id) != 0 || idmap_set(&h->stacks, s->id, id) != 0;
    free(ids);
    return rc ? store_fail(h) : 0;
}

static int on_site(const struct mt_heapreport_site *s, void *user)
{
    struct heapingest *h = user;
    struct mt_store_alloc_site row = {.rank = h->rank,
                                      .stack_id = idmap_get(&h->stacks, s->stack_id),
                                      .category = s->category,
                                      .allocs = s->allocs,
                                      .bytes = s->bytes,
                                      .peak_bytes = s->peak_bytes,
                                      .temporary = s->temporary,
                                      .leaked_bytes = s->leaked_bytes,
                                      .leaked_allocs = s->leaked_allocs,
                                      .estimated = s->estimated};
    return mt_store_alloc_site(h->st, h->run_id, &row) != 0 ? store_fail(h) : 0;
}

static int on_tensor(const struct mt_heapreport_tensor *t, void *user)
{
    struct heapingest *h = user;
    return mt_store_tensor(h->st, h->run_id, h->rank, t->name, t->category, t->bytes) != 0
               ? store_fail(h)
               : 0;
}

static int on_sample(const struct mt_heapreport_sample *p, void *user)
{
    struct heapingest *h = user;
    if (mt_store_sample(h->st, h->run_id, h->rank, "heap.live", p->t, (double)p->live_total,
                        p->region) != 0)
        return store_fail(h);
    if (p->rss_bytes >= 0 && mt_store_sample(h->st, h->run_id, h->rank, "rss", p->t,
                                             (double)p->rss_bytes, p->region) != 0)
        return store_fail(h);
    /* A category series only while it is (or just was) non-zero: most stay empty. */
    for (size_t c = 0; c < p->ncat && c < MT_HEAPREPORT_MAX_CATS && c < h->ncat; c++) {
        if (p->live[c] == 0 && h->last_live[c] == 0) continue;
        char series[96];
        snprintf(series, sizeof series, "heap.live.%s", h->cat_names[c]);
        if (mt_store_sample(h->st, h->run_id, h->rank, series, p->t, (double)p->live[c],
                            p->region) != 0)
            return store_fail(h);
        h->last_live[c] = p->live[c];
    }
    return 0;
}

static int on_category(const struct mt_heapreport_category *c, void *user)
{
    struct heapingest *h = user;
    if (c->allocs > 0) {
        char name[96];
        snprintf(name, sizeof name, "peak_%s_bytes", c->name);
        h->metric(h->arg, name, (double)c->peak, "bytes", NULL);
    }
    return 0;
}

static int on_summary(const struct mt_heapreport_summary *s, void *user)
{
    struct heapingest *h = user;
    if (s->complete) {
        h->metric(h->arg, "peak_heap_bytes", (double)s->peak_bytes, "bytes", NULL);
        h->metric(h->arg, "heap_allocs", (double)s->allocs, "count", NULL);
        h->metric(h->arg, "leaked_bytes", (double)s->leaked_bytes, "bytes", NULL);
    } else {
        const char *why = "heap report incomplete: the process died before its exit report";
        h->metric(h->arg, "peak_heap_bytes", NAN, "bytes", why);
    }
    return 0;
}

/* The category names arrive with the summary, at the end; the timeline needs them
 * first, so a first pass reads only the summary. */
static int names_only(const struct mt_heapreport_summary *s, void *user)
{
    struct heapingest *h = user;
    static const char *const none[1] = {"other"};
    size_t n = s->ncat < MT_HEAPREPORT_MAX_CATS ? s->ncat : MT_HEAPREPORT_MAX_CATS;
    char **copy = calloc(n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = strdup(s->cat_names[i]);
    h->cat_names = copy ? (const char *const *)copy : none;
    h->ncat = copy ? n : 0;
    return 0;
}

int mt_heapingest_file(struct mt_store *st, int64_t run_id, int rank, const char *path,
                       mt_heapingest_metric_fn metric, void *arg, char *err, size_t errlen)
{
    struct heapingest h = {.st = st, .run_id = run_id, .rank = rank, .metric = metric, .arg = arg};
    struct mt_heapreport_cb first = {.summary = names_only};
    int rc = mt_heapreport_read(path, &first, &h, err, errlen);
    if (rc == 0) {
        struct mt_heapreport_cb cb = {on_summary, on_category, on_sample, on_frame,
                                      on_stack,   on_site,     on_tensor};
        rc = mt_heapreport_read(path, &cb, &h, err, errlen);
        if (rc > 0) snprintf(err, errlen, "%s", mt_store_error(st));
    }
    for (size_t i = 0; i < h.ncat; i++)
        free((char *)h.cat_names[i]);
    if (h.ncat) free((void *)h.cat_names);
    free(h.frames.v);
    free(h.stacks.v);
    return rc == 0 ? 0 : -1;
}

#else

int mt_heapingest_file(struct mt_store *st, int64_t run_id, int rank, const char *path,
                       mt_heapingest_metric_fn metric, void *arg, char *err, size_t errlen)
{
    (void)st, (void)run_id, (void)rank, (void)path, (void)metric, (void)arg;
    snprintf(err, errlen, "this build has no heap report reader");
    return -1;
}

#endif
