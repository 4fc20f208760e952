/* parse_test.c — tests of the heap report reader on hand-written files.
 *
 * What it is for: a complete report with every record type and escaped strings must
 * deliver exactly its values; a truncated last line (a crash) must be accepted with
 * complete = 0; garbage, a newer version, a bad escape, a stack naming an unknown frame
 * or a short record must be refused with the right line number. Region peaks (R lines) are
 * delivered exactly, and a report from before them (no R, no regions_dropped) still reads. Needs no
 * preload, so it also runs in ASan builds. Usage: heap_parse_test SCRATCH_DIR. What it is not for:
 * the interposer (check_heap.c covers real reports).
 */
#include "heap_test.h"
#include "heapreport.h"

#include <stdio.h>
#include <string.h>

static const char *dir;

static const char *write_file(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return path;
    fputs(text, f);
    fclose(f);
    return path;
}

#define HEADER                                                                                     \
    "memtrade-heap\t1\n"                                                                           \
    "M\tpid\t42\nM\tppid\t1\nM\tmode\tfull\nM\tsample_bytes\t0\nM\tseed\t1\n"                      \
    "M\tinterval_ms\t10\nM\texe\t/bin/x\nM\tstart_unix\t1.5\n"                                     \
    "M\tcategories\tother,weights\n"

static const char good[] =
    HEADER "T\t0.010000\t4096\tforward\t300\t100\t200\n"
           "T\t0.020000\t-1\t\t0\t0\t0\n"
           "C\tother\t3\t2\t300\t100\t250\n"
           "C\tweights\t1\t0\t200\t200\t200\n"
           "S\tallocs\t4\nS\tbytes\t500\nS\tpeak_bytes\t450\nS\tleaked_bytes\t300\n"
           "S\tleaked_allocs\t2\nS\tsites\t2\nS\tpeak_t\t0.015000\nS\twall_s\t0.030000\n"
           "F\t1\t0x401000\tf\\tg\tmod\\\\x\tfile.c\t12\tabcd\n"
           "F\t2\t0x402000\t\t\t\t0\t\n"
           "K\t1\t1\t2\n"
           "K\t2\n"
           "A\t1\tweights\t1\t200\t200\t0\t200\t1\t0\n"
           "A\t2\tother\t3\t300\t250\t1\t100\t1\t0\n"
           "N\twte\tweights\t64\n"
           "E\n";

/* The same run with region peaks: what the interposer writes since R lines exist. */
static const char with_regions[] = HEADER "C\tother\t3\t2\t300\t100\t250\n"
                                          "R\tinfer\t450\t250\t200\n"
                                          "R\ttrain/st\\tep\t120\t20\t100\n"
                                          "S\tpeak_bytes\t450\nS\tregions_dropped\t3\n"
                                          "E\n";

struct seen {
    int summaries, cats, samples, frames, stacks, sites, tensors;
    struct mt_heapreport_summary sum;
    char f1_function[32], f1_module[32], region0[32];
    int f2_nulls;
    size_t k1_depth, k2_depth;
    long long site2_peak, sample0_w, tensor_bytes;
    int regions;
    char region2[32];
    long long region1[3], region2_peak[3]; /* total, other, weights */
};

