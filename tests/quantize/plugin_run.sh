#!/bin/sh
# plugin_run.sh — the quantize plugin end to end through the harness.
#
# What it is for: `plugin_run.sh MEMTRADE` runs `memtrade run quantize` on the tiny preset
# (a 20-step baseline trained into a private cache) with 4-bit NF groups of 32 and the
# embedding packed, then checks what landed in the database: status ok, model_bytes and
# bits_per_weight equal to the sizes computed by hand below, one error pair per packed
# layer, an infer_peak_bytes above model_bytes, accuracy and speed metrics, the nested
# regions; and that int8 activations with a codebook scheme fail with a message.
# What it is not for: accuracy claims (test_qmodel) or kernel checks (test_quant).
set -eu
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
db=$dir/t.db
XDG_CACHE_HOME=$dir/cache "$bin" run quantize -p model=tiny -p steps=20 -p batch=4 \
  -p eval_tokens=4096 -p bits=4 -p scheme=nf -p granularity=group -p group_size=32 \
  -p embedding=on --threads 2 --heap off --out "$dir/out" --db "$db" >"$dir/log" 2>&1 ||
  { cat "$dir/log" >&2; fail "run failed"; }
q() { sqlite3 "$db" "$1"; }
metric() { q "SELECT value FROM metrics WHERE name = '$1' AND category = ''"; }
[ "$(q 'SELECT status FROM runs WHERE id = 1')" = ok ] || fail "status $(q 'SELECT status, error FROM runs')"
# tiny: L2 C64 V256 T64. Per layer (codes + one fp32 absmax per 32 columns + a 16-entry
# table): qkv 192x64 -> 6144+1536+64, proj 64x64 -> 2048+512+64, fc 256x64 -> 8192+2048+64,
# fc_proj 64x256 -> 8192+2048+64; two layers = 61952; the head 256x64 -> 10304. The fp32
# rest: wpe 4096 + LayerNorms 512 + biases 1152 + final LayerNorm 128 floats = 23552 bytes.
[ "$(metric model_bytes)" = 95808.0 ] || fail "model_bytes $(metric model_bytes), want 95808"
[ "$(metric packed_bytes)" = 72256.0 ] || fail "packed_bytes $(metric packed_bytes), want 72256"
# 8 * 72256 / 114688 packed weights
awk -v b="$(metric bits_per_weight)" 'BEGIN { d = b - 5.040178571428571; exit !(d < 1e-9 && d > -1e-9) }' ||
  fail "bits_per_weight $(metric bits_per_weight)"
[ "$(q "SELECT count(*) FROM metrics WHERE name LIKE 'layer.%.mse'")" = 9 ] || fail "layer mse count"
[ "$(q "SELECT count(*) FROM metrics WHERE name = 'layer.lm_head.maxabs' AND value > 0")" = 1 ] ||
  fail "no lm_head maxabs"
[ "$(q "SELECT value > $(metric model_bytes) FROM metrics WHERE name = 'infer_peak_bytes' AND category = ''")" = 1 ] ||
  fail "infer_peak_bytes $(metric infer_peak_bytes) not above model_bytes"
for m in val_bpb val_loss eval_tokens_per_s decode_tokens_per_s quantize_seconds; do
  [ "$(q "SELECT count(*) FROM metrics WHERE name = '$m' AND value > 0")" = 1 ] || fail "metric $m"
done
for r in quantize infer infer/decode eval; do
  [ "$(q "SELECT count(*) FROM regions WHERE path = '$r'")" -ge 1 ] || fail "region $r"
done
# A combination the kernels cannot run is refused with a message.
XDG_CACHE_HOME=$dir/cache "$bin" run quantize -p model=tiny -p steps=20 -p batch=4 \
  -p scheme=nf -p activations=int8-dynamic --threads 1 --heap off --out "$dir/out" \
  --db "$db" >"$dir/log2" 2>&1 && fail "int8 activations with nf accepted"
q "SELECT error FROM runs WHERE id = 2" | grep -q "linear" || fail "error: $(q 'SELECT error FROM runs WHERE id = 2')"
echo "quantize plugin ok: model_bytes 95808, 9 layers, $(metric decode_tokens_per_s) decode tokens/s"
