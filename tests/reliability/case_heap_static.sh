# case_heap_static.sh — a statically linked program under `memtrade profile`: the preload
# cannot enter it, so its heap metrics are stored unavailable with that reason, the run
# says why, and the terminal warns (issue 14: the metrics were simply absent).
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
. "$MT_SOURCE_DIR/tests/reliability/heap_lib.sh"

heap_prog stat -O0 -static <<'C' 2>/dev/null || { echo "SKIP: no static libc"; exit 77; }
#include <stdlib.h>
int main(void) { return malloc(100) == NULL; }
C
expect_rc 0 "$MT" profile --db "$DB" -- "$TMP/stat"
expect_out "statically linked"
expect_eq metrics "$(sql "SELECT group_concat(name, ',') FROM (SELECT name FROM metrics WHERE run_id = 1 AND value IS NULL AND unavailable LIKE 'statically linked%' ORDER BY name)")" \
    "heap_allocs,leaked_bytes,peak_heap_bytes"
expect_eq run "$(sql "SELECT status, error LIKE '%statically linked%' FROM runs WHERE id = 1")" "ok|1"
echo "ok"
