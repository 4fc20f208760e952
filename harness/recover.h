/* harness/recover.h — what a run's scratch folder keeps for the next harness: run.txt
 * (which database, which run; written at start) and outcome.txt (how the process ended;
 * written before its events are stored), and --resume's pass over the folders that a
 * killed or failed harness left.
 *
 * What it is for: nothing measured is lost because the database could not be written when
 * a run ended (another connection held the lock too long) or because the harness was
 * killed: the folder stays until its events are stored, and `sweep --resume` stores them
 * (mt_recover_scratch) before it marks what is left `running` interrupted.
 * What it is not for: starting, watching or deciding runs (runner_spawn.c, runner_record.c).
 */
#ifndef MT_HARNESS_RECOVER_H
#define MT_HARNESS_RECOVER_H

#include <stddef.h>

#include "runner.h"
#include "store.h"

/* Contract: writes <scratch>/run.txt (database path, run id, harness pid). Returns 0, or -1
 * with err naming the file and errno's text (a full disk is found here, before the run). */
int mt_recover_mark(const struct mt_runner_opts *o, const struct mt_job *job, char *err,
                    size_t errlen);

/* Contract: writes <scratch>/outcome.txt from the reaped job (best effort: a folder without
 * it is stored as interrupted). */
void mt_recover_save_outcome(const struct mt_runner_opts *o, const struct mt_job *job);

/* Contract: removes a scratch folder and everything in it (best effort: what cannot be
 * removed stays). Used when a run is stored, and before a run reuses a stale folder. */
void mt_recover_remove(const char *scratch);

/* Contract: for --resume, with the database open for writing (so no other harness writes
 * it): every folder <scratch_root>/run-ID.PID whose run.txt names this database and whose
 * harness PID is gone is stored into run ID when that row is still `running` (with the
 * status outcome.txt decides; without one, `interrupted`: the harness died during the
 * run) and removed (unless --keep-scratch); a folder of a run already recorded is
 * removed. Folders of other databases, of live harnesses or without run.txt are left.
 * *counts gets what was done. Returns 0, or -1 on a database error (err). */
struct mt_recover_counts {
    size_t stored;      /* runs stored from their folders */
    size_t interrupted; /* of them, runs the harness died during (recorded interrupted) */
    size_t removed;     /* folders of runs already recorded, removed */
};
int mt_recover_scratch(struct mt_store *st, const struct mt_runner_opts *o,
                       struct mt_recover_counts *counts, char *err, size_t errlen);

#endif
