# tests/harness/ranks.sh — a 2-rank workload through the MPI launcher: per-rank event
# files and metrics stored with their rank; a rank that crashes ends the run crashed with
# the other rank's data kept.
. "$(dirname "$0")/lib.sh"
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun"; exit 77; }
L="mpirun -np {ranks} --oversubscribe"

expect_rc 0 "$MT" run t_ranks -p ranks=2 --db "$DB" --no-heap --threads 1 --launcher "$L"
expect_eq ranks_col "$(sql "SELECT ranks FROM runs WHERE id = 1")" "2"
expect_eq rank_seen "$(sql "SELECT group_concat(rank || '=' || value, ' ') FROM (SELECT * FROM metrics WHERE run_id = 1 AND name = 'rank_seen' ORDER BY rank)")" "-1=0.0 0=0.0 1=1.0"
expect_eq nranks "$(sql "SELECT value FROM metrics WHERE run_id = 1 AND name = 'nranks_seen' AND rank = 1")" "2.0"
# Run level: as the metric vocabulary (metrics.h) says: memory the largest rank's,
# traffic the sum, training loss the mean, accuracy rank 0's; a plugin's own *_bytes max.
runlevel() { sql "SELECT value FROM metrics WHERE run_id = 1 AND name = '$1' AND category = '' AND rank = -1"; }
expect_eq max "$(runlevel train_peak_bytes)" "2000.0"
expect_eq sum "$(runlevel comm_bytes_sent)" "300.0"
expect_eq mean "$(runlevel train_loss)" "2.5"
expect_eq rank0 "$(runlevel val_bpb)" "3.0"
expect_eq own_max "$(runlevel t_ranks_own_bytes)" "20.0"
expect_eq rss "$(sql "SELECT count(*) FROM metrics WHERE run_id = 1 AND name = 'peak_rss_bytes' AND value > 0")" "3"
expect_eq samples "$(sql "SELECT group_concat(rank || ':' || y, ' ') FROM (SELECT * FROM samples WHERE run_id = 1 ORDER BY rank)")" "0:5.0 1:6.0"

MEMTRADE_LAUNCHER=$L expect_rc 1 "$MT" run t_ranks -p ranks=2 -p crash_rank=1 --db "$DB" --no-heap --threads 1
expect_eq crashed "$(sql "SELECT status || ':' || signal || ':' || error FROM runs WHERE id = 2")" "crashed:11:rank 1: Segmentation fault (signal 11)"
expect_eq kept "$(sql "SELECT count(*) FROM metrics WHERE run_id = 2 AND rank = 0 AND name = 'train_peak_bytes' AND category = ''")" "1"
echo "ok"
