#!/bin/sh
# bench_calib.sh — the calibrated methods' speed on the GPT-2 124M block shapes (issue 20).
#
# What it is for: GPTQ (mt-bench-quant --gptq: 4-bit linear-asym, groups of 128) and
# SparseGPT (mt-bench-sparse --sparsegpt: 50 % unstructured) on the four linears of one
# GPT-2 124M block (random weights, 2048 correlated calibration tokens;
# workloads/common/bench_calib.h), at 1 and 2 threads: seconds per layer, the block's
# total and 12 times it (the model), and the shares of the Hessian (X^T X, oneDNN), the
# damped inverse's factorization (LAPACK) and the method's own pass (rounding or pruning
# with the error updates). Wall and CPU seconds of each program are printed by `time`,
# and the machine's load before and after: on a shared machine the factorization's wall
# time is mostly waiting (compare it with the CPU time), so trust a quiet machine only.
# What it is not for: a test (nothing fails on speed), accuracy (tests/calib, tests/quantize).
# Usage: scripts/bench_calib.sh [BUILD_DIR]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
for prog in mt-bench-quant mt-bench-sparse; do
    [ -x "$build/bin/$prog" ] || { echo "bench_calib: build first (cmake --build $build --target $prog)" >&2; exit 2; }
done
echo "load before: $(uptime)"
for t in 1 2; do
    OMP_NUM_THREADS=$t sh -c "time '$build/bin/mt-bench-quant' --gptq"
    OMP_NUM_THREADS=$t sh -c "time '$build/bin/mt-bench-sparse' --sparsegpt"
done
echo "load after: $(uptime)"
