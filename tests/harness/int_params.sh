# tests/harness/int_params.sh — integer parameters with a list of allowed values (ABI
# 1.3): the quantize plugin's `bits` and `group_size` are ints, so a bad value is refused
# by the harness before any child starts (exit 2, a message naming the parameter, the
# value and what is allowed, no database written), from `run -p` and from a sweep file;
# `describe` and `list --json` show them as ints with their choices; a good value runs.
. "$(dirname "$0")/lib.sh"

if [ ! -e "${MT_BINARY_DIR:?}/plugins/quantize.so" ]; then
    echo "skipped: no quantize plugin"
    exit 77
fi
export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
refused() { # refused MESSAGE ARGS...: exit 2 with MESSAGE, no database, no child
    msg=$1
    shift
    expect_rc 2 "$MT" run quantize "$@" --db "$TMP/none.db" --no-heap
    expect_out "$msg"
    [ ! -e "$TMP/none.db" ] || fail "a refused run created a database"
}
refused "parameter 'bits' of workload 'quantize': 5 is not one of 16|8|4|3|2" -p bits=5
refused "parameter 'bits' of workload 'quantize': 'four' is not an integer" -p bits=four
refused "parameter 'bits' of workload 'quantize': 1 is out of range [2, 16]" -p bits=1
refused "parameter 'group_size' of workload 'quantize': 48 is not one of 32|64|128" \
    -p group_size=48
printf '[quantize]\nmodel = tiny\nbits = 8, 6\n' >bad.ini
expect_rc 2 "$MT" sweep bad.ini --db "$TMP/none.db" --no-heap
expect_out "bad.ini:3: parameter 'bits' of workload 'quantize': 6 is not one of 16|8|4|3|2"
[ ! -e "$TMP/none.db" ] || fail "a refused sweep created a database"

expect_rc 0 "$MT" describe quantize
grep -Eq "^ +bits +int +default 4 +16\|8\|4\|3\|2 " "$TMP/last.out" ||
    fail "describe: $(grep bits "$TMP/last.out")"
expect_rc 0 "$MT" list --json
cp "$TMP/last.out" list.json
expect_eq "list --json bits" "$(sqlite3 :memory: "SELECT json_extract(p.value, '\$.type') || ' ' ||
    json_extract(p.value, '\$.choices') FROM json_each(readfile('list.json')) w, json_each(json_extract(w.value,
    '\$.params')) p WHERE json_extract(w.value, '\$.name') = 'quantize' AND
    json_extract(p.value, '\$.name') = 'bits'")" "int 16|8|4|3|2"

# A good value is the integer the plugin reads (stored as its canonical text).
expect_rc 0 "$MT" run quantize -p model=tiny -p steps=5 -p eval_tokens=1024 -p bits=08 \
    -p decode_tokens=8 --db "$DB" --no-heap --threads 1
expect_eq "bits stored" "$(sql "SELECT value FROM params WHERE run_id = 1 AND key = 'bits'")" "8"
expect_eq "8-bit packing" "$(sql "SELECT value >= 8 AND value < 10 FROM metrics WHERE run_id = 1 AND
    name = 'bits_per_weight'")" "1"
echo ok
