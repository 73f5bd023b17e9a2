#!/usr/bin/env bash
# Server CPU per HTTP request of two server binaries, in interleaved pairs, with the noise that
# wrk adds taken out: the server is pinned to one core and the bench harness's deterministic
# keep-alive client (`bench __http_client <port> <conns> <n>`: a request on every connection,
# then every answer, round after round) to the other, and the server's CPU is read from the
# scheduler's run time of all its threads (/proc/<pid>/task/*/schedstat, in nanoseconds) before
# and after n requests, after a warm-up of 10,000. Prints each pair, then the medians and the
# median of the pairs' ratios (B over A).
#
# Usage: scripts/http_cpu_pairs.sh A B [rounds] [n] [conns]
#   A, B      server binaries that take the port as their first argument (http_hello,
#             http_hello_std, ...: two builds of one, or two servers to compare)
#   rounds    default 10; n default 100000 requests; conns default 100
# Needs a 2-core machine at least (cores 0 and 1) and the bench binary
# (`cargo build --release -p bench`).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,/^set/p' "$0" | sed '$d' >&2; exit 2; }
cd "$(dirname "$0")/.."
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-10}
N=${4:-100000}
CONNS=${5:-100}
BENCH=${CARGO_TARGET_DIR:-target}/release/bench
[ -x "$BENCH" ] || { echo "missing $BENCH: cargo build --release -p bench" >&2; exit 1; }
# Below the ephemeral range (32768 up), where earlier clients leave ports in TIME_WAIT.
PORT=$((12000 + $$ % 15000))
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# Nanoseconds the process $1 has run, all threads.
run_ns() {
  local total=0 t
  for t in /proc/"$1"/task/*/schedstat; do
    total=$((total + $(cut -d' ' -f1 "$t")))
  done
  echo "$total"
}

# µs of server CPU per request of server $1.
measure() {
  PORT=$((PORT + 1))
  taskset -c 1 "$1" "$PORT" >/dev/null 2>&1 &
  local pid=$! i before after
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
  done
  taskset -c 0 "$BENCH" __http_client "$PORT" "$CONNS" 10000 >/dev/null
  before=$(run_ns "$pid")
  taskset -c 0 "$BENCH" __http_client "$PORT" "$CONNS" "$N" >/dev/null
  after=$(run_ns "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v a="$before" -v b="$after" -v n="$N" 'BEGIN { printf "%.3f", (b - a) / 1e3 / n }'
}

echo "server CPU µs per request, $N requests over $CONNS connections; A=$A B=$B"
for _ in $(seq "$ROUNDS"); do
  a=$(measure "$A")
  b=$(measure "$B")
  echo "$a $b" | tee -a "$OUT"
done
sort -n -k1,1 "$OUT" | awk '{ v[NR] = $1 } END { m = NR; printf "median A %.3f\n", (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }'
sort -n -k2,2 "$OUT" | awk '{ v[NR] = $2 } END { m = NR; printf "median B %.3f\n", (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }'
awk '{ print $2 / $1 }' "$OUT" | sort -n | awk '{ v[NR] = $1 } END { m = NR; printf "median of B/A %.3f\n", (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }'
