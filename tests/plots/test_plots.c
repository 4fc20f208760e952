/* tests/plots/test_plots.c — tests of the plot generator against a synthetic database.
 *
 * What it is for: building a results database from results/schema.sql with known runs,
 * params, metrics, samples, regions and allocation sites (labels with quotes, spaces,
 * backslashes and unicode; failed and OOM runs), running mt_plot_generate, and checking
 * the data files handed to gnuplot (exact points, the hand-computed Pareto sets), the
 * images (valid PNG / well-formed SVG), the report's escaping, the empty-database and
 * missing-gnuplot messages. What it is not for: the browser check (chromium_report.sh).
 *
 * Usage: test_plots SCHEMA.sql WORKDIR CASE        (CASE: png, svg, empty, nognuplot, errors)
 *        test_plots --make-db SCHEMA.sql DB        (the synthetic database only)
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mt_check.h"
#include "plots/plot.h"
#include "store.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = 0;
        if (len) *len = (size_t)n;
    }
    return s;
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "SQL failed: %s\n%s\n", msg, sql);
        exit(2);
    }
}

/* sqlite3_vmprintf formats (%Q quotes a string); not printf-checkable. */
static void sqlf(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    exec_sql(db, sql);
    sqlite3_free(sql);
}

#define MIB 1048576.0

static sqlite3 *new_db(const char *schema_path, const char *db_path)
{
    char *schema = read_file(schema_path, NULL);
    if (!schema) {
        fprintf(stderr, "cannot read %s\n", schema_path);
        exit(2);
    }
    unlink(db_path);
    sqlite3 *db;
    if (sqlite3_open(db_path, &db) != SQLITE_OK) {
        fprintf(stderr, "cannot create %s\n", db_path);
        exit(2);
    }
    exec_sql(db, schema);
    /* what makes it a memtrade database (the store refuses a file without it) */
    exec_sql(db, "INSERT INTO meta VALUES('application', 'memtrade')");
    free(schema);
    return db;
}

/* One run with its params ("k=v;k=v") and metrics (name, value or NAN, unit). */
static void add_run(sqlite3 *db, int id, const char *workload, const char *label, int repeat,
                    const char *status, const char *params)
{
    char key[512];
    snprintf(key, sizeof key, "%s?%s", workload, params);
    for (char *p = key; *p; p++)
        if (*p == ';') *p = '&';
    sqlf(db,
         "INSERT INTO runs(id, sweep_id, workload, label, config_key, repeat, status, "
         "started_at, wall_s, facts_json) VALUES(%d, 1, %Q, %Q, %Q, %d, %Q, "
         "'2026-01-01T00:00:00Z', %d.5, '{\"cpu_model\":\"Test CPU \\\"X\\\" @ 3GHz\","
         "\"cpu_cores\":2}')",
         id, workload, label, key, repeat, status, id);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", params);
    for (char *tok = strtok(buf, ";"); tok; tok = strtok(NULL, ";")) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        sqlf(db, "INSERT INTO params VALUES(%d, %Q, %Q)", id, tok, eq + 1);
    }
}

static void metric(sqlite3 *db, int run, const char *name, double value, const char *unit)
{
    sqlf(db, "INSERT INTO metrics(run_id, rank, name, value, unit) VALUES(%d, -1, %Q, %.17g, %Q)",
         run, name, value, unit);
}

static void acc_mem(sqlite3 *db, int run, double bpb, const char *mem, double mib)
{
    metric(db, run, "val_bpb", bpb, "bits/byte");
    metric(db, run, mem, mib * MIB, "bytes");
}

/* The synthetic sweep. Serving panel (x = infer_peak MiB, y = val_bpb median):
 *   baseline 6/2.0, q8 2/2.02 (repeats 2.01, 2.03), q4g32 1.25/2.10, q2 1.0/2.6,
 *   q4g128 1.5/2.2, prune0.5 3/2.3, prune0.9 0.9/3.0
 *   Pareto: prune0.9, q2, q4g32, q8, baseline.
 * Training panel (train_peak MiB, per rank): baseline 20/2.0, lora 12/2.05,
 *   checkpoint 15/2.0, zero (2 ranks: 8 and 9 MiB, 17 in all) 9/2.1
 *   Pareto: zero, lora, checkpoint. */
