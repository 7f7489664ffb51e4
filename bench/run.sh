#!/usr/bin/env bash
# shellcheck disable=SC2154  # LPID_x / LPORT_x are set by start_lighttpd through printf -v
# bench/run.sh — throughput, latency, CPU, RSS and start-up figures for sluice.
#
# A benchmark, not a test: it prints figures (with the targets beside them)
# and never fails on speed. It exits non-zero only when it cannot set up.
# See bench/README.md for what each figure means.
#
# Everything runs on 127.0.0.1, on free ports, under a temporary directory:
#   nginx     the fast fake upstream: one port answers a canned chat.completion
#             JSON, another a canned SSE stream, a third the same SSE events
#             paced (sluice sends all as POST /v1/chat/completions, so the
#             body is chosen by port)
#   lighttpd  instances from one template (mod_fastcgi, max-procs N,
#             stream-response-body 2): two spawn bench/out/fcgi-hello (the
#             floors), one spawns sluice
#   wrk       the load, with bench/post-chat*.lua
#
# Knobs (environment):
#   SLUICE_BIN           sluice binary (default: sluice at the repo root)
#   BENCH_SECONDS        seconds per measured run (default 10)
#   BENCH_WARMUP         seconds of warm-up before each scenario (default 1)
#   BENCH_CONNS          connection counts (default "1 16 64")
#   BENCH_SCENARIOS      subset of "direct floor floor-paced mock fake stream paced vkey"
#                        (default all; vkey needs mariadb-server and memcached)
#   BENCH_EVENT_GAP_MS   gap between the events of the paced SSE fake (default 1)
#   BENCH_LONG_REQUESTS  requests in the RSS long run (default 200000; the
#                        target is flat RSS over 1000000; 0 skips the long run)
#   BENCH_LONG_SEGMENTS  RSS samples during the long run (default 4)
#   BENCH_LONG_CONNS     connections in the long run (default 64)
#   BENCH_STARTS         standalone starts for start-to-first-answer (default 7;
#                        0 skips)
#   LIGHTTPD_MAX_PROCS   processes lighttpd spawns per app (default 2)
#   HELLO_THREADS        threads per fcgi-hello process (default 4)
#   HELLO_SSE_THREADS    threads per fcgi-hello process for the paced floor (default 32)
#   SLUICE_THREADS, SLUICE_MAX_THREADS   sluice_settings (default 16, 128)
#   NGINX_WORKERS        worker processes of the fake upstream (default 1)
#   BENCH_KEEP           1: keep the temporary directory (logs, configs)
#   BENCH_VKEY_LIMITS    1: scenario vkey's key also has rpm_limit, tpm_limit and
#                        max_parallel_requests (never reached): what rate limits cost;
#                        compare: a second key (row "vkeylim") whose key, team and user
#                        each have the three limits (9 counters), measured right after
#                        the key without, BENCH_VKEY_ROUNDS times (default 2): limits
#                        on / off
#   BENCH_NUM_RETRIES    N: the config sets router_settings.num_retries N and a
#                        fallback for bench-fake (never triggered: compare with a run
#                        without it to see what configured retries cost)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_CONNS=${BENCH_CONNS:-"1 16 64"}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"direct floor floor-paced mock fake stream paced vkey"}
BENCH_LONG_REQUESTS=${BENCH_LONG_REQUESTS:-200000}
BENCH_LONG_SEGMENTS=${BENCH_LONG_SEGMENTS:-4}
BENCH_LONG_CONNS=${BENCH_LONG_CONNS:-64}
BENCH_STARTS=${BENCH_STARTS:-7}
LIGHTTPD_MAX_PROCS=${LIGHTTPD_MAX_PROCS:-2}
HELLO_THREADS=${HELLO_THREADS:-4}
HELLO_SSE_THREADS=${HELLO_SSE_THREADS:-32}

