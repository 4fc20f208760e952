/* harness/runtime_probe.c — the probe run of the plan's runtime terms (runtime_probe.h). */
#include "runtime_probe.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <memtrade/workload.h>

#include "facts.h"
#include "plan.h"
#include "recover.h"
#include "store.h"

int mt_runtime_probe_key(struct mt_store *st, struct mt_runtime_key *key)
{
    char *facts = mt_facts_json();
    int rc = facts ? mt_runtime_key(st, facts, key) : -1;
    free(facts);
    return rc;
}

size_t mt_runtime_probe_params(const struct mt_workload *wl, char *const *values,
                               const char *const *given, size_t ngiven, const char **out,
                               char (*buf)[MT_RUNTIME_PROBE_PARAM])
{
    size_t n = 0;
    for (size_t i = 0; i < wl->n_params; i++) {
        const char *name = wl->params[i].name, *v = values[i];
        size_t len = strlen(name);
        int steps = !mt_runtime_class_key(name) &&
                    (!strcmp(name, "steps") || (len > 6 && !strcmp(name + len - 6, "_steps")));
        int named = 0;
        for (size_t k = 0; k < ngiven; k++)
            named |= !strcmp(given[k], name);
        if (steps && atoll(v) > MT_RUNTIME_PROBE_STEPS)
            snprintf(buf[n], sizeof buf[n], "%s=%d", name, MT_RUNTIME_PROBE_STEPS);
        else if (named)
            snprintf(buf[n], sizeof buf[n], "%s=%s", name, v);
        else
            continue;
        out[n] = buf[n];
        n++;
    }
    return n;
}

/* Runs `memtrade run WORKLOAD -p ...` with everything it writes in folder `dir`: its
 * database (dir/probe.db), output folder and model cache; its exit status. */
