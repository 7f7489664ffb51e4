# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
# bench/lib.sh — common set-up for the sluice benchmarks.

# Shared by bench/run.sh and bench/callgrind.sh (sourced, not run): package
# check, fixture build, process bookkeeping, helpers, the canned upstream
# bodies, the nginx fake upstream, the sluice config, and the private MariaDB
# and memcached of the virtual-key scenario (started only when asked for).
# The sourcing script sets HERE (the bench directory) and may set
# BENCH_EXTRA_PKGS ("command:package ...") before sourcing.

ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out

NGINX_WORKERS=${NGINX_WORKERS:-1}
BENCH_EVENT_GAP_MS=${BENCH_EVENT_GAP_MS:-1}
SLUICE_THREADS=${SLUICE_THREADS:-16}
SLUICE_MAX_THREADS=${SLUICE_MAX_THREADS:-128}
BENCH_KEEP=${BENCH_KEEP:-0}
SLUICE_BIN=${SLUICE_BIN:-$ROOT/sluice}
case $SLUICE_BIN in /*) ;; *) SLUICE_BIN=$PWD/$SLUICE_BIN ;; esac

KEY=sk-bench
CHAT_PATH=/v1/chat/completions

say() { printf '%s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- packages
PATH=$PATH:/usr/sbin:/sbin
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v nginx >/dev/null || need_pkgs+=(nginx-light)
command -v lighttpd >/dev/null || need_pkgs+=(lighttpd)
command -v gcc >/dev/null || need_pkgs+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v awk >/dev/null || need_pkgs+=(gawk)
pkg-config --exists fcgi 2>/dev/null || need_pkgs+=(libfcgi-dev)
# nginx's echo module paces the SSE events of the "paced" fake (Debian's
# nginx-light depends on it; with another nginx it is installed here)
echo_module() { dpkg -L libnginx-mod-http-echo 2>/dev/null | grep '/ngx_http_echo_module\.so$' | head -1; }
if command -v dpkg >/dev/null && [ -z "$(echo_module)" ]; then
    need_pkgs+=(libnginx-mod-http-echo)
fi
for cp in ${BENCH_EXTRA_PKGS:-}; do
    command -v "${cp%%:*}" >/dev/null || need_pkgs+=("${cp#*:}")
done
if ((${#need_pkgs[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "bench: installing ${need_pkgs[*]}"
        apt-get update -qq >/dev/null || warn "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null ||
            die "apt-get install ${need_pkgs[*]} failed"
    else
        die "missing: ${need_pkgs[*]} (apt-get install ${need_pkgs[*]})"
    fi
fi

# ---------------------------------------------------------------- build the fixtures
mkdir -p "$OUT"
build() { # build SRC OUTPUT EXTRA-ARGS...
    local src=$1 bin=$2
    shift 2
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
        gcc -O2 -Wall -Wextra -o "$bin" "$src" "$@" || die "cannot build $bin"
    fi
}
# shellcheck disable=SC2046
build "$HERE/fcgi-hello.c" "$OUT/fcgi-hello" -pthread $(pkg-config --cflags --libs fcgi)
build "$HERE/fcgi-ping.c" "$OUT/fcgi-ping"
HELLO=$OUT/fcgi-hello
PING=$OUT/fcgi-ping

# ---------------------------------------------------------------- process bookkeeping
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX") || die "mktemp failed"
STARTED=()          # top-level pids we started (nginx master, lighttpd)

children_of() { # pids whose parent is $1
    local f s rest ppid pid
    for f in /proc/[0-9]*/stat; do
        read -r s 2>/dev/null <"$f" || continue
        rest=${s##*) }
        # rest: state ppid ...
        ppid=${rest#* }
        ppid=${ppid%% *}
        if [ "$ppid" = "$1" ]; then
            pid=${f#/proc/}
            printf '%s\n' "${pid%/stat}"
        fi
    done
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_tree() { # stop_tree PID: SIGTERM the pid, then SIGKILL it and its children if they linger
    local pid=$1 kids k i
    alive "$pid" || return 0
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for i in $(seq 30); do
        local any=0
        for k in $kids; do alive "$k" && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
    done
    for k in $kids; do
        if alive "$k"; then
            warn "pid $k ($(tr '\0' ' ' </proc/"$k"/cmdline 2>/dev/null | cut -c1-60)) did not exit on SIGTERM: SIGKILL"
            kill -KILL "$k" 2>/dev/null
        fi
    done
}

SERVERS=()          # MariaDB, memcached: stopped last (sluice flushes its spend on the way out)

cleanup() {
    local p
    trap - EXIT INT TERM HUP
    for p in "${STARTED[@]}" "${SERVERS[@]}"; do stop_tree "$p"; done
    if [ "$BENCH_KEEP" = 1 ]; then
        say "bench: kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- helpers
USED_PORTS=" "
# Ports are drawn below the kernel's ephemeral range (outgoing connections of
# wrk, curl and sluice take their local ports from it, and a port held that
# way cannot be bound even though nothing listens on it), and are checked
# for any TCP socket using them.
read -r EPH_LO EPH_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { EPH_LO=32768 EPH_HI=60999; }
if [ "$EPH_LO" -gt 12000 ]; then
    PORT_BASE=10000 PORT_SPAN=$((EPH_LO - 10000))
else
    PORT_BASE=$((EPH_HI + 1)) PORT_SPAN=$((65000 - EPH_HI))
fi
port_busy() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ] && return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() {
    local p i
    for i in $(seq 200); do
        p=$((PORT_BASE + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
        case $USED_PORTS in *" $p "*) continue ;; esac
        if ! port_busy "$p"; then
            USED_PORTS="$USED_PORTS$p "
            printf '%s\n' "$p"
            return 0
        fi
    done
    die "no free port found"
}

HZ=$(getconf CLK_TCK)
cpu_ticks() { # sum of utime+stime of the given pids, in clock ticks
    local p s rest total=0
    for p in "$@"; do
        read -r s 2>/dev/null <"/proc/$p/stat" || continue
        rest=${s##*) }
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    printf '%s\n' "$total"
}
NCPU=$(nproc)
sys_ticks() { # CPU ticks spent by the whole machine: user + nice + system + steal
    awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat
}
# Sets CHILD_TICKS to the CPU ticks of this shell's finished children (wrk,
# curl, command substitutions). `times` must run in this shell, not in $(...).
child_ticks() {
    times >"$TMP/times"
    CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%d\n", t * hz }' "$TMP/times")
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "-"; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "-"; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "-"; }

wait_http() { # wait_http URL SECONDS [curl args]: until a 2xx answer
    local url=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 20))); do
        curl -s -o /dev/null -f --max-time 2 "$@" "$url" && return 0
        sleep 0.05
    done
    return 1
}

busy_pct() { # CPU busy % of the whole machine over 1 s
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.0f\n", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# ---------------------------------------------------------------- canned upstream bodies
CREATED=1741569952
CHAT_ID=chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT
FP=fp_06737a9306
cat >"$TMP/chat.json" <<EOF
{"id":"$CHAT_ID","object":"chat.completion","created":$CREATED,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today? Ask me about a recipe, the weather or a bit of code and I will do my best to answer.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":31,"total_tokens":50,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"$FP"}
EOF
# 20 chunk events (role, 17 content pieces, finish, usage) + [DONE]
{
    head='{"id":"'$CHAT_ID'","object":"chat.completion.chunk","created":'$CREATED',"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"'$FP'"'
    printf 'data: %s,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n' "$head"
    for w in "Hello" "!" " How" " can" " I" " help" " you" " today" "?" " Ask" " me" " about" " a" " recipe" " or" " some" " code."; do
        printf 'data: %s,"choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n' "$head" "$w"
    done
    printf 'data: %s,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n' "$head"
    printf 'data: %s,"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":17,"total_tokens":36,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n' "$head"
    printf 'data: [DONE]\n\n'
} >"$TMP/stream.sse"
UPSTREAM_EVENTS=$(grep -c '^data:' "$TMP/stream.sse")

# ---------------------------------------------------------------- nginx: the fake upstream
NGINX_PORT=$(free_port)
NGINX_SSE_PORT=$(free_port)
NGINX_PACED_PORT=$(free_port)
ECHO_MODULE=$(echo_module)
[ -n "$ECHO_MODULE" ] || warn "nginx's echo module not found: no paced SSE fake (scenario paced is skipped)"
# The paced fake: the same events, each written and flushed on its own,
# BENCH_EVENT_GAP_MS apart, chunked, as a real model streams its tokens. So
# sluice gets one upstream read per event and must flush each one.
paced_location() {
    local gap line first=1
    gap=$(awk -v ms="$BENCH_EVENT_GAP_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if [ $first = 0 ] && [ "$BENCH_EVENT_GAP_MS" != 0 ]; then
            printf '            echo_sleep %s;\n' "$gap"
        fi
        first=0
        printf "            echo -n '%s\\n\\n';\n            echo_flush;\n" "$line"
    done <"$TMP/stream.sse"
}
mkdir -p "$TMP/nginx/tmp" "$TMP/nginx/logs" "$TMP/nginx/www-json" "$TMP/nginx/www-sse"
cp "$TMP/chat.json" "$TMP/nginx/www-json/body"
cp "$TMP/stream.sse" "$TMP/nginx/www-sse/body"
{
    if [ -n "$ECHO_MODULE" ]; then say "load_module $ECHO_MODULE;"; fi
    if [ "$(id -u)" = 0 ]; then say "user root root;"; fi
    cat <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=16;
    etag off;
    # The bodies are static files; the static module refuses POST with a 405,
    # which error_page turns into an internal GET of the same file.
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/nginx/www-json;
        default_type application/json;
        location = /nginx_status { stub_status; }
        location / {
            try_files /body =404;
            error_page 405 =200 /body;
        }
    }
    server {
        listen 127.0.0.1:$NGINX_SSE_PORT;
        root $TMP/nginx/www-sse;
        default_type text/event-stream;
        location / {
            add_header Cache-Control no-cache;
            try_files /body =404;
            error_page 405 =200 /body;
        }
    }
EOF
    if [ -n "$ECHO_MODULE" ]; then
        cat <<EOF
    server {
        listen 127.0.0.1:$NGINX_PACED_PORT;
        default_type text/event-stream;
        location / {
            add_header Cache-Control no-cache;
$(paced_location)
        }
    }
EOF
    fi
    say "}"
} >"$TMP/nginx/nginx.conf"
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
STARTED+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/nginx_status" 10 ||
    die "nginx did not start: $(tail -5 "$TMP/nginx/error.log" "$TMP/nginx/stdout.log" 2>/dev/null)"
nginx_pids() { printf '%s\n' "$NGINX_PID"; children_of "$NGINX_PID"; }
nginx_accepts() { # connections accepted so far by the fake (all ports)
    curl -s "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 {print $1}'
}

# ---------------------------------------------------------------- the sluice config
# bench-fake -> the JSON port, bench-fake-stream -> the SSE port, bench-fake-paced
# -> the paced SSE port, bench-mock -> mock/echo
CFG=$TMP/config.yaml
cat >"$CFG" <<EOF
model_list:
  - model_name: bench-fake
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$NGINX_PORT/v1", api_key: x }
  - model_name: bench-fake-stream
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$NGINX_SSE_PORT/v1", api_key: x }
  - model_name: bench-fake-paced
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$NGINX_PACED_PORT/v1", api_key: x }
  - model_name: bench-mock
    litellm_params: { model: mock/echo }
general_settings: { master_key: $KEY }
sluice_settings: { threads: $SLUICE_THREADS, max_threads: $SLUICE_MAX_THREADS, log_level: warn,
                   spend_spool_dir: "$TMP/spool", metrics: $([ "${BENCH_OBSERVABILITY:-}" = off ] && echo false || echo true) }
EOF
# BENCH_OBSERVABILITY=on: metrics, otel spans and a generic_api webhook (both
# POSTed to the nginx JSON fake, which answers any POST with 200); off: no
# metrics either. Unset: metrics only (the default config).
if [ "${BENCH_OBSERVABILITY:-}" = on ]; then
    cat >>"$CFG" <<EOF
litellm_settings: { callbacks: [otel, audit] }
callback_settings: { audit: { callback_type: generic_api, endpoint: "http://127.0.0.1:$NGINX_PORT/events" } }
environment_variables: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:$NGINX_PORT/v1/traces" }
EOF
fi
# BENCH_NUM_RETRIES=N: retries configured (and never needed: the fakes do not fail),
# to see that the router's retry path costs nothing until it is used.
if [ -n "${BENCH_NUM_RETRIES:-}" ]; then
    printf 'router_settings: { num_retries: %d, fallbacks: [{bench-fake: [bench-mock]}] }\n' \
        "$BENCH_NUM_RETRIES" >>"$CFG"
fi

# ---------------------------------------------------------------- private MariaDB and memcached
# For the virtual-key scenario, started the way scripts/run-local starts them:
# Debian's mariadb-server with its data directory, socket and logs under $TMP,
# listening on a free loopback port, a `sluice` user with a random password;
# memcached on another free port, TCP only. Both are in SERVERS, stopped by
# pid after lighttpd and sluice.
db_root() { # db_root [mariadb args]: root over the private socket (root has no password)
    mariadb --no-defaults "--socket=$DB_SOCK" -uroot --batch --skip-column-names "$@"
}

start_mariadb() { # sets DB_URL, DB_SOCK, DB_PID; returns 1 (with the log) if it cannot
    local dir=$TMP/mariadb port pass i
    local common=(--no-defaults "--datadir=$dir/data" --innodb-log-file-size=8M
        --innodb-buffer-pool-size=64M --skip-name-resolve)
    [ "$(id -u)" = 0 ] && common+=(--user=root)
    mkdir -p "$dir/data"
    DB_SOCK=$dir/mariadb.sock
    if ! mariadb-install-db "${common[@]}" --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install.log" 2>&1; then
        warn "mariadb-install-db failed:"
        tail -20 "$dir/install.log" >&2
        return 1
    fi
    port=$(free_port)
    mariadbd "${common[@]}" "--socket=$DB_SOCK" "--port=$port" --bind-address=127.0.0.1 \
        "--pid-file=$dir/mariadb.pid" "--log-error=$dir/error.log" \
        --innodb-flush-log-at-trx-commit=2 --max-connections=500 >"$dir/stderr.log" 2>&1 &
    DB_PID=$!
    SERVERS+=("$DB_PID")
    for i in $(seq 600); do
        alive "$DB_PID" || break
        db_root -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    if ! db_root -e 'SELECT 1' >/dev/null 2>&1; then
        warn "mariadbd did not come up:"
        tail -20 "$dir/error.log" "$dir/stderr.log" >&2 2>/dev/null
        return 1
    fi
    pass=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    db_root <<SQL || return 1
CREATE DATABASE sluice CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
CREATE USER 'sluice'@'127.0.0.1' IDENTIFIED BY '$pass';
GRANT ALL ON sluice.* TO 'sluice'@'127.0.0.1';
SQL
    DB_URL="mysql://sluice:$pass@127.0.0.1:$port/sluice"
}

start_memcached() { # sets MC_PORT, MC_PID
    local i
    local as_root=()
    [ "$(id -u)" = 0 ] && as_root=(-u root)
    MC_PORT=$(free_port)
    memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -t 2 "${as_root[@]}" >"$TMP/memcached.log" 2>&1 &
    MC_PID=$!
    SERVERS+=("$MC_PID")
    for i in $(seq 100); do
        alive "$MC_PID" || break
        (exec 3<>"/dev/tcp/127.0.0.1/$MC_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    warn "memcached did not come up: $(tail -5 "$TMP/memcached.log" 2>/dev/null)"
    return 1
}

# db_counters FILE: MariaDB's global statement counters as "name value" lines
db_counters() {
    db_root -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_select', 'Com_insert',
        'Com_insert_select', 'Com_update', 'Com_delete', 'Com_replace', 'Com_begin', 'Com_commit',
        'Com_rollback', 'Com_stmt_prepare', 'Com_stmt_execute', 'Com_stmt_close', 'Com_set_option',
        'Com_show_status')" >"$1"
}

# mc_counters FILE: memcached's command counters as "name value" lines
# (cmd_set counts add and cas too; incr and decr are counted as hits and
# misses; total_connections counts the connections it accepted)
mc_counters() {
    { exec 3<>"/dev/tcp/127.0.0.1/$MC_PORT" && printf 'stats\r\nquit\r\n' >&3 && tr -d '\r' <&3; } 2>/dev/null |
        awk '$1 == "STAT" && $2 ~ /^(cmd_get|cmd_set|cmd_touch|total_connections|(incr|decr|delete)_(hits|misses))$/ { print $2, $3 }' >"$1"
}
