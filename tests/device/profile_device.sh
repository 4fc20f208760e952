# tests/device/profile_device.sh — `memtrade profile --device`: the interposer's device
# figures and NVML's (a fake libnvidia-ml.so.1) stored beside each other; without NVML,
# its figures unavailable with the reason, never 0.
# Usage: profile_device.sh MEMTRADE FAKE_CUDA_DIR FAKE_NVML_DIR CUDA_RUNTIME_PROGRAM
set -u
MT=$1 FAKECUDA=$2 FAKENVML=$3 PROG=$4
TMP=$(mktemp -d /tmp/mt_device_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
sql() { sqlite3 -batch -noheader "$DB" "$1"; }
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
metric() { sql "SELECT coalesce(value, 'NULL:' || unavailable) FROM metrics WHERE run_id = $1 AND name = '$2' AND category = '${3:-}'"; }

# 1. the fake driver through the runtime's path, no NVML on this machine's library path
FAKE_CUDA_FAIL_AT=7 LD_LIBRARY_PATH=$FAKECUDA "$MT" profile --device --db "$DB" -- "$PROG" \
    >"$TMP/out1" 2>&1 || { cat "$TMP/out1"; fail "profile --device exited $?"; }
expect_eq peak "$(metric 1 peak_device_bytes)" "5351424.0"
expect_eq kv_cache "$(metric 1 peak_device_bytes kv_cache)" "4194304.0"
expect_eq pinned "$(metric 1 peak_pinned_bytes)" "20480.0"
expect_eq failed "$(metric 1 device_failed_calls)" "3.0"
expect_eq nvml "$(metric 1 nvml_peak_device_bytes)" "NULL:libnvidia-ml.so.1 not found"
expect_eq sites "$(sql "SELECT space || ':' || sum(bytes) FROM alloc_sites WHERE run_id = 1 AND space <> 'host' GROUP BY space ORDER BY space" | tr '\n' ' ')" \
    "device:1288192 managed:8192 pinned:20480 vmm:4194304 "
expect_eq timeline "$(sql "SELECT max(y) FROM samples WHERE run_id = 1 AND series = 'device.live'")" "5351424.0"
grep -q "device: peak_device_bytes 5351424" "$TMP/out1" || fail "no device peak printed"

# 2. NVML (fake): the program's processes hold 1, then 3, then 0.5 MB; pid 1's 999999999
# bytes are not the program's
F=$TMP/used
LD_LIBRARY_PATH=$FAKENVML FAKE_NVML_USED=$F "$MT" profile --device --db "$DB" -- /bin/sh -c \
    "echo 1000000 > $F.t; mv $F.t $F; sleep 0.3; echo 3000000 > $F.t; mv $F.t $F; sleep 0.3;
     echo 500000 > $F.t; mv $F.t $F; sleep 0.3" >"$TMP/out2" 2>&1 || { cat "$TMP/out2"; fail "profile with NVML"; }
expect_eq nvml_peak "$(metric 2 nvml_peak_device_bytes)" "3000000.0"
expect_eq nvml_used "$(metric 2 nvml_device_used_peak_bytes)" "3000000.0"
expect_eq nvml_series "$(sql "SELECT count(*) > 10 AND max(y) = 3000000 AND min(y) >= 500000 FROM samples WHERE run_id = 2 AND series = 'nvml.used'")" "1"
expect_eq ordered "$(sql "SELECT count(*) FROM (SELECT x, lag(x) OVER (ORDER BY rowid) AS p FROM samples WHERE run_id = 2 AND series = 'nvml.used') WHERE x < p")" "0"
echo ok