want() { case " $BENCH_SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
if want vkey; then
    BENCH_EXTRA_PKGS="${BENCH_EXTRA_PKGS:-} mariadbd:mariadb-server mariadb:mariadb-client memcached:memcached"
fi

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

# ---------------------------------------------------------------- lighttpd (one template)
# start_lighttpd NAME APP-COMMAND ENV-PAIRS: prints nothing, sets LPID_<NAME>, LPORT_<NAME>
start_lighttpd() {
    local name=$1 bin=$2 envs=$3 port dir pid
    port=$(free_port)
    dir=$TMP/lighttpd-$name
    mkdir -p "$dir/docroot"
    cat >"$dir/lighttpd.conf" <<EOF
server.modules += ( "mod_fastcgi" )
server.document-root = "$dir/docroot"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
server.stream-response-body = 2
fastcgi.server = ( "/" => ((
    "socket"          => "$dir/app.sock",
    "bin-path"        => "$bin",
    "max-procs"       => $LIGHTTPD_MAX_PROCS,
    "check-local"     => "disable",
    "bin-environment" => ( $envs ),
)))
EOF
    lighttpd -D -f "$dir/lighttpd.conf" >"$dir/stdout.log" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    printf -v "LPID_$name" '%s' "$pid"
    printf -v "LPORT_$name" '%s' "$port"
    # wait until lighttpd listens and has spawned its processes
    local i
    for i in $(seq 100); do
        alive "$pid" || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            [ "$(children_of "$pid" | wc -l)" -ge "$LIGHTTPD_MAX_PROCS" ]; then
            return 0
        fi
        sleep 0.1
    done
    warn "lighttpd ($name) did not come up:"
    tail -20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null
    return 1
}

# ---------------------------------------------------------------- results
RES=$TMP/results.tsv
: >"$RES"
# columns: scenario conns rps p50 p99 non2xx sockerr cpu_total cpu_app cpu_upstream upconn_per_req requests other%
declare -A LABEL=(
    [direct]="wrk -> nginx fake (JSON)"
    [direct-sse]="wrk -> nginx fake (SSE)"
    [floor]="lighttpd -> fcgi-hello (floor)"
    [floor-paced]="lighttpd -> fcgi-hello SSE paced (floor)"
    [mock]="lighttpd -> sluice -> mock"
    [fake]="lighttpd -> sluice -> nginx fake"
    [stream]="lighttpd -> sluice -> nginx SSE (stream)"
    [paced]="lighttpd -> sluice -> nginx SSE paced"
    [vkey-master]="sluice+db -> nginx fake, master key"
    [vkey]="sluice+db -> nginx fake, virtual key"
    [vkey-limits]="sluice+db -> nginx fake, key with limits"
)
WRK_KEY=$KEY        # the bearer key wrk sends (the vkey scenario switches it)

# run_wrk NAME CONNS URL SCRIPT MODEL SECONDS: runs wrk, leaves its WRKSTAT fields in W_*
run_wrk() {
    local name=$1 c=$2 url=$3 script=$4 model=$5 secs=$6 t line kv
    t=$((c < 2 ? c : 2))
    BENCH_MODEL=$model BENCH_KEY=$WRK_KEY wrk -t"$t" -c"$c" -d"${secs}s" --timeout 10s \
        -s "$HERE/$script" "$url" >"$TMP/wrk-$name-$c.txt" 2>&1
    line=$(grep '^WRKSTAT ' "$TMP/wrk-$name-$c.txt" | tail -1)
    W_requests=0 W_duration_us=1 W_err_connect=0 W_err_read=0 W_err_write=0 W_err_status=0
    W_err_timeout=0 W_p50_us=0 W_p99_us=0
    if [ -z "$line" ]; then
        warn "wrk ($name, c=$c) printed no summary:"
        tail -5 "$TMP/wrk-$name-$c.txt" >&2
        return 1
    fi
    for kv in ${line#WRKSTAT }; do
        printf -v "W_${kv%%=*}" '%s' "${kv#*=}"
    done
}

# measure NAME CONNS URL SCRIPT MODEL WEB-PID APP-PIDS...
# WEB-PID is the front process (lighttpd) or "-" for wrk -> nginx directly.
# MEASURE_SERVERS: more pids of this benchmark (MariaDB, memcached) whose CPU
# is not noise; it is not in cpu/req either (the vkey scenario reports it).
measure() {
    local name=$1 c=$2 url=$3 script=$4 model=$5 web=$6
    shift 6
    local apps=("$@") before_all before_app before_up after_all after_app after_up acc0 acc1
    local up_pids sys0 sys1 kids0 t0 t1 srv0 srv1
    up_pids=$(nginx_pids)
    # shellcheck disable=SC2086
    srv0=$(cpu_ticks ${MEASURE_SERVERS:-})
    # shellcheck disable=SC2086
    before_up=$(cpu_ticks $up_pids)
    if [ "$web" = - ]; then
        before_all=$before_up
        before_app=$before_up
    else
        before_all=$(cpu_ticks "$web" "${apps[@]}")
        before_app=$(cpu_ticks "${apps[@]}")
    fi
    acc0=$(nginx_accepts)
    child_ticks
    kids0=$CHILD_TICKS
    sys0=$(sys_ticks)
    t0=$(date +%s%N)
    run_wrk "$name" "$c" "$url" "$script" "$model" "$BENCH_SECONDS" || return 1
    t1=$(date +%s%N)
    sys1=$(sys_ticks)
    # shellcheck disable=SC2086
    srv1=$(cpu_ticks ${MEASURE_SERVERS:-})
    child_ticks
    acc1=$(nginx_accepts)
    # shellcheck disable=SC2086
    after_up=$(cpu_ticks $up_pids)
    if [ "$web" = - ]; then
        after_all=$after_up
        after_app=$after_up
    else
        after_all=$(cpu_ticks "$web" "${apps[@]}")
        after_app=$(cpu_ticks "${apps[@]}")
    fi
    awk -v n="$name" -v c="$c" -v r="$W_requests" -v d="$W_duration_us" \
        -v p50="$W_p50_us" -v p99="$W_p99_us" -v bad="$W_err_status" \
        -v sock="$((W_err_connect + W_err_read + W_err_write + W_err_timeout))" \
        -v all="$((after_all - before_all))" -v app="$((after_app - before_app))" \
        -v up="$((after_up - before_up))" -v acc="$((acc1 - acc0 - 1))" -v hz="$HZ" -v web="$web" \
        -v sys="$((sys1 - sys0))" -v kids="$((CHILD_TICKS - kids0 + srv1 - srv0))" -v ns="$((t1 - t0))" -v ncpu="$NCPU" '
        BEGIN {
            us = 1e6 / hz; rq = r > 0 ? r : 1
            if (acc < 0) acc = 0   # (the -1 above: the stub_status query itself)
            rps = r * 1e6 / d
            cpu_all = all * us / rq; cpu_app = app * us / rq; cpu_up = up * us / rq
            if (web == "-") { cpu_app = "-"; cpu_up = "-"; upc = "-" } else upc = sprintf("%.3f", acc / rq)
            if (n == "mock" || n ~ /^floor/) { cpu_up = "-"; upc = "-" }
            # CPU the machine spent on anything but this benchmark, in % of
            # all cores over the run: the noise indicator
            ours = kids + up + (web == "-" ? 0 : all)
            other = 100 * (sys - ours) / (ns / 1e9 * hz * ncpu)
            if (other < 0) other = 0
            printf "%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%d\t%.0f\n", n, c, rps, p50, p99, bad, sock,
                cpu_all, (cpu_app == "-" ? "-" : sprintf("%.1f", cpu_app)),
                (cpu_up == "-" ? "-" : sprintf("%.1f", cpu_up)), upc, r, other
        }' >>"$RES"
    tail -1 "$RES" | awk -F'\t' -v l="${LABEL[$name]}" '{
        printf "  %-42s c=%-3s %8s req/s  p50 %6s us  p99 %7s us  non2xx %s  sockerr %s  cpu/req %s us  other %s%%\n",
            l, $2, $3, $4, $5, $6, $7, $8, $13 }'
    if [ "$W_err_status" != 0 ] || [ "$((W_err_connect + W_err_read + W_err_write + W_err_timeout))" != 0 ]; then
        warn "$name c=$c: $W_err_status non-2xx answers, socket errors connect $W_err_connect read $W_err_read write $W_err_write timeout $W_err_timeout (wrk output: see below)"
        grep -v '^WRKSTAT' "$TMP/wrk-$name-$c.txt" | sed 's/^/    /' >&2
    fi
}

# check NAME URL BODY: one request with curl, prints the status; leaves the body in $TMP/check-NAME
check() {
    local name=$1 url=$2 body=$3 code
    code=$(curl -s -o "$TMP/check-$name" -w '%{http_code}' --max-time 10 \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$body" "$url")
    printf '%s\n' "$code"
}

chat_body() { # chat_body MODEL [stream]
    if [ "${2:-}" = stream ]; then
        printf '{"model":"%s","messages":[{"role":"user","content":"hello"}],"stream":true}' "$1"
    else
        printf '{"model":"%s","messages":[{"role":"user","content":"hello"}]}' "$1"
    fi
}

warm() { # warm URL SCRIPT MODEL CONNS
    [ "$BENCH_WARMUP" -gt 0 ] 2>/dev/null || return 0
    BENCH_MODEL=$3 BENCH_KEY=$WRK_KEY wrk -t2 -c"$4" -d"${BENCH_WARMUP}s" -s "$HERE/$2" "$1" >/dev/null 2>&1
}

# ================================================================== run
say "sluice benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, $(uname -r)"
say "  wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'), $(lighttpd -v 2>&1 | awk 'NR==1 {print $1}'), $(nginx -v 2>&1 | awk -F': ' '{print $2}'), libfcgi $(pkg-config --modversion fcgi)"
say "  ${BENCH_SECONDS}s per run, connections: $BENCH_CONNS, lighttpd max-procs $LIGHTTPD_MAX_PROCS, fcgi-hello threads $HELLO_THREADS, sluice threads $SLUICE_THREADS..$SLUICE_MAX_THREADS, nginx workers $NGINX_WORKERS"
b=$(busy_pct)
say "  machine busy before start: ${b}%, load average $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews every figure)"
[ "$b" -gt 15 ] && warn "the machine is ${b}% busy: figures will be low and noisy"
say ""

# ---- the fake upstream, checked
code=$(check nginx-json "http://127.0.0.1:$NGINX_PORT$CHAT_PATH" "$(chat_body x)")
[ "$code" = 200 ] || die "nginx fake answered $code"
code=$(check nginx-sse "http://127.0.0.1:$NGINX_SSE_PORT$CHAT_PATH" "$(chat_body x stream)")
[ "$code" = 200 ] || die "nginx SSE fake answered $code"
say "fake upstream: nginx on 127.0.0.1:$NGINX_PORT (chat.completion, $(wc -c <"$TMP/chat.json") bytes) and :$NGINX_SSE_PORT (SSE, $UPSTREAM_EVENTS data events, $(wc -c <"$TMP/stream.sse") bytes)"
if [ -n "$ECHO_MODULE" ]; then
    code=$(check nginx-paced "http://127.0.0.1:$NGINX_PACED_PORT$CHAT_PATH" "$(chat_body x stream)")
    [ "$code" = 200 ] || die "nginx paced SSE fake answered $code"
    say "  and :$NGINX_PACED_PORT (the same SSE events, each written and flushed ${BENCH_EVENT_GAP_MS} ms after the previous one)"
elif want paced; then
    BENCH_SCENARIOS=${BENCH_SCENARIOS//paced/}
fi

# ---- sluice: present?
HAVE_SLUICE=0
if want mock || want fake || want stream || want paced || want vkey || [ "$BENCH_STARTS" != 0 ] || [ "$BENCH_LONG_REQUESTS" != 0 ]; then
    if [ -x "$SLUICE_BIN" ]; then
        HAVE_SLUICE=1
    else
        warn "no sluice binary at $SLUICE_BIN (build it, or set SLUICE_BIN): the sluice scenarios are skipped"
    fi
fi


# ---- (1) wrk -> nginx directly
if want direct; then
    say ""
    say "(1) wrk -> nginx fake directly"
    warm "http://127.0.0.1:$NGINX_PORT$CHAT_PATH" post-chat.lua bench-fake 16
    for c in $BENCH_CONNS; do
        measure direct "$c" "http://127.0.0.1:$NGINX_PORT$CHAT_PATH" post-chat.lua bench-fake -
    done
    for c in $BENCH_CONNS; do
        measure direct-sse "$c" "http://127.0.0.1:$NGINX_SSE_PORT$CHAT_PATH" post-chat-stream.lua bench-fake-stream -
    done
fi

# ---- (2) the floor
if want floor; then
    say ""
    say "(2) wrk -> lighttpd -> fcgi-hello (the floor of the web-server hop; same POST body)"
    if start_lighttpd hello "$HELLO" "\"NTHREADS\" => \"$HELLO_THREADS\""; then
        url="http://127.0.0.1:$LPORT_hello$CHAT_PATH"
        code=$(check floor "$url" "$(chat_body bench-fake)")
        [ "$code" = 200 ] || warn "fcgi-hello through lighttpd answered $code"
        warm "$url" post-chat.lua bench-fake 16
        mapfile -t hello_pids < <(children_of "$LPID_hello")
        for c in $BENCH_CONNS; do
            measure floor "$c" "$url" post-chat.lua bench-fake "$LPID_hello" "${hello_pids[@]}"
        done
        stop_tree "$LPID_hello"
    fi
fi
FLOOR_EVENTS=0
if want floor-paced; then
    say ""
    say "(2b) wrk -> lighttpd -> fcgi-hello streaming 20 SSE events ${BENCH_EVENT_GAP_MS} ms apart, a flush each (the floor of paced streaming)"
    if start_lighttpd hellosse "$HELLO" "\"NTHREADS\" => \"$HELLO_SSE_THREADS\", \"HELLO_GAP_MS\" => \"$BENCH_EVENT_GAP_MS\""; then
        url="http://127.0.0.1:$LPORT_hellosse$CHAT_PATH"
        code=$(check floor-paced "$url" "$(chat_body bench-fake stream)")
        [ "$code" = 200 ] || warn "fcgi-hello (SSE) through lighttpd answered $code"
        FLOOR_EVENTS=$(grep -c '^data:' "$TMP/check-floor-paced")
        warm "$url" post-chat-stream.lua bench-fake 16
        mapfile -t hello_pids < <(children_of "$LPID_hellosse")
        for c in $BENCH_CONNS; do
            measure floor-paced "$c" "$url" post-chat-stream.lua bench-fake "$LPID_hellosse" "${hello_pids[@]}"
        done
        stop_tree "$LPID_hellosse"
    fi
fi

# ---- (3)-(5) through sluice
declare -A RSS_IDLE RSS_LOAD ANON_IDLE ANON_LOAD THR_IDLE
SLUICE_PIDS=()
STREAM_EVENTS=0 PACED_EVENTS=0
if [ "$HAVE_SLUICE" = 1 ] && { want mock || want fake || want stream || want paced || [ "$BENCH_LONG_REQUESTS" != 0 ]; }; then
    say ""
    say "(3)-(6) wrk -> lighttpd -> sluice ($SLUICE_BIN)"
    if start_lighttpd sluice "$SLUICE_BIN --config $CFG" "\"SLUICE_CONFIG\" => \"$CFG\""; then
        sleep 0.5
        mapfile -t SLUICE_PIDS < <(children_of "$LPID_sluice")
        for p in "${SLUICE_PIDS[@]}"; do
            RSS_IDLE[$p]=$(rss_kb "$p") ANON_IDLE[$p]=$(anon_kb "$p") THR_IDLE[$p]=$(threads_of "$p")
        done
        # where the idle RSS of the first process lives, by mapping
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6); sub(".*/", "", name) }
            /^Rss:/ { rss[name] += $2 }
            END { for (n in rss) if (rss[n] >= 100) printf "%d %s\n", rss[n], n }' \
            "/proc/${SLUICE_PIDS[0]}/smaps" 2>/dev/null | sort -rn | head -10 |
            awk '{ printf "%s%s %s kB", (NR > 1 ? ", " : ""), $2, $1 } END { print "" }' >"$TMP/idle-maps"
        url="http://127.0.0.1:$LPORT_sluice"
        wait_http "$url/health/liveliness" 10 || warn "sluice: GET /health/liveliness gave no 2xx within 10 s"
        for m in mock fake stream paced; do
            case $m in
                mock) body=$(chat_body bench-mock) ;;
                fake) body=$(chat_body bench-fake) ;;
                stream) body=$(chat_body bench-fake-stream stream) ;;
                paced) [ -n "$ECHO_MODULE" ] || continue
                    body=$(chat_body bench-fake-paced stream) ;;
            esac
            code=$(check "sluice-$m" "$url$CHAT_PATH" "$body")
            if [ "$code" != 200 ]; then
                warn "sluice ($m): POST $CHAT_PATH answered $code: $(head -c 300 "$TMP/check-sluice-$m")"
            elif [ $m = stream ] || [ $m = paced ]; then
                ev=$(grep -c '^data:' "$TMP/check-sluice-$m")
                if [ $m = stream ]; then STREAM_EVENTS=$ev; else PACED_EVENTS=$ev; fi
                say "  check: the $([ $m = stream ] && echo canned || echo paced) SSE stream through sluice carried $ev data events (upstream sent $UPSTREAM_EVENTS)"
                [ "$ev" -gt 0 ] || warn "sluice ($m): 200 but no data: events: $(head -c 300 "$TMP/check-sluice-$m")"
            else
                say "  check: $m answered 200, $(wc -c <"$TMP/check-sluice-$m") bytes"
            fi
        done
        for m in mock fake stream paced; do
            want $m || continue
            case $m in
                mock) script=post-chat.lua model=bench-mock ;;
                fake) script=post-chat.lua model=bench-fake ;;
                stream) script=post-chat-stream.lua model=bench-fake-stream ;;
                paced) script=post-chat-stream.lua model=bench-fake-paced ;;
            esac
            warm "$url$CHAT_PATH" $script $model 16
            for c in $BENCH_CONNS; do
                mapfile -t now_pids < <(children_of "$LPID_sluice")
                measure $m "$c" "$url$CHAT_PATH" $script $model "$LPID_sluice" "${now_pids[@]}"
                mapfile -t after_pids < <(children_of "$LPID_sluice")
                if [ "${now_pids[*]}" != "${after_pids[*]}" ]; then
                    warn "sluice processes changed during $m c=$c: before ${now_pids[*]}, after ${after_pids[*]} (a crash and a respawn by lighttpd?)"
                fi
                alive "$LPID_sluice" || { warn "lighttpd died"; break 2; }
            done
        done
        sleep 2
        for p in "${SLUICE_PIDS[@]}"; do RSS_LOAD[$p]=$(rss_kb "$p") ANON_LOAD[$p]=$(anon_kb "$p"); done
    else
        HAVE_SLUICE=0
    fi
