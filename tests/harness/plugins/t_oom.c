/* tests/harness/plugins/t_oom.c — a test workload that allocates (and touches) memory
 * without bound. With check=on it returns an error when malloc fails; with check=off it
 * writes through the NULL pointer. Either way the run must end `oom`. */
#include <stdlib.h>
#include <string.h>

#include "../test_plugin.h"

static const struct mt_param_spec params[] = {
    {"check", MT_PARAM_BOOL, "on", 0, 0, NULL, "check malloc's result"},
    {"chunk_mib", MT_PARAM_INT, "8", 1, 1024, NULL, "allocation size, MiB"},
};

static int run(struct mt_ctx *ctx)
{
    size_t chunk = (size_t)mt_param_int(ctx, "chunk_mib") << 20;
    int check = mt_param_bool(ctx, "check");
    void *volatile keep = NULL;
    for (size_t total = 0;; total += chunk) {
        void **p = malloc(chunk);
        if (!p && check)
            return mt_error(ctx, "malloc of %zu bytes failed after %zu bytes", chunk, total);
        memset(p, 1, chunk);
        p[0] = keep; /* a chain, so nothing is unreachable */
        keep = p;
    }
}

MT_TEST_PLUGIN(.name = "t_oom", .summary = "test: allocates without bound", .params = params,
               .n_params = 2);
