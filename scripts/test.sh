#!/usr/bin/env bash
# `make test` (and CI): prerequisites, the project's own Redis (port 6380, a password per
# service: scripts/lib/redis.sh), a debug build of every binary (the end-to-end tests in
# integration-tests start them from target/debug, each service with its own Redis user), then
# every test of the workspace. The crates' own tests use the plain Redis on 6379 that
# ensure-deps starts (a test fixture, as PostgreSQL's trust login is).
# Exits non-zero when any step fails. Extra arguments go to `cargo test` (e.g. -- --nocapture).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Unconditional: on a fresh machine ensure-deps installs rustup into ~/.cargo/bin only later.
export PATH="$HOME/.cargo/bin:$PATH"

mkdir -p var/log
LOG="var/log/test.log"
: >"$LOG"
declare -a STEPS=() RESULTS=() TIMES=()
FAILED=0

step() {
  local name="$1"
  shift
  local start end rc
  echo
  echo "==> $name"
  start=$(date +%s)
  set +e
  "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  end=$(date +%s)
  STEPS+=("$name")
  TIMES+=("$((end - start))s")
  if [ "$rc" -eq 0 ]; then RESULTS+=("ok"); else RESULTS+=("FAILED (exit $rc)"); FAILED=1; fi
  return "$rc"
}

summary() {
  echo
  echo "================================ test summary ================================"
  local i
  for i in "${!STEPS[@]}"; do
    printf '  %-40s %-18s %s\n' "${STEPS[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
  done
  # Totals over every test binary's "test result:" line.
  local passed failed ignored
  read -r passed failed ignored < <(
    grep -E '^test result:' "$LOG" | awk '{
      for (i = 1; i <= NF; i++) {
        if ($(i) ~ /^passed;?$/) p += $(i-1);
        if ($(i) ~ /^failed;?$/) f += $(i-1);
        if ($(i) ~ /^ignored;?$/) g += $(i-1);
      }
    } END { printf "%d %d %d\n", p, f, g }'
  ) || true
  echo "  tests: ${passed:-0} passed, ${failed:-0} failed, ${ignored:-0} ignored"
  if grep -qE '^test .* \.\.\. FAILED$' "$LOG"; then
    echo "  failing tests:"
    grep -E '^test .* \.\.\. FAILED$' "$LOG" | sed -E 's/^test (.*) \.\.\. FAILED$/    - \1/' | sort -u
  fi
  echo "  full log: $LOG"
  if [ "$FAILED" -eq 0 ]; then
    echo "  RESULT: PASS"
  else
    echo "  RESULT: FAIL"
  fi
  echo "=============================================================================="
}
trap summary EXIT

step "prerequisites (scripts/ensure-deps.sh)" scripts/ensure-deps.sh || exit 1
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
# Not in a pipeline (`step` pipes): the port it picks must stay set in this shell.
redis_pick_port
step "the project's Redis on port $CUSTODIAN_REDIS_PORT (scripts/lib/redis.sh)" redis_ensure || exit 1
# The end-to-end suite gives each service its own Redis user (integration-tests/src/suite.rs).
for svc in identity consent records ledger anomaly gateway; do
  export "E2E_REDIS_URL_${svc^^}=$(redis_url_for "$svc")"
done
step "cargo build --workspace --bins" cargo build --workspace --bins || exit 1
# --no-fail-fast: report every failing test binary, not only the first.
step "cargo test --workspace" cargo test --workspace --no-fail-fast "$@" || exit 1
# The detector on a small hospital of the generator written apart from it (`make detect-eval
# SETS=independent` is the full run): its log read whole and some incident found.
step "independent hospital (scripts/detect-eval/independent-smoke.sh)" \
  scripts/detect-eval/independent-smoke.sh || exit 1
# Does the API do what openapi/openapi.json says? schemathesis with every check against the
# whole suite, a few examples per operation within a time budget (`make api-check` is the full
# run). A step of its own rather than a cargo test: it runs the six binaries on ports and
# databases of its own for a few minutes, which would compete with the parallel test binaries.
step "API check (scripts/api-check.sh --quick)" env SKIP_BUILD=1 scripts/api-check.sh --quick || exit 1
exit 0
