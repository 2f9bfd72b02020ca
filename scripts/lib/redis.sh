# shellcheck shell=bash
# The project's own Redis, with a password per service. Sourced by scripts/run.sh,
# scripts/test.sh, scripts/bench.sh and scripts/clean-data.sh; not meant to be run on its own.
#
# `make run` and the end-to-end tests do not use whatever Redis answers on 6379 (often one
# without a password): they start their own on CUSTODIAN_REDIS_PORT (6380), from var/redis/,
# bound to the loopback addresses, with an append-only file synced on every write and
#   - the `default` user disabled: every connection must authenticate;
#   - one ACL user per service that may run only the stream commands it needs, on only the
#     streams it produces or consumes (`%W~*:consent` for consent, `%R~*:consent` for records,
#     ...), so a service's password cannot forge another service's messages;
#   - an `admin` user for the scripts (clean-data, bench clean-up).
# Passwords are random (openssl rand), generated once into var/redis/passwords/<user> (0600,
# never committed: var/ is gitignored) and stored hashed in var/redis/users.acl. Services get
# REDIS_URL=redis://<service>:<password>@127.0.0.1:6380 and log it without the password.
#
# Inputs: ROOT (the checkout), CUSTODIAN_REDIS_PORT (6380).

CUSTODIAN_REDIS_PORT="${CUSTODIAN_REDIS_PORT:-6380}"
CUSTODIAN_REDIS_DIR="$ROOT/var/redis"
CUSTODIAN_REDIS_USERS=(identity consent records ledger anomaly gateway admin)

# What each service may do, as ACL selectors (Redis >= 7). Keys are stream names under any
# prefix (REDIS_STREAM_PREFIX; the tests use random ones).
#   produce S: XADD to S              tail S: XREAD/XREVRANGE/XRANGE of S
#   group S:   consumer group on S, dead-letters to S:dead
redis_acl_rules() {
  local produce=() tail=() group=() rules="" s
  case "$1" in
    identity) produce=(access identity) tail=(identity) group=(alerts) ;;
    consent) produce=(access consent) tail=(identity relationships) ;;
    # records tails its own relationships stream too: other records replicas' memberships.
    records) produce=(access relationships) tail=(consent identity relationships) ;;
    ledger) tail=(identity) group=(access) ;;
    anomaly) produce=(alerts access) tail=(identity) group=(access relationships) ;;
    gateway) tail=(identity) ;;
    admin) echo "~* &* +@all"; return ;;
    *) return 1 ;;
  esac
  # Connection upkeep only at the top level; every key permission is in a selector.
  rules="resetkeys resetchannels -@all +ping +echo +select +client|getname +client|setname +client|id"
  # A producer's outbox keeps what it published until every group acknowledged it, and checks
  # that Redis still holds it (XRANGE, XINFO GROUPS, XPENDING: reads only).
  for s in "${produce[@]}"; do rules+=" (%W~*:$s +xadd) (%R~*:$s +xrange +xinfo|groups +xpending)"; done
  for s in "${tail[@]}"; do rules+=" (%R~*:$s +xread +xrevrange +xrange)"; done
  for s in "${group[@]}"; do
    rules+=" (~*:$s +xreadgroup +xack +xgroup|create +xgroup|delconsumer +xpending +xclaim +xautoclaim +xrange +xinfo|groups +xinfo|consumers)"
    rules+=" (%W~*:$s:dead +xadd)"
  done
  echo "$rules"
}

redis_password() { cat "$CUSTODIAN_REDIS_DIR/passwords/$1"; }

# redis://<service>:<password>@127.0.0.1:<port> for one service (or admin).
redis_url_for() {
  echo "redis://$1:$(redis_password "$1")@127.0.0.1:$CUSTODIAN_REDIS_PORT"
}

redis_cli_admin() {
  REDISCLI_AUTH="$(redis_password admin)" redis-cli --no-auth-warning --user admin \
    -h 127.0.0.1 -p "$CUSTODIAN_REDIS_PORT" "$@"
}

