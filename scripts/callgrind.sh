#!/usr/bin/env bash
# Instruction counts per operation of the hot paths, under valgrind's callgrind: repeatable on a
# noisy machine where timings are not. Each case runs the bench harness's own child
# (`bench __micro <case> <runtime> <n>`) at n and at 2n and divides the difference of the two
# totals by the operations that difference stands for (n round trips are 2n switches or
# messages; n spawns are n), so that start-up and tear-down drop out. The child runs the
# workload at n/10 first, untimed, as a warm-up, so the difference covers n + (2n/10 - n/10)
# rounds, not n (until 2026-12-07 it was divided by n: every count was 10% high, the peers'
# alike). These are the counts the README's
# Performance section quotes (switch, yield, channel, spawn against their peers).
# The alive case runs `bench __alive <runtime> <n>` instead (n greenlets created and parked; no
# warm-up): instructions per greenlet, against the floor (a fresh page and a guard per slot).
# Usage: scripts/callgrind.sh [case...] (default: switch yield channel spawn; also yield-nested, alive).
# Needs valgrind.
# KEEP=1 keeps the callgrind files (target/callgrind/<case>-<runtime>-<n>.out), for a breakdown
# per function: `callgrind_annotate --inclusive=no` on the 2n file, minus the n file.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p bench
BENCH=target/release/bench

# runtime:n for each case (n small enough for valgrind, large enough to dwarf the noise).
declare -A RUNS=(
  [switch]="greenlet:100000 corosensei:100000"
  [yield]="greenlet:100000 may:100000 floor:100000"
  [yield-nested]="greenlet:100000 may:100000 floor:100000"
  [channel]="greenlet:50000 may:50000"
  [spawn]="greenlet:10000 tokio:10000"
  [alive]="greenlet:20000 floor:20000"
)

OUT=target/callgrind
[ -n "${KEEP:-}" ] && mkdir -p "$OUT"

# Total instructions of one child run.
instructions() {
  local file=/dev/null
  [ -n "${KEEP:-}" ] && file="$OUT/$1-$2-$3.out"
  local child=(__micro "$1"); [ "$1" = alive ] && child=(__alive)
  valgrind --tool=callgrind --callgrind-out-file="$file" "$BENCH" "${child[@]}" "$2" "$3" 2>&1 >/dev/null |
    awk '/Collected :/ {print $NF}' | tail -1
}

cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(switch yield channel spawn)
for c in "${cases[@]}"; do
  [ -n "${RUNS[$c]:-}" ] || { echo "unknown case $c (switch yield yield-nested channel spawn alive)" >&2; exit 2; }
  per_n=2; [ "$c" = spawn ] || [ "$c" = alive ] && per_n=1
  for run in ${RUNS[$c]}; do
    rt=${run%%:*}; n=${run##*:}
    one=$(instructions "$c" "$rt" "$n"); two=$(instructions "$c" "$rt" $((2 * n)))
    # The warm-up (`f(n / 10)` in bench/src/peers/mod.rs) runs at both sizes.
    rounds=$((n + 2 * n / 10 - n / 10)); [ "$c" = alive ] && rounds=$n
    awk -v c="$c" -v rt="$rt" -v a="$one" -v b="$two" -v ops=$((per_n * rounds)) \
      'BEGIN { printf "%-8s %-11s %8.1f instructions per op\n", c, rt, (b - a) / ops }'
  done
done
