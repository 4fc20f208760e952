-- memtrade results database, schema version 1 (PRAGMA user_version = 1).
--
-- What it is for: every run of every sweep, its parameters, metrics, per-phase counters,
-- timeline samples and allocation sites. Only the harness parent writes it (WAL mode,
-- foreign keys on, batched transactions). Later versions are forward-only migrations in
-- results/migrations/NNN_*.sql; a database with a newer user_version is refused.
-- Conventions: times are seconds (REAL); bytes are INTEGER; a metric that could not be
-- measured has value NULL and a non-NULL `unavailable` reason, never 0.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,      -- 'application' = 'memtrade', 'created_at', 'created_by'
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sweeps (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    spec_path   TEXT,            -- the .ini file, or NULL for `memtrade run`
    spec_text   TEXT,            -- its full text, so the sweep can be reproduced
    shard       TEXT,            -- 'I/N' or NULL
    started_at  TEXT NOT NULL,   -- ISO 8601 UTC
    finished_at TEXT,
    host        TEXT,
    facts_json  TEXT             -- reproduction facts common to the sweep (see runs.facts_json)
);

CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    sweep_id    INTEGER REFERENCES sweeps(id) ON DELETE CASCADE,
    workload    TEXT NOT NULL,
    label       TEXT,            -- the sweep section label ([quantize.int4] -> 'int4')
    config_key  TEXT NOT NULL,   -- canonical 'workload?k=v&k=v' over sorted resolved params
    repeat      INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL CHECK (status IN
                  ('running','ok','failed','crashed','timeout','oom','interrupted')),
    exit_code   INTEGER,
    signal      INTEGER,
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    wall_s      REAL,
    seed        INTEGER,
    ranks       INTEGER NOT NULL DEFAULT 1,
    threads     INTEGER,
    git_rev     TEXT,
    abi_version TEXT,
    facts_json  TEXT             -- compiler, flags, CPU model, kernel, library versions
);
CREATE INDEX IF NOT EXISTS runs_by_config ON runs(config_key, status);
CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs(sweep_id);

