-- Migration 3: the trade-off compares like with like. `tradeoff` gains what each run's
-- accuracy was scored on (eval_bytes: the first bytes of the validation split, from the
-- metric of that name) and, for training runs, its training budget (train_budget: steps x
-- batch sequences, from its parameters); `pareto` lets a run dominate another only when
-- both scored the same text and, for training, trained on the same budget. NULL (a run
-- that does not say) is compared with IS, so older runs stay comparable among themselves.
-- Forward-only; applied in one transaction by results/store.c, which then sets
-- PRAGMA user_version = 3.
DROP VIEW IF EXISTS pareto;
DROP VIEW IF EXISTS tradeoff;

CREATE VIEW tradeoff AS
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
         (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'train_peak_bytes')) AS memory_bytes,
       (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.name = 'eval_bytes') AS eval_bytes,
       CASE WHEN EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND m.rank = -1
                         AND m.name = 'infer_peak_bytes' AND m.value IS NOT NULL)
            THEN NULL
            ELSE (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'steps')
               * (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'batch')
       END AS train_budget
FROM runs r WHERE r.status = 'ok';

CREATE VIEW pareto AS
SELECT a.* FROM tradeoff a
WHERE a.val_bpb IS NOT NULL AND a.memory_bytes IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM tradeoff b
    WHERE b.val_bpb IS NOT NULL AND b.memory_bytes IS NOT NULL
      AND b.sweep_id IS a.sweep_id AND b.memory_kind = a.memory_kind
      AND b.eval_bytes IS a.eval_bytes AND b.train_budget IS a.train_budget
      AND b.memory_bytes <= a.memory_bytes AND b.val_bpb <= a.val_bpb
      AND (b.memory_bytes < a.memory_bytes OR b.val_bpb < a.val_bpb));
