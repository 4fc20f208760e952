/* profilers/counters/probe.c — mt-counters-probe: which counters this machine can read.
 *
 * What it is for: a user (or the README) asking "why is PAPI_L1_DCM empty in my runs?".
 * It opens mt_counters exactly as the harness does — event list from the argument, else
 * $MEMTRADE_COUNTERS, else the default presets — and prints every counter with its
 * source, scope and either "available" or the reason it is not, plus the /proc memory
 * figures. With --sde it also lists every software-defined event some library in this
 * process registered (run it under the heap profiler's LD_PRELOAD to see memtrade's).
 * Exit status 0 when the counters could be opened at all, 1 otherwise, 2 on bad usage.
 * What it is not for: measuring a program (use `memtrade profile`).
 */
#include "counters.h"

#include <papi.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mt-counters-probe [--sde] [EVENTS]\n"
            "  EVENTS  comma-separated PAPI events, 'default' for the preset list\n"
            "          (default: $%s, else 'default')\n"
            "  --sde   also list the SDE counters registered in this process\n"
            "Lists each counter as available or unavailable with the reason.\n",
            MT_COUNTERS_ENV);
}

/* Registered SDE counters; PAPI is initialised by mt_counters_open by now. */
static void list_sde(void)
{
    int cidx = PAPI_get_component_index("sde");
    const PAPI_component_info_t *ci = cidx >= 0 ? PAPI_get_component_info(cidx) : NULL;
    if (!ci || ci->disabled) {
        printf("sde: none (%s)\n", ci ? ci->disabled_reason : "no sde component in PAPI");
        return;
    }
    size_t n = 0;
    int code = PAPI_NATIVE_MASK;
    for (int rc = PAPI_enum_cmp_event(&code, PAPI_ENUM_FIRST, cidx); rc == PAPI_OK;
         rc = PAPI_enum_cmp_event(&code, PAPI_ENUM_EVENTS, cidx)) {
        char name[PAPI_MAX_STR_LEN];
        if (PAPI_event_code_to_name(code, name) == PAPI_OK) {
            printf("sde: %s\n", name);
            n++;
        }
    }
    printf("%zu SDE counters registered\n", n);
}

int main(int argc, char **argv)
{
    int sde = 0;
    const char *events = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--sde")) {
            sde = 1;
        } else if (argv[i][0] == '-' || events) {
            usage(stderr);
            return 2;
        } else {
            events = argv[i];
        }
    }
    struct mt_counters_opts opts = {.events = events};
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
    if (sde) list_sde();
    mt_counters_close(c);
    return 0;
}