static void make_db(const char *schema, const char *path)
{
    sqlite3 *db = new_db(schema, path);
    exec_sql(db, "BEGIN");
    exec_sql(db, "INSERT INTO sweeps(id, name, started_at, host, facts_json) VALUES(1, "
                 "'quick \"test\" sweep \xc3\xbc', '2026-01-01T00:00:00Z', 'testhost', "
                 "'{\"cpu_model\":\"Test CPU \\\"X\\\" @ 3GHz\",\"cpu_cores\":2}')");
    add_run(db, 1, "baseline", "fp32", 0, "ok", "d_model=64");
    acc_mem(db, 1, 2.0, "infer_peak_bytes", 6);
    metric(db, 1, "model_bytes", 4 * MIB, "bytes");
    metric(db, 1, "train_peak_bytes", 20 * MIB, "bytes");
    metric(db, 1, "train_tokens_per_s", 1000, "tokens/s");
    metric(db, 1, "eval_tokens_per_s", 5000, "tokens/s");
    sqlf(db, "INSERT INTO metrics(run_id, rank, name, value, unit, unavailable) VALUES(1, -1, "
             "'peak_rss_bytes', NULL, 'bytes', 'no /proc <here>')");
    add_run(db, 2, "quantize", "int8 \"q\"", 0, "ok", "bits=8;group=32");
    acc_mem(db, 2, 2.01, "infer_peak_bytes", 2);
    metric(db, 2, "model_bytes", 1 * MIB, "bytes");
    add_run(db, 3, "quantize", "int8 \"q\"", 1, "ok", "bits=8;group=32");
    acc_mem(db, 3, 2.03, "infer_peak_bytes", 2);
    add_run(db, 4, "quantize", "int4 \xc3\xbc\\back", 0, "ok", "bits=4;group=32");
    acc_mem(db, 4, 2.10, "infer_peak_bytes", 1.25);
    add_run(db, 5, "quantize", "it's 2-bit", 0, "ok", "bits=2;group=32");
    acc_mem(db, 5, 2.6, "infer_peak_bytes", 1.0);
    add_run(db, 6, "quantize", NULL, 0, "ok", "bits=4;group=128");
    acc_mem(db, 6, 2.2, "infer_peak_bytes", 1.5);
    add_run(db, 7, "prune", "50%\nsparse", 0, "ok", "sparsity=0.5"); /* newline -> space */
    acc_mem(db, 7, 2.3, "infer_peak_bytes", 3);
    add_run(db, 8, "prune", "90% {x}_^@", 0, "ok", "sparsity=0.9");
    acc_mem(db, 8, 3.0, "infer_peak_bytes", 0.9);
    add_run(db, 9, "lora", "rank 4", 0, "ok", "rank=4");
    acc_mem(db, 9, 2.05, "train_peak_bytes", 12);
    metric(db, 9, "train_tokens_per_s", 900, "tokens/s");
    add_run(db, 10, "checkpoint", "ckpt <every> & 2", 0, "ok", "every=2");
    acc_mem(db, 10, 2.0, "train_peak_bytes", 15);
    /* its plan and residual (harness/witness.h): measured 20 - planned 14.5 = 5.5 MiB, over
       5 % of 20 and 4 MiB: flagged */
    metric(db, 10, "plan_train_peak_bytes", 14.5 * MIB, "bytes");
    metric(db, 10, "train_unaccounted_bytes", 5.5 * MIB, "bytes");
    /* A categorical knob (student, one value with quotes): dominated on the serving panel,
       a curve with named x positions. */
    add_run(db, 16, "distill", NULL, 0, "ok", "student=tiny");
    acc_mem(db, 16, 2.5, "infer_peak_bytes", 4);
    /* its runtime status (harness/witness.h): measured 8 - planned 3 = 5 MiB is over 5 % and
       4 MiB, but the runtime terms of its class (4.75 MiB) leave a residual of 0.25: not
       flagged */
    metric(db, 16, "plan_eval_peak_bytes", 3 * MIB, "bytes");
    metric(db, 16, "eval_unaccounted_bytes", 5 * MIB, "bytes");
    metric(db, 16, "eval_runtime_bytes", 4.75 * MIB, "bytes");
    metric(db, 16, "eval_residual_bytes", 0.25 * MIB, "bytes");
    /* a run of a class never probed: its runtime is unavailable, with the reason */
    exec_sql(db, "INSERT INTO metrics(run_id, rank, name, value, unit, unavailable) VALUES(2, -1, "
                 "'infer_runtime_bytes', NULL, 'bytes', 'class quantize <q> not probed')");
    add_run(db, 17, "distill", NULL, 0, "ok", "student=small \"s\"");
    acc_mem(db, 17, 2.35, "infer_peak_bytes", 5);
    /* Two ranks: the training panel uses the largest rank's peak (9 MiB), not the sum. */
    add_run(db, 13, "zero", "zero-2", 0, "ok", "stage=2");
    exec_sql(db, "UPDATE runs SET ranks = 2 WHERE id = 13");
    acc_mem(db, 13, 2.1, "train_peak_bytes", 17);
    sqlf(db,
         "INSERT INTO metrics(run_id, rank, name, value, unit) VALUES(13, 0, "
         "'train_peak_bytes', %.17g, 'bytes'), (13, 1, 'train_peak_bytes', %.17g, 'bytes')",
         8 * MIB, 9 * MIB);
    add_run(db, 11, "quantize", "int1", 0, "failed", "bits=1;group=32");
    exec_sql(db, "UPDATE runs SET exit_code = 1, error = 'assertion \"x<1\" failed: <bad> & "
                 "''quote''' WHERE id = 11");
    add_run(db, 12, "prune", "99%", 0, "oom", "sparsity=0.99");
    exec_sql(db, "UPDATE runs SET signal = 9 WHERE id = 12");
    /* A resumed attempt of the sweep (new sweep row, same name and file) re-ran the OOM
       configuration: run 14 supersedes run 12, and the selection spans both sweep rows. */
    exec_sql(db, "UPDATE sweeps SET spec_path = 'sweeps/t.ini' WHERE id = 1");
    exec_sql(db, "INSERT INTO sweeps(id, name, spec_path, started_at) VALUES(2, "
                 "'quick \"test\" sweep \xc3\xbc', 'sweeps/t.ini', '2026-01-02T00:00:00Z')");
    add_run(db, 14, "prune", "99%", 0, "oom", "sparsity=0.99");
    exec_sql(db, "UPDATE runs SET sweep_id = 2, error = 'second attempt: out of memory' "
                 "WHERE id = 14");

    /* Timeline of run 1: weights 1 MiB flat, activations 0,2,3,0 MiB, rss, regions. */
    static const double act[] = {0, 2, 3, 0}, rss[] = {5, 8, 9, 6};
    static const char *const reg[] = {"'forward'", "'forward'", "'back \"ward\"'", "NULL"};
    for (int t = 0; t < 4; t++) {
        sqlf(db, "INSERT INTO samples VALUES(1, 0, 'heap.live.weights', %d, %.17g, %s)", t, MIB,
             reg[t]);
        sqlf(db, "INSERT INTO samples VALUES(1, 0, 'heap.live.activations', %d, %.17g, %s)", t,
             act[t] * MIB, reg[t]);
        sqlf(db, "INSERT INTO samples VALUES(1, 0, 'rss', %d, %.17g, %s)", t, rss[t] * MIB, reg[t]);
        sqlf(db, "INSERT INTO samples VALUES(12, 0, 'heap.live.other', %d, %.17g, NULL)", t,
             (t + 1) * MIB);
        /* a category that stays empty and the total: neither is a stacked layer */
        sqlf(db, "INSERT INTO samples VALUES(1, 0, 'heap.live.gradients', %d, 0, %s)", t, reg[t]);
        sqlf(db, "INSERT INTO samples VALUES(1, 0, 'heap.live', %d, %.17g, %s)", t,
             (1 + act[t]) * MIB, reg[t]);
    }
    for (int s = 0; s < 5; s++) {
        static const double loss[] = {5, 4, 3.5, 3.2, 3.0};
        sqlf(db, "INSERT INTO samples VALUES(9, 0, 'train_loss', %d, %.17g, NULL)", s, loss[s]);
        sqlf(db, "INSERT INTO samples VALUES(10, 0, 'train_loss', %d, %.17g, NULL)", s,
             loss[s] + 0.1);
        /* run 9: only the heap total (no categories); run 10: only RSS (no heap profiler) */
        sqlf(db, "INSERT INTO samples VALUES(9, 0, 'heap.live', %d, %.17g, NULL)", s,
             (s + 1) * MIB);
        sqlf(db, "INSERT INTO samples VALUES(10, 0, 'rss', %d, %.17g, NULL)", s, (10 + s) * MIB);
    }
    /* Regions of run 1 with two available counters, one of them 0 everywhere (its panel
       needs a range of its own: gnuplot warns on [0:0]), and one unavailable counter. */
    exec_sql(db, "INSERT INTO regions VALUES(1, 1, 0, 'train', 'train', 0, 1, 3.0, NULL),"
                 "(2, 1, 0, 'train/forward', 'forward', 1, 4, 1.0, NULL),"
                 "(3, 1, 0, 'train/backward', 'backward', 1, 4, 1.5, NULL),"
                 "(4, 1, 0, 'eval', 'eval', 0, 1, 0.5, NULL)");
    exec_sql(db, "INSERT INTO region_counters VALUES(1, 'page_faults', 300, NULL),"
                 "(2, 'page_faults', 100, NULL), (3, 'page_faults', 150, NULL),"
                 "(4, 'page_faults', 50, NULL), (1, 'PAPI_TOT_CYC', NULL, 'no hardware counters'),"
                 "(1, 'cpu_migrations', 0, NULL), (2, 'cpu_migrations', 0, NULL),"
                 "(3, 'cpu_migrations', 0, NULL), (4, 'cpu_migrations', 0, NULL),"
                 "(2, 'PAPI_TOT_CYC', NULL, 'no hardware counters')");
    /* Accounted vs measured (memory_check). Run 2 (serving): phase 'infer' (not the nested
       'infer/eval'), categories that peak apart (1 + 2.25 > 3 MiB total). Run 10
       (training): phase 'train' at depth 0, not 'warmup/train'; per-category accounting.
       Run 16 (serving, no 'infer'): phase 'eval', not 'decode'; 0.5 MiB untagged. Run 9:
       measured figure unavailable. Run 1: eval region without a heap counter. */
    exec_sql(db, "INSERT INTO regions VALUES(5, 2, 0, 'infer', 'infer', 0, 1, 1.0, NULL),"
                 "(6, 2, 0, 'infer/eval', 'eval', 1, 1, 0.5, NULL),"
                 "(7, 9, 0, 'train', 'train', 0, 1, 2.0, NULL),"
                 "(8, 10, 0, 'train', 'train', 0, 1, 2.0, NULL),"
                 "(9, 10, 0, 'warmup/train', 'train', 1, 1, 0.2, NULL),"
                 "(10, 16, 0, 'eval', 'eval', 0, 1, 0.4, NULL),"
                 "(11, 16, 0, 'decode', 'decode', 0, 1, 0.3, NULL)");
    static const struct {
        int region;
        const char *counter;
        double mib;
    } peaks[] = {{5, "", 3},
                 {5, ".weights", 1},
                 {5, ".workspace", 2.25},
                 {6, "", 2.5},
                 {8, "", 20},
                 {8, ".weights", 2},
                 {8, ".gradients", 2},
                 {8, ".optimizer", 4},
                 {8, ".activations", 6},
                 {8, ".workspace", 5},
                 {8, ".data", 1},
                 {9, "", 40},
                 {10, "", 8},
                 {10, ".weights", 1},
                 {10, ".activations", 2},
                 {10, ".workspace", 3.5},
                 {10, ".data", 1},
                 {11, "", 9}};
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++)
        sqlf(db, "INSERT INTO region_counters VALUES(%d, 'heap_peak_bytes%s', %.17g, NULL)",
             peaks[i].region, peaks[i].counter, peaks[i].mib * MIB);
    exec_sql(db, "INSERT INTO region_counters VALUES(7, 'heap_peak_bytes', NULL, "
                 "'heap profiler off <MEMTRADE_HEAP=0>')");
    static const char *const acc_cats[] = {"weights", "gradients", "optimizer", "activations"};
    static const double acc_mib[] = {2, 2, 4, 7};
    for (size_t i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "train_peak_%s_bytes", acc_cats[i]);
        metric(db, 10, name, acc_mib[i] * MIB, "bytes");
    }
    /* Allocation sites of run 1. */
    exec_sql(
        db,
        "INSERT INTO frames VALUES(1, 'malloc', '/lib/x86_64-linux-gnu/libc.so.6', NULL, 0, NULL),"
        "(2, 'tf_alloc_weights', 'libmt_transformer.so', '/src/transformer/model.c', 42, NULL),"
        "(3, 'main', 'memtrade', 'main.c', 10, NULL),"
        "(4, NULL, '/usr/lib/libfoo.so', NULL, NULL, NULL),"
        "(5, 'attn_\"scratch\"<T>', 'libmt_transformer.so', 'attn.c', 7, NULL)");
    exec_sql(db, "INSERT INTO stacks VALUES(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')");
    exec_sql(db, "INSERT INTO stack_frames VALUES(1, 0, 1), (1, 1, 2), (1, 2, 3), (2, 0, 1),"
                 "(2, 1, 5), (3, 0, 4), (4, 0, 3)");
    sqlf(db,
         "INSERT INTO alloc_sites VALUES(1, 0, 1, 'weights', 10, %.0f, %.0f, 0, 0, 0, 0),"
         "(1, 0, 2, 'activations', 50, %.0f, %.0f, 3, 0, 0, 0),"
         "(1, 0, 3, 'workspace', 2, %.0f, %.0f, 0, 0, 0, 0),"
         "(1, 0, 4, 'other', 2, 100, 0, 0, 100, 1, 0)",
         MIB, MIB, 8 * MIB, 3 * MIB, MIB, 0.5 * MIB);
    exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

/* ---- file checks -------------------------------------------------------------------- */

static int file_exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void check_png(const char *path)
{
    size_t len = 0;
    unsigned char *s = (unsigned char *)read_file(path, &len);
    CHECK(s != NULL, "%s missing", path);
    if (!s) return;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(len > 1024, "%s is only %zu bytes", path, len);
    CHECK(len > 33 && memcmp(s, sig, 8) == 0, "%s has no PNG signature", path);
    if (len > 33) {
        unsigned w = (unsigned)s[16] << 24 | s[17] << 16 | s[18] << 8 | s[19];
        unsigned h = (unsigned)s[20] << 24 | s[21] << 16 | s[22] << 8 | s[23];
        CHECK(memcmp(s + 12, "IHDR", 4) == 0 && w > 0 && h > 0, "%s: bad IHDR (%ux%u)", path, w, h);
    }
    free(s);
}

/* Well-formed enough: after the prolog the root element is <svg>, every start tag is
 * closed by the matching end tag, and nothing but whitespace follows the root. */
static void check_svg(const char *path)
{
    size_t len = 0;
    char *s = read_file(path, &len);
    CHECK(s != NULL, "%s missing", path);
    if (!s) return;
    CHECK(len > 1024, "%s is only %zu bytes", path, len);
    char *stack[256];
    size_t depth = 0, elements = 0;
    int root_svg = 0, ok = 1, closed_root = 0;
    for (char *p = s; *p && ok; p++) {
        if (*p != '<') {
            if (closed_root && !strchr(" \t\r\n", *p)) ok = 0;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            char *e = strstr(p, "-->");
            ok = e != NULL;
            p = e ? e + 2 : p;
            continue;
        }
        if (p[1] == '?' || p[1] == '!') {
            char *e = strchr(p, '>');
            ok = e != NULL;
            p = e ? e : p;
            continue;
        }
        char *q = p + 1;
        int closing = *q == '/';
        q += closing;
        size_t nlen = strcspn(q, " \t\r\n/>");
        char quote = 0;
        char *e = q + nlen;
        for (; *e && (quote || *e != '>'); e++)
            if (quote && *e == quote)
                quote = 0;
            else if (!quote && (*e == '"' || *e == '\''))
                quote = *e;
        if (!*e) {
            ok = 0;
            break;
        }
        int self = e[-1] == '/';
        if (closing) {
            ok = depth > 0 && strlen(stack[depth - 1]) == nlen &&
                 strncmp(stack[depth - 1], q, nlen) == 0;
            if (ok) free(stack[--depth]);
            closed_root = ok && depth == 0;
        } else {
            if (elements++ == 0) root_svg = nlen == 3 && strncmp(q, "svg", 3) == 0;
            ok = !closed_root;
            if (!self && ok && depth < 256) stack[depth++] = strndup(q, nlen);
        }
        p = e;
    }
    CHECK(ok && depth == 0 && closed_root, "%s is not well-formed XML", path);
    CHECK(root_svg, "%s: root element is not <svg>", path);
    CHECK(elements > 20, "%s has only %zu elements", path, elements);
    while (depth > 0)
        free(stack[--depth]);
    free(s);
}

/* Data rows of a .dat file (no comments, no blank lines), split at tabs. */
struct rows {
    char *text;
    char *fields[64][24];
    size_t nf[64];
    size_t n;
};

static int load_rows(const char *dir, const char *name, struct rows *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(r, 0, sizeof *r);
    r->text = read_file(path, NULL);
    if (!r->text) return -1;
    for (char *line = strtok(r->text, "\n"); line && r->n < 64; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == 0) continue;
        size_t k = 0;
        for (char *f = line; f && k < 24; k++) {
            r->fields[r->n][k] = f;
            f = strchr(f, '\t');
            if (f) *f++ = 0;
        }
        r->nf[r->n++] = k;
    }
    return 0;
}

