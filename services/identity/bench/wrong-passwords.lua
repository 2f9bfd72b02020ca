-- wrk script: POST /auth/token with wrong passwords, counting answers by status.
-- MODE=same    one account from one address (the attack of issue 5)
-- MODE=spread  one account, a different X-Forwarded-For per request (a botnet behind the proxy)
-- MODE=unknown random unknown usernames from spread addresses (every guess costs a hash)
local mode = os.getenv("MODE") or "same"
local user = os.getenv("TARGET_USER") or "admin"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  counter = 0
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local name = user
  if mode ~= "same" then
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
      math.random(0, 255), math.random(0, 255), math.random(1, 254))
  end
  if mode == "unknown" then
    name = "nobody" .. math.random(1, 100000000)
  end
  return wrk.format("POST", "/auth/token", headers,
    "grant_type=password&username=" .. name .. "&password=wrong-guess-" .. counter)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do
      total[k] = (total[k] or 0) + v
    end
  end
  for k, v in pairs(total) do
    io.write(string.format("status %d: %d\n", k, v))
  end
end
