/* fit_measure.c — runs in the database and runs fit starts (fit_measure.h). */
#include "fit_measure.h"

#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "reader.h"
#include "runtime_probe.h"
#include "store.h"

extern char **environ;

static const char *const fm_names[MT_FM_COUNT] = {"kl_mean",          "val_bpb", "infer_peak_bytes",
                                                  "train_peak_bytes", "kv_kl",   "kv_val_loss",
                                                  "kv_val_loss_fp32"};

/* Opens the database read-only: 1, 0 when it does not exist yet, -1 with err. */
static int open_db(const struct mt_fit_runner *r, struct mt_store **st, struct mt_read **rd,
                   char *err, size_t errlen)
{
    struct stat sb;
    *st = NULL, *rd = NULL;
    if (stat(r->db, &sb) != 0 || sb.st_size == 0) return 0;
    if (mt_store_open(r->db, MT_STORE_READONLY, st, err, errlen) != 0) return -1;
    if (mt_read_open(*st, rd) != 0) {
        snprintf(err, errlen, "%s", mt_store_error(*st));
        mt_store_close(*st);
        return -1;
    }
    return 1;
}

static void close_db(struct mt_store *st, struct mt_read *rd)
{
    mt_read_close(rd);
    mt_store_close(st);
}

/* The run-level metric `name` (whole, or of category `cat`) of a run: 1 and *v, else 0. */
static int metric_of(const struct mt_read_run *run, const char *name, const char *cat, double *v)
{
    for (size_t i = 0; i < run->n_metrics; i++) {
        const struct mt_read_metric *m = &run->metrics[i];
        if (strcmp(m->name, name) != 0 || !m->has) continue;
        if (cat ? !m->category || strcmp(m->category, cat) : m->category && m->category[0])
            continue;
        *v = m->value;
        return 1;
    }
    return 0;
}

/* The newest ok run of configuration `key`: 1 and *id, 0 when none, -1. */
static int latest_ok(struct mt_read *rd, const char *key, int64_t *id)
{
    struct mt_read_run *runs;
    size_t n;
    int found = 0;
    if (mt_read_runs(rd, MT_READ_ALL_SWEEPS, &runs, &n) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(runs[i].status, "ok") && !strcmp(runs[i].config_key, key))
            *id = runs[i].id, found = 1; /* ascending id: the last is the newest */
    return found;
}

/* Looks the configuration key up (the newest run with `newest`, else any): 1 with *m, 0
 * when no ok run has it, -1 with err. */
static int lookup(const struct mt_fit_runner *r, const struct mt_fit *f, const char *key,
                  int newest, struct mt_fit_measure *m, char *err, size_t errlen)
{
    struct mt_store *st;
    struct mt_read *rd;
    int rc = open_db(r, &st, &rd, err, errlen);
    if (rc <= 0) return rc;
    int64_t id;
    struct mt_read_run *run;
    rc = newest ? latest_ok(rd, key, &id) : mt_store_find_ok(st, key, 0, &id);
    if (rc == 1) rc = mt_read_run(rd, id, &run);
    if (rc < 0) snprintf(err, errlen, "%s", mt_store_error(st));
    if (rc == 1) {
        m->run = id;
        for (int i = 0; i < MT_FM_COUNT; i++)
            m->has[i] = metric_of(run, fm_names[i], NULL, &m->v[i]);
        const char *peak = fm_names[f->goal == MT_PLAN_SERVING ? MT_FM_INFER : MT_FM_TRAIN];
        for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
            if (!metric_of(run, peak, mt_mem_cat_names[c], &m->peak_cat[c])) m->peak_cat[c] = NAN;
    }
    close_db(st, rd);
    return rc;
}

/* Executes `memtrade run` for c; its output goes to OUT/fit-runs.log. 0, or -1 with err. */
static int start_run(struct mt_fit_runner *r, const struct mt_fit_config *c, const char *heap,
                     const char *label, char *err, size_t errlen)
{
    enum { MAX_ARGS = 14 + 2 * MT_FIT_MAX_PARAMS };
    char pv[MT_FIT_MAX_PARAMS][sizeof c->key[0] + sizeof c->val[0] + 2];
    char logpath[4096];
    char *argv[MAX_ARGS];
    size_t a = 0;
    argv[a++] = (char *)r->exe;
    argv[a++] = "run";
    argv[a++] = (char *)c->workload;
    for (size_t i = 0; i < c->n; i++) {
        snprintf(pv[i], sizeof pv[i], "%s=%s", c->key[i], c->val[i]);
        argv[a++] = "-p";
        argv[a++] = pv[i];
    }
    argv[a++] = "--db";
    argv[a++] = (char *)r->db;
    argv[a++] = "--out";
    argv[a++] = (char *)r->out;
    argv[a++] = "--heap";
    argv[a++] = (char *)heap;
    if (label) {
        argv[a++] = "--label";
        argv[a++] = (char *)label;
    }
    argv[a] = NULL;
    snprintf(logpath, sizeof logpath, "%s/fit-runs.log", r->out);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int e = posix_spawn(&pid, r->exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        snprintf(err, errlen, "cannot start %s run: %s", r->exe, strerror(e));
        return -1;
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        ;
    r->started++;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        char b[1024];
        snprintf(err, errlen, "the run of %s did not end ok (exit %d); its output is in %s",
                 mt_fit_brief(c, b, sizeof b), WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, logpath);
        return -1;
    }
    return 0;
}

