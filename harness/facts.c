/* harness/facts.c — build and host facts for reproduction (see facts.h). */
#include "facts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <dnnl.h>
#include <libunwind.h>
#include <papi.h>
#include <sqlite3.h>

#include <memtrade/workload.h>

#include "format.h"

#ifdef MT_HAVE_MPI_HEADER
#include <mpi.h>
#endif

#ifdef MT_GIT_REV_HEADER
#include "git_rev.h"
#endif
#ifndef MT_GIT_REV
#define MT_GIT_REV "unknown"
#endif
#ifndef MT_BUILD_FLAGS
#define MT_BUILD_FLAGS "unknown"
#endif
#ifndef MT_BUILD_TYPE
#define MT_BUILD_TYPE "unknown"
#endif

const char *mt_facts_git_rev(void)
{
    return MT_GIT_REV;
}

static void cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(buf, cap, "%s", colon + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    if (f) fclose(f);
}

static void member(FILE *out, int *first, const char *key, const char *value)
{
    fprintf(out, "%s", *first ? "{" : ",");
    *first = 0;
    mt_format_json_string(out, key, strlen(key));
    fputc(':', out);
    if (value)
        mt_format_json_string(out, value, strlen(value));
    else
        fputs("null", out);
}

char *mt_facts_json(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return NULL;
    int first = 1;
    char buf[512];
    member(out, &first, "git_rev", MT_GIT_REV);
    snprintf(buf, sizeof buf, "%d.%d", MEMTRADE_WORKLOAD_ABI_MAJOR, MEMTRADE_WORKLOAD_ABI_MINOR);
    member(out, &first, "abi", buf);
#if defined(__clang__)
    snprintf(buf, sizeof buf, "clang %s", __VERSION__);
#elif defined(__GNUC__)
    snprintf(buf, sizeof buf, "gcc %s", __VERSION__);
#else
    snprintf(buf, sizeof buf, "unknown");
#endif
    member(out, &first, "compiler", buf);
    member(out, &first, "flags", MT_BUILD_FLAGS);
    member(out, &first, "build_type", MT_BUILD_TYPE);
    cpu_model(buf, sizeof buf);
    member(out, &first, "cpu", buf);
    snprintf(buf, sizeof buf, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    member(out, &first, "cores", buf);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        member(out, &first, "kernel", buf);
        member(out, &first, "host", u.nodename);
    }
    snprintf(buf, sizeof buf, "%d.%d.%d.%d", PAPI_VERSION_MAJOR(PAPI_VERSION),
             PAPI_VERSION_MINOR(PAPI_VERSION), PAPI_VERSION_REVISION(PAPI_VERSION),
             PAPI_VERSION_INCREMENT(PAPI_VERSION));
    member(out, &first, "papi", buf);
    snprintf(buf, sizeof buf, "%d.%d.%d", UNW_VERSION_MAJOR, UNW_VERSION_MINOR, UNW_VERSION_EXTRA);
    member(out, &first, "libunwind", buf);
    member(out, &first, "sqlite", sqlite3_libversion());
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    member(out, &first, "onednn", buf);
#if defined(MT_HAVE_MPI_HEADER) && defined(OMPI_MAJOR_VERSION)
    snprintf(buf, sizeof buf, "%d.%d.%d", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION,
             OMPI_RELEASE_VERSION);
    member(out, &first, "openmpi", buf);
#else
    member(out, &first, "openmpi", NULL);
#endif
    fputc('}', out);
    fclose(out);
    return text;
}
