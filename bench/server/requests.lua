-- Cycles through pre-signed requests, one per line of the file in WRK_REQUESTS:
--   <path and query> TAB <body>
-- Thread i of n takes lines i, i+n, i+2n, ... so no two threads send the same
-- message; a thread that runs past its share starts again (counted in "wrapped").

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local total = tonumber(os.getenv("WRK_THREADS") or "1")
  requests = {}
  local close = os.getenv("WRK_CLOSE") == "1"
  local line_number = 0
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    if line_number % total == id then
      local tab = line:find("\t", 1, true)
      local headers = { ["Content-Type"] = "application/xml" }
      if close then headers["Connection"] = "close" end  -- --close: a new connection per request
      requests[#requests + 1] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
    end
    line_number = line_number + 1
  end
  position = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wrapped = wrapped + 1
  end
  return requests[position]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "status": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
    math.floor(latency:percentile(99)), latency.max, wraps))
end
