#!/bin/sh
# sampling.sh — runs heap_sampling under the heap profiler four times (full; sampled twice
# with one seed; sampled with another), then its checker on the four reports.
# Usage: sampling.sh LIB OUTDIR PROGRAM N
# Not for: anything but ctest (OUTDIR is emptied first and left behind).
set -e
lib=$1 out=$2 prog=$3 n=$4
rm -rf "$out"
# run SUBDIR MODE SEED
run() {
  mkdir -p "$out/$1"
  MEMTRADE_HEAP_OUT="$out/$1/heap.%p.txt" MEMTRADE_HEAP_MODE=$2 MEMTRADE_HEAP_SEED=$3 \
    MEMTRADE_HEAP_SAMPLE_BYTES=65536 MEMTRADE_HEAP_INTERVAL_MS=0 LD_PRELOAD="$lib" "$prog" run "$n"
}
run full full 7
run sampled sampled 7
run again sampled 7
run reseeded sampled 8
exec "$prog" check "$n" "$out"
