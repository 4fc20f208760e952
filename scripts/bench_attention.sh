#!/bin/sh
# bench_attention.sh — dense against flash attention in training at long context (issue 17).
#
# What it is for: mt-bench-model --attention on the `long` preset (L6 H8 C256, width 256)
# at T = 1024, 2048, 4096 with batch 1 (dense attention at T=4096 keeps B·NH·T² = 128 Mi
# floats per layer: 3.2 GB over 6 layers, so B = 1), 2 threads: training activation bytes
# dense vs flash from the plan (equal to the allocation, tests/transformer test_attention),
# the bytes of attention alone, and the median ms per training step, dense and flash steps
# interleaved in the same process. Anchor: the FlashAttention README reports 10x memory
# saving at 2K and 20x at 4K for attention; flash should be at least as fast as dense from
# T = 1024.
# What it is not for: a test (it prints PASS or FAIL on the speed target and exits 0; the
# memory side is exact and tested in ctest). On a shared machine the medians move with load.
# Usage: scripts/bench_attention.sh [BUILD_DIR] [STEPS] [TS] [MODEL]
set -eu
build=${1:-build}
steps=${2:-3}
ts=${3:-1024,2048,4096}
model=${4:-long}
prog=$build/bin/mt-bench-model
[ -x "$prog" ] || { echo "bench_attention: build first: cmake --build $build --target mt-bench-model" >&2; exit 2; }
out=$(OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive "$prog" --attention "$ts" --model "$model" --steps "$steps" --threads 2)
echo "$out"
echo "$out" | awk '$2 == "ratio" { v = ($6 >= 1.0) ? "PASS" : "FAIL";
  printf "T=%s: activations %.2fx smaller with flash, attention %.0fx, flash step %s as fast as dense (dense/flash %.2f): %s\n",
         $1, $3, $5, ($6 >= 1.0) ? "at least" : "NOT", $6, v }'
