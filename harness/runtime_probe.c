/* harness/runtime_probe.c — the probe run of the plan's runtime terms (runtime_probe.h). */
#include "runtime_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs `memtrade run baseline ...` with everything it writes in folder `dir`: its
 * database (dir/probe.db), output folder and model cache; its exit status. */
static int run_probe(const char *exe, const char *dir, int threads)
{
    char th[24], db[4200], out[4200], cache[4200];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(db, sizeof db, "%s/probe.db", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setenv("XDG_CACHE_HOME", cache, 1);
        dup2(STDERR_FILENO, STDOUT_FILENO); /* the caller's stdout is its report */
        const char *argv[] = {exe,  "run", "baseline", "-p",  "model=tiny",
                              "-p", "steps=3", "-p",  "eval_tokens=2048", "--db",
                              db,   "--out", out,  threads > 0 ? "--threads" : NULL, th,
                              NULL};
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Derives the terms of the probe in `probe_db` and stores them in `db`. */
static int keep_terms(const char *probe_db, const char *db, int status, char *err, size_t errlen)
{
    struct mt_store *st = NULL;
    struct mt_runtime_key key;
    struct mt_runtime_term *terms = NULL;
    size_t n = 0;
    int64_t run = 0;
    if (mt_store_open(probe_db, MT_STORE_READONLY, &st, err, errlen) != 0) {
        snprintf(err, errlen,
                 "runtime probe: `memtrade run baseline -p model=tiny` exited %d without a "
                 "database (see its output above)",
                 status);
        return -1;
    }
    int rc = mt_runtime_ok_run_after(st, "baseline", 0, &run);
    if (rc == 0 && run == 0) {
        snprintf(err, errlen,
                 "runtime probe: `memtrade run baseline -p model=tiny` exited %d without an ok "
                 "run (see its output above)",
                 status);
        rc = -1;
    } else if (rc != 0 || mt_runtime_run_key(st, run, &key) != 0 ||
               mt_runtime_derive(st, run, MT_RUNTIME_PROBE, &terms, &n) != 0) {
        snprintf(err, errlen, "runtime probe: %s", mt_store_error(st));
        rc = -1;
    }
    mt_store_close(st);
    st = NULL;
    if (rc == 0 && n == 0) {
        snprintf(err, errlen, "runtime probe: the probe run stored no plan");
        rc = -1;
    }
    if (rc == 0 && (mt_store_open(db, MT_STORE_READWRITE_CREATE, &st, err, errlen) != 0 ||
                    mt_runtime_put(st, &key, terms, n) != 0)) {
        if (st) snprintf(err, errlen, "runtime terms: %s", mt_store_error(st));
        rc = -1;
    }
    mt_store_close(st);
    free(terms);
    return rc;
}

int mt_runtime_probe_measure(const char *exe, const char *db, int threads, char *err,
                             size_t errlen)
{
    char dir[] = "/tmp/memtrade-probe.XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "runtime probe: cannot create a temporary folder: %s",
                 strerror(errno));
        return -1;
    }
    char probe_db[sizeof dir + 16];
    snprintf(probe_db, sizeof probe_db, "%s/probe.db", dir);
    int status = run_probe(exe, dir, threads);
    int rc = keep_terms(probe_db, db, status, err, errlen);
    mt_recover_remove(dir);
    return rc;
}
