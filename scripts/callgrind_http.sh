#!/usr/bin/env bash
# Instructions per HTTP request of the hello servers, under valgrind's callgrind: repeatable on
# a noisy machine where wrk's CPU figures are not. Each server runs under callgrind while the
# bench harness's deterministic keep-alive client (`bench __http_client <port> <conns> <n>`)
# sends n requests over CONNS connections (a request on every connection, then every answer,
# round after round), then is stopped; the same again with 2n requests, and
# (total at 2n - total at n) / n is the cost of one request with start-up, the accepts and
# tear-down dropped out.
#
# Servers (default: all four):
#   mio       the bench's hand-written mio loop (`bench __serve mio http`), the floor
#   proto     greenlet::net + StreamServer with the very same parser and response as the mio
#             loop (`bench __serve 'greenlet (harness parser)' http`)
#   hello     the crate's http_hello example (full HTTP/1.1 parser, idle and request timeouts)
#   std       the http_hello_std example: hello's handler over plain std::net, under the
#             monkey hooks
#
# Usage: scripts/callgrind_http.sh [server...]; N (default 20000) and CONNS (default 100) from
# the environment. KEEP=1 keeps the callgrind files (target/callgrind-http/<server>-<n>.out)
# for callgrind_annotate. CACHE=1 also simulates the caches (a 32 KiB L1 data cache and, as
# callgrind's last level, a 1 MiB L2, this machine's per core) and prints the data-cache lines
# each request misses in both: the cost that grows with the number of connections (CONNS=2000
# is wrk's -c2000), which instruction counts do not show. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
# Builds the servers; TARGET, BENCH, HELLO, HELLO_STD, N, CONNS and `server`.
source scripts/http_servers.sh
OUT=$TARGET/callgrind-http
mkdir -p "$OUT"
# Below the ephemeral range (32768 up), where the clients of an earlier run leave ports in
# TIME_WAIT for a minute.
PORT=${PORT:-$((12000 + $$ % 20000))}
SIM=()
[ -n "${CACHE:-}" ] && SIM=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,8,64)

# Totals of server $1 answering $2 requests on port $3: instructions, and with CACHE=1 the L1
# and L2 data misses (reads and writes), space-separated.
totals() {
  local name=$1 n=$2 port=$3 log="$OUT/$1-$2.log" file="$OUT/$1-$2.out"
  server "$name" "$port"
  valgrind --tool=callgrind "${SIM[@]}" --callgrind-out-file="$file" "${CMD[@]}" >/dev/null 2>"$log" &
  local pid=$!
  if ! "$BENCH" __http_client "$port" "$CONNS" "$n" >/dev/null; then
    kill "$pid" 2>/dev/null || true
    echo "$name: the client failed; server log: $log" >&2
    exit 1
  fi
  # Callgrind writes its totals when the server dies of the signal.
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  # The file's `events:` line names the columns of its `summary:` line.
  local total
  total=$(awk '/^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
    /^summary:/ { if (col["D1mr"]) print $col["Ir"], $col["D1mr"] + $col["D1mw"], $col["DLmr"] + $col["DLmw"]
                  else print $2 }' "$file")
  [ -n "$total" ] || { echo "$name: no totals from callgrind; see $log" >&2; exit 1; }
  [ -n "${KEEP:-}" ] || rm -f "$file"
  echo "$total"
}

servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(mio proto hello std)
echo "instructions per request, $N and $((2 * N)) keep-alive requests over $CONNS connections"
for s in "${servers[@]}"; do
  server "$s" 0
  one=$(totals "$s" "$N" "$PORT"); two=$(totals "$s" $((2 * N)) $((PORT + 1)))
  PORT=$((PORT + 2))
  awk -v s="$s" -v a="$one" -v b="$two" -v n="$N" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "%-6s %8.1f instructions per request", s, (y[1] - x[1]) / n
    if (3 in y) printf ", %5.1f L1 and %5.1f L2 data misses per request", (y[2] - x[2]) / n, (y[3] - x[3]) / n
    printf "\n" }'
done
