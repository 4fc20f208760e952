/* harness/cmd_plot.c — `memtrade plot ...`: hands over to the plot generator's own
 * command (plots/, `mt-plot`), which takes the same options and defaults (--db, --out,
 * MEMTRADE_DB). Not for: drawing anything itself. */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int mt_cmd_plot(int argc, char **argv)
{
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
    (void)argc;
    return MT_EXIT_SYSTEM;
}
