/* heapreport.c — the reader of heap profiler reports (see heapreport.h and FORMAT.md).
 *
 * What it is for: strict line-by-line parsing with line numbers in errors, tolerant only
 * of a truncated last line. What it is not for: storing anything; the caller's callbacks
 * decide what to keep.
 */
#define _GNU_SOURCE
#include "heapreport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FIELDS = 512 };

struct reader {
    const char *path;
    size_t lineno;
    char *err;
    size_t errlen;
    struct mt_heapreport_summary sum;
    char *mode, *exe, *catbuf;
    const char *cat_names[MT_HEAPREPORT_MAX_CATS];
    uint64_t max_frame, max_stack;
    int ended;
};

const char *const mt_heapreport_device_kinds[MT_HEAPREPORT_DEVICE_KINDS] = {"device", "vmm",
                                                                           "managed", "pinned"};

static int fail(struct reader *r, const char *fmt, ...)
{
    if (r->errlen) {
        int k = snprintf(r->err, r->errlen, "%s:%zu: ", r->path, r->lineno);
        if (k >= 0 && (size_t)k < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* Undoes the writer's escapes in place; returns -1 on an unknown escape. */
static int unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (*s != '\\') {
            *d++ = *s;
            continue;
        }
        switch (*++s) {
        case '\\':
            *d++ = '\\';
            break;
        case 't':
            *d++ = '\t';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        default:
            return -1;
        }
    }
    *d = '\0';
    return 0;
}

static int to_ll(const char *s, long long *out)
{
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int to_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int to_double(const char *s, double *out)
{
    if (!*s) return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end) return -1;
    *out = v;
    return 0;
}

static const char *opt(const char *s)
{
    return *s ? s : NULL;
}

#define NEED(cond, ...)                                                                            \
    do {                                                                                           \
        if (!(cond)) return fail(r, __VA_ARGS__);                                                  \
    } while (0)

static int meta(struct reader *r, char **f, size_t n)
{
    NEED(n == 3, "M needs a key and a value");
    const char *k = f[1], *v = f[2];
    long long x;
    if (!strcmp(k, "mode")) {
        NEED(!strcmp(v, "full") || !strcmp(v, "sampled"), "bad mode '%s'", v);
        free(r->mode);
        r->mode = strdup(v);
    } else if (!strcmp(k, "exe")) {
        free(r->exe);
        r->exe = strdup(v);
    } else if (!strcmp(k, "start_unix")) {
        NEED(to_double(v, &r->sum.start_unix) == 0, "bad start_unix");
    } else if (!strcmp(k, "categories")) {
        NEED(r->sum.ncat == 0, "categories given twice");
        free(r->catbuf);
        r->catbuf = strdup(v);
        size_t c = 0;
        for (char *s = r->catbuf, *tok; (tok = strsep(&s, ","));) {
            NEED(*tok && c < MT_HEAPREPORT_MAX_CATS, "bad category list");
            r->cat_names[c++] = tok;
        }
        r->sum.ncat = c;
    } else if (!strcmp(k, "device_kinds")) {
        NEED(!strcmp(v, "device,vmm,managed,pinned"),
             "device kinds '%s', this reader knows device,vmm,managed,pinned", v);
    } else if (!strcmp(k, "forked") || !strcmp(k, "device")) {
        NEED(to_ll(v, &x) == 0, "bad integer for %s", k);
        if (!strcmp(k, "device"))
            r->sum.device = x != 0;
        else
            r->sum.forked = x != 0;
    } else if (!strcmp(k, "pid") || !strcmp(k, "ppid") || !strcmp(k, "sample_bytes") ||
               !strcmp(k, "seed") || !strcmp(k, "interval_ms")) {
        NEED(to_ll(v, &x) == 0, "bad integer for %s", k);
        if (!strcmp(k, "pid"))
            r->sum.pid = x;
        else if (!strcmp(k, "ppid"))
            r->sum.ppid = x;
        else if (!strcmp(k, "sample_bytes"))
            r->sum.sample_bytes = x;
        else if (!strcmp(k, "seed"))
            r->sum.seed = x;
        else
            r->sum.interval_ms = x;
    } /* unknown keys: written by a newer minor version, ignored */
    return 0;
}

static int summary_line(struct reader *r, char **f, size_t n)
{
    NEED(n == 3, "S needs a key and a value");
    const char *k = f[1];
    struct {
        const char *key;
        long long *dst;
    } ints[] = {{"allocs", &r->sum.allocs},
                {"bytes", &r->sum.bytes},
                {"peak_bytes", &r->sum.peak_bytes},
                {"leaked_bytes", &r->sum.leaked_bytes},
                {"leaked_allocs", &r->sum.leaked_allocs},
                {"sites", &r->sum.sites},
                {"regions_dropped", &r->sum.regions_dropped},
                {"device_peak_bytes", &r->sum.device_peak_bytes},
                {"device_mapped_peak_bytes", &r->sum.device_mapped_peak_bytes},
                {"device_unwrapped", &r->sum.device_unwrapped}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].key)) {
            NEED(to_ll(f[2], ints[i].dst) == 0, "bad integer for %s", k);
            return 0;
        }
    if (!strcmp(k, "peak_t"))
        NEED(to_double(f[2], &r->sum.peak_t) == 0, "bad peak_t");
    else if (!strcmp(k, "wall_s"))
        NEED(to_double(f[2], &r->sum.wall_s) == 0, "bad wall_s");
    else if (!strcmp(k, "device_peak_t"))
        NEED(to_double(f[2], &r->sum.device_peak_t) == 0, "bad device_peak_t");
    return 0;
}

