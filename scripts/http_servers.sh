# Sourced by scripts/callgrind_http.sh and scripts/syscalls_http.sh (from the repository's
# root): builds the hello servers they measure and defines `server NAME PORT`, which sets CMD
# to that server's command line. Servers: mio (the bench's hand-written mio loop, the floor),
# proto (greenlet::net + StreamServer with the very same parser and response as the mio loop),
# hello (the crate's http_hello example), std (http_hello_std: the same handler over plain
# std::net under the monkey hooks). Also sets TARGET, BENCH, HELLO, HELLO_STD, and N (default
# 20000) and CONNS (default 100) from the environment.
cargo build --release -q -p bench
cargo build --release -q -p greenlet --example http_hello
cargo build --release -q -p greenlet --features monkey --example http_hello_std
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/bench
HELLO=$TARGET/release/examples/http_hello
HELLO_STD=$TARGET/release/examples/http_hello_std
N=${N:-20000}
CONNS=${CONNS:-100}

server() {
  case $1 in
    mio) CMD=("$BENCH" __serve mio http "$2") ;;
    proto) CMD=("$BENCH" __serve 'greenlet (harness parser)' http "$2") ;;
    hello) CMD=("$HELLO" "$2") ;;
    std) CMD=("$HELLO_STD" "$2") ;;
    *) echo "unknown server $1 (mio proto hello std)" >&2; exit 2 ;;
  esac
}
