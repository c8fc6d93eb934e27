-- wrk script: a random mix of the four reports (bench/api_load.py passes the settings).
--   wrk -s bench/api_mix.lua <url> -- <api key> <first dt> <days> <merchants> <all-merchant share>
-- Each request picks a report uniformly; merchant m_0001..m_<merchants> uniformly (or, with the
-- given share, none: every merchant); ranges 1..31 days inside the loaded days; latency asks
-- for one payment method half of the time. done() prints one JSON line for the bench script.

local key, first_day, days, merchants, all_share
local methods = { "card", "wallet", "bank_transfer", "bnpl" }
local reports = { "daily-recon", "refund-rate", "latency", "declines" }

local function ymd(offset)
  return os.date("!%Y-%m-%d", first_day + offset * 86400)
end

local function range_params()
  local len = math.random(1, 31)
  local start = math.random(0, days - len)
  return "from=" .. ymd(start) .. "&to=" .. ymd(start + len - 1)
end

local function merchant_param()
  if math.random() < all_share then return "" end
  return string.format("&merchant=m_%04d", math.random(1, merchants))
end

function init(args)
  key = args[1]
  local y, m, d = args[2]:match("(%d+)-(%d+)-(%d+)")
  first_day = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 })
  days = tonumber(args[3])
  merchants = tonumber(args[4])
  all_share = tonumber(args[5])
  -- A different stream per thread.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  wrk.headers["X-API-Key"] = key
end

function request()
  local report = reports[math.random(1, #reports)]
  local query
  if report == "daily-recon" then
    query = "date=" .. ymd(math.random(0, days - 1)) .. merchant_param()
  elseif report == "latency" then
    query = range_params()
    if math.random() < 0.5 then query = query .. "&payment_method=" .. methods[math.random(1, #methods)] end
  else
    query = range_params() .. merchant_param()
  end
  return wrk.format("GET", "/reports/" .. report .. "?" .. query)
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
