#!/bin/bash
# HTTP hello keep-alive under wrk -t1, this crate's http_hello example next to the peers
# (hand-written mio loop, tokio, may, Go, gevent) in the same run, at each connection count.
# usage: bench/scripts/http.sh [secs=5] [conns...=100 2000]
# Targets: server CPU us/request <= 1.05x mio-handwritten, req/s >= 0.95x it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
SECS=${1:-5}; shift || true
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || CONNS=(100 2000)
command -v wrk >/dev/null || { echo "wrk is not installed (bash $PEERS/setup.sh)" >&2; exit 1; }
BIN=$(build_example http_hello)
PORT=${PORT:-8090}
machine
for c in "${CONNS[@]}"; do
  bash "$PEERS/http_peers.sh" "$c" "$SECS" greenlet "$PORT" "$BIN" "$PORT" | ratio_lines greenlet mio-handwritten
done
