#!/usr/bin/env bash
# bench/callgrind.sh — instructions per request of sluice, under callgrind.
#
# Optional companion of bench/run.sh. Wall-clock figures swing by ±20 % on a
# busy 2-core machine; instruction counts do not (they move by well under 1 %
# from run to run), so this is the figure to compare before and after a change.
#
# sluice runs standalone (`sluice --config FILE --listen 127.0.0.1:PORT`) under
# valgrind --tool=callgrind, with the same nginx fake upstream and config as
# run.sh. For each case: CG_WARMUP requests, zero the counters
# (callgrind_control -z), CG_REQUESTS requests one after another with
# bench/out/fcgi-ping, dump (callgrind_control -d), and print the instructions
# of that dump divided by CG_REQUESTS. User-space instructions of the sluice
# process only: the kernel's share (syscalls, TCP) and the web server are not in it.
#
# Cases: health (GET /health/liveliness), mock (POST chat -> mock/echo),
# fake (POST chat -> nginx JSON), stream (POST chat stream:true -> nginx SSE,
# all events in one read), paced (the same events one read each, 1 ms apart),
# and fcgi-hello answering the same POST as the reference floor.
#
# Knobs (environment): SLUICE_BIN, CG_REQUESTS (default 2000), CG_WARMUP
# (default 100), CG_CASES (default "health mock fake stream paced"), CG_TOP (functions
# listed per case, default 12; 0 for none), BENCH_KEEP=1 keeps the temp dir,
# BENCH_OBSERVABILITY (on: metrics, otel spans and a webhook; off: not even
# metrics; unset: metrics alone, the default config).
# The dumps are copied to bench/out/callgrind/ for callgrind_annotate or kcachegrind.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CG_REQUESTS=${CG_REQUESTS:-2000}
CG_WARMUP=${CG_WARMUP:-100}
CG_CASES=${CG_CASES:-"health mock fake stream paced"}
CG_TOP=${CG_TOP:-12}
export BENCH_EXTRA_PKGS="valgrind:valgrind callgrind_control:valgrind"

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
[ -n "$ECHO_MODULE" ] || CG_CASES=${CG_CASES//paced/}

CGDIR=$OUT/callgrind
mkdir -p "$CGDIR"

# ping_case CASE ADDR [fcgi-ping options...]: the fcgi-ping arguments of a case
case_args() {
    case $1 in
        health) CASE_ARGS=(-u /health/liveliness) ;;
        mock) CASE_ARGS=(-u "$CHAT_PATH" -H "Authorization: Bearer $KEY"
            -d '{"model":"bench-mock","messages":[{"role":"user","content":"hello"}]}') ;;
        fake) CASE_ARGS=(-u "$CHAT_PATH" -H "Authorization: Bearer $KEY"
            -d '{"model":"bench-fake","messages":[{"role":"user","content":"hello"}]}') ;;
        stream) CASE_ARGS=(-u "$CHAT_PATH" -H "Authorization: Bearer $KEY" -H "Accept: text/event-stream"
            -d '{"model":"bench-fake-stream","messages":[{"role":"user","content":"hello"}],"stream":true}') ;;
        paced) CASE_ARGS=(-u "$CHAT_PATH" -H "Authorization: Bearer $KEY" -H "Accept: text/event-stream"
            -d '{"model":"bench-fake-paced","messages":[{"role":"user","content":"hello"}],"stream":true}') ;;
        *) die "unknown case $1 (health mock fake stream paced)" ;;
    esac
}

