/* harness/heapingest.c — heap profiler report -> store (see heapingest.h). */
#include "heapingest.h"

#include "reader.h"

#include <dirent.h>
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

/* One R line: a region path's own exact peaks (total, then per category). */
struct region_peak {
    char *path;
    long long total;
    long long peak[MT_HEAPREPORT_MAX_CATS];
};

/* Totals over the reports whose sites were stored (the process and its exec'd
 * descendants): the run's metrics. */
/* The highest peak seen per memory category, categories in the order first seen. */
struct cat_peaks {
    char name[MT_HEAPREPORT_MAX_CATS][64];
    long long peak[MT_HEAPREPORT_MAX_CATS];
    size_t n;
};

/* Raises category name's peak in cp to peak; a category not seen before starts at init
 * (then is raised); one more than MT_HEAPREPORT_MAX_CATS is dropped. */
static void cat_peaks_raise(struct cat_peaks *cp, const char *name, long long init, long long peak)
{
    size_t i = 0;
    while (i < cp->n && strcmp(cp->name[i], name))
        i++;
    if (i == cp->n) {
        if (cp->n == MT_HEAPREPORT_MAX_CATS) return;
        snprintf(cp->name[cp->n++], sizeof cp->name[0], "%s", name);
        cp->peak[i] = init;
    }
    if (peak > cp->peak[i]) cp->peak[i] = peak;
}

struct totals {
    long long allocs, leaked_bytes, peak_bytes;
    size_t processes;
    struct cat_peaks cats;
};