fi

# ---- (7) virtual keys: the same deployment with MariaDB + memcached, master key vs virtual key
VRES=$TMP/vkey.tsv
: >"$VRES"
# columns: conns who requests questions select insert update delete replace insert_select begin commit
#          rollback stmt_execute stmt_prepare db_cpu_us_per_req mc_get mc_set mc_incr_decr drain_seconds
#          mc_connections (new memcached connections, less the stats one) mc_cpu_us_per_req
vkey_sample() { # vkey_sample FILE-PREFIX: MariaDB and memcached counters and their CPU ticks
    db_counters "$1.db"
    mc_counters "$1.mc"
    cpu_ticks "$DB_PID" >"$1.cpu"
    cpu_ticks "$MC_PID" >"$1.mccpu"
}
vkey_spooled() { # how often sluice said it spooled spend records (its queue was full)
    cat "$TMP/lighttpd-vkey/stdout.log" "$TMP/lighttpd-vkey/error.log" 2>/dev/null | grep -c 'spend: .* spooled'
}
vkey_row() { # vkey_row CONNS WHO BEFORE AFTER REQUESTS DRAIN-SECONDS
    awk -v c="$1" -v who="$2" -v r="$5" -v drain="$6" -v hz="$HZ" -v cpu0="$(cat "$3.cpu")" -v cpu1="$(cat "$4.cpu")" \
        -v mcc0="$(cat "$3.mccpu")" -v mcc1="$(cat "$4.mccpu")" \
        -v f1="$3.db" -v f2="$3.mc" -v f3="$4.db" -v f4="$4.mc" '
        { k = (FILENAME == f1 ? 1 : FILENAME == f2 ? 2 : FILENAME == f3 ? 3 : 4); v[k, $1] = $2 }
        END {
            n = split("Questions Com_select Com_insert Com_update Com_delete Com_replace Com_insert_select " \
                "Com_begin Com_commit Com_rollback Com_stmt_execute Com_stmt_prepare", names, " ")
            line = c "\t" who "\t" r
            for (i = 1; i <= n; i++) {
                d = v[3, names[i]] - v[1, names[i]]
                # the SHOW GLOBAL STATUS of the drain and the sample are ours, not sluice
                if (names[i] == "Questions") d -= v[3, "Com_show_status"] - v[1, "Com_show_status"]
                line = line "\t" d
            }
            line = line "\t" sprintf("%.1f", (cpu1 - cpu0) * 1e6 / hz / (r > 0 ? r : 1))
            line = line "\t" (v[4, "cmd_get"] - v[2, "cmd_get"]) "\t" (v[4, "cmd_set"] - v[2, "cmd_set"])
            incr = 0
            split("incr_hits incr_misses decr_hits decr_misses", m, " ")
            for (i = 1; i <= 4; i++) incr += v[4, m[i]] - v[2, m[i]]
            print line "\t" incr "\t" drain "\t" (v[4, "total_connections"] - v[2, "total_connections"] - 1) \
                "\t" sprintf("%.1f", (mcc1 - mcc0) * 1e6 / hz / (r > 0 ? r : 1))
        }' "$3.db" "$3.mc" "$4.db" "$4.mc" >>"$VRES"
}
# vkey_drain: waits until the spend writers are done: MariaDB's Com_stmt_execute
# (sluice's statements, not our SHOW) stays the same for 1.5 s (they flush
# every 1 s), at most 60 s. Prints the seconds it took.
vkey_drain() {
    local a b t0 same=0 i
    t0=$(date +%s%N)
    a=$(db_root -e "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'" | awk '{print $2}')
    for i in $(seq 120); do
        sleep 0.5
        b=$(db_root -e "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'" | awk '{print $2}')
        if [ "$a" = "$b" ]; then same=$((same + 1)); else same=0; fi
        a=$b
        [ $same -ge 3 ] && break
    done
    awk -v ns="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.1f\n", ns / 1e9 - 1.5 }'
}
if [ "$HAVE_SLUICE" = 1 ] && want vkey; then
    say ""
    say "(7) wrk -> lighttpd -> sluice with MariaDB + memcached: the master key, then a virtual key"
    SLUICECTL=$(dirname "$SLUICE_BIN")/sluicectl
    VKEY=
    if [ ! -x "$SLUICECTL" ]; then
        warn "no sluicectl next to $SLUICE_BIN: scenario vkey skipped"
    elif start_mariadb && start_memcached; then
        VCFG=$TMP/config-vkey.yaml
        # the same config plus the database and the cache
        sed -e "s|^general_settings: { master_key: $KEY }\$|general_settings: { master_key: $KEY, database_url: \"$DB_URL\", memcached_servers: [\"127.0.0.1:$MC_PORT\"] }|" \
            -e "s|^sluice_settings: { \(.*\) }\$|sluice_settings: { \1, spend_spool_dir: \"$TMP/spool\" }|" \
            "$CFG" >"$VCFG"
        grep -q database_url "$VCFG" || die "could not add database_url to the config"
        ctl() { SLUICE_SCHEMA_DIR=$ROOT/schema DATABASE_URL='' "$SLUICECTL" --config "$VCFG" "$@"; }
        if ctl migrate >"$TMP/migrate.log" 2>&1 &&
            ctl team create --id bench-team --max-budget 1000000000 >/dev/null &&
            ctl user create --id bench-user --team bench-team --max-budget 1000000000 >/dev/null; then
            VKEY=$(ctl key create --alias bench --team bench-team --user bench-user --max-budget 1000000000 |
                sed -n 's/^key: //p')
        fi
        [ -n "$VKEY" ] || warn "could not migrate or create the key: $(tail -5 "$TMP/migrate.log")"
        # BENCH_VKEY_LIMITS=1: the key also has rpm, tpm and parallel limits (never reached)
        if [ -n "$VKEY" ] && [ "${BENCH_VKEY_LIMITS:-0}" = 1 ]; then
            db_root sluice -e "UPDATE LiteLLM_VerificationToken SET rpm_limit = 1000000000,
                tpm_limit = 1000000000000, max_parallel_requests = 1000000 WHERE key_alias = 'bench'" ||
                warn "could not set the key's limits"
        fi
        # BENCH_VKEY_LIMITS=compare: a second key, its own team and user, all with limits
        VKEYL=
        if [ -n "$VKEY" ] && [ "${BENCH_VKEY_LIMITS:-0}" = compare ] &&
            ctl team create --id bench-team-l --max-budget 1000000000 >/dev/null &&
            ctl user create --id bench-user-l --team bench-team-l --max-budget 1000000000 >/dev/null; then
            VKEYL=$(ctl key create --alias bench-l --team bench-team-l --user bench-user-l \
                --max-budget 1000000000 | sed -n 's/^key: //p')
            for t in "LiteLLM_VerificationToken WHERE key_alias = 'bench-l'" \
                "LiteLLM_TeamTable WHERE team_id = 'bench-team-l'" "LiteLLM_UserTable WHERE user_id = 'bench-user-l'"; do
                db_root sluice -e "UPDATE ${t%% WHERE*} SET rpm_limit = 1000000000, tpm_limit = 1000000000000,
                    max_parallel_requests = 1000000 WHERE ${t#* WHERE }" || warn "could not set the limits of ${t%% *}"
            done
            [ -n "$VKEYL" ] || warn "could not create the key with limits"
        fi
    fi
    if [ -n "$VKEY" ] && start_lighttpd vkey "$SLUICE_BIN --config $VCFG" "\"SLUICE_CONFIG\" => \"$VCFG\""; then
        url="http://127.0.0.1:$LPORT_vkey"
        wait_http "$url/health/liveliness" 10 || warn "sluice (vkey): GET /health/liveliness gave no 2xx within 10 s"
        ok=1
        for who in master vkey; do
            k=$KEY
            [ $who = vkey ] && k=$VKEY
            code=$(curl -s -D "$TMP/check-vkey-$who.h" -o "$TMP/check-vkey-$who" -w '%{http_code}' --max-time 10 \
                -H "Authorization: Bearer $k" -H 'Content-Type: application/json' -d "$(chat_body bench-fake)" "$url$CHAT_PATH")
            if [ "$code" != 200 ]; then
                warn "sluice (vkey, $who key): POST $CHAT_PATH answered $code: $(head -c 300 "$TMP/check-vkey-$who")"
                ok=0
            fi
        done
        cost=$(sed -n 's/^x-litellm-response-cost: *\([^\r]*\).*/\1/Ip' "$TMP/check-vkey-vkey.h")
        say "  check: both keys answered 200; the virtual key's request cost ${cost:-?} USD (built-in price of gpt-4o-mini);"
        say "  the key has max_budget 1e9 USD, its team and user too; MariaDB pid $DB_PID, memcached pid $MC_PID"
        if [ $ok = 1 ]; then
            for who in master vkey vkeylim; do
                WRK_KEY=$KEY
                [ $who = vkey ] && WRK_KEY=$VKEY
                [ $who = vkeylim ] && { [ -n "$VKEYL" ] || continue; WRK_KEY=$VKEYL; }
                warm "$url$CHAT_PATH" post-chat.lua bench-fake 16
            done
            vkey_drain >/dev/null
            MEASURE_SERVERS="$DB_PID $MC_PID"
            whos="master vkey"
            [ -n "$VKEYL" ] && for _ in $(seq "${BENCH_VKEY_ROUNDS:-2}"); do whos="$whos vkey vkeylim"; done
            for c in $BENCH_CONNS; do
                for who in $whos; do
                    WRK_KEY=$KEY name=vkey-master
                    [ $who = vkey ] && WRK_KEY=$VKEY name=vkey
                    [ $who = vkeylim ] && WRK_KEY=$VKEYL name=vkey-limits
                    mapfile -t now_pids < <(children_of "$LPID_vkey")
                    vkey_sample "$TMP/s0"
                    measure $name "$c" "$url$CHAT_PATH" post-chat.lua bench-fake "$LPID_vkey" "${now_pids[@]}"
                    spooled0=$(vkey_spooled)
                    drain=$(vkey_drain)
                    vkey_sample "$TMP/s1"
                    vkey_row "$c" "$who" "$TMP/s0" "$TMP/s1" "$W_requests" "$drain"
                    spooled=$(vkey_spooled)
                    [ "$spooled" -gt "$spooled0" ] && warn "vkey $who c=$c: the spend queue overflowed to the spool $((spooled - spooled0)) time(s) (the writer fell behind)"
                done
            done
            MEASURE_SERVERS='' WRK_KEY=$KEY
            rows=$(db_root sluice -e "SELECT COUNT(*) FROM LiteLLM_SpendLogs")
            say "  LiteLLM_SpendLogs holds $rows rows after the runs"
        fi
        stop_tree "$LPID_vkey"
    fi
fi

# ================================================================== table
say ""
say "Results (${BENCH_SECONDS}s per run; latencies in microseconds; cpu = CPU time per request of the"
say "front + app processes: lighttpd + fcgi-hello/sluice, or nginx for the direct rows)"
say ""
awk -F'\t' '
BEGIN {
    L["direct"] = "wrk -> nginx fake (JSON)"; L["direct-sse"] = "wrk -> nginx fake (SSE)"
    L["floor"] = "lighttpd -> fcgi-hello (floor)"; L["mock"] = "lighttpd -> sluice -> mock"
    L["floor-paced"] = "lighttpd -> fcgi-hello SSE paced"
    L["fake"] = "lighttpd -> sluice -> nginx fake"; L["stream"] = "lighttpd -> sluice -> nginx SSE"
    L["paced"] = "lighttpd -> sluice -> nginx SSE paced"
    L["vkey-master"] = "sluice+db -> nginx fake, master key"; L["vkey"] = "sluice+db -> nginx fake, virtual key"
    L["vkey-limits"] = "sluice+db -> nginx fake, key with limits"
    printf "%-38s %5s %9s %8s %8s %7s %7s %9s %9s %9s %8s %6s\n", "scenario", "conns", "req/s", "p50", "p99",
        "non2xx", "sockerr", "cpu/req", "app/req", "upstr/req", "upconn/r", "other"
    printf "%-38s %5s %9s %8s %8s %7s %7s %9s %9s %9s %8s %6s\n", "--------", "-----", "-----", "---", "---",
        "------", "-------", "-------", "-------", "---------", "--------", "-----"
}
{ printf "%-38s %5s %9s %8s %8s %7s %7s %9s %9s %9s %8s %5s%%\n", L[$1], $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13 }
' "$RES"
say ""
say "  cpu/req   = (utime+stime delta of lighttpd + app processes) / requests, us"
say "  app/req   = the same for the app processes alone (fcgi-hello or sluice), us"
say "  upstr/req = CPU of the nginx fake per request (not counted in cpu/req), us"
say "  upconn/r  = TCP connections the fake accepted per request (1.000 = no upstream keep-alive)"
say "  other     = CPU the machine spent on anything but this benchmark during the run, % of all cores"
say "              (above a few % the row is disturbed: run again)"

# ================================================================== derived figures
row() { awk -F'\t' -v n="$1" -v c="$2" -v k="$3" '$1 == n && $2 == c { print $k }' "$RES"; }
say ""
say "Figures against the gateway-core targets (2 cores, c=64):"
f64=$(row fake 64 3) h64=$(row floor 64 3)
if [ -n "$f64" ] && [ -n "$h64" ]; then
    awk -v f="$f64" -v h="$h64" 'BEGIN { printf "  throughput sluice->fake / floor          %5.1f %%   (%s / %s req/s; target >= 40 %%)\n", 100 * f / h, f, h }'
fi
cf=$(row fake 64 8) af=$(row fake 64 9)
cm=$(row mock 64 8) am=$(row mock 64 9) ch=$(row floor 64 8) ah=$(row floor 64 9)
[ -n "$cf" ] && say "  CPU per forwarded request               $(printf '%6s' "$cf") us  (lighttpd + sluice; sluice alone $af us; target <= 100 us)"
for m in stream paced; do
    cs=$(row $m 64 8) as=$(row $m 64 9)
    [ -n "$cs" ] || continue
    if [ $m = stream ]; then
        what="streamed request (one read)" ev=$STREAM_EVENTS
    else
        what="streamed request (paced)" ev=$PACED_EVENTS
    fi
    say "  CPU per $(printf '%-31s' "$what") $(printf '%6s' "$cs") us  (lighttpd + sluice; sluice alone $as us)"
    if [ -n "$cf" ]; then
        [ "$ev" -gt 0 ] 2>/dev/null || ev=$UPSTREAM_EVENTS
        awk -v s="$cs" -v f="$cf" -v sa="$as" -v fa="$af" -v e="$ev" -v m="$m" 'BEGIN {
            printf "  streaming cost per event, %-13s %6.2f us  ((%s - %s) / %d events; sluice %.2f + lighttpd %.2f; target <= 2 us)\n",
                m, (s - f) / e, s, f, e, (sa - fa) / e, ((s - sa) - (f - fa)) / e }'
    fi
