# case_heap_missing_program.sh — `memtrade profile` of a program that does not exist, is
# not executable, or is a folder: an error naming it (exit 2), and no run recorded (issue
# 14: a failed run "exited with status 127").
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"

expect_rc 2 "$MT" profile --db "$DB" -- /nonexistent/program
expect_out "cannot execute /nonexistent/program: No such file or directory"
expect_rc 2 "$MT" profile --db "$DB" -- no-such-program-anywhere
expect_out "cannot execute no-such-program-anywhere: not found in PATH"
echo 'int x;' >"$TMP/plain.txt"
expect_rc 2 "$MT" profile --db "$DB" -- "$TMP/plain.txt"
expect_out "permission denied"
expect_rc 2 "$MT" profile --db "$DB" -- "$TMP"
expect_out "it is a directory"
expect_eq runs "$(sql "SELECT count(*) FROM runs" 2>/dev/null || echo 0)" "0"
echo "ok"
