#!/usr/bin/env bash
# scripts/gpu/fetch-debs.sh — run HERE (Debian 12, with its archive reachable): downloads
# the .deb files of the libraries memtrade builds against (scripts/gpu/packages-gpu.txt)
# into gpu-debs/ (git-ignored; or the folder given), for scripts/gpu/build.sh to unpack
# on the GPU machine, which has no package registry. Idempotent: apt-get download skips
# nothing, so the folder is emptied first.
# Usage: scripts/gpu/fetch-debs.sh [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/gpu-debs}
mapfile -t pkgs < <(grep -v '^\s*#' "$here/packages-gpu.txt" | tr -s ' \t' '\n' | sed '/^$/d')
mkdir -p "$out"
rm -f "$out"/*.deb
cd "$out"
apt-get download "${pkgs[@]}"
n=$(ls ./*.deb | wc -l)
[ "$n" -eq "${#pkgs[@]}" ] || { echo "fetch-debs: $n .deb files for ${#pkgs[@]} packages" >&2; exit 1; }
echo "fetch-debs: ${#pkgs[@]} packages, $(du -sh . | cut -f1) in $out"
