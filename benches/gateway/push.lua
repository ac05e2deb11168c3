-- wrk script for scripts/bench: POST one fixed text body, either always to the single group
-- /metrics/job/bench or to a random group /metrics/job/bench/instance/g<i> among N.
--
-- Usage: wrk ... -s benches/gateway/push.lua URL -- BODY_FILE GROUPS
--   BODY_FILE  the exposition text pushed on every request (the same file the preloader uses,
--              so both servers and all phases see byte-identical bodies)
--   GROUPS     0 for the single group, else the number of preloaded groups to pick from
--
-- Prints machine-readable "BENCH key=value" lines at the end for scripts/bench to parse.
-- Every answer other than 200 is counted: a run with any is invalid (the reference answers 202
-- only when its consistency check is off, and 400 when a push was rejected).

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain; version=0.0.4"

local threads = {}
local next_id = 1

-- Runs in the main Lua state once per thread, before the threads start.
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Runs inside each thread's own Lua state; globals here are per thread.
function init(args)
  local path = args[1]
  local f = assert(io.open(path, "rb"), "cannot open body file " .. tostring(path))
  wrk.body = f:read("*a")
  f:close()
  groups = tonumber(args[2]) or 0
  non200 = 0
  last_bad_status = 0
  -- Different seeds per thread, so threads do not walk the same sequence of groups.
  math.randomseed(os.time() * 1000 + id)
end

-- wrk calls this for every request. The single-group request is formatted once and reused;
-- the many-group one picks a uniformly random group each time.
local fixed
function request()
  if groups > 0 then
    return wrk.format(nil, "/metrics/job/bench/instance/g" .. math.random(0, groups - 1))
  end
  if not fixed then
    fixed = wrk.format(nil, "/metrics/job/bench")
  end
  return fixed
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    last_bad_status = status
  end
end

function done(summary, latency, requests)
  local non200_total, bad = 0, 0
  for _, t in ipairs(threads) do
    non200_total = non200_total + t:get("non200")
    local s = t:get("last_bad_status")
    if s ~= 0 then bad = s end
  end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d\n", summary.requests))
  io.write(string.format("BENCH seconds=%.3f\n", summary.duration / 1e6))
  io.write(string.format("BENCH rps=%.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("BENCH mean_ms=%.3f\n", latency.mean / 1000))
  io.write(string.format("BENCH p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("BENCH non200=%d\n", non200_total))
  io.write(string.format("BENCH last_bad_status=%d\n", bad))
  io.write(string.format("BENCH socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
end
