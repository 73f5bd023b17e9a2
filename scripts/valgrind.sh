#!/usr/bin/env bash
# Runs the soundness tests under valgrind's memcheck, where a use-after-free or an invalid read
# in the switch core shows as an error (which fails this script), even when the test itself
# passes by luck:
#   - tests/soundness.rs: panicking destructors around destroy, the dispatch loop and the hub
#     (issue 8, defects 1 and 2), and the seeded property test (GREENLET_PROPERTY_SEEDS
#     sequences, 40 by default);
#   - tests/thread_exit.rs: the thread-exit tests that used to abort (defects 3 and 4), with
#     their child processes traced too. (The memory-growth test is left out: under valgrind the
#     process's resident set is valgrind's.)
# Usage: scripts/valgrind.sh [--release]. CI runs it both ways (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  echo "note: valgrind is not installed (apt-get install valgrind): skipping the memcheck runs"
  exit 0
fi

profile=()
[ "${1:-}" = "--release" ] && profile=(--release)

# The test executables, built if needed (cargo prints their paths).
executable() {
  cargo test "${profile[@]}" --no-run --test "$1" 2>&1 |
    sed -n "s/^ *Executable tests\/$1.rs (\(.*\))$/\1/p" | tail -1
}
soundness=$(executable soundness)
thread_exit=$(executable thread_exit)
[ -x "$soundness" ] && [ -x "$thread_exit" ] || { echo "could not build the test executables"; exit 1; }

memcheck=(valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=none -q)
export GREENLET_PROPERTY_SEEDS="${GREENLET_PROPERTY_SEEDS:-40}"
export RUST_BACKTRACE=0

# Runs `valgrind ... ARGS` and shows its output without the expected panic messages of the
# tests (destructors that panic on purpose); fails the script if valgrind or the tests fail.
memcheck_run() {
  local what=$1 log status
  shift
  log=$(mktemp)
  set +e
  "${memcheck[@]}" "$@" >"$log" 2>&1
  status=$?
  set -e
  grep -v -e "^thread '" -e "^note: " -e "^$" -e "^a greenlet" -e "^a value left" \
    -e "^a capture" -e "^returned after" -e "^left by" -e "^the destroyed" -e "^thrown" \
    -e "^at the hub" "$log" || true
  rm -f "$log"
  if [ "$status" != 0 ]; then
    echo "memcheck: $what failed (exit $status; 99: memcheck found errors)"
    exit 1
  fi
}

echo "== memcheck: tests/soundness.rs ($GREENLET_PROPERTY_SEEDS property seeds)"
memcheck_run tests/soundness.rs "$soundness" --test-threads=1

echo "== memcheck: tests/thread_exit.rs (the tests that used to abort, children traced)"
memcheck_run tests/thread_exit.rs --trace-children=yes "$thread_exit" --test-threads=1 abort

echo "memcheck: 0 errors"
