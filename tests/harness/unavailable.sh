# tests/harness/unavailable.sh — plugins this build cannot run stay listed with the reason
# (ABI 1.2 `unavailable`): the distributed workloads as a build without MPI makes them
# (workloads/distributed/CMakeLists.txt: stand-ins, in <build>/plugins-nompi/ when MPI is
# found, else in the plugin folder). list, list --json and describe say why; run and
# sweep refuse them as usage errors (exit 2) before any child starts or any database
# exists, never as an unknown workload.
. "$(dirname "$0")/lib.sh"

if [ "${MT_MPI:-0}" = "1" ]; then
    NOMPI=${MT_BINARY_DIR:?}/plugins-nompi
else
    NOMPI=${MT_BINARY_DIR:?}/plugins
fi
[ -e "$NOMPI/data_parallel.so" ] || fail "no stand-in plugins in $NOMPI"
# The test plugins first, then the stand-ins, then the build's own (baseline): a real
# distributed plugin there is shadowed by its stand-in (earlier folders win).
export MEMTRADE_PLUGIN_PATH=$PLUGDIR:$NOMPI:$MT_BINARY_DIR/plugins
WHY="built without MPI: install openmpi-bin libopenmpi-dev"

expect_rc 0 "$MT" list
for w in data_parallel zero tensor_parallel pipeline_parallel; do
    # the name, its summary, then the reason, then its parameters as declared
    awk -v w="$w" -v why="  unavailable: $WHY" '
        $0 == w { at = NR } at && NR == at + 2 { ok = ($0 == why); exit }
        END { exit !ok }' "$TMP/last.out" || { cat "$TMP/last.out" >&2; fail "list: $w lacks '$WHY'"; }
done
expect_out "    ranks            int    default 2"
expect_eq listed_unavailable "$(grep -c "^  unavailable: " "$TMP/last.out")" "4"

expect_rc 0 "$MT" list --json
J="readfile('$TMP/last.out')"
expect_eq json_unavailable "$(sqlite3 :memory: "SELECT group_concat(json_extract(value, '\$.name'), ' ') FROM (SELECT value FROM json_each($J) WHERE json_extract(value, '\$.unavailable') = '$WHY' ORDER BY json_extract(value, '\$.name'))")" \
    "data_parallel pipeline_parallel tensor_parallel zero"
expect_eq json_available "$(sqlite3 :memory: "SELECT json_type(value, '\$.unavailable') FROM json_each($J) WHERE json_extract(value, '\$.name') = 't_ok'")" "null"
expect_eq json_params "$(sqlite3 :memory: "SELECT json_array_length(json_extract(value, '\$.params')) > 5 FROM json_each($J) WHERE json_extract(value, '\$.name') = 'zero'")" "1"

expect_rc 0 "$MT" describe zero
expect_out "zero — ZeRO stage 1/2"
expect_out "unavailable: $WHY (memtrade run refuses it)"
expect_out "ranks: parameter 'ranks'"

# run: refused with the reason, as a usage error, before the database or any child.
expect_rc 2 "$MT" run data_parallel -p ranks=2 --db "$DB"
expect_out "workload 'data_parallel' is unavailable: $WHY"
grep -q "unknown workload" "$TMP/last.out" && fail "run said unknown workload"
[ ! -e "$DB" ] || fail "a refused run created the database"
[ -z "$(ls "$TMP/out" 2>/dev/null)" ] || fail "a refused run left files: $(ls "$TMP/out")"
# Parameters are still checked against the stand-in's table first.
expect_rc 2 "$MT" run zero -p stage=4 --db "$DB"
expect_out "out of range [1, 3]"

# sweep: a section naming one is refused the same way, the file and line named.
printf '[t_ok]\nsteps = 1\n\n[pipeline_parallel]\nsteps = 2\nranks = 2\n' >u.ini
expect_rc 2 "$MT" sweep u.ini --db "$DB"
expect_out "workload 'pipeline_parallel' is unavailable: $WHY"
[ ! -e "$DB" ] || fail "a refused sweep created the database"

# A child given one refuses it at start (exit 2), the reason in its ERROR event.
expect_rc 2 "$MT" __child --plugin "$NOMPI/tensor_parallel.so" --events "$TMP" \
    --scratch "$TMP" --seed 1 --threads 1 --heap off
expect_out "workload 'tensor_parallel' is unavailable: $WHY"
grep -qF "$WHY" "$TMP/events.0" || fail "the child's events lack the reason"
echo "ok"
