#!/usr/bin/env bash
# The main job: installs dependencies, builds, runs the default sweep into out/memtrade.db,
# then draws the plots and the HTML report into out/. Re-running resumes the sweep.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
export BUILD_DIR=${BUILD_DIR:-$top/build}
"$top/scripts/build.sh"
cd "$top"
mt="$BUILD_DIR/bin/memtrade"
out=${MEMTRADE_OUT:-out}
"$mt" sweep "${1:-sweeps/default.ini}" --db "$out/memtrade.db" --resume
"$mt" plot --db "$out/memtrade.db" --out "$out"
