/* harness/cmd_plot.c — `memtrade plot ...`: hands over to the plot generator's own
 * command (plots/, `mt-plot`), which takes the same options and defaults (--db, --out,
 * MEMTRADE_DB). Not for: drawing anything itself. */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

/* The value of option `name` in argv ("--x V" or "--x=V"), or NULL. */
static const char *option_value(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    const char *v = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strncmp(argv[i], name, len) != 0) continue;
        if (argv[i][len] == '=')
            v = argv[i] + len + 1;
        else if (!argv[i][len] && i + 1 < argc)
            v = argv[++i];
    }
    return v;
}

/* What the harness checks before the generator runs, as every other command does: a
 * database it may read (not newer than this build: exit 3) and metric names that exist
 * (a misspelt one would give empty plots). Returns 0 or the exit status. */
static int check_database(int argc, char **argv)
{
    const char *db = option_value(argc, argv, "--db");
    const char *out = option_value(argc, argv, "--out");
    char path[PATH_MAX];
    if (!db && getenv("MEMTRADE_DB") && *getenv("MEMTRADE_DB")) db = getenv("MEMTRADE_DB");
    if (!db) snprintf(path, sizeof path, "%s/memtrade.db", out ? out : "out");
    if (!db) db = path;
    if (access(db, F_OK) != 0) return 0; /* the generator says what is missing */
    char err[2048];
    struct mt_store *st;
    if (mt_store_open(db, MT_STORE_READONLY, &st, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade plot: %s\n", err);
        return MT_EXIT_DB;
    }
    int bad = mt_cli_check_metric(st, "plot", "--x", option_value(argc, argv, "--x"), NULL);
    if (!bad) bad = mt_cli_check_metric(st, "plot", "--y", option_value(argc, argv, "--y"), NULL);
    mt_store_close(st);
    return bad;
}

int mt_cmd_plot(int argc, char **argv)
{
    int bad = check_database(argc, argv);
    if (bad) return bad;
    char exe[PATH_MAX], sibling[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(sibling, sizeof sibling, "%s/mt-plot", dirname(exe));
    /* Next to memtrade (installed), then where this build put it, then PATH. */
    const char *candidates[] = {sibling,
#ifdef MT_PLOT_EXE
                                MT_PLOT_EXE,
#endif
                                NULL};
    argv[0] = "mt-plot";
    for (size_t i = 0; candidates[i]; i++)
        if (access(candidates[i], X_OK) == 0) execv(candidates[i], argv);
    execvp("mt-plot", argv);
    fprintf(stderr, "memtrade plot: cannot run mt-plot (the plot generator): %s\n",
            strerror(errno));
    return MT_EXIT_SYSTEM;
}