# Passwords (created once) and the ACL file (rewritten every time, from the rules above).
redis_write_config() {
  local user pw hash
  (umask 077 && mkdir -p "$CUSTODIAN_REDIS_DIR/passwords")
  chmod 700 "$CUSTODIAN_REDIS_DIR" "$CUSTODIAN_REDIS_DIR/passwords"
  {
    echo "user default off resetkeys -@all"
    for user in "${CUSTODIAN_REDIS_USERS[@]}"; do
      if [ ! -s "$CUSTODIAN_REDIS_DIR/passwords/$user" ]; then
        (umask 077 && openssl rand -hex 24 >"$CUSTODIAN_REDIS_DIR/passwords/$user")
      fi
      pw="$(redis_password "$user")"
      hash="$(printf '%s' "$pw" | sha256sum | awk '{print $1}')"
      echo "user $user on #$hash $(redis_acl_rules "$user")"
    done
  } >"$CUSTODIAN_REDIS_DIR/users.acl.tmp"
  chmod 600 "$CUSTODIAN_REDIS_DIR/users.acl.tmp"
  mv "$CUSTODIAN_REDIS_DIR/users.acl.tmp" "$CUSTODIAN_REDIS_DIR/users.acl"
  cat >"$CUSTODIAN_REDIS_DIR/redis.conf" <<EOF
# Written by scripts/lib/redis.sh: Custodian's own Redis for make run and the tests.
bind 127.0.0.1 -::1
protected-mode yes
port $CUSTODIAN_REDIS_PORT
daemonize yes
dir $CUSTODIAN_REDIS_DIR
pidfile $CUSTODIAN_REDIS_DIR/redis.pid
logfile $CUSTODIAN_REDIS_DIR/redis.log
aclfile $CUSTODIAN_REDIS_DIR/users.acl
save ""
# Every acknowledged write is on disk before Redis answers: the relays forget an event only once
# it is here (and every group acknowledged it), and they publish in batches, one fsync each.
appendonly yes
appendfsync always
appendfilename "custodian.aof"
EOF
  chmod 600 "$CUSTODIAN_REDIS_DIR/redis.conf"
}

redis_answers_admin() {
  [ "$(redis_cli_admin ping 2>/dev/null)" = "PONG" ]
}

# Makes sure the project's Redis runs on CUSTODIAN_REDIS_PORT with the current ACL file.
redis_ensure() {
  command -v redis-server >/dev/null 2>&1 || { echo "error: redis-server is not installed (scripts/ensure-deps.sh installs it)" >&2; return 1; }
  redis_write_config
  if redis_answers_admin; then
    redis_cli_admin acl load >/dev/null || { echo "error: the Redis on port $CUSTODIAN_REDIS_PORT did not reload $CUSTODIAN_REDIS_DIR/users.acl" >&2; return 1; }
    # Started by an older checkout without persistence: turn it on in place.
    redis_cli_admin config set appendfsync always >/dev/null || true
    redis_cli_admin config set appendonly yes >/dev/null || true
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$CUSTODIAN_REDIS_PORT") 2>/dev/null; then
    echo "error: something else listens on 127.0.0.1:$CUSTODIAN_REDIS_PORT (not this checkout's Redis); set CUSTODIAN_REDIS_PORT" >&2
    return 1
  fi
  redis-server "$CUSTODIAN_REDIS_DIR/redis.conf" || { echo "error: redis-server did not start; see $CUSTODIAN_REDIS_DIR/redis.log" >&2; return 1; }
  local _
  for _ in $(seq 1 40); do redis_answers_admin && return 0; sleep 0.25; done
  echo "error: the project's Redis did not answer on port $CUSTODIAN_REDIS_PORT; see $CUSTODIAN_REDIS_DIR/redis.log" >&2
  return 1
}

# For the tests, which need no fixed port: sets CUSTODIAN_REDIS_PORT (in the calling shell) to
# the first port from it on that is this checkout's own Redis or free (another checkout's Redis
# may hold 6380). Starts nothing; redis_ensure does.
redis_pick_port() {
  local first="$CUSTODIAN_REDIS_PORT" port
  redis_write_config
  for port in $(seq "$first" $((first + 20))); do
    CUSTODIAN_REDIS_PORT="$port"
    if redis_answers_admin || ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
  done
  CUSTODIAN_REDIS_PORT="$first"
  echo "warning: no free port for the project's Redis in $first..$((first + 20))" >&2
}

# Stops the project's Redis if it runs (clean-data).
redis_stop() {
  if [ -s "$CUSTODIAN_REDIS_DIR/passwords/admin" ] && redis_answers_admin; then
    redis_cli_admin shutdown nosave >/dev/null 2>&1 || true
  fi
}
