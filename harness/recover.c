/* harness/recover.c — scratch folders that outlive their harness (see recover.h). */
#define _GNU_SOURCE
#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner_record.h"

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

void mt_recover_remove(const char *scratch)
{
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The database's canonical path (it exists once the store is open). */
static void db_identity(const char *db, char *buf, size_t cap)
{
    char real[PATH_MAX];
    snprintf(buf, cap, "%s", db && realpath(db, real) ? real : db ? db : "");
}

/* Writes `text` to dir/name in full; 0, or -1 with errno. */
static int write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    if (!f) return -1;
    int bad = fputs(text, f) < 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (bad) {
        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

int mt_recover_mark(const struct mt_runner_opts *o, const struct mt_job *job, char *err,
                    size_t errlen)
{
    char db[PATH_MAX], text[PATH_MAX + 128];
    db_identity(o->db_path, db, sizeof db);
    snprintf(text, sizeof text, "db %s\nrun %lld\nharness %d\n", db, (long long)job->run_id,
             (int)getpid());
    if (write_file(job->scratch, "run.txt", text) != 0) {
        snprintf(err, errlen, "cannot write %s/run.txt: %s", job->scratch, strerror(errno));
        return -1;
    }
    return 0;
}

void mt_recover_save_outcome(const struct mt_runner_opts *o, const struct mt_job *job)
{
    char text[2048];
    snprintf(text, sizeof text,
             "ranks %d\nevent_ranks %d\nwstatus %d\nwall_s %.17g\nmaxrss_kib %ld\n"
             "timed_out %d\noom_killed %d\noom_rss %llu\ninterrupted %d\nmem_limit %llu\n"
             "timeout_s %.17g\nexec_errno %d\nheap %s\n",
             job->ranks, job->event_ranks, job->wstatus, job->wall_s, job->ru.ru_maxrss,
             job->timed_out, job->oom_killed, (unsigned long long)job->oom_rss, job->interrupted,
             (unsigned long long)job->mem_limit, job->timeout_s, job->exec_errno,
             o->heap_mode ? o->heap_mode : "off");
    write_file(job->scratch, "outcome.txt", text); /* best effort: see recover.h */
}

/* The value of `key` in a "key value" file, in val (cap bytes); 0, or -1 when absent. */
static int file_value(const char *dir, const char *name, const char *key, char *val, size_t cap)
{
    char path[PATH_MAX + 64], line[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t klen = strlen(key);
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != ' ') continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(val, cap, "%s", line + klen + 1);
        found = 0;
    }
    fclose(f);
    return found;
}

static double outcome_num(const char *dir, const char *key)
{
    char v[64];
    return file_value(dir, "outcome.txt", key, v, sizeof v) == 0 ? strtod(v, NULL) : 0;
}

/* Rebuilds the reaped job of folder `dir` for run `run_id`; 1 when outcome.txt told how
 * the process ended, 0 when the harness died first. */
static int rebuild_job(const char *dir, int64_t run_id, struct mt_job *job, char *heap, size_t cap)
{
    memset(job, 0, sizeof *job);
    snprintf(job->scratch, sizeof job->scratch, "%s", dir);
    job->run_id = run_id;
    job->reaped = 1;
    snprintf(heap, cap, "off");
    if (file_value(dir, "outcome.txt", "heap", heap, cap) == 0) {
        job->ranks = (int)outcome_num(dir, "ranks");
        job->event_ranks = (int)outcome_num(dir, "event_ranks");
        job->wstatus = (int)outcome_num(dir, "wstatus");
        job->wall_s = outcome_num(dir, "wall_s");
        job->ru.ru_maxrss = (long)outcome_num(dir, "maxrss_kib");
        job->timed_out = (int)outcome_num(dir, "timed_out");
        job->oom_killed = (int)outcome_num(dir, "oom_killed");
        job->oom_rss = (uint64_t)outcome_num(dir, "oom_rss");
        job->interrupted = (int)outcome_num(dir, "interrupted");
        job->mem_limit = (uint64_t)outcome_num(dir, "mem_limit");
        job->timeout_s = outcome_num(dir, "timeout_s");
        job->exec_errno = (int)outcome_num(dir, "exec_errno");
        if (job->ranks < 1) job->ranks = 1;
        return 1;
    }
    /* The harness died: the events say how far the run got; the process status is gone. */
    for (int r = 0; r < 4096; r++) {
        char ev[PATH_MAX + 32];
        snprintf(ev, sizeof ev, "%s/events.%d", dir, r);
        if (access(ev, F_OK) != 0) break;
        job->event_ranks = r + 1;
    }
    job->ranks = job->event_ranks > 0 ? job->event_ranks : 1;
    job->wall_s = NAN;
    job->interrupted = 1;
    job->harness_died = 1;
    job->rusage_unknown = 1;
    return 0;
}

int mt_recover_scratch(struct mt_store *st, const struct mt_runner_opts *o,
                       struct mt_recover_counts *counts, char *err, size_t errlen)
{
    memset(counts, 0, sizeof *counts);
    DIR *d = opendir(o->scratch_root);
    if (!d) return 0; /* no scratch folder: nothing was left */
    char db[PATH_MAX];
    db_identity(o->db_path, db, sizeof db);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        long long id;
        int pid, used = 0;
        if (sscanf(e->d_name, "run-%lld.%d%n", &id, &pid, &used) != 2 || e->d_name[used]) continue;
        char dir[PATH_MAX], val[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", o->scratch_root, e->d_name);
        if (file_value(dir, "run.txt", "db", val, sizeof val) != 0 || strcmp(val, db) != 0)
            continue; /* another database's, or an older memtrade's */
        if (pid != (int)getpid() && (kill(pid, 0) == 0 || errno == EPERM)) continue;
        enum mt_run_status status;
        int found = mt_store_run_status(st, id, &status);
        if (found < 0) {
            snprintf(err, errlen, "%s", mt_store_error(st));
            rc = -1;
            break;
        }
        if (found == 0 || status != MT_RUN_RUNNING) { /* recorded already, or not ours */
            mt_recover_remove(dir);
            counts->removed++;
            continue;
        }
        struct mt_job job;
        char heap[32];
        int told = rebuild_job(dir, id, &job, heap, sizeof heap);
        struct mt_runner_opts ro = *o;
        ro.heap_mode = heap;
        if (mt_runner_record(st, &ro, &job, &status, err, errlen) == -1) {
            rc = -1;
        } else {
            counts->stored++;
            counts->interrupted += !told;
        }
    }
    closedir(d);
    return rc;
}
