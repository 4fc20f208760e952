/* results/store_guard.c — how a store shares its file with other processes: the one-writer
 * lock, the bounded wait for SQLite's write lock, and how a reader opens a WAL database
 * without leaving side files behind.
 *
 * What it is for: mt_store_open's policy (store.c calls these). One harness writes a
 * database at a time: a writer holds flock(LOCK_EX) on the database file itself for as
 * long as it is open; a second writer is refused at once with the holder's pid (from
 * /proc/locks). flock and SQLite's own POSIX byte-range locks do not interact on Linux's
 * local filesystems. A writer that finds SQLite's write lock taken by some other
 * connection (an `sqlite3` shell holding BEGIN EXCLUSIVE) waits with back-off, says once
 * what it waits for, and gives up after the bound (mt_store_set_wait). Readers: a WAL
 * database read through SQLite normally creates `-wal` and `-shm` files that then belong
 * to the reader; where they do not exist and the reader could not create them for the
 * owner (another user, or a folder it cannot write: a read-only mount), the reader opens
 * the file immutable instead: no lock, no side file, the main file only.
 * What it is not for: SQL of any kind (store.c, store_read.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

/* ---------------------------------------------------------------- one writer */

/* The pid holding an flock on the file of `fd`, from /proc/locks; -1 when unknown. */
static long flock_holder(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) return -1;
    FILE *f = fopen("/proc/locks", "re");
    if (!f) return -1;
    char line[512];
    long found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char type[16];
        long pid;
        unsigned maj, min;
        unsigned long long ino;
        /* "12: FLOCK  ADVISORY  WRITE 4242 00:2e:1311 0 EOF"; waiters have "->". */
        if (strstr(line, "->")) continue;
        if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", type, &pid, &maj, &min, &ino) == 5 &&
            strcmp(type, "FLOCK") == 0 && maj == major(sb.st_dev) && min == minor(sb.st_dev) &&
            ino == (unsigned long long)sb.st_ino)
            found = pid;
    }
    fclose(f);
    return found;
}

int store_writer_lock(struct mt_store *st)
{
    int fd = open(st->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return store_fail(st, "cannot open for the writer lock: %s", strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? flock_holder(fd) : -1;
        close(fd);
        if (e != EWOULDBLOCK) return store_fail(st, "cannot lock for writing: %s", strerror(e));
        char who[64] = "another process";
        if (pid == (long)getpid())
            snprintf(who, sizeof who, "this process (pid %ld)", pid);
        else if (pid > 0)
            snprintf(who, sizeof who, "another harness (pid %ld)", pid);
        return store_fail(st,
                          "%s is writing this database; one harness writes a database at a "
                          "time: wait for it to end (or stop it), then run again (--resume "
                          "skips what is already ok)",
                          who);
    }
    st->lock_fd = fd;
    return 0;
}

void store_writer_unlock(struct mt_store *st)
{
    /* Closing any descriptor of the file drops this process's POSIX locks on it, SQLite's
     * included: store.c calls this after SQLite has closed its connection. */
    if (st->lock_fd >= 0) close(st->lock_fd);
    st->lock_fd = -1;
}

/* ---------------------------------------------------------------- waiting for SQLite's lock */

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* SQLite's busy handler: 1 = try again, 0 = give up (SQLITE_BUSY). count is 0 on the first
 * call of each wait. */
static int busy_wait(void *arg, int count)
{
    struct mt_store *st = arg;
    double now = monotonic_s();
    if (count == 0) {
        st->busy_since = now;
        st->busy_told = 0;
    }
    double waited = now - st->busy_since;
    if (waited >= st->wait_s || (st->wait_stop && *st->wait_stop)) return 0;
    if (!st->busy_told && waited >= 1.0) {
        st->busy_told = 1;
        if (st->wait_notify) st->wait_notify(st->wait_arg, st->path, st->wait_s);
    }
    long ms = count < 8 ? 1L << count : 250; /* 1, 2, 4 ... 128 ms, then 250 ms */
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

void store_install_wait(struct mt_store *st)
{
    sqlite3_busy_handler(st->db, busy_wait, st);
}

void mt_store_set_wait(struct mt_store *st, double max_s,
                       void (*notify)(void *arg, const char *path, double max_s), void *arg,
                       volatile sig_atomic_t *stop)
{
    st->wait_s = max_s;
    st->wait_notify = notify;
    st->wait_arg = arg;
    st->wait_stop = stop;
}

/* ---------------------------------------------------------------- readers */

/* 1 when the database's header says WAL (file format versions 2), else 0. */
static int is_wal(const char *path)
{
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, h, sizeof h);
    close(fd);
    return got == (ssize_t)sizeof h && (h[18] == 2 || h[19] == 2);
}

int store_reader_immutable(const char *path)
{
    if (!is_wal(path)) return 0; /* a rollback-journal reader creates nothing */
    char side[4200];
    snprintf(side, sizeof side, "%s-wal", path);
    int wal = access(side, F_OK) == 0;
    snprintf(side, sizeof side, "%s-shm", path);
    int shm = access(side, R_OK) == 0;
    if (wal && shm) return 0; /* a writer's side files: shared, nothing is created */
    /* SQLite would create them. It may where the result belongs to the owner: root (SQLite
     * hands them to the database's owner) or the owner, in a folder they can write. */
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    char *dir = strdup(path);
    if (!dir) return 1;
    char *slash = strrchr(dir, '/');
    const char *folder = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
    int writable = access(folder, W_OK) == 0;
    free(dir);
    uid_t me = geteuid();
    return !(writable && (me == 0 || me == sb.st_uid));
}

int store_reader_uri(const char *path, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "file:");
    for (const char *p = path; *p && n + 4 < cap; p++) {
        if (*p == '%' || *p == '?' || *p == '#')
            n += (size_t)snprintf(buf + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            buf[n++] = *p;
    }
    const char *q = "?immutable=1";
    if (n + strlen(q) + 1 > cap) return -1;
    snprintf(buf + n, cap - n, "%s", q);
    return 0;
}
