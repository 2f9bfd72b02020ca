#!/usr/bin/env bash
# `make bench`: how fast is Custodian compared with the PostgreSQL it stores into?
#
#  1. release build; starts the six services on their own ports (28080..28085), their own
#     databases (custodian_bench_*) and their own Redis stream prefix, so a running `make run`
#     is not disturbed;
#  2. seeds through the gateway: an organisation, a practitioner, a patient user, the Patient
#     resource and a Consent permitting the organisation for TREAT;
#  3. wrk (another process) with scripts/bench/create.lua: POST /fhir/Observation (~1 KB) as the
#     practitioner; then scripts/bench/read.lua: GET /fhir/Observation/<id>; then
#     scripts/bench/search.lua: a broad token search (access compiled into the query);
#     then scripts/bench/mixed.lua: a clinical mix (reads, a patient's searches, creates);
#     after each run it waits until the access pipeline has drained (every event published,
#     in the ledger and scored), while scripts/bench/watch.sh samples, once a second, the
#     outbox and consumer-group backlog, the pipeline's lag and each service's RSS;
#  4. stops the suite, then pgbench on a scratch database (custodian_bench_raw): INSERT of a
#     ~1 KB jsonb row, and primary-key SELECT of such rows (prepared statements, same clients,
#     same duration);
#  5. prints requests/s, p50 and p99 of each, the custodian/raw ratios, the pipeline's largest
#     backlog and lag and its drain time per run, and each service's idle and peak RSS; writes
#     them to var/bench/results.md.
#
# Settings (env): BENCH_DURATION (20 s), BENCH_THREADS (2), BENCH_CONNECTIONS (32),
# BENCH_WARMUP (3 s), BENCH_PORT_BASE (28080), BENCH_ROWS (100000 rows for the raw SELECT),
# BENCH_KEEP_DATA=1 (keep the bench databases), SKIP_BUILD=1, RUST_LOG (warn), BIN_DIR,
# BENCH_RUNS (a subset of "CREATE READ SEARCH MIXED"), BENCH_DRAIN_TIMEOUT (600 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/suite.sh
source scripts/lib/suite.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=lib/seed.sh
source scripts/lib/seed.sh
# shellcheck source=bench/watch.sh
source scripts/bench/watch.sh
# Unconditional: on a fresh machine ensure-deps installs rustup into ~/.cargo/bin only later.
export PATH="$HOME/.cargo/bin:$PATH"

DURATION="${BENCH_DURATION:-20}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
WARMUP="${BENCH_WARMUP:-3}"
# Below Linux's ephemeral range (32768-60999), where any outgoing connection may hold the port.
PORT_BASE="${BENCH_PORT_BASE:-28080}"
ROWS="${BENCH_ROWS:-100000}"
DB_BASE="${DATABASE_BASE_URL:-postgres://postgres@127.0.0.1:5432}"
DB_PREFIX="custodian_bench"
RAW_DB="${DB_PREFIX}_raw"
OUT="$ROOT/var/bench"

echo "==> checking prerequisites"
scripts/ensure-deps.sh
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v pgbench >/dev/null || missing+=(postgresql) # Debian ships pgbench with the server
command -v jq >/dev/null || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from Debian"
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --release --bins"
  cargo build --release --bins
fi

rm -rf "$OUT"
mkdir -p "$OUT/log" "$OUT/run" "$OUT/pgbench"
chmod 700 "$ROOT/var"

