/* test_fit_solve.c — the multiple-choice knapsack of harness/fit_solve.h is optimal and
 * never over its capacity: on small constructed instances its least cost equals brute
 * force's over every choice (integer costs, so sums are exact), ties resolved to fewer
 * bytes as brute force does; no fitting choice gives 0; a Pareto set past its limit is
 * refused with a message. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fit_solve.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

#define G 6
#define M 5

/* the best (cost, bytes) over all M^ng choices within cap; 0 when none fits */
static int brute(const struct mt_fit_option *o, const size_t *first, size_t ng, size_t cap,
                 double *cost, size_t *bytes)
{
    size_t idx[G] = {0};
    int found = 0;
    for (;;) {
        size_t b = 0;
        double c = 0;
        for (size_t g = 0; g < ng; g++)
            b += o[first[g] + idx[g]].bytes, c += o[first[g] + idx[g]].cost;
        if (b <= cap && (!found || c < *cost || (c == *cost && b < *bytes)))
            *cost = c, *bytes = b, found = 1;
        size_t g = 0;
        while (g < ng && ++idx[g] == first[g + 1] - first[g])
            idx[g++] = 0;
        if (g == ng) return found;
    }
}

static int optimal(void)
{
    for (int inst = 0; inst < 400; inst++) {
        struct mt_fit_option o[G * M];
        size_t first[G + 1], ng = 1 + next() % G, k = 0, total = 0;
        for (size_t g = 0; g < ng; g++) {
            first[g] = k;
            size_t m = 1 + next() % M;
            for (size_t j = 0; j < m; j++, k++) {
                /* widths: fewer bytes cost more, with noise so nothing is monotone */
                o[k].bytes = 100 * (j + 1) + next() % 400;
                o[k].cost = (double)(next() % 50) - (double)(j * 3);
                total += o[k].bytes;
            }
        }
        first[ng] = k;
        size_t cap = next() % (total + 1);
        size_t choice[G], b = 0, bb = 0;
        double c = 0, bc = 0;
        char err[256];
        int got = mt_fit_mckp(o, first, ng, cap, 0, choice, &b, &c, err, sizeof err);
        int want = brute(o, first, ng, cap, &bc, &bb);
        if (got != want) {
            fprintf(stderr, "instance %d: solver %d, brute force %d\n", inst, got, want);
            return 1;
        }
        if (!got) continue;
        size_t sb = 0;
        double sc = 0;
        for (size_t g = 0; g < ng; g++) {
            if (choice[g] >= first[g + 1] - first[g]) return fprintf(stderr, "bad choice\n"), 1;
            sb += o[first[g] + choice[g]].bytes, sc += o[first[g] + choice[g]].cost;
        }
        if (sb != b || sc != c || b > cap || c != bc || b != bb) {
            fprintf(stderr,
                    "instance %d: solver cost %g bytes %zu (sum %g %zu), brute force cost %g "
                    "bytes %zu, cap %zu\n",
                    inst, c, b, sc, sb, bc, bb, cap);
            return 1;
        }
    }
    return 0;
}

static int infeasible(void)
{
    struct mt_fit_option o[] = {{10, 1}, {20, 0}, {5, 3}, {7, 1}};
    size_t first[] = {0, 2, 4}, choice[2] = {9, 9}, b;
    double c;
    char err[128];
    if (mt_fit_mckp(o, first, 2, 14, 0, choice, &b, &c, err, sizeof err) != 0 || choice[0] != 9)
        return fprintf(stderr, "cap 14 < 15 should not fit\n"), 1;
    /* exactly at the capacity fits: 10 + 5 */
    if (mt_fit_mckp(o, first, 2, 15, 0, choice, &b, &c, err, sizeof err) != 1 || b != 15 ||
        c != 4.0 || choice[0] != 0 || choice[1] != 0)
        return fprintf(stderr, "cap 15: got %zu bytes cost %g\n", b, c), 1;
    return 0;
}

static int limit(void)
{
    struct mt_fit_option o[G * M];
    size_t first[G + 1], choice[G], b;
    double c;
    char err[256] = "";
    for (size_t g = 0; g <= G; g++)
        first[g] = g * M;
    for (size_t k = 0; k < G * M; k++)
        o[k] =
            (struct mt_fit_option){(size_t)1 << k % 20, (double)(M - 1 - k % M)}; /* all Pareto */
    if (mt_fit_mckp(o, first, G, (size_t)-1 / 2, 8, choice, &b, &c, err, sizeof err) != -1 ||
        !strstr(err, "Pareto set grew past 8"))
        return fprintf(stderr, "limit not refused: '%s'\n", err), 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    if (!strcmp(argv[1], "optimal")) return optimal();
    if (!strcmp(argv[1], "infeasible")) return infeasible();
    if (!strcmp(argv[1], "limit")) return limit();
    return 2;
}