static const char *row_with_label(const struct rows *r, size_t label_col, const char *label,
                                  size_t *row)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->nf[i] > label_col && strcmp(r->fields[i][label_col], label) == 0) {
            *row = i;
            return r->fields[i][label_col];
        }
    return NULL;
}

static int near(const char *field, double want)
{
    return field && fabs(strtod(field, NULL) - want) <= 1e-9 * fmax(1, fabs(want));
}

struct want_point {
    const char *label, *workload;
    double x, y, ymin, ymax;
    int repeats, pareto;
};

static void check_points(const char *dir, const char *file, const struct want_point *w, size_t n)
{
    struct rows r;
    CHECK(load_rows(dir, file, &r) == 0, "%s missing", file);
    CHECK(r.n == n, "%s has %zu points, want %zu", file, r.n, n);
    for (size_t i = 0; i < n; i++) {
        size_t row;
        if (!row_with_label(&r, 10, w[i].label, &row)) {
            CHECK(0, "%s: no point labelled '%s'", file, w[i].label);
            continue;
        }
        char *const *f = r.fields[row];
        CHECK(strcmp(f[1], w[i].workload) == 0, "%s '%s': workload %s", file, w[i].label, f[1]);
        CHECK(near(f[2], w[i].x) && near(f[3], w[i].y) && near(f[4], w[i].ymin) &&
                  near(f[5], w[i].ymax),
              "%s '%s': x,y,min,max = %s,%s,%s,%s want %g,%g,%g,%g", file, w[i].label, f[2], f[3],
              f[4], f[5], w[i].x, w[i].y, w[i].ymin, w[i].ymax);
        CHECK(atoi(f[6]) == w[i].repeats, "%s '%s': repeats %s", file, w[i].label, f[6]);
        CHECK(atoi(f[7]) == w[i].pareto, "%s '%s': pareto %s want %d", file, w[i].label, f[7],
              w[i].pareto);
    }
    free(r.text);
}

/* The Pareto data file: exactly these labels, in ascending x. */
static void check_pareto(const char *dir, const char *file, const char *const *labels, size_t n)
{
    struct rows r;
    CHECK(load_rows(dir, file, &r) == 0, "%s missing", file);
    CHECK(r.n == n, "%s has %zu points, want %zu", file, r.n, n);
    for (size_t i = 0; i < n && i < r.n; i++)
        CHECK(r.nf[i] >= 4 && strcmp(r.fields[i][3], labels[i]) == 0, "%s row %zu: '%s' want '%s'",
              file, i, r.nf[i] >= 4 ? r.fields[i][3] : "?", labels[i]);
    for (size_t i = 1; i < r.n; i++)
        CHECK(strtod(r.fields[i][0], NULL) >= strtod(r.fields[i - 1][0], NULL), "%s not sorted",
              file);
    free(r.text);
}

static const struct mt_plot_item *item(const struct mt_plot_result *res, const char *name)
{
    for (size_t i = 0; i < res->n_items; i++)
        if (strcmp(res->items[i].name, name) == 0) return &res->items[i];
    return NULL;
}

/* Draws the plots of the database db into out with the default options; a non-zero
 * return is a failed check. The caller frees res. */
static void generate(const char *db, const char *out, struct mt_plot_result *res)
{
    char err[1024];
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out};
    int rc = mt_plot_generate(&opts, res, err, sizeof err);
    CHECK(rc == 0, "mt_plot_generate returned %d: %s", rc, err);
}

static void check_drawn(const struct mt_plot_result *res, const char *plots, const char *name,
                        const char *ext)
{
    const struct mt_plot_item *it = item(res, name);
    CHECK(it && it->image, "%s not drawn (%s)", name,
          it ? (it->failed ? it->failed : (it->skip ? it->skip : "")) : "no item");
    if (!it || !it->image) return;
    CHECK(!it->warnings, "%s: gnuplot warned: %s", name, it->warnings);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.%s", plots, name, ext);
    if (strcmp(ext, "png") == 0)
        check_png(path);
    else
        check_svg(path);
}

static int contains(const char *dir, const char *file, const char *needle)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) return 0;
    char *s = read_file(path, NULL);
    int found = s && strstr(s, needle);
    free(s);
    return found;
}

/* memory_check.dat rows (exact MiB, cumulative category peaks) and the report table. */
static void check_memory_check(const char *plots, const char *out)
{
    static const struct {
        const char *run, *kind;
        double acc, meas, ratio, cum[10];
        const char *phase, *label;
    } want[] = {
        {"2",
         "serving",
         2,
         3,
         1.5,
         {1, 1, 1, 1, 1, 1, 3.25, 3.25, 3.25, 3.25},
         "infer",
         "run 2 quantize [int8 \"q\"] (ok)"},
        {"10",
         "training",
         15,
         20,
         20.0 / 15,
         {2, 4, 8, 14, 14, 14, 19, 20, 20, 20},
         "train",
         "run 10 checkpoint [ckpt <every> & 2] (ok)"},
        {"16",
         "serving",
         4,
         8,
         2,
         {1, 1, 1, 3, 3, 3, 6.5, 7.5, 7.5, 8},
         "eval",
         "run 16 distill (ok)"},
    };
    struct rows r;
    CHECK(load_rows(plots, "memory_check.dat", &r) == 0, "memory_check.dat missing");
    CHECK(r.n == 3, "memory_check rows %zu, want 3 (run 9 unavailable, run 1 no counter)", r.n);
    for (size_t i = 0; i < 3 && i < r.n; i++) {
        char *const *f = r.fields[i];
        int ok = r.nf[i] == 18 && atoi(f[0]) == (int)i && strcmp(f[1], want[i].run) == 0 &&
                 strcmp(f[2], want[i].kind) == 0 && near(f[3], want[i].acc) &&
                 near(f[4], want[i].meas) && near(f[5], want[i].ratio);
        for (size_t k = 0; ok && k < 10; k++)
            ok = near(f[6 + k], want[i].cum[k]);
        ok = ok && strcmp(f[16], want[i].phase) == 0 && strcmp(f[17], want[i].label) == 0;
        CHECK(ok, "memory_check row %zu: run %s, %zu fields, phase %s, label '%s'", i, f[1],
              r.nf[i], r.nf[i] > 16 ? f[16] : "?", r.nf[i] > 17 ? f[17] : "?");
    }
    free(r.text);
    CHECK(contains(out, "report.html", "<caption>accounted vs measured</caption>"),
          "report has no accounted vs measured table");
    CHECK(contains(out, "report.html",
                   "<td class=\"n\">15.000</td><td class=\"n\">14.500</td>"
                   "<td class=\"none\">not measured</td><td class=\"n\">20.000</td><td "
                   "class=\"n\">1.33</td><td class=\"n\">5.500 <b "
                   "class=\"over\">over</b></td><td>workspace +5.00 MiB, data +1.00 MiB</td>"),
          "training row of the table");
    CHECK(contains(out, "report.html",
                   "<td>workspace +2.25 MiB, weights +1.00 MiB (no per-category accounting: "
                   "measured sizes)</td>"),
          "serving row of the table");
    CHECK(contains(out, "report.html",
                   "<td>run 9 lora [rank 4] (ok)</td><td>train</td><td class=\"n\">12.000</td>"
                   "<td class=\"none\">no plan</td><td class=\"none\">not measured</td>"
                   "<td colspan=\"4\" class=\"none\">unavailable: heap profiler off "
                   "&lt;MEMTRADE_HEAP=0&gt;</td>"),
          "unavailable run 9 not listed with its reason");
    CHECK(contains(out, "report.html", "unavailable: no heap_peak_bytes counter in region eval"),
          "run 1 without a heap counter not listed");
    CHECK(contains(out, "report.html",
                   "<td class=\"n\">3.000</td><td class=\"n\">4.750</td><td class=\"n\">8.000"
                   "</td><td class=\"n\">2.00</td><td class=\"n\">0.250</td>"),
          "run 16: runtime and residual (against plan + runtime, not flagged)");
    CHECK(contains(out, "report.html",
                   "<td class=\"none\">unavailable: class quantize &lt;q&gt; not probed</td>"),
          "run 2: runtime unavailable without its reason");
    CHECK(contains(plots, "memory_check.gp", "2 runs without a measured peak"),
          "title does not say runs are missing");
}

