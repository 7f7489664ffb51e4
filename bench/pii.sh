#!/usr/bin/env bash
# bench/pii.sh — what the PII guardrail costs (issue 7): the default detector
# set on generated chat text, on the real engine (bench/pii.c, linked against
# a build's libsluice.a): scan MB/s on one core beside the 200 MB/s target,
# µs to mask a 4 KB prompt beside the 30 µs target, streaming and restore.
#
# A benchmark, not a test: it never fails on speed (exit 0 even over target).
#
# Knobs (environment):
#   SLUICE_BUILD   a configured build directory (default bench/out/build)
#   PII_MB         size of the generated text in MB (default 8)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
SLUICE_BUILD=${SLUICE_BUILD:-$OUT/build}
case $SLUICE_BUILD in /*) ;; *) SLUICE_BUILD=$PWD/$SLUICE_BUILD ;; esac

say() { printf '%s\n' "$*"; }
die() { printf 'pii: %s\n' "$*" >&2; exit 1; }

command -v gcc >/dev/null && command -v make >/dev/null || die "needs gcc and make (apt-get install gcc make)"
# shellcheck source=bench/build.sh
. "$HERE/build.sh"
bench_build_program pii "$HERE/pii.c" "$OUT/pii"
say "pii: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), machine busy $(awk '{print $1}' /proc/loadavg) (1-min load)"
"$OUT/pii" "${PII_MB:-8}"
rc=$?
[ $rc = 0 ] || [ $rc = 3 ] || die "pii failed (exit $rc)"
exit 0
