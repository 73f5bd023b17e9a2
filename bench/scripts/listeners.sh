#!/bin/bash
# One port served by 2 threads: one SO_REUSEPORT listener per thread, or one listener shared
# with EPOLLEXCLUSIVE. Both run the bench crate's hand-written mio loop (`bench __listeners`),
# so only the listener differs. For each mode and connection count: req/s, server CPU per
# request, and how many connections and reads each thread got (wrk opens its connections in
# one burst, and a connection stays on the thread that accepted it).
# needs: wrk (apt-get install wrk), cargo.
# usage: bench/scripts/listeners.sh [secs=5] [conns...=100 1000]
set -euo pipefail
. "$(dirname "$0")/common.sh"
SECS=${1:-5}; shift || true
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || CONNS=(100 1000)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
BENCH=$(build_bench)
PORT=${PORT:-8190}

machine
for c in "${CONNS[@]}"; do
  for mode in reuseport exclusive; do
    p=$((PORT + ${#mode}))
    log=$(mktemp)
    "$BENCH" __listeners "$mode" 2 "$p" >"$log" 2>&1 &
    pid=$!
    if ! wait_port "$p" "$pid"; then echo "$mode: could not start"; cat "$log"; continue; fi
    t0=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$c" -d"${SECS}s" "http://127.0.0.1:$p/" 2>&1)
    t1=$(cpu_ticks "$pid")
    sleep 0.3
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); reqs=$(awk '/requests in/{print $1}' <<<"$out")
    spread=$(tail -n1 "$log")
    awk -v m="$mode" -v c="$c" -v r="${rps:-0}" -v q="${reqs:-0}" -v dt=$((t1 - t0)) -v tck="$TCK" -v s="$spread" \
      'BEGIN{printf "%-10s c=%-5d %10.0f req/s  %6.2f us cpu/req  %s\n", m, c, r, dt/tck*1e6/(q>0?q:1), s}'
    rm -f "$log"
  done
done
