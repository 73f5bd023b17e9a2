#!/bin/bash
# spawn + join onto two threads: greenlet's Runtime::spawn on 2 hubs, tokio multi-thread with 2
# workers and may with 2 workers (the bench crate's `xspawn` rows), and Go with GOMAXPROCS=2
# (bench/go/spawn) when Go is installed. One process per figure.
# needs: cargo; go for the Go row.
# usage: bench/scripts/spawn2.sh [n=100000]
set -euo pipefail
. "$(dirname "$0")/common.sh"
N=${1:-100000}
BENCH=$(build_bench)
machine
for rt in greenlet tokio may; do
  us=$("$BENCH" __micro xspawn "$rt" "$N" | awk '/^result value/{print $3}')
  printf "%-18s %8s us per spawn+join (n=%d)\n" "$rt" "$us" "$N"
done
GO=$(build_go spawn)
if [ -n "$GO" ]; then
  us=$(GOMAXPROCS=2 "$GO" "$N" | awk '{print $(NF-3)}')
  printf "%-18s %8s us per spawn+join (n=%d)\n" "go-GOMAXPROCS2" "$us" "$N"
else
  echo "(Go skipped: go is not installed)"
fi
