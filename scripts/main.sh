#!/usr/bin/env bash
# The main job: installs dependencies, builds, runs the default sweep into out/memtrade.db,
# then draws the plots and the HTML report into out/. Re-running resumes the sweep.
#   scripts/main.sh [SWEEP.ini]     (default sweeps/default.ini; MEMTRADE_OUT=DIR for out/)
# MEMTRADE_MEASURE_RUNTIME=1 first probes the runtime terms of the sweep's classes this build
# lacks (sweep --measure-runtime), so every run stores its runtime status: off by default,
# since default.ini's 40 classes would take the main job past its 15 minutes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
export BUILD_DIR=${BUILD_DIR:-$top/build}
"$top/scripts/build.sh"
cd "$top"
mt="$BUILD_DIR/bin/memtrade"
out=${MEMTRADE_OUT:-out}
# Exit status 1 means some runs ended failed/crashed/timeout/oom: they are recorded, and
# the plots and report (which list them) are still drawn. Anything else stops here.
status=0
measure=()
[ "${MEMTRADE_MEASURE_RUNTIME:-0}" = 1 ] && measure=(--measure-runtime)
"$mt" sweep "${1:-sweeps/default.ini}" --db "$out/memtrade.db" --out "$out" --resume \
  "${measure[@]}" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
  echo "main: the sweep stopped (exit $status); see the messages above" >&2
  exit "$status"
fi
"$mt" plot --db "$out/memtrade.db" --out "$out"
echo "main: database $out/memtrade.db, plots $out/plots/, report $out/report.html"
exit "$status"
