#!/bin/bash
# RESP under redis-benchmark: this crate's redis_server example next to redis-server and
# gevent in the same run: PING (inline and multibulk) at pipeline 1 and 16 through the peers'
# ping_peers.sh, then SET/GET against redis-server and redis_server measured the same way.
# usage: bench/scripts/ping.sh [requests=300000] [conns=100]
# Target: server CPU us/request <= redis-server's.
set -euo pipefail
. "$(dirname "$0")/common.sh"
N=${1:-300000}; C=${2:-100}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is not installed (bash $PEERS/setup.sh)" >&2; exit 1; }
BIN=$(build_example redis_server)
PORT=${PORT:-6399}
TCK=$(getconf CLK_TCK)
machine

for p in 1 16; do
  # Pipelined runs are short: give them more requests for a finer CPU figure.
  n=$N; [ "$p" -gt 1 ] && n=$((N * 10))
  echo "PING, pipeline $p, $n requests per test:"
  bash "$PEERS/ping_peers.sh" "$C" "$n" "$p" greenlet "$PORT" "$BIN" "$PORT" | ratio_lines greenlet redis-server
done

# SET and GET, as ping_peers.sh measures PING: the server's user+system CPU from /proc.
run_setget() { local name=$1 port=$2 p=$3 n=$4; shift 4
  "$@" >/dev/null 2>&1 & local pid=$!; sleep 0.7
  local t0 t1 r
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  r=$(redis-benchmark -p "$port" -c "$C" -n "$n" -P "$p" -t set,get --csv 2>/dev/null | awk -F'"' '/SET|GET/{printf "%s %8.0f  ", $2, $4}')
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null || true
  awk -v n="$name" -v r="$r" -v dt=$((t1-t0)) -v tck="$TCK" -v q=$((2*n)) -v c="$C" \
    'BEGIN{printf "%-16s c=%-5d %s %6.2f us cpu/req\n", n, c, r, dt/tck*1e6/q}'; }
for p in 1 16; do
  n=$N; [ "$p" -gt 1 ] && n=$((N * 10))
  echo "SET/GET, pipeline $p, $n requests per test:"
  { run_setget redis-server 6390 "$p" "$n" redis-server --port 6390 --save '' --appendonly no
    run_setget greenlet "$PORT" "$p" "$n" "$BIN" "$PORT"; } | ratio_lines greenlet redis-server
done