drop_bench_databases() {
  local db
  for db in "${DB_PREFIX}"_{identity,consent,records,ledger,anomaly} "$RAW_DB"; do
    psql -w -q "$DB_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------------------------------------
# The suite on bench ports, databases and stream prefix.
# ---------------------------------------------------------------------------------------------
GATEWAY_PORT=$((PORT_BASE)) IDENTITY_PORT=$((PORT_BASE + 1)) CONSENT_PORT=$((PORT_BASE + 2))
RECORDS_PORT=$((PORT_BASE + 3)) LEDGER_PORT=$((PORT_BASE + 4)) ANOMALY_PORT=$((PORT_BASE + 5))
SUITE_BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
SUITE_LOG_DIR="$OUT/log"
SUITE_RUN_DIR="$OUT/run"
SUITE_DB_BASE="$DB_BASE"
SUITE_DB_PREFIX="$DB_PREFIX"
SUITE_STREAM_PREFIX="${DB_PREFIX}_$(date +%s)_$$"
SUITE_REDIS_URL="${REDIS_URL:-}"
SUITE_KEY_FILE="$OUT/records.key"
SUITE_KEYS_DIR="$OUT/keys"
# The load is one practitioner reading one patient's record thousands of times a second:
# anomaly must not suspend them in the middle of the measurement. Logs at warn so that log
# volume is not what is measured.
SUITE_EXTRA_ENV="ANOMALY_SUSPEND=false TOKEN_TTL_SECONDS=3600"
export RUST_LOG="${RUST_LOG:-warn}"
ADMIN_PASSWORD="$(openssl rand -hex 16)"
export ADMIN_PASSWORD
suite_defaults

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  [ -z "${WATCH_PID:-}" ] || kill "$WATCH_PID" 2>/dev/null || true
  suite_stop
  suite_delete_streams
  if [ "${BENCH_KEEP_DATA:-0}" != 1 ]; then drop_bench_databases; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_bench_databases
echo "==> starting the suite on ports $GATEWAY_PORT..$ANOMALY_PORT (databases ${DB_PREFIX}_*, stream prefix $SUITE_STREAM_PREFIX)"
if [ -z "$SUITE_REDIS_URL" ]; then redis_ensure; fi
suite_start
suite_wait_ready
GW="$(suite_url gateway)"

# ---------------------------------------------------------------------------------------------
# Seed through the gateway.
# ---------------------------------------------------------------------------------------------
seed_clinic bench "Bench General Hospital"

# A ~1 KB Observation for that patient.
OBSERVATION_JSON="$(jq -nc --arg patient "$PATIENT_REF" --arg pad "$(printf 'x%.0s' $(seq 1 308))" '{
  resourceType: "Observation", status: "final",
  category: [{coding: [{system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs", display: "Vital Signs"}]}],
  code: {coding: [{system: "http://loinc.org", code: "8867-4", display: "Heart rate"}], text: "Heart rate"},
  subject: {reference: $patient},
  effectiveDateTime: "2026-11-01T09:30:00Z",
  issued: "2026-11-01T09:31:00Z",
  valueQuantity: {value: 72, unit: "beats/minute", system: "http://unitsofmeasure.org", code: "/min"},
  interpretation: [{coding: [{system: "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", code: "N", display: "Normal"}]}],
  note: [{text: ("Benchmark observation, resting, seated. " + $pad)}]}')"
printf '%s' "$OBSERVATION_JSON" >"$OUT/observation.json"
echo "  Observation body: $(wc -c <"$OUT/observation.json") bytes"

# Consent reaches records through the stream: retry the first create for a few seconds.
for _ in $(seq 1 20); do
  call POST /fhir/Observation "$PRACT_TOKEN" "$OBSERVATION_JSON"
  [[ "$STATUS" == 2* ]] && break
  sleep 0.5
done
expect "POST Observation as the practitioner" 200 201
OBS_ID="$(jq -r '.id // empty' <<<"$BODY")"
[ -n "$OBS_ID" ] || { echo "error: created Observation has no id: $BODY" >&2; exit 1; }
call GET "/fhir/Observation/$OBS_ID" "$PRACT_TOKEN"
expect "GET Observation/$OBS_ID as the practitioner" 200
echo "  organisation $ORG_REF, patient $PATIENT_REF, observation $OBS_ID"

# ---------------------------------------------------------------------------------------------
# Load: wrk against the gateway.
# ---------------------------------------------------------------------------------------------
# run_wrk NAME SCRIPT: sets <NAME>_RPS, _P50, _P99, _ERR (errors + non-2xx), _N.
run_wrk() {
  local name="$1" script="$2" line kv
  export BENCH_TOKEN="$PRACT_TOKEN" BENCH_BODY_FILE="$OUT/observation.json" \
    BENCH_OBSERVATION_ID="$OBS_ID" BENCH_PATIENT_ID="$PATIENT_ID" BENCH_LUA_DIR="$ROOT/scripts/bench"
  if [ "$WARMUP" -gt 0 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s -s "$script" "$GW" >/dev/null
  fi
  echo "==> wrk $name: ${DURATION}s, $THREADS threads, $CONNECTIONS connections"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -s "$script" "$GW" | tee "$OUT/wrk-$name.txt"
  line="$(grep '^BENCH_RESULT ' "$OUT/wrk-$name.txt" | tail -1)"
  [ -n "$line" ] || { echo "error: wrk printed no BENCH_RESULT line" >&2; exit 1; }
  local requests=0 rps=0 p50=0 p99=0 errors=0 non2xx=0
  for kv in ${line#BENCH_RESULT }; do
    case "$kv" in
      requests=*) requests="${kv#*=}" ;; rps=*) rps="${kv#*=}" ;;
      p50_ms=*) p50="${kv#*=}" ;; p99_ms=*) p99="${kv#*=}" ;;
      errors=*) errors="${kv#*=}" ;; non2xx=*) non2xx="${kv#*=}" ;;
    esac
  done
  printf -v "${name}_N" '%s' "$requests"
  printf -v "${name}_RPS" '%s' "$rps"
  printf -v "${name}_P50" '%s' "$p50"
  printf -v "${name}_P99" '%s' "$p99"
  printf -v "${name}_ERR" '%s' "$((errors + non2xx))"
}

