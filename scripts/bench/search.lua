-- GET /fhir/Observation?code=http://loinc.org|8867-4&_count=10 as the practitioner (BENCH_TOKEN):
-- a broad search (no patient named), so the kernel's visibility is compiled into the query and
-- the total is counted over visible resources. Run by scripts/bench.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.path = "/fhir/Observation?code=http%3A%2F%2Floinc.org%7C8867-4&_count=10"
wrk.headers["Accept"] = "application/fhir+json"
wrk.headers["Authorization"] = "Bearer " .. common.token()
wrk.headers["X-Purpose-Of-Use"] = "TREAT"

done = common.done
