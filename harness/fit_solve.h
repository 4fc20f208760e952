/* harness/fit_solve.h — the integer program behind `memtrade fit`'s per-tensor bit widths:
 * a multiple-choice knapsack over exact bytes (HAWQ-V3's ILP in its knapsack form).
 *
 * What it is for: n groups (the block linears), each with its options (a bit width: the
 * exact bytes it adds, from the plan, and its cost, the measured sensitivity); choose one
 * option per group so that the bytes stay within a capacity and the summed cost is least.
 * Solved exactly by dynamic programming over the Pareto set of (bytes, cost) partial sums
 * (Nemhauser-Ullmann): a partial choice that is no smaller and no better than another is
 * dropped, nothing else is, so the optimum is never lost and no byte is rounded.
 * What it is not for: where bytes and costs come from (fit.c), or printing.
 */
#ifndef MT_HARNESS_FIT_SOLVE_H
#define MT_HARNESS_FIT_SOLVE_H

#include <stddef.h>

struct mt_fit_option {
    size_t bytes; /* what this option adds to the plan */
    double cost;  /* what it costs in accuracy (finite; lower is better) */
};

/* Contract: group g's options are opt[first[g] .. first[g+1]), first has n_groups + 1
 * entries. Chooses one option per group (choice[g] = its index within the group) with
 * sum of bytes <= cap and the least sum of cost; ties go to fewer bytes, then to the
 * lexicographically smallest choice. Returns 1 with *bytes and *cost filled, 0 when no
 * choice fits (choice untouched), -1 with err when memory runs out or the Pareto set
 * grows past `max_states` (0: 1 << 22). Pure apart from its own allocations;
 * thread-safe. */
int mt_fit_mckp(const struct mt_fit_option *opt, const size_t *first, size_t n_groups, size_t cap,
                size_t max_states, size_t *choice, size_t *bytes, double *cost, char *err,
                size_t errlen);

#endif