static int on_summary(const struct mt_heapreport_summary *s, void *u)
{
    struct seen *v = u;
    v->summaries++;
    v->sum = *s;
    return 0;
}
static int on_cat(const struct mt_heapreport_category *c, void *u)
{
    (void)c;
    ((struct seen *)u)->cats++;
    return 0;
}
static int on_sample(const struct mt_heapreport_sample *p, void *u)
{
    struct seen *v = u;
    if (v->samples++ == 0) {
        snprintf(v->region0, sizeof v->region0, "%s", p->region ? p->region : "(null)");
        v->sample0_w = p->ncat == 2 ? p->live[1] : -1;
    }
    return 0;
}
static int on_frame(const struct mt_heapreport_frame *f, void *u)
{
    struct seen *v = u;
    if (v->frames++ == 0) {
        snprintf(v->f1_function, sizeof v->f1_function, "%s", f->function);
        snprintf(v->f1_module, sizeof v->f1_module, "%s", f->module);
    } else {
        v->f2_nulls = !f->function && !f->module && !f->file && !f->build_id && f->line == 0;
    }
    return 0;
}
static int on_stack(const struct mt_heapreport_stack *s, void *u)
{
    struct seen *v = u;
    if (v->stacks++ == 0)
        v->k1_depth = s->depth;
    else
        v->k2_depth = s->depth;
    return 0;
}
static int on_site(const struct mt_heapreport_site *s, void *u)
{
    struct seen *v = u;
    if (v->sites++ == 1) v->site2_peak = s->peak_bytes;
    return 0;
}
static int on_tensor(const struct mt_heapreport_tensor *t, void *u)
{
    struct seen *v = u;
    v->tensors++;
    v->tensor_bytes = t->bytes;
    return 0;
}

static int on_region(const struct mt_heapreport_region *r, void *u)
{
    struct seen *v = u;
    long long *dst = v->regions++ == 0 ? v->region1 : v->region2_peak;
    if (v->regions == 2) snprintf(v->region2, sizeof v->region2, "%s", r->name);
    dst[0] = r->peak_total;
    for (size_t i = 0; i < r->ncat && i < 2; i++)
        dst[1 + i] = r->peak[i];
    return 0;
}

static const struct mt_heapreport_cb cb = {
    .summary = on_summary, .category = on_cat, .sample = on_sample, .frame = on_frame,
    .stack = on_stack,     .site = on_site,    .tensor = on_tensor, .region = on_region};

static int read_text(const char *name, const char *text, struct seen *v, char *err, size_t n)
{
    memset(v, 0, sizeof *v);
    return mt_heapreport_read(write_file(name, text), &cb, v, err, n);
}

static void expect_error(const char *name, const char *text, const char *where)
{
    struct seen v;
    char err[512];
    int rc = read_text(name, text, &v, err, sizeof err);
    CHECK(rc == -1, "%s: accepted", name);
    CHECK(strstr(err, where) != NULL, "%s: error '%s' lacks '%s'", name, err, where);
}

