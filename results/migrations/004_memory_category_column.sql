-- Migration 4: the memory category is a column, not a fragment of a name. A plugin
-- reports `train_peak_weights_bytes` (or infer_peak_, eval_peak_), the heap profiler `heap.live.kv_cache` and
-- `heap_peak_bytes.weights`; they are stored as (name 'train_peak_bytes', category
-- 'weights'), (series 'heap.live', category 'kv_cache'), (counter 'heap_peak_bytes',
-- category 'weights'); `category` is '' for a figure of every category together. The
-- spellings are metrics.h's category forms; store.c registers mt_name_base(name) and
-- mt_name_category(name) (the base and the category of a name in a category form, else
-- the name and '') from metrics.h before migrating, so this file and the writers split
-- names by one rule. metrics and region_counters are rebuilt (the category joins their
-- keys); samples gain the column. The `pareto` view goes: the front has one definition,
-- results/pareto.h, behind `memtrade query pareto` and the plots. Forward-only; applied in
-- one transaction by results/store.c, which then sets PRAGMA user_version = 4.
DROP VIEW IF EXISTS pareto;
DROP VIEW IF EXISTS tradeoff;
DROP VIEW IF EXISTS run_metrics;

CREATE TABLE metrics_v4 (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank        INTEGER NOT NULL DEFAULT -1,  -- -1: the whole run; >= 0: one MPI rank
    name        TEXT NOT NULL,                -- base name: 'train_peak_bytes'
    category    TEXT NOT NULL DEFAULT '',     -- memory category, '' for all together
    value       REAL,                         -- NULL when unavailable
    unit        TEXT NOT NULL,
    unavailable TEXT,                         -- the reason, when value IS NULL
    PRIMARY KEY (run_id, rank, name, category),
    CHECK ((value IS NULL) = (unavailable IS NOT NULL))
);
INSERT INTO metrics_v4(run_id, rank, name, category, value, unit, unavailable)
SELECT run_id, rank, mt_name_base(name), mt_name_category(name), value, unit, unavailable
FROM metrics ORDER BY rowid;
DROP TABLE metrics;
ALTER TABLE metrics_v4 RENAME TO metrics;
CREATE INDEX metrics_by_name ON metrics(name);

CREATE TABLE region_counters_v4 (
    region_id   INTEGER NOT NULL REFERENCES regions(id) ON DELETE CASCADE,
    counter     TEXT NOT NULL,            -- 'PAPI_TOT_INS', 'page_faults', 'heap_peak_bytes'
    category    TEXT NOT NULL DEFAULT '', -- memory category, '' for all together
    value       REAL,                     -- NULL when unavailable
    unavailable TEXT,
    PRIMARY KEY (region_id, counter, category),
    CHECK ((value IS NULL) = (unavailable IS NOT NULL))
);
INSERT INTO region_counters_v4(region_id, counter, category, value, unavailable)
SELECT region_id, mt_name_base(counter), mt_name_category(counter), value, unavailable
FROM region_counters ORDER BY rowid;
DROP TABLE region_counters;
ALTER TABLE region_counters_v4 RENAME TO region_counters;

ALTER TABLE samples ADD COLUMN category TEXT NOT NULL DEFAULT '';
UPDATE samples SET category = mt_name_category(series), series = mt_name_base(series)
WHERE mt_name_category(series) <> '';

-- The trade-off reads whole-run figures (category '').
CREATE VIEW tradeoff AS
SELECT r.id AS run_id, r.sweep_id, r.workload, r.label, r.config_key, r.repeat,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'val_bpb') AS val_bpb,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'val_loss') AS val_loss,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'infer_peak_bytes') AS infer_peak_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'model_bytes') AS model_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'train_peak_bytes') AS train_peak_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'peak_rss_bytes') AS peak_rss_bytes,
       CASE WHEN EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = ''
                         AND m.name = 'infer_peak_bytes' AND m.value IS NOT NULL)
            THEN 'serving' ELSE 'training' END AS memory_kind,
       COALESCE(
         (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'infer_peak_bytes'),
         (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'train_peak_bytes')) AS memory_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'eval_bytes') AS eval_bytes,
       CASE WHEN EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = ''
                         AND m.name = 'infer_peak_bytes' AND m.value IS NOT NULL)
            THEN NULL
            ELSE (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'steps')
               * (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'batch')
       END AS train_budget
FROM runs r WHERE r.status = 'ok';

CREATE VIEW run_metrics AS
SELECT r.id AS run_id, r.sweep_id, r.workload, r.label, r.config_key, r.repeat, r.status,
       m.name, m.category, m.value, m.unit, m.unavailable
FROM runs r JOIN metrics m ON m.run_id = r.id AND m.rank = -1;