static void run_full(const char *schema, const char *work, enum mt_plot_format fmt)
{
    const char *ext = fmt == MT_PLOT_SVG ? "svg" : "png";
    char db[4096], out[4096], plots[4200], err[1024];
    snprintf(db, sizeof db, "%s/test.db", work);
    snprintf(out, sizeof out, "%s/out-%s", work, ext);
    snprintf(plots, sizeof plots, "%s/plots", out);
    make_db(schema, db);
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out, .format = fmt};
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 0, "mt_plot_generate returned %d: %s", rc, err);
    CHECK(res.n_runs == 15 && res.n_ok == 13, "runs %zu ok %zu", res.n_runs, res.n_ok);
    CHECK(res.n_failed == 0, "%zu plots failed", res.n_failed);
    for (size_t i = 0; i < res.n_items; i++) {
        const struct mt_plot_item *it = &res.items[i];
        printf("%-26s %s%s%s\n", it->name, it->image ? it->image : "", it->skip ? "skipped: " : "",
               it->skip ? it->skip : (it->failed ? it->failed : ""));
    }

    static const char *const drawn[] = {"tradeoff_serving",
                                        "tradeoff_training",
                                        "speed_train",
                                        "speed_eval",
                                        "curve_quantize_bits",
                                        "curve_quantize_group",
                                        "curve_prune_sparsity",
                                        "curve_distill_student",
                                        "loss_checkpoint",
                                        "loss_lora",
                                        "timeline_run1",
                                        "timeline_run9",
                                        "timeline_run10",
                                        "sites_run1",
                                        "regions_run1",
                                        "regions_run2",
                                        "regions_run9",
                                        "regions_run10",
                                        "regions_run16",
                                        "memory_check",
                                        "quant_bits"};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++)
        check_drawn(&res, plots, drawn[i], ext);
    const struct mt_plot_item *klb = item(&res, "kl_bytes"); /* no run reports kl_mean */
    CHECK(klb && klb->skip && strstr(klb->skip, "kl_mean"), "kl_bytes not skipped");
    const struct mt_plot_item *dec = item(&res, "speed_decode");
    CHECK(dec && dec->skip && strstr(dec->skip, "decode_tokens_per_s"), "speed_decode not skipped");
    static const char *const kv_plots[] = {"kv_memory", "kv_accuracy", "kv_sequences"};
    for (size_t i = 0; i < 3; i++) { /* no kv_cache run in this database */
        const struct mt_plot_item *kv = item(&res, kv_plots[i]);
        CHECK(kv && kv->skip && strstr(kv->skip, "no successful kv_cache run"), "%s not skipped",
              kv_plots[i]);
    }
    CHECK(res.n_drawn == sizeof drawn / sizeof drawn[0], "%zu drawn", res.n_drawn);

    static const struct want_point serving[] = {
        {"fp32", "baseline", 6, 2.0, 2.0, 2.0, 1, 1},
        {"int8 \"q\"", "quantize", 2, 2.02, 2.01, 2.03, 2, 1},
        {"int4 \xc3\xbc\\back", "quantize", 1.25, 2.10, 2.10, 2.10, 1, 1},
        {"it's 2-bit", "quantize", 1.0, 2.6, 2.6, 2.6, 1, 1},
        {"bits=4 group=128", "quantize", 1.5, 2.2, 2.2, 2.2, 1, 0},
        {"50% sparse", "prune", 3, 2.3, 2.3, 2.3, 1, 0},
        {"90% {x}_^@", "prune", 0.9, 3.0, 3.0, 3.0, 1, 1},
        {"student=tiny", "distill", 4, 2.5, 2.5, 2.5, 1, 0},
        {"student=small \"s\"", "distill", 5, 2.35, 2.35, 2.35, 1, 0},
    };
    check_points(plots, "tradeoff_serving.dat", serving, sizeof serving / sizeof serving[0]);
    static const char *const serving_front[] = {"90% {x}_^@", "it's 2-bit", "int4 \xc3\xbc\\back",
                                                "int8 \"q\"", "fp32"};
    check_pareto(plots, "tradeoff_serving_pareto.dat", serving_front, 5);
    static const struct want_point training[] = {
        {"fp32", "baseline", 20, 2.0, 2.0, 2.0, 1, 0},
        {"rank 4", "lora", 12, 2.05, 2.05, 2.05, 1, 1},
        {"ckpt <every> & 2", "checkpoint", 15, 2.0, 2.0, 2.0, 1, 1},
        {"zero-2", "zero", 9, 2.1, 2.1, 2.1, 1, 1},
    };
    check_points(plots, "tradeoff_training.dat", training, 4);
    static const char *const training_front[] = {"zero-2", "rank 4", "ckpt <every> & 2"};
    check_pareto(plots, "tradeoff_training_pareto.dat", training_front, 3);

    /* The timeline: cumulative weights then activations, in MiB. */
    struct rows r;
    CHECK(load_rows(plots, "timeline_run1.dat", &r) == 0, "timeline_run1.dat missing");
    static const double cum[4][3] = {{0, 1, 1}, {1, 1, 3}, {2, 1, 4}, {3, 1, 1}};
    CHECK(r.n == 4 + 4 + 2, "timeline rows %zu (4 stacked, 4 rss, 2 regions)", r.n);
    CHECK(r.nf[0] == 3, "timeline has %zu columns, want t + weights + activations", r.nf[0]);
    for (size_t i = 0; i < 4 && i < r.n; i++)
        CHECK(near(r.fields[i][0], cum[i][0]) && near(r.fields[i][1], cum[i][1]) &&
                  near(r.fields[i][2], cum[i][2]),
              "timeline row %zu: %s %s %s", i, r.fields[i][0], r.fields[i][1], r.fields[i][2]);
    CHECK(r.n == 10 && near(r.fields[8][0], 0) && near(r.fields[8][1], 2) &&
              strcmp(r.fields[8][2], "forward") == 0 && near(r.fields[9][0], 2) &&
              near(r.fields[9][1], 3) && strcmp(r.fields[9][2], "back \"ward\"") == 0,
          "region intervals wrong");
    free(r.text);

    CHECK(load_rows(plots, "timeline_run9.dat", &r) == 0, "timeline_run9.dat missing");
    CHECK(r.n == 5 + 1 && r.nf[0] == 2 && near(r.fields[4][0], 4) && near(r.fields[4][1], 5) &&
              strcmp(r.fields[5][0], "NaN") == 0,
          "heap-total timeline: %zu rows", r.n);
    free(r.text);
    CHECK(load_rows(plots, "timeline_run10.dat", &r) == 0, "timeline_run10.dat missing");
    CHECK(r.n == 1 + 5 && strcmp(r.fields[0][0], "NaN") == 0 && near(r.fields[5][0], 4) &&
              near(r.fields[5][1], 14),
          "rss-only timeline: %zu rows", r.n);
    free(r.text);

    /* Sites: largest at peak first, symbolized past malloc. */
    CHECK(load_rows(plots, "sites_run1.dat", &r) == 0, "sites_run1.dat missing");
    CHECK(r.n == 3, "sites rows %zu", r.n);
    if (r.n == 3) {
        CHECK(near(r.fields[0][1], 3) &&
                  strcmp(r.fields[0][5], "attn_\"scratch\"<T> (attn.c:7)") == 0,
              "site 0: %s %s", r.fields[0][1], r.fields[0][5]);
        CHECK(near(r.fields[1][1], 1) &&
                  strcmp(r.fields[1][5], "tf_alloc_weights (model.c:42)") == 0,
              "site 1: %s %s", r.fields[1][1], r.fields[1][5]);
        CHECK(near(r.fields[2][1], 0.5) && strcmp(r.fields[2][5], "/usr/lib/libfoo.so") == 0,
              "site 2: %s %s", r.fields[2][1], r.fields[2][5]);
    }
    free(r.text);

    /* Regions in path order with the available counters only. */
    CHECK(load_rows(plots, "regions_run1.dat", &r) == 0, "regions_run1.dat missing");
    static const char *const paths[] = {"eval", "train", "train/backward", "train/forward"};
    static const double wall[] = {0.5, 3.0, 1.5, 1.0}, faults[] = {50, 300, 150, 100};
    CHECK(r.n == 4, "regions rows %zu", r.n);
    for (size_t i = 0; i < 4 && i < r.n; i++)
        CHECK(r.nf[i] == 5 && near(r.fields[i][1], wall[i]) && near(r.fields[i][2], 0) &&
                  near(r.fields[i][3], faults[i]) && strcmp(r.fields[i][4], paths[i]) == 0,
              "region row %zu: %s %s %s", i, r.fields[i][1], r.fields[i][2],
              r.nf[i] > 4 ? r.fields[i][4] : "?");
    free(r.text);
    CHECK(contains(plots, "regions_run1.gp", "(count): 0 in every region"),
          "the all-zero panel does not say so");
    CHECK(contains(plots, "regions_run1.gp", "PAPI_TOT_CYC (no hardware counters)"),
          "unavailable counter not named in the region plot");

    check_memory_check(plots, out);

    /* Knob curve: quantize bits with group=32 fixed, ascending bits. */
    CHECK(load_rows(plots, "curve_quantize_bits.dat", &r) == 0, "curve missing");
    static const double bits[] = {2, 4, 8}, bpb[] = {2.6, 2.10, 2.02};
    CHECK(r.n == 3, "curve rows %zu", r.n);
    for (size_t i = 0; i < 3 && i < r.n; i++)
        CHECK(near(r.fields[i][0], bits[i]) && near(r.fields[i][1], bpb[i]), "curve row %zu: %s %s",
              i, r.fields[i][0], r.fields[i][1]);
    free(r.text);

    /* Categorical knob: sorted values at 0, 1 and named on the axis. */
    CHECK(load_rows(plots, "curve_distill_student.dat", &r) == 0, "distill curve missing");
    CHECK(r.n == 2 && near(r.fields[0][0], 0) && near(r.fields[0][1], 2.35) &&
              near(r.fields[1][0], 1) && near(r.fields[1][1], 2.5),
          "distill curve rows %zu", r.n);
    free(r.text);
    CHECK(contains(plots, "curve_distill_student.gp", "set xtics ('small \"s\"' 0, 'tiny' 1)"),
          "category tics");

    /* Labels reach gnuplot as quoted strings, titles name the sweep and the machine. */
    CHECK(contains(plots, "tradeoff_serving.gp", "'it''s 2-bit'"), "quote not doubled");
    CHECK(contains(plots, "tradeoff_serving.gp", "'int4 \xc3\xbc\\back'"), "backslash label");
    CHECK(contains(plots, "tradeoff_serving.gp", "quick \"test\" sweep \xc3\xbc"),
          "sweep in title");
    CHECK(contains(plots, "tradeoff_serving.gp", "Test CPU \"X\" @ 3GHz (2 cores)"), "machine");
    CHECK(contains(plots, "tradeoff_serving.gp", "(MiB)") &&
              contains(plots, "tradeoff_serving.gp", "(bits/byte)"),
          "axis units");
    CHECK(contains(plots, "speed_train.gp", "(tokens/s)"), "speed units");

    /* The report: escaped, lists images, tables and the failures. */
    CHECK(file_exists(out, "report.html"), "no report.html");
    CHECK(contains(out, "report.html", "int8 &quot;q&quot;"), "label not escaped");
    CHECK(!contains(out, "report.html", "<every>"), "raw < in report");
    CHECK(contains(out, "report.html", "ckpt &lt;every&gt; &amp; 2"), "label escaping");
    CHECK(contains(out, "report.html",
                   "assertion &quot;x&lt;1&quot; failed: &lt;bad&gt; &amp; "
                   "&#39;quote&#39;"),
          "failed run error not listed");
    CHECK(contains(out, "report.html", ">oom<"), "oom run not listed");
    CHECK(contains(out, "report.html", "second attempt: out of memory"), "latest attempt missing");
    CHECK(contains(out, "report.html", " 1 earlier attempts"), "superseded run not counted");
    CHECK(!item(&res, "timeline_run12"), "superseded run 12 drawn");
    char img[64];
    snprintf(img, sizeof img, "src=\"plots/tradeoff_serving.%s\"", ext);
    CHECK(contains(out, "report.html", img), "report misses the trade-off image");
    CHECK(contains(out, "report.html", "Pareto set") &&
              contains(out, "report.html", "Best configuration under each memory budget"),
          "tables missing");
    /* Budget 1 MiB: prune 90% (0.9 MiB, 3.0) and q2 (1.0 MiB, 2.6) fit; q2 is better. */
    CHECK(contains(out, "report.html", "<tr><td class=\"n\">1</td><td>it&#39;s 2-bit</td>"),
          "best under 1 MiB is not the 2-bit run");
    CHECK(contains(out, "report.html",
                   "<tr><td class=\"n\">0.5</td><td colspan=\"4\" "
                   "class=\"none\">nothing fits"),
          "0.5 MiB budget row");
    CHECK(!contains(out, "report.html", "<script"), "report has a script");
    mt_plot_result_free(&res);

    /* --x and --budgets: one panel against model_bytes; budgets as given. */
    double budgets[] = {1, 4};
    struct mt_plot_opts o2 = {.db_path = db,
                              .out_dir = out,
                              .format = fmt,
                              .x_metric = "model_bytes",
                              .budgets_mib = budgets,
                              .n_budgets = 2,
                              .max_runs = 1};
    rc = mt_plot_generate(&o2, &res, err, sizeof err);
    CHECK(rc == 0, "--x model_bytes: %d %s", rc, err);
    static const struct want_point model[] = {
        {"fp32", "baseline", 4, 2.0, 2.0, 2.0, 1, 1},
        {"int8 \"q\"", "quantize", 1, 2.02, 2.01, 2.03, 2, 1},
    };
    check_points(plots, "tradeoff_model_bytes.dat", model, 2);
    check_drawn(&res, plots, "tradeoff_model_bytes", ext);
    const struct mt_plot_item *more = item(&res, "timeline_more");
    CHECK(more && more->skip && strstr(more->skip, "2 more runs have heap.live or rss samples"),
          "max_runs: %s", more && more->skip ? more->skip : "no item");
    CHECK(item(&res, "timeline_run1") && !item(&res, "timeline_run9"), "max_runs not applied");
    CHECK(contains(out, "report.html", "<tr><td class=\"n\">4</td><td>fp32</td>"), "budget 4");
    mt_plot_result_free(&res);

    /* Sweep selection: another sweep is drawn alone; sweep 1 still spans its attempts. */
    sqlite3 *h;
    sqlite3_open(db, &h);
    exec_sql(h, "INSERT INTO sweeps(id, name, started_at) VALUES(3, 'other', '2026-01-03')");
    add_run(h, 15, "baseline", "other fp32", 0, "ok", "d_model=32");
    exec_sql(h, "UPDATE runs SET sweep_id = 3 WHERE id = 15");
    acc_mem(h, 15, 2.5, "infer_peak_bytes", 3);
    sqlite3_close(h);
    struct mt_plot_opts o3 = {.db_path = db, .out_dir = out, .format = fmt};
    rc = mt_plot_generate(&o3, &res, err, sizeof err);
    CHECK(rc == 0 && res.sweep_id == 3 && res.n_runs == 1,
          "latest sweep: rc %d sweep %lld runs %zu", rc, res.sweep_id, res.n_runs);
    mt_plot_result_free(&res);
    o3.sweep_id = 1;
    rc = mt_plot_generate(&o3, &res, err, sizeof err);
    CHECK(rc == 0 && res.n_runs == 15, "sweep 1: rc %d runs %zu", rc, res.n_runs);
    mt_plot_result_free(&res);
    o3.sweep_id = MT_PLOT_SWEEP_ALL;
    rc = mt_plot_generate(&o3, &res, err, sizeof err);
    CHECK(rc == 0 && res.n_runs == 16 && res.n_ok == 14, "all: rc %d runs %zu", rc, res.n_runs);
    mt_plot_result_free(&res);
}

