/* harness/facts.h — what it takes to reproduce a run: build and host facts.
 * What it is for: runs.facts_json / sweeps.facts_json and the git_rev column.
 * Not for: per-run parameters or seeds (the plan has them). */
#ifndef MT_HARNESS_FACTS_H
#define MT_HARNESS_FACTS_H

/* Contract: the git revision the harness was built from ("unknown" when the build had no
 * git); static string. */
const char *mt_facts_git_rev(void);

/* Contract: a JSON object with: git_rev, abi (harness ABI major.minor), compiler, flags,
 * build_type, cpu (model name from /proc/cpuinfo), cores, kernel (uname), host, and the
 * versions of PAPI, libunwind, SQLite, oneDNN and Open MPI (null when not built with it).
 * Returns a malloc'd string the caller frees, or NULL on allocation failure. */
char *mt_facts_json(void);

#endif
