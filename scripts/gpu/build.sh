#!/usr/bin/env bash
# scripts/gpu/build.sh — run THERE (the GPU machine: Ubuntu 24.04, gcc, cmake, CUDA; no
# package registry): unpacks the Debian .deb files that scripts/gpu/fetch-debs.sh
# downloaded into a prefix (never into /), points pkg-config and CMake at it, and builds
# memtrade against it. Writes PREFIX/env.sh, which the commands after it source (library
# path, PATH with the build's bin/ and the prefix's sqlite3).
# Usage: scripts/gpu/build.sh [DEBS_DIR [PREFIX [BUILD_DIR]]]
#   defaults: gpu-debs/ of this tree, /tmp/memtrade-deps, /tmp/memtrade-build;
#   MEMTRADE_JOBS: parallel build jobs (default: every core)
# Not for: Debian machines (use scripts/install-deps.sh and the usual build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
debs=${1:-$root/gpu-debs}
prefix=${2:-/tmp/memtrade-deps}
build=${3:-/tmp/memtrade-build}
fail() {
    echo "build.sh: $*" >&2
    exit 1
}
[ "$(uname -m)" = x86_64 ] || fail "the .deb files are amd64; this machine is $(uname -m)"
ls "$debs"/*.deb >/dev/null 2>&1 || fail "no .deb files in $debs (run scripts/gpu/fetch-debs.sh here first)"
case "$prefix" in /|/usr|/usr/*) fail "refusing to unpack into $prefix" ;; esac
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found"

rm -rf "$prefix"
mkdir -p "$prefix"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$prefix"; done
lib=$prefix/usr/lib/x86_64-linux-gnu
# What Debian's maintainer scripts would do: the BLAS/LAPACK alternatives' links.
for n in blas lapack; do
    ln -sfn "$n/lib$n.so.3" "$lib/lib$n.so.3"
    ln -sfn "$n/lib$n.so" "$lib/lib$n.so"
    ln -sfn "$n-netlib.pc" "$lib/pkgconfig/$n.pc"
done
# Absolute links inside the packages point into /: repoint them into the prefix.
find "$prefix" -type l -lname '/*' | while read -r l; do
    ln -sfn "$prefix$(readlink "$l")" "$l"
done
# pkg-config files name /usr: make them name the prefix.
for pc in "$lib"/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc; do
    [ -e "$pc" ] || continue
    sed -i -E "s#(^|[=[:space:]]|-[IL])/usr(/|\$)#\1$prefix/usr\2#g" "$pc"
done

env_sh=$prefix/env.sh
cat >"$env_sh" <<ENV
# Sourced by the GPU scripts: the unpacked libraries and memtrade's build.
export PKG_CONFIG_PATH=$lib/pkgconfig:$prefix/usr/share/pkgconfig
export CMAKE_PREFIX_PATH=$prefix/usr
export LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PATH=$build/bin:$prefix/usr/bin:\$PATH
export MEMTRADE_BUILD=$build
ENV
# shellcheck disable=SC1090
. "$env_sh"
pc=()
command -v pkg-config >/dev/null || pc=(-DPKG_CONFIG_EXECUTABLE="$prefix/usr/bin/pkgconf")
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${pc[@]}" >"$build.configure.log" 2>&1 ||
    { tail -40 "$build.configure.log"; fail "configure failed (log: $build.configure.log)"; }
grep -q "SQLite3_INCLUDE_DIR:PATH=$prefix" "$build/CMakeCache.txt" ||
    echo "build.sh: note: SQLite found outside $prefix (the system has its own)"
cmake --build "$build" -j"${MEMTRADE_JOBS:-$(nproc)}" >"$build.build.log" 2>&1 ||
    { grep -E "error" "$build.build.log" | head -20; fail "build failed (log: $build.build.log)"; }
"$build/bin/memtrade" --help >/dev/null || fail "memtrade does not run"
echo "build.sh: built $build/bin/memtrade against $prefix; source $env_sh"
