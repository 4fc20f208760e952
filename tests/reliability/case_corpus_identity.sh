# case_corpus_identity.sh — the corpus is part of a run's identity (issue 14, item 2): a
# sweep on one corpus, then --resume on another of the same size, runs again instead of
# saying "1 skipped (already ok)"; `merge` keeps both; the params say which corpus each
# run read (content hash, size, name); a missing corpus is refused with exit 2 before
# the database exists.
. "$(dirname "$0")/lib.sh"

seq 10001 14000 >a.txt # two corpora of equal size, different bytes
seq 20001 24000 >b.txt
single_thread_spec s.ini <<'INI'
[baseline]
model = tiny
steps = 2
eval_tokens = 1024
INI
MEMTRADE_CORPUS=$TMP/a.txt expect_rc 0 "$MT" sweep s.ini --db "$DB" --no-heap
MEMTRADE_CORPUS=$TMP/b.txt expect_rc 0 "$MT" sweep s.ini --db "$DB" --no-heap --resume
expect_out "1 runs planned, 0 skipped (already ok), 1 started: 1 ok"
expect_eq "ok runs" "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "2"
expect_eq "distinct keys" "$(sql "SELECT count(DISTINCT config_key) FROM runs")" "2"
expect_eq "names" "$(sql "SELECT group_concat(value, ' ') FROM (SELECT value FROM params WHERE key = 'corpus.name' ORDER BY run_id)")" "$TMP/a.txt $TMP/b.txt"
expect_eq "sizes" "$(sql "SELECT group_concat(value, ' ') FROM (SELECT value FROM params WHERE key = 'corpus.bytes' ORDER BY run_id)")" "24000 24000"
# The hash is FNV-1a 64 of the bytes: a copy under another name is the same configuration.
cp b.txt copy.txt
MEMTRADE_CORPUS=$TMP/copy.txt expect_rc 0 "$MT" sweep s.ini --db "$DB" --no-heap --resume
expect_out "1 runs planned, 1 skipped (already ok), 0 started"

# merge: two databases, one run each on another corpus: both survive.
MEMTRADE_CORPUS=$TMP/a.txt expect_rc 0 "$MT" sweep s.ini --db "$TMP/one.db" --no-heap
MEMTRADE_CORPUS=$TMP/b.txt expect_rc 0 "$MT" sweep s.ini --db "$TMP/two.db" --no-heap
expect_rc 0 "$MT" merge "$TMP/all.db" "$TMP/one.db" "$TMP/two.db"
expect_eq "merged ok runs" "$(sqlite3 "$TMP/all.db" "SELECT count(*) FROM runs WHERE status = 'ok'")" "2"

# A corpus the user names and that is not there: refused, nothing created.
MEMTRADE_CORPUS=$TMP/missing.txt expect_rc 2 "$MT" sweep s.ini --db "$TMP/new.db" --no-heap
expect_out "MEMTRADE_CORPUS: corpus $TMP/missing.txt: No such file or directory"
expect_rc 2 "$MT" run baseline -p model=tiny -p corpus="$TMP/missing.txt" --db "$TMP/new.db" --no-heap
expect_out "parameter 'corpus': corpus $TMP/missing.txt: No such file or directory"
[ ! -e "$TMP/new.db" ] || fail "a refused corpus created a database"
echo "PASS"
