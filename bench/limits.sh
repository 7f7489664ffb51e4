#!/usr/bin/env bash
# bench/limits.sh — what the rate-limit check costs a call (issue: rate
# limits): sl_ratelimit_admit + sl_ratelimit_release for a key, its team and
# its user, each with rpm, tpm and parallel limits (9 counters), on the real
# code (bench/limits.c, linked against a build's libsluice.a) against a real
# memcached started here on a free loopback port. Prints ns per call and
# memcached commands per call, far from the limits (leases) and near them.
#
# A benchmark, not a test: figures only, exit 0 whatever they are.
#
# Knobs (environment):
#   SLUICE_BUILD        a configured build directory (default bench/out/build)
#   LIMITS_ITERATIONS   calls per run, best of 5 runs (default 20000)
#   LIMITS_PER_TICK     calls between two upkeep ticks (default 2000: a
#                       process serving 2000 calls a second)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
SLUICE_BUILD=${SLUICE_BUILD:-$OUT/build}
case $SLUICE_BUILD in /*) ;; *) SLUICE_BUILD=$PWD/$SLUICE_BUILD ;; esac

say() { printf '%s\n' "$*"; }
die() { printf 'limits: %s\n' "$*" >&2; exit 1; }

command -v gcc >/dev/null && command -v make >/dev/null || die "needs gcc and make (apt-get install gcc make)"
command -v memcached >/dev/null || die "needs memcached (apt-get install memcached)"
# shellcheck source=bench/build.sh
. "$HERE/build.sh"
bench_build_program limits "$HERE/limits.c" "$OUT/limits"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-limits.XXXXXX")
MC_PID=
cleanup() { [ -n "$MC_PID" ] && kill "$MC_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))
memcached -l 127.0.0.1 -p "$PORT" -U 0 -m 64 -u "$(id -un)" -P "$TMP/mc.pid" >"$TMP/mc.log" 2>&1 &
MC_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
say "limits: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), memcached pid $MC_PID on port $PORT, machine busy $(awk '{print $1}' /proc/loadavg) (1-min load)"
"$OUT/limits" "$PORT" "$TMP" "${LIMITS_ITERATIONS:-20000}" "${LIMITS_PER_TICK:-2000}"
rc=$?
[ $rc = 0 ] || die "limits failed (exit $rc)"
exit 0
