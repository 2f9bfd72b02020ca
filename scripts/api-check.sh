#!/usr/bin/env bash
# `make api-check`: does the API do what openapi/openapi.json says? schemathesis, with every
# check, against the whole suite running as real processes behind the gateway.
#
#  1. starts the six services and a witness on their own ports (29080..29085, witness 29094),
#     databases (custodian_apicheck_*) and Redis stream prefix, so a running `make run` or
#     `make bench` is not disturbed (scripts/lib/suite.sh, as scripts/bench.sh does);
#  2. seeds through the gateway (as scripts/bench.sh does): an organisation, a practitioner, a
#     patient user with their Patient resource and a Consent admitting the organisation; the
#     practitioner's token is the run's bearer token;
#  3. installs schemathesis into var/api-venv (scripts/ensure-api-tools.sh) and runs it with all
#     checks against the document the gateway serves (/openapi.json), through the gateway;
#  4. prints a summary (cases, failures by check, the failing operations) and writes the reports
#     to var/api-check/ (report.json, junit.xml, schemathesis.log); stops the suite and drops
#     its databases.
# Exits non-zero when schemathesis found any failure.
#
# Usage: scripts/api-check.sh [--quick]
#   (default)  the full run: every phase (examples, coverage, fuzzing, stateful), 50 examples
#              per operation (API_CHECK_EXAMPLES), no time limit;
#   --quick    what `make test` runs: the same checks, 5 examples per operation, a time budget
#              of 180 s (API_CHECK_MAX_TIME) for fuzzing and stateful testing, a fixed seed.
# Settings (env): API_CHECK_PORT_BASE (29080), API_CHECK_EXAMPLES, API_CHECK_MAX_TIME,
# API_CHECK_SEED (a fixed seed makes a run reproducible), API_CHECK_KEEP_DATA=1, SKIP_BUILD=1,
# API_CHECK_SERVE=1 (seed, then keep the suite up for manual requests instead of running),
# BIN_DIR (target/debug), RUST_LOG (warn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/suite.sh
source scripts/lib/suite.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=lib/seed.sh
source scripts/lib/seed.sh
export PATH="$HOME/.cargo/bin:$PATH"

QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if [ "$QUICK" = 1 ]; then
  EXAMPLES="${API_CHECK_EXAMPLES:-5}"
  MAX_TIME="${API_CHECK_MAX_TIME:-180}"
  # `make test` draws the same cases each time (a failure there is reproducible).
  API_CHECK_SEED="${API_CHECK_SEED:-20261201}"
else
  EXAMPLES="${API_CHECK_EXAMPLES:-50}"
  MAX_TIME="${API_CHECK_MAX_TIME:-}"
fi
# Below Linux's ephemeral range (32768-60999), where any outgoing connection may hold the port.
PORT_BASE="${API_CHECK_PORT_BASE:-29080}"
DB_BASE="${DATABASE_BASE_URL:-postgres://postgres@127.0.0.1:5432}"
DB_PREFIX="custodian_apicheck"
OUT="$ROOT/var/api-check"

echo "==> prerequisites"
ENSURE_DEPS_QUIET=1 scripts/ensure-deps.sh
TOOLS="$(scripts/ensure-api-tools.sh)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --bins"
  cargo build --bins
fi

rm -rf "$OUT"
mkdir -p "$OUT/log" "$OUT/run"
chmod 700 "$ROOT/var"