static void run_empty(const char *schema, const char *work)
{
    char db[4096], out[4096], err[1024];
    snprintf(db, sizeof db, "%s/empty.db", work);
    snprintf(out, sizeof out, "%s/out-empty", work);
    sqlite3 *h = new_db(schema, db);
    sqlite3_close(h);
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out};
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 1, "empty db: rc %d (%s)", rc, err);
    CHECK(strstr(err, "no runs") != NULL, "empty db message: %s", err);
    CHECK(res.n_drawn == 0 && res.n_failed == 0, "empty db drew %zu failed %zu", res.n_drawn,
          res.n_failed);
    CHECK(contains(out, "report.html", "No runs in this database"), "empty report");
    const struct mt_plot_item *mc = item(&res, "memory_check");
    CHECK(mc && mc->skip && strstr(mc->skip, "no run has an accounted peak"),
          "empty db: memory_check not skipped: %s", mc && mc->skip ? mc->skip : "no item");
    CHECK(contains(out, "report.html", "no run has an accounted peak"), "skip not in report");
    mt_plot_result_free(&res);

    /* A run with an accounted peak and its phase region but no region counters: skipped,
       the run listed with the reason, no data file. */
    h = new_db(schema, db);
    add_run(h, 1, "baseline", "fp32", 0, "ok", "d_model=64");
    acc_mem(h, 1, 2.0, "infer_peak_bytes", 6);
    exec_sql(h, "INSERT INTO regions VALUES(1, 1, 0, 'eval', 'eval', 0, 1, 0.5, NULL)");
    sqlite3_close(h);
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    mc = item(&res, "memory_check");
    CHECK(rc == 0 && mc && mc->skip && strstr(mc->skip, "no measured heap peak"),
          "no counters: rc %d, memory_check %s", rc, mc && mc->skip ? mc->skip : "not skipped");
    CHECK(contains(out, "report.html", "unavailable: no heap_peak_bytes counter in region eval"),
          "no counters: run not listed with the reason");
    CHECK(!file_exists(out, "plots/memory_check.dat"), "no counters: data file written");
    mt_plot_result_free(&res);

    /* Only failed runs: a clear message, the failures in the report, the timeline. */
    h = new_db(schema, db);
    add_run(h, 1, "quantize", "bad 'one'", 0, "crashed", "bits=1");
    exec_sql(h, "UPDATE runs SET signal = 11, error = 'SIGSEGV in <kernel>' WHERE id = 1");
    exec_sql(h, "INSERT INTO samples VALUES(1, 0, 'heap.live.weights', 0, 1048576, NULL),"
                "(1, 0, 'heap.live.weights', 1, 2097152, NULL)");
    sqlite3_close(h);
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "no successful run"), "failed-only db: rc %d: %s", rc, err);
    CHECK(res.n_failed == 0, "failed-only: gnuplot failed");
    CHECK(item(&res, "timeline_run1") && item(&res, "timeline_run1")->image, "crash timeline");
    CHECK(contains(out, "report.html", "SIGSEGV in &lt;kernel&gt;"), "crash error in report");
    mt_plot_result_free(&res);
}

static void run_nognuplot(const char *schema, const char *work)
{
    char db[4096], out[4096], err[1024], bin[4096];
    snprintf(db, sizeof db, "%s/test.db", work);
    snprintf(out, sizeof out, "%s/out-nognuplot", work);
    snprintf(bin, sizeof bin, "%s/emptybin", work);
    mkdir(bin, 0755);
    make_db(schema, db);
    setenv("PATH", bin, 1);
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out};
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == -1, "no gnuplot: rc %d", rc);
    CHECK(strstr(err, "gnuplot not found") && strstr(err, "gnuplot-nox"), "message: %s", err);
    CHECK(access(out, F_OK) != 0, "output written without gnuplot");
    mt_plot_result_free(&res);
    opts.gnuplot = "/nonexistent/gnuplot";
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "gnuplot not found at /nonexistent/gnuplot"), "message: %s", err);
    mt_plot_result_free(&res);
}

static void run_errors(const char *schema, const char *work)
{
    char db[4096], out[4096], err[1024], junk[4096];
    snprintf(db, sizeof db, "%s/test.db", work);
    snprintf(out, sizeof out, "%s/out-errors", work);
    make_db(schema, db);
    struct mt_plot_result res;
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out, .sweep_id = 7};
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "sweep 7 not found"), "unknown sweep: %d %s", rc, err);
    mt_plot_result_free(&res);

    snprintf(junk, sizeof junk, "%s/junk.db", work);
    sqlite3 *h;
    sqlite3_open(junk, &h);
    exec_sql(h, "CREATE TABLE IF NOT EXISTS t(x)");
    sqlite3_close(h);
    opts = (struct mt_plot_opts){.db_path = junk, .out_dir = out};
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "not a memtrade results database"), "junk db: %d %s", rc, err);
    mt_plot_result_free(&res);

    opts.db_path = "/nonexistent/x.db";
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "cannot read database /nonexistent/x.db"), "missing db: %s", err);
    mt_plot_result_free(&res);

    /* A gnuplot that fails: every plot is listed as failed with its stderr, no crash, and
       the report is still written. */
    char fake[4096];
    snprintf(fake, sizeof fake, "%s/fake-gnuplot", work);
    FILE *f = fopen(fake, "w");
    fputs("#!/bin/sh\necho \"$2\" line 3: syntax error >&2\nexit 1\n", f);
    fclose(f);
    chmod(fake, 0755);
    opts = (struct mt_plot_opts){.db_path = db, .out_dir = out, .gnuplot = fake};
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 0, "failing gnuplot: rc %d %s", rc, err);
    CHECK(res.n_failed > 10 && res.n_drawn == 0, "failing gnuplot: %zu failed %zu drawn",
          res.n_failed, res.n_drawn);
    const struct mt_plot_item *it = item(&res, "tradeoff_serving");
    CHECK(it && it->failed && strstr(it->failed, "tradeoff_serving.gp line 3: syntax error"),
          "failure text: %s", it && it->failed ? it->failed : "none");
    CHECK(contains(out, "report.html", "syntax error"), "report does not list the failure");
    mt_plot_result_free(&res);

    double *b;
    size_t nb;
    CHECK(mt_plot_parse_budgets("1,2.5,64", &b, &nb, err, sizeof err) == 0 && nb == 3 &&
              b[1] == 2.5,
          "budgets parse");
    free(b);
    CHECK(mt_plot_parse_budgets("1,,2", &b, &nb, err, sizeof err) == -1, "empty budget accepted");
    CHECK(mt_plot_parse_budgets("-1", &b, &nb, err, sizeof err) == -1, "negative budget accepted");
    CHECK(mt_plot_parse_budgets("4MiB", &b, &nb, err, sizeof err) == -1, "suffix accepted");
}

/* A database WORK/NAME.db holding sweep 1 named NAME; out = WORK/out-NAME, plots under it. */
static sqlite3 *sweep_db(const char *schema, const char *work, const char *name, char *db,
                         char *out, char *plots)
{
    snprintf(db, 4096, "%s/%s.db", work, name);
    snprintf(out, 4096, "%s/out-%s", work, name);
    snprintf(plots, 4200, "%s/plots", out);
    sqlite3 *h = new_db(schema, db);
    sqlf(h,
         "INSERT INTO sweeps(id, name, started_at, host, facts_json) VALUES(1, %Q, "
         "'2026-01-01T00:00:00Z', 'testhost', '{}')",
         name);
    return h;
}

/* Like with like: serving runs scored on different text, training runs of different
 * budgets (steps x batch) never share a panel or a Pareto front. Serving: baseline and
 * q8 on 4096 bytes, q4 on 2048 (its own panel, though it would dominate). Training: three
 * runs of 20 x 8 sequences, two of 30 x 16 (their own panel); checkpointing's two settings
 * of `every` at 20 x 8 score the same (a flat knob curve; the lone 30 x 16 point, not a
 * curve, is not drawn and must not widen its range). */
