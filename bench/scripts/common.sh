# Shared by http.sh and ping.sh: paths, the machine line, and ratio lines.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" 2>/dev/null && pwd)}
if [ -z "$PEERS" ] || [ ! -x "$PEERS/http_peers.sh" ]; then
  echo "peers not found: set PEERS to the shared/peers directory" >&2
  exit 1
fi

# Builds one example of this crate in release mode; prints its path.
build_example() {
  local log
  if ! log=$(cargo build --release --manifest-path "$ROOT/Cargo.toml" --example "$1" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  echo "$ROOT/target/release/examples/$1"
}

machine() {
  local cpu
  cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
  echo "machine: $(nproc) cores ($cpu), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Reads the peers' table on stdin, echoes it, then prints NAME's CPU/request and req/s
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
