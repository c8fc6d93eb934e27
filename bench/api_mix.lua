-- wrk script: replays the benchmarks' request mix (bench/api_load.py passes the settings).
--   wrk -s bench/api_mix.lua <url> -- <api key> <paths file>
-- The mix is defined once, in bench/api_load.py (random_path: report, merchant, range, payment
-- method); it writes a large sample of it, one request path a line, and each request here is a
-- line drawn uniformly from that sample. done() prints one JSON line for the bench script.

local paths = {}

function init(args)
  wrk.headers["X-API-Key"] = args[1]
  for line in io.lines(args[2]) do paths[#paths + 1] = line end
  assert(#paths > 0, "no request paths in " .. args[2])
  -- A different stream per thread.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  return wrk.format("GET", paths[math.random(1, #paths)])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
