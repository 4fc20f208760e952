#!/bin/sh
# A launcher that does not exist: the multi-rank run is recorded 'failed' with the reason
# (which program, where its name came from, the system's error), not 'crashed' with
# "exit status 127"; single-rank runs do not use the launcher and still run.
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec mixed.ini <<'INI'
[t_ranks]
ranks = 2
[t_ok]
INI
expect_rc 1 "$MT" sweep mixed.ini --no-heap --launcher "mt-no-such-launcher -np {ranks}"
expect_eq "launcher run" "$(sql "SELECT status FROM runs WHERE workload = 't_ranks'")" failed
expect_eq "reason" "$(sql "SELECT error FROM runs WHERE workload = 't_ranks'")" \
    "cannot execute the launcher 'mt-no-such-launcher' (from --launcher or MEMTRADE_LAUNCHER: \"mt-no-such-launcher -np {ranks}\"): No such file or directory"
expect_eq "single-rank run" "$(sql "SELECT status FROM runs WHERE workload = 't_ok'")" ok
echo "ok: a missing launcher is a failed run with the reason"
