#!/usr/bin/env bash
# How much stack a keep-alive request's park touches: the bytes between the user's frame (the
# harness-parser server's connection loop, `bench::greenlet_work::serve`'s closure) and the frame that
# switches to the hub (`greenlet::hub::park_with`). With thousands of connections every one of
# those cache lines has left the cache by the time the greenlet is resumed, so each is a miss
# per request (`CACHE=1 scripts/callgrind_http.sh` counts them).
#
# Runs the server under gdb, sends it requests and stops at the first park of a connection's
# greenlet (its read finds nothing yet); prints each frame with its stack pointer and the span.
# Usage: scripts/park_stack.sh. Needs gdb.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v gdb >/dev/null || { echo "gdb is not installed (apt-get install gdb)" >&2; exit 1; }
cargo build --release -q -p bench
BENCH=${CARGO_TARGET_DIR:-target}/release/bench
PORT=$((12000 + $$ % 15000))
CMDS=$(mktemp)
trap 'rm -f "$CMDS"' EXIT
cat >"$CMDS" <<'EOF'
set pagination off
set confirm off
python
def user_frame(frame):
    while frame is not None:
        if "greenlet_work::serve::{closure" in (frame.name() or ""):
            return frame
        frame = frame.older()
    return None

class ConnectionPark(gdb.Breakpoint):
    """Stops only at a park under the connection's greenlet (not the accept loop's)."""
    def stop(self):
        return user_frame(gdb.newest_frame()) is not None

ConnectionPark("greenlet::hub::park_with")
end
run
python
frame = gdb.newest_frame()
bottom = int(frame.read_register("rsp"))
top = user_frame(frame)
while frame is not None:
    sp = int(frame.read_register("rsp"))
    print("%#x %5d  %s" % (sp, sp - bottom, (frame.name() or "?")[:110]))
    if frame == top:
        break
    frame = frame.older()
print("park_with's stack pointer to the user's frame: %d bytes" % (int(top.read_register("rsp")) - bottom))
end
kill
quit
EOF
# The client retries its connect while gdb starts the server.
"$BENCH" __http_client "$PORT" 1 2 >/dev/null 2>&1 &
client=$!
gdb -q -batch -x "$CMDS" --args "$BENCH" __serve 'greenlet (harness parser)' http "$PORT" 2>&1 |
  grep -E '^0x|bytes$'
kill "$client" 2>/dev/null || true
