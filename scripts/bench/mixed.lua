-- A clinical mix as the practitioner (BENCH_TOKEN): of every ten requests, seven read the
-- Observation BENCH_OBSERVATION_ID, two search the patient's (BENCH_PATIENT_ID) latest vital
-- signs, one creates an Observation (the file BENCH_BODY_FILE). Run by scripts/bench.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local common = require("common")

local id = assert(os.getenv("BENCH_OBSERVATION_ID"), "BENCH_OBSERVATION_ID is not set")
local patient = assert(os.getenv("BENCH_PATIENT_ID"), "BENCH_PATIENT_ID is not set")
local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set"), "r"))
local body = f:read("*a")
f:close()

local headers = {
  ["Accept"] = "application/fhir+json",
  ["Authorization"] = "Bearer " .. common.token(),
  ["X-Purpose-Of-Use"] = "TREAT",
}
local create_headers = {}
for k, v in pairs(headers) do create_headers[k] = v end
create_headers["Content-Type"] = "application/fhir+json"

-- Formatted in init, once the target's Host header is known.
local read, search, create
init = function()
  read = wrk.format("GET", "/fhir/Observation/" .. id, headers)
  search = wrk.format("GET", "/fhir/Observation?patient=Patient%2F" .. patient ..
    "&category=vital-signs&_sort=-date&_count=10", headers)
  create = wrk.format("POST", "/fhir/Observation", create_headers, body)
end

local n = 0
request = function()
  n = n + 1
  local slot = n % 10
  if slot < 7 then return read end
  if slot < 9 then return search end
  return create
end

done = common.done
