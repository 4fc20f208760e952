#!/usr/bin/env bash
# check_gguf_npm.sh — GGUF files memtrade writes, read back by an independent reader:
# Hugging Face's @huggingface/gguf from the npm registry. For every sample file
# (mt-gguf-dump --make: GPT-2 and Llama with grouped-query heads, F32/F16/BF16/Q8_0/Q4_0,
# and a file with one metadata entry of every value type) the metadata keys, types and
# values, the tensor names, shapes, types and offsets, and the data offset must read the
# same in both (diff of canonical listings).
# Usage: scripts/check_gguf_npm.sh BUILD_DIR [--install]
#   The package lives in $MT_NPM_DIR (default ${XDG_CACHE_HOME:-~/.cache}/memtrade-npm),
#   outside the source tree; --install runs `npm install @huggingface/gguf` there first.
#   Without node or the package it exits 77 (ctest: skipped) saying why.
set -u
build=${1:?usage: check_gguf_npm.sh BUILD_DIR [--install]}
here=$(cd "$(dirname "$0")" && pwd)
export MT_NPM_DIR=${MT_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/memtrade-npm}
command -v node >/dev/null || { echo "skipped: node is not installed (apt-get install nodejs npm)"; exit 77; }
if [ "${2:-}" = "--install" ]; then
    mkdir -p "$MT_NPM_DIR" && (cd "$MT_NPM_DIR" && npm install --no-audit --no-fund @huggingface/gguf) || exit 1
fi
[ -d "$MT_NPM_DIR/node_modules/@huggingface/gguf" ] ||
    { echo "skipped: @huggingface/gguf not in $MT_NPM_DIR (run with --install)"; exit 77; }
tmp=$(mktemp -d /tmp/mt_gguf_npm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$build/bin/mt-gguf-dump" --make "$tmp" || exit 1
echo "@huggingface/gguf $(node -p "require('$MT_NPM_DIR/node_modules/@huggingface/gguf/package.json').version")"
fail=0 n=0
for f in "$tmp"/*.gguf; do
    "$build/bin/mt-gguf-dump" "$f" >"$f.mt" || exit 1
    node "$here/gguf_npm_dump.mjs" "$f" >"$f.npm" || { echo "FAIL: @huggingface/gguf cannot read $f"; fail=1; continue; }
    if diff -u "$f.mt" "$f.npm" >"$f.diff"; then
        echo "same: $(basename "$f"): $(grep -c '^meta' "$f.mt") metadata entries, $(grep -c '^tensor' "$f.mt") tensors"
    else
        echo "FAIL: $(basename "$f") reads differently:"; head -20 "$f.diff"; fail=1
    fi
    n=$((n + 1))
done
[ $fail = 0 ] && [ $n -gt 0 ] && echo ok
exit $fail