static int category_name_ok(struct reader *r, const char *name)
{
    for (size_t i = 0; i < r->sum.ncat; i++)
        if (!strcmp(r->cat_names[i], name)) return 1;
    return 0;
}

static int device_kind_ok(const char *name)
{
    for (size_t i = 0; i < MT_HEAPREPORT_DEVICE_KINDS; i++)
        if (!strcmp(mt_heapreport_device_kinds[i], name)) return 1;
    return 0;
}

/* Parses n non-negative counters from f into v. */
static int counters(char **f, size_t n, long long *const *v)
{
    for (size_t i = 0; i < n; i++)
        if (to_ll(f[i], v[i]) != 0 || *v[i] < 0) return -1;
    return 0;
}

/* G, H, D, V: device memory (only in a report with `M device 1`). */
static int device_record(struct reader *r, char **f, size_t n, const struct mt_heapreport_cb *cb,
                         void *user)
{
    NEED(r->sum.device, "device record '%s' in a report without `M device 1`", f[0]);
    switch (f[0][0]) {
    case 'V': {
        NEED(n == 2 + MT_HEAPREPORT_DEVICE_KINDS, "V needs %d fields, has %zu",
             2 + MT_HEAPREPORT_DEVICE_KINDS, n);
        long long live[MT_HEAPREPORT_DEVICE_KINDS];
        struct mt_heapreport_device_sample p = {.live = live};
        NEED(to_double(f[1], &p.t) == 0, "bad time");
        for (size_t i = 0; i < MT_HEAPREPORT_DEVICE_KINDS; i++)
            NEED(to_ll(f[2 + i], &live[i]) == 0, "bad live bytes for device kind %zu", i);
        return cb->device_sample ? cb->device_sample(&p, user) : 0;
    }
    case 'G': {
        NEED(n == 9, "G needs 9 fields, has %zu", n);
        NEED(device_kind_ok(f[1]), "unknown device kind '%s'", f[1]);
        struct mt_heapreport_device_kind k = {.kind = f[1]};
        long long *const v[] = {&k.allocs, &k.frees, &k.bytes,        &k.live,
                                &k.peak,   &k.failed, &k.unknown_frees};
        NEED(counters(f + 2, 7, v) == 0, "bad counter in G");
        return cb->device_kind ? cb->device_kind(&k, user) : 0;
    }
    case 'H': {
        NEED(n == 8, "H needs 8 fields, has %zu", n);
        NEED(device_kind_ok(f[1]) || !strcmp(f[1], "gpu"), "unknown device kind '%s'", f[1]);
        NEED(category_name_ok(r, f[2]), "unknown category '%s'", f[2]);
        struct mt_heapreport_device_category c = {.kind = f[1], .category = f[2]};
        long long *const v[] = {&c.allocs, &c.frees, &c.bytes, &c.live, &c.peak};
        NEED(counters(f + 3, 5, v) == 0, "bad counter in H");
        return cb->device_category ? cb->device_category(&c, user) : 0;
    }
    default: { /* 'D' */
        NEED(n == 9, "D needs 9 fields, has %zu", n);
        struct mt_heapreport_site site = {.category = f[3]};
        NEED(to_u64(f[1], &site.stack_id) == 0 && site.stack_id >= 1 &&
                 site.stack_id <= r->max_stack,
             "device site names unknown stack '%s'", f[1]);
        NEED(device_kind_ok(f[2]), "unknown device kind '%s'", f[2]);
        NEED(category_name_ok(r, f[3]), "unknown category '%s'", f[3]);
        long long *const v[] = {&site.allocs, &site.bytes, &site.peak_bytes, &site.leaked_bytes,
                                &site.leaked_allocs};
        NEED(counters(f + 4, 5, v) == 0, "bad counter in D");
        struct mt_heapreport_device_site s = {.kind = f[2], .site = &site};
        return cb->device_site ? cb->device_site(&s, user) : 0;
    }
    }
}

