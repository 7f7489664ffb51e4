-- wrk script for bench/run.sh: POST an OpenAI chat completion request.
--   BENCH_MODEL   model name in the body (default bench-fake)
--   BENCH_STREAM  1: add "stream":true (default 0)
--   BENCH_KEY     bearer key (default sk-bench)
-- done() prints one machine-readable WRKSTAT line (latencies in µs) that
-- run.sh parses; wrk's own report is printed above it as usual.
local model = os.getenv("BENCH_MODEL") or "bench-fake"
local stream = (os.getenv("BENCH_STREAM") or BENCH_STREAM_DEFAULT or "0") == "1"
local key = os.getenv("BENCH_KEY") or "sk-bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
if stream then
  wrk.headers["Accept"] = "text/event-stream"
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}],"stream":true}'
else
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}]}'
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKSTAT requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d " ..
    "err_status=%d err_timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
