/* profilers/counters/counters.c — the mt_counters handle: open/close, nested regions
 * keyed by path, whole-run totals.
 *
 * What it is for: combining the counter sources (papi_source.c, perf_source.c) into one
 * snapshot array and accumulating its deltas, with wall and CPU time, per region path.
 * A region costs one snapshot at begin and one at end; the path's node is found once per
 * begin by a short scan of the parent's children (names are few per level).
 * What it is not for: writing events or the database (the harness does), /proc memory
 * (memsnap.c).
 */
#include "counters_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mt_region_node {
    struct mt_region_node *parent;
    struct mt_region_node *first_child, *last_child, *next_sibling;
    struct mt_region_node *last_hit; /* child entered last: the usual next one */
    char name[MT_COUNTERS_REGION_NAME_MAX];
    char *path;
    size_t depth;
    uint64_t calls;
    double wall_s, cpu_s;
    int64_t sums[]; /* one per counter */
};

struct mt_region_frame {
    struct mt_region_node *node;
    double wall0, cpu0;
};

int mt_ctr_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

struct mt_ctr *mt_ctr_add(struct mt_counters *c, const char *name, const char *unit,
                          enum mt_counter_source source)
{
    if (c->n == MT_COUNTERS_MAX) return NULL;
    struct mt_ctr *k = &c->ctr[c->n++];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->pub.name = k->name;
    k->pub.unit = unit;
    k->pub.source = source;
    k->pub.scope = "thread";
    return k;
}

void mt_ctr_unavailable(struct mt_ctr *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->reason, sizeof k->reason, fmt, ap);
    va_end(ap);
    if (!k->reason[0]) snprintf(k->reason, sizeof k->reason, "unavailable (no reason given)");
    k->pub.available = 0;
    k->pub.reason = k->reason;
    k->pub.note = NULL;
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every available counter's current value into snap[0..n). */
static int snapshot(struct mt_counters *c, int64_t *snap, char *err, size_t errlen)
{
    if (mt_ctr_papi_read(c, snap, err, errlen) != 0) return -1;
    return mt_ctr_perf_read(c, snap, err, errlen);
}

static struct mt_region_node *node_new(struct mt_counters *c, struct mt_region_node *parent,
                                       const char *name)
{
    struct mt_region_node *nd = calloc(1, sizeof *nd + c->n * sizeof nd->sums[0]);
    if (!nd) return NULL;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->parent = parent;
    if (parent) {
        size_t plen = strlen(parent->path), nlen = strlen(name);
        nd->path = malloc(plen + 1 + nlen + 1);
        if (!nd->path) {
            free(nd);
            return NULL;
        }
        if (plen) {
            memcpy(nd->path, parent->path, plen);
            nd->path[plen] = '/';
            memcpy(nd->path + plen + 1, name, nlen + 1);
        } else {
            memcpy(nd->path, name, nlen + 1);
        }
        nd->depth = parent->path[0] ? parent->depth + 1 : 0;
    } else {
        nd->path = strdup("");
        if (!nd->path) {
            free(nd);
            return NULL;
        }
    }
    return nd;
}

static void node_free(struct mt_region_node *nd)
{
    if (nd) {
        free(nd->path);
        free(nd);
    }
}

int mt_counters_open(const struct mt_counters_opts *opts, struct mt_counters **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct mt_counters *c = calloc(1, sizeof *c);
    if (!c) return mt_ctr_err(err, errlen, "out of memory");
    c->owner = pthread_self();
    const char *events = opts ? opts->events : NULL;
    if (!events) events = getenv(MT_COUNTERS_ENV);
    if (!events) events = "default";

    int want_cycles = 0, want_ins = 0;
    if (mt_ctr_papi_open(c, events, &want_cycles, &want_ins, err, errlen) != 0) {
        mt_counters_close(c);
        return -1;
    }
    if (!(opts && opts->no_perf)) mt_ctr_perf_open(c, want_cycles, want_ins);

    c->root = node_new(c, NULL, "");
    c->stack = calloc(MT_COUNTERS_DEPTH_MAX, sizeof *c->stack);
    c->snaps = calloc((size_t)MT_COUNTERS_DEPTH_MAX * (c->n ? c->n : 1), sizeof *c->snaps);
    if (!c->root || !c->stack || !c->snaps) {
        mt_counters_close(c);
        return mt_ctr_err(err, errlen, "out of memory");
    }
    if (snapshot(c, c->snap0, err, errlen) != 0) {
        mt_counters_close(c);
        return -1;
    }
    c->wall0 = now(CLOCK_MONOTONIC);
    c->cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
    *out = c;
    return 0;
}

