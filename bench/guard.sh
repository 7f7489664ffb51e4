#!/usr/bin/env bash
# bench/guard.sh — what guardrails add to a request (issue: guardrails):
# sl_guard_select + sl_guard_pre on a chat request with a 4 KB prompt, the
# default detectors masking (and restore on), against the same request with
# no guardrail configured, on the real code (bench/guard.c, linked against a
# build's libsluice.a); and the default detectors' scan rate over 4 MB of
# that text, one core.
#
# A benchmark, not a test: it prints µs per request beside the 30 µs target
# and MB/s beside the 200 MB/s target, and never fails on speed.
#
# Knobs (environment):
#   SLUICE_BUILD       a configured build directory (default bench/out/build)
#   GUARD_ITERATIONS   requests per run, best of 5 runs (default 20000)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
SLUICE_BUILD=${SLUICE_BUILD:-$OUT/build}
case $SLUICE_BUILD in /*) ;; *) SLUICE_BUILD=$PWD/$SLUICE_BUILD ;; esac

say() { printf '%s\n' "$*"; }
die() { printf 'guard: %s\n' "$*" >&2; exit 1; }

command -v gcc >/dev/null && command -v make >/dev/null || die "needs gcc and make (apt-get install gcc make)"
# shellcheck source=bench/build.sh
. "$HERE/build.sh"
bench_build_program guard "$HERE/guard.c" "$OUT/guard"
say "guard: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), machine busy $(awk '{print $1}' /proc/loadavg) (1-min load)"
"$OUT/guard" "$OUT" "${GUARD_ITERATIONS:-20000}" || die "guard failed (exit $?)"
exit 0
