# tests/serving/same_protocol.sh — baseline, quantize, prune and distill through the
# harness with defaults for the serving knobs: each stores the same eval_bytes (what was
# scored), the same decode_context (the model's context, 64 for tiny), a KV cache whose
# bytes equal the formula L * 2 * T * C * 4 for the model it served, counted inside
# infer_peak_bytes as its kv_cache category, and a decode speed.
. "$MT_SOURCE_DIR/tests/harness/lib.sh"
cat >s.ini <<'INI'
[sweep]
threads = 2
[baseline]
model = tiny
steps = 20
eval_tokens = 4096
[quantize]
model = tiny
steps = 20
eval_tokens = 4096
bits = 8
[prune]
model = tiny
steps = 20
eval_tokens = 4096
sparsity = 0.5
calib_batches = 2
[distill]
model = tiny
steps = 20
eval_tokens = 4096
student_channels = 32
student_steps = 5
alpha = 0
INI
expect_rc 0 "$MT" sweep s.ini --db "$DB" --no-heap
m() { sql "SELECT value FROM metrics WHERE run_id = $1 AND rank = -1 AND name = '$2'"; }
for run in 1 2 3 4; do
  w=$(sql "SELECT workload FROM runs WHERE id = $run")
  expect_eq "$w eval_bytes" "$(m $run eval_bytes)" "4096.0"
  expect_eq "$w decode_context" "$(m $run decode_context)" "64.0"
  [ "$w" = distill ] && C=32 || C=64 # the student is what distill serves
  expect_eq "$w kv_cache_bytes" "$(m $run kv_cache_bytes)" "$((2 * 2 * 64 * C * 4)).0"
  expect_eq "$w kv in infer_peak" "$(m $run infer_peak_kv_cache_bytes)" "$(m $run kv_cache_bytes)"
  expect_eq "$w decode speed" "$(sql "SELECT value > 0 FROM metrics WHERE run_id = $run AND name = 'decode_tokens_per_s'")" 1
done
echo ok