static void run_comparable(const char *schema, const char *work)
{
    char db[4096], out[4096], plots[4200];
    sqlite3 *h = sweep_db(schema, work, "like", db, out, plots);
    static const struct {
        const char *workload, *label, *params, *mem;
        double bpb, mib, eval_bytes;
    } pts[] = {
        {"baseline", "fp32", "steps=20;batch=8", "infer_peak_bytes", 2.0, 6, 4096},
        {"quantize", "q8", "bits=8", "infer_peak_bytes", 2.1, 3, 4096},
        {"quantize", "q4", "bits=4", "infer_peak_bytes", 1.9, 2, 2048},
        {"grad_accum", "a4", "steps=20;batch=8;accum_steps=4", "train_peak_bytes", 2.2, 10, 4096},
        {"checkpointing", "c2", "steps=20;batch=8;every=2", "train_peak_bytes", 2.2, 9, 4096},
        {"checkpointing", "c4", "steps=20;batch=8;every=4", "train_peak_bytes", 2.2, 8, 4096},
        {"checkpointing", "c8", "steps=30;batch=16;every=8", "train_peak_bytes", 2.0, 6, 4096},
        {"data_parallel", "dp", "steps=30;batch=16", "train_peak_bytes", 2.0, 5, 4096},
    };
    for (int i = 0; i < (int)(sizeof pts / sizeof pts[0]); i++) {
        add_run(h, i + 1, pts[i].workload, pts[i].label, 0, "ok", pts[i].params);
        acc_mem(h, i + 1, pts[i].bpb, pts[i].mem, pts[i].mib);
        metric(h, i + 1, "eval_bytes", pts[i].eval_bytes, "bytes");
    }
    sqlite3_close(h);
    struct mt_plot_result res;
    generate(db, out, &res);
    static const char *const drawn[] = {"tradeoff_serving", "tradeoff_serving_2",
                                        "tradeoff_training", "tradeoff_training_2",
                                        "curve_checkpointing_every"};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++)
        check_drawn(&res, plots, drawn[i], "png");
    static const struct want_point serving[] = {
        {"fp32", "baseline", 6, 2.0, 2.0, 2.0, 1, 1},
        {"q8", "quantize", 3, 2.1, 2.1, 2.1, 1, 1},
    };
    check_points(plots, "tradeoff_serving.dat", serving, 2);
    static const struct want_point serving2[] = {{"q4", "quantize", 2, 1.9, 1.9, 1.9, 1, 1}};
    check_points(plots, "tradeoff_serving_2.dat", serving2, 1);
    static const char *const front[] = {"q8", "fp32"};
    check_pareto(plots, "tradeoff_serving_pareto.dat", front, 2);
    CHECK(contains(plots, "tradeoff_serving_2.gp", "scored on 2048 bytes"), "key not in title");
    static const struct want_point training[] = {
        {"c2", "checkpointing", 9, 2.2, 2.2, 2.2, 1, 0},
        {"c4", "checkpointing", 8, 2.2, 2.2, 2.2, 1, 1},
        {"a4", "grad_accum", 10, 2.2, 2.2, 2.2, 1, 0},
    };
    check_points(plots, "tradeoff_training.dat", training, 3);
    /* every=2 and every=4 score the same: a flat curve says so (no empty-range warning) */
    CHECK(
        contains(plots, "curve_checkpointing_every.gp", "the same val_bpb (2.2) at every setting"),
        "flat curve not said");
    CHECK(contains(plots, "tradeoff_training_2.gp", "480 training sequences"),
          "budget not in title");
    mt_plot_result_free(&res);
}

/* KV-cache plots from kv_cache runs. Group 1 (model small, 20 x 8 sequences, 4096 bytes
 * scored): fp32, int8 and int4 at contexts 64 and 128, budget 8 MiB; fp32 and int4 also
 * at 16 MiB (context 128), and one int4 run with kv_block=16 (a series of its own since
 * kv_block varies). Group 2: one tiny-model run, drawn apart (kv_*_2) with its key in the
 * title. kv_cache_bytes = bits * context / 64 MiB (made up), infer_peak 10 MiB more. */
static void run_kvcache(const char *schema, const char *work)
{
    char db[4096], out[4096], plots[4200];
    sqlite3 *h = sweep_db(schema, work, "kv", db, out, plots);
    static const struct {
        const char *model, *fmt;
        int ctx, budget_mib, block, bits;
        double kl, seqs;
    } runs[] = {
        {"small", "fp32", 64, 8, 0, 32, 0, 16},     {"small", "fp32", 128, 8, 0, 32, 0, 8},
        {"small", "int8", 64, 8, 0, 8, 1e-4, 60},   {"small", "int8", 128, 8, 0, 8, 2e-4, 30},
        {"small", "int4", 64, 8, 0, 4, 1e-2, 90},   {"small", "int4", 128, 8, 0, 4, 2e-2, 50},
        {"small", "fp32", 128, 16, 0, 32, 0, 16},   {"small", "int4", 128, 16, 0, 4, 2e-2, 100},
        {"small", "int4", 128, 8, 16, 4, 2e-2, 52}, {"tiny", "int2", 64, 8, 0, 2, 0.1, 300},
    };
    for (int i = 0; i < (int)(sizeof runs / sizeof runs[0]); i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "model=%s;steps=20;batch=8;kv_cache=%s;decode_tokens=%d;budget=%d;context=0;"
                 "kv_block=%d",
                 runs[i].model, runs[i].fmt, runs[i].ctx, runs[i].budget_mib << 20, runs[i].block);
        add_run(h, i + 1, "kv_cache", NULL, 0, "ok", params);
        double kv_mib = runs[i].bits * runs[i].ctx / 64.0;
        metric(h, i + 1, "eval_bytes", 4096, "bytes");
        metric(h, i + 1, "val_bpb", 2.0, "bits/byte");
        metric(h, i + 1, "decode_context", runs[i].ctx, "tokens");
        metric(h, i + 1, "kv_cache_bytes", kv_mib * MIB, "bytes");
        metric(h, i + 1, "infer_peak_bytes", (kv_mib + 10) * MIB, "bytes");
        metric(h, i + 1, "kv_val_loss", 1.5 + runs[i].kl, "nats/byte");
        metric(h, i + 1, "kv_val_loss_fp32", 1.5, "nats/byte");
        metric(h, i + 1, "kv_kl", runs[i].kl, "nats");
        metric(h, i + 1, "kv_max_sequences", runs[i].seqs, "count");
    }
    sqlite3_close(h);
    struct mt_plot_result res;
    generate(db, out, &res);
    static const char *const drawn[] = {"kv_memory",   "kv_accuracy",   "kv_sequences",
                                        "kv_memory_2", "kv_accuracy_2", "kv_sequences_2"};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++)
        check_drawn(&res, plots, drawn[i], "png");
    /* kv_memory.dat: series fp32, int8, int4, int4 block=16 (format order), one row per
     * context (the 16 MiB runs repeat a context: left out): context, kv MiB, infer MiB,
     * loss, fp32 loss, KL, run id, series */
    struct rows r;
    CHECK(load_rows(plots, "kv_memory.dat", &r) == 0, "kv_memory.dat missing");
    static const struct {
        const char *series;
        double ctx, kv, infer, kl;
    } want[] = {
        {"fp32 block=0", 64, 32, 42, 0},     {"fp32 block=0", 128, 64, 74, 0},
        {"int8 block=0", 64, 8, 18, 1e-4},   {"int8 block=0", 128, 16, 26, 2e-4},
        {"int4 block=0", 64, 4, 14, 1e-2},   {"int4 block=0", 128, 8, 18, 2e-2},
        {"int4 block=16", 128, 8, 18, 2e-2},
    };
    CHECK(r.n == 7, "kv_memory.dat has %zu rows, want 7", r.n);
    for (size_t i = 0; i < 7 && i < r.n; i++) {
        char *const *f = r.fields[i];
        CHECK(r.nf[i] == 8 && strcmp(f[7], want[i].series) == 0 && near(f[0], want[i].ctx) &&
                  near(f[1], want[i].kv) && near(f[2], want[i].infer) &&
                  near(f[3], 1.5 + want[i].kl) && near(f[4], 1.5) && near(f[5], want[i].kl),
              "kv_memory.dat row %zu: %s %s %s %s ... %s, want %s %g %g %g", i, f[0], f[1], f[2],
              f[5], r.nf[i] == 8 ? f[7] : "?", want[i].series, want[i].ctx, want[i].kv, want[i].kl);
    }
    free(r.text);
    /* kv_sequences.dat: one cluster per (budget MiB, context), a column per series */
    CHECK(load_rows(plots, "kv_sequences.dat", &r) == 0, "kv_sequences.dat missing");
    static const double seqs[3][6] = {
        {8, 64, 16, 60, 90, NAN}, {8, 128, 8, 30, 50, 52}, {16, 128, 16, NAN, 100, NAN}};
    CHECK(r.n == 3, "kv_sequences.dat has %zu rows, want 3", r.n);
    for (size_t i = 0; i < 3 && i < r.n; i++)
        for (size_t j = 0; j < 6; j++)
            CHECK(r.nf[i] == 6 && (isnan(seqs[i][j]) ? strcmp(r.fields[i][j], "nan") == 0 ||
                                                           strcmp(r.fields[i][j], "NaN") == 0
                                                     : near(r.fields[i][j], seqs[i][j])),
                  "kv_sequences.dat row %zu column %zu: %s want %g", i, j,
                  r.nf[i] > j ? r.fields[i][j] : "?", seqs[i][j]);
    free(r.text);
    CHECK(contains(plots, "kv_accuracy.gp", "2 point(s) with KL 0 not on log axis"),
          "zero KL not said");
    CHECK(contains(plots, "kv_memory_2.gp", "model tiny") &&
              contains(plots, "kv_memory.gp",
                       "model small, 160 training sequences, scored on "
                       "4096 bytes"),
          "group keys not in titles");
    CHECK(!contains(plots, "kv_memory.dat", "int2"), "the tiny model's run shares a panel");
    mt_plot_result_free(&res);
}

/* Training memory plots. train_context: checkpointing on model long, batch 1, 3 steps at
 * seq 512, 1024, 2048, dense and flash, and one dense run with seq=0 whose length comes
 * from train_tokens / (steps x batch) = 768 / 3 = 256; activations dense T*T/65536 MiB,
 * flash T/256 MiB, peak 8 MiB more. A small-model run at one length is not drawn.
 * train_methods (model small, 409600 training tokens): grad_accum with optimizer adamw,
 * adamw8, adafactor and offload=optimizer, checkpointing with recompute=selective (1 MiB
 * of its total not in a category row: unattributed); a lora run of another budget gets a
 * chart of its own, as does each budget of the long model. */
