#!/usr/bin/env bash
# A login flood against one identity binary on loopback, reporting its memory and the latency of
# an honest login during the flood (issue 5, "Logins").
#
#   services/identity/bench/login-flood.sh [BINARY]        (default target/debug/identity)
#   MODE=same|spread|unknown DURATION=15s CONNECTIONS=64 PORT=18081
#
# Needs wrk, curl, PostgreSQL and Redis on loopback. Creates and drops its own database.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BIN="${1:-$here/../../../target/debug/identity}"
MODE="${MODE:-same}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT="${PORT:-18081}"
ADMIN_PASSWORD="flood-admin-password-1"
PROBE_PASSWORD="flood-probe-password-1"
tag="flood_$(date +%s)_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/identity_${tag}"
export REDIS_STREAM_PREFIX="$tag" PORT ADMIN_PASSWORD RUST_LOG="${RUST_LOG:-warn}"
url="http://127.0.0.1:$PORT"

"$BIN" >"/tmp/${tag}.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS identity_${tag} WITH (FORCE)" >/dev/null 2>&1 || true
  for s in access identity alerts consent; do redis-cli DEL "$tag:$s" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' "/proc/$pid/status"; }
login() { # user password [xff] -> "status seconds"
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "X-Forwarded-For: ${3:-198.51.100.10}" \
    --data-urlencode grant_type=password --data-urlencode "username=$1" --data-urlencode "password=$2" \
    "$url/auth/token"
}
admin_token=$(curl -s --data-urlencode grant_type=password --data-urlencode username=admin \
  --data-urlencode "password=$ADMIN_PASSWORD" "$url/auth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -s -o /dev/null -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d "{\"username\":\"probe\",\"password\":\"$PROBE_PASSWORD\",\"role\":\"auditor\"}" "$url/auth/admin/users"

echo "mode=$MODE connections=$CONNECTIONS duration=$DURATION binary=$BIN"
echo "RSS at rest: $(rss) MB; honest login at rest: $(login probe "$PROBE_PASSWORD")"
(
  while kill -0 "$pid" 2>/dev/null; do
    echo "probe during flood: $(login probe "$PROBE_PASSWORD" 198.51.100.20)"
    sleep 1
  done
) >"/tmp/${tag}.probe" &
prober=$!
MODE="$MODE" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 30s -s "$here/wrong-passwords.lua" "$url/auth/token" || true
kill "$prober" 2>/dev/null || true
wait "$prober" 2>/dev/null || true
echo "RSS after flood: $(rss) MB (peak $(hwm) MB)"
echo "honest logins during flood by status: $(awk '{print $4}' "/tmp/${tag}.probe" | sort | uniq -c | tr -s ' ' | paste -sd,)"
awk '{print $5}' "/tmp/${tag}.probe" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "honest logins during flood: %d, median %.3fs, max %.3fs\n", NR, a[int((NR+1)/2)], a[NR]}'
echo "right password of the attacked account afterwards: $(login admin "$ADMIN_PASSWORD" 198.51.100.30)"
sleep 10
echo "RSS 10 s later: $(rss) MB"
rm -f "/tmp/${tag}.probe"
