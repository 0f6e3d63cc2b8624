#!/usr/bin/env bash
# The long fuzzing run: every proptest target of tests/integration/fuzz.rs
# with FUZZ_CASES cases (default 1,000,000) in release mode, one target
# after another, each timed. Prints one line per target (name, cases,
# seconds, result) and writes the test output to target/fuzz-long/.
#
#   scripts/fuzz-long.sh                 # every target, 1,000,000 cases each
#   FUZZ_CASES=100000 scripts/fuzz-long.sh decoders   # targets matching a filter
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_prometheus_tools
cases="${FUZZ_CASES:-1000000}"
filter="${1:-}"
logs="${CARGO_TARGET_DIR:-target}/fuzz-long"
mkdir -p "$logs"

cargo test --release --locked --test integration --no-run
targets=$(cargo test --release --locked --test integration -- --list fuzz:: 2>/dev/null \
    | sed -n 's/^\(fuzz::[a-z_]*\): test$/\1/p' | grep -e "$filter")

status=0
printf '%-80s %10s %9s %s\n' target cases seconds result
for target in $targets; do
    start=$(date +%s%N)
    if PROPTEST_CASES="$cases" cargo test --release --locked --test integration -- \
        --exact "$target" --test-threads=1 >"$logs/$target.log" 2>&1; then
        result=passed
    else
        result="FAILED (see $logs/$target.log)"
        status=1
    fi
    millis=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%-80s %10s %5d.%03d %s\n' "$target" "$cases" $((millis / 1000)) $((millis % 1000)) "$result"
done
exit "$status"
