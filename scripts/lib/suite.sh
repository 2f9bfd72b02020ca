# shellcheck shell=bash
# Starting and stopping the six Custodian services as local processes, and a witness: the
# ledger binary run as `ledger witness`, standing in for a peer hospital that cosigns the
# ledger's checkpoints (the ledger publishes a checkpoint once it cosigned). Sourced by scripts/run.sh
# and scripts/bench.sh; not meant to be run on its own.
#
# Inputs (set before calling suite_start; every one has a default):
#   SUITE_BIN_DIR        directory with the six binaries (target/release)
#   SUITE_LOG_DIR        one <svc>.log per service
#   SUITE_RUN_DIR        pid files
#   SUITE_DB_BASE        postgres://postgres@127.0.0.1:5432 (no database name)
#   SUITE_DB_PREFIX      custodian  -> databases custodian_identity, custodian_consent, ...
#   SUITE_STREAM_PREFIX  custodian  -> REDIS_STREAM_PREFIX
#   SUITE_REDIS_URL      one REDIS_URL for every service; when empty (the default) each service
#                        gets its own ACL user on the project's Redis (scripts/lib/redis.sh,
#                        which the caller must have sourced and started with redis_ensure)
#   SUITE_KEY_FILE       RECORDS_KEY_FILE
#   SUITE_KEYS_DIR       stream signing keys and the internal service token (var/keys):
#                        STREAM_SIGNING_KEY_FILE, STREAM_TRUSTED_KEYS_DIR, INTERNAL_TOKEN_FILE
#   GATEWAY_PORT IDENTITY_PORT CONSENT_PORT RECORDS_PORT LEDGER_PORT ANOMALY_PORT (8080..8085)
#   WITNESS_PORT         the witness (8094)
#   SUITE_WITNESS        1 (default): run the witness, the ledger publishing what it cosigned;
#                        0: no witness, the ledger publishes what it signed
#   ADMIN_PASSWORD       identity bootstraps the administrator with it
#   SUITE_READY_TIMEOUT  seconds to wait for every /readyz (90)
#   SUITE_STOP_GRACE     seconds between SIGTERM and SIGKILL (15)
#   SUITE_EXTRA_ENV      extra NAME=value words given to every service (e.g. ANOMALY_SUSPEND=false)

SUITE_SERVICES=(identity consent records witness ledger anomaly gateway)
declare -A SUITE_PIDS=()

suite_defaults() {
  : "${SUITE_BIN_DIR:?SUITE_BIN_DIR must be set}"
  : "${SUITE_LOG_DIR:?SUITE_LOG_DIR must be set}"
  : "${SUITE_RUN_DIR:=$SUITE_LOG_DIR/../run}"
  : "${SUITE_DB_BASE:=postgres://postgres@127.0.0.1:5432}"
  : "${SUITE_DB_PREFIX:=custodian}"
  : "${SUITE_STREAM_PREFIX:=custodian}"
  : "${SUITE_REDIS_URL:=}"
  : "${SUITE_KEYS_DIR:=$SUITE_LOG_DIR/../keys}"
  : "${SUITE_READY_TIMEOUT:=90}"
  : "${SUITE_STOP_GRACE:=15}"
  : "${SUITE_EXTRA_ENV:=}"
  : "${SUITE_WITNESS:=1}" "${WITNESS_PORT:=8094}"
  if [ "$SUITE_WITNESS" != 1 ]; then
    SUITE_SERVICES=(identity consent records ledger anomaly gateway)
  fi
  : "${GATEWAY_PORT:=8080}" "${IDENTITY_PORT:=8081}" "${CONSENT_PORT:=8082}"
  : "${RECORDS_PORT:=8083}" "${LEDGER_PORT:=8084}" "${ANOMALY_PORT:=8085}"
}

suite_port() {
  case "$1" in
    gateway) echo "$GATEWAY_PORT" ;;
    identity) echo "$IDENTITY_PORT" ;;
    consent) echo "$CONSENT_PORT" ;;
    records) echo "$RECORDS_PORT" ;;
    ledger) echo "$LEDGER_PORT" ;;
    anomaly) echo "$ANOMALY_PORT" ;;
    witness) echo "$WITNESS_PORT" ;;
    *) return 1 ;;
  esac
}

suite_url() { echo "http://127.0.0.1:$(suite_port "$1")"; }

# The program of a service: its binary (the witness is the ledger binary's `witness` mode).
suite_bin() {
  case "$1" in
    witness) echo "$SUITE_BIN_DIR/ledger" ;;
    *) echo "$SUITE_BIN_DIR/$1" ;;
  esac
}
suite_args() {
  case "$1" in
    witness) echo witness ;;
  esac
}

