#!/usr/bin/env bash
# bench/route.sh — what a routing decision costs (issue: routing): the
# router's pick and release on a group of 50 deployments, per strategy, on
# the real code (bench/route.c, linked against a build's libsluice.a).
#
# A benchmark, not a test: it prints ns per decision beside the 2 µs target
# and never fails on speed (exit 0 even over target).
#
# Knobs (environment):
#   SLUICE_BUILD   a configured build directory (default bench/out/build)
#   ROUTE_DEPLOYMENTS  deployments in the group (default 50)
#   ROUTE_ITERATIONS   decisions per run, best of 5 runs (default 200000)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
SLUICE_BUILD=${SLUICE_BUILD:-$OUT/build}
case $SLUICE_BUILD in /*) ;; *) SLUICE_BUILD=$PWD/$SLUICE_BUILD ;; esac

say() { printf '%s\n' "$*"; }
die() { printf 'route: %s\n' "$*" >&2; exit 1; }

command -v gcc >/dev/null && command -v make >/dev/null || die "needs gcc and make (apt-get install gcc make)"
# shellcheck source=bench/build.sh
. "$HERE/build.sh"
bench_build_program route "$HERE/route.c" "$OUT/route"
say "route: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), machine busy $(awk '{print $1}' /proc/loadavg) (1-min load)"
"$OUT/route" "$OUT" "${ROUTE_DEPLOYMENTS:-50}" "${ROUTE_ITERATIONS:-200000}"
rc=$?
[ $rc = 0 ] || [ $rc = 3 ] || die "route failed (exit $rc)"
exit 0
