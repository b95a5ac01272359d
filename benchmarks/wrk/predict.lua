-- wrk script: POST realistic applicants in rotation and print the latency distribution as JSON.
--
--   wrk -t1 -c16 -d10s --latency -s benchmarks/wrk/predict.lua http://127.0.0.1:PORT/predict -- BODIES [API_KEY]
--
-- BODIES: a file with one JSON request body per line (written by benchmarks/http_load.py from the
-- held-out reference sample). Each thread pre-formats every request once, then cycles through
-- them from its own starting offset, so the load generator does no work per request beyond
-- sending bytes. done() prints one line "WRK_JSON {...}" that http_load.py parses.

local requests = {}
local position = 0
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local path = args[1]
  local key = args[2]
  local headers = { ["Content-Type"] = "application/json" }
  if key ~= nil and key ~= "" then
    headers["x-api-key"] = key
  end
  for line in io.lines(path) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("POST", nil, headers, line)
    end
  end
  if #requests == 0 then
    error("no request bodies in " .. tostring(path))
  end
  -- Threads start at different bodies so they do not send the same sequence in lockstep.
  position = ((thread_index or 0) * 97) % #requests
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, _)
  local errors = summary.errors
  local pct = {}
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    pct[#pct + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "max": %d, "mean": %.2f, "stdev": %.2f, "percentiles": {%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ", ")
  ))
end
