# case_spec_duplicates.sh — one configuration twice in one grid (issue 14, item 3) gave
# two 'ok' rows for one (config_key, repeat): refused with file:line, exit 2, before the
# database is touched; `repeats = N` stays the way to run a configuration again.
. "$(dirname "$0")/lib.sh"

check() { # check FILE_CONTENT EXPECTED_MESSAGE
    printf '%s\n' "$1" >dup.ini
    expect_rc 2 "$MT" sweep dup.ini --db "$DB" --no-heap
    expect_out "$2"
    [ ! -e "$DB" ] || fail "a refused sweep created a database"
}
check '[baseline]
model = tiny
steps = 2, 2' "dup.ini:3: 'steps' lists the value 2 twice (items 1 and 2)"
check '[baseline]
model = tiny
lr = 0.001, 1e-3
steps = 2' "dup.ini:3: 'lr' lists the value 0.001 twice"
check '[baseline]
model = tiny
steps = 2

[baseline.again]
steps = 2
model = tiny' "dup.ini:5: [baseline.again] repeats a configuration of [baseline] (line 1)"

single_thread_spec ok.ini <<'INI'
repeats = 2
[baseline]
model = tiny
steps = 2
eval_tokens = 1024
INI
expect_rc 0 "$MT" sweep ok.ini --db "$DB" --no-heap
expect_eq "ok rows per (config_key, repeat)" "$(sql "SELECT max(c) FROM (SELECT count(*) AS c FROM runs WHERE status = 'ok' GROUP BY config_key, repeat)")" "1"
expect_eq "ok runs" "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "2"
echo "PASS"
