-- POST /fhir/Observation with a ~1 KB Observation (the file BENCH_BODY_FILE) as the
-- practitioner (BENCH_TOKEN). Run by scripts/bench.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local common = require("common")

local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set"), "r"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = "/fhir/Observation"
wrk.body = body
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Accept"] = "application/fhir+json"
wrk.headers["Authorization"] = "Bearer " .. common.token()
wrk.headers["X-Purpose-Of-Use"] = "TREAT"

done = common.done
