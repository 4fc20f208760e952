#!/bin/sh
# expect_crash.sh MPIEXEC DRIVER PLUGIN — rank 1 of a 2-rank data_parallel run raises
# SIGSEGV in its second step (MT_TEST_CRASH_RANK=1) while rank 0 waits in an all-reduce:
# the job must end with a non-zero exit well before the 60 s guard (124 = it hung).
mpiexec=$1 driver=$2 plugin=$3
MT_TEST_CRASH_RANK=1 timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 \
    "$driver" "$plugin" model=tiny steps=20 batch=4 eval_tokens=1024
rc=$?
echo "exit status $rc"
if [ "$rc" -eq 0 ]; then echo "FAIL: the crash went unnoticed"; exit 1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung"; exit 1; fi
echo "ok: crashed run ended with status $rc"
