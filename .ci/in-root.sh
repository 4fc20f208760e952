#!/usr/bin/env bash
# CI's job inside the bare root (see .ci/run): README's test command, the main job on
# sweeps/quick.ini, then the ASan+UBSan suite, each timed. The main job must write
# out/report.html and print no warning (gnuplot's included).
set -euo pipefail
cd "$(dirname "$0")/.."
part() {
  local name=$1 t=$(date +%s)
  shift
  echo "ci: == $name =="
  "$@"
  echo "ci: $name took $(( $(date +%s) - t )) s"
}
main_job() {
  ./scripts/main.sh sweeps/quick.ini 2>&1 | tee /tmp/main.log
  test -s out/report.html || { echo "ci: the main job wrote no out/report.html" >&2; return 1; }
  if grep -i 'warning' /tmp/main.log; then
    echo "ci: the main job printed the warnings above" >&2
    return 1
  fi
}
part "test command (./scripts/test.sh)" ./scripts/test.sh
part "main job (./scripts/main.sh sweeps/quick.ini)" main_job
part "sanitizer suite (./scripts/test.sh --sanitize)" ./scripts/test.sh --sanitize
