# tests/harness/merge.sh — shards of one sweep in separate databases, joined with
# `memtrade merge`: the grid exactly once; merging again adds nothing.
. "$(dirname "$0")/lib.sh"

single_thread_spec m.ini sharded <<'INI'
[t_ok]
steps = 1, 2
note = a, b, c
INI
expect_rc 0 "$MT" sweep m.ini --db s1.db --no-heap --shard 1/2
expect_rc 0 "$MT" sweep m.ini --db s2.db --no-heap --shard 2/2
expect_eq s1 "$(sqlite3 s1.db "SELECT count(*) || ':' || (SELECT shard FROM sweeps) FROM runs")" "3:1/2"
expect_rc 0 "$MT" merge all.db s1.db s2.db
DB=all.db
expect_eq ok "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "6"
expect_eq distinct "$(sql "SELECT count(DISTINCT config_key) FROM runs")" "6"
expect_eq metrics "$(sql "SELECT count(*) FROM metrics WHERE name = 'val_bpb'")" "6"
expect_rc 0 "$MT" merge all.db s2.db
expect_out "3 ok runs skipped"
expect_eq again "$(sql "SELECT count(*) FROM runs")" "6"
expect_rc 3 "$MT" merge all.db "$TMP/missing.db"
echo "ok"
