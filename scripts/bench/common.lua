-- Shared by create.lua and read.lua: the bearer token comes from BENCH_TOKEN, and `done`
-- prints one machine-readable line that scripts/bench.sh parses:
--   BENCH_RESULT requests=<n> duration_s=<s> rps=<r> p50_ms=<x> p99_ms=<y> errors=<e> non2xx=<n>
local M = {}

function M.token()
  local token = os.getenv("BENCH_TOKEN")
  if token == nil or token == "" then
    error("BENCH_TOKEN is not set")
  end
  return token
end

function M.done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.errors.status))
end

return M
