/* golden_lib.c — recording and comparing golden figures (contracts in golden.h). */
#define _GNU_SOURCE
#include "golden.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include <memtrade/grow.h>
#include <memtrade/workload.h>

static void add(struct golden *g, enum golden_kind kind, uint64_t u, double d, const char *fmt,
                va_list ap)
{
    if (mt_grow(&g->figs, &g->cap, g->n + 1, sizeof *g->figs, 256)) {
        g->oom = 1;
        return;
    }
    struct golden_fig *f = &g->figs[g->n++];
    f->kind = kind, f->u = u, f->d = d;
    vsnprintf(f->key, sizeof f->key, fmt, ap);
}

void golden_exact(struct golden *g, uint64_t v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(g, GOLDEN_EXACT, v, 0.0, fmt, ap);
    va_end(ap);
}

void golden_float(struct golden *g, double v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(g, GOLDEN_FLOAT, 0, v, fmt, ap);
    va_end(ap);
}

void golden_bits(struct golden *g, uint64_t v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(g, GOLDEN_BITS, v, 0.0, fmt, ap);
    va_end(ap);
}

uint64_t golden_fnv_floats(const float *x, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        for (int k = 0; k < 4; k++) {
            h ^= (b >> (8 * k)) & 0xffu;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

void golden_floats(struct golden *g, const char *prefix, const float *x, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    golden_bits(g, golden_fnv_floats(x, n), "%s.fnv", prefix);
    golden_float(g, sum, "%s.sum", prefix);
    for (size_t k = 0; k < 8 && n; k++) {
        size_t i = (size_t)((double)k * (double)(n - 1) / 7.0);
        golden_float(g, x[i], "%s[%zu]", prefix, i);
    }
}

/* The oneDNN ISA and the CPU flags that pick this project's own vector kernels. */
const char *golden_isa(void)
{
    static char isa[256];
    if (isa[0]) return isa;
    static const struct {
        unsigned v;
        const char *name;
    } names[] = {{0x1, "sse41"},
                 {0x3, "avx"},
                 {0x7, "avx2"},
                 {0x27, "avx512_core"},
                 {0x67, "avx512_core_vnni"},
                 {0xe7, "avx512_core_bf16"},
                 {0x3e7, "avx512_core_amx"},
                 {0x407, "avx2_vnni"}};
    unsigned v = (unsigned)dnnl_get_effective_cpu_isa();
    const char *name = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].v == v) name = names[i].name;
    size_t k = name ? (size_t)snprintf(isa, sizeof isa, "onednn:%s", name)
                    : (size_t)snprintf(isa, sizeof isa, "onednn:0x%x", v);
    static const char *const flags[] = {"avx2",        "fma",         "avx512f",     "avx512bw",
                                        "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16"};
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = !strncmp(line, "flags", 5);
    if (f) fclose(f);
    for (size_t i = 0; found && i < sizeof flags / sizeof flags[0] && k < sizeof isa; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, " %s", flags[i]);
        const char *p = strstr(line, pat);
        size_t len = strlen(pat);
        if (p && (p[len] == ' ' || p[len] == '\n'))
            k += (size_t)snprintf(isa + k, sizeof isa - k, ",%s", flags[i]);
    }
    return isa;
}

/* ------------------------------------------------------------------ plugins */

int golden_keep_metric(const char *name, const char *unit, int *exact)
{
    /* Results of a timing, the kernel's or glibc's view of memory, and counters of
     * which kernel ran (they follow the CPU's ISA, not the model, and the serving
     * measurement's passes, whose number follows its time) are not figures. */
    static const char *const skip[] = {
        "rss",           "fragmentation", "heap_free",   "recompute_",    "bf16_gemm", "matmul_",
        "gemv",          "path",          "fallback",    "dense_calls",   "kernel",    "_calls_avx",
        "sparse_calls_", "qgemm_calls_",  "reference_s", "grad_underflow"};
    static const char *const exact_units[] = {"bytes", "count"};
    static const char *const float_units[] = {"nats/byte", "bits/byte", "ratio"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strstr(name, skip[i])) return 0;
    for (size_t i = 0; i < sizeof exact_units / sizeof exact_units[0]; i++)
        if (!strcmp(unit, exact_units[i])) return *exact = 1;
    for (size_t i = 0; i < sizeof float_units / sizeof float_units[0]; i++)
        if (!strcmp(unit, float_units[i])) return *exact = 0, 1;
    return 0;
}

