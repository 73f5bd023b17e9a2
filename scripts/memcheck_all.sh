#!/usr/bin/env bash
# Runs every integration test binary under valgrind's memcheck (scripts/valgrind.sh, which CI
# runs, covers only the soundness tests): a sweep for invalid reads and writes anywhere the
# tests reach, taking tens of minutes. Prints one line per binary: memcheck's error count, the
# exit status (99: memcheck errors; 101: a test failed; 124: the timeout), and the test
# summary. Some tests fail under valgrind on timing alone (a child process that runs natively
# while the test is slowed down, valgrind's own exec and descriptor-limit handling); the error
# count is what this sweep is for. Exits 1 if any binary had memcheck errors.
#
# Usage: scripts/memcheck_all.sh [--features monkey] [test-name...]
#   TIMEOUT (default 300) seconds per binary; logs in target/memcheck-all/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

features=()
if [ "${1:-}" = "--features" ]; then
  features=(--features "$2")
  shift 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/*.rs; do
    name=$(basename "$f" .rs)
    # The monkey_* tests need the feature.
    case $name in monkey_*) [ ${#features[@]} -gt 0 ] || continue ;; esac
    names+=("$name")
  done
fi
OUT=${CARGO_TARGET_DIR:-target}/memcheck-all
mkdir -p "$OUT"
export RUST_BACKTRACE=0

dirty=0
for name in "${names[@]}"; do
  exe=$(cargo test "${features[@]}" --no-run --test "$name" 2>&1 |
    sed -n "s/^ *Executable tests\/$name.rs (\(.*\))$/\1/p" | tail -1)
  [ -x "$exe" ] || { echo "$name: could not build it" >&2; exit 1; }
  log=$OUT/$name.log
  set +e
  timeout "${TIMEOUT:-300}" valgrind --tool=memcheck --error-exitcode=99 \
    --errors-for-leak-kinds=none -q "$exe" --test-threads=2 >"$log" 2>&1
  status=$?
  set -e
  errors=$(grep -c '^==[0-9]*== \(Invalid\|Conditional\|Use of uninitialised\|Mismatched\|Syscall param\)' "$log" || true)
  [ "$errors" = 0 ] || dirty=1
  printf '%-28s errors=%-3s exit=%-3s %s\n' "$name" "$errors" "$status" \
    "$(grep 'test result' "$log" | tail -1 | cut -d';' -f1-2)"
done
exit "$dirty"