static int record(struct reader *r, char **f, size_t n, const struct mt_heapreport_cb *cb,
                  void *user)
{
    NEED(strlen(f[0]) == 1, "unknown record type '%s'", f[0]);
    NEED(!r->ended, "data after the end marker");
    char t = f[0][0];
    switch (t) {
    case 'M':
        return meta(r, f, n);
    case 'S':
        return summary_line(r, f, n);
    case 'V':
    case 'G':
    case 'H':
    case 'D':
        return device_record(r, f, n, cb, user);
    case 'E':
        NEED(n == 1, "E takes no fields");
        r->ended = 1;
        return 0;
    case 'T': {
        NEED(r->sum.ncat > 0, "timeline point before the category list");
        NEED(n == 5 + r->sum.ncat, "T needs %zu fields, has %zu", 5 + r->sum.ncat, n);
        long long live[MT_HEAPREPORT_MAX_CATS];
        struct mt_heapreport_sample p = {.region = opt(f[3]), .live = live, .ncat = r->sum.ncat};
        NEED(to_double(f[1], &p.t) == 0, "bad time");
        NEED(to_ll(f[2], &p.rss_bytes) == 0, "bad rss");
        NEED(to_ll(f[4], &p.live_total) == 0, "bad live total");
        for (size_t i = 0; i < r->sum.ncat; i++)
            NEED(to_ll(f[5 + i], &live[i]) == 0, "bad live bytes for category %zu", i);
        return cb->sample ? cb->sample(&p, user) : 0;
    }
    case 'R': {
        NEED(r->sum.ncat > 0, "region peaks before the category list");
        NEED(n == 3 + r->sum.ncat, "R needs %zu fields, has %zu", 3 + r->sum.ncat, n);
        NEED(*f[1], "region without a name");
        long long peak[MT_HEAPREPORT_MAX_CATS];
        struct mt_heapreport_region g = {.name = f[1], .peak = peak, .ncat = r->sum.ncat};
        NEED(to_ll(f[2], &g.peak_total) == 0 && g.peak_total >= 0, "bad region peak");
        for (size_t i = 0; i < r->sum.ncat; i++)
            NEED(to_ll(f[3 + i], &peak[i]) == 0 && peak[i] >= 0, "bad region peak for category %zu",
                 i);
        return cb->region ? cb->region(&g, user) : 0;
    }
    case 'C': {
        NEED(n == 7, "C needs 7 fields, has %zu", n);
        NEED(category_name_ok(r, f[1]), "unknown category '%s'", f[1]);
        struct mt_heapreport_category c = {.name = f[1]};
        long long *v[] = {&c.allocs, &c.frees, &c.bytes, &c.live, &c.peak};
        for (size_t i = 0; i < 5; i++)
            NEED(to_ll(f[2 + i], v[i]) == 0, "bad counter in C");
        return cb->category ? cb->category(&c, user) : 0;
    }
    case 'F': {
        NEED(n == 8, "F needs 8 fields, has %zu", n);
        struct mt_heapreport_frame fr = {
            .function = opt(f[3]), .module = opt(f[4]), .file = opt(f[5]), .build_id = opt(f[7])};
        long long line;
        NEED(to_u64(f[1], &fr.id) == 0 && fr.id == r->max_frame + 1, "bad frame id '%s'", f[1]);
        NEED(to_u64(f[2], &fr.ip) == 0, "bad ip '%s'", f[2]);
        NEED(to_ll(f[6], &line) == 0 && line >= 0, "bad line '%s'", f[6]);
        fr.line = (long)line;
        r->max_frame = fr.id;
        return cb->frame ? cb->frame(&fr, user) : 0;
    }
    case 'K': {
        NEED(n >= 2, "K needs a stack id");
        uint64_t frames[MAX_FIELDS];
        struct mt_heapreport_stack s = {.frames = frames, .depth = n - 2};
        NEED(to_u64(f[1], &s.id) == 0 && s.id == r->max_stack + 1, "bad stack id '%s'", f[1]);
        for (size_t i = 2; i < n; i++)
            NEED(to_u64(f[i], &frames[i - 2]) == 0 && frames[i - 2] >= 1 &&
                     frames[i - 2] <= r->max_frame,
                 "stack %s names unknown frame '%s'", f[1], f[i]);
        r->max_stack = s.id;
        return cb->stack ? cb->stack(&s, user) : 0;
    }
    case 'A': {
        NEED(n == 10, "A needs 10 fields, has %zu", n);
        struct mt_heapreport_site s = {.category = f[2]};
        NEED(to_u64(f[1], &s.stack_id) == 0 && s.stack_id >= 1 && s.stack_id <= r->max_stack,
             "site names unknown stack '%s'", f[1]);
        NEED(category_name_ok(r, f[2]), "unknown category '%s'", f[2]);
        long long *v[] = {&s.allocs,    &s.bytes,        &s.peak_bytes,
                          &s.temporary, &s.leaked_bytes, &s.leaked_allocs};
        for (size_t i = 0; i < 6; i++)
            NEED(to_ll(f[3 + i], v[i]) == 0 && *v[i] >= 0, "bad counter in A");
        long long est;
        NEED(to_ll(f[9], &est) == 0 && (est == 0 || est == 1), "bad estimated flag");
        s.estimated = (int)est;
        return cb->site ? cb->site(&s, user) : 0;
    }
    case 'N': {
        NEED(n == 4, "N needs 4 fields, has %zu", n);
        NEED(*f[1], "tensor without a name");
        NEED(category_name_ok(r, f[2]), "unknown category '%s'", f[2]);
        struct mt_heapreport_tensor tn = {.name = f[1], .category = f[2]};
        NEED(to_ll(f[3], &tn.bytes) == 0 && tn.bytes >= 0, "bad tensor bytes");
        return cb->tensor ? cb->tensor(&tn, user) : 0;
    }
    default:
        return fail(r, "unknown record type '%s'", f[0]);
    }
}

