#!/bin/sh
# bench_peers.sh — memtrade's training step beside PyTorch's, on the same machine in the
# same run, under each OpenMP wait policy.
#
# What it is for: the headline speed ratio against the PyTorch peer, taken honestly: both
# peers under the same OMP_WAIT_POLICY (libgomp's default, which spins between parallel
# regions, and `passive`, which sleeps), ROUNDS rounds interleaved (memtrade, torch,
# memtrade, torch, ...) so that a change in machine load falls on both, medians of
# medians, and each peer at its own best beside the same-policy ratios. Shape: `small`,
# B=8 T=128, fp32, THREADS threads (mt-bench-model and scripts/bench_torch_gpt.py speed).
# The environment it ran under (OPENBLAS_CORETYPE, which holds Debian's PyTorch to AVX2
# kernels where it is set) is printed with the results.
# What it is not for: a test (nothing fails); run it on a quiet machine.
# Needs: a build with mt-bench-model, /usr/bin/python3 with python3-torch and
# libopenblas0-pthread (scripts/packages-bench.txt).
# Usage: scripts/bench_peers.sh [BUILD_DIR] [ROUNDS] [STEPS] [THREADS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
rounds=${2:-5}
steps=${3:-20}
threads=${4:-2}
mt=$build/bin/mt-bench-model
[ -x "$mt" ] || { echo "bench_peers: build first (cmake --build $build --target mt-bench-model)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "bench_peers: needs python3-torch (scripts/packages-bench.txt)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one PEER POLICY: one run's median step time (ms) appended to $tmp/PEER.POLICY
one() {
  if [ "$2" = default ]; then pol=""; else pol="OMP_WAIT_POLICY=$2"; fi
  if [ "$1" = memtrade ]; then
    env $pol "$mt" --shape small --threads "$threads" --steps "$steps" >"$tmp/out" 2>&1
  else
    env $pol /usr/bin/python3 "$top/scripts/bench_torch_gpt.py" speed --shape small \
      --threads "$threads" --steps "$steps" >"$tmp/out" 2>&1
  fi || { cat "$tmp/out" >&2; echo "bench_peers: $1 under $2 failed" >&2; exit 1; }
  sed -n 's/.*small .*: step \([0-9.]*\) ms.*/\1/p' "$tmp/out" | head -n 1 >>"$tmp/$1.$2"
}
for i in $(seq "$rounds"); do
  for policy in default passive; do
    one memtrade "$policy"
    one torch "$policy"
  done
  echo "bench_peers: round $i/$rounds done" >&2
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "small B=8 T=128 fp32 training step, $threads threads, median of $rounds interleaved runs" \
  "(each the median of $steps steps)"
echo "[OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')]"
printf '%-26s %12s %12s %14s\n' OMP_WAIT_POLICY memtrade_ms torch_ms torch/memtrade
for policy in default passive; do
  m=$(median "$tmp/memtrade.$policy")
  t=$(median "$tmp/torch.$policy")
  awk -v p="$policy" -v m="$m" -v t="$t" 'BEGIN {printf "%-26s %12.2f %12.2f %13.2fx\n", p, m, t, t / m}'
  echo "$m" >>"$tmp/best.memtrade"
  echo "$t" >>"$tmp/best.torch"
done
m=$(sort -n "$tmp/best.memtrade" | head -n 1)
t=$(sort -n "$tmp/best.torch" | head -n 1)
awk -v m="$m" -v t="$t" 'BEGIN {printf "%-26s %12.2f %12.2f %13.2fx\n", "each at its best", m, t, t / m}'