struct heapingest {
    struct mt_store *st;
    int64_t run_id;
    int rank;
    int root; /* this report is the process's own, not a descendant's */
    struct totals tot;
    struct idmap frames, stacks;
    int64_t unknown_frame; /* for stacks whose unwinding failed */
    long long last_live[MT_HEAPREPORT_MAX_CATS];
    const char *const *cat_names;
    size_t ncat;
    mt_heapingest_metric_fn metric;
    void *arg;
    struct region_peak *regions;
    size_t nregions;
    int complete;                         /* the report had its end marker */
    long long regions_dropped;            /* -1: the report predates region peaks */
    int cat_used[MT_HEAPREPORT_MAX_CATS]; /* categories with any allocation (C lines) */
    char unreadable[512];                 /* why the report could not be read, "" if it was */
    struct device_totals {                /* device memory, over the stored reports */
        int on;                           /* a report had `M device 1` */
        long long peak, mapped_peak, pinned_peak, managed_peak, failed, unknown_frees;
        struct cat_peaks cats;
        long long last[MT_HEAPREPORT_DEVICE_KINDS];
    } dev;
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

/* Stores one site of memory `space` ("host", or a device kind). */
static int put_site(struct heapingest *h, const struct mt_heapreport_site *s, const char *space)
{
    struct mt_store_alloc_site row = {.rank = h->rank,
                                      .stack_id = idmap_get(&h->stacks, s->stack_id),
                                      .category = s->category,
                                      .allocs = s->allocs,
                                      .bytes = s->bytes,
                                      .peak_bytes = s->peak_bytes,
                                      .temporary = s->temporary,
                                      .leaked_bytes = s->leaked_bytes,
                                      .leaked_allocs = s->leaked_allocs,
                                      .estimated = s->estimated,
                                      .space = space};
    return mt_store_alloc_site(h->st, h->run_id, &row) != 0 ? store_fail(h) : 0;
}

static int on_site(const struct mt_heapreport_site *s, void *user)
{
    return put_site(user, s, "host");
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

/* ---- device memory (`memtrade profile --device`) ---------------------------------- */

static int on_device_site(const struct mt_heapreport_device_site *s, void *user)
{
    return put_site(user, s->site, s->kind);
}

/* Series device.live (device and vmm: memory on the GPU), device.managed, device.pinned;
 * the last two only while non-zero (or just were). */
static int on_device_sample(const struct mt_heapreport_device_sample *p, void *user)
{
    struct heapingest *h = user;
    static const char *const series[] = {"device.live", NULL, "device.managed", "device.pinned"};
    long long v[MT_HEAPREPORT_DEVICE_KINDS] = {p->live[0] + p->live[1], 0, p->live[2], p->live[3]};
    for (size_t k = 0; k < MT_HEAPREPORT_DEVICE_KINDS; k++) {
        if (!series[k] || (k > 0 && v[k] == 0 && h->dev.last[k] == 0)) continue;
        if (mt_store_sample(h->st, h->run_id, h->rank, series[k], p->t, (double)v[k], NULL) != 0)
            return store_fail(h);
        h->dev.last[k] = v[k];
    }
    return 0;
}

static int on_device_kind(const struct mt_heapreport_device_kind *k, void *user)
{
    struct device_totals *d = &((struct heapingest *)user)->dev;
    d->failed += k->failed;
    d->unknown_frees += k->unknown_frees;
    if (!strcmp(k->kind, "pinned") && k->peak > d->pinned_peak) d->pinned_peak = k->peak;
    if (!strcmp(k->kind, "managed") && k->peak > d->managed_peak) d->managed_peak = k->peak;
    return 0;
}

/* Per category, device and vmm together ("gpu"): the highest peak of any process. */
static int on_device_category(const struct mt_heapreport_device_category *c, void *user)
{
    struct device_totals *d = &((struct heapingest *)user)->dev;
    if (strcmp(c->kind, "gpu")) return 0;
    cat_peaks_raise(&d->cats, c->category, 0, c->peak);
    return 0;
}

/* The run's device metrics, or each unavailable with `why`. */
static void device_metrics(const struct heapingest *h, const char *why)
{
    const struct device_totals *d = &h->dev;
    if (!d->on) return;
    struct {
        const char *name, *unit;
        long long v;
    } m[] = {{"peak_device_bytes", "bytes", d->peak},
             {"peak_device_mapped_bytes", "bytes", d->mapped_peak},
             {"peak_pinned_bytes", "bytes", d->pinned_peak},
             {"peak_managed_bytes", "bytes", d->managed_peak},
             {"device_failed_calls", "count", d->failed},
             {"device_unknown_frees", "count", d->unknown_frees}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        h->metric(h->arg, m[i].name, why ? NAN : (double)m[i].v, m[i].unit, why);
    for (size_t i = 0; !why && i < d->cats.n; i++) {
        char name[96];
        snprintf(name, sizeof name, "peak_device_%s_bytes", d->cats.name[i]);
        h->metric(h->arg, name, (double)d->cats.peak[i], "bytes", NULL);
    }
}

static int on_region(const struct mt_heapreport_region *r, void *user)
{
    struct heapingest *h = user;
    struct region_peak *grown = realloc(h->regions, (h->nregions + 1) * sizeof *grown);
    if (!grown) return store_fail(h);
    h->regions = grown;
    struct region_peak *g = &h->regions[h->nregions];
    *g = (struct region_peak){.path = strdup(r->name), .total = r->peak_total};
    if (!g->path) return store_fail(h);
    for (size_t i = 0; i < r->ncat && i < MT_HEAPREPORT_MAX_CATS; i++)
        g->peak[i] = r->peak[i];
    h->nregions++;
    return 0;
}

/* Per category: the highest peak of any process (as peak_heap_bytes). */
static int on_category(const struct mt_heapreport_category *c, void *user)
{
    struct heapingest *h = user;
    for (size_t i = 0; h->root && i < h->ncat; i++)
        if (c->allocs > 0 && !strcmp(h->cat_names[i], c->name)) h->cat_used[i] = 1;
    if (c->allocs <= 0) return 0;
    cat_peaks_raise(&h->tot.cats, c->name, c->peak, c->peak);
    return 0;
}

static int on_summary(const struct mt_heapreport_summary *s, void *user)
{
    struct heapingest *h = user;
    if (h->root) {
        h->complete = s->complete;
        h->regions_dropped = s->regions_dropped;
    }
    if (s->complete) {
        struct totals *t = &h->tot;
        t->allocs += s->allocs;
        t->leaked_bytes += s->leaked_bytes;
        if (s->peak_bytes > t->peak_bytes) t->peak_bytes = s->peak_bytes;
        t->processes++;
    }
    if (s->device) {
        struct device_totals *d = &h->dev;
        d->on = 1;
        if (s->device_peak_bytes > d->peak) d->peak = s->device_peak_bytes;
        if (s->device_mapped_peak_bytes > d->mapped_peak) d->mapped_peak = s->device_mapped_peak_bytes;
    }
    return 0;
}

/* ---- region peaks ------------------------------------------------------------------ */

static int is_within(const char *path, const char *outer)
{
    size_t n = strlen(outer);
    return !strncmp(path, outer, n) && (path[n] == '\0' || path[n] == '/');
}

static const struct region_peak *own_peak(const struct heapingest *h, const char *path)
{
    for (size_t i = 0; i < h->nregions; i++)
        if (!strcmp(h->regions[i].path, path)) return &h->regions[i];
    return NULL;
}

/* Why a region of the database has no exact figure; NULL when it has one. A region's
 * figure covers its nested regions, so it needs theirs too. */
static const char *region_missing(const struct heapingest *h, const char *const *paths, size_t n,
                                  const char *path)
{
    if (h->unreadable[0]) return h->unreadable;
    if (!h->complete) return "heap report incomplete: the process died before its exit report";
    if (h->regions_dropped < 0) return "heap report without region peaks (older profiler)";
    for (size_t i = 0; i < n; i++) {
        if (!is_within(paths[i], path) || own_peak(h, paths[i])) continue;
        if (h->regions_dropped > 0)
            return "heap profiler did not track this region or one nested in it (its table of "
                   "64 region paths was full, or the path was longer than 63 bytes)";
        return "heap profiler has no figure for this region or one nested in it (path longer "
               "than 63 bytes, or entered on another thread)";
    }
    return NULL;
}

/* Stores heap_peak_bytes (and heap_peak_bytes.<category> for the categories the run
 * allocated) on every region row of this run and rank: the max of the region's own peak
 * and its nested regions' own peaks, or unavailable with the reason. */
static int store_region_peaks(struct heapingest *h, char *err, size_t errlen)
{
    struct mt_read *rd;
    struct mt_read_region *regs;
    size_t n_regs, n = 0;
    if (mt_read_open(h->st, &rd) != 0 || mt_read_regions(rd, h->run_id, &regs, &n_regs) != 0) {
        snprintf(err, errlen, "region peaks: %s", mt_store_error(h->st));
        mt_read_close(rd);
        return -1;
    }
    /* This rank's regions; the reader owns the rows until it is closed. */
    int64_t *ids = calloc(n_regs + 1, sizeof *ids);
    const char **paths = calloc(n_regs + 1, sizeof *paths);
    int rc = ids && paths ? 0 : -1;
    if (rc != 0) snprintf(err, errlen, "region peaks: out of memory");
    for (size_t i = 0; rc == 0 && i < n_regs; i++)
        if (regs[i].rank == h->rank) {
            ids[n] = regs[i].id;
            paths[n++] = regs[i].path;
        }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *why = region_missing(h, paths, n, paths[i]);
        long long total = 0, cat[MT_HEAPREPORT_MAX_CATS] = {0};
        for (size_t j = 0; !why && j < h->nregions; j++) {
            const struct region_peak *g = &h->regions[j];
            if (!is_within(g->path, paths[i])) continue;
            if (g->total > total) total = g->total;
            for (size_t c = 0; c < h->ncat; c++)
                if (g->peak[c] > cat[c]) cat[c] = g->peak[c];
        }
        rc = why ? mt_store_region_counter_unavailable(h->st, ids[i], "heap_peak_bytes", why)
                 : mt_store_region_counter(h->st, ids[i], "heap_peak_bytes", (double)total);
        for (size_t c = 0; c < h->ncat && rc == 0; c++) {
            if (!h->cat_used[c]) continue;
            char name[96];
            snprintf(name, sizeof name, "heap_peak_bytes.%s", h->cat_names[c]);
            rc = why ? mt_store_region_counter_unavailable(h->st, ids[i], name, why)
                     : mt_store_region_counter(h->st, ids[i], name, (double)cat[c]);
        }
        if (rc != 0) snprintf(err, errlen, "region peaks: %s", mt_store_error(h->st));
    }
    free(paths);
    free(ids);
    mt_read_close(rd);
    return rc;
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

/* Reads one report into the store: a process's own report in full (timeline, tensors,
 * region peaks), a descendant's frames, stacks and sites only. Returns 0, -1 when the
 * file cannot be read (err), 1 on a store error. */
static int ingest_one(struct heapingest *h, const char *path, char *err, size_t errlen)
{
    free(h->frames.v);
    free(h->stacks.v);
    h->frames = h->stacks = (struct idmap){0};
    for (size_t i = 0; i < h->ncat; i++)
        free((char *)h->cat_names[i]);
    if (h->ncat) free((void *)h->cat_names);
    h->cat_names = NULL;
    h->ncat = 0;
    struct mt_heapreport_cb first = {.summary = names_only};
    int rc = mt_heapreport_read(path, &first, h, err, errlen);
    if (rc != 0) return rc;
    struct mt_heapreport_cb cb = {.summary = on_summary, .category = on_category,
                                  .sample = on_sample,   .frame = on_frame,
                                  .stack = on_stack,     .site = on_site,
                                  .tensor = on_tensor,   .region = on_region,
                                  .device_kind = on_device_kind,
                                  .device_category = on_device_category,
                                  .device_site = on_device_site,
                                  .device_sample = on_device_sample};
    if (!h->root) cb.sample = NULL, cb.tensor = NULL, cb.region = NULL, cb.device_sample = NULL;
    rc = mt_heapreport_read(path, &cb, h, err, errlen);
    if (rc > 0) snprintf(err, errlen, "%s", mt_store_error(h->st));
    return rc;
}

/* One report of the process tree, found beside the process's own. */
struct report {
    char *path;
    long long pid;
    int forked, complete;
    char exe[256];
};

static int probe(const struct mt_heapreport_summary *s, void *user)
{
    struct report *r = user;
    r->pid = s->pid;
    r->forked = s->forked;
    r->complete = s->complete;
    snprintf(r->exe, sizeof r->exe, "%s", s->exe && *s->exe ? s->exe : "?");
    return 0;
}

/* The reports PATH.<pid> beside PATH: those of forked and exec'd descendants (the
 * profiler names them so), probed. */
static size_t find_descendants(const char *path, struct report **out)
{
    *out = NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    size_t blen = strlen(base), n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *tail = e->d_name + blen;
        if (strncmp(e->d_name, base, blen) || tail[0] != '.' || !tail[1] ||
            strspn(tail + 1, "0123456789") != strlen(tail + 1))
            continue;
        struct report *grown = realloc(*out, (n + 1) * sizeof *grown);
        if (!grown) break;
        *out = grown;
        struct report *r = &grown[n];
        *r = (struct report){.pid = -1};
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        r->path = malloc(len);
        if (!r->path) break;
        snprintf(r->path, len, "%s/%s", dir, e->d_name);
        char perr[256];
        struct mt_heapreport_cb cb = {.summary = probe};
        mt_heapreport_read(r->path, &cb, r, perr, sizeof perr);
        n++;
    }
    if (d) closedir(d);
    return n;
}

/* Appends "; "-separated text to a note (cut at cap). */
static void note_add(char *note, size_t cap, const char *text)
{
    size_t n = strlen(note);
    if (n && n + 2 < cap) {
        memcpy(note + n, "; ", 2);
        n += 2;
    }
    size_t len = strlen(text);
    if (n + len >= cap) len = n + 1 < cap ? cap - n - 1 : 0;
    memcpy(note + n, text, len);
    note[n + len] = '\0';
}

int mt_heapingest_file(struct mt_store *st, int64_t run_id, int rank, const char *path,
                       mt_heapingest_metric_fn metric, void *arg, char *err, size_t errlen)
{
    struct heapingest h = {
        .st = st, .run_id = run_id, .rank = rank, .metric = metric, .arg = arg, .root = 1};
    /* Sites add up (raw stacks that resolve alike are one row): start from none. */
    if (mt_store_alloc_sites_clear(st, run_id, rank) != 0) {
        snprintf(err, errlen, "%s", mt_store_error(st));
        return -1;
    }
    struct report *desc;
    size_t ndesc = find_descendants(path, &desc);
    /* The process exec'd: its last image wrote PATH.<its own pid>; that one is its
     * report, and PATH (the image before the exec) ends without an exit report. */
    struct mt_heapreport_cb pcb = {.summary = probe};
    struct report self = {.pid = -1};
    char perr[256];
    mt_heapreport_read(path, &pcb, &self, perr, sizeof perr);
    const char *own = path;
    for (size_t i = 0; i < ndesc; i++)
        if (self.pid > 0 && desc[i].pid == self.pid && !desc[i].forked) {
            own = desc[i].path;
            desc[i].pid = -2; /* taken */
        }
    int rc = ingest_one(&h, own, err, errlen);
    /* Region rows get their figure, or the reason they have none (a report that cannot
     * be read leaves every region unavailable, never 0). Regions are the process's own. */
    if (rc == -1) snprintf(h.unreadable, sizeof h.unreadable, "heap report unreadable: %s", err);
    char unreadable_err[1024];
    snprintf(unreadable_err, sizeof unreadable_err, "%s", rc == -1 ? err : "");
    if (rc <= 0) {
        char rerr[512];
        if (store_region_peaks(&h, rerr, sizeof rerr) != 0 && rc == 0) {
            snprintf(err, errlen, "%s", rerr);
            rc = 1;
        }
    }
    char note[1024] = "";
    size_t forked = 0;
    h.root = 0;
    for (size_t i = 0; i < ndesc && rc == 0; i++) {
        struct report *r = &desc[i];
        if (r->pid == -2) continue;
        if (r->forked) {
            forked++;
            continue;
        }
        char derr[512], msg[1024];
        int drc = ingest_one(&h, r->path, derr, sizeof derr);
        if (drc > 0) {
            snprintf(err, errlen, "%s", derr);
            rc = 1;
        } else if (drc < 0) {
            snprintf(msg, sizeof msg, "heap report of descendant %lld (%s) unreadable: %s", r->pid,
                     r->exe, derr);
            note_add(note, sizeof note, msg);
        } else if (!r->complete) {
            snprintf(msg, sizeof msg,
                     "heap report of descendant %lld (%s) incomplete: it ended before its exit "
                     "report (_exit or a signal); its allocations are not counted",
                     r->pid, r->exe);
            note_add(note, sizeof note, msg);
        }
    }
    if (forked) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "%zu forked process%s (fork without exec) not added: a fork's report repeats "
                 "its parent's counts",
                 forked, forked == 1 ? "" : "es");
        note_add(note, sizeof note, msg);
    }
    /* The run's totals: sums over the stored reports (what the sites add up to), the
     * highest peak of any one process (as peak_rss_bytes); unavailable, with the reason,
     * when a report that counts is missing its exit part or cannot be read. */
    const char *why = NULL;
    char whybuf[1200];
    if (rc < 0) {
        snprintf(whybuf, sizeof whybuf, "heap report unreadable: %s", unreadable_err);
        why = whybuf;
    } else if (rc == 0 && !h.complete) {
        why = "heap report incomplete: the process died before its exit report";
    } else if (rc == 0 && h.tot.processes < 1 + ndesc - forked - (own != path)) {
        snprintf(whybuf, sizeof whybuf, "%s", note);
        why = whybuf;
    }
    if (rc <= 0) device_metrics(&h, why);
    if (rc <= 0 && why) {
        metric(arg, "peak_heap_bytes", NAN, "bytes", why);
        metric(arg, "heap_allocs", NAN, "count", why);
        metric(arg, "leaked_bytes", NAN, "bytes", why);
    } else if (rc == 0) {
        metric(arg, "peak_heap_bytes", (double)h.tot.peak_bytes, "bytes", NULL);
        metric(arg, "heap_allocs", (double)h.tot.allocs, "count", NULL);
        metric(arg, "leaked_bytes", (double)h.tot.leaked_bytes, "bytes", NULL);
        for (size_t i = 0; i < h.tot.cats.n; i++) {
            char name[96];
            snprintf(name, sizeof name, "peak_%s_bytes", h.tot.cats.name[i]);
            metric(arg, name, (double)h.tot.cats.peak[i], "bytes", NULL);
        }
    }
    if (rc == 0 && h.tot.processes > 1)
        metric(arg, "heap_processes", (double)h.tot.processes, "count", NULL);
    for (size_t i = 0; i < h.nregions; i++)
        free(h.regions[i].path);
    free(h.regions);
    for (size_t i = 0; i < h.ncat; i++)
        free((char *)h.cat_names[i]);
    if (h.ncat) free((void *)h.cat_names);
    free(h.frames.v);
    free(h.stacks.v);
    for (size_t i = 0; i < ndesc; i++)
        free(desc[i].path);
    free(desc);
    if (rc != 0) return -1;
    if (!h.complete) {
        snprintf(err, errlen, "heap report incomplete: the process died before its exit report");
        return 1;
    }
    if (note[0]) {
        snprintf(err, errlen, "%s", note);
        return 1;
    }
    return 0;
}

int mt_heapingest_no_report(struct mt_store *st, int64_t run_id, int rank, const char *reason,
                            char *err, size_t errlen)
{
    struct heapingest h = {.st = st, .run_id = run_id, .rank = rank};
    snprintf(h.unreadable, sizeof h.unreadable, "%s",
             reason && *reason ? reason : "no heap report");
    return store_region_peaks(&h, err, errlen);
}

#else

int mt_heapingest_no_report(struct mt_store *st, int64_t run_id, int rank, const char *reason,
                            char *err, size_t errlen)
{
    (void)st, (void)run_id, (void)rank, (void)reason;
    snprintf(err, errlen, "this build has no heap report reader");
    return -1;
}

int mt_heapingest_file(struct mt_store *st, int64_t run_id, int rank, const char *path,
                       mt_heapingest_metric_fn metric, void *arg, char *err, size_t errlen)
{
    (void)st, (void)run_id, (void)rank, (void)path, (void)metric, (void)arg;
    snprintf(err, errlen, "this build has no heap report reader");
    return -1;
}

#endif
