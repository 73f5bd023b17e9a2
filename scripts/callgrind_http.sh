#!/usr/bin/env bash
# Instructions per HTTP request of the hello servers, under valgrind's callgrind: repeatable on
# a noisy machine where wrk's CPU figures are not. Each server runs under callgrind while the
# bench harness's deterministic keep-alive client (`bench __http_client <port> <conns> <n>`)
# sends n requests over CONNS connections (a request on every connection, then every answer,
# round after round), then is stopped; the same again with 2n requests, and
# (total at 2n - total at n) / n is the cost of one request with start-up, the accepts and
# tear-down dropped out.
#
# Servers (default: all three):
#   mio       the bench's hand-written mio loop (`bench __serve mio http`), the floor
#   proto     greenlet::net + StreamServer with the very same parser and response as the mio
#             loop (`bench __serve 'greenlet (harness parser)' http`)
#   hello     the crate's http_hello example (full HTTP/1.1 parser, idle and request timeouts)
#
# Usage: scripts/callgrind_http.sh [server...]; N (default 20000) and CONNS (default 100) from
# the environment. KEEP=1 keeps the callgrind files (target/callgrind-http/<server>-<n>.out)
# for callgrind_annotate. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p bench
cargo build --release -q -p greenlet --example http_hello
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/bench
HELLO=$TARGET/release/examples/http_hello
N=${N:-20000}
CONNS=${CONNS:-100}
OUT=$TARGET/callgrind-http
mkdir -p "$OUT"
PORT=${PORT:-$((20000 + $$ % 20000))}

# Sets CMD to the server command of $1 on port $2.
server() {
  case $1 in
    mio) CMD=("$BENCH" __serve mio http "$2") ;;
    proto) CMD=("$BENCH" __serve 'greenlet (harness parser)' http "$2") ;;
    hello) CMD=("$HELLO" "$2") ;;
    *) echo "unknown server $1 (mio proto hello)" >&2; exit 2 ;;
  esac
}

# Total instructions of server $1 answering $2 requests on port $3.
instructions() {
  local name=$1 n=$2 port=$3 log="$OUT/$1-$2.log" file=/dev/null
  [ -n "${KEEP:-}" ] && file="$OUT/$name-$n.out"
  server "$name" "$port"
  valgrind --tool=callgrind --callgrind-out-file="$file" "${CMD[@]}" >/dev/null 2>"$log" &
  local pid=$!
  if ! "$BENCH" __http_client "$port" "$CONNS" "$n" >/dev/null; then
    kill "$pid" 2>/dev/null || true
    echo "$name: the client failed; server log: $log" >&2
    exit 1
  fi
  # Callgrind writes its totals when the server dies of the signal.
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  local total
  total=$(awk '/Collected :/ {print $NF}' "$log" | tail -1)
  [ -n "$total" ] || { echo "$name: no total from callgrind; see $log" >&2; exit 1; }
  echo "$total"
}

servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(mio proto hello)
echo "instructions per request, $N and $((2 * N)) keep-alive requests over $CONNS connections"
for s in "${servers[@]}"; do
  server "$s" 0
  one=$(instructions "$s" "$N" "$PORT"); two=$(instructions "$s" $((2 * N)) $((PORT + 1)))
  PORT=$((PORT + 2))
  awk -v s="$s" -v a="$one" -v b="$two" -v n="$N" \
    'BEGIN { printf "%-6s %8.1f instructions per request\n", s, (b - a) / n }'
done