struct sample_sink {
    struct golden *g;
    const char *prefix;
};

static int has_key(const struct golden *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->figs[i].key, key)) return 1;
    return 0;
}

/* A series reported twice in one run (distill: the teacher's training, then the
 * student's) keeps both: the second pass is keyed <series>@2[x]. */
static void on_sample(void *user, const char *series, double x, double y)
{
    struct sample_sink *s = user;
    char key[112];
    snprintf(key, sizeof key, "%s.%s[%.0f]", s->prefix, series, x);
    for (int pass = 2; has_key(s->g, key) && pass < 100; pass++)
        snprintf(key, sizeof key, "%s.%s@%d[%.0f]", s->prefix, series, pass, x);
    golden_float(s->g, y, "%s", key);
}

int golden_run_plugin(struct golden *g, const char *prefix, const char *so, const char **ov,
                      size_t n_ov, int threads, int rank, int nranks, const char *tmpdir)
{
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    const struct mt_workload *wl = h ? dlsym(h, MEMTRADE_WORKLOAD_SYMBOL) : NULL;
    if (!wl) {
        fprintf(stderr, "golden: cannot load %s: %s\n", so, dlerror());
        return -1;
    }
    static struct fake_ctx f; /* large; one run at a time */
    fake_ctx_init(&f, wl, ov, n_ov);
    f.threads = threads, f.rank = rank, f.nranks = nranks;
    snprintf(f.cache_dir, sizeof f.cache_dir, "%s", tmpdir);
    snprintf(f.scratch_dir, sizeof f.scratch_dir, "%s", tmpdir);
    for (size_t i = 0; i < n_ov; i++) /* plugins without a corpus parameter read the ctx's */
        if (!strncmp(ov[i], "corpus=", 7)) f.corpus = ov[i] + 7;
    struct sample_sink sink = {g, prefix};
    f.on_sample = on_sample, f.sample_user = &sink;
    int rc = wl->run(&f.base);
    if (rc) {
        fprintf(stderr, "golden: rank %d: %s failed: %s\n", rank, wl->name, f.error);
        return -1;
    }
    for (size_t i = 0; i < f.n_metrics; i++) {
        const struct fake_metric *m = &f.metrics[i];
        int exact = 0;
        if (m->na || !golden_keep_metric(m->name, m->unit, &exact)) continue;
        if (exact)
            golden_exact(g, (uint64_t)llround(m->value), "%s.%s", prefix, m->name);
        else
            golden_float(g, m->value, "%s.%s", prefix, m->name);
    }
    /* the plugin's copies of the model code stay loaded: closing it would run oneDNN's
     * and OpenMP's destructors twice in some builds, and a test process ends soon */
    return 0;
}

int golden_tmpdir(char *buf, size_t n)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, n, "%s/mt-golden-XXXXXX", t && t[0] ? t : "/tmp");
    if (mkdtemp(buf)) return 0;
    fprintf(stderr, "golden: mkdtemp %s: %s\n", buf, strerror(errno));
    return -1;
}

void golden_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path)) golden_rmdir(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------------ the file */

static const char *const kind_names[] = {"exact", "float", "bits"};

/* The folder of the files made on this CPU's ISA when the main file was made on another:
 * dir/isa/<the ISA string with every character outside [A-Za-z0-9._-] as '_'>. */
static void isa_dir(char *out, size_t outlen, const char *dir)
{
    int n = snprintf(out, outlen, "%s/isa/", dir);
    size_t k = n > 0 && (size_t)n < outlen ? (size_t)n : 0;
    for (const char *c = golden_isa(); *c && k + 1 < outlen; c++)
        out[k++] = (isalnum((unsigned char)*c) || strchr("._-", *c)) ? *c : '_';
    out[k] = 0;
}

/* The ISA line of file `path` into isa ("" when the file or the line is missing). */
static void file_isa(const char *path, char *isa, size_t isalen)
{
    char line[512];
    FILE *f = fopen(path, "r");
    isa[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "isa ", 4)) {
            size_t len = strcspn(line + 4, "\n");
            if (len >= isalen) len = isalen - 1;
            memcpy(isa, line + 4, len);
            isa[len] = 0;
            break;
        }
    if (f) fclose(f);
}

