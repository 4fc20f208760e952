#!/usr/bin/env bash
# scripts/gpu/bench-cuda.sh — run THERE (the GPU machine), after scripts/gpu/build.sh: the
# device=cuda tests against the CPU engine (ctest transformer.cuda_*), then issue 22's
# benchmarks side by side on the one card, medians: the GPT-2 124M training step in bf16
# (memtrade and PyTorch eager under bf16 autocast, same B, T, V), batch-1 decode of fp32,
# bf16 and packed int8 / 4-bit weights against the bandwidth bound of a device-to-device
# copy, and the device peaks by category of memtrade's training step under `memtrade profile --device`
# (interposer, NVML). Results: $OUT/cuda.txt (default /tmp/memtrade-gpu-out).
# Usage (repository root): OUT=... scripts/gpu/bench-cuda.sh [B [T [STEPS]]]
#                          OUT=... scripts/gpu/bench-cuda.sh decode [TOKENS]
#   decode: only the batch-1 decode figures (bandwidth, then bf16 and the packed formats at
#   TOKENS, default 128: waiting per token, launched and graph; queued; greedy on the
#   device), into $OUT/decode.txt
#   PYTHON: the interpreter with torch (default python3)
#   MT_BENCH_CUDA: another mt-bench-cuda to run (say a build of an earlier commit)
# Not for: changing the card's settings (it never does).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/memtrade-gpu-out}
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
build=$MEMTRADE_BUILD
bench=${MT_BENCH_CUDA:-$build/bin/mt-bench-cuda}
spec=gpt2,vocab=50257
say() { echo "$*" | tee -a "$log"; }
if [ "${1:-}" = decode ]; then
    log=$out/decode.txt
    : >"$log"
    say "== $(nvidia-smi -L 2>/dev/null | head -1); $bench"
    "$bench" bandwidth 1024 2>&1 | tee -a "$log"
    for q in "" int8 int4-g128; do
        # shellcheck disable=SC2086
        "$bench" decode "$spec" bf16 "${2:-128}" $q 2>&1 | tee -a "$log"
    done
    exit 0
fi
B=${1:-16} T=${2:-1024} STEPS=${3:-10}
log=$out/cuda.txt
: >"$log"
say "== $(nvidia-smi -L 2>/dev/null | head -1)"
ctest --test-dir "$build" -R '^transformer\.cuda_' --output-on-failure >"$out/ctest-cuda.txt" 2>&1
say "== ctest transformer.cuda_*: $(grep -E 'tests passed' "$out/ctest-cuda.txt")"
say "== training step, $spec B=$B T=$T"
for prec in bf16 fp32; do "$bench" train "$spec" "$B" "$T" "$prec" "$STEPS" 2>&1 | tee -a "$log"; done
# the row kernels of dense attention (attention_rows) instead of cuBLAS's batched products
"$bench" train "$spec" "$B" "$T" bf16 "$STEPS" rows 2>&1 | tee -a "$log"
PYTHONUNBUFFERED=1 "${PYTHON:-python3}" "$root/scripts/bench_torch_gpt.py" speed --shape gpt2 \
    --device cuda --bf16 --batch "$B" --seq "$T" --steps "$STEPS" 2>&1 | tail -1 | tee -a "$log"
say "== batch-1 decode, $spec"
"$bench" bandwidth 1024 2>&1 | tee -a "$log"
for prec in fp32 bf16; do "$bench" decode "$spec" "$prec" 256 2>&1 | tee -a "$log"; done
# weight-only packed linears (cquant.h): the decode GEMVs read the int8 / 4-bit codes
for q in int8 int8-g128 int4-g128 int4-g64 int4-g32; do
    "$bench" decode "$spec" bf16 256 "$q" 2>&1 | tee -a "$log"
done
say "== memtrade profile --device of the bf16 training step (B=$B T=$T, 3 steps)"
db=$out/cuda.db
rm -f "$db"
memtrade profile --device --mode sampled --db "$db" -- "$bench" train "$spec" "$B" "$T" bf16 3 \
    >>"$log" 2>&1
sqlite3 -batch -noheader -separator ' ' "$db" "SELECT name, coalesce(CAST(value AS INTEGER),
    'unavailable: ' || unavailable) FROM metrics WHERE name LIKE '%device%' ORDER BY name" \
    2>&1 | sed 's/^/   /' | tee -a "$log"
