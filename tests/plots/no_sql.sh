#!/bin/sh
# tests/plots/no_sql.sh PLOTS_DIR — plots/ holds no SQL and no SQLite call: every read goes
# through results/reader.h, every Pareto front through results/pareto.h (issue 16). Fails
# listing the lines that break it. A test that can fail: plant `sqlite3_step` or
# "SELECT x FROM t" in plots/ and it does.
dir=${1:?usage: no_sql.sh PLOTS_DIR}
files=$(ls "$dir"/*.c "$dir"/*.h "$dir"/CMakeLists.txt) || exit 2
[ -n "$files" ] || exit 2
# SQLite's API and types, and SQL keywords as SQL spells them (upper case, one word after).
hits=$(grep -nE 'sqlite3|SQLite::|\b(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|DROP|ALTER)[[:space:]]+[A-Za-z*(]|\b(FROM|WHERE|JOIN|GROUP BY|ORDER BY)[[:space:]]+[a-z_(]' $files)
if [ -n "$hits" ]; then
  echo "plots/ must not hold SQL or SQLite calls (read through results/reader.h):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "plots/: no SQL in $(echo "$files" | wc -w) files"