# bench_redis ARGS...: redis-cli on the suite's Redis, as an administrator.
bench_redis() {
  if [ -n "$SUITE_REDIS_URL" ]; then redis-cli --no-auth-warning -u "$SUITE_REDIS_URL" "$@"; else redis_cli_admin "$@"; fi
}

# The pipeline and memory watcher (scripts/bench/watch.sh), and the phase it labels samples with.
WATCH_FILE="$OUT/pipeline.tsv"
PHASE_FILE="$OUT/phase"
echo before >"$PHASE_FILE"
watch_pipeline "$WATCH_FILE" "$PHASE_FILE" &
WATCH_PID=$!
stop_watch() { kill "$WATCH_PID" 2>/dev/null || true; wait "$WATCH_PID" 2>/dev/null || true; }
sleep 3

# drain NAME: waits (at most BENCH_DRAIN_TIMEOUT s) until the watcher sees the access pipeline
# empty after run NAME; sets <NAME>_DRAIN (seconds, or "not drained").
drain() {
  local name="$1" started waited=0 limit="${BENCH_DRAIN_TIMEOUT:-600}"
  echo "drain-$name" >"$PHASE_FILE"
  started="$(date +%s)"
  while :; do
    if [ "$(tail -1 "$WATCH_FILE" | awk '{print $2}')" = "drain-$name" ] && watch_drained "$WATCH_FILE"; then
      printf -v "${name}_DRAIN" '%s s' "$(($(date +%s) - started))"
      break
    fi
    waited=$(($(date +%s) - started))
    if [ "$waited" -ge "$limit" ]; then
      printf -v "${name}_DRAIN" 'not drained in %s s' "$limit"
      break
    fi
    sleep 0.5
  done
  local result="${name}_DRAIN"
  echo "  after $name: ${!result}"
}

for run in CREATE READ SEARCH MIXED; do
  for v in RPS P50 P99 N ERR DRAIN; do printf -v "${run}_$v" '%s' -; done
done
for run in ${BENCH_RUNS:-CREATE READ SEARCH MIXED}; do
  script="$ROOT/scripts/bench/${run,,}.lua"
  echo "${run,,}" >"$PHASE_FILE"
  run_wrk "$run" "$script"
  drain "$run"
done
echo after >"$PHASE_FILE"
sleep 2

# Peak resident memory of each service over the whole run (the kernel's high-water mark).
declare -A PEAK_RSS=()
for svc in "${WATCH_SERVICES[@]}"; do
  PEAK_RSS[$svc]="$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/${SUITE_PIDS[$svc]}/status" 2>/dev/null || echo "?")"
done
stop_watch

# Free PostgreSQL's connections before the raw run.
suite_stop

