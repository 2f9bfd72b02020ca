#!/usr/bin/env bash
# `make run`: builds the suite in release mode, starts the six services on this machine with
# their databases on the local PostgreSQL and their streams on the project's own Redis (port
# 6380, a password per service: scripts/lib/redis.sh), loads the demo
# data set, prints where everything is, and runs until Ctrl-C (or SIGTERM), then stops every
# service cleanly. A service that dies meanwhile is restarted with a back-off, as Kubernetes
# would (logged to the terminal and var/log/supervisor.log).
#
# Overridable: GATEWAY_PORT IDENTITY_PORT CONSENT_PORT RECORDS_PORT LEDGER_PORT ANOMALY_PORT
# (8080..8085), DATABASE_BASE_URL (postgres://postgres@127.0.0.1:5432), DATABASE_PREFIX
# (custodian), REDIS_URL (one URL for every service instead of the project's Redis),
# CUSTODIAN_REDIS_PORT (6380), REDIS_STREAM_PREFIX (custodian), READY_TIMEOUT (90 s),
# STOP_GRACE (15 s), SKIP_BUILD=1, SKIP_SEED=1, RUST_LOG, BIN_DIR (target/release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/suite.sh
source scripts/lib/suite.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh

# Unconditional: on a fresh machine ensure-deps installs rustup into ~/.cargo/bin only later.
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> checking prerequisites"
scripts/ensure-deps.sh

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --release --bins"
  cargo build --release --bins
fi

# var/ holds everything this machine generates (gitignored): secrets, logs, pid files.
mkdir -p var/log var/run
chmod 700 var
if [ ! -s var/admin-password ]; then
  (umask 077 && openssl rand -base64 24 | tr -d '/+=\n' | head -c 24 >var/admin-password)
  echo "==> generated the administrator password in var/admin-password"
fi
chmod 600 var/admin-password
ADMIN_PASSWORD="$(cat var/admin-password)"
ADMIN_USERNAME="${ADMIN_USERNAME:-admin}"
export ADMIN_PASSWORD ADMIN_USERNAME

SUITE_BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
SUITE_LOG_DIR="$ROOT/var/log"
SUITE_RUN_DIR="$ROOT/var/run"
SUITE_DB_BASE="${DATABASE_BASE_URL:-postgres://postgres@127.0.0.1:5432}"
SUITE_DB_PREFIX="${DATABASE_PREFIX:-custodian}"
SUITE_STREAM_PREFIX="${REDIS_STREAM_PREFIX:-custodian}"
SUITE_REDIS_URL="${REDIS_URL:-}"
SUITE_KEY_FILE="$ROOT/var/records.key"
SUITE_KEYS_DIR="$ROOT/var/keys"
SUITE_READY_TIMEOUT="${READY_TIMEOUT:-90}"
SUITE_STOP_GRACE="${STOP_GRACE:-15}"
suite_defaults

STOPPING=0
shutdown() {
  local code="${1:-0}"
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap - INT TERM EXIT
  echo
  suite_stop
  exit "$code"
}
trap 'shutdown 0' INT TERM
trap 'shutdown $?' EXIT

if [ -z "$SUITE_REDIS_URL" ]; then
  echo "==> the project's Redis on 127.0.0.1:$CUSTODIAN_REDIS_PORT (passwords in var/redis/passwords)"
  redis_ensure || shutdown 1
fi
echo "==> starting services"
suite_start || shutdown 1
echo "==> waiting for /readyz"
suite_wait_ready || shutdown 1

GATEWAY="$(suite_url gateway)"
SEED_OUT="var/demo-credentials.txt"
if [ "${SKIP_SEED:-0}" != 1 ]; then
  if [ -x "$SUITE_BIN_DIR/demo-seed" ]; then
    echo "==> loading the demo data set (demo-seed)"
    if ! (umask 077 && "$SUITE_BIN_DIR/demo-seed" --gateway "$GATEWAY" --admin-password "$ADMIN_PASSWORD" >"$SEED_OUT.tmp" 2>var/log/demo-seed.log); then
      echo "error: demo-seed failed; its output:" >&2
      cat "$SEED_OUT.tmp" var/log/demo-seed.log >&2 || true
      rm -f "$SEED_OUT.tmp"
      shutdown 1
    fi
    mv "$SEED_OUT.tmp" "$SEED_OUT"
  else
    echo "warning: $SUITE_BIN_DIR/demo-seed not found; no demo data loaded" >&2
    : >"$SEED_OUT"
  fi
fi

cat <<EOF

================================================================================
 Custodian is running
   Gateway (FHIR API):  $GATEWAY/fhir
   API docs:            $GATEWAY/docs/
   Administrator:       username ${ADMIN_USERNAME}   password ${ADMIN_PASSWORD}
                        (kept in var/admin-password)
   Logs:                var/log/<service>.log
   Redis:               127.0.0.1:$CUSTODIAN_REDIS_PORT, a user per service (var/redis/passwords)
   Stream keys:         var/keys (signing keys, internal service token)
   Services:            identity $(suite_url identity)  consent $(suite_url consent)
                        records $(suite_url records)  ledger $(suite_url ledger)
                        anomaly $(suite_url anomaly)
   Witness:             $(suite_url witness) (a peer's witness, standing in: it cosigns
                        the ledger's checkpoints; keys in var/keys/*.vkey)
EOF
if [ -s "$SEED_OUT" ]; then
  echo "   Demo data (also in $SEED_OUT):"
  sed 's/^/     /' "$SEED_OUT"
fi
cat <<EOF
 Press Ctrl-C to stop.
================================================================================
EOF

# Wait for Ctrl-C / SIGTERM, restarting any service that dies meanwhile as Kubernetes would
# (scripts/lib/suite.sh: suite_supervise); `sleep & wait` so the trap runs at once.
while :; do
  suite_supervise
  sleep 1 &
  wait $! || true
done
