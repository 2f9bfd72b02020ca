#!/usr/bin/env bash
# `make clean-data`: forget the local data set of `make run` and `make bench`:
#   - drops the databases custodian_{identity,consent,records,ledger,anomaly} and the
#     custodian_bench_* ones (DATABASE_PREFIX overrides "custodian");
#   - stops the project's own Redis (port 6380, data in var/redis, nothing persisted) and deletes
#     the keys of the "custodian" stream prefix (REDIS_STREAM_PREFIX overrides) on a Redis that
#     answers without a password on REDIS_HOST:REDIS_PORT (127.0.0.1:6379, from older versions);
#   - removes var/ (administrator password, records key, Redis passwords, stream signing keys,
#     internal service token, logs, bench results).
# The build (target/) is kept. Refuses while `make run` is still running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DB_BASE="${DATABASE_BASE_URL:-postgres://postgres@127.0.0.1:5432}"
PREFIX="${DATABASE_PREFIX:-custodian}"
STREAM_PREFIX="${REDIS_STREAM_PREFIX:-custodian}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

for pidfile in var/run/*.pid; do
  [ -e "$pidfile" ] || continue
  if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "error: $(basename "$pidfile" .pid) is still running (pid $(cat "$pidfile")); stop 'make run' first" >&2
    exit 1
  fi
done

echo "==> dropping databases"
for db in "${PREFIX}"_{identity,consent,records,ledger,anomaly} custodian_bench_{identity,consent,records,ledger,anomaly,raw}; do
  psql -w -q "$DB_BASE/postgres" -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" 2>&1 | grep -v 'does not exist, skipping' || true
  echo "  $db"
done

echo "==> stopping the project's Redis (127.0.0.1:${CUSTODIAN_REDIS_PORT:-6380})"
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
redis_stop

echo "==> deleting Redis keys ${STREAM_PREFIX}:* on $REDIS_HOST:$REDIS_PORT"
count=0
if [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; then
  while IFS= read -r key; do
    [ -n "$key" ] || continue
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del "$key" >/dev/null
    count=$((count + 1))
  done < <(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "${STREAM_PREFIX}:*")
fi
echo "  $count keys"

echo "==> removing var/"
rm -rf var
echo "done"