# The name of the local witness's key, and of the log it witnesses (LEDGER_ORIGIN's default).
SUITE_WITNESS_NAME="custodian.local/witness"
SUITE_LEDGER_ORIGIN="custodian.local/ledger"

# REDIS_URL of one service: SUITE_REDIS_URL when set, else its own ACL user.
suite_redis_url() {
  if [ -n "$SUITE_REDIS_URL" ]; then echo "$SUITE_REDIS_URL"; else redis_url_for "$1"; fi
}

# The stream signing keys of the producers whose messages others obey (identity, consent,
# anomaly, records), with their public keys beside them, and the internal service token. The services
# would create them at start too; creating them first means every consumer trusts every
# producer from its first message, whatever the start order.
suite_keys() {
  local svc
  (umask 077 && mkdir -p "$SUITE_KEYS_DIR")
  chmod 700 "$SUITE_KEYS_DIR"
  for svc in identity consent anomaly records; do
    if [ ! -s "$SUITE_KEYS_DIR/$svc-stream.pem" ]; then
      (umask 077 && openssl genpkey -algorithm ed25519 -out "$SUITE_KEYS_DIR/$svc-stream.pem" 2>/dev/null)
    fi
    if [ ! -s "$SUITE_KEYS_DIR/$svc-stream.pub" ]; then
      openssl pkey -in "$SUITE_KEYS_DIR/$svc-stream.pem" -pubout -out "$SUITE_KEYS_DIR/$svc-stream.pub" 2>/dev/null
    fi
  done
  if [ ! -s "$SUITE_KEYS_DIR/internal.token" ]; then
    (umask 077 && openssl rand -hex 32 >"$SUITE_KEYS_DIR/internal.token")
  fi
  # The ledger's checkpoint signing key and the witness's cosigning key (files, as Kubernetes
  # Secrets would mount them), with the verifier keys each side trusts of the other.
  if [ ! -s "$SUITE_KEYS_DIR/ledger-signing.key" ]; then
    rm -f "$SUITE_KEYS_DIR/ledger-signing.key"
    "$SUITE_BIN_DIR/ledger" keygen --name "$SUITE_LEDGER_ORIGIN" \
      --out "$SUITE_KEYS_DIR/ledger-signing.key" >"$SUITE_KEYS_DIR/ledger.vkey"
  fi
  if [ ! -s "$SUITE_KEYS_DIR/witness.key" ]; then
    rm -f "$SUITE_KEYS_DIR/witness.key"
    "$SUITE_BIN_DIR/ledger" keygen --name "$SUITE_WITNESS_NAME" --cosigner \
      --out "$SUITE_KEYS_DIR/witness.key" >"$SUITE_KEYS_DIR/witness.vkey"
  fi
}

# The environment of one service, as NAME=value words (see docs/contracts.md).
suite_env() {
  local svc="$1"
  if [ "$svc" = witness ]; then
    printf '%s\n' "WITNESS_HOST=127.0.0.1" "WITNESS_PORT=$WITNESS_PORT" \
      "WITNESS_DATABASE_URL=$SUITE_DB_BASE/${SUITE_DB_PREFIX}_witness" \
      "WITNESS_NAME=$SUITE_WITNESS_NAME" "WITNESS_KEY_FILE=$SUITE_KEYS_DIR/witness.key" \
      "WITNESS_LOGS=$(cat "$SUITE_KEYS_DIR/ledger.vkey")" "RUST_LOG=${RUST_LOG:-info}"
    return
  fi
  local -a env=(
    "HOST=127.0.0.1"
    "PORT=$(suite_port "$svc")"
    "REDIS_URL=$(suite_redis_url "$svc")"
    "REDIS_STREAM_PREFIX=$SUITE_STREAM_PREFIX"
    "TOKEN_ISSUER=$(suite_url gateway)"
    "JWKS_URL=$(suite_url identity)/.well-known/jwks.json"
    "PUBLIC_URL=$(suite_url gateway)"
    "RUST_LOG=${RUST_LOG:-info}"
    "STREAM_SIGNING_KEY_FILE=$SUITE_KEYS_DIR/$svc-stream.pem"
    "STREAM_TRUSTED_KEYS_DIR=$SUITE_KEYS_DIR"
    "INTERNAL_TOKEN_FILE=$SUITE_KEYS_DIR/internal.token"
    "IDENTITY_URL=$(suite_url identity)"
  )
  if [ "$svc" != gateway ]; then
    env+=("DATABASE_URL=$SUITE_DB_BASE/${SUITE_DB_PREFIX}_$svc")
  fi
  case "$svc" in
    identity) env+=("ADMIN_USERNAME=${ADMIN_USERNAME:-admin}" "ADMIN_PASSWORD=${ADMIN_PASSWORD:-}") ;;
    consent) env+=("RECORDS_URL=$(suite_url records)") ;;
    records) env+=("CONSENT_URL=$(suite_url consent)" "RECORDS_KEY_FILE=$SUITE_KEY_FILE") ;;
    ledger)
      env+=("LEDGER_ORIGIN=$SUITE_LEDGER_ORIGIN" "LEDGER_SIGNING_KEY_FILE=$SUITE_KEYS_DIR/ledger-signing.key")
      if [ "$SUITE_WITNESS" = 1 ]; then
        env+=(
          "LEDGER_WITNESSES=$(cat "$SUITE_KEYS_DIR/witness.vkey")@$(suite_url witness)"
          "LEDGER_WITNESS_QUORUM=1"
        )
      fi
      ;;
    gateway)
      env+=(
        "IDENTITY_URL=$(suite_url identity)" "CONSENT_URL=$(suite_url consent)"
        "RECORDS_URL=$(suite_url records)" "LEDGER_URL=$(suite_url ledger)"
        "ANOMALY_URL=$(suite_url anomaly)"
      )
      ;;
  esac
  # shellcheck disable=SC2206 # word splitting is the point: NAME=value words
  env+=($SUITE_EXTRA_ENV)
  printf '%s\n' "${env[@]}"
}

