# tests/harness/witness_post.sh — the plan beside the heap profiler for the post-training
# workloads (issue 21): `prune` (tiny: magnitude stored dense, magnitude stored CSR, 2:4
# stored N:M, SparseGPT stored the smallest way, OBD with a fine-tune, half the heads)
# and `distill` (tiny teacher, a one-layer student; the teacher live while the student
# trains, then the teacher's logits cached in bf16) run by the harness with the heap
# profiler. For every planned phase (prune: prune (both copies and the calibration
# batches), infer, eval; distill: teacher_cache, train, infer, eval) the plan the harness
# stored equals the heap profiler's peak of that region exactly in each category the plan
# derives (weights, gradients, optimizer, activations, act_grads, kv_cache, data: the
# packed layers' bytes included); workspace (calibration statistics, the sparse kernels'
# and oneDNN's grow-only scratch) is measured, not planned.
. "$(dirname "$0")/lib.sh"

need_heap_plugin prune
common="-p model=tiny -p steps=5 -p eval_tokens=2048 --db $DB --threads 2"
expect_rc 0 "$MT" run prune -p storage=dense $common
expect_rc 0 "$MT" run prune -p storage=csr $common
expect_rc 0 "$MT" run prune -p method=nm -p storage=nm $common
expect_rc 0 "$MT" run prune -p method=sparsegpt -p calib_batches=2 $common
expect_rc 0 "$MT" run prune -p method=obd -p calib_batches=1 -p finetune_steps=2 $common
expect_rc 0 "$MT" run prune -p method=heads -p calib_batches=1 $common
expect_rc 0 "$MT" run distill -p student_layers=1 $common
expect_rc 0 "$MT" run distill -p student_layers=1 -p teacher_cache=on \
    -p teacher_cache_dtype=bf16 $common

pairs=$witness_pairs
# prune: 6 runs x (infer: weights kv_cache data; eval: weights activations data; prune:
# weights activations data, obd's trainable copy adding gradients optimizer act_grads);
# distill: 2 x (infer 3 + eval 3 + train 6) + teacher_cache 6
expect_eq "planned categories with a measured peak" "$(sql "SELECT count(*) $pairs")" "87"
expect_eq "plan != heap" "$(sql "SELECT group_concat(p.run_id || ':' || g.path || ':' || p.category
    || ' plan ' || p.value || ' heap ' || c.value, '; ') $pairs AND p.value <> c.value")" ""
# the packed layers differ by format: dense > CSR > N:M (tiny: 49152 prunable weights per
# layer at sparsity 0.5 or 2:4) and the plan says so
expect_eq "served weights by format" "$(sql "SELECT group_concat(CAST(value AS INTEGER), ' ')
    FROM (SELECT value FROM metrics WHERE run_id <= 4 AND name = 'plan_infer_peak_bytes'
    AND category = 'weights' ORDER BY run_id)")" "482304 389120 297984 303104"
expect_eq "distill phases" "$(sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM metrics
    WHERE run_id = 8 AND category = '' AND name LIKE 'plan%' ORDER BY name)")" \
    "plan_eval_peak_bytes plan_infer_peak_bytes plan_teacher_cache_peak_bytes plan_train_peak_bytes"
# a configuration the run alone decides has no plan: noted (info), not a failed event
expect_rc 0 "$MT" run prune -p scope=global $common
expect_eq "no plan noted" "$(sql "SELECT level || ': ' || text FROM logs WHERE run_id = 9
    AND text LIKE '%memory plan%' OR text LIKE '%could not be stored%'")" \
    "info: no memory plan: workload 'prune': plan: scope=global spreads the sparsity over the layers by the trained weights (unknown before the run)"
expect_eq "nothing planned" "$(sql "SELECT count(*) FROM metrics WHERE run_id = 9
    AND name LIKE 'plan%'")" "0"
echo ok
