/* harness/sweepspec.h — the sweep file format and its expansion into a grid of runs.
 *
 * What it is for: `memtrade sweep FILE.ini`. Every error names the file and line
 * ("sweeps/x.ini:12: ...") and is found before anything touches the database.
 * What it is not for: scheduling or running (scheduler.c, runner_spawn.c, runner_record.c).
 *
 * Format (INI):
 *
 *     # comment            ; comment too (whole lines, or after whitespace at a line end)
 *     [sweep]
 *     name = quick         # default: the file name without .ini
 *     repeats = 1          # runs per configuration (default 1)
 *     seed = 1             # default of every workload's `seed` parameter, and the run
 *                          # seed of workloads that have none (default 1)
 *     threads = 2          # threads per run (rank); default: cores / --jobs
 *     timeout = 300        # seconds (suffix s, m, h allowed); default none
 *     mem_limit = 4G       # bytes per rank (K, M, G, T, KiB...: binary); default none
 *
 *     [baseline]           # one section per workload, or [workload.label] to have
 *     model = tiny, small  #   several sections of one workload
 *     steps = 10..30:10    # a value list: items separated by commas, each item a value
 *     lr = 1e-3, 3e-3      #   or a range; "quoted items" may contain commas
 *
 * Ranges (inclusive; the end is included when the steps land on it):
 *     a..b        a, a+1, ..., b           (integers)
 *     a..b:s      a, a+s, a+2s, ... <= b   (s > 0; integers or decimals: 0..0.9:0.1)
 *     a..b:xK     a, a*K, a*K*K, ... <= b  (K > 1, a > 0; geometric: 1..16:x2)
 * In a workload section the keys repeats, timeout, mem_limit and threads set the harness
 * settings of that section (single values) unless the workload declares a parameter of
 * that name. Every other key must be a parameter of the workload.
 *
 * At most 100000 items per range; "a...b" is refused. A UTF-8 byte order mark is skipped at
 * the start of the file and refused elsewhere. A configuration appears once in a grid: a
 * value given twice in one key (after canonicalization: 0.1 and 1e-1) and sections that
 * give the same configuration are refused with their lines.
 *
 * Grid order: sections in file order; within a section the cartesian product with the
 * first key varying slowest (like nested loops in the order written; keys not given use
 * their defaults); the repeats of one configuration are adjacent. Each run has its index
 * in this order; `--shard I/N` keeps the runs whose index % N == I-1, so shards are
 * disjoint, cover the grid, and do not depend on the machine.
 */
#ifndef MT_HARNESS_SWEEPSPEC_H
#define MT_HARNESS_SWEEPSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "plugins.h"

struct mt_spec_key {
    char *name;
    size_t line;
    char **values; /* expanded items */
    size_t nvalues;
};

struct mt_spec_section {
    char *workload;
    char *label; /* NULL when none */
    size_t line;
    struct mt_spec_key *keys;
    size_t nkeys;
};

struct mt_spec_settings {
    size_t repeats;     /* 0 = not set */
    int threads;        /* 0 = not set */
    double timeout_s;   /* < 0 = not set */
    uint64_t mem_limit; /* 0 = not set */
};

struct mt_spec {
    char *path;
    char *text; /* the whole file */
    char *name;
    int has_seed;
    uint64_t seed;
    struct mt_spec_settings settings; /* from [sweep] */
    size_t sweep_line;
    struct mt_spec_section *sections;
    size_t nsections;
};

/* Contract: reads and parses `path` (syntax and ranges only; see the format above).
 * Returns 0 and fills *out (free with mt_spec_free), or -1 with "path:line: message". */
int mt_spec_parse(const char *path, struct mt_spec *out, char *err, size_t errlen);

/* Contract: parses a sweep from text already in memory (tests); `path` names it in
 * messages. Same contract as mt_spec_parse. */
int mt_spec_parse_text(const char *path, const char *text, struct mt_spec *out, char *err,
                       size_t errlen);

void mt_spec_free(struct mt_spec *s);

/* Contract: expands a parsed spec into the whole grid of runs, checking every workload
 * and parameter against the registry (unknown names with "did you mean", bad values,
 * out of range, empty grid: all "path:line: ..."). `threads_default` applies when neither
 * the section nor [sweep] sets threads. Plans are finished (mt_plan_finish) with
 * `unknown_estimate`. Returns 0 with a malloc'd array in *plans (*n entries; free each
 * with mt_plan_free, then the array), or -1 with err. */
int mt_spec_expand(const struct mt_spec *s, const struct mt_registry *reg, int threads_default,
                   uint64_t unknown_estimate, struct mt_plan **plans, size_t *n, char *err,
                   size_t errlen);

/* Contract: expands one value list ("1,2,8..32:x2") into items; used by the parser and
 * tests. Returns 0 with a malloc'd array of malloc'd strings, or -1 with a message (no
 * file:line prefix). */
int mt_spec_expand_values(const char *text, char ***items, size_t *n, char *err, size_t errlen);

/* Contract: parses "I/N" (1 <= I <= N). Returns 0 or -1. */
int mt_spec_parse_shard(const char *text, size_t *index, size_t *count);

#endif