static int read_lines(struct reader *r, FILE *fp, const struct mt_heapreport_cb *cb, void *user)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    char **f = malloc(MAX_FIELDS * sizeof *f);
    int rc = 0;
    if (!f) return fail(r, "out of memory");
    while ((len = getline(&line, &cap, fp)) >= 0) {
        r->lineno++;
        if (len == 0 || line[len - 1] != '\n')
            break; /* truncated last line: the process died while writing it */
        line[len - 1] = '\0';
        if (memchr(line, '\0', (size_t)len - 1)) {
            rc = fail(r, "NUL byte in line");
            break;
        }
        size_t n = 0;
        for (char *s = line, *tok; (tok = strsep(&s, "\t"));) {
            if (n == MAX_FIELDS) {
                rc = fail(r, "too many fields");
                goto out;
            }
            if (unescape(tok) != 0) {
                rc = fail(r, "bad escape in field %zu", n + 1);
                goto out;
            }
            f[n++] = tok;
        }
        if (r->lineno == 1) {
            long long v;
            if (n != 2 || strcmp(f[0], "memtrade-heap") || to_ll(f[1], &v) != 0) {
                rc = fail(r, "not a memtrade heap report");
                break;
            }
            if (v != MT_HEAPREPORT_VERSION) {
                rc = fail(r, "report version %lld, this reader knows %d", v, MT_HEAPREPORT_VERSION);
                break;
            }
            r->sum.version = (int)v;
            continue;
        }
        if ((rc = record(r, f, n, cb, user)) != 0) {
            if (rc != -1 && r->errlen)
                snprintf(r->err, r->errlen, "%s:%zu: stopped by callback", r->path, r->lineno);
            break;
        }
    }
    if (rc == 0 && ferror(fp)) rc = fail(r, "read error: %s", strerror(errno));
    if (rc == 0 && r->sum.version == 0) rc = fail(r, "empty file, not a memtrade heap report");
