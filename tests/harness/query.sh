# tests/harness/query.sh — `memtrade query`: canned queries work; `query sql` refuses
# writes and leaves the database byte-identical; foreign files are refused.
. "$(dirname "$0")/lib.sh"

expect_rc 0 "$MT" run t_ok -p steps=2 --db "$DB" --no-heap
expect_rc 0 "$MT" run t_ok -p steps=4 --db "$DB" --no-heap
before=$(hash "$DB")

expect_rc 3 "$MT" query --db "$DB" sql "INSERT INTO meta VALUES ('x', 'y')"
expect_rc 3 "$MT" query --db "$DB" sql "DROP TABLE runs"
expect_rc 3 "$MT" query --db "$DB" sql "SELECT 1; DELETE FROM runs"
expect_rc 3 "$MT" query --db "$DB" sql "UPDATE runs SET status = 'ok'"
expect_eq unchanged "$(hash "$DB")" "$before"
expect_eq rows "$(sql "SELECT count(*) FROM runs")" "2"

expect_rc 0 "$MT" query --db "$DB" --format csv sql "SELECT name, value FROM metrics WHERE run_id = 2 AND name = 'val_bpb'"
expect_eq csv "$(cat "$TMP/last.out")" "name,value
val_bpb,2.5"
expect_rc 0 "$MT" query --db "$DB" --format json runs
expect_eq json "$(sqlite3 :memory: "SELECT group_concat(json_extract(value, '\$.status'), ' ') FROM json_each(readfile('$TMP/last.out'))")" "ok ok"
expect_rc 0 "$MT" query --db "$DB" show 1
expect_out "val_bpb"
expect_rc 0 "$MT" query --db "$DB" compare 1 2
expect_out "model_bytes"
expect_rc 3 "$MT" query --db "$DB" show 99
expect_rc 2 "$MT" query --db "$DB" shwo 1
expect_out "did you mean 'show'?"
MEMTRADE_DB=$DB expect_rc 0 "$MT" query --format csv sql "SELECT count(*) AS n FROM runs"
expect_out "2"

echo "not a database" >foreign.db
expect_rc 3 "$MT" query --db foreign.db runs
expect_rc 3 "$MT" query --db "$TMP/none.db" runs
[ ! -e "$TMP/none.db" ] || fail "query created a database"
echo "ok"
