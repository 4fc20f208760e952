# tests/harness/skeleton.sh — the skeleton plugin builds out of tree against the build
# tree's CMake package (find_package(memtrade)) and its pkg-config file, and the harness
# loads both builds.
. "$(dirname "$0")/lib.sh"
SRC=${MT_SOURCE_DIR:?}
BIN=${MT_BINARY_DIR:?}
"${MT_CMAKE:-cmake}" -S "$SRC/workloads/skeleton" -B "$TMP/oot" -Dmemtrade_DIR="$BIN/memtrade-config" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$TMP/cfg.log" 2>&1 || { cat "$TMP/cfg.log"; fail "configure"; }
"${MT_CMAKE:-cmake}" --build "$TMP/oot" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; fail "build"; }
[ -f "$TMP/oot/skeleton.so" ] || fail "no skeleton.so"
expect_rc 0 "$MT" describe skeleton --plugin "$TMP/oot/skeleton.so"
expect_out "$TMP/oot/skeleton.so"
expect_rc 0 "$MT" run skeleton --plugin "$TMP/oot/skeleton.so" -p steps=3 --db "$DB" --no-heap
expect_eq metric "$(sql "SELECT value > 0.45 AND value < 0.55 FROM metrics WHERE name = 'skeleton_mean'")" "1"

# pkg-config, with the build's .pc file pointing at the source headers.
sed "s|^includedir=.*|includedir=$SRC/workloads/include|" "$BIN/harness/install/memtrade-workload.pc" >"$TMP/memtrade-workload.pc"
cflags=$(PKG_CONFIG_PATH=$TMP pkg-config --cflags memtrade-workload) || fail "pkg-config"
cc -shared -fPIC -fvisibility=hidden $cflags "$SRC/workloads/skeleton/skeleton.c" -o "$TMP/skel2.so" || fail "cc with pkg-config flags"
expect_rc 0 "$MT" describe skeleton --plugin "$TMP/skel2.so"
echo "ok"