done
cs=$(row floor-paced 64 8) as=$(row floor-paced 64 9)
if [ -n "$cs" ] && [ -n "$ch" ] && [ "$FLOOR_EVENTS" -gt 0 ] 2>/dev/null; then
    awk -v s="$cs" -v f="$ch" -v sa="$as" -v fa="$ah" -v e="$FLOOR_EVENTS" 'BEGIN {
        printf "  floor: cost per paced event            %6.2f us  ((%s - %s) / %d events, fcgi-hello %.2f + lighttpd %.2f: the web-server hop alone)\n",
            (s - f) / e, s, f, e, (sa - fa) / e, ((s - sa) - (f - fa)) / e }'
fi
[ -n "$cm" ] && say "  CPU per mock request                    $(printf '%6s' "$cm") us  (sluice alone $am us)"
[ -n "$ch" ] && say "  CPU per floor request                   $(printf '%6s' "$ch") us  (fcgi-hello alone $ah us)"

# ---- virtual keys (issue 4)
if [ -s "$VRES" ]; then
    say ""
    say "Virtual keys (issue 4): one deployment with MariaDB + memcached, bench-fake, the master key vs a"
    say "virtual key (auth from the key cache, budget check of key, team and user, spend logged):"
    for c in $BENCH_CONNS; do
        m=$(row vkey-master "$c" 3) v=$(row vkey "$c" 3 | head -1)
        if [ -z "$m" ] || [ -z "$v" ]; then continue; fi
        awk -v m="$m" -v v="$v" -v c="$c" -v cm="$(row vkey-master "$c" 8)" -v cv="$(row vkey "$c" 8 | head -1)" 'BEGIN {
            printf "  c=%-3s virtual key / master key  %5.1f %%   (%s / %s req/s; cpu/req %s vs %s us; target >= 90 %%)\n",
                c, 100 * v / m, v, m, cv, cm }'
        l=$(row vkey-limits "$c" 3)
        if [ -n "$l" ]; then
            # every round's key without limits against the key with them (sums: noise evens out)
            awk -v c="$c" -v v="$(row vkey "$c" 3 | paste -sd' ')" -v l="$(echo $l)" \
                -v cv="$(row vkey "$c" 8 | paste -sd' ')" -v cl="$(row vkey-limits "$c" 8 | paste -sd' ')" 'BEGIN {
                nv = split(v, a, " "); nl = split(l, b, " "); split(cv, x, " "); split(cl, y, " ")
                for (i = 2; i <= nv; i++) { sv += a[i]; scv += x[i] }   # the first row is before the rounds
                for (i = 1; i <= nl; i++) { sl += b[i]; scl += y[i] }
                if (nv < 2 || nl < 1) exit
                printf "  c=%-3s limits on / off           %5.1f %%   (%.0f / %.0f req/s, mean of %d rounds; cpu/req %.1f vs %.1f us; target >= 90 %%)\n",
                    c, 100 * (sl / nl) / (sv / (nv - 1)), sl / nl, sv / (nv - 1), nl, scl / nl, scv / (nv - 1) }'
        fi
        v=$(row vkey "$c" 3 | head -1)
        f=$(row fake "$c" 3)
        [ -n "$f" ] && awk -v f="$f" -v v="$v" -v c="$c" 'BEGIN {
            printf "  c=%-3s virtual key / no database %5.1f %%   (%s / %s req/s of row (4), the same requests without MariaDB)\n",
                c, 100 * v / f, v, f }'
    done
    say "  database statements per request: MariaDB's global status, deltas from before each measured"
    say "  run to when the spend writers are done after it (drain: seconds they still wrote after wrk"
    say "  stopped), divided by wrk's requests; memcached commands per request (get, set/add, incr/decr);"
    say "  the CPU of mariadbd and of memcached per request, drain included (not in cpu/req above):"
    printf '  %-5s %-7s %9s %9s %7s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s %7s %7s %7s %7s %8s %8s %6s\n' conns key requests \
        Questions select insert update delete replace ins-sel begin commit rollback stmt_exe stmt_pre \
        mc_get mc_set mc_incr mc_conn db_cpu mc_cpu drain
    awk -F'\t' '{
        r = ($3 > 0 ? $3 : 1)
        printf "  %-5s %-7s %9d", $1, $2, $3
        for (i = 4; i <= 15; i++) printf " %" (i == 4 ? 9 : (i >= 14 ? 8 : 7)) ".3f", $i / r
        printf " %7.3f %7.3f %7.3f %7.3f %6sus %6sus %5ss\n", $17 / r, $18 / r, $19 / r, $21 / r, $16, $22, $20
    }' "$VRES"
    say "  (Questions counts every statement a client sent, prepared executes included; the Com_* columns"
    say "  count them by kind; the benchmark's own SHOW STATUS are taken out of Questions)"
