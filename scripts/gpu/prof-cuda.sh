#!/usr/bin/env bash
# scripts/gpu/prof-cuda.sh — run THERE (the GPU machine), after scripts/gpu/build.sh: where
# the device time of an mt-bench-cuda command goes, per kernel name, measured by Nsight
# Compute (gpu__time_duration of every kernel, graph nodes included, no clock control).
# Every sum is divided by PER, the number of steps the command runs (train: STEPS + 2;
# decode: 2 x TOKENS, launched then graph-replayed), so the table reads as milliseconds
# per step. Kernels run one at a time under ncu: their sum is near, not equal to, the
# step's time.
# Results: $OUT/prof-NAME.csv (ncu's raw rows) and $OUT/prof-NAME.txt (the table).
# Usage (repository root): OUT=... scripts/gpu/prof-cuda.sh NAME PER MT-BENCH-CUDA-ARGS...
#   e.g. prof-cuda.sh train 3 train gpt2,vocab=50257 16 1024 bf16 1
#        prof-cuda.sh decode 64 decode gpt2,vocab=50257 fp32 32
# Not for: changing the card's settings (it never does).
set -uo pipefail
out=${OUT:-/tmp/memtrade-gpu-out}
[ $# -ge 3 ] || { echo "usage: $0 NAME PER MT-BENCH-CUDA-ARGS..." >&2; exit 2; }
name=$1 per=$2
shift 2
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "prof-cuda.sh: no ncu on this machine" | tee "$out/prof-$name.txt"; exit 1; }
"$ncu" --csv --print-units base --clock-control none --metrics gpu__time_duration.sum \
    "$MEMTRADE_BUILD/bin/mt-bench-cuda" "$@" >"$out/prof-$name.csv" 2>"$out/prof-$name.err"
python3 - "$out/prof-$name.csv" "$per" <<'PY' | tee "$out/prof-$name.txt"
import csv, sys, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
per = float(sys.argv[2])
tot, cnt = collections.Counter(), collections.Counter()
for r in csv.DictReader(rows):
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    name = r["Kernel Name"].split("(")[0][:70]
    tot[name] += float(r["Metric Value"].replace(",", "")) * 1e-6  # ns -> ms
    cnt[name] += 1
all_ms = sum(tot.values()) / per
print(f"kernels per step: {sum(cnt.values()) / per:.0f}, kernel time per step {all_ms:.3f} ms")
for n, v in tot.most_common(20):
    print(f"{v / per:9.3f} ms {100 * v / per / all_ms:5.1f} % {cnt[n] / per:6.1f}x  {n}")
PY
