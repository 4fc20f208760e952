-- Migration 2: indexes for foreign-key lookups and deletes, and the run_metrics view.
-- Forward-only; applied in one transaction by results/store.c, which then sets
-- PRAGMA user_version = 2.

-- Deleting a run cascades into logs; without an index that is a scan per run.
CREATE INDEX IF NOT EXISTS logs_by_run ON logs(run_id, rank, t);
-- foreign_key_check and frame/stack deduplication look stacks up by frame and sites by stack.
CREATE INDEX IF NOT EXISTS stack_frames_by_frame ON stack_frames(frame_id);
CREATE INDEX IF NOT EXISTS alloc_sites_by_stack ON alloc_sites(stack_id);
-- Resume asks "is (config_key, repeat) already ok?" once per grid point.
CREATE INDEX IF NOT EXISTS runs_by_config_repeat ON runs(config_key, repeat, status);

-- One row per run and run-level metric (rank -1), with the run's identity and status:
-- the long form that ad-hoc queries and `memtrade query pareto --x/--y` start from.
CREATE VIEW IF NOT EXISTS run_metrics AS
SELECT r.id AS run_id, r.sweep_id, r.workload, r.label, r.config_key, r.repeat, r.status,
       m.name, m.value, m.unit, m.unavailable
FROM runs r JOIN metrics m ON m.run_id = r.id AND m.rank = -1;