int main(int argc, char **argv)
{
    dir = argc > 1 ? argv[1] : ".";
    struct seen v;
    char err[512];

    int rc = read_text("good.txt", good, &v, err, sizeof err);
    CHECK(rc == 0, "good report refused: %s", err);
    CHECK(v.summaries == 1 && v.sum.complete, "summary %d complete %d", v.summaries,
          v.sum.complete);
    CHECK(v.sum.pid == 42 && v.sum.peak_bytes == 450 && v.sum.leaked_allocs == 2,
          "summary values pid %lld peak %lld", v.sum.pid, v.sum.peak_bytes);
    CHECK(v.sum.ncat == 2, "ncat %zu", v.sum.ncat);
    CHECK(v.cats == 2 && v.samples == 2 && v.frames == 2 && v.stacks == 2 && v.sites == 2 &&
              v.tensors == 1,
          "counts %d %d %d %d %d %d", v.cats, v.samples, v.frames, v.stacks, v.sites, v.tensors);
    CHECK(!strcmp(v.f1_function, "f\tg") && !strcmp(v.f1_module, "mod\\x"), "unescaping");
    CHECK(v.f2_nulls, "empty fields must come as NULL / 0");
    CHECK(v.k1_depth == 2 && v.k2_depth == 0, "stack depths %zu %zu", v.k1_depth, v.k2_depth);
    CHECK(v.site2_peak == 250 && v.tensor_bytes == 64, "site/tensor values");
    CHECK(!strcmp(v.region0, "forward") && v.sample0_w == 200, "sample values");

    CHECK(v.regions == 0 && v.sum.regions_dropped == -1, "old report: regions %d dropped %lld",
          v.regions, v.sum.regions_dropped);

    rc = read_text("regions.txt", with_regions, &v, err, sizeof err);
    CHECK(rc == 0, "report with region peaks refused: %s", err);
    CHECK(v.regions == 2 && v.sum.regions_dropped == 3, "regions %d dropped %lld", v.regions,
          v.sum.regions_dropped);
    CHECK(v.region1[0] == 450 && v.region1[1] == 250 && v.region1[2] == 200,
          "infer peaks %lld %lld %lld", v.region1[0], v.region1[1], v.region1[2]);
    CHECK(!strcmp(v.region2, "train/st\tep") && v.region2_peak[0] == 120 &&
              v.region2_peak[1] == 20 && v.region2_peak[2] == 100,
          "second region '%s' %lld", v.region2, v.region2_peak[0]);

    /* a crash: the file stops inside a timeline line */
    static const char crash[] = HEADER "T\t0.010000\t4096\t\t300\t100\t200\nT\t0.02";
    rc = read_text("crash.txt", crash, &v, err, sizeof err);
    CHECK(rc == 0, "truncated report refused: %s", err);
    CHECK(v.samples == 1 && !v.sum.complete && v.sum.peak_bytes == -1,
          "truncated: samples %d complete %d", v.samples, v.sum.complete);

    expect_error("garbage.txt", "hello world\nmore\n", "garbage.txt:1:");
    expect_error("empty.txt", "", "empty file");
    expect_error("newer.txt", "memtrade-heap\t2\n", "version 2");
    expect_error("badrec.txt", HEADER "X\t1\n", ":11: unknown record");
    expect_error("short.txt", HEADER "C\tother\t1\t2\n", ":11: C needs 7 fields");
    expect_error("escape.txt", HEADER "N\tw\\qx\tother\t1\n", ":11: bad escape");
    expect_error("frame.txt", HEADER "F\t1\t0x1\tf\tm\tx.c\t1\t\nK\t1\t1\t2\n",
                 ":12: stack 1 names unknown frame '2'");
    expect_error("num.txt", HEADER "C\tother\t1\t2\tx3\t4\t5\n", ":11: bad counter");
    expect_error("region.txt", HEADER "R\tinfer\t1\t2\n", ":11: R needs 5 fields");
    expect_error("region2.txt", HEADER "R\tinfer\t1\t2\t-3\n", ":11: bad region peak");
    expect_error("cat.txt", HEADER "N\tw\tnosuch\t1\n", ":11: unknown category");
    expect_error("after.txt", HEADER "E\nN\tw\tother\t1\n", ":12: data after the end marker");
    /* device memory lines: only under `M device 1`, known kinds, full lines */
#define DEV HEADER "M\tdevice\t1\nM\tdevice_kinds\tdevice,vmm,managed,pinned\n"
    expect_error("nodev.txt", HEADER "G\tdevice\t1\t0\t8\t8\t8\t0\t0\n",
                 ":11: device record 'G' in a report without `M device 1`");
    expect_error("kinds.txt", HEADER "M\tdevice_kinds\tdevice,gpu\n", ":11: device kinds 'device,gpu'");
    expect_error("kind.txt", DEV "G\thbm\t1\t0\t8\t8\t8\t0\t0\n", ":13: unknown device kind 'hbm'");
    expect_error("gshort.txt", DEV "G\tdevice\t1\t0\t8\t8\t8\t0\n", ":13: G needs 9 fields");
    expect_error("hneg.txt", DEV "H\tvmm\tweights\t1\t0\t8\t-8\t8\n", ":13: bad counter in H");
    expect_error("vshort.txt", DEV "V\t0.1\t1\t2\t3\n", ":13: V needs 6 fields");
    expect_error("dstack.txt", DEV "D\t1\tdevice\tother\t1\t8\t8\t0\t0\n",
                 ":13: device site names unknown stack '1'");
#undef DEV

    if (failures)
        printf("%d check(s) failed\n", failures);
    else
        printf("ok: report reader\n");
    return failures ? 1 : 0;
}