out:
    free(f);
    free(line);
    return rc;
}

int mt_heapreport_read(const char *path, const struct mt_heapreport_cb *cb, void *user, char *err,
                       size_t errlen)
{
    struct reader r = {.path = path, .err = err, .errlen = errlen};
    static const struct mt_heapreport_cb none;
    if (!cb) cb = &none;
    if (errlen) err[0] = '\0';
    long long *unset[] = {&r.sum.pid,           &r.sum.ppid,       &r.sum.allocs,
                          &r.sum.bytes,         &r.sum.peak_bytes, &r.sum.leaked_bytes,
                          &r.sum.leaked_allocs, &r.sum.sites,      &r.sum.regions_dropped,
                          &r.sum.device_peak_bytes, &r.sum.device_mapped_peak_bytes,
                          &r.sum.device_unwrapped};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        *unset[i] = -1;
    r.sum.peak_t = r.sum.wall_s = r.sum.device_peak_t = -1;
    FILE *fp = fopen(path, "re");
    if (!fp) return fail(&r, "cannot open: %s", strerror(errno));
    int rc = read_lines(&r, fp, cb, user);
    fclose(fp);
    if (rc == 0) {
        r.sum.complete = r.ended;
        r.sum.mode = r.mode ? r.mode : "full";
        r.sum.exe = r.exe ? r.exe : "";
        r.sum.cat_names = r.cat_names;
        if (!r.ended) {
            long long *tot[] = {&r.sum.allocs,         &r.sum.bytes,         &r.sum.peak_bytes,
                                &r.sum.leaked_bytes,   &r.sum.leaked_allocs, &r.sum.sites,
                                &r.sum.regions_dropped, &r.sum.device_peak_bytes,
                                &r.sum.device_mapped_peak_bytes, &r.sum.device_unwrapped};
            for (size_t i = 0; i < sizeof tot / sizeof tot[0]; i++)
                *tot[i] = -1;
            r.sum.peak_t = r.sum.wall_s = r.sum.device_peak_t = -1;
        }
        if (cb->summary) rc = cb->summary(&r.sum, user);
        if (rc != 0 && errlen) snprintf(err, errlen, "%s: stopped by callback", path);
    }
    free(r.mode);
    free(r.exe);
    free(r.catbuf);
    return rc;
}
