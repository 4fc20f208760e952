# tests/harness/badspec.sh — malformed sweep files: an error naming file:line, exit 2,
# and the database untouched (same bytes; not created when absent).
. "$(dirname "$0")/lib.sh"

expect_rc 0 "$MT" run t_ok --db "$DB" --no-heap
before=$(hash "$DB")

check() { # check FILE_CONTENT EXPECTED_MESSAGE
    printf '%s\n' "$1" >bad.ini
    expect_rc 2 "$MT" sweep bad.ini --db "$DB" --no-heap
    expect_out "$2"
    expect_eq "db after '$2'" "$(hash "$DB")" "$before"
    expect_rc 2 "$MT" sweep bad.ini --db "$TMP/new.db" --no-heap
    [ ! -e "$TMP/new.db" ] || fail "a malformed sweep created a database"
}
check '[sweep]
name = x
[t_ok
steps = 1' "bad.ini:3: malformed section header"
check '[sweep]
name = x

[t_okk]
steps = 1' "bad.ini:4: unknown workload 't_okk'; did you mean 't_ok'?"
check '[t_ok]
steps = 1
stpes = 2' "bad.ini:3: unknown parameter 'stpes' for workload 't_ok'; did you mean 'steps'?"
check '[t_ok]
steps = 1, 2, 5000' "bad.ini:2: parameter 'steps' of workload 't_ok': 5000 is out of range [1, 1000]"
check '[t_ok]
dtype = fp8' "bad.ini:2: parameter 'dtype' of workload 't_ok': 'fp8' is not one of fp32|bf16|int8"
check '# nothing but a header
[sweep]
name = empty' "bad.ini:2: empty grid: no workload section"
check '[t_ok]
steps = 4..1' "bad.ini:2: empty range '4..1'"
# A valid sweep into a file that is not a memtrade database: exit 3, file untouched.
printf '[t_ok]\nsteps = 1\n' >good.ini
echo "not a database" >foreign.db
fhash=$(hash foreign.db)
expect_rc 3 "$MT" sweep good.ini --db foreign.db --no-heap
expect_eq foreign "$(hash foreign.db)" "$fhash"
expect_rc 2 "$MT" sweep "$TMP/missing.ini" --db "$DB"
expect_out "missing.ini: cannot open"
expect_eq final "$(hash "$DB")" "$before"
echo "ok"