CREATE TABLE IF NOT EXISTS params (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE IF NOT EXISTS metrics (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank        INTEGER NOT NULL DEFAULT -1,  -- -1: the whole run; >= 0: one MPI rank
    name        TEXT NOT NULL,
    value       REAL,                         -- NULL when unavailable
    unit        TEXT NOT NULL,
    unavailable TEXT,                         -- the reason, when value IS NULL
    PRIMARY KEY (run_id, rank, name),
    CHECK ((value IS NULL) = (unavailable IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics(name);

-- Per-phase cost: one row per region path and rank; counters in region_counters.
CREATE TABLE IF NOT EXISTS regions (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank    INTEGER NOT NULL DEFAULT 0,
    path    TEXT NOT NULL,      -- nested names joined by '/': 'train/step/forward'
    name    TEXT NOT NULL,      -- last component: 'forward'
    depth   INTEGER NOT NULL,
    calls   INTEGER NOT NULL,
    wall_s  REAL NOT NULL,
    cpu_s   REAL,
    UNIQUE (run_id, rank, path)
);

CREATE TABLE IF NOT EXISTS region_counters (
    region_id   INTEGER NOT NULL REFERENCES regions(id) ON DELETE CASCADE,
    counter     TEXT NOT NULL,   -- 'PAPI_TOT_INS', 'sde:::memtrade::live_bytes', 'page_faults'
    value       REAL,            -- NULL when unavailable
    unavailable TEXT,
    PRIMARY KEY (region_id, counter),
    CHECK ((value IS NULL) = (unavailable IS NOT NULL))
);

-- Series: the heap timeline ('heap.live.<category>', 'rss'), loss curves ('train_loss'),
-- anything a plugin samples. `region` is the phase current at that point, if known.
CREATE TABLE IF NOT EXISTS samples (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank   INTEGER NOT NULL DEFAULT 0,
    series TEXT NOT NULL,
    x      REAL NOT NULL,        -- seconds since run start for timelines; step for curves
    y      REAL NOT NULL,
    region TEXT
);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples(run_id, series);

-- Symbolized frames, shared by every run in the database.
CREATE TABLE IF NOT EXISTS frames (
    id       INTEGER PRIMARY KEY,
    function TEXT,               -- NULL when unknown
    module   TEXT,
    file     TEXT,
    line     INTEGER,
    build_id TEXT,
    UNIQUE (function, module, file, line)
);

-- A call stack: an ordered list of frames, innermost first (depth 0).
CREATE TABLE IF NOT EXISTS stacks (
    id   INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE    -- hex digest of the frame id list
);
CREATE TABLE IF NOT EXISTS stack_frames (
    stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    depth    INTEGER NOT NULL,
    frame_id INTEGER NOT NULL REFERENCES frames(id),
    PRIMARY KEY (stack_id, depth)
);

CREATE TABLE IF NOT EXISTS alloc_sites (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank          INTEGER NOT NULL DEFAULT 0,
    stack_id      INTEGER NOT NULL REFERENCES stacks(id),
    category      TEXT NOT NULL,   -- memcat name: 'weights', 'activations', ...
    allocs        INTEGER NOT NULL,
    bytes         INTEGER NOT NULL, -- total bytes allocated over the run
    peak_bytes    INTEGER NOT NULL, -- bytes from this site live at the global peak
    temporary     INTEGER NOT NULL, -- allocations freed right after the next allocation
    leaked_bytes  INTEGER NOT NULL,
    leaked_allocs INTEGER NOT NULL,
    estimated     INTEGER NOT NULL DEFAULT 0, -- 1 in sampled mode (unbiased estimates)
    PRIMARY KEY (run_id, rank, stack_id, category)
);

-- Named tensors that arena and slab owners reported (mt_memcat_report).
CREATE TABLE IF NOT EXISTS tensors (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank     INTEGER NOT NULL DEFAULT 0,
    name     TEXT NOT NULL,
    category TEXT NOT NULL,
    bytes    INTEGER NOT NULL,
    PRIMARY KEY (run_id, rank, name)
);

CREATE TABLE IF NOT EXISTS logs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank   INTEGER NOT NULL DEFAULT 0,
    t      REAL NOT NULL,
    level  TEXT NOT NULL,
    text   TEXT NOT NULL
);

-- The trade-off: one row per successful run with its accuracy and memory figures.
-- Post-training workloads are judged on serving memory, training ones on training
-- memory: `memory_kind` says which one `memory_bytes` is.
CREATE VIEW IF NOT EXISTS tradeoff AS
SELECT r.id AS run_id, r.sweep_id, r.workload, r.label, r.config_key, r.repeat,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'val_bpb') AS val_bpb,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'val_loss') AS val_loss,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'infer_peak_bytes') AS infer_peak_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'model_bytes') AS model_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'train_peak_bytes') AS train_peak_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'peak_rss_bytes') AS peak_rss_bytes,
       CASE WHEN EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.rank = -1
                         AND m.name = 'infer_peak_bytes' AND m.value IS NOT NULL)
            THEN 'serving' ELSE 'training' END AS memory_kind,
       COALESCE(
         (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'infer_peak_bytes'),
         (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'train_peak_bytes')) AS memory_bytes
FROM runs r WHERE r.status = 'ok';

-- Pareto front per sweep and memory kind: no other run is at least as good on both
-- axes (lower memory, lower val_bpb) and strictly better on one.
CREATE VIEW IF NOT EXISTS pareto AS
SELECT a.* FROM tradeoff a
WHERE a.val_bpb IS NOT NULL AND a.memory_bytes IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM tradeoff b
    WHERE b.val_bpb IS NOT NULL AND b.memory_bytes IS NOT NULL
      AND b.sweep_id IS a.sweep_id AND b.memory_kind = a.memory_kind
      AND b.memory_bytes <= a.memory_bytes AND b.val_bpb <= a.val_bpb
      AND (b.memory_bytes < a.memory_bytes OR b.val_bpb < a.val_bpb));

PRAGMA user_version = 1;
