#!/bin/bash
# spawn + join onto two threads: greenlet's Runtime::spawn on 2 hubs, tokio multi-thread with 2
# workers and may with 2 workers (the bench crate's `xspawn` rows), and Go with GOMAXPROCS=2 when
# PEERS has a spawn program that honours GOMAXPROCS (see common.sh). One process per figure.
# needs: cargo.
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
if [ -n "$PEERS" ] && [ -x "$PEERS/go/bin/spawn_mp" ]; then
  echo "go GOMAXPROCS=2:  $(GOMAXPROCS=2 "$PEERS/go/bin/spawn_mp" "$N")"
else
  echo "(Go skipped: no \$PEERS/go/bin/spawn_mp)"
fi
