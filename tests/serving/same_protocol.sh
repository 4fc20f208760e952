# tests/serving/same_protocol.sh — baseline, quantize, prune and distill through the
# harness at one declared serving context (decode_tokens = 32, not the model's 64): each
# stores the same eval_bytes (what was scored) and decode_context, a KV cache whose bytes
# equal the formula L * 2 * context * C * 4 for the model it served, and an accounted
# serving peak (infer_peak_bytes) that is what a deployment holds: weights, that KV cache
# and workspace, nothing of the evaluation batch (whose peak is eval_peak_bytes). And
# quantizing lowers infer_peak_bytes by exactly the weight bytes it saves, less the packed
# kernels' scratch.
. "$MT_SOURCE_DIR/tests/harness/lib.sh"
cat >s.ini <<'INI'
[sweep]
threads = 2
[baseline]
model = tiny
steps = 20
eval_tokens = 4096
decode_tokens = 32
[quantize]
model = tiny
steps = 20
eval_tokens = 4096
decode_tokens = 32
bits = 8
scheme = linear-asym
granularity = group
group_size = 64
[prune]
model = tiny
steps = 20
eval_tokens = 4096
decode_tokens = 32
sparsity = 0.5
calib_batches = 2
[distill]
model = tiny
steps = 20
eval_tokens = 4096
decode_tokens = 32
student_channels = 32
student_steps = 5
alpha = 0
INI
expect_rc 0 "$MT" sweep s.ini --db "$DB" --no-heap
m() { # RUN NAME [CATEGORY]
  sql "SELECT value FROM metrics WHERE run_id = $1 AND rank = -1 AND name = '$2' AND category = '${3:-}'"
}
for run in 1 2 3 4; do
  w=$(sql "SELECT workload FROM runs WHERE id = $run")
  expect_eq "$w eval_bytes" "$(m $run eval_bytes)" "4096.0"
  expect_eq "$w decode_context" "$(m $run decode_context)" "32.0"
  [ "$w" = distill ] && C=32 || C=64 # the student is what distill serves
  expect_eq "$w kv_cache_bytes" "$(m $run kv_cache_bytes)" "$((2 * 2 * 32 * C * 4)).0"
  expect_eq "$w kv in infer_peak" "$(m $run infer_peak_bytes kv_cache)" "$(m $run kv_cache_bytes)"
  # the deployment: weights, KV cache and workspace, and they are the whole of it
  expect_eq "$w infer_peak categories" "$(sql "SELECT group_concat(category) FROM (SELECT category
      FROM metrics WHERE run_id = $run AND rank = -1 AND name = 'infer_peak_bytes'
      AND category <> '' ORDER BY category)")" "kv_cache,weights,workspace"
  expect_eq "$w infer_peak is their sum" "$(sql "SELECT sum(value) = (SELECT value FROM metrics
      WHERE run_id = $run AND rank = -1 AND name = 'infer_peak_bytes' AND category = '') FROM
      metrics WHERE run_id = $run AND rank = -1 AND name = 'infer_peak_bytes'
      AND category <> ''")" 1
  # the evaluation holds its batch's activations and more than the deployment
  expect_eq "$w eval_peak above infer_peak" "$(sql "SELECT e.value > i.value AND a.value > 0
      FROM metrics e, metrics i, metrics a WHERE e.run_id = $run AND i.run_id = $run AND
      a.run_id = $run AND e.rank = -1 AND i.rank = -1 AND a.rank = -1 AND
      e.name = 'eval_peak_bytes' AND e.category = '' AND i.name = 'infer_peak_bytes' AND
      i.category = '' AND a.name = 'eval_peak_bytes' AND a.category = 'activations'")" 1
  expect_eq "$w decode speed" "$(sql "SELECT value > 0 FROM metrics WHERE run_id = $run AND name = 'decode_tokens_per_s'")" 1
  expect_eq "$w regions" "$(sql "SELECT group_concat(path) FROM (SELECT DISTINCT path FROM
      regions WHERE run_id = $run AND path IN ('infer', 'infer/decode', 'eval') ORDER BY path)")" \
    "eval,infer,infer/decode"
done
# Quantizing saves weight bytes, and the serving peak falls by exactly those. tiny's fp32
# weight slab: 482304 bytes; what quantize keeps in fp32 (embeddings, LayerNorms, biases):
# 22272 floats = 89088 bytes (every tensor a multiple of 64 bytes); the packed linears:
# packed_bytes. The packed kernels' scratch at batch 1 (one 64-byte row of group sums, a
# 64-byte guard) is the only other difference: 128 bytes of workspace.
packed=$(m 2 packed_bytes)
expect_eq "baseline weights" "$(m 1 infer_peak_bytes weights)" "482304.0"
expect_eq "quantize weights" "$(m 2 infer_peak_bytes weights)" "$(awk -v p="$packed" 'BEGIN { printf "%.1f", 89088 + p }')"
expect_eq "quantize workspace" "$(awk -v q="$(m 2 infer_peak_bytes workspace)" -v b="$(m 1 infer_peak_bytes workspace)" 'BEGIN { printf "%.1f", q - b }')" "128.0"
expect_eq "serving peak falls by the weight bytes saved" \
  "$(awk -v b="$(m 1 infer_peak_bytes)" -v q="$(m 2 infer_peak_bytes)" 'BEGIN { printf "%.1f", b - q }')" \
  "$(awk -v p="$packed" 'BEGIN { printf "%.1f", 482304 - (89088 + p) - 128 }')"
echo "ok: baseline infer_peak $(m 1 infer_peak_bytes), quantize 8-bit $(m 2 infer_peak_bytes) (packed $packed)"
