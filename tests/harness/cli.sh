# tests/harness/cli.sh — list/describe/help, parameter errors before any child starts,
# byte-size options, dry runs and shards that partition the grid.
. "$(dirname "$0")/lib.sh"

for cmd in list describe run sweep query merge profile; do
    expect_rc 0 "$MT" $cmd --help
    expect_out "usage: memtrade $cmd"
done
expect_rc 0 "$MT" --help
expect_out "exit codes:"
expect_rc 2 "$MT" frobnicate
if [ -x "${MT_BINARY_DIR:?}/plots/mt-plot" ]; then
    expect_rc 0 "$MT" plot --help # handed to the plot generator
    expect_out "--sweep"
fi

expect_rc 0 "$MT" list
expect_out "t_ok"
expect_out "dtype            choice default fp32"
expect_rc 0 "$MT" list --json
# JSON checked with SQLite's JSON functions (no other tool needed).
J="readfile('$TMP/last.out')"
expect_eq json_names "$(sqlite3 :memory: "SELECT count(*) FROM json_each($J) WHERE json_extract(value, '\$.name') IN ('t_ok', 't_fail', 't_segv', 't_hang', 't_oom', 't_ranks')")" "6"
expect_eq json_param "$(sqlite3 :memory: "SELECT p.value FROM json_each($J) w, json_each(json_extract(w.value, '\$.params')) p WHERE json_extract(w.value, '\$.name') = 't_ok' AND json_extract(p.value, '\$.name') = 'steps'")" \
    '{"name":"steps","type":"int","default":"3","min":1,"max":1000,"help":"steps to report"}'
expect_eq json_choices "$(sqlite3 :memory: "SELECT json_extract(p.value, '\$.choices') FROM json_each($J) w, json_each(json_extract(w.value, '\$.params')) p WHERE json_extract(w.value, '\$.name') = 't_ok' AND json_extract(p.value, '\$.name') = 'dtype'")" "fp32|bf16|int8"
expect_eq json_ranks "$(sqlite3 :memory: "SELECT json_extract(value, '\$.ranks_param') FROM json_each($J) WHERE json_extract(value, '\$.name') = 't_ranks'")" "ranks"
expect_rc 0 "$MT" describe t_ok
expect_out "memory estimate: declared"
expect_rc 2 "$MT" describe t_okk
expect_out "unknown workload 't_okk'; did you mean 't_ok'?"

# Bad parameters: refused before anything runs or any database exists.
expect_rc 2 "$MT" run t_ok -p stpes=3 --db "$DB"
expect_out "unknown parameter 'stpes' for workload 't_ok'; did you mean 'steps'?"
expect_rc 2 "$MT" run t_ok -p steps=0 --db "$DB"
expect_out "0 is out of range [1, 1000]"
expect_rc 2 "$MT" run t_ok -p flag=maybe --db "$DB"
expect_out "'maybe' is not a boolean"
expect_rc 2 "$MT" run t_ok --mem-limit 12Q --db "$DB"
expect_out "--mem-limit takes a byte size"
[ ! -e "$DB" ] || fail "a refused run created the database"

# A broken plugin given with --plugin is refused by name; in the folder it is skipped.
expect_rc 2 "$MT" describe bad_abi --plugin "$BADDIR/bad_abi.so"
expect_out "$BADDIR/bad_abi.so: plugin ABI major version 99"
MEMTRADE_PLUGIN_PATH=$PLUGDIR:$BADDIR expect_rc 0 "$MT" list
expect_out "warning: plugin refused: $BADDIR/bad_dup.so"
expect_out "t_ok"

# run: repeats, seed and memory options; MEMTRADE_DB.
MEMTRADE_DB=$TMP/env.db expect_rc 0 "$MT" run t_ok -p steps=2 -p seed=99 --repeat 2 --mem-limit 1GiB --no-heap
[ -e "$TMP/env.db" ] || fail "MEMTRADE_DB not used"
expect_eq repeats "$(sqlite3 "$TMP/env.db" "SELECT group_concat(repeat || ':' || seed || ':' || status, ' ') FROM runs")" "0:99:ok 1:99:ok"
MEMTRADE_DB=$TMP/env.db expect_rc 0 "$MT" run t_ok -p steps=2 -p seed=100 --no-heap
expect_eq rng_seeds "$(sqlite3 "$TMP/env.db" "SELECT count(DISTINCT value) || ':' || count(*) FROM metrics WHERE name = 'rng_first'")" "2:3"

# dry-run prints the grid and touches nothing; shards partition it.
cat >g.ini <<'INI'
[sweep]
repeats = 2
[t_ok]
steps = 1..16:x2
dtype = fp32, bf16
INI
expect_rc 0 "$MT" sweep g.ini --dry-run --db "$DB"
expect_out "20 runs (of 20 in the grid)"
[ ! -e "$DB" ] || fail "--dry-run created the database"
all=$(sed -n '3,$p' "$TMP/last.out" | awk '{print $1}' | sort -n | tr '\n' ' ')
union=""
for s in 1 2 3; do
    expect_rc 0 "$MT" sweep g.ini --dry-run --shard $s/3
    union="$union $(sed -n '3,$p' "$TMP/last.out" | awk '{print $1}')"
    sed -n '3,$p' "$TMP/last.out" | awk -v s=$s '{ if ($1 % 3 != s - 1) exit 1 }' || fail "shard $s/3 has a foreign index"
done
expect_eq shards "$(echo $union | tr ' ' '\n' | sort -n | tr '\n' ' ')" "$all"
expect_rc 2 "$MT" sweep g.ini --dry-run --shard 4/3
# threads: --threads, else OMP_NUM_THREADS (a positive integer, or a list's first level)
OMP_NUM_THREADS=3 expect_rc 0 "$MT" sweep g.ini --dry-run
expect_eq omp_threads "$(sed -n '3p' "$TMP/last.out" | awk '{print $5}')" "3"
OMP_NUM_THREADS=3,2 expect_rc 0 "$MT" sweep g.ini --dry-run --threads 5
expect_eq cli_threads "$(sed -n '3p' "$TMP/last.out" | awk '{print $5}')" "5"
OMP_NUM_THREADS=3,2 expect_rc 0 "$MT" sweep g.ini --dry-run
expect_eq omp_list "$(sed -n '3p' "$TMP/last.out" | awk '{print $5}')" "3"

# Command-line limits apply where the sweep file is silent.
printf '[t_ok]\nsteps = 1\nsleep_ms = 5000\n' >t.ini
expect_rc 1 "$MT" sweep t.ini --db "$TMP/t.db" --no-heap --timeout 0.5
expect_eq cli_timeout "$(sqlite3 "$TMP/t.db" "SELECT status FROM runs")" "timeout"
echo "ok"
