#!/bin/sh
# bench_import.sh — what importing a model costs (issue 18): load time, peak RSS and the
# heap profile of loading the GPT-2 124M shape (random weights written by memtrade itself)
# from memtrade's checkpoint (the baseline), a Hugging Face folder (f32, bf16) and GGUF
# (f32, q8_0); and evaluation tokens/s of the 1B-class Llama shape (llama-1b: TinyLlama's
# shape) with random weights.
#
# Each load runs REPS times in a fresh process (median seconds of the load plus one read of
# every weight, since a mapped load reads the file only when the weights are first used;
# ratio to the checkpoint's median in the same run), then once under `memtrade profile` (the heap profiler): its
# peak_heap_bytes (and of category weights) and peak_rss_bytes. A load that maps f32
# tensors already in the model's layout (every tensor of a GGUF memtrade wrote; the
# embeddings of a GPT-2 folder, whose Conv1D matrices are stored transposed) keeps them
# in the file's pages: they are in RSS, never on the heap. The machine's load (uptime) is
# printed before and after: trust the numbers of a quiet machine only.
# What it is not for: a test (nothing fails on speed).
# Usage: scripts/bench_import.sh [BUILD_DIR] [REPS] [EVAL_TOKENS] [SCRATCH]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
reps=${2:-3}
tokens=${3:-256}
dir=${4:-${TMPDIR:-/tmp}/mt_bench_import}
prog=$build/bin/mt-bench-import
[ -x "$prog" ] || { echo "bench_import: build first (cmake --build $build --target mt-bench-import)" >&2; exit 2; }
echo "load before: $(uptime)"
"$prog" write gpt2,vocab=50257 "$dir"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
base=
for f in model.mtckpt hf-f32 hf-bf16 f32.gguf q8_0.gguf; do
    : >"$dir/times"
    i=0
    while [ $i -lt "$reps" ]; do
        "$prog" load "$dir/$f" 1 >"$dir/last"
        sed 's/.* seconds \([0-9.]*\) read \([0-9.]*\) .*/\1 \2/' "$dir/last" |
            awk '{ print $1 + $2 }' >>"$dir/times"
        i=$((i + 1))
    done
    med=$(median <"$dir/times")
    [ -n "$base" ] || base=$med
    db=$dir/profile.db
    rm -f "$db" "$db-wal" "$db-shm"
    "$build/bin/memtrade" profile --db "$db" -- "$prog" load "$dir/$f" 1 >/dev/null 2>&1
    q() { sqlite3 -batch -noheader "$db" "SELECT CAST(value AS INTEGER) FROM metrics WHERE name = '$1' AND category = '$2' AND rank = -1"; }
    printf '%-13s median %6.3f s load+read (x%s of the checkpoint) %s | heap peak %s B (weights %s) rss peak %s B\n' \
        "$f" "$med" "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" \
        "$(sed 's/.*weights \([0-9]*\) mapped \([0-9]*\) copied \([0-9]*\).*/weights \1 B: mapped \2, copied \3/' "$dir/last")" \
        "$(q peak_heap_bytes '')" "$(q peak_heap_bytes weights)" "$(q peak_rss_bytes '')"
done
echo "evaluation (batch 1, random bytes as token ids, one-window warm-up, one timed pass):"
"$prog" eval gpt2,vocab=50257 "$tokens" 256
"$prog" eval llama-1b "$tokens" 128
rm -rf "$dir"
echo "load after: $(uptime)"