static void run_trainmem(const char *schema, const char *work)
{
    char db[4096], out[4096], plots[4200], err[1024];
    sqlite3 *h = sweep_db(schema, work, "trainmem", db, out, plots);
    static const struct {
        int seq, flash, T;
    } ctxs[] = {{512, 0, 512},   {1024, 0, 1024}, {2048, 0, 2048}, {512, 1, 512},
                {1024, 1, 1024}, {2048, 1, 2048}, {0, 0, 256}};
    int id = 1;
    for (size_t i = 0; i < sizeof ctxs / sizeof ctxs[0]; i++, id++) {
        char params[256];
        snprintf(params, sizeof params, "model=long;batch=1;steps=3;seq=%d;attention=%s",
                 ctxs[i].seq, ctxs[i].flash ? "flash" : "dense");
        add_run(h, id, "checkpointing", NULL, 0, "ok", params);
        double T = ctxs[i].T, act = ctxs[i].flash ? T / 256 : T * T / 65536;
        metric(h, id, "train_tokens", 3 * T, "count");
        metric(h, id, "train_peak_bytes", (8 + act) * MIB, "bytes");
        metric(h, id, "train_peak_activations_bytes", act * MIB, "bytes");
    }
    add_run(h, id, "baseline", NULL, 0, "ok", "model=small;batch=16;steps=200;seq=0");
    metric(h, id, "train_tokens", 200 * 16 * 128, "count");
    metric(h, id++, "train_peak_bytes", 30 * MIB, "bytes");
    static const struct {
        const char *workload, *params;
        double w, g, o, a, ws, total;
    } meth[] = {
        {"grad_accum", "optimizer=adamw;offload=none;recompute=none", 4, 4, 8, 10, 0, 26},
        {"grad_accum", "optimizer=adamw8;offload=none;recompute=none", 4, 4, 2.5, 10, 0, 20.5},
        {"grad_accum", "optimizer=adafactor;offload=none;recompute=none", 4, 4, 0.5, 10, 0, 18.5},
        {"grad_accum", "optimizer=adamw;offload=optimizer;recompute=none", 4, 4, 1, 10, 0, 19},
        {"checkpointing", "optimizer=adamw;offload=none;recompute=selective", 4, 4, 8, 6, 1, 24},
        {"lora", "rank=8;base=nf4", 1, 0.25, 0.5, 6, 0, 7.75},
    };
    for (size_t i = 0; i < sizeof meth / sizeof meth[0]; i++, id++) {
        char params[256];
        snprintf(params, sizeof params, "model=small;batch=16;steps=%d;%s",
                 strcmp(meth[i].workload, "lora") ? 200 : 2000, meth[i].params);
        add_run(h, id, meth[i].workload, NULL, 0, "ok", params);
        metric(h, id, "train_tokens", strcmp(meth[i].workload, "lora") ? 409600 : 4096000, "count");
        metric(h, id, "train_peak_bytes", meth[i].total * MIB, "bytes");
        metric(h, id, "train_peak_weights_bytes", meth[i].w * MIB, "bytes");
        metric(h, id, "train_peak_gradients_bytes", meth[i].g * MIB, "bytes");
        metric(h, id, "train_peak_optimizer_bytes", meth[i].o * MIB, "bytes");
        metric(h, id, "train_peak_activations_bytes", meth[i].a * MIB, "bytes");
        if (meth[i].ws > 0) metric(h, id, "train_peak_workspace_bytes", meth[i].ws * MIB, "bytes");
    }
    sqlite3_close(h);
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out};
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 0, "mt_plot_generate returned %d: %s", rc, err);
    static const char *const drawn[] = {"train_context", "train_methods"};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++)
        check_drawn(&res, plots, drawn[i], "png");
    CHECK(!item(&res, "train_context_2"), "a group of one length was drawn");
    /* train_context.dat: T, peak MiB, activations MiB, run id, where T came from, series */
    struct rows r;
    static const struct {
        double T, peak, act;
        int run;
        const char *from, *series;
    } wc[] = {
        {256, 9, 1, 7, "train_tokens", "dense"}, {512, 12, 4, 1, "seq", "dense"},
        {1024, 24, 16, 2, "seq", "dense"},       {2048, 72, 64, 3, "seq", "dense"},
        {512, 10, 2, 4, "seq", "flash"},         {1024, 12, 4, 5, "seq", "flash"},
        {2048, 16, 8, 6, "seq", "flash"},
    };
    CHECK(load_rows(plots, "train_context.dat", &r) == 0, "train_context.dat missing");
    CHECK(r.n == 7, "train_context.dat has %zu rows, want 7", r.n);
    for (size_t i = 0; i < 7 && i < r.n; i++) {
        char *const *f = r.fields[i];
        CHECK(r.nf[i] == 6 && near(f[0], wc[i].T) && near(f[1], wc[i].peak) &&
                  near(f[2], wc[i].act) && atoi(f[3]) == wc[i].run &&
                  strcmp(f[4], wc[i].from) == 0 && strcmp(f[5], wc[i].series) == 0,
              "train_context.dat row %zu: %s %s %s %s %s %s", i, f[0], f[1], f[2], f[3],
              r.nf[i] > 4 ? f[4] : "?", r.nf[i] > 5 ? f[5] : "?");
    }
    free(r.text);
    CHECK(contains(plots, "train_context.gp", "seq=0 resolved as train_tokens / (steps x batch)") &&
              contains(plots, "train_context.gp", "set logscale y 10") &&
              !contains(plots, "train_context.gp", "set logscale x") &&
              contains(plots, "train_context.gp", "model long, batch 1"),
          "train_context.gp: title or axes");
    /* train_methods.dat: run id, workload, label, total, weights, gradients, optimizer,
     * activations, workspace (NaN where absent), unattributed */
    static const struct {
        int run;
        const char *workload, *label;
        double v[7];
    } wm[] = {
        {13, "checkpointing", "checkpointing recompute=selective", {24, 4, 4, 8, 6, 1, 1}},
        {9, "grad_accum", "grad_accum", {26, 4, 4, 8, 10, NAN, 0}},
        {12, "grad_accum", "grad_accum offload=optimizer", {19, 4, 4, 1, 10, NAN, 0}},
        {11, "grad_accum", "grad_accum optimizer=adafactor", {18.5, 4, 4, 0.5, 10, NAN, 0}},
        {10, "grad_accum", "grad_accum optimizer=adamw8", {20.5, 4, 4, 2.5, 10, NAN, 0}},
    };
    CHECK(load_rows(plots, "train_methods.dat", &r) == 0, "train_methods.dat missing");
    CHECK(r.n == 5, "train_methods.dat has %zu rows, want 5", r.n);
    for (size_t i = 0; i < 5 && i < r.n; i++) {
        char *const *f = r.fields[i];
        int ok = r.nf[i] == 10 && atoi(f[0]) == wm[i].run && strcmp(f[1], wm[i].workload) == 0 &&
                 strcmp(f[2], wm[i].label) == 0;
        for (size_t k = 0; k < 7 && ok; k++)
            ok = isnan(wm[i].v[k]) ? strcmp(f[3 + k], "NaN") == 0 : near(f[3 + k], wm[i].v[k]);
        CHECK(ok, "train_methods.dat row %zu: %s %s '%s' %s ...", i, f[0], r.nf[i] > 1 ? f[1] : "?",
              r.nf[i] > 2 ? f[2] : "?", r.nf[i] > 3 ? f[3] : "?");
    }
    free(r.text);
    CHECK(contains(plots, "train_methods.dat", "workspace_MiB\tunattributed_MiB") &&
              contains(plots, "train_methods.gp", "model small, 409600 training tokens") &&
              !contains(plots, "train_methods.dat", "lora"),
          "train_methods: columns, chart key or budgets mixed");
    /* The other charts: each length of the long model (its budget is 3 x T tokens: dense
     * and flash side by side) and the lora run alone, as train_methods_2 .. _6. */
    int lora_alone = 0;
    for (int k = 2; k <= 6; k++) {
        char name[64], file[80];
        snprintf(name, sizeof name, "train_methods_%d", k);
        snprintf(file, sizeof file, "%s.gp", name);
        check_drawn(&res, plots, name, "png");
        lora_alone += contains(plots, file, "model small, 4096000 training tokens");
    }
    CHECK(lora_alone == 1 && !item(&res, "train_methods_7"), "lora's chart: %d", lora_alone);
    CHECK(contains(out, "report.html", "id=\"train_context\"") &&
              contains(out, "report.html", "id=\"train_methods\""),
          "not in report.html");
    mt_plot_result_free(&res);
    /* Without the data: both skipped with their reasons. */
    h = sweep_db(schema, work, "trainmem_none", db, out, plots);
    add_run(h, 1, "baseline", NULL, 0, "ok", "model=small;batch=16;steps=200;seq=0");
    metric(h, 1, "train_tokens", 200 * 16 * 128, "count");
    metric(h, 1, "train_peak_bytes", 30 * MIB, "bytes");
    sqlite3_close(h);
    rc = mt_plot_generate(&opts, &res, err, sizeof err);
    const struct mt_plot_item *tc = item(&res, "train_context"), *tm = item(&res, "train_methods");
    CHECK(rc == 0 && tc && tc->skip &&
              strstr(tc->skip, "fewer than two training sequence lengths (parameter seq) in "
                               "every (model, batch) group: 1 group(s) with one length"),
          "train_context: %s", tc && tc->skip ? tc->skip : "not skipped");
    CHECK(tm && tm->skip &&
              strstr(tm->skip, "no successful run has train_peak_bytes with its memory "
                               "categories and train_tokens (1 without categories"),
          "train_methods: %s", tm && tm->skip ? tm->skip : "not skipped");
    mt_plot_result_free(&res);
}

