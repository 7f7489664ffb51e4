#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, in their own build
# directory) and runs each for a bounded time; fails if any target crashes,
# leaks, times out or breaks an invariant.
#   tests/fuzz/run.sh [target ...]     default: every target (tests/fuzz/targets.c)
#   FUZZ_SECONDS  time per target (default 10)
#   FUZZ_JOBS     targets run at once (default: the number of CPUs)
#   FUZZ_BUILD    build directory (default build-fuzz, at the top of the tree)
#   FUZZ_CC       the compiler (default clang, installed from Debian if missing)
# Seeds: tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/
# (read only); what the fuzzer learns goes to $FUZZ_BUILD/fuzz-corpus/<target>/,
# crash inputs to $FUZZ_BUILD/fuzz-crashes/<target>/. A crash input becomes a
# regression case once the bug is fixed: copy it to tests/fuzz/regressions/<target>/.
# Prints one "PASS: fuzz_<target>" or "FAIL: fuzz_<target>" line per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. scripts/deps.sh

seconds=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
build=${FUZZ_BUILD:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(sse ndjson eventstream openai anthropic bedrock cohere ollama gemini)
fi

[ -n "${FUZZ_CC:-}" ] || sl_install_missing $SL_FUZZ_PACKAGES
sl_bootstrap
mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$root/configure" -q --enable-fuzzing CC="${FUZZ_CC:-clang}" CFLAGS="-O1 -g")
fi
programs=()
for t in "${targets[@]}"; do programs+=("tests/fuzz/fuzz_$t"); done
make -C "$build" -s -j"$jobs" "${programs[@]}"

logs="$build/fuzz-logs"
mkdir -p "$logs"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# One target: its seed directories are read, never written.
run_one() {
    local t=$1 seeds=("$root/tests/fuzz/corpus/$1")
    [ -d "$root/tests/fuzz/regressions/$t" ] && seeds+=("$root/tests/fuzz/regressions/$t")
    mkdir -p "$build/fuzz-corpus/$t" "$build/fuzz-crashes/$t"
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$build/fuzz-crashes/$t/" \
        "$build/fuzz-corpus/$t" "${seeds[@]}" >"$logs/$t.log" 2>&1
}

report() {   # report TARGET STATUS
    local t=$1 status=$2 runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$logs/$t.log" | tail -n1 || true)
    if [ "$status" -eq 0 ]; then
        echo "PASS: fuzz_$t (${runs:-?} runs in ${seconds}s, ${cov:-no coverage line})"
    else
        echo "FAIL: fuzz_$t (exit $status; log $logs/$t.log)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant broken|.*runtime error:)' "$logs/$t.log" | head -n 5 || true
        grep -E 'Test unit written to' "$logs/$t.log" | sed 's/^/  /' || true
        echo "  reproduce: $build/tests/fuzz/fuzz_$t <that file>"
        tail -n 30 "$logs/$t.log" | sed 's/^/  | /'
    fi
}

# Up to $jobs targets at once; each result is reported as it ends.
declare -A pid_of
failed=0
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n -p done_pid && s=0 || s=$?
        report "${pid_of[$done_pid]}" "$s"
        [ "$s" -eq 0 ] || failed=$((failed + 1))
        running=$((running - 1))
    fi
    run_one "$t" &
    pid_of[$!]=$t
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n -p done_pid && s=0 || s=$?
    report "${pid_of[$done_pid]}" "$s"
    [ "$s" -eq 0 ] || failed=$((failed + 1))
    running=$((running - 1))
done
echo "fuzz: $(( ${#targets[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