suite_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

suite_log_tail() {
  local svc="$1" log="$SUITE_LOG_DIR/$1.log"
  echo "---- last 30 lines of $log ----" >&2
  tail -n 30 "$log" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----" >&2
}

suite_start() {
  suite_defaults
  mkdir -p "$SUITE_LOG_DIR" "$SUITE_RUN_DIR"
  local svc port
  [ -x "$SUITE_BIN_DIR/ledger" ] || { echo "error: $SUITE_BIN_DIR/ledger does not exist (build failed?)" >&2; return 1; }
  suite_keys
  for svc in "${SUITE_SERVICES[@]}"; do
    [ -x "$(suite_bin "$svc")" ] || { echo "error: $(suite_bin "$svc") does not exist (build failed?)" >&2; return 1; }
    port="$(suite_port "$svc")"
    if suite_port_busy "$port"; then
      echo "error: port $port ($svc) is already in use; another 'make run' or 'make bench'?" >&2
      echo "       stop it, or choose other ports (e.g. ${svc^^}_PORT=...)" >&2
      return 1
    fi
  done
  for svc in "${SUITE_SERVICES[@]}"; do
    suite_start_one "$svc" new
    printf '  started %-8s pid %-7s port %s  log %s\n' "$svc" "${SUITE_PIDS[$svc]}" "$(suite_port "$svc")" "$SUITE_LOG_DIR/$svc.log"
  done
}

declare -A SUITE_STARTED_AT=() SUITE_RESTARTS=() SUITE_RESTART_AT=()

# Starts one service; `new` truncates its log, `append` (a restart) keeps what it said before.
suite_start_one() {
  local svc="$1" mode="$2"
  local -a env=() args=()
  mapfile -t env < <(suite_env "$svc")
  # shellcheck disable=SC2207 # one word or none
  args=($(suite_args "$svc"))
  # setsid: the services get their own session, so a Ctrl-C in the terminal reaches only this
  # script, which then stops them in order (SIGTERM, grace period, SIGKILL).
  if [ "$mode" = append ]; then
    setsid env "${env[@]}" "$(suite_bin "$svc")" "${args[@]}" >>"$SUITE_LOG_DIR/$svc.log" 2>&1 </dev/null &
  else
    setsid env "${env[@]}" "$(suite_bin "$svc")" "${args[@]}" >"$SUITE_LOG_DIR/$svc.log" 2>&1 </dev/null &
  fi
  SUITE_PIDS[$svc]=$!
  SUITE_STARTED_AT[$svc]=$(date +%s)
  echo "${SUITE_PIDS[$svc]}" >"$SUITE_RUN_DIR/$svc.pid"
}