/* Where case `name`'s figures are: the main file dir/name.txt when it was made on this
 * ISA or when no file of this ISA exists (for_update: when it does not exist either),
 * else isa_dir/name.txt. */
static void case_path(char *path, size_t pathlen, const char *dir, const char *name, int for_update)
{
    char main_path[4096], sub[2048], isa[256];
    snprintf(main_path, sizeof main_path, "%s/%s.txt", dir, name);
    file_isa(main_path, isa, sizeof isa);
    isa_dir(sub, sizeof sub, dir);
    snprintf(path, pathlen, "%s/%s.txt", sub, name);
    if (!isa[0] || !strcmp(isa, golden_isa())) {
        snprintf(path, pathlen, "%s", main_path);
        return;
    }
    if (for_update) {
        char parent[2048];
        snprintf(parent, sizeof parent, "%s/isa", dir);
        mkdir(parent, 0755);
        mkdir(sub, 0755);
        return;
    }
    if (access(path, R_OK)) snprintf(path, pathlen, "%s", main_path);
}

static int write_file(const struct golden *g, const char *dir, const char *name)
{
    char path[4096], tmp[4200];
    case_path(path, sizeof path, dir, name, 1);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "golden: cannot write %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    fprintf(f,
            "# golden figures of case %s (tests/golden/README.md). Written by\n"
            "# MT_GOLDEN_UPDATE=1; a redesign must reproduce the fp32 figures, not rewrite "
            "them.\n",
            name);
    fprintf(f, "isa %s\n", golden_isa());
    for (size_t i = 0; i < g->n; i++) {
        const struct golden_fig *x = &g->figs[i];
        if (x->kind == GOLDEN_EXACT)
            fprintf(f, "exact %s %llu\n", x->key, (unsigned long long)x->u);
        else if (x->kind == GOLDEN_BITS)
            fprintf(f, "bits %s 0x%016llx\n", x->key, (unsigned long long)x->u);
        else
            fprintf(f, "float %s %a %.9g\n", x->key, x->d, x->d);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        fprintf(stderr, "golden: writing %s failed\n", path);
        unlink(tmp);
        return 1;
    }
    printf("golden: wrote %zu figures to %s (isa %s)\n", g->n, path, golden_isa());
    return 0;
}

/* Loads the file's figures into *want and its ISA into isa. */
static int read_file(struct golden *want, char *isa, size_t isalen, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "golden: cannot read %s: %s (make it with MT_GOLDEN_UPDATE=1)\n", path,
                strerror(errno));
        return -1;
    }
    char line[512], kind[16], key[160], val[64];
    int rc = 0;
    isa[0] = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!strncmp(line, "isa ", 4)) {
            line[strcspn(line, "\n")] = 0;
            size_t len = strlen(line + 4);
            if (len >= isalen) len = isalen - 1;
            memcpy(isa, line + 4, len);
            isa[len] = 0;
            continue;
        }
        if (sscanf(line, "%15s %159s %63s", kind, key, val) != 3) {
            fprintf(stderr, "golden: %s: bad line: %s", path, line);
            rc = -1;
            continue;
        }
        if (!strcmp(kind, "exact"))
            golden_exact(want, strtoull(val, NULL, 10), "%s", key);
        else if (!strcmp(kind, "bits"))
            golden_bits(want, strtoull(val, NULL, 16), "%s", key);
        else if (!strcmp(kind, "float"))
            golden_float(want, strtod(val, NULL), "%s", key);
        else {
            fprintf(stderr, "golden: %s: unknown kind: %s", path, line);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static const struct golden_fig *find(const struct golden *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->figs[i].key, key)) return &g->figs[i];
    return NULL;
}

