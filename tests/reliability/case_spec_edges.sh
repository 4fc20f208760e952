# case_spec_edges.sh — small defects of the sweep format and -p (issue 14): the range
# limit is inclusive; three dots is a syntax error, not an "empty range"; a UTF-8 BOM is
# skipped at the start and named (not shown raw) elsewhere; a folder is said to be one;
# long string values are never cut (params and config key); -p k=1 -p k=2 is refused.
. "$(dirname "$0")/lib.sh"

dry() { # dry RC MESSAGE TEXT: a sweep file of TEXT (printf format), --dry-run
    printf "$3" >spec.ini
    expect_rc "$1" "$MT" sweep spec.ini --dry-run
    expect_out "$2"
}
dry 0 "100000 runs (of 100000 in the grid)" '[t_ok]\nseed = 1..100000\n'
dry 2 "spec.ini:2: range '0..100000' has more than 100000 items" '[t_ok]\nseed = 0..100000\n'
dry 2 "spec.ini:2: bad range '10...20': a range is a..b with exactly two dots" '[t_ok]\nsteps = 10...20\n'
dry 0 "1 runs (of 1 in the grid)" '\357\273\277[t_ok]\nsteps = 2\n'
dry 2 "spec.ini:3: a UTF-8 byte order mark (U+FEFF, bytes EF BB BF) at column 1" \
    '[t_ok]\nsteps = 2\n\357\273\277note = x\n'
if LC_ALL=C grep -q "$(printf '\357\273\277')" "$TMP/last.out"; then fail "the message shows the raw BOM"; fi

mkdir folder.ini
expect_rc 2 "$MT" sweep folder.ini --dry-run
expect_out "folder.ini: is a directory, not a sweep file"

long=$(head -c 6000 /dev/zero | tr '\0' 'x')
printf '[t_ok]\nsteps = 1\nnote = %s\n' "$long" >long.ini
expect_rc 0 "$MT" sweep long.ini --db "$DB" --no-heap
expect_eq "stored length" "$(sql "SELECT length(value) FROM params WHERE key = 'note'")" "6000"
expect_eq "key holds it" "$(sql "SELECT instr(config_key, 'note=$long&') > 0 FROM runs")" "1"
toolong=$(head -c 70000 /dev/zero | tr '\0' 'y')
expect_rc 2 "$MT" run t_ok -p note="$toolong" --db "$DB" --no-heap
expect_out "value of 70000 bytes is longer than the limit of 65536 bytes"

expect_rc 2 "$MT" run t_ok -p steps=1 -p steps=2 --db "$DB" --no-heap
expect_out "parameter 'steps' of workload 't_ok' given twice ('1', then '2')"
expect_eq "runs" "$(sql "SELECT count(*) FROM runs")" "1"
echo "PASS"