# One round of supervision, as Kubernetes restarts a container: a service that exited is started
# again after a back-off that doubles with each restart (1, 2, 4 ... 30 s) and starts over once
# it has run for a minute. Every exit and restart is logged to stderr and var/log/supervisor.log
# (SUITE_LOG_DIR). Call it every second or two.
suite_supervise() {
  local svc pid code now ran n delay
  now=$(date +%s)
  for svc in "${SUITE_SERVICES[@]}"; do
    pid="${SUITE_PIDS[$svc]:-}"
    [ -n "$pid" ] || continue
    if [ -z "${SUITE_RESTART_AT[$svc]:-}" ]; then
      kill -0 "$pid" 2>/dev/null && continue
      code=0
      wait "$pid" 2>/dev/null || code=$?
      ran=$(( now - ${SUITE_STARTED_AT[$svc]:-$now} ))
      n="${SUITE_RESTARTS[$svc]:-0}"
      [ "$ran" -ge 60 ] && n=0
      delay=$(( 1 << (n < 5 ? n : 5) ))
      [ "$delay" -gt 30 ] && delay=30
      SUITE_RESTARTS[$svc]=$(( n + 1 ))
      SUITE_RESTART_AT[$svc]=$(( now + delay ))
      suite_supervisor_log "$svc exited (status $code) after ${ran}s; restarting in ${delay}s (restart $(( n + 1 )) in a row)"
      suite_log_tail "$svc"
    elif [ "$now" -ge "${SUITE_RESTART_AT[$svc]}" ]; then
      unset 'SUITE_RESTART_AT[$svc]'
      suite_start_one "$svc" append
      suite_supervisor_log "$svc restarted, pid ${SUITE_PIDS[$svc]}"
    fi
  done
}

suite_supervisor_log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) supervisor: $*"
  echo "$line" >&2
  echo "$line" >>"$SUITE_LOG_DIR/supervisor.log"
}

# Waits for every service's /readyz, answered by that service (the body names it). On a timeout
# or an early exit: error with the log tail.
suite_wait_ready() {
  local svc port deadline
  deadline=$(( $(date +%s) + SUITE_READY_TIMEOUT ))
  for svc in "${SUITE_SERVICES[@]}"; do
    port="$(suite_port "$svc")"
    while :; do
      # Ready, and as itself: another process on the port would answer for it.
      if curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null |
        grep -q "\"service\":\"$svc\""; then
        printf '  ready   %-8s http://127.0.0.1:%s\n' "$svc" "$port"
        break
      fi
      if ! kill -0 "${SUITE_PIDS[$svc]}" 2>/dev/null; then
        echo "error: $svc exited before it became ready" >&2
        suite_log_tail "$svc"
        return 1
      fi
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "error: $svc not ready on http://127.0.0.1:$port/readyz after ${SUITE_READY_TIMEOUT}s" >&2
        curl -sS --max-time 2 "http://127.0.0.1:$port/readyz" >&2 2>/dev/null && echo >&2
        suite_log_tail "$svc"
        return 1
      fi
      sleep 0.3
    done
  done
}

# Deletes the suite's streams (SUITE_STREAM_PREFIX:*) from its Redis: SUITE_REDIS_URL when set,
# else the project's Redis as its administrator (scripts/lib/redis.sh must be sourced).
suite_delete_streams() {
  if [ -n "$SUITE_REDIS_URL" ]; then
    redis-cli -u "$SUITE_REDIS_URL" --scan --pattern "${SUITE_STREAM_PREFIX}:*" 2>/dev/null |
      while IFS= read -r key; do redis-cli -u "$SUITE_REDIS_URL" del "$key" >/dev/null; done || true
  else
    redis_cli_admin --scan --pattern "${SUITE_STREAM_PREFIX}:*" 2>/dev/null |
      while IFS= read -r key; do redis_cli_admin del "$key" >/dev/null; done || true
  fi
}

# SIGTERM to every service we started, wait up to SUITE_STOP_GRACE seconds, then SIGKILL.
suite_stop() {
  local svc pid alive deadline
  [ "${#SUITE_PIDS[@]}" -gt 0 ] || return 0
  echo "stopping services (SIGTERM, ${SUITE_STOP_GRACE:-15}s grace)..." >&2
  # Gateway first so no new requests arrive, then the rest.
  for svc in gateway identity consent records ledger anomaly witness; do
    pid="${SUITE_PIDS[$svc]:-}"
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$(( $(date +%s) + ${SUITE_STOP_GRACE:-15} ))
  while :; do
    alive=()
    for svc in "${!SUITE_PIDS[@]}"; do
      kill -0 "${SUITE_PIDS[$svc]}" 2>/dev/null && alive+=("$svc")
    done
    [ "${#alive[@]}" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "still running after grace period, sending SIGKILL: ${alive[*]}" >&2
      for svc in "${alive[@]}"; do kill -KILL "${SUITE_PIDS[$svc]}" 2>/dev/null || true; done
      break
    fi
    sleep 0.2
  done
  for svc in "${!SUITE_PIDS[@]}"; do
    wait "${SUITE_PIDS[$svc]}" 2>/dev/null || true
    rm -f "$SUITE_RUN_DIR/$svc.pid"
  done
  SUITE_PIDS=()
  echo "all services stopped" >&2
}
