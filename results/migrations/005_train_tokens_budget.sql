-- Migration 5: a training run's budget is the tokens it trained on (metric train_tokens:
-- steps x batch x sequence length), now that the sequence length is a parameter (`seq`):
-- two runs of equal steps and batch but other lengths saw other numbers of tokens, and
-- score their evaluation in windows of their own length, so they are not comparable.
-- Runs stored before this metric existed keep steps x batch.
DROP VIEW IF EXISTS tradeoff;

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
            ELSE COALESCE(
              (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1 AND m.category = '' AND m.name = 'train_tokens'),
              (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'steps')
              * (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'batch'))
       END AS train_budget
FROM runs r WHERE r.status = 'ok';
