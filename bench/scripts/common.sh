# Shared by http.sh and ping.sh: building the servers, measuring one, the machine line, ratios.
#
# Everything measured comes from this repository: the crate's examples and the bench crate's
# own mio, tokio and may servers (`bench __serve <runtime> <http|resp> <port>`). Set PEERS to a
# directory holding more peers to measure them in the same run, when present:
#   $PEERS/go/bin/httphello          Go's net/http hello server (http.sh)
#   $PEERS/py/gevent_http.py         gevent's hello server (http.sh; needs python3 + gevent)
#   $PEERS/py/gevent_ping.py         gevent's RESP PING server (ping.sh; needs python3 + gevent)
# Each takes its port as the only argument. The Go rows at GOMAXPROCS=2 (http.sh, spawn2.sh) use
# this repository's own Go programs in bench/go, built when `go` is installed (build_go).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEERS=${PEERS:-}
TCK=$(getconf CLK_TCK)

# Builds one example of this crate in release mode; prints its path.
build_example() {
  local log
  if ! log=$(cargo build --release --manifest-path "$ROOT/Cargo.toml" --example "$1" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  echo "$ROOT/target/release/examples/$1"
}

# Builds the bench crate (its hidden __serve subcommand runs the mio, tokio and may servers).
build_bench() {
  local log
  if ! log=$(cargo build --release --manifest-path "$ROOT/Cargo.toml" -p bench 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  echo "$ROOT/target/release/bench"
}

# Builds bench/go/NAME when Go is installed; prints the binary's path, or nothing without Go.
build_go() {
  command -v go >/dev/null || return 0
  local out="$ROOT/target/bench-go/$1" log
  if ! log=$(cd "$ROOT/bench/go" && go build -o "$out" "./$1" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  echo "$out"
}

machine() {
  local cpu
  cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
  echo "machine: $(nproc) cores ($cpu), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Waits up to 10 s for something to accept on 127.0.0.1:PORT; fails if PID died first.
wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# The server's user + system CPU so far, in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# Starts CMD..., waits for PORT, runs the client command in CLIENT (a string, eval'd) while
# sampling the server's CPU, and stops the server. Sets OUT to the client's output and TICKS to
# the server's CPU ticks over the client's run. Fails (with a note) if the server did not start.
# usage: measure PORT CLIENT CMD...
measure() {
  local port=$1 client=$2 pid t0 t1; shift 2
  "$@" >/dev/null 2>&1 &
  pid=$!
  if ! wait_port "$port" "$pid"; then
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    echo "  (could not start: $*)" >&2
    return 1
  fi
  t0=$(cpu_ticks "$pid")
  OUT=$(eval "$client" 2>&1)
  t1=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  TICKS=$((t1 - t0))
}

# Reads the result lines on stdin, echoes them, then prints NAME's CPU/request and req/s
# relative to the row named FLOOR: ratio_lines NAME FLOOR
ratio_lines() {
  awk -v me="$1" -v floor="$2" '
    { print; lines[NR] = $0 }
    $1 == me    { mc = $(NF-2); for (i = 1; i <= NF; i++) if ($i == "req/s") mr = $(i-1) }
    $1 == floor { fc = $(NF-2); for (i = 1; i <= NF; i++) if ($i == "req/s") fr = $(i-1) }
    END {
      if (mc != "" && fc != "" && fc > 0) {
        printf "  -> %s / %s: CPU per request %.2fx", me, floor, mc / fc
        if (mr != "" && fr != "" && fr > 0) printf ", req/s %.2fx", mr / fr
        printf "\n"
      }
    }'
}
