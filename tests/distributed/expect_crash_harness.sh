#!/bin/sh
# expect_crash_harness.sh MEMTRADE — the same crash through the harness: rank 1 of a
# 2-rank data_parallel run raises SIGSEGV in its second step. The run must be recorded as
# crashed with signal 11, and rank 0's own reports (its log lines) must be kept.
memtrade=$1
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
MT_TEST_CRASH_RANK=1 timeout 60 "$memtrade" run data_parallel -p model=tiny -p steps=20 \
    -p batch=4 -p ranks=2 --threads 1 --heap off --db "$dir/t.db" --out "$dir/out"
rc=$?
if [ "$rc" -eq 124 ]; then echo "FAIL: the harness hung"; exit 1; fi
status=$(sqlite3 "$dir/t.db" "SELECT status || ' ' || signal FROM runs")
rank0=$(sqlite3 "$dir/t.db" "SELECT count(*) FROM logs WHERE rank = 0")
echo "run: $status; rank 0 log lines kept: $rank0"
[ "$status" = "crashed 11" ] || { echo "FAIL: want 'crashed 11'"; exit 1; }
[ "$rank0" -gt 0 ] || { echo "FAIL: rank 0's reports were lost"; exit 1; }
echo ok
