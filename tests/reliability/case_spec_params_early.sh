# case_spec_params_early.sh — parameters that used to fail only inside the child (issue
# 14): every=abc, loss_scale=-5, a micro_batch that does not divide batch, a missing
# corpus path. README promises exit 2 before any child starts and before the database is
# touched; the plugin's check() hook (ABI 1.1) says why.
. "$(dirname "$0")/lib.sh"

refused() { # refused EXPECTED_MESSAGE -p ARGS...
    msg=$1 # not `want`: expect_rc sets that
    shift
    expect_rc 2 "$MT" run grad_accum -p model=tiny -p steps=2 "$@" --db "$DB" --no-heap
    expect_out "$msg"
    [ ! -e "$DB" ] || fail "a refused run created a database"
}
refused "workload 'grad_accum': every 'abc' is not sqrt or an integer in 1..2" -p every=abc
refused "loss_scale '-5' is not auto, dynamic, none or a positive number" -p loss_scale=-5
refused "micro_batch 3 does not divide batch 8" -p batch=8 -p micro_batch=3 -p accum_steps=0
refused "parameter 'corpus': corpus $TMP/nope.txt: No such file or directory" -p corpus="$TMP/nope.txt"

# The same in a sweep: file:line of the section, nothing run.
single_thread_spec s.ini <<'INI'
[grad_accum]
model = tiny
steps = 2
every = 1, abc
INI
expect_rc 2 "$MT" sweep s.ini --db "$DB" --no-heap
expect_out "s.ini:3: [grad_accum]: workload 'grad_accum': every 'abc' is not sqrt or an integer in 1..2"
[ ! -e "$DB" ] || fail "a refused sweep created a database"

# A good value of each still runs.
expect_rc 0 "$MT" run grad_accum -p model=tiny -p steps=2 -p every=sqrt -p loss_scale=128 -p batch=8 -p micro_batch=4 -p accum_steps=2 -p eval_tokens=1024 --db "$DB" --no-heap --threads 1
echo "PASS"