# ---------------------------------------------------------------------------------------------
# Baseline: pgbench on a scratch database.
# ---------------------------------------------------------------------------------------------
echo "==> pgbench baseline on $RAW_DB ($ROWS rows for the SELECT)"
RAW_URL="$DB_BASE/$RAW_DB"
psql -w -q "$DB_BASE/postgres" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$RAW_DB\"" >/dev/null
SQL_PAYLOAD="${OBSERVATION_JSON//\'/\'\'}"
psql -w -q "$RAW_URL" -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE obs_insert (id bigserial PRIMARY KEY, patient text NOT NULL, resource jsonb NOT NULL,
                         created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE obs_read (id bigint PRIMARY KEY, patient text NOT NULL, resource jsonb NOT NULL);
INSERT INTO obs_read SELECT g, 'Patient/bench', '$SQL_PAYLOAD'::jsonb FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE obs_read;
SQL
cat >"$OUT/pgbench/insert.sql" <<SQL
INSERT INTO obs_insert (patient, resource) VALUES ('Patient/bench', '$SQL_PAYLOAD'::jsonb);
SQL
cat >"$OUT/pgbench/select.sql" <<SQL
\set id random(1, $ROWS)
SELECT resource FROM obs_read WHERE id = :id;
SQL

max_conn="$(psql -w -tAq "$RAW_URL" -c 'SHOW max_connections')"
used="$(psql -w -tAq "$RAW_URL" -c 'SELECT count(*) FROM pg_stat_activity')"
if [ $((max_conn - used)) -lt $((CONNECTIONS + 3)) ]; then
  echo "warning: PostgreSQL has $((max_conn - used)) free connections for $CONNECTIONS pgbench clients" >&2
fi

# run_pgbench NAME FILE: sets <NAME>_RPS, _P50, _P99, _ERR, _N (latencies from pgbench's
# per-transaction log, microseconds in column 3).
run_pgbench() {
  local name="$1" file="$2" dir="$OUT/pgbench/$1" tps n
  mkdir -p "$dir"
  if [ "$WARMUP" -gt 0 ]; then
    pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$WARMUP" -f "$file" "$RAW_URL" >/dev/null 2>&1
  fi
  echo "==> pgbench $name: ${DURATION}s, $THREADS threads, $CONNECTIONS clients, prepared"
  (cd "$dir" && pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" -f "$file" \
    --log --log-prefix=tx "$RAW_URL") 2>&1 | tee "$OUT/pgbench-$name.txt"
  tps="$(grep -E '^tps = ' "$OUT/pgbench-$name.txt" | tail -1 | awk '{print $3}')"
  local failed
  failed="$(grep -E '^number of failed transactions: ' "$OUT/pgbench-$name.txt" | awk '{print $5}')"
  read -r n p50 p99 < <(cat "$dir"/tx* | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print 0, 0, 0; exit }
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
      printf "%d %.3f %.3f\n", NR, v[i50] / 1000, v[i99] / 1000
    }')
  printf -v "${name}_N" '%s' "$n"
  printf -v "${name}_RPS" '%.1f' "${tps:-0}"
  printf -v "${name}_P50" '%s' "$p50"
  printf -v "${name}_P99" '%s' "$p99"
  printf -v "${name}_ERR" '%s' "${failed:-0}"
  rm -f "$dir"/tx*
}

run_pgbench RAWINSERT "$OUT/pgbench/insert.sql"
run_pgbench RAWSELECT "$OUT/pgbench/select.sql"

# ---------------------------------------------------------------------------------------------
# Results.
# ---------------------------------------------------------------------------------------------
case "$SUITE_BIN_DIR" in
  */target/release) BUILD_LABEL="release build" ;;
  */target/debug) BUILD_LABEL="DEBUG build (not representative)" ;;
  *) BUILD_LABEL="binaries from $SUITE_BIN_DIR" ;;
esac
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "-") print "n/a"; else printf "%.2f", a / b }'; }
row() { printf '| %-46s | %10s | %9s | %9s | %8s | %7s |\n' "$@"; }