int mt_fit_measured(struct mt_fit_runner *r, const struct mt_fit *f, const struct mt_fit_config *c,
                    const char *heap, int force, const char *label, struct mt_fit_measure *m,
                    char *err, size_t errlen)
{
    char key[8192];
    struct mt_fit_config tmp = *c;
    memset(m, 0, sizeof *m);
    if (mt_fit_plan(f->reg, f->goal, &tmp, key, sizeof key, err, errlen)) return -1;
    int rc = force ? 0 : lookup(r, f, key, 0, m, err, errlen);
    if (rc != 0 || (!r->measure && !force)) return rc;
    char b[1024];
    fprintf(stderr, "memtrade fit: measuring %s\n", mt_fit_brief(c, b, sizeof b));
    if (start_run(r, c, heap, label, err, errlen)) return -1;
    m->fresh = 1;
    rc = lookup(r, f, key, 1, m, err, errlen);
    if (rc == 0) snprintf(err, errlen, "the run of %s is not in %s", b, r->db);
    return rc == 1 ? 1 : -1;
}

/* The accounted term of `phase` among terms[0..n) of one class: 1 and *v, or 0. */
static int accounted_of(const struct mt_runtime_term *t, size_t n, const char *phase, double *v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].has && !strcmp(t[i].term, "accounted") && !strcmp(t[i].phase, phase)) {
            *v = t[i].bytes;
            return 1;
        }
    return 0;
}

/* Reads the larger accounted term of `phase` over the classes cls[0..2) stored for this
 * build and machine: 1 and *term, 0 when none is stored, -1 with err. */
static int stored_term(const struct mt_fit_runner *r, char cls[2][1024], const char *phase,
                       long long *term, char *err, size_t errlen)
{
    struct mt_store *st;
    struct mt_read *rd;
    int rc = open_db(r, &st, &rd, err, errlen), found = 0;
    if (rc <= 0) return rc;
    struct mt_runtime_key key;
    if (mt_runtime_probe_key(st, &key) != 0) rc = -1;
    for (int h = 0; rc > 0 && h < 2; h++) {
        struct mt_runtime_term *t = NULL;
        size_t n = 0;
        double v;
        snprintf(key.cls, sizeof key.cls, "%s", cls[h]);
        if (mt_runtime_get(st, &key, &t, &n) != 0) rc = -1;
        if (rc > 0 && accounted_of(t, n, phase, &v) && (!found++ || (long long)v > *term))
            *term = (long long)v;
        free(t);
    }
    if (rc < 0) snprintf(err, errlen, "%s", mt_store_error(st));
    close_db(st, rd);
    return rc < 0 ? -1 : found > 0;
}

int mt_fit_runtime_term(struct mt_fit_runner *r, const struct mt_fit *f,
                        const struct mt_fit_config *c, long long *term, char *err, size_t errlen)
{
    *term = 0;
    const struct mt_plugin *pl = mt_plugins_find(f->reg, c->workload);
    const char *keys[MT_FIT_MAX_PARAMS], *vals[MT_FIT_MAX_PARAMS];
    for (size_t i = 0; i < c->n; i++)
        keys[i] = c->key[i], vals[i] = c->val[i];
    struct mt_params p = {0};
    if (!pl || mt_params_resolve(&pl->desc, keys, vals, c->n, &p, err, errlen) != 0) {
        if (!pl) snprintf(err, errlen, "fit needs workload '%s'", c->workload);
        return -1;
    }
    /* the class of c, both histories (runtime.h), and the probe's parameters */
    char cls[2][1024],
        (*probe_buf)[MT_RUNTIME_PROBE_PARAM] = calloc(pl->desc.n_params + 1, sizeof *probe_buf);
    const char **probe = calloc(pl->desc.n_params + 1, sizeof *probe);
    int rc = probe_buf && probe ? 0 : -1;
    if (rc == 0) rc = mt_runtime_probe_classes(&pl->desc, p.value, mt_cli_default_threads(), cls);
    size_t nprobe =
        rc == 0 ? mt_runtime_probe_params(&pl->desc, p.value, keys, c->n, probe, probe_buf) : 0;
    mt_params_free(&p);
    if (rc != 0) {
        snprintf(err, errlen, "the runtime class of %s is too long (or out of memory)",
                 c->workload);
        free(probe_buf);
        free(probe);
        return -1;
    }
    /* the class's entry of the cache (its term, or 0: none stored when it was read, so a
     * configuration within the budget probes it and the entry is updated, never added
     * again: each class is probed at most once) */
    int found = -2;
    size_t at = 0;
    while (at < r->rt_n && strcmp(r->rt_class[at], cls[0]))
        at++;
    if (at < r->rt_n) *term = r->rt_term[at], found = r->rt_found[at];
    const char *phase = f->goal == MT_PLAN_SERVING ? "infer" : "train";
    if (found == -2) found = stored_term(r, cls, phase, term, err, errlen);
    /* first need: the probe of c's class, unless c's plan alone is over the budget (a
     * runtime term >= 0 cannot make it fit) */
    if (found == 0 && r->measure && c->plan_bytes <= f->budget) {
        fprintf(stderr, "memtrade fit: measuring the runtime terms of class %s\n", cls[0]);
        found = mt_runtime_probe_measure(r->exe, r->db, c->workload, probe, nprobe, 0, NULL, err,
                                         errlen) != 0
                    ? -1
                    : stored_term(r, cls, phase, term, err, errlen);
    }
    free(probe_buf);
    free(probe);
    if (found < 0) return -1;
    if (at == r->rt_n && at < sizeof r->rt_term / sizeof r->rt_term[0])
        snprintf(r->rt_class[r->rt_n++], sizeof r->rt_class[0], "%s", cls[0]);
    if (at < r->rt_n) r->rt_term[at] = *term, r->rt_found[at] = found;
    return found;
}
