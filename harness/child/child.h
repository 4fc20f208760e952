/* harness/child/child.h — the child side of one run: `memtrade __child ...`, exec'd by the
 * runner (directly, or once per rank through the MPI launcher).
 *
 * What it is for: in a fresh process, optionally re-exec itself with the heap profiler
 * preloaded, open the rank's event file, catch fatal signals (to report the signal,
 * errno and memory high-water marks before dying), set the thread count, load the plugin,
 * open the counters, call run(ctx), and report regions and the end of the run.
 * What it is not for: deciding the run's status (the parent does, from the exit status
 * and the events) or touching the database.
 *
 * Command line (internal, may change between versions):
 *   memtrade __child --plugin PATH --events DIR --scratch DIR --seed N --threads N
 *                    [--cache DIR] [--heap full|sampled|off] [-p key=value]...
 * Exit status: 0 when run() returned 0, 1 when it failed, 2 when the child could not
 * start the plugin (message in an ERROR event and on stderr), MT_CHILD_EXIT_EVENTS when
 * an event could not be written.
 */
#ifndef MT_HARNESS_CHILD_H
#define MT_HARNESS_CHILD_H

/* Contract: runs the child; returns its exit status (see above). `argv[0]` is the path of
 * the memtrade executable, argv[1] is "__child". */
int mt_child_main(int argc, char **argv);

/* The exit status of `memtrade __child` when an event could not be written (a full
 * scratch disk): what the run measured is lost, whatever run() returned (EX_IOERR). */
#define MT_CHILD_EXIT_EVENTS 74

/* Contract: this process's MPI rank and size from the launcher's environment
 * (OMPI_COMM_WORLD_RANK/SIZE, PMIX_RANK, PMI_RANK/PMI_SIZE, SLURM_PROCID/SLURM_NTASKS);
 * 0 and 1 when none is set. */
void mt_child_rank(int *rank, int *nranks);

/* Contract: path of the heap profiler library to preload (written to buf, returned), or
 * NULL when it is not built or installed (or this is an AddressSanitizer build, which
 * owns malloc itself). Looks next to the executable (<bin>/../<libdir>/memtrade/), then
 * in the build tree, then in the configured install folder. */
#include <stddef.h>
const char *mt_child_heap_lib(char *buf, size_t cap);

#endif
