# tests/device/gpu/gpu.sh — device.gpu (ctest label `gpu`): the interposer on a real NVIDIA
# GPU. Builds driver.c and runtime.cu with nvcc, runs each under `memtrade profile
# --device` and compares the stored figures with what the program says it allocated:
# exact for the driver API, at least for the runtime (it may allocate for itself). Exits
# 77 (skipped) with the reason where there is no GPU or no nvcc.
# Usage: gpu.sh MEMTRADE SOURCE_DIR
set -u
MT=$1 SRC=$2
skip() {
    echo "skipped: $*"
    exit 77
}
command -v nvidia-smi >/dev/null 2>&1 || skip "no NVIDIA driver (nvidia-smi not found)"
nvidia-smi -L 2>/dev/null | grep -q '^GPU ' || skip "no NVIDIA GPU listed by nvidia-smi"
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || skip "no nvcc"
[ -n "$NVCC" ] || skip "no nvcc"
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
TMP=$(mktemp -d /tmp/mt_gpu_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db
fails=0
inc=$SRC/workloads/include
"$NVCC" -O1 -g -I"$inc" -o "$TMP/driver" "$SRC/tests/device/gpu/driver.c" \
    -L"$CUDA_HOME/lib64/stubs" -lcuda || { echo "FAIL: nvcc driver.c"; exit 1; }
"$NVCC" -O1 -g -I"$inc" -o "$TMP/runtime" "$SRC/tests/device/gpu/runtime.cu" ||
    { echo "FAIL: nvcc runtime.cu"; exit 1; }

metric() {
    sqlite3 -batch -noheader "$DB" "SELECT coalesce(CAST(value AS INTEGER), 'NULL:' || unavailable)
        FROM metrics WHERE run_id = $1 AND rank = -1 AND name = '$2' AND category = ''"
}
# check RUN OUTPUT: every "expect NAME N" must be stored exactly, every "atleast NAME N" at least
check() {
    while read -r how name want; do
        got=$(metric "$1" "$name")
        case $how in
        expect) [ "$got" = "$want" ] || { echo "FAIL: run $1 $name: got $got, want $want"; fails=$((fails + 1)); } ;;
        atleast) case $got in
            NULL:* | '') ok=0 ;;
            *) ok=$([ "$got" -ge "$want" ] && echo 1 || echo 0) ;;
            esac
            if [ "$ok" = 1 ]; then
                echo "run $1 $name: $got (the program asked for $want; the runtime's own: $((got - want)))"
            else
                echo "FAIL: run $1 $name: got $got, want at least $want"
                fails=$((fails + 1))
            fi ;;
        esac
    done <"$2"
}
n=0
for prog in driver runtime; do
    n=$((n + 1))
    "$MT" profile --device --db "$DB" -- "$TMP/$prog" >"$TMP/$prog.out" 2>"$TMP/$prog.err" ||
        { cat "$TMP/$prog.err"; echo "FAIL: $prog under memtrade profile --device"; fails=$((fails + 1)); continue; }
    cat "$TMP/$prog.err"
    check "$n" "$TMP/$prog.out"
    sqlite3 -batch -header -column "$DB" "SELECT space, category, allocs, bytes, peak_bytes FROM alloc_sites
        WHERE run_id = $n AND space <> 'host' ORDER BY space, bytes DESC LIMIT 12"
done
[ "$fails" = 0 ] || exit 1
echo ok