void mt_counters_close(struct mt_counters *c)
{
    if (!c) return;
    mt_ctr_papi_close(c);
    mt_ctr_perf_close(c);
    for (size_t i = 0; i < c->norder; i++)
        node_free(c->order[i]);
    free(c->order);
    node_free(c->root);
    free(c->stack);
    free(c->snaps);
    free(c);
}

size_t mt_counters_count(const struct mt_counters *c)
{
    return c->n;
}

const struct mt_counter *mt_counters_get(const struct mt_counters *c, size_t i)
{
    return i < c->n ? &c->ctr[i].pub : NULL;
}

static int check_name(const char *name, char *err, size_t errlen)
{
    if (!name || !name[0]) return mt_ctr_err(err, errlen, "region name is empty");
    size_t len = strlen(name);
    if (len >= MT_COUNTERS_REGION_NAME_MAX)
        return mt_ctr_err(err, errlen, "region name too long (%zu bytes, max %d): %.40s...", len,
                          MT_COUNTERS_REGION_NAME_MAX - 1, name);
    if (strchr(name, '/')) return mt_ctr_err(err, errlen, "region name contains '/': %s", name);
    return 0;
}

/* The child of parent called name, created (and remembered in creation order) if new. */
static struct mt_region_node *child(struct mt_counters *c, struct mt_region_node *parent,
                                    const char *name)
{
    struct mt_region_node *nd = parent->last_hit;
    if (nd && strcmp(nd->name, name) == 0) return nd;
    for (nd = parent->first_child; nd; nd = nd->next_sibling)
        if (strcmp(nd->name, name) == 0) return parent->last_hit = nd;
    if (c->norder == c->order_cap) {
        size_t cap = c->order_cap ? 2 * c->order_cap : 16;
        void *p = realloc(c->order, cap * sizeof *c->order);
        if (!p) return NULL;
        c->order = p;
        c->order_cap = cap;
    }
    nd = node_new(c, parent, name);
    if (!nd) return NULL;
    c->order[c->norder++] = nd;
    if (parent->last_child)
        parent->last_child->next_sibling = nd;
    else
        parent->first_child = nd;
    parent->last_child = nd;
    return parent->last_hit = nd;
}

static int check_owner(const struct mt_counters *c, const char *what, char *err, size_t errlen)
{
    if (!pthread_equal(pthread_self(), c->owner))
        return mt_ctr_err(err, errlen,
                          "%s called from a thread other than the one that "
                          "opened the counters",
                          what);
    return 0;
}

int mt_counters_region_begin(struct mt_counters *c, const char *name, char *err, size_t errlen)
{
    if (check_owner(c, "region_begin", err, errlen) != 0 || check_name(name, err, errlen) != 0)
        return -1;
    if (c->depth == MT_COUNTERS_DEPTH_MAX)
        return mt_ctr_err(err, errlen, "regions nested deeper than %d (entering '%s' in '%s')",
                          MT_COUNTERS_DEPTH_MAX, name, mt_counters_region_path(c));
    struct mt_region_node *parent = c->depth ? c->stack[c->depth - 1].node : c->root;
    struct mt_region_node *nd = child(c, parent, name);
    if (!nd) return mt_ctr_err(err, errlen, "out of memory entering region '%s'", name);
    struct mt_region_frame *f = &c->stack[c->depth];
    if (snapshot(c, c->snaps + c->depth * c->n, err, errlen) != 0) return -1;
    f->node = nd;
    f->cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
    f->wall0 = now(CLOCK_MONOTONIC);
    c->depth++;
    return 0;
}

