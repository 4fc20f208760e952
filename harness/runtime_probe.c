/* harness/runtime_probe.c — the probe run of the plan's runtime terms (runtime_probe.h). */
#include "runtime_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memtrade/workload.h>

#include "facts.h"
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
    /* the first run trains its model afresh; when it did, a second one loads it */
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        int status = run_probe(exe, dir, workload, params, n, threads);
        rc = keep_terms(probe_db, db, workload, status, probe, run, &run, got[pass],
                        sizeof got[pass], err, errlen);
        size_t len = strlen(got[pass]);
        if (rc != 0 || len < 11 || strcmp(got[pass] + len - 11, "trained=yes") != 0) break;
    }
    if (!strcmp(got[0], got[1])) got[1][0] = '\0'; /* a training workload trains twice */
    if (classes) memcpy(classes, got, sizeof got);
    mt_recover_remove(dir);
    return rc;
}
