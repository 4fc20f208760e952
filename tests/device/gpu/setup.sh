# tests/device/gpu/setup.sh — sourced by the gpu-labelled run tests (baseline_cuda.sh,
# train_cuda.sh) with MT (the memtrade binary) and SRC (the source tree) set: exits 77
# (skipped) with the reason where there is no GPU or the build has no CUDA backend; else
# makes $TMP (removed on exit) and $TMP/corpus.txt from SRC's READMEs (a GPU machine has
# no Debian fortunes), and defines q (a query of $DB) and val NAME CATEGORY (the run's
# metric as an integer).
why=""
[ -e "$(dirname "$MT")/../libmemtrade-cuda.so" ] || why="built without the CUDA backend (MT_CUDA)"
[ "$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')" -gt 0 ] || why="no NVIDIA GPU (nvidia-smi lists none)"
if [ -n "$why" ]; then echo "skipped: $why"; exit 77; fi
TMP=$(mktemp -d /tmp/mt_gpu_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cat "$SRC"/README.md "$SRC"/*/README.md "$SRC"/*/*/README.md >"$TMP/corpus.txt"
q() { sqlite3 -batch -noheader "$DB" "$1"; }
val() { q "SELECT CAST(value AS INTEGER) FROM metrics WHERE rank = -1 AND name = '$1' AND category = '$2'"; }
