-- GET /fhir/Observation/<BENCH_OBSERVATION_ID> as the practitioner (BENCH_TOKEN).
-- Run by scripts/bench.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local common = require("common")

local id = assert(os.getenv("BENCH_OBSERVATION_ID"), "BENCH_OBSERVATION_ID is not set")

wrk.method = "GET"
wrk.path = "/fhir/Observation/" .. id
wrk.headers["Accept"] = "application/fhir+json"
wrk.headers["Authorization"] = "Bearer " .. common.token()
wrk.headers["X-Purpose-Of-Use"] = "TREAT"

done = common.done