# top_functions DUMP BINARY: the CG_TOP functions with the most self cost
# (thread entry frames, which carry the whole total, left out), then the
# CG_TOP functions of BINARY itself with the most inclusive cost
top_functions() {
    local dump=$1 bin
    bin=$(basename "$2")
    say "    self cost:"
    callgrind_annotate --threshold=100 --auto=no "$dump" 2>/dev/null |
        awk -v top="$CG_TOP" '/^-+$/ { sep++; next }
            sep >= 5 && NF && $1 != "Ir" && !/clone\.S:clone|pthread_create\.c:start_thread/ && shown < top {
                print "      " $0; shown++ }' | sed "s|$ROOT/||g" | cut -c1-150
    say "    inclusive cost, functions of $bin:"
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null |
        awk -v top="$CG_TOP" -v b="/$bin]" '/^-+$/ { sep++; next }
            sep >= 5 && index($0, b) && shown < top { print "      " $0; shown++ }' | sed "s|$ROOT/||g" | cut -c1-150
}

# profile NAME CASES CMD...: runs CMD (which must listen on $PORT) under
# callgrind and prints one line per case
profile() {
    local name=$1 cases=$2 pid c out n ir bin=$3
    shift 2
    out=$TMP/cg-$name.out
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out" "$@" >"$TMP/vg-$name.log" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    for _ in $(seq 300); do
        "$PING" -q -t 2000 "127.0.0.1:$PORT" >/dev/null 2>&1 && break
        alive "$pid" || break
        sleep 0.2
    done
    if ! "$PING" -q -t 2000 "127.0.0.1:$PORT" >/dev/null 2>&1; then
        warn "$name did not answer under valgrind:"
        tail -20 "$TMP/vg-$name.log" >&2
        stop_tree "$pid"
        return 1
    fi
    n=0
    for c in $cases; do
        case_args "$c"
        if ! "$PING" -q -n "$CG_WARMUP" "${CASE_ARGS[@]}" "127.0.0.1:$PORT"; then
            "$PING" -v "${CASE_ARGS[@]}" "127.0.0.1:$PORT" 2>&1 | head -c 400 | sed 's/^/    /' >&2
            warn "$name $c: the warm-up requests did not all get a 2xx (answer above); measuring anyway"
        fi
        callgrind_control -z "$pid" >/dev/null 2>&1 || warn "callgrind_control -z failed"
        "$PING" -n "$CG_REQUESTS" "${CASE_ARGS[@]}" "127.0.0.1:$PORT" >"$TMP/ping-$name-$c" 2>&1 ||
            warn "$name $c: $(cat "$TMP/ping-$name-$c")"
        sleep 1.5     # callbacks: the last batch leaves (flush interval 1 s) and is counted
        callgrind_control -d "$pid" >/dev/null 2>&1 || warn "callgrind_control -d failed"
        n=$((n + 1))
        if [ ! -s "$out.$n" ]; then
            warn "$name $c: no dump $out.$n"
            continue
        fi
        cp "$out.$n" "$CGDIR/$name-$c.callgrind"
        ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out.$n")
        awk -v nm="$name" -v c="$c" -v ir="$ir" -v n="$CG_REQUESTS" -v ok="$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$TMP/ping-$name-$c")" 'BEGIN {
            printf "  %-10s %-7s %12.0f instructions/request   (%d requests, %s with a 2xx)\n", nm, c, ir / n, n, ok }'
        if [ "$CG_TOP" -gt 0 ] 2>/dev/null; then
            top_functions "$out.$n" "$bin"
        fi
    done
    stop_tree "$pid"
}

say "callgrind: $CG_REQUESTS requests per case after $CG_WARMUP of warm-up, one at a time over FastCGI"
say "  (user-space instructions of the responder process only; dumps in bench/out/callgrind/)"
say ""
PORT=$(free_port)
NTHREADS=4 profile fcgi-hello mock "$HELLO" --listen "127.0.0.1:$PORT"
if [ -x "$SLUICE_BIN" ]; then
    PORT=$(free_port)
    profile sluice "$CG_CASES" "$SLUICE_BIN" --config "$CFG" --listen "127.0.0.1:$PORT"
else
    warn "no sluice binary at $SLUICE_BIN (build it, or set SLUICE_BIN): only the fcgi-hello reference was measured"
fi
say ""
say "callgrind: done (figures only)"
exit 0
