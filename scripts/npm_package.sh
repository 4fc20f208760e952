# npm_package.sh — sourced by the checks that read memtrade's files with an npm package
# (check_gguf_npm.sh, check_llama_cpp_npm.sh, check_tokenizers_npm.sh): where the package
# lives, its installation on request, and the skip (exit 77, ctest: skipped) when node or
# the package is missing.
# Not a script to run on its own.

# The package folder: $MT_NPM_DIR (default ${XDG_CACHE_HOME:-~/.cache}/memtrade-npm),
# outside the source tree.
export MT_NPM_DIR=${MT_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/memtrade-npm}
# The scripts' folder, for the .mjs files beside them.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# mt_npm_require PACKAGE [--install]: returns when node and PACKAGE are there (after
# `npm install PACKAGE` in $MT_NPM_DIR when the second word is --install); otherwise
# exits the calling script, 77 saying why it skips, or 1 when the installation failed.
mt_npm_require() {
    command -v node >/dev/null || { echo "skipped: node is not installed (apt-get install nodejs npm)"; exit 77; }
    if [ "${2:-}" = "--install" ]; then
        mkdir -p "$MT_NPM_DIR" && (cd "$MT_NPM_DIR" && npm install --no-audit --no-fund "$1") || exit 1
    fi
    [ -d "$MT_NPM_DIR/node_modules/$1" ] ||
        { echo "skipped: $1 not in $MT_NPM_DIR (run with --install)"; exit 77; }
}

# mt_npm_version PACKAGE: prints "PACKAGE VERSION" (the installed package.json's).
mt_npm_version() {
    echo "$1 $(node -p "require('$MT_NPM_DIR/node_modules/$1/package.json').version")"
}

# mt_npm_setup PACKAGE NAME [--install]: mt_npm_require, then a fresh folder
# /tmp/NAME.XXXXXX in $tmp (removed when the calling script exits), then the package's
# version printed.
mt_npm_setup() {
    mt_npm_require "$1" "${3:-}"
    tmp=$(mktemp -d "/tmp/$2.XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    mt_npm_version "$1"
}
