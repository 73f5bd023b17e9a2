#!/usr/bin/env bash
# Server CPU per HTTP request of two builds of this crate, measured in interleaved pairs: where
# wrk's ratios move between runs by more than a change is worth, running the old and the new
# server one after the other, round after round, compares them under the same conditions.
#
# Each round runs, for each connection count, the bench's hand-written mio loop (the floor,
# from the new build), then the harness-parser server and http_hello of the old build and of
# the new one: 1 s of wrk to warm up, then 5 s measured; CPU is the server's user + system time
# from /proc/<pid>/stat. Prints one line per server and round, then the medians over the mio
# loop's.
#
# CPU=user counts the server's user time alone: what a change to the crate's own code moves,
# without the system calls' time, which is the same for every server and noisier than the rest.
# Usage: scripts/http_pairs.sh OLD NEW [rounds] [conns...]
#   OLD, NEW  two checkouts of this repository, each built with
#             `cargo build --release -p bench && cargo build --release --example http_hello`
#             (for example a `git worktree add ../old <commit>` and this one); when both also
#             have `cargo build --release --features monkey --example http_hello_std`, its
#             servers (std-old, std-new: the same handler over std::net under the hooks) run too
#   rounds    default 4; conns default "100 2000"
# Needs wrk (apt-get install wrk).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,/^set/p' "$0" | sed '$d' >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
OLD=$(cd "$1" && pwd)/target/release
NEW=$(cd "$2" && pwd)/target/release
ROUNDS=${3:-4}
shift $(( $# >= 3 ? 3 : 2 ))
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || CONNS=(100 2000)
for b in "$OLD" "$NEW"; do
  for f in bench examples/http_hello; do
    [ -x "$b/$f" ] || { echo "missing $b/$f: build it first (see the usage)" >&2; exit 1; }
  done
done
# Below the ephemeral range (32768 up), where wrk's earlier connections sit in TIME_WAIT.
PORT=$((12000 + $$ % 15000))
TICKS=$(getconf CLK_TCK)
# utime and stime are fields 14 and 15 of /proc/<pid>/stat.
case "${CPU:-all}" in
  all) TIME='$14 + $15' ;;
  user) TIME='$14' ;;
  *) echo "CPU is all or user" >&2; exit 2 ;;
esac
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# Runs server "$3..." under wrk -c$2 and appends "label conns µs-per-request" to $OUT.
measure() {
  local label=$1 conns=$2; shift 2
  PORT=$((PORT + 1))
  "$@" "$PORT" >/dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
  wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$PORT/" >/dev/null 2>&1
  local before after requests
  before=$(awk "{print $TIME}" "/proc/$pid/stat")
  requests=$(wrk -t1 -c"$conns" -d5s "http://127.0.0.1:$PORT/" 2>/dev/null | awk '/requests in/ {print $1}')
  after=$(awk "{print $TIME}" "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v l="$label" -v c="$conns" -v a="$before" -v b="$after" -v r="$requests" -v t="$TICKS" \
    'BEGIN { printf "%s %s %.3f\n", l, c, (b - a) / t * 1e6 / r }' | tee -a "$OUT"
}

for _ in $(seq "$ROUNDS"); do
  for c in "${CONNS[@]}"; do
    measure mio "$c" "$NEW/bench" __serve mio http
    measure proto-old "$c" "$OLD/bench" __serve 'greenlet (harness parser)' http
    measure proto-new "$c" "$NEW/bench" __serve 'greenlet (harness parser)' http
    measure hello-old "$c" "$OLD/examples/http_hello"
    measure hello-new "$c" "$NEW/examples/http_hello"
    if [ -x "$OLD/examples/http_hello_std" ] && [ -x "$NEW/examples/http_hello_std" ]; then
      measure std-old "$c" "$OLD/examples/http_hello_std"
      measure std-new "$c" "$NEW/examples/http_hello_std"
    fi
  done
done

echo "medians of CPU µs per request (${CPU:-all}), and over the mio loop's:"
sort -k1,1 -k2,2n -k3,3n "$OUT" | awk '
  { key = $1 " " $2; v[key, ++n[key]] = $3; keys[key] = 1 }
  END {
    for (k in keys) {
      m = n[k]; med = (m % 2) ? v[k, (m + 1) / 2] : (v[k, m / 2] + v[k, m / 2 + 1]) / 2
      split(k, p, " "); median[p[1], p[2]] = med; seen[p[2]] = 1; who[p[1]] = 1
    }
    for (c in seen) for (w in who) if ((w, c) in median)
      printf "c=%-5s %-10s %7.3f  %.3fx\n", c, w, median[w, c], median[w, c] / median["mio", c]
  }' | sort
