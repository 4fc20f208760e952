#!/bin/sh
# bench_kvcache.sh — batch-1 decode at long context by KV-cache format, against the
# memory-bandwidth bound, and the paged-vs-contiguous serving simulation (issue 17).
#
# What it is for: running mt-bench-kvcache (workloads/transformer/bench_kvcache.c) on a
# randomly initialised model of width 256 at T=4096 (preset "long"; random weights:
# decode speed does not depend on what was learnt) with the cache filled to 4096
# positions: tokens/s of fp32, bf16, int8, int4, int3 and int2 caches at 1 and 2 threads
# (medians of REPS interleaved repetitions), the ratio to fp32 in the same run, bytes
# read per token (weights + cache), the stream-read bandwidth of the same run and the
# share of the bound (bandwidth / bytes per token) each format's whole step reaches
# (step%), the attention's share of a step (attn%) and the attention's own share of its
# bound, the cache's bytes at stream speed (attn_bw% by wall time; cpu_bw% by the thread's
# CPU time, one thread), the attention's speed with its data in the caches (hot_ns, and
# cmp_x: how much faster than the stream bandwidth the kernels compute), per thread count
# `summary` lines (per format: step us/token, its bound, share and speed against fp32,
# the same for the attention alone), and the seeded serving simulation's waste and
# concurrency gain.
# The machine's load (uptime) is printed before and after: trust the numbers of a quiet
# machine only, and compare formats within one run.
# What it is not for: a test (nothing fails on speed), accuracy (the kv_cache plugin).
# Usage: scripts/bench_kvcache.sh [BUILD_DIR] [REPS] [MODEL] [extra mt-bench-kvcache args]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
reps=${2:-9}
model=${3:-long}
[ $# -gt 3 ] && shift 3 || set --
prog=$build/bin/mt-bench-kvcache
[ -x "$prog" ] || { echo "bench_kvcache: build first (cmake --build $build --target mt-bench-kvcache)" >&2; exit 2; }
echo "load before: $(uptime)"
"$prog" --model "$model" --reps "$reps" --threads 1,2 --formats fp32,bf16,int8,int4,int3,int2 "$@"
echo "load after: $(uptime)"
