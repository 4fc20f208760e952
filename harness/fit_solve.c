/* fit_solve.c — the multiple-choice knapsack of fit_solve.h, exactly, by dynamic
 * programming over Pareto sets of partial sums. */
#include "fit_solve.h"

#include <stdio.h>
#include <stdlib.h>

struct state {
    size_t bytes;
    double cost;
    size_t parent; /* index in the previous stage */
    size_t option; /* index within the group */
};

static int cmp_state(const void *a, const void *b)
{
    const struct state *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? -1 : 1;
    if (x->cost != y->cost) return x->cost < y->cost ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return x->option < y->option ? -1 : x->option > y->option;
}

/* Keeps, of s[0..n) sorted by bytes then cost, the states whose cost is below that of
 * every state with fewer bytes (the Pareto set); returns how many, in place. */
static size_t pareto(struct state *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || s[i].cost < s[k - 1].cost) s[k++] = s[i];
    return k;
}

int mt_fit_mckp(const struct mt_fit_option *opt, const size_t *first, size_t n_groups, size_t cap,
                size_t max_states, size_t *choice, size_t *bytes, double *cost, char *err,
                size_t errlen)
{
    if (!max_states) max_states = (size_t)1 << 22;
    struct state **stage = calloc(n_groups + 1, sizeof *stage);
    size_t *n = calloc(n_groups + 1, sizeof *n);
    int rc = -1;
    if (!stage || !n || !(stage[0] = malloc(sizeof **stage))) goto oom;
    stage[0][0] = (struct state){0, 0.0, 0, 0};
    n[0] = 1;
    for (size_t g = 0; g < n_groups; g++) {
        size_t m = first[g + 1] - first[g];
        if (m && n[g] > max_states / m) {
            snprintf(err, errlen,
                     "fit: the knapsack's Pareto set grew past %zu states at group %zu of %zu",
                     max_states, g + 1, n_groups);
            goto out;
        }
        size_t cap_next = n[g] * m > 0 ? n[g] * m : 1;
        struct state *next = malloc(cap_next * sizeof *next);
        if (!next) goto oom;
        size_t k = 0;
        for (size_t i = 0; i < n[g]; i++)
            for (size_t j = 0; j < m; j++) {
                const struct mt_fit_option *o = &opt[first[g] + j];
                if (o->bytes > cap - stage[g][i].bytes) continue; /* never over budget */
                next[k++] =
                    (struct state){stage[g][i].bytes + o->bytes, stage[g][i].cost + o->cost, i, j};
            }
        qsort(next, k, sizeof *next, cmp_state);
        stage[g + 1] = next;
        n[g + 1] = pareto(next, k);
        if (!n[g + 1]) {
            rc = 0;
            goto out;
        }
    }
    /* the Pareto set's costs fall as bytes grow: its last state is the least cost */
    size_t at = n[n_groups] - 1;
    *bytes = stage[n_groups][at].bytes;
    *cost = stage[n_groups][at].cost;
    for (size_t g = n_groups; g > 0; g--) {
        choice[g - 1] = stage[g][at].option;
        at = stage[g][at].parent;
    }
    rc = 1;
    goto out;
oom:
    snprintf(err, errlen, "fit: out of memory in the knapsack");
out:
    for (size_t g = 0; stage && g <= n_groups; g++)
        free(stage[g]);
    free(stage);
    free(n);
    return rc;
}
