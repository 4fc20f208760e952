#!/usr/bin/env bash
# scripts/gpu/compare-bf16.sh — run THERE (the GPU machine), after scripts/gpu/build.sh: is
# bf16 training right at the benchmark's shape? The loss trajectories of memtrade's fp32,
# bf16 and bf16 with the row kernels (mt-bench-cuda compare: same weights, one fixed
# batch), bf16's gradients against fp32's on the same weights along bf16's trajectory,
# tensor by tensor, and PyTorch's fp32 and bf16-autocast trajectories on the same batch
# and recipe (its own init). Results appended to $OUT/compare.txt.
# Usage (repository root): OUT=... scripts/gpu/compare-bf16.sh [B [T [STEPS [LR]]]]
# Not for: timings (bench-cuda.sh), changing the card's settings (it never does).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/memtrade-gpu-out}
B=${1:-16} T=${2:-1024} STEPS=${3:-12} LR=${4:-3e-3}
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
spec=gpt2,vocab=50257
"$MEMTRADE_BUILD/bin/mt-bench-cuda" compare "$spec" "$B" "$T" "$STEPS" "$LR" 2>&1 | tee -a "$out/compare.txt"
for bf in "" --bf16; do
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 "${PYTHON:-python3}" "$root/scripts/bench_torch_gpt.py" speed --shape gpt2 \
        --device cuda $bf --batch "$B" --seq "$T" --steps "$STEPS" --losses --lr "$LR" 2>&1 |
        tail -1 | tee -a "$out/compare.txt"
done
