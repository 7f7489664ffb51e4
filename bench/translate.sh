#!/usr/bin/env bash
# bench/translate.sh — what each provider adapter costs per request and per
# stream event: build_request on a ~4 KB chat request, the ~1 KB native
# answer back, and a native stream of ~200 deltas, on the real adapter code.
#
# A benchmark, not a test: it prints figures with the targets beside them
# (20 µs per non-streamed request, 2 µs per stream event) and never fails on
# speed. It exits non-zero only when it cannot set up or an adapter fails to
# translate the fixtures.
#
# It brings a build's libsluice.a up to date (make libsluice.a), builds
# bench/translate.c against it with gcc -O2 and the build's own dependency
# flags (as the unit tests link), into bench/out/, and runs it.
#
# Knobs (environment):
#   SLUICE_BUILD          a configured build directory (default bench/out/build,
#                         configured here out of tree on the first run)
#   TRANSLATE_RUN_MS      length of one measured run, ms (default 100)
#   TRANSLATE_RUNS        runs per figure; the best one counts (default 5)
#   TRANSLATE_WARMUP_MS   warm-up per figure, ms (default 30)
#   TRANSLATE_EVENTS      text deltas in each native stream (default 200)
#   TRANSLATE_REQUEST     the client request (default bench/fixtures/chat-request.json)
#   TRANSLATE_SURFACE     chat (default) or responses: the same conversation sent
#                         to /v1/responses, so the figures include responses.c
#                         (request to chat, answer and events back)
#   BENCH_CALLGRIND       1: also count instructions under callgrind (valgrind)
#   TRANSLATE_CG_REQUESTS requests per figure under callgrind (default 50)
#   TRANSLATE_CG_STREAMS  streams per figure under callgrind (default 5)
#   CG_TOP                under callgrind, the N functions with the most self
#                         cost per adapter and figure (default 0: none)
# Arguments: adapter names (openai azure mistral anthropic gemini vertex_ai
# bedrock cohere ollama) to run only those.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
SLUICE_BUILD=${SLUICE_BUILD:-$OUT/build}
case $SLUICE_BUILD in /*) ;; *) SLUICE_BUILD=$PWD/$SLUICE_BUILD ;; esac
BENCH_CALLGRIND=${BENCH_CALLGRIND:-0}
CG_TOP=${CG_TOP:-0}
# relative to the repo root, where the binary runs
export TRANSLATE_REQUEST=${TRANSLATE_REQUEST:-bench/fixtures/chat-request.json}

say() { printf '%s\n' "$*"; }
die() { printf 'translate: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- packages
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ "$BENCH_CALLGRIND" = 1 ]; then
    command -v valgrind >/dev/null || need+=(valgrind)
    command -v callgrind_annotate >/dev/null || need+=(valgrind)
fi
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "translate: installing ${need[*]}"
        apt-get update -qq >/dev/null || say "translate: apt-get update failed" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
            die "apt-get install ${need[*]} failed"
    else
        die "missing: ${need[*]} (apt-get install ${need[*]})"
    fi
fi

# ---------------------------------------------------------------- the library
# shellcheck source=bench/build.sh
. "$HERE/build.sh"
if [ "$BENCH_CALLGRIND" = 1 ] && ! echo '#include <valgrind/callgrind.h>' | gcc -E -x c - >/dev/null 2>&1; then
    die "BENCH_CALLGRIND=1 needs <valgrind/callgrind.h> (Debian: the valgrind package)"
fi
BIN=$OUT/translate
bench_build_program translate "$HERE/translate.c" "$BIN"

# ---------------------------------------------------------------- timing
say "translate: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), library $SLUICE_BUILD/libsluice.a, machine busy $(awk '{print $1}' /proc/loadavg) (1-min load), $(nproc) cores"
say ""
cd "$ROOT" || die "cannot cd to $ROOT"
"$BIN" "$@"
rc=$?
[ $rc = 0 ] || [ $rc = 2 ] || die "translate failed (exit $rc)"
checks=0
if [ $rc = 2 ]; then
    say "translate: some checks failed (messages above): those figures may not measure a real translation"
    checks=1
fi

# ---------------------------------------------------------------- callgrind
if [ "$BENCH_CALLGRIND" = 1 ]; then
    CGDIR=$OUT/callgrind
    mkdir -p "$CGDIR"
    rm -f "$CGDIR"/translate.out* "$CGDIR"/translate-*.callgrind
    say ""
    say "Instructions (callgrind), collected only inside each measured segment:"
    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$CGDIR/translate.out" \
        "$BIN" "$@" >"$OUT/translate-cg.txt" 2>"$OUT/translate-cg.log" ||
        { tail -20 "$OUT/translate-cg.log" >&2; die "the callgrind run failed (log: $OUT/translate-cg.log)"; }
    # one line per dump: adapter figure units totals rc
    for f in "$CGDIR"/translate.out.*; do
        awk '/^desc: Trigger: Client Request: translate / {
                 for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                 lab = 1 }
             /^(summary|totals):/ { tot = $2 }
             END { if (lab) print v["adapter"], v["figure"], v["units"], tot, v["rc"] }' "$f"
    done >"$OUT/translate-cg.tsv"
    awk -v top="$CG_TOP" '
        FNR == NR { ir[$1, $2] = $4 / $3; if ($5 != 0) bad[$1] = 1; next }
        /^cg adapter=/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            a = v["adapter"]; order[++n] = a; wire[a] = v["wire"]; ev[a] = v["events"]
        }
        function k(x) { return sprintf("%.1fk", x / 1000) }
        function p(x, w) { return w ? "(" k(x) ")" : k(x) }
        END {
            printf "%-10s %9s %10s %10s %10s   %6s %10s %10s\n", "", "build", "parse", "reply", "build+", "events", "parse", "server"
            printf "%-10s %9s %10s %10s %10s   %6s %10s %10s\n", "adapter", "request", "response", "(server)", "reply", "", "per ev", "per ev"
            for (i = 1; i <= n; i++) {
                a = order[i]
                printf "%-10s %9s %10s %10s %10s   %6d %10s %10s%s\n", a, k(ir[a, "build"]),
                    p(ir[a, "parse"], wire[a]), k(ir[a, "reply"]), k(ir[a, "build"] + ir[a, "reply"]), ev[a],
                    p(ir[a, "ev_parse"], wire[a]), k(ir[a, "ev_server"]), bad[a] ? "   (an iteration failed)" : ""
            }
            print ""
            print "  instructions per request / per event (k = thousands); same segments as the table above"
        }' "$OUT/translate-cg.tsv" "$OUT/translate-cg.txt"
    # keep the dumps under readable names
    for f in "$CGDIR"/translate.out.*; do
        name=$(awk '/^desc: Trigger: Client Request: translate / {
                   for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                   print v["adapter"] "-" v["figure"]; exit }' "$f")
        if [ -n "$name" ]; then
            mv "$f" "$CGDIR/translate-$name.callgrind"
        else
            rm -f "$f"
        fi
    done
    rm -f "$CGDIR/translate.out"
    say "  dumps: bench/out/callgrind/translate-<adapter>-<figure>.callgrind (callgrind_annotate)"
    awk '$5 != 0 { bad = 1 } END { exit !bad }' "$OUT/translate-cg.tsv" && checks=1
    if [ "$CG_TOP" -gt 0 ] 2>/dev/null; then
        # Debian's libjansson has no symbols: its functions show as ???:0x...
        # (LD_LIBRARY_PATH to a -g build of the same Jansson version names them)
        for f in "$CGDIR"/translate-*.callgrind; do
            say ""
            say "  $(basename "$f" .callgrind): top $CG_TOP by self cost, then by inclusive cost"
            callgrind_annotate --threshold=100 --auto=no "$f" 2>/dev/null |
                awk -v top="$CG_TOP" '/^-+$/ { sep++; next }
                    sep >= 5 && NF && $1 != "Ir" && !/libc-start|below main|ld-linux/ && shown < top {
                        print "    " $0; shown++ }' |
                sed "s|[^ ]*/\.\./\.\./\.\./||g; s|$ROOT/||g; s|/usr/lib/x86_64-linux-gnu/||g" | cut -c1-140
            say "    --"
            callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" 2>/dev/null |
                awk -v top="$CG_TOP" '/^-+$/ { sep++; next }
                    sep >= 5 && NF && $1 != "Ir" && / \[/ && !/libc-start|below main|ld-linux|translate.c:(main|measure_cg|one) / &&
                    shown < top { print "    " $0; shown++ }' |
                sed "s|[^ ]*/\.\./\.\./\.\./||g; s|$ROOT/||g; s|/usr/lib/x86_64-linux-gnu/||g" | cut -c1-140
        done
    fi
fi
exit $checks