int mt_counters_region_end(struct mt_counters *c, const char *name, char *err, size_t errlen)
{
    double wall1 = now(CLOCK_MONOTONIC);
    double cpu1 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (check_owner(c, "region_end", err, errlen) != 0) return -1;
    if (c->depth == 0)
        return mt_ctr_err(err, errlen, "region_end('%s') with no region open",
                          name ? name : "(null)");
    struct mt_region_frame *f = &c->stack[c->depth - 1];
    if (!name || strcmp(name, f->node->name) != 0)
        return mt_ctr_err(err, errlen,
                          "region_end('%s') does not match the innermost open region '%s'",
                          name ? name : "(null)", f->node->path);
    if (snapshot(c, c->snap_now, err, errlen) != 0) return -1;
    struct mt_region_node *nd = f->node;
    const int64_t *start = c->snaps + (c->depth - 1) * c->n;
    for (size_t i = 0; i < c->n; i++)
        nd->sums[i] += c->snap_now[i] - start[i];
    nd->calls++;
    nd->wall_s += wall1 - f->wall0;
    nd->cpu_s += cpu1 - f->cpu0;
    c->depth--;
    return 0;
}

size_t mt_counters_region_depth(const struct mt_counters *c)
{
    return c->depth;
}

const char *mt_counters_region_path(const struct mt_counters *c)
{
    return c->depth ? c->stack[c->depth - 1].node->path : "";
}

/* Public counters with values: available ones take vals[i], the rest keep reason. */
static void fill_counters(const struct mt_counters *c, const int64_t *vals, struct mt_counter *out)
{
    for (size_t i = 0; i < c->n; i++) {
        out[i] = c->ctr[i].pub;
        out[i].value = out[i].available ? vals[i] : 0;
    }
}

static int visit(const struct mt_counters *c, const struct mt_region_node *nd,
                 mt_counters_region_fn cb, void *user)
{
    for (; nd; nd = nd->next_sibling) {
        struct mt_counter vals[MT_COUNTERS_MAX];
        fill_counters(c, nd->sums, vals);
        struct mt_counters_region r = {.path = nd->path,
                                       .name = nd->name,
                                       .depth = nd->depth,
                                       .calls = nd->calls,
                                       .wall_s = nd->wall_s,
                                       .cpu_s = nd->cpu_s,
                                       .ncounters = c->n,
                                       .counters = vals};
        int rc = cb(&r, user);
        if (rc == 0) rc = visit(c, nd->first_child, cb, user);
        if (rc != 0) return rc;
    }
    return 0;
}

int mt_counters_region_foreach(const struct mt_counters *c, mt_counters_region_fn cb, void *user)
{
    return visit(c, c->root->first_child, cb, user);
}

int mt_counters_read_total(struct mt_counters *c, struct mt_counters_region *out, char *err,
                           size_t errlen)
{
    double wall1 = now(CLOCK_MONOTONIC);
    double cpu1 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (check_owner(c, "read_total", err, errlen) != 0 ||
        snapshot(c, c->snap_now, err, errlen) != 0)
        return -1;
    int64_t delta[MT_COUNTERS_MAX];
    for (size_t i = 0; i < c->n; i++)
        delta[i] = c->snap_now[i] - c->snap0[i];
    fill_counters(c, delta, c->total);
    *out = (struct mt_counters_region){.path = "",
                                       .name = "",
                                       .depth = 0,
                                       .calls = 1,
                                       .wall_s = wall1 - c->wall0,
                                       .cpu_s = cpu1 - c->cpu0,
                                       .ncounters = c->n,
                                       .counters = c->total};
    return 0;
}