static int run_probe(const char *exe, const char *dir, const char *workload,
                     const char *const *params, size_t n, int threads)
{
    char th[24], db[4200], out[4200], cache[4200];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(db, sizeof db, "%s/probe.db", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    const char **argv = calloc(2 * n + 12, sizeof *argv);
    if (!argv) return -1;
    size_t a = 0;
    argv[a++] = exe;
    argv[a++] = "run";
    argv[a++] = workload;
    for (size_t i = 0; i < n; i++) {
        argv[a++] = "-p";
        argv[a++] = params[i];
    }
    const char *tail[] = {"--db", db, "--out", out};
    for (size_t i = 0; i < 4; i++)
        argv[a++] = tail[i];
    if (threads > 0) {
        argv[a++] = "--threads";
        argv[a++] = th;
    }
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return -1;
    }
    if (pid == 0) {
        setenv("XDG_CACHE_HOME", cache, 1);
        dup2(STDERR_FILENO, STDOUT_FILENO); /* the caller's stdout is its report */
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    free(argv);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Derives the terms of the first ok run of `workload` after run `after` in `probe_db`
 * and stores them in `db` under that run's key; *run = its id, cls = its class. */
static int keep_terms(const char *probe_db, const char *db, const char *workload, int status,
                      const char *probe, int64_t after, int64_t *run, char *cls, size_t clslen,
                      char *err, size_t errlen)
{
    struct mt_store *st = NULL;
    struct mt_runtime_key key;
    struct mt_runtime_term *terms = NULL;
    size_t n = 0;
    *run = 0;
    if (mt_store_open(probe_db, MT_STORE_READONLY, &st, err, errlen) != 0) {
        snprintf(err, errlen,
                 "runtime probe: `memtrade run %s` exited %d without a database (see its "
                 "output above)",
                 probe, status);
        return -1;
    }
    int rc = mt_runtime_ok_run_after(st, workload, after, run);
    if (rc == 0 && *run == 0) {
        snprintf(err, errlen,
                 "runtime probe: `memtrade run %s` exited %d without an ok run (see its output "
                 "above)",
                 probe, status);
        rc = -1;
    } else if (rc != 0 || mt_runtime_run_key(st, *run, &key) != 0 ||
               mt_runtime_derive(st, *run, probe, &terms, &n) != 0) {
        snprintf(err, errlen, "runtime probe: %s", mt_store_error(st));
        rc = -1;
    }
    mt_store_close(st);
    st = NULL;
    if (rc == 0 && n == 0) {
        snprintf(err, errlen, "runtime probe: the probe run of %s stored no plan", probe);
        rc = -1;
    }
    if (rc == 0 && (mt_store_open(db, MT_STORE_READWRITE_CREATE, &st, err, errlen) != 0 ||
                    mt_runtime_put(st, &key, terms, n) != 0)) {
        if (st) snprintf(err, errlen, "runtime terms: %s", mt_store_error(st));
        rc = -1;
    }
    if (rc == 0) snprintf(cls, clslen, "%s", key.cls);
    mt_store_close(st);
    free(terms);
    return rc;
}

/* Whether folder `path` holds a file, at any depth (a model the probe run cached). */
static int has_file(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[PATH_MAX];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (lstat(sub, &sb) == 0) found = S_ISDIR(sb.st_mode) ? has_file(sub) : 1;
    }
    if (d) closedir(d);
    return found;
}

int mt_runtime_probe_measure(const char *exe, const char *db, const char *workload,
                             const char *const *params, size_t n, int threads,
                             char classes[2][1024], char *err, size_t errlen)
{
    char dir[] = "/tmp/memtrade-probe.XXXXXX", got[2][1024] = {"", ""};
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "runtime probe: cannot create a temporary folder: %s",
                 strerror(errno));
        return -1;
    }
    char probe_db[sizeof dir + 16], probe[2048];
    snprintf(probe_db, sizeof probe_db, "%s/probe.db", dir);
    size_t used = (size_t)snprintf(probe, sizeof probe, "%s", workload);
    for (size_t i = 0; i < n && used < sizeof probe; i++)
        used += (size_t)snprintf(probe + used, sizeof probe - used, " %s", params[i]);
    int64_t run = 0;
    int rc = 0;
    /* the first run trains its model afresh; when it did and cached it, a second one loads
     * it (a training workload caches nothing: a second run would train again, the same
     * class) */
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        int status = run_probe(exe, dir, workload, params, n, threads);
        rc = keep_terms(probe_db, db, workload, status, probe, run, &run, got[pass],
                        sizeof got[pass], err, errlen);
        size_t len = strlen(got[pass]);
        char cache[sizeof dir + 16];
        snprintf(cache, sizeof cache, "%s/cache", dir);
        if (rc != 0 || len < 11 || strcmp(got[pass] + len - 11, "trained=yes") != 0 ||
            !has_file(cache))
            break;
    }
    if (!strcmp(got[0], got[1])) got[1][0] = '\0'; /* a training workload trains twice */
    if (classes) memcpy(classes, got, sizeof got);
    mt_recover_remove(dir);
    return rc;
}

int mt_runtime_probe_classes(const struct mt_workload *wl, char *const *values, int threads,
                             char cls[2][1024])
{
    const char **names = calloc(wl->n_params + 1, sizeof *names);
    int rc = names ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < wl->n_params; i++)
        names[i] = wl->params[i].name;
    for (int h = 0; rc == 0 && h < 2; h++)
        rc = mt_runtime_class(wl->name, names, (const char *const *)values, wl->n_params, threads,
                              h == 0, cls[h], sizeof cls[h]);
    free(names);
    return rc;
}

/* Whether `db` holds terms of either class of cls for this build and machine: 1, 0 (or no
 * database), -1 with err. */
static int class_stored(const char *db, char cls[2][1024], char *err, size_t errlen)
{
    struct mt_store *st = NULL;
    struct mt_runtime_key key;
    if (access(db, F_OK) != 0) return 0;
    if (mt_store_open(db, MT_STORE_READONLY, &st, err, errlen) != 0) return -1;
    int rc = mt_runtime_probe_key(st, &key) != 0 ? -1 : 0;
    for (int h = 0; rc == 0 && h < 2; h++) {
        struct mt_runtime_term *t = NULL;
        size_t nt = 0;
        snprintf(key.cls, sizeof key.cls, "%s", cls[h]);
        rc = mt_runtime_get(st, &key, &t, &nt) != 0 ? -1 : nt > 0;
        free(t);
    }
    if (rc < 0) snprintf(err, errlen, "runtime terms: %s", mt_store_error(st));
    mt_store_close(st);
    return rc;
}

