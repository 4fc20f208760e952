#!/usr/bin/env bash
# scripts/gpu/check.sh — the one command for the GPU machine: builds memtrade against the
# carried .deb files (scripts/gpu/build.sh), runs the `gpu` ctest label and the device
# tests, then PyTorch under `memtrade profile --device` with its native caching allocator,
# with PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync and with expandable_segments:True,
# and puts the interposer's device peak beside torch.cuda.max_memory_reserved() and NVML's
# peak. Results go to $OUT (default /tmp/memtrade-gpu-out), five files: summary.txt
# (read this first), build.log, ctest.txt, torch.txt (sites of each case), memtrade.db.
# Usage (repository root): OUT=... scripts/gpu/check.sh
#   PYTHON: the interpreter with torch (default python3); MEMTRADE_SKIP_BUILD=1: keep the
#   build of an earlier call on the same machine
# Not for: changing the card's settings (it never does) or machines without the debs.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/memtrade-gpu-out}
mkdir -p "$out"
sum=$out/summary.txt
: >"$sum"
say() { echo "$*" | tee -a "$sum"; }
t0=$(date +%s)

say "== machine: $(uname -m), $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
say "== driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1); nvcc: $(nvcc --version 2>/dev/null | tail -1)"
if [ "${MEMTRADE_SKIP_BUILD:-0}" = 1 ] && [ -e /tmp/memtrade-deps/env.sh ]; then
    say "== build skipped (MEMTRADE_SKIP_BUILD=1: the last one in /tmp/memtrade-build)"
elif ! "$root/scripts/gpu/build.sh" >"$out/build.log" 2>&1; then
    say "== build FAILED (build.log):"
    tail -30 "$out/build.log" | tee -a "$sum"
    exit 1
fi
for log in /tmp/memtrade-build.configure.log /tmp/memtrade-build.build.log; do
    [ -e "$log" ] && { echo "--- $log (last 40 lines)"; tail -40 "$log"; } >>"$out/build.log"
done
say "== build ready after $(($(date +%s) - t0)) s"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
build=$MEMTRADE_BUILD
MT=$build/bin/memtrade

ctest --test-dir "$build" -L gpu -V >"$out/ctest.txt" 2>&1
say "== ctest -L gpu: $(grep -E 'tests passed|No tests' "$out/ctest.txt" | tail -1)"
grep -E '^[0-9]+: (skipped:|FAIL|run [0-9]|ok$)' "$out/ctest.txt" | sed 's/^/   /' | tee -a "$sum"
ctest --test-dir "$build" -R '^(device|heap)\.' -j4 --output-on-failure >>"$out/ctest.txt" 2>&1
say "== ctest device.* heap.* (fake driver, this machine's glibc): $(grep 'tests passed' "$out/ctest.txt" | tail -1)"

PY=${PYTHON:-python3}
DB=$out/memtrade.db
rm -f "$DB"
tq=$out/torch.txt
: >"$tq"
demangle() { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
metric() {
    sqlite3 -batch -noheader "$DB" "SELECT coalesce(CAST(value AS INTEGER), 'unavailable: ' || unavailable)
        FROM metrics WHERE run_id = $1 AND rank = -1 AND name = '$2' AND category = ''"
}
mib() { case $1 in '' | *[!0-9-]*) ;; *) awk -v b="$1" 'BEGIN { printf "(%.1f MiB)", b / 1048576 }' ;; esac; }
run=0
say "== PyTorch ($($PY -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1))"
for conf in native backend:cudaMallocAsync expandable_segments:True; do
    run=$((run + 1))
    js=$out/.torch$run.json
    rm -f "$js"
    if [ "$conf" = native ]; then unset PYTORCH_CUDA_ALLOC_CONF; else export PYTORCH_CUDA_ALLOC_CONF=$conf; fi
    # sampled host heap (cheaper for Python); device calls are recorded in full in every mode
    TORCH_CHECK_OUT=$js "$MT" profile --device --mode sampled --db "$DB" -- "$PY" \
        "$root/scripts/gpu/torch_check.py" >>"$tq" 2>&1
    rc=$?
    tail_log=$(sqlite3 -batch -noheader "$DB" "SELECT text FROM (SELECT t, rowid AS r, text
        FROM logs WHERE run_id = $run ORDER BY t DESC, rowid DESC LIMIT 12) ORDER BY t, r")
    unset PYTORCH_CUDA_ALLOC_CONF
    reserved=$($PY -c "import json; print(json.load(open('$js'))['max_memory_reserved'])" 2>/dev/null || echo "?")
    allocated=$($PY -c "import json; print(json.load(open('$js'))['max_memory_allocated'])" 2>/dev/null || echo "?")
    peak=$(metric $run peak_device_bytes)
    nvml=$(metric $run nvml_peak_device_bytes)
    nvmlu=$(metric $run nvml_device_used_peak_bytes)
    allocs=$(sqlite3 -batch -noheader "$DB" "SELECT coalesce(sum(allocs), 0) || ' allocations at ' || count(*) || ' sites'
        FROM alloc_sites WHERE run_id = $run AND space IN ('device', 'vmm')")
    diff="?"
    case "$peak$reserved" in *[!0-9]*) ;; *) diff=$((peak - reserved)) ;; esac
    say "-- run $run, allocator $conf (exit $rc)"
    say "   interposer peak_device_bytes   $peak $(mib "$peak"); device calls: $allocs"
    say "   torch max_memory_reserved      $reserved $(mib "$reserved"); max_memory_allocated $allocated"
    say "   interposer - reserved          $diff $(mib "$diff"): what PyTorch allocates outside its caching allocator"
    say "   NVML peak (program's processes) $nvml $(mib "$nvml"); NVML device used rise $nvmlu $(mib "$nvmlu")"
    say "   pinned $(metric $run peak_pinned_bytes), failed calls $(metric $run device_failed_calls), unknown frees $(metric $run device_unknown_frees)"
    [ "$rc" = 0 ] || echo "$tail_log" | sed 's/^/   program: /' | tee -a "$sum"
    {
        echo "== run $run ($conf): device sites, innermost frame first"
        sqlite3 -batch -header -separator ' | ' "$DB" "SELECT a.space, a.category, a.allocs, a.bytes,
            a.peak_bytes, (SELECT group_concat(coalesce(fn, '?'), ' <- ') FROM (SELECT f.function AS fn
              FROM stack_frames sf JOIN frames f ON f.id = sf.frame_id WHERE sf.stack_id = a.stack_id
              ORDER BY sf.depth LIMIT 12)) AS frames
            FROM alloc_sites a WHERE a.run_id = $run AND a.space <> 'host'
            ORDER BY a.peak_bytes DESC, a.bytes DESC LIMIT 25" | demangle
    } >>"$tq" 2>&1
done
rm -f "$out"/.torch*.json
say "== done in $(($(date +%s) - t0)) s; details: torch.txt, ctest.txt; database: memtrade.db"
