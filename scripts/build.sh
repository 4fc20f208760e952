#!/usr/bin/env bash
# Configures and builds memtrade into BUILD_DIR (default ./build). Extra arguments are
# passed to cmake's configure step, e.g. -DMT_SANITIZE=address,undefined.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
