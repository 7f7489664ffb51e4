-- wrk script for bench/run.sh's long run: cycles request by request through
-- the non-streaming fake (bench-fake), the streaming fake (bench-fake-stream)
-- and the mock (bench-mock), so every path of the gateway is exercised.
--   BENCH_MODELS  space-separated "model" or "model:stream" entries
--                 (default "bench-fake bench-fake-stream:stream bench-mock")
--   BENCH_KEY     bearer key (default sk-bench)
local key = os.getenv("BENCH_KEY") or "sk-bench"
local spec = os.getenv("BENCH_MODELS") or "bench-fake bench-fake-stream:stream bench-mock"
local reqs, n = {}, 0

function init(args)
  for item in spec:gmatch("%S+") do
    local model, flag = item:match("^([^:]+):?(.*)$")
    local body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}]'
    local headers = { ["Content-Type"] = "application/json",
                      ["Authorization"] = "Bearer " .. key }
    if flag == "stream" then
      body = body .. ',"stream":true'
      headers["Accept"] = "text/event-stream"
    end
    body = body .. "}"
    reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, body)
  end
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
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
