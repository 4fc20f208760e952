#!/usr/bin/env bash
# scripts/gpu/prof-cuda.sh — run THERE (the GPU machine), after scripts/gpu/build.sh: where
# the time of one device training step goes, per kernel name, measured by Nsight Compute
# (gpu__time_duration of every kernel, no clock control). mt-bench-cuda runs STEPS + 2
# steps; the table divides every sum by that count, so it reads as milliseconds per step.
# Kernels run one at a time under ncu: their sum is near, not equal to, the step's time.
# Results: $OUT/prof-cuda.csv (ncu's raw rows) and $OUT/prof-cuda.txt (the table).
# Usage (repository root): OUT=... scripts/gpu/prof-cuda.sh [SPEC [B [T [PREC [STEPS]]]]]
# Not for: changing the card's settings (it never does).
set -uo pipefail
out=${OUT:-/tmp/memtrade-gpu-out}
spec=${1:-gpt2,vocab=50257} B=${2:-16} T=${3:-1024} prec=${4:-bf16} steps=${5:-1}
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "prof-cuda.sh: no ncu on this machine" | tee "$out/prof-cuda.txt"; exit 1; }
"$ncu" --csv --print-units base --clock-control none --metrics gpu__time_duration.sum \
    "$MEMTRADE_BUILD/bin/mt-bench-cuda" train "$spec" "$B" "$T" "$prec" "$steps" \
    >"$out/prof-cuda.csv" 2>"$out/prof-cuda.err"
python3 - "$out/prof-cuda.csv" $((steps + 2)) <<'PY' | tee "$out/prof-cuda.txt"
import csv, sys, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
steps = int(sys.argv[2])
tot, cnt = collections.Counter(), collections.Counter()
for r in csv.DictReader(rows):
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    name = r["Kernel Name"].split("(")[0][:70]
    tot[name] += float(r["Metric Value"].replace(",", "")) * 1e-6  # ns -> ms
    cnt[name] += 1
all_ms = sum(tot.values()) / steps
print(f"kernels per step: {sum(cnt.values()) / steps:.0f}, kernel time per step {all_ms:.1f} ms")
for n, v in tot.most_common(25):
    print(f"{v / steps:9.2f} ms {100 * v / steps / all_ms:5.1f} % {cnt[n] // steps:5d}x  {n}")
PY
