#!/bin/sh
# bench_heap.sh — what the heap profiler costs, next to heaptrack, on a malloc-heavy program.
#
# What it is for: timing profilers/heap/bench/malloc_heavy.c (10M allocations of 16..4096
# bytes, 11 frames below main, a window of 4096 live blocks) plain, under libmt_heap.so in
# sampled and in full mode, and under Debian's heaptrack (`heaptrack -r`: record only, no
# analysis), REPEATS times each, interleaved, and printing the median CPU time (user +
# system of the child and its descendants, as /usr/bin/time reads them from wait4's
# rusage: heaptrack compresses in a second process) and wall time, the overhead of each
# (median / plain median - 1) and the median of the per-round overheads (each run against
# the plain run of its own round: less sensitive to a load that drifts), the load average
# before and after, and PASS or FAIL against the targets of DESIGN.md on the CPU overhead
# (median / plain median): sampled <= 5 %, full <= 25 %. With BASE_LIB=PATH (another
# build's libmt_heap.so, e.g. of main) each round also runs that library in both modes
# (rows base-sampled, base-full), so a change is compared with its base on the same load.
# It also checks
# that both modes report the same exact totals (allocations, bytes, peak). Then, when the
# build has the harness and the baseline plugin, the same for a baseline training run
# (tiny model, TRAIN_STEPS steps, one thread): the CPU and wall time of its 'train'
# region with --heap off, full and sampled (heaptrack cannot wrap the harness's
# re-executed child, so it is not in that table).
# What it is not for: a test (it exits 0 on FAIL; the targets live here, not in ctest).
# Run it niced, on a quiet machine if you can: on a shared one trust CPU over wall, run it
# more than once (at load 5-14 one table's overheads move by +-10 points), and take
# callgrind's instructions per allocation + free as the load-independent figure; the last
# figures of both are in profilers/heap/README.md ("Measured").
# HEAPTRACK=0 leaves heaptrack out (shorter rounds).
# Usage: [BASE_LIB=PATH] [HEAPTRACK=0] scripts/bench_heap.sh [BUILD_DIR] [REPEATS] [ALLOCATIONS] [TRAIN_STEPS]
#   TRAIN_STEPS=0 skips the training run.
set -eu
build=${1:-build}
repeats=${2:-5}
allocs=${3:-10000000}
train_steps=${4:-300}
sampled_target=5
full_target=25
prog=$build/bin/mt_heap_bench_malloc
lib=$build/lib/libmt_heap.so
[ -x "$prog" ] && [ -f "$lib" ] || {
  echo "bench_heap: build first: cmake --build $build --target mt_heap mt_heap_bench_malloc" >&2
  exit 2
}
base_lib=${BASE_LIB:-}
[ -z "$base_lib" ] || [ -f "$base_lib" ] || { echo "bench_heap: BASE_LIB $base_lib: no such file" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
have_heaptrack=0
[ "${HEAPTRACK:-1}" = 0 ] || ! command -v heaptrack >/dev/null 2>&1 || have_heaptrack=1

[ -x /usr/bin/time ] || { echo "bench_heap: needs /usr/bin/time (Debian package time)" >&2; exit 2; }

# run NAME CMD...: one timed run, appends "wall_ms cpu_ms" to $tmp/NAME
run() {
  name=$1
  shift
  nice -n 10 /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@" >/dev/null 2>&1 ||
    { echo "bench_heap: $name failed" >&2; exit 1; }
  awk '{printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000}' "$tmp/time" >>"$tmp/$name"
}

# totals FILE: the exact totals of a report (allocs, bytes, peak_bytes, per-category C lines)
totals() { awk -F '\t' '$1 == "C" || ($1 == "S" && ($2 == "allocs" || $2 == "bytes" || $2 == "peak_bytes"))' "$1"; }

same_totals=yes
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$repeats"); do
  run none "$prog" "$allocs"
  run sampled env MEMTRADE_HEAP_MODE=sampled MEMTRADE_HEAP_OUT="$tmp/sampled.%p.txt" LD_PRELOAD="$lib" "$prog" "$allocs"
  run full env MEMTRADE_HEAP_MODE=full MEMTRADE_HEAP_OUT="$tmp/full.%p.txt" LD_PRELOAD="$lib" "$prog" "$allocs"
  if [ -n "$base_lib" ]; then
    run base-sampled env MEMTRADE_HEAP_MODE=sampled MEMTRADE_HEAP_OUT="$tmp/bs.%p.out" LD_PRELOAD="$base_lib" "$prog" "$allocs"
    run base-full env MEMTRADE_HEAP_MODE=full MEMTRADE_HEAP_OUT="$tmp/bf.%p.out" LD_PRELOAD="$base_lib" "$prog" "$allocs"
    rm -f "$tmp"/*.out
  fi
  if [ $have_heaptrack = 1 ]; then
    run heaptrack heaptrack -r -o "$tmp/ht.$i" "$prog" "$allocs"
  fi
  totals "$tmp"/sampled.*.txt >"$tmp/tot.sampled"
  totals "$tmp"/full.*.txt >"$tmp/tot.full"
  { [ -s "$tmp/tot.full" ] && cmp -s "$tmp/tot.sampled" "$tmp/tot.full"; } || same_totals=no
  rm -f "$tmp"/*.txt "$tmp"/ht.* "$tmp/time"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# round_median NAME: the median over rounds of cpu(NAME) / cpu(plain) - 1, in percent
round_median() {
  paste -d ' ' "$tmp/$1" "$tmp/none" | awk '{print ($2 / $4 - 1) * 100}' | sort -g |
    awk '{v[NR]=$1} END {printf "%.1f%%", v[int((NR+1)/2)]}'
}
wb=$(median "$tmp/none" 1)
cb=$(median "$tmp/none" 2)
echo "malloc_heavy: $allocs allocations, median of $repeats interleaved runs, overhead = t/t_plain - 1"
echo "machine: $(nproc) CPUs, $(awk -F ': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "load average (1, 5, 15 min): before $load_before, after $load_after"
printf '%-12s %8s %9s %9s %8s %9s  %s\n' profiler cpu_ms overhead per-round wall_ms overhead target
for name in none sampled full base-sampled base-full heaptrack; do
  case $name in base-*) [ -f "$tmp/$name" ] || continue ;; esac
  [ -f "$tmp/$name" ] || { printf '%-12s %8s\n' "$name" "unavailable (heaptrack not installed, or HEAPTRACK=0)"; continue; }
  target=
  [ "$name" = sampled ] && target=$sampled_target
  [ "$name" = full ] && target=$full_target
  awk -v n="$name" -v w="$(median "$tmp/$name" 1)" -v c="$(median "$tmp/$name" 2)" -v wb="$wb" -v cb="$cb" \
    -v t="$target" -v r="$(round_median "$name")" 'BEGIN {
      o = (c / cb - 1) * 100
      v = t == "" ? "" : sprintf("<= %d %%: %s", t, o <= t ? "PASS" : "FAIL")
      printf "%-12s %8d %8.1f%% %9s %8d %8.1f%%  %s\n", n, c, o, r, w, (w / wb - 1) * 100, v}'
done
echo "exact totals (allocations, bytes, peak, per category) equal in sampled and full mode: $same_totals"
# the verdict on its own lines: the targets against the overhead of the medians (CPU)
for name in sampled full; do
  t=$sampled_target
  [ "$name" = full ] && t=$full_target
  awk -v n="$name" -v c="$(median "$tmp/$name" 2)" -v cb="$cb" -v t="$t" -v r="$(round_median "$name")" \
    -v l="$load_before / $load_after" 'BEGIN {o = (c / cb - 1) * 100
      printf "target %-7s CPU %+.1f %% over plain (median of rounds %s) <= %d %%: %s (load %s)\n",
        n, o, r, t, o <= t ? "PASS" : "FAIL", l}'
done
if [ -f "$tmp/heaptrack" ]; then
  awk -v f="$(median "$tmp/full" 2)" -v h="$(median "$tmp/heaptrack" 2)" -v b="$cb" \
    'BEGIN {printf "full-mode overhead / heaptrack overhead (cpu) = %.2f\n", (f - b) / (h - b)}'
fi
[ "$train_steps" -gt 0 ] || exit 0

memtrade=$build/bin/memtrade
if [ ! -x "$memtrade" ] || [ ! -f "$build/plugins/baseline.so" ] || ! command -v sqlite3 >/dev/null; then
  echo "baseline training run: unavailable (needs $memtrade, the baseline plugin and sqlite3)"
  exit 0
fi
# train NAME HEAP: one baseline run; appends the train region's cpu and wall ms
train() {
  out="$tmp/train-$1"
  rm -rf "$out"
  XDG_CACHE_HOME="$out/cache" nice -n 10 "$memtrade" run baseline -p model=tiny \
    -p steps="$train_steps" -p eval_tokens=2000 --threads 1 --heap "$2" --out "$out" \
    >/dev/null 2>&1 || { echo "bench_heap: training run with --heap $2 failed" >&2; exit 1; }
  sqlite3 "$out/memtrade.db" "SELECT CAST(cpu_s*1000 AS INT), CAST(wall_s*1000 AS INT)
    FROM regions WHERE path = 'train'" | tr '|' ' ' >>"$tmp/train.$1"
}
for i in $(seq "$repeats"); do
  train off off
  train full full
  train sampled sampled
done
tmedian() { median "$tmp/train.$1" "$2"; }
echo
echo "baseline training run: tiny model, $train_steps steps, 1 thread, median of $repeats runs of the 'train' region"
printf '%-10s %8s %9s %8s %9s\n' heap cpu_ms overhead wall_ms overhead
cbase=$(tmedian off 1)
wbase=$(tmedian off 2)
for name in off full sampled; do
  awk -v n="$name" -v c="$(tmedian $name 1)" -v w="$(tmedian $name 2)" -v cb="$cbase" -v wb="$wbase" \
    'BEGIN {printf "%-10s %8d %8.1f%% %8d %8.1f%%\n", n, c, (c / cb - 1) * 100, w, (w / wb - 1) * 100}'
done
