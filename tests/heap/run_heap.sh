#!/bin/sh
# run_heap.sh — runs one program under the heap profiler, then a checker on its reports.
# Usage: run_heap.sh LIB OUTDIR MODE CHECKER KIND -- PROGRAM [ARGS...]
# The reports go to OUTDIR/$HEAP_PATTERN (default heap.%p.txt; OUTDIR is emptied first);
# CHECKER KIND OUTDIR decides.
# Not for: anything but ctest (no option parsing, no cleanup of OUTDIR afterwards).
set -e
lib=$1 out=$2 mode=$3 checker=$4 kind=$5
shift 5
[ "$1" = "--" ] && shift
rm -rf "$out"
mkdir -p "$out"
MEMTRADE_HEAP_OUT="$out/${HEAP_PATTERN:-heap.%p.txt}" MEMTRADE_HEAP_MODE="$mode" MEMTRADE_HEAP_INTERVAL_MS=5 \
  MEMTRADE_HEAP_SEED=7 OMP_NUM_THREADS=4 LD_PRELOAD="$lib" "$@" || [ "$kind" = crash ]
exec "$checker" "$kind" "$out"