/* Probes the class of plan p (cls): 0, or -1 with err. */
static int probe_plan(const char *exe, const char *db, const struct mt_plan *p, char *err,
                      size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    char(*buf)[MT_RUNTIME_PROBE_PARAM] = calloc(wl->n_params + 1, sizeof *buf);
    const char **given = calloc(wl->n_params + 1, sizeof *given);
    const char **params = calloc(wl->n_params + 1, sizeof *params);
    size_t ngiven = 0;
    int rc = buf && given && params ? 0 : -1;
    if (rc) snprintf(err, errlen, "runtime probe: out of memory");
    for (size_t i = 0; rc == 0 && i < wl->n_params; i++) { /* what differs from the default */
        char canon[256], why[256];
        if (mt_params_check_value(wl->name, &wl->params[i], wl->params[i].def, canon, sizeof canon,
                                  why, sizeof why) != 0 ||
            strcmp(canon, p->params.value[i]) != 0)
            given[ngiven++] = wl->params[i].name;
    }
    size_t n =
        rc == 0 ? mt_runtime_probe_params(wl, p->params.value, given, ngiven, params, buf) : 0;
    if (rc == 0)
        rc = mt_runtime_probe_measure(exe, db, wl->name, params, n, p->threads, NULL, err, errlen);
    free(buf);
    free(given);
    free(params);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int mt_runtime_probe_plans(const char *exe, const char *db, struct mt_plan *plans, size_t n,
                           int dry, FILE *log, struct mt_runtime_probe_count *count, char *err,
                           size_t errlen)
{
    memset(count, 0, sizeof *count);
    err[0] = '\0';
    char(*cls)[2][1024] = calloc(n + 1, sizeof *cls);
    int rc = cls ? 0 : -1;
    if (rc) snprintf(err, errlen, "runtime probe: out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct mt_plan *p = &plans[i];
        if (!p->plugin->desc.plan) continue; /* no plan: no terms to add to one */
        if (mt_runtime_probe_classes(&p->plugin->desc, p->params.value, p->threads, cls[i]) != 0) {
            snprintf(err, errlen, "runtime probe: the class of %s is too long",
                     p->plugin->desc.name);
            rc = -1;
            break;
        }
        size_t first = 0; /* the first plan of this class, whose note the others copy */
        while (first < i && (!plans[first].plugin->desc.plan || strcmp(cls[first][0], cls[i][0])))
            first++;
        if (first < i) {
            if (plans[first].runtime_note && !(p->runtime_note = strdup(plans[first].runtime_note)))
                rc = -1;
            continue;
        }
        count->classes++;
        char why[3200] = "";
        int stored = class_stored(db, cls[i], err, errlen);
        if (stored < 0) {
            rc = -1;
        } else if (stored) {
            fprintf(log, "memtrade: runtime terms of class %s: stored\n", cls[i][0]);
            count->stored++;
        } else if (p->ranks > 1) {
            snprintf(why, sizeof why,
                     "class %s not probed: the probe runs single processes (%d ranks here)",
                     cls[i][0], p->ranks);
            fprintf(log, "memtrade: runtime terms of %s\n", why);
            count->skipped++;
        } else if (dry) {
            fprintf(log, "memtrade: runtime terms of class %s: missing (a probe would run)\n",
                    cls[i][0]);
            count->measured++;
        } else {
            fprintf(log, "memtrade: runtime terms of class %s: probing (1-2 short runs)\n",
                    cls[i][0]);
            double t0 = now_s();
            char perr[2048];
            if (probe_plan(exe, db, p, perr, sizeof perr) != 0) {
                snprintf(why, sizeof why, "the probe of class %s failed: %s", cls[i][0], perr);
                fprintf(log, "memtrade: %s\n", why);
                count->failed++;
            } else {
                fprintf(log, "memtrade: runtime terms of class %s: measured now in %.1f s\n",
                        cls[i][0], now_s() - t0);
                count->measured++;
            }
            count->probe_s += now_s() - t0;
        }
        if (rc == 0 && why[0] && !(p->runtime_note = strdup(why))) rc = -1;
    }
    if (rc && !err[0]) snprintf(err, errlen, "runtime probe: out of memory");
    free(cls);
    return rc;
}
