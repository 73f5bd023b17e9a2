#!/usr/bin/env bash
# System calls per HTTP request of the hello servers, counted by strace: how many reads
# (`recvfrom`) each request costs, and how many of them fail with EAGAIN. Each server runs
# under `strace -f -c` while the bench harness's keep-alive client (`bench __http_client <port>
# <conns> <n>`: a request on every connection, then every answer, round after round) sends n
# requests, then the same with 2n; the difference of the counts over n drops the accepts and
# start-up out. This is what the README's "2.0 reads per request for the mio loop, 1.0 for the
# greenlet servers" comes from: an edge-triggered loop reads until EAGAIN, while a green TCP
# stream parks after a short read without asking (`net::Io::read_stream`).
#
# Servers (default: all four): mio (the hand-written loop), proto (the harness's parser over
# greenlet::net), hello (the http_hello example), std (http_hello_std: std::net under the monkey
# hooks, which park after a short read the same way). N (default 20000) and CONNS (default
# 100) from the environment. Needs strace.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 1; }
# Builds the servers; TARGET, BENCH, HELLO, HELLO_STD, N, CONNS and `server`.
source scripts/http_servers.sh
PORT=${PORT:-$((12000 + $$ % 20000))}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# "reads failed sends" of server $1 answering $2 requests on port $3.
counts() {
  local name=$1 n=$2 port=$3 file="$OUT/$1-$2.txt"
  server "$name" "$port"
  strace -f -c -e trace=recvfrom,sendto -o "$file" "${CMD[@]}" >/dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  if ! "$BENCH" __http_client "$port" "$CONNS" "$n" >/dev/null; then
    pkill -P "$pid" 2>/dev/null || true
    echo "$name: the client failed" >&2
    exit 1
  fi
  # Stopping the traced server (strace's child) makes strace write its table and exit.
  pkill -TERM -P "$pid"
  wait "$pid" 2>/dev/null || true
  # Columns: % time, seconds, usecs/call, calls, errors (empty when none), syscall.
  awk '$NF == "recvfrom" { reads = $4; failed = (NF == 6 ? $5 : 0) }
       $NF == "sendto" { sends = $4 }
       END { print reads + 0, failed + 0, sends + 0 }' "$file"
}

servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(mio proto hello std)
echo "system calls per request, $N and $((2 * N)) keep-alive requests over $CONNS connections"
for s in "${servers[@]}"; do
  server "$s" 0
  read -r r1 f1 s1 < <(counts "$s" "$N" "$PORT")
  read -r r2 f2 s2 < <(counts "$s" $((2 * N)) $((PORT + 1)))
  PORT=$((PORT + 2))
  awk -v s="$s" -v n="$N" -v r=$((r2 - r1)) -v f=$((f2 - f1)) -v w=$((s2 - s1)) \
    'BEGIN { printf "%-6s %5.2f recvfrom (%4.2f failing with EAGAIN), %5.2f sendto\n", s, r / n, f / n, w / n }'
done
