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

/* The largest run id in `db` (0 when none or no database yet). */
static int64_t last_run(const char *db)
{
    struct mt_store *st = NULL;
    char err[256];
    int64_t id = 0;
    if (access(db, F_OK) == 0 && mt_store_open(db, MT_STORE_READONLY, &st, err, sizeof err) == 0) {
        if (mt_runtime_last_run(st, &id) != 0) id = 0;
        mt_store_close(st);
    }
    return id;
}

/* Runs `memtrade run baseline ...` into db with XDG_CACHE_HOME=cache; its exit status. */
static int run_probe(const char *exe, const char *db, int threads, const char *cache)
{
    char th[24];
    snprintf(th, sizeof th, "%d", threads);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setenv("XDG_CACHE_HOME", cache, 1);
        dup2(STDERR_FILENO, STDOUT_FILENO); /* the caller's stdout is its report */
        const char *argv[] = {exe,    "run",   "baseline",          "-p",
                              "model=tiny",    "-p",                "steps=3",
                              "-p",   "eval_tokens=2048",           "--db",
                              db,     threads > 0 ? "--threads" : NULL, th,
                              NULL};
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int mt_runtime_probe_measure(const char *exe, const char *db, int threads, int64_t *probe_run,
                             char *err, size_t errlen)
{
    *probe_run = 0;
    int64_t before = last_run(db);
    char cache[] = "/tmp/memtrade-probe.XXXXXX";
    if (!mkdtemp(cache)) {
        snprintf(err, errlen, "runtime probe: cannot create a model cache: %s", strerror(errno));
        return -1;
    }
    int status = run_probe(exe, db, threads, cache);
    mt_recover_remove(cache);
    struct mt_store *st = NULL;
    if (mt_store_open(db, MT_STORE_READWRITE_CREATE, &st, err, errlen) != 0) return -1;
    struct mt_runtime_key key;
    int rc = mt_runtime_ok_run_after(st, "baseline", before, probe_run);
    if (rc == 0 && *probe_run == 0) {
        snprintf(err, errlen,
                 "runtime probe: `memtrade run baseline -p model=tiny` exited %d without an ok "
                 "run in %s (see its output above)",
                 status, db);
        rc = -1;
    } else if (rc == 0 && (mt_runtime_probe_key(st, &key) != 0 ||
                           mt_runtime_derive(st, *probe_run, &key) < 0)) {
        snprintf(err, errlen, "runtime probe: %s", mt_store_error(st));
        rc = -1;
    } else if (rc != 0) {
        snprintf(err, errlen, "runtime probe: %s", mt_store_error(st));
    }
    mt_store_close(st);
    return rc;
}
