#!/usr/bin/env bash
# The test command: installs dependencies, builds with -Werror and runs every test.
#   scripts/test.sh               normal build (./build)
#   scripts/test.sh --sanitize    AddressSanitizer + UndefinedBehaviorSanitizer build
#                                 (./build-asan; the preloaded heap profiler's own tests run
#                                 under UBSan only, since ASan replaces malloc itself)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
if [ "${1:-}" = "--sanitize" ]; then
  export BUILD_DIR=${BUILD_DIR:-$top/build-asan}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  "$top/scripts/build.sh" -DMT_WERROR=ON -DMT_SANITIZE=address,undefined
  # The preloaded profiler cannot run under ASan: its tests get their own UBSan build.
  BUILD_DIR=$top/build-ubsan "$top/scripts/build.sh" -DMT_WERROR=ON -DMT_SANITIZE=undefined
  (cd "$top/build-ubsan" && ctest --output-on-failure -j2 --timeout 2400 -R '^(heap|device)\.')
  timeout=2400
else
  export BUILD_DIR=${BUILD_DIR:-$top/build}
  "$top/scripts/build.sh" -DMT_WERROR=ON
  timeout=900
fi
# --timeout: the limit of a test that sets none, scaled as tests/CMakeLists.txt scales
# the others (a safety net against hangs; a loaded machine or a sanitizer is slower)
cd "$BUILD_DIR"
ctest --output-on-failure -j2 --timeout "$timeout"
