/* golden.h — golden figures of the reference engines: record, compare, regenerate.
 *
 * What it is for: the tests/golden programs collect the figures of one case (loss curves,
 * val_loss, logits checksums, memory plans, bytes per category) into a struct golden and
 * hand it to golden_finish(), which compares them with the committed file
 * tests/golden/data/<case>.txt, or rewrites that file when MT_GOLDEN_UPDATE=1 (README.md
 * says when that is allowed). Three kinds of figure:
 * - exact: integers (bytes, counts); equal on every machine;
 * - float: a float or double; the same bits where the CPU's oneDNN ISA is the one the
 *   file was made on, else within a stated relative tolerance (the output says so);
 * - bits: a checksum of float bits (FNV-1a 64); compared where the ISA matches, else
 *   reported as not comparable (the sampled values next to it are compared as floats).
 * A figure missing from the file, or a file figure the run did not produce, fails.
 * What it is not for: tolerance tests of the math (tests/transformer does those).
 * Not thread-safe: one struct golden per program, filled from one thread.
 */
#ifndef MT_TESTS_GOLDEN_H
#define MT_TESTS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "fake_ctx.h"

enum golden_kind { GOLDEN_EXACT, GOLDEN_FLOAT, GOLDEN_BITS };

struct golden_fig {
    enum golden_kind kind;
    char key[112];
    uint64_t u; /* exact, bits */
    double d;   /* float */
};

struct golden {
    struct golden_fig *figs;
    size_t n, cap;
    int oom; /* a figure could not be stored: golden_finish fails */
};

/* Appends one figure; the key is printf-formatted and must hold no blanks. */
void golden_exact(struct golden *g, uint64_t v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void golden_float(struct golden *g, double v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void golden_bits(struct golden *g, uint64_t v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a 64 over the bit patterns of n floats. */
uint64_t golden_fnv_floats(const float *x, size_t n);

/* The figures of a block of n floats (logits): `<prefix>.fnv` (bits), `<prefix>.sum`
 * (float, a double sum in index order) and 8 values at fixed, spread indices
 * (`<prefix>[i]`, float) for diagnosis and for the tolerance path. */
void golden_floats(struct golden *g, const char *prefix, const float *x, size_t n);

/* The effective oneDNN ISA of this CPU ("avx512_core_amx", ...), what float figures are
 * bit-exact against. */
const char *golden_isa(void);

/* Runs plugin `so` (dlopen RTLD_LOCAL, as the harness child does) on the fake ctx with
 * the overrides, `threads` OpenMP threads, rank/nranks, cache and scratch folder `tmpdir`,
 * and appends under `prefix`: every sample as `<prefix>.<series>[x]` (float), and each
 * metric that is a result rather than a timing: bytes and counts as exact, losses and
 * ratios as float (golden_keep_metric). Returns 0, or -1 after printing why. */
int golden_run_plugin(struct golden *g, const char *prefix, const char *so, const char **ov,
                      size_t n_ov, int threads, int rank, int nranks, const char *tmpdir);

/* 1 when a metric of this name and unit is deterministic and belongs to the golden
 * figures; *exact says which kind. Timings, rates, RSS and the counters that depend on
 * the CPU's kernels (bf16 GEMMs, oneDNN fallbacks, sparse paths) are left out. */
int golden_keep_metric(const char *name, const char *unit, int *exact);

/* Makes a fresh temporary folder into buf (capacity n); removes it and what it holds. */
int golden_tmpdir(char *buf, size_t n);
void golden_rmdir(const char *dir);

/* Compares g with `<dir>/<name>.txt`, printing every difference and which comparison
 * applied; with MT_GOLDEN_UPDATE=1 in the environment writes the file instead. A
 * rel_tol of 0 takes MT_GOLDEN_RTOL or 1e-4. `force_tolerance` takes the tolerance path
 * even where the ISA matches (builds whose floats are known to differ), saying so.
 * Returns main's exit status: 0 when everything matched (or was written). Frees g. */
int golden_finish(struct golden *g, const char *dir, const char *name, int force_tolerance);

#endif
