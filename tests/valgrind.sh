#!/usr/bin/env bash
# Runs sample requests through the responder in CGI mode under valgrind:
# mock chat (whole and streamed), mock embeddings, error paths, and a real
# upstream call through libcurl to the fake OpenAI server, with the metrics
# and two callbacks (spans, a webhook) on. Fails on any
# memory error or definite/indirect leak.
set -euo pipefail
bin=${1:?usage: valgrind.sh path/to/sluice}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/sluice-vg-XXXXXX)
fake_pid=
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

node "$here/fakes/openai.mjs" --port 0 --port-file "$tmp/port" >"$tmp/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")

cat >"$tmp/config.yaml" <<YAML
model_list:
  - model_name: mock-gpt
    litellm_params: { model: mock/echo }
  - model_name: mock-embed
    litellm_params: { model: mock/e }
  - model_name: fake
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$port/v1", api_key: k }
  - model_name: fault-500
    litellm_params: { model: openai/fault-500, api_base: "http://127.0.0.1:$port/v1", api_key: k }
  - model_name: dead
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:1/v1", api_key: k }
general_settings: { master_key: sk-vg }
sluice_settings: { log_level: error, spend_spool_dir: "$tmp/spool", callback_flush_interval_ms: 10 }
# the callbacks' threads, records and deliveries: one sink answers (an error),
# one is not there
litellm_settings: { callbacks: [otel, gone] }
callback_settings: { gone: { callback_type: generic_api, endpoint: "http://127.0.0.1:1/events" } }
environment_variables: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:$port" }
guardrails:
  - guardrail_name: pii
    litellm_params: { guardrail: sluice_pii, mode: [pre_call, post_call], output_parse_pii: true }
YAML

n=0
run() {   # run URI BODY EXPECTED-SUBSTRING [CONTENT-TYPE]
    n=$((n + 1))
    local out="$tmp/out.$n"
    printf '%s' "$2" | env -i PATH="$PATH" REQUEST_METHOD=POST REQUEST_URI="$1" \
        HTTP_AUTHORIZATION="Bearer sk-vg" CONTENT_LENGTH=${#2} CONTENT_TYPE="${4:-application/json}" \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect "$bin" --config "$tmp/config.yaml" >"$out" 2>"$tmp/vg.$n" || {
            echo "request $n ($1): valgrind reported errors:"; cat "$tmp/vg.$n"; exit 1; }
    grep -q -- "$3" "$out" || { echo "request $n ($1): expected '$3' in:"; cat "$out"; exit 1; }
}
chat='{"model":"%s","messages":[{"role":"user","content":"hello valgrind"}]%s}'
run /v1/chat/completions "$(printf "$chat" mock-gpt '')" '"Echo: hello valgrind"'
run /v1/chat/completions "$(printf "$chat" mock-gpt ',"stream":true,"stream_options":{"include_usage":true}')" 'data: \[DONE\]'
run /v1/embeddings '{"model":"mock-embed","input":["a","b"],"encoding_format":"base64"}' '"embedding"'
run /v1/chat/completions "$(printf "$chat" fake '')" '"Echo: hello valgrind"'
run /v1/chat/completions "$(printf "$chat" fake ',"stream":true')" 'data: \[DONE\]'
run /v1/chat/completions "$(printf "$chat" fault-500 '')" 'Status: 500'
run /v1/chat/completions "$(printf "$chat" dead '')" 'Status: 502'
run /v1/chat/completions '{"model":' 'Status: 400'
pii='{"model":"%s","messages":[{"role":"user","content":"mail bob@example.com"}],"guardrails":["pii"]%s}'
run /v1/chat/completions "$(printf "$pii" mock-gpt '')" '"Echo: mail bob@example.com"'
run /v1/chat/completions "$(printf "$pii" fake ',"stream":true')" 'data: \[DONE\]'
run /v1/chat/completions "$(printf "$pii" mock-gpt ',"stream":true')" 'data: \[DONE\]'
resp='{"model":"%s","input":[{"role":"user","content":"call tool please"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],"instructions":"be brief","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}]%s}'
run /v1/responses "$(printf "$resp" mock-gpt '')" '"object":"response"'
run /v1/responses "$(printf "$resp" mock-gpt ',"stream":true')" 'event: response.completed'
run /v1/responses '{"model":"mock-gpt","input":"x","previous_response_id":"resp_1"}' 'Status: 400'
run /v1/completions '{"model":"mock-gpt","prompt":"hello valgrind"}' '"object":"text_completion"'
run /v1/completions '{"model":"mock-gpt","prompt":["hello"],"stream":true}' 'data: \[DONE\]'
run /v1/moderations '{"model":"fake","input":"hello"}' '"flagged":false'
run /v1/audio/speech '{"model":"fake","input":"hi","voice":"alloy"}' 'Content-Type: audio/mpeg'
form=$(printf -- '--vgb\r\nContent-Disposition: form-data; name="model"\r\n\r\nfake\r\n--vgb\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\nabc\r\n--vgb--\r\n')
run /v1/audio/transcriptions "$form" 'Transcribed 3 bytes of a.mp3' 'multipart/form-data; boundary=vgb'
echo "valgrind: $n requests, no memory errors, no leaks"
