#!/bin/bash
# HTTP hello keep-alive under wrk -t1: this crate's http_hello example next to a hand-written
# mio loop, tokio and may (the bench crate's servers) in the same run, at each connection count,
# and greenlet-harness-parser: greenlet::net with the mio loop's own parser (like for like);
# Go and gevent too when PEERS points at them (see common.sh).
# needs: wrk (apt-get install wrk), cargo.
# Then the same with two server threads: http_hello --threads 2 (one SO_REUSEPORT listener per
# hub), tokio multi-thread with 2 workers, may with 2 workers, and Go at GOMAXPROCS=2 (bench/go's
# hello server, when Go is installed). On a 2-core machine wrk shares
# the cores with the 2 server threads: compare CPU per request; req/s is the client's limit.
# usage: bench/scripts/http.sh [secs=5] [conns...=100 2000]
# Targets: server CPU us/request <= 1.05x mio-handwritten, req/s >= 0.95x it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
SECS=${1:-5}; shift || true
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || CONNS=(100 2000)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
BIN=$(build_example http_hello)
BENCH=$(build_bench)
GO_HTTP=$(build_go httphello)
PORT=${PORT:-8090}

# One server under wrk: prints "NAME c=C REQ/S req/s CPU us cpu/req".
run_http() { local name=$1 port=$2 c=$3; shift 3
  measure "$port" "wrk -t1 -c$c -d${SECS}s http://127.0.0.1:$port/" "$@" || return 0
  local rps reqs
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$OUT"); reqs=$(awk '/requests in/{print $1}' <<<"$OUT")
  awk -v n="$name" -v c="$c" -v r="${rps:-0}" -v q="${reqs:-0}" -v dt="$TICKS" -v tck="$TCK" \
    'BEGIN{printf "%-22s c=%-5d %10.0f req/s  %6.2f us cpu/req\n", n, c, r, dt/tck*1e6/(q>0?q:1)}'; }

machine
for c in "${CONNS[@]}"; do
  {
    run_http mio-handwritten $((PORT + 1)) "$c" "$BENCH" __serve mio http $((PORT + 1))
    run_http tokio-current-thread $((PORT + 2)) "$c" "$BENCH" __serve tokio http $((PORT + 2))
    run_http may-1-worker $((PORT + 3)) "$c" "$BENCH" __serve may http $((PORT + 3))
    if [ -n "$PEERS" ] && [ -x "$PEERS/go/bin/httphello" ]; then
      run_http go-GOMAXPROCS1 $((PORT + 4)) "$c" env GOMAXPROCS=1 "$PEERS/go/bin/httphello" $((PORT + 4))
    fi
    if [ -n "$PEERS" ] && [ -f "$PEERS/py/gevent_http.py" ]; then
      run_http gevent $((PORT + 5)) "$c" python3 "$PEERS/py/gevent_http.py" $((PORT + 5))
    fi
    run_http greenlet-harness-parser $((PORT + 6)) "$c" "$BENCH" __serve 'greenlet (harness parser)' http $((PORT + 6))
    run_http greenlet "$PORT" "$c" "$BIN" "$PORT"
  } | ratio_lines greenlet mio-handwritten | ratio_lines greenlet-harness-parser mio-handwritten
done

echo "two server threads:"
for c in "${CONNS[@]}"; do
  {
    run_http tokio-multi-thread-2 $((PORT + 12)) "$c" "$BENCH" __serve tokio http2 $((PORT + 12))
    run_http may-2-workers $((PORT + 13)) "$c" "$BENCH" __serve may http2 $((PORT + 13))
    if [ -n "$GO_HTTP" ]; then
      run_http go-GOMAXPROCS2 $((PORT + 14)) "$c" env GOMAXPROCS=2 "$GO_HTTP" $((PORT + 14))
    fi
    run_http greenlet-threads-2 $((PORT + 10)) "$c" "$BIN" $((PORT + 10)) --threads 2
  } | ratio_lines greenlet-threads-2 tokio-multi-thread-2
done
