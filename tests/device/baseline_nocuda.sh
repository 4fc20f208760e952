# tests/device/baseline_nocuda.sh — device.baseline_nocuda: where device=cuda cannot run (no
# CUDA backend in the build, or no GPU), `memtrade run baseline -p device=cuda` fails with
# a message saying which, before any training. Skipped (77) on a machine with a GPU.
# Usage: baseline_nocuda.sh MEMTRADE
set -u
MT=$1
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "skipped: this machine has a GPU (device.baseline_cuda runs there)"
    exit 77
fi
TMP=$(mktemp -d /tmp/mt_baseline_nocuda.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
XDG_CACHE_HOME=$TMP/cache "$MT" run baseline -p model=tiny -p steps=5 -p device=cuda \
    --out "$TMP/out" >"$TMP/log" 2>&1
row=$(sqlite3 -batch -noheader "$TMP/out/memtrade.db" "SELECT status || '|' || coalesce(error, '') FROM runs")
echo "$row"
case $row in
failed\|device=cuda:\ no\ CUDA\ *) echo ok ;;
*) echo "FAIL: expected a failed run saying device=cuda has no backend or no device"; exit 1 ;;
esac