/* The run ids in column `col` (0-based) of a data file's rows, as "id,id,..." sorted. */
static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void ids_text(long long *ids, size_t n, char *buf, size_t len)
{
    qsort(ids, n, sizeof *ids, cmp_ll);
    buf[0] = 0;
    for (size_t i = 0, k = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", ids[i]);
}

static void dat_ids(const char *dir, const char *file, size_t col, char *buf, size_t len)
{
    struct rows r;
    long long ids[64];
    size_t n = 0;
    buf[0] = 0;
    if (load_rows(dir, file, &r) != 0) return;
    for (size_t i = 0; i < r.n && n < 64; i++)
        if (r.nf[i] > col) ids[n++] = atoll(r.fields[i][col]);
    free(r.text);
    ids_text(ids, n, buf, len);
}

/* One Pareto definition (results/pareto.h): on a database written by the store, the
 * fronts the plots draw are the fronts `memtrade query pareto` prints (per configuration;
 * one panel per memory kind; two repeats whose median is their mean). */
static void run_query_front(const char *work)
{
    char db[4096], out[4096], plots[4200], err[1024];
    snprintf(db, sizeof db, "%s/front.db", work);
    snprintf(out, sizeof out, "%s/out-front", work);
    snprintf(plots, sizeof plots, "%s/plots", out);
    struct mt_store *st;
    CHECK(mt_store_open(db, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) == 0, "%s", err);
    if (!st) return;
    int64_t sweep;
    struct mt_store_sweep_info si = {.name = "front"};
    CHECK(mt_store_sweep_begin(st, &si, &sweep) == 0, "%s", mt_store_error(st));
    static const struct {
        const char *workload, *value, *mem;
        int repeat;
        double bpb, mib;
    } pts[] = {
        {"quantize", "8", "infer_peak_bytes", 0, 2.10, 3},      /* front */
        {"quantize", "8", "infer_peak_bytes", 1, 2.12, 3},      /* its repeat: mean 2.11 */
        {"quantize", "4", "infer_peak_bytes", 0, 2.30, 2},      /* front */
        {"quantize", "2", "infer_peak_bytes", 0, 2.40, 2.5},    /* dominated by 4 */
        {"prune", "0.5", "infer_peak_bytes", 0, 2.05, 5},       /* front */
        {"prune", "0.9", "infer_peak_bytes", 0, 2.20, 4},       /* dominated by q8 (3, 2.11) */
        {"lora", "4", "train_peak_bytes", 0, 2.2, 10},          /* front */
        {"lora", "8", "train_peak_bytes", 0, 2.3, 11},          /* dominated */
        {"checkpointing", "2", "train_peak_bytes", 0, 2.1, 12}, /* front */
    };
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s?k=%s", pts[i].workload, pts[i].value);
        struct mt_store_kv kv[] = {{"batch", "8"}, {"k", pts[i].value}, {"steps", "20"}};
        struct mt_store_run_info ri = {.sweep_id = sweep,
                                       .workload = pts[i].workload,
                                       .config_key = key,
                                       .repeat = pts[i].repeat,
                                       .params = kv,
                                       .n_params = 3};
        int64_t run;
        struct mt_store_run_end end = {.status = MT_RUN_OK, .exit_code = 0, .wall_s = 1};
        CHECK(mt_store_run_begin(st, &ri, &run) == 0 &&
                  mt_store_metric(st, run, -1, "val_bpb", pts[i].bpb, "bits/byte") == 0 &&
                  mt_store_metric(st, run, -1, "eval_bytes", 4096, "bytes") == 0 &&
                  mt_store_metric(st, run, -1, pts[i].mem, pts[i].mib * MIB, "bytes") == 0 &&
                  mt_store_run_finish(st, run, &end) == 0,
              "%s", mt_store_error(st));
    }
    mt_store_close(st);
    struct mt_plot_result res;
    generate(db, out, &res);
    mt_plot_result_free(&res);

    CHECK(mt_store_open(db, MT_STORE_READONLY, &st, err, sizeof err) == 0, "%s", err);
    if (!st) return;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct mt_store_pareto_opts po = {.by_config = 1};
    CHECK(f && mt_store_query_pareto(st, &po, MT_FORMAT_CSV, f) == 0, "%s", mt_store_error(st));
    if (f) fclose(f);
    mt_store_close(st);
    long long serving[64], training[64];
    size_t ns = 0, nt = 0;
    /* sweep_id,memory_kind,run_id,workload,label,config_key,repeats,x,y */
    for (char *line = text ? strchr(text, '\n') : NULL; line && line[1];
         line = strchr(line + 1, '\n')) {
        char kind[32];
        long long sw, id;
        if (sscanf(line + 1, "%lld,%31[a-z],%lld", &sw, kind, &id) != 3) continue;
        if (!strcmp(kind, "serving") && ns < 64) serving[ns++] = id;
        if (!strcmp(kind, "training") && nt < 64) training[nt++] = id;
    }
    free(text);
    char q[512], p[512];
    ids_text(serving, ns, q, sizeof q);
    dat_ids(plots, "tradeoff_serving_pareto.dat", 2, p, sizeof p);
    CHECK(strcmp(q, p) == 0 && strcmp(q, "1,3,5") == 0, "serving front: query %s, plots %s", q, p);
    ids_text(training, nt, q, sizeof q);
    dat_ids(plots, "tradeoff_training_pareto.dat", 2, p, sizeof p);
    CHECK(strcmp(q, p) == 0 && strcmp(q, "7,9") == 0, "training front: query %s, plots %s", q, p);
}

/* Device memory (issue 22): two runs on a GPU (plan, interposer and NVML; one NVML
 * unavailable with its reason), a profile run with the interposer only, and a CPU run
 * that must stay out of both device plots. tradeoff_device: val_bpb against
 * peak_device_bytes; device_memory: three rows per run, cumulative MiB by category. */
/* near(), where a NaN want means the field must be NaN (unavailable, never 0) */
static int near_nan(const char *field, double want)
{
    return isnan(want) ? field && strcmp(field, "NaN") == 0 : near(field, want);
}

static void run_device(const char *schema, const char *work)
{
    char db[4096], out[4096], plots[4200], err[1024];
    sqlite3 *h = sweep_db(schema, work, "device", db, out, plots);
    add_run(h, 1, "baseline", NULL, 0, "ok", "model=small;steps=30");
    acc_mem(h, 1, 2.5, "train_peak_bytes", 40);
    static const struct {
        const char *workload, *params;
        double bpb, w, g, o, a, ws_dev, nvml;
    } dev[] = {
        {"baseline", "model=small;steps=30;device=cuda", 2.5, 3, 3, 6, 20, 32, 800},
        {"mixed_precision", "model=small;steps=30;device=cuda;precision=bf16", 2.6, 3, 3, 6, 10, 32,
         -1},
    };
    for (int i = 0; i < 2; i++) {
        int id = 2 + i;
        add_run(h, id, dev[i].workload, NULL, 0, "ok", dev[i].params);
        double plan = dev[i].w + dev[i].g + dev[i].o + dev[i].a;
        acc_mem(h, id, dev[i].bpb, "train_peak_bytes", plan);
        metric(h, id, "peak_device_bytes", (plan + dev[i].ws_dev) * MIB, "bytes");
        metric(h, id, "plan_train_peak_bytes", plan * MIB, "bytes");
        static const char *const cs[] = {"weights", "gradients", "optimizer", "activations"};
        const double v[] = {dev[i].w, dev[i].g, dev[i].o, dev[i].a};
        for (int k = 0; k < 4; k++) {
            char name[96];
            snprintf(name, sizeof name, "peak_device_%s_bytes", cs[k]);
            metric(h, id, name, v[k] * MIB, "bytes");
            snprintf(name, sizeof name, "plan_train_peak_%s_bytes", cs[k]);
            metric(h, id, name, v[k] * MIB, "bytes");
        }
        metric(h, id, "peak_device_workspace_bytes", dev[i].ws_dev * MIB, "bytes");
        if (dev[i].nvml > 0)
            metric(h, id, "nvml_peak_device_bytes", dev[i].nvml * MIB, "bytes");
        else
            sqlf(h,
                 "INSERT INTO metrics(run_id, rank, name, value, unit, unavailable) VALUES(%d, "
                 "-1, 'nvml_peak_device_bytes', NULL, 'bytes', 'NVML: no libnvidia-ml.so.1')",
                 id);
    }
    add_run(h, 4, "profile", NULL, 0, "ok", "cmd=python3 train.py");
    metric(h, 4, "peak_device_bytes", 100 * MIB, "bytes");
    sqlite3_close(h);
    struct mt_plot_opts opts = {.db_path = db, .out_dir = out};
    struct mt_plot_result res;
    int rc = mt_plot_generate(&opts, &res, err, sizeof err);
    CHECK(rc == 0, "mt_plot_generate returned %d: %s", rc, err);
    check_drawn(&res, plots, "tradeoff_device", "png");
    check_drawn(&res, plots, "device_memory", "png");
    struct rows r;
    /* tradeoff_device.dat: the two GPU runs only (x = peak_device MiB) */
    CHECK(load_rows(plots, "tradeoff_device.dat", &r) == 0, "tradeoff_device.dat missing");
    size_t n_pts = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.nf[i] < 10) continue;
        n_pts++;
        double x = atof(r.fields[i][2]);
        CHECK(fabs(x - 64) < 1e-9 || fabs(x - 54) < 1e-9, "tradeoff_device x %s", r.fields[i][2]);
    }
    CHECK(n_pts == 2, "tradeoff_device.dat has %zu points, want 2 (the GPU runs)", n_pts);
    free(r.text);
    /* device_memory.dat: row, run, witness, total, cumulative weights..other, label */
    CHECK(load_rows(plots, "device_memory.dat", &r) == 0, "device_memory.dat missing");
    CHECK(r.n == 9, "device_memory.dat has %zu rows, want 9 (3 runs x 3 witnesses)", r.n);
    static const struct {
        int run;
        const char *witness;
        double total, cum_w, cum_act, cum_ws;
    } want[] = {
        {2, "planned", 32, 3, 32, 32},      {2, "interposer", 64, 3, 32, 64},
        {2, "nvml", 800, NAN, NAN, NAN},    {3, "planned", 22, 3, 22, 22},
        {3, "interposer", 54, 3, 22, 54},   {3, "nvml", NAN, NAN, NAN, NAN},
        {4, "planned", NAN, NAN, NAN, NAN}, {4, "interposer", 100, 0, 0, 0},
        {4, "nvml", NAN, NAN, NAN, NAN},
    };
    for (size_t i = 0; i < 9 && i < r.n; i++) {
        char *const *f = r.fields[i];
        /* columns: 0 row, 1 run, 2 witness, 3 total, 4 weights, ..., 7 activations, ... 10
         * workspace */
        CHECK(r.nf[i] == 15 && atoi(f[1]) == want[i].run && strcmp(f[2], want[i].witness) == 0 &&
                  near_nan(f[3], want[i].total) && near_nan(f[4], want[i].cum_w) &&
                  near_nan(f[7], want[i].cum_act) && near_nan(f[10], want[i].cum_ws) &&
                  near_nan(f[13], strcmp(want[i].witness, "nvml") ? want[i].total : NAN),
              "device_memory.dat row %zu: %s %s %s %s %s %s %s", i, f[0], f[1], f[2], f[3], f[4],
              r.nf[i] > 7 ? f[7] : "?", r.nf[i] > 10 ? f[10] : "?");
    }
    free(r.text);
    CHECK(contains(out, "report.html", "<h2>Device memory</h2>") &&
              contains(out, "report.html", "workspace +32.00 MiB") &&
              contains(out, "report.html", "unavailable: NVML: no libnvidia-ml.so.1") &&
              contains(out, "report.html", "<td class=\"n\">736.000</td>"),
          "report.html: device memory table");
    mt_plot_result_free(&res);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--make-db") == 0) {
        make_db(argv[2], argv[3]);
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr,
                "usage: test_plots SCHEMA WORKDIR "
                "png|svg|empty|nognuplot|errors|comparable|kvcache|trainmem|device|query_front\n");
        return 2;
    }
    const char *schema = argv[1], *work = argv[2], *which = argv[3];
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", work, work);
    if (system(cmd) != 0) return 2;
    if (strcmp(which, "png") == 0)
        run_full(schema, work, MT_PLOT_PNG);
    else if (strcmp(which, "svg") == 0)
        run_full(schema, work, MT_PLOT_SVG);
    else if (strcmp(which, "empty") == 0)
        run_empty(schema, work);
    else if (strcmp(which, "nognuplot") == 0)
        run_nognuplot(schema, work);
    else if (strcmp(which, "query_front") == 0)
        run_query_front(work);
    else if (strcmp(which, "errors") == 0)
        run_errors(schema, work);
    else if (strcmp(which, "comparable") == 0)
        run_comparable(schema, work);
    else if (strcmp(which, "kvcache") == 0)
        run_kvcache(schema, work);
    else if (strcmp(which, "trainmem") == 0)
        run_trainmem(schema, work);
    else if (strcmp(which, "device") == 0)
        run_device(schema, work);
    else
        return 2;
    return mt_check_status(failures);
}
