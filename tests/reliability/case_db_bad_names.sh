#!/bin/sh
# Misspelt names are errors that name the valid ones, nearest first (the defect: `query
# pareto --x bogus`, `query runs --status bogus` and `plot --x bogus` printed an empty
# result and exited 0); `plot` refuses a database of a newer schema with exit 3, as the
# other commands do (the defect: it drew from it).
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec one.ini <<'INI'
[t_ok]
INI
expect_rc 0 "$MT" sweep one.ini --no-heap
expect_rc 2 "$MT" query pareto --x model_byts
expect_out "memtrade query pareto: unknown metric 'model_byts' for --x; the metrics of out/memtrade.db, nearest first: model_bytes, "
expect_out "memory_bytes"
expect_rc 2 "$MT" query pareto --y bogus
expect_out "unknown metric 'bogus' for --y"
expect_out "val_bpb"
expect_rc 0 "$MT" query pareto --x model_bytes --y val_bpb
expect_out "t_ok"
expect_rc 2 "$MT" query runs --status okk
expect_out "memtrade query: unknown status 'okk' for --status; the statuses, nearest first: ok, "
expect_out "interrupted"
expect_rc 0 "$MT" query runs --status ok
expect_out "t_ok"
expect_rc 2 "$MT" plot --x bogus
expect_out "memtrade plot: unknown metric 'bogus' for --x; the metrics of out/memtrade.db, nearest first:"
# A newer schema than this build knows: refused before anything is read.
cp "$DB" new.db
sqlite3 new.db "PRAGMA user_version = 99" || fail "sqlite3"
expect_rc 3 "$MT" plot --db new.db --out newplots
expect_out "schema version 99 is newer than this memtrade build knows"
[ ! -e newplots ] || fail "plot wrote from a newer database"
echo "ok: bad names are named, newer schemas refused"
