# tests/reliability/lib.sh — shared by the reliability cases (sourced): everything of
# tests/harness/lib.sh (MT, TMP, DB, fail, expect_rc, expect_out, sql, wait_runs, ...),
# with the real plugins of the build found as a user's memtrade finds them, and the test
# plugins (t_ok, t_fail, ...) on MEMTRADE_PLUGIN_PATH.
. "$MT_SOURCE_DIR/tests/harness/lib.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: needs sqlite3"; exit 77; }
