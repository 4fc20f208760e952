# tests/harness/progress.sh — README's promise about progress: on a terminal a sweep keeps
# one progress line (run i/N, workload, parameters, the run's own progress, ETA: "?" until
# a run has finished, then a time from the finished runs), redrawn in place, with one
# line per finished run; without a terminal, plain start/end lines and no redraws.
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null 2>&1 || { echo "SKIP: needs script (util-linux) for a pseudo-terminal"; exit 77; }
single_thread_spec p.ini <<'INI'
[t_ok]
steps = 3, 4
sleep_ms = 500
INI
script -qec "'$MT' sweep p.ini --db '$DB' --no-heap" /dev/null >tty.raw 2>&1 ||
  { cat tty.raw >&2; fail "sweep on a terminal failed"; }
tr '\r' '\n' <tty.raw | sed "s/$(printf '\033')\[K//g" >tty.txt
grep -q '^\[1/2\] t_ok sleep_ms=500  1 running  ETA ?' tty.txt || { cat tty.txt >&2; fail "first progress line"; }
grep -Eq '^\[1/2\] t_ok sleep_ms=500  [0-9]+%  1 running  ETA [?]' tty.txt || fail "the run's own progress (a percentage)"
grep -Eq '^\[2/2\] t_ok steps=4 sleep_ms=500 .* ETA [0-9]+s' tty.txt || fail "an ETA from the finished run"
grep -q '^  ok          run 1 t_ok sleep_ms=500' tty.txt || fail "finished line of run 1"
grep -q "$(printf '\033')\[K" tty.raw || fail "the line is not redrawn in place"
# no terminal: plain lines only
expect_rc 0 "$MT" sweep p.ini --db "$TMP/plain.db" --no-heap
expect_out "start 1/2 run 1 t_ok sleep_ms=500"
expect_out "end ok          run 2 t_ok steps=4 sleep_ms=500"
grep -q "$(printf '\033')" "$TMP/last.out" && fail "escape codes without a terminal"
grep -q 'ETA' "$TMP/last.out" && fail "a progress line without a terminal"
echo ok