int golden_finish(struct golden *g, const char *dir, const char *name, int force_tolerance)
{
    int bad = 0;
    for (size_t i = 0; i < g->n && !bad; i++) /* a repeated key would hide a figure */
        for (size_t j = 0; j < i && !bad; j++)
            if (!strcmp(g->figs[i].key, g->figs[j].key))
                fprintf(stderr, "golden: %s: figure %s recorded twice\n", name, g->figs[i].key),
                    bad = 1;
    if (bad) {
    } else if (g->oom) {
        fprintf(stderr, "golden: out of memory recording figures\n");
        bad = 1;
    } else if (getenv("MT_GOLDEN_UPDATE") && !strcmp(getenv("MT_GOLDEN_UPDATE"), "1")) {
        bad = write_file(g, dir, name);
    } else {
        struct golden want = {0};
        char path[4096], isa[256];
        case_path(path, sizeof path, dir, name, 0);
        const char *rt = getenv("MT_GOLDEN_RTOL");
        double rtol = rt && rt[0] ? strtod(rt, NULL) : 1e-4;
        if (read_file(&want, isa, sizeof isa, path)) bad = 1;
        /* A file of this ISA holds the figures that differ from the main file's; a figure
         * it lacks (one added after it was made) is compared with the main file's, with
         * tolerance, as on any other ISA. */
        struct golden base = {0};
        char main_path[4096], base_isa[256];
        snprintf(main_path, sizeof main_path, "%s/%s.txt", dir, name);
        if (!bad && strcmp(main_path, path) &&
            read_file(&base, base_isa, sizeof base_isa, main_path))
            bad = 1;
        int unreadable = bad;
        int same_isa = !strcmp(isa, golden_isa()) && !force_tolerance;
        size_t n_exact = 0, n_bits = 0, n_float = 0, n_skipped = 0, n_tol = 0;
        if (!bad && !same_isa)
            printf("golden: %s: %s; floats are compared with relative tolerance %g and "
                   "checksums of float bits are NOT compared\n",
                   name,
                   force_tolerance ? "this build's floats are known to differ (sanitizers)"
                                   : "the CPU's ISA differs from the file's",
                   rtol);
        if (!bad && !same_isa)
            printf("golden:   file isa %s\ngolden:   this isa %s\n", isa, golden_isa());
        for (size_t i = 0; !unreadable && i < g->n; i++) {
            const struct golden_fig *x = &g->figs[i], *w = find(&want, x->key);
            int fig_same_isa = same_isa;
            if (!w && base.n) {
                w = find(&base, x->key);
                fig_same_isa = 0;
            }
            if (!w || w->kind != x->kind) {
                fprintf(stderr, "golden: %s: %s %s is not in %s (new figure?)\n", name,
                        kind_names[x->kind], x->key, path);
                bad++;
                continue;
            }
            if (x->kind == GOLDEN_EXACT) {
                n_exact++;
                if (x->u != w->u)
                    fprintf(stderr, "golden: %s: %s is %llu, golden %llu\n", name, x->key,
                            (unsigned long long)x->u, (unsigned long long)w->u),
                        bad++;
            } else if (x->kind == GOLDEN_BITS) {
                if (!fig_same_isa) {
                    n_skipped++;
                    continue;
                }
                n_bits++;
                if (x->u != w->u)
                    fprintf(stderr, "golden: %s: %s is 0x%016llx, golden 0x%016llx\n", name, x->key,
                            (unsigned long long)x->u, (unsigned long long)w->u),
                        bad++;
            } else if (fig_same_isa) {
                n_float++;
                if (memcmp(&x->d, &w->d, sizeof x->d) && !(isnan(x->d) && isnan(w->d)))
                    fprintf(stderr,
                            "golden: %s: %s is %.9g (%a), golden %.9g (%a): not bit-equal\n", name,
                            x->key, x->d, x->d, w->d, w->d),
                        bad++;
            } else {
                n_tol++;
                double scale = fmax(fabs(x->d), fabs(w->d));
                if (!(fabs(x->d - w->d) <= rtol * scale))
                    fprintf(stderr,
                            "golden: %s: %s is %.9g, golden %.9g: relative error %.3g > %g\n", name,
                            x->key, x->d, w->d, fabs(x->d - w->d) / scale, rtol),
                        bad++;
            }
        }
        for (size_t i = 0; !unreadable && i < want.n; i++)
            if (!find(g, want.figs[i].key))
                fprintf(stderr, "golden: %s: golden figure %s was not produced\n", name,
                        want.figs[i].key),
                    bad++;
        printf("golden: %s: %zu exact, %zu float bit-equal, %zu float within %g, %zu checksums "
               "equal, %zu checksums not compared (isa %s): %s\n",
               name, n_exact, n_float, n_tol, rtol, n_bits, n_skipped, golden_isa(),
               bad ? "FAILED" : "ok");
        free(want.figs);
        free(base.figs);
    }
    free(g->figs);
    memset(g, 0, sizeof *g);
    return bad != 0;
}