fi

# ================================================================== RSS: long run
if [ "$HAVE_SLUICE" = 1 ] && alive "${LPID_sluice:-0}"; then
    declare -A RSS_SEG
    seg_done=()
    if [ "$BENCH_LONG_REQUESTS" -gt 0 ] 2>/dev/null; then
        say ""
        say "Long run: $BENCH_LONG_REQUESTS requests at c=$BENCH_LONG_CONNS, cycling fake / stream / mock (bench/post-mix.lua);"
        say "  the target is flat RSS over 1000000 requests: set BENCH_LONG_REQUESTS=1000000"
        url="http://127.0.0.1:$LPORT_sluice$CHAT_PATH"
        # rate estimate from a 2 s probe
        run_wrk long-probe "$BENCH_LONG_CONNS" "$url" post-mix.lua - 2
        rate=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN { x = r * 1e6 / d; print (x < 100 ? 100 : int(x)) }')
        total=0
        seg_target=$(((BENCH_LONG_REQUESTS + BENCH_LONG_SEGMENTS - 1) / BENCH_LONG_SEGMENTS))
        long_bad=0 long_sock=0
        i=0
        while [ "$total" -lt "$BENCH_LONG_REQUESTS" ] && [ $i -lt $((BENCH_LONG_SEGMENTS * 3)) ]; do
            i=$((i + 1))
            want_n=$((BENCH_LONG_REQUESTS - total < seg_target ? BENCH_LONG_REQUESTS - total : seg_target))
            secs=$(((want_n + rate - 1) / rate))
            [ "$secs" -lt 1 ] && secs=1
            run_wrk "long-$i" "$BENCH_LONG_CONNS" "$url" post-mix.lua - "$secs" || break
            total=$((total + W_requests))
            long_bad=$((long_bad + W_err_status))
            long_sock=$((long_sock + W_err_connect + W_err_read + W_err_write + W_err_timeout))
            rate=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN { x = r * 1e6 / d; print (x < 100 ? 100 : int(x)) }')
            seg_done+=("$total")
            mapfile -t cur < <(children_of "$LPID_sluice")
            line="  after $(printf '%8d' "$total") requests ($(printf '%6d' "$rate") req/s, non2xx $W_err_status, sockerr $((W_err_connect + W_err_read + W_err_write + W_err_timeout))): RSS"
            for p in "${SLUICE_PIDS[@]}"; do
                RSS_SEG[$p,$total]=$(rss_kb "$p")
                line="$line  pid $p ${RSS_SEG[$p,$total]} kB ($(threads_of "$p") thr)"
            done
            say "$line"
            if [ "${cur[*]}" != "${SLUICE_PIDS[*]}" ]; then
                warn "sluice processes changed during the long run: were ${SLUICE_PIDS[*]}, now ${cur[*]}"
            fi
        done
        [ "$long_bad" != 0 ] || [ "$long_sock" != 0 ] &&
            warn "long run: $long_bad non-2xx answers, $long_sock socket errors"
        sleep 2
    fi
    say ""
    say "RSS per sluice process, kB: VmRSS (RssAnon, the private part; the rest is mostly shared library pages)"
    say "  target: <= 10240 kB VmRSS idle, and flat over 1 M requests"
    # flatness: growth over the second half of the long run, after the pool
    # and the allocator have settled
    mid=
    if ((${#seg_done[@]} > 1)); then
        for t in "${seg_done[@]}"; do
            [ "$t" = "${seg_done[-1]}" ] && break
            mid=$t
            [ "$t" -ge $((BENCH_LONG_REQUESTS / 2)) ] && break
        done
    fi
    printf '  %-8s %16s %16s %16s %12s %9s\n' pid "idle" "after load" "after long run" "2nd half" "threads"
    for p in "${SLUICE_PIDS[@]}"; do
        first=- last=- growth=- lastanon=-
        if [ -n "$mid" ]; then
            first=${RSS_SEG[$p,$mid]:--}
            last=$(rss_kb "$p") lastanon=$(anon_kb "$p")
            if [ "$first" != - ] && [ "$last" != - ] && [ -n "$last" ]; then
                growth="$((last - first))"
            fi
        fi
        printf '  %-8s %16s %16s %16s %12s %9s\n' "$p" "${RSS_IDLE[$p]:--} (${ANON_IDLE[$p]:--})" \
            "${RSS_LOAD[$p]:--} (${ANON_LOAD[$p]:--})" "$last ($lastanon)" "$growth" \
            "${THR_IDLE[$p]:--} -> $(threads_of "$p")"
    done
    [ -n "$mid" ] && say "  (2nd half = VmRSS growth from request $mid to the end of the long run, kB)"
    [ -s "$TMP/idle-maps" ] && say "  idle VmRSS of pid ${SLUICE_PIDS[0]} by mapping: $(cat "$TMP/idle-maps")"
fi
if [ -n "${LPID_sluice:-}" ]; then
    errs=$(grep -v -c -e '^\s*$' "$TMP/lighttpd-sluice/error.log" 2>/dev/null || echo 0)
    if [ "$errs" -gt 2 ] 2>/dev/null; then
        say ""
        say "lighttpd (sluice) error log: $errs lines; the last ones:"
        tail -15 "$TMP/lighttpd-sluice/error.log" | cut -c1-200 | sed 's/^/  /'
    fi
    t0=$(date +%s%N)
    stop_tree "$LPID_sluice"
    say ""
    say "lighttpd and its sluice processes stopped (SIGTERM) in $((($(date +%s%N) - t0) / 1000000)) ms"
fi

# ================================================================== start to first answer
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
if [ "$BENCH_STARTS" -gt 0 ] 2>/dev/null; then
    say ""
    say "Start to first answer (exec -> first 2xx to FastCGI GET /health/liveliness, standalone --listen; $BENCH_STARTS starts)"
    say "  (machine busy just before: $(busy_pct)%)"
    for who in fcgi-hello sluice; do
        [ $who = sluice ] && [ "$HAVE_SLUICE" != 1 ] && continue
        : >"$TMP/starts-$who"
        for i in $(seq "$BENCH_STARTS"); do
            port=$(free_port)
            if [ $who = sluice ]; then
                cmd=("$SLUICE_BIN" --config "$CFG" --listen "127.0.0.1:$port")
            else
                cmd=("$HELLO" --listen "127.0.0.1:$port")
            fi
            if "$PING" -q -t 5000 "127.0.0.1:$port" -- "${cmd[@]}" >"$TMP/start.out" 2>"$TMP/start.err"; then
                sed -n 's/.*start_to_first_answer_us=\([0-9]*\).*/\1/p' "$TMP/start.out" >>"$TMP/starts-$who"
            else
                warn "$who start $i: $(tail -3 "$TMP/start.err" | tr '\n' ' ')"
            fi
        done
        n=$(wc -l <"$TMP/starts-$who")
        if [ "$n" -gt 0 ]; then
            med=$(median <"$TMP/starts-$who")
            all=$(sort -n "$TMP/starts-$who" | awk '{ printf "%s%.1f", (NR > 1 ? " " : ""), $1 / 1000 }')
            awk -v m="$med" -v w="$who" -v a="$all" -v n="$n" 'BEGIN {
                printf "  %-10s median %7.2f ms over %d starts  (all, ms: %s)%s\n", w, m / 1000, n, a,
                    (w == "sluice" ? "; target <= 20 ms" : "") }'
        fi
    done
fi
say ""
say "machine after the run (nothing of it running but an idle nginx): busy $(busy_pct)%, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "bench: done (figures only; nothing here passes or fails)"
exit 0
