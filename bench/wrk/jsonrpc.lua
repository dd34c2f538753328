-- wrk script of bench/run: POSTs one JSON-RPC message again and again and
-- prints the result as one JSON line (prefixed "WRK_JSON ") when done.
--
-- Environment:
--   BENCH_BODY      the request body (a JSON-RPC tools/call); "__ID__" in it
--                   is replaced by a new JSON-RPC id for every request, since
--                   all connections share one MCP session (run with -t1)
--   BENCH_TOKEN     bearer token (none sent when empty)
--   BENCH_SESSION   Mcp-Session-Id (none sent when empty)
--   BENCH_VERSION   MCP-Protocol-Version (none sent when empty)
--   BENCH_HEADERS   extra headers, "Name: value" separated by "|"
local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

wrk.method = "POST"
local body = env("BENCH_BODY") or error("BENCH_BODY is not set")
local head, tail = string.match(body, "^(.*)__ID__(.*)$")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if env("BENCH_TOKEN") then wrk.headers["Authorization"] = "Bearer " .. env("BENCH_TOKEN") end
if env("BENCH_SESSION") then wrk.headers["Mcp-Session-Id"] = env("BENCH_SESSION") end
if env("BENCH_VERSION") then wrk.headers["MCP-Protocol-Version"] = env("BENCH_VERSION") end
if env("BENCH_HEADERS") then
  for h in string.gmatch(env("BENCH_HEADERS"), "[^|]+") do
    local name, value = string.match(h, "^%s*([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

local counter = 0
function request()
  if head == nil then return wrk.format(nil, nil, nil, body) end
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
