#!/bin/bash
# RESP under redis-benchmark: this crate's redis_server example next to redis-server (when
# installed), tokio and may (the bench crate's PING servers) in the same run, and gevent when
# PEERS points at it (see common.sh): PING (inline and multibulk) and SET/GET at pipeline 1 and
# 16 (SET/GET against redis-server only).
# needs: redis-benchmark (apt-get install redis-tools), cargo; redis-server for the floor.
# usage: bench/scripts/ping.sh [requests=300000] [conns=100]
# Target: server CPU us/request <= redis-server's.
set -euo pipefail
. "$(dirname "$0")/common.sh"
N=${1:-300000}; C=${2:-100}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is not installed (apt-get install redis-tools)" >&2; exit 1; }
BIN=$(build_example redis_server)
BENCH=$(build_bench)
PORT=${PORT:-6399}

# One server under redis-benchmark -t TESTS: prints "NAME c=C TEST RATE ... CPU us cpu/req",
# the CPU over every request of the tests.
run_resp() { local name=$1 port=$2 tests=$3 p=$4 n=$5; shift 5
  measure "$port" "redis-benchmark -p $port -c $C -n $n -P $p -t $tests --csv" "$@" || return 0
  local r count
  r=$(awk -F'"' '/^"(PING|SET|GET)/{printf "%s %8.0f  ", $2, $4}' <<<"$OUT")
  count=$(awk -F, '/^"(PING|SET|GET)/{k++} END{print k+0}' <<<"$OUT")
  awk -v n="$name" -v c="$C" -v r="$r" -v dt="$TICKS" -v tck="$TCK" -v q=$((count * n)) \
    'BEGIN{printf "%-16s c=%-5d %s %6.2f us cpu/req\n", n, c, r, dt/tck*1e6/(q>0?q:1)}'; }

# Every server of the comparison for one test line.
run_all() { local tests=$1 p=$2 n=$3
  if command -v redis-server >/dev/null; then
    run_resp redis-server $((PORT + 1)) "$tests" "$p" "$n" redis-server --port $((PORT + 1)) --save '' --appendonly no
  fi
  # The bench crate's servers and gevent's answer PING only.
  if [ "$tests" = ping_inline,ping_mbulk ]; then
    run_resp tokio $((PORT + 2)) "$tests" "$p" "$n" "$BENCH" __serve tokio resp $((PORT + 2))
    run_resp may $((PORT + 3)) "$tests" "$p" "$n" "$BENCH" __serve may resp $((PORT + 3))
    if [ -n "$PEERS" ] && [ -f "$PEERS/py/gevent_ping.py" ]; then
      run_resp gevent $((PORT + 4)) "$tests" "$p" "$n" python3 "$PEERS/py/gevent_ping.py" $((PORT + 4))
    fi
  fi
  run_resp greenlet "$PORT" "$tests" "$p" "$n" "$BIN" "$PORT"
}

machine
command -v redis-server >/dev/null || echo "(redis-server is not installed: no floor row; apt-get install redis-server)"
for p in 1 16; do
  # Pipelined runs are short: give them more requests for a finer CPU figure.
  n=$N; [ "$p" -gt 1 ] && n=$((N * 10))
  echo "PING, pipeline $p, $n requests per test:"
  run_all ping_inline,ping_mbulk "$p" "$n" | ratio_lines greenlet redis-server
done
for p in 1 16; do
  n=$N; [ "$p" -gt 1 ] && n=$((N * 10))
  echo "SET/GET, pipeline $p, $n requests per test:"
  run_all set,get "$p" "$n" | ratio_lines greenlet redis-server
done
