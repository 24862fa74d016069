-- wrk script: POST an RFQ-shaped JSON body (BODY env) with an optional bearer key (KEY env).
-- Counts answers by status in every thread and sums them in done() (each wrk thread runs its
-- own Lua state, so the counts are read back through the thread objects kept by setup()).
local body = os.getenv("BODY")
local key = os.getenv("KEY")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

-- DELAY_MS > 0: each connection waits a random 0.5-1.5 x DELAY_MS after an answer before its
-- next request, so 32 connections offer about 32000 / DELAY_MS requests a second (latency at a
-- set load, rather than at saturation where it is only the queue length over the throughput).
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  math.randomseed(os.time())
  delay = function()
    return math.floor(delay_ms * (0.5 + math.random()))
  end
end

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end

statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for s, n in pairs(thread:get("statuses")) do total[s] = (total[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(total) do table.insert(parts, string.format('"%d": %d', s, n)) end
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "errors_status": %d, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.timeout, summary.errors.status,
    table.concat(parts, ", ")))
end