{
  echo "# Custodian benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores, load generator on the same machine."
  echo "Each run: ${DURATION}s after ${WARMUP}s warm-up, $THREADS threads, $CONNECTIONS connections/clients." \
    "Custodian: $BUILD_LABEL, RUST_LOG=$RUST_LOG, through the gateway as a practitioner under a TREAT consent;" \
    "Observation body $(wc -c <"$OUT/observation.json") bytes. Raw PostgreSQL: pgbench -M prepared, same jsonb body."
  echo
  row "workload" "req/s" "p50 ms" "p99 ms" "requests" "errors"
  row "---" "---:" "---:" "---:" "---:" "---:"
  row "custodian create: POST /fhir/Observation" "$CREATE_RPS" "$CREATE_P50" "$CREATE_P99" "$CREATE_N" "$CREATE_ERR"
  row "raw PostgreSQL: INSERT 1 KB jsonb" "$RAWINSERT_RPS" "$RAWINSERT_P50" "$RAWINSERT_P99" "$RAWINSERT_N" "$RAWINSERT_ERR"
  row "ratio create custodian/raw" "$(ratio "$CREATE_RPS" "$RAWINSERT_RPS")" "$(ratio "$CREATE_P50" "$RAWINSERT_P50")" "$(ratio "$CREATE_P99" "$RAWINSERT_P99")" "" ""
  row "custodian read: GET /fhir/Observation/{id}" "$READ_RPS" "$READ_P50" "$READ_P99" "$READ_N" "$READ_ERR"
  row "raw PostgreSQL: SELECT by primary key" "$RAWSELECT_RPS" "$RAWSELECT_P50" "$RAWSELECT_P99" "$RAWSELECT_N" "$RAWSELECT_ERR"
  row "ratio read custodian/raw" "$(ratio "$READ_RPS" "$RAWSELECT_RPS")" "$(ratio "$READ_P50" "$RAWSELECT_P50")" "$(ratio "$READ_P99" "$RAWSELECT_P99")" "" ""
  row "custodian search: GET /fhir/Observation?code=..&_count=10" "$SEARCH_RPS" "$SEARCH_P50" "$SEARCH_P99" "$SEARCH_N" "$SEARCH_ERR"
  row "custodian mix: 70% read, 20% search, 10% create" "$MIXED_RPS" "$MIXED_P50" "$MIXED_P99" "$MIXED_N" "$MIXED_ERR"
  echo
  echo "The access pipeline during each run (sampled once a second): the largest backlog of"
  echo "events not yet published (outbox), not yet in the ledger and not yet scored by anomaly"
  echo "(consumer group pending + undelivered), the largest lag (age of the oldest event not yet"
  echo "handled by both), and how long after the run it took to drain completely."
  echo
  printf '| %-8s | %11s | %13s | %14s | %9s | %-22s |\n' run unpublished "ledger behind" "anomaly behind" "max lag s" "drained after the run"
  printf '| %-8s | %11s | %13s | %14s | %9s | %-22s |\n' --- ---: ---: ---: ---: ---
  for run in CREATE READ SEARCH MIXED; do
    read -r u l a lag _ < <(watch_summary "$WATCH_FILE" "${run,,}")
    drained="${run}_DRAIN"
    printf '| %-8s | %11s | %13s | %14s | %9s | %-22s |\n' "${run,,}" "$u" "$l" "$a" "$lag" "${!drained:-?}"
  done
  echo
  echo "Resident memory per service (MiB): settled after seeding, the largest sample during the"
  echo "runs, and the kernel's high-water mark (VmHWM) at the end."
  echo
  read -r _ _ _ _ before_rss < <(watch_summary "$WATCH_FILE" before)
  read -r -a before_rss <<<"${before_rss:-}"
  loaded=()
  for run in create read search mixed; do
    read -r _ _ _ _ rss < <(watch_summary "$WATCH_FILE" "$run")
    read -r -a rss <<<"${rss:-}"
    for i in "${!rss[@]}"; do [ "${rss[$i]}" -gt "${loaded[$i]:-0}" ] && loaded[$i]="${rss[$i]}"; done
  done
  printf '| %-8s | %7s | %11s | %6s |\n' service settled "under load" VmHWM
  printf '| %-8s | %7s | %11s | %6s |\n' --- ---: ---: ---:
  for i in "${!WATCH_SERVICES[@]}"; do
    svc="${WATCH_SERVICES[$i]}"
    printf '| %-8s | %7s | %11s | %6s |\n' "$svc" "${before_rss[$i]:-?}" "${loaded[$i]:-?}" "${PEAK_RSS[$svc]:-?}"
  done
  echo
  echo "A req/s ratio below 1 means Custodian serves that fraction of raw PostgreSQL's rate; a latency"
  echo "ratio above 1 is how many times slower a request is. Raw output: var/bench/wrk-*.txt, var/bench/pgbench-*.txt."
  echo "The search runs after the create run, over every Observation it wrote (all visible to the"
  echo "practitioner: its organisation holds the patient's record); each answer counts them all."
  if [[ "$CREATE_ERR$READ_ERR$SEARCH_ERR$MIXED_ERR" =~ [1-9] ]]; then
    echo
    echo "**Warning: some Custodian requests failed (non-2xx or socket errors); the rates above include them.**"
  fi
} >"$OUT/results.md"

echo
cat "$OUT/results.md"
echo
echo "results written to var/bench/results.md"
