/* plugin_check.h — running a workload plugin through tests/support's fake ctx, for
 * the prune and distill plugin tests.
 *
 * What it is for: plugin_load() finds the descriptor in a .so, plugin_run() runs it with
 * "name=value" overrides and the shared cache folder and checks it succeeded with its
 * regions paired, plugin_need() fetches a metric that must exist with its unit. Include
 * after check.h.
 * What it is not for: anything the harness does.
 */
#ifndef MT_PRUNE_TEST_PLUGIN_CHECK_H
#define MT_PRUNE_TEST_PLUGIN_CHECK_H

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fake_ctx.h"

static const struct mt_workload *plugin_wl;
static char plugin_cache_dir[256];
static char plugin_scratch_dir[256]; /* the run's scratch folder ("" = none) */

/* Loads `so` and checks its descriptor names `name`; returns 0 or -1 with a message. */
static inline int plugin_load(const char *so_path, const char *name)
{
    void *so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dlopen %s: %s\n", so_path, dlerror());
        return -1;
    }
    plugin_wl = dlsym(so, MEMTRADE_WORKLOAD_SYMBOL);
    if (!plugin_wl || plugin_wl->abi_major != MEMTRADE_WORKLOAD_ABI_MAJOR ||
        strcmp(plugin_wl->name, name)) {
        fprintf(stderr, "%s: bad descriptor\n", so_path);
        return -1;
    }
    return 0;
}

/* Runs the plugin; a failed run counts as a failed check. Returns run()'s status. */
static inline int plugin_run(struct fake_ctx *f, const char **ov, size_t n)
{
    fake_ctx_init(f, plugin_wl, ov, n);
    snprintf(f->cache_dir, sizeof(f->cache_dir), "%s", plugin_cache_dir);
    snprintf(f->scratch_dir, sizeof(f->scratch_dir), "%s", plugin_scratch_dir);
    int rc = plugin_wl->run(&f->base);
    CHECK(rc == 0, "run failed: %s", f->error);
    CHECK(f->open_regions == 0 && f->region_errors == 0, "regions unpaired");
    return rc;
}

static inline double plugin_need(const struct fake_ctx *f, const char *name, const char *unit)
{
    const struct fake_metric *m = fake_ctx_metric(f, name);
    CHECK(m && strcmp(m->unit, unit) == 0 && !m->na, "metric %s missing or not in %s", name, unit);
    return m ? m->value : NAN;
}

#endif
