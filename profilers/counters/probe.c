/* profilers/counters/probe.c — mt-counters-probe: which counters this machine can read.
 *
 * What it is for: a user (or the README) asking "why is PAPI_L1_DCM empty in my runs?".
 * It opens mt_counters exactly as the harness does — event list from the argument, else
 * $MEMTRADE_COUNTERS, else the default presets — and prints every counter with its
 * source, scope and either "available" or the reason it is not, plus the /proc memory
 * figures. Exit status 0 when the counters could be opened at all, 1 otherwise.
 * What it is not for: measuring a program (use `memtrade profile`).
 */
#include "counters.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mt-counters-probe [EVENTS]\n"
            "  EVENTS  comma-separated PAPI events, 'default' for the preset list\n"
            "          (default: $%s, else 'default')\n"
            "Lists each counter as available or unavailable with the reason.\n",
            MT_COUNTERS_ENV);
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        usage(argc > 2 ? stderr : stdout);
        return argc > 2 ? 2 : 0;
    }
    struct mt_counters_opts opts = {.events = argc == 2 ? argv[1] : NULL};
    struct mt_counters *c = NULL;
    char err[512];
    if (mt_counters_open(&opts, &c, err, sizeof err) != 0) {
        fprintf(stderr, "mt-counters-probe: %s\n", err);
        return 1;
    }
    size_t avail = 0;
    for (size_t i = 0; i < mt_counters_count(c); i++) {
        const struct mt_counter *k = mt_counters_get(c, i);
        avail += k->available != 0;
        printf("%-28s %-4s %-11s", k->name, k->source == MT_COUNTER_PAPI ? "papi" : "perf",
               k->available ? "available" : "unavailable");
        if (k->available)
            printf(" scope=%s unit=%s%s%s\n", k->scope, k->unit, k->note ? " note: " : "",
                   k->note ? k->note : "");
        else
            printf(" %s\n", k->reason);
    }
    printf("%zu of %zu counters available\n", avail, mt_counters_count(c));
    struct mt_memsnap m;
    if (mt_counters_mem(&m, err, sizeof err) == 0)
        printf("rss_bytes %llu peak_rss_bytes %llu vm_bytes %llu (from /proc/self)\n",
               (unsigned long long)m.rss_bytes, (unsigned long long)m.peak_rss_bytes,
               (unsigned long long)m.vm_bytes);
    else
        printf("memory: unavailable: %s\n", err);
    mt_counters_close(c);
    return 0;
}
