#!/bin/sh
# bench_plan.sh — `memtrade plan` is instant for any shape up to 70B (DESIGN.md: under 50 ms).
#
# What it is for: the wall time of whole `memtrade plan` processes (start, plugin scan,
# parameter checks, corpus size, the plugin's plan() hook, output) on the tiny preset and
# on a Llama-2-70B shape, against `memtrade describe baseline` (the same start and plugin
# scan, no plan) measured interleaved in the same run: medians of N runs each, the 70B
# plan's median against 50 ms, and its ratio to describe's (what planning adds).
# What it is not for: a test (it prints PASS or FAIL and exits 0; exactness is ctest's
# plan.*). On a shared machine the medians move with load.
# Usage: scripts/bench_plan.sh [BUILD_DIR] [N]
set -eu
build=${1:-build}
n=${2:-21}
mt=$build/bin/memtrade
[ -x "$mt" ] || { echo "bench_plan: build first: cmake --build $build" >&2; exit 2; }
shape=model=llama-1b,L=80,C=8192,H=64,KV=8,F=28672,T=4096,V=32000
ms() { # milliseconds of one run of the command
    s=$(date +%s%N)
    "$@" >/dev/null
    e=$(date +%s%N)
    echo $(((e - s) / 1000))
}
: >/tmp/bench_plan.$$
i=0
while [ $i -lt "$n" ]; do
    echo "describe $(ms "$mt" describe baseline)" >>/tmp/bench_plan.$$
    echo "tiny $(ms "$mt" plan baseline -p model=tiny --csv)" >>/tmp/bench_plan.$$
    echo "70b $(ms "$mt" plan mixed_precision -p $shape -p seq=4096 -p batch=1 -p precision=bf16 --csv)" >>/tmp/bench_plan.$$
    i=$((i + 1))
done
for k in describe tiny 70b; do
    grep "^$k " /tmp/bench_plan.$$ | cut -d' ' -f2 | sort -n | awk -v k="$k" '{ v[NR] = $1 }
        END { printf "%s %.1f\n", k, v[int((NR + 1) / 2)] / 1000 }'
done >/tmp/bench_plan.$$.med
rm -f /tmp/bench_plan.$$
awk '{ m[$1] = $2; printf "%-9s median %7.1f ms over '"$n"' runs\n", $1, $2 }
     END { printf "70B plan: %.1f ms (%.2fx describe): %s\n", m["70b"], m["70b"] / m["describe"],
                  m["70b"] < 50 ? "PASS (< 50 ms)" : "FAIL (>= 50 ms)" }' /tmp/bench_plan.$$.med
rm -f /tmp/bench_plan.$$.med