drop_databases() {
  local db
  for db in "${DB_PREFIX}"_{identity,consent,records,ledger,anomaly,witness}; do
    psql -w -q "$DB_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

GATEWAY_PORT=$((PORT_BASE)) IDENTITY_PORT=$((PORT_BASE + 1)) CONSENT_PORT=$((PORT_BASE + 2))
RECORDS_PORT=$((PORT_BASE + 3)) LEDGER_PORT=$((PORT_BASE + 4)) ANOMALY_PORT=$((PORT_BASE + 5))
WITNESS_PORT=$((PORT_BASE + 14))
SUITE_BIN_DIR="${BIN_DIR:-$ROOT/target/debug}"
SUITE_LOG_DIR="$OUT/log"
SUITE_RUN_DIR="$OUT/run"
SUITE_DB_BASE="$DB_BASE"
SUITE_DB_PREFIX="$DB_PREFIX"
SUITE_STREAM_PREFIX="${DB_PREFIX}_$(date +%s)_$$"
SUITE_REDIS_URL="${REDIS_URL:-}"
SUITE_KEY_FILE="$OUT/records.key"
SUITE_KEYS_DIR="$OUT/keys"
# One practitioner sends thousands of odd requests: anomaly must not suspend them halfway
# (suspension has its own tests); tokens outlive the run.
SUITE_EXTRA_ENV="ANOMALY_SUSPEND=false TOKEN_TTL_SECONDS=7200"
export RUST_LOG="${RUST_LOG:-warn}"
ADMIN_PASSWORD="$(openssl rand -hex 16)"
export ADMIN_PASSWORD
suite_defaults

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  suite_stop
  suite_delete_streams
  if [ "${API_CHECK_KEEP_DATA:-0}" != 1 ]; then drop_databases; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_databases
echo "==> starting the suite on ports $GATEWAY_PORT..$ANOMALY_PORT (databases ${DB_PREFIX}_*)"
if [ -z "$SUITE_REDIS_URL" ]; then
  redis_pick_port
  redis_ensure
fi
suite_start
suite_wait_ready
GW="$(suite_url gateway)"

# ---------------------------------------------------------------------------------------------
# Seed through the gateway.
# ---------------------------------------------------------------------------------------------
seed_clinic apicheck "API Check Hospital"
echo "  organisation $ORG_REF, patient $PATIENT_REF"

if [ "${API_CHECK_SERVE:-0}" = 1 ]; then
  # To reproduce a failure by hand: the suite stays up until Ctrl-C.
  printf '%s\n' "$PRACT_TOKEN" >"$OUT/token"
  chmod 600 "$OUT/token"
  echo "==> serving at $GW (practitioner token in $OUT/token); Ctrl-C stops"
  # In the background and waited for, so that Ctrl-C (or a TERM) stops the wait at once.
  while :; do sleep 3600 & wait $!; done
fi

# ---------------------------------------------------------------------------------------------
# schemathesis
# ---------------------------------------------------------------------------------------------
declare -a ARGS=(
  --config-file "$ROOT/scripts/api-check.toml"
  run "$GW/openapi.json" --url "$GW"
  --checks all
  --header "Authorization: Bearer $PRACT_TOKEN"
  --max-examples "$EXAMPLES"
  # One worker: hypothesis's lambda descriptions are not thread-safe on CPython 3.11 ("AST
  # constructor recursion depth mismatch" errors with several).
  --workers 1
  --request-timeout 30
  --report json,junit
  --report-json-path "$OUT/report.json"
  --report-junit-path "$OUT/junit.xml"
  # The token is in every request it prints; the reports stay under var/ (gitignored).
  --output-sanitize true
)
[ -n "$MAX_TIME" ] && ARGS+=(--max-time "$MAX_TIME")
[ -n "${API_CHECK_SEED:-}" ] && ARGS+=(--seed "$API_CHECK_SEED")
echo "==> schemathesis ${ARGS[*]/$PRACT_TOKEN/<token>}"
set +e
# From $OUT: schemathesis keeps a cache of past failures (.schemathesis/) in its working
# directory; under var/api-check it is fresh each run and never in the checkout.
(cd "$OUT" && "$TOOLS/schemathesis" "${ARGS[@]}") 2>&1 | tee "$OUT/schemathesis.log"
RC=${PIPESTATUS[0]}
set -e

echo
echo "================================ API check summary ==============================="
"$TOOLS/python" scripts/api-check-summary.py "$OUT/report.json" || true
echo "  reports: $OUT/{report.json,junit.xml,schemathesis.log}"
if [ "$RC" -eq 0 ]; then echo "  RESULT: PASS"; else echo "  RESULT: FAIL (schemathesis exit $RC)"; fi
echo "=================================================================================="
exit "$RC"
