#!/usr/bin/env bash
# Makes sure this machine can build, test and run Custodian. Idempotent and non-interactive:
# on a machine that already has everything it only checks (a few seconds) and changes nothing.
#
# On a fresh Debian 12 machine (as root, or as a user with sudo) it
#   - installs the missing Debian packages: build-essential, pkg-config, libssl-dev, curl, jq,
#     postgresql (server, psql, pgbench), redis-server (+ redis-tools), and kubectl (Debian's
#     kubernetes-client, only when no kubectl exists at all), and promtool (taken out of Debian's
#     prometheus package; no Prometheus server is installed), python3-cryptography (the README's
#     proof-checking example runs in a test);
#   - installs the Rust toolchain when cargo is missing (rustup; rust-toolchain.toml pins the
#     version, which rustup installs on first use);
#   - starts PostgreSQL when 127.0.0.1:5432 does not answer and makes sure
#     postgres://postgres@127.0.0.1:5432/postgres connects without a password;
#   - starts Redis when 127.0.0.1:6379 does not answer PING: a fixture for the crates' own tests.
#     `make run`, `make bench` and the end-to-end tests use the project's own Redis instead, on
#     port 6380 with a password per service (scripts/lib/redis.sh starts it from var/redis/).
# No systemd is assumed (containers, CI machines).
#
# Environment: ENSURE_DEPS_QUIET=1 prints nothing when nothing had to be done.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[ensure-deps] %s\n' "$*" >&2; }
die() { printf '[ensure-deps] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Root, or sudo for the steps that need it.
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif have sudo; then
  SUDO=(sudo -n)
else
  SUDO=(__no_sudo__)
fi
as_root() {
  if [ "${SUDO[0]:-}" = "__no_sudo__" ]; then
    die "need root for: $* (run as root or install sudo)"
  fi
  "${SUDO[@]}" "$@"
}

# cargo from rustup lives in ~/.cargo/bin, which a fresh shell may not have on PATH.
if [ -d "$HOME/.cargo/bin" ]; then
  case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH="$HOME/.cargo/bin:$PATH" ;; esac
fi
# Debian puts the PostgreSQL server binaries outside PATH; pg_ctlcluster finds them itself.

# ---------------------------------------------------------------------------------------------
# 1. Debian packages (apt-get update at most once, and only when something must be installed).
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  have apt-get || die "apt-get not found; install by hand: $*"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
# The newest installed PostgreSQL server version (Debian layout), empty when none.
pg_server_version() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$bin" ] && basename "$(dirname "$(dirname "$bin")")"
  done | sort -V | tail -1
}
redis_answers() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

missing=()
{ have cc && have make; } || missing+=(build-essential)
have pkg-config || missing+=(pkg-config)
# libssl-dev: the openssl crate builds against it.
{ [ -f /usr/include/openssl/ssl.h ] || pkg-config --exists openssl 2>/dev/null; } || missing+=(libssl-dev)
have curl || missing+=(curl ca-certificates)
have jq || missing+=(jq)
# PostgreSQL: the server only when none answers and none is installed; psql always.
# (pgbench ships with Debian's server package; scripts/bench.sh installs it when needed.)
if ! pg_answers && { [ -z "$(pg_server_version)" ] || ! have pg_ctlcluster; }; then
  missing+=(postgresql)
elif ! have psql; then
  missing+=(postgresql-client)
fi
# redis-server always: the project's own Redis (scripts/lib/redis.sh) runs from it.
if ! have redis-server; then
  missing+=(redis-server redis-tools)
elif ! have redis-cli; then
  missing+=(redis-tools)
fi
# openssl and sha256sum: passwords, stream keys and the internal token are generated with them.
have openssl || missing+=(openssl)
# python3 with cryptography: the README's patient-side proof check
# (docs/examples/check_my_accesses.py) runs in the ledger's tests.
if ! { have python3 && python3 -c 'import cryptography' 2>/dev/null; }; then
  missing+=(python3 python3-cryptography)
fi
# python3's venv: the FHIR clients test (scripts/fhir-clients) installs fhirpy, fhirclient and
# fhir.resources from PyPI into a venv of its own.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
# kubectl: only when there is none at all (a newer kubectl may already be installed elsewhere;
# Debian's kubernetes-client would conflict with it).
if ! have kubectl; then
  missing+=(kubernetes-client)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi

# promtool (checks and unit-tests the Prometheus alert rules in k8s/monitoring): only the one
# binary, taken out of Debian's prometheus package, so no Prometheus server gets installed or
# started here.
if ! have promtool; then
  log "installing promtool from Debian's prometheus package"
  prom_dir="$(mktemp -d)"
  chmod 777 "$prom_dir" # apt-get download runs as _apt where it can
  (cd "$prom_dir" && apt-get download -q prometheus >/dev/null 2>&1) || {
    as_root apt-get update -q >/dev/null
    (cd "$prom_dir" && apt-get download -q prometheus >/dev/null 2>&1)
  } || die "could not download Debian's prometheus package (for promtool)"
  dpkg-deb -x "$prom_dir"/prometheus_*.deb "$prom_dir/root"
  as_root install -m 0755 "$prom_dir/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$prom_dir"
  have promtool || die "promtool still missing"
fi

# ---------------------------------------------------------------------------------------------
# 2. Rust toolchain (only when cargo is missing). rust-toolchain.toml pins the version.
# ---------------------------------------------------------------------------------------------
if ! have cargo; then
  if ! have rustup; then
    # Debian 13+ ships rustup; Debian 12 does not, so fall back to the official installer.
    if apt-cache policy rustup 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -qv '(none)'; then
      apt_install rustup
    else
      # The official rustup-init (what https://sh.rustup.rs downloads) straight from its host.
      init_url="https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
      log "installing rustup from $init_url"
      # rustup-init must keep its name: rustup decides what to be from argv[0].
      init_dir="$(mktemp -d)"
      curl --proto '=https' --tlsv1.2 -sSfL -o "$init_dir/rustup-init" "$init_url" || die "could not download $init_url"
      chmod +x "$init_dir/rustup-init"
      "$init_dir/rustup-init" -y --no-modify-path --profile minimal --default-toolchain none >/dev/null
      rm -rf "$init_dir"
      PATH="$HOME/.cargo/bin:$PATH"
    fi
  fi
  log "installing the toolchain pinned in rust-toolchain.toml"
  # rustup >= 1.28 installs the toolchain file's toolchain with a bare `toolchain install`;
  # older ones do it on `rustup show`.
  (cd "$REPO_ROOT" && { rustup toolchain install >/dev/null 2>&1 || rustup show >/dev/null; }) \
    || die "rustup could not install the toolchain pinned in rust-toolchain.toml"
  (cd "$REPO_ROOT" && cargo --version) >&2 || die "cargo still missing after installing rustup"
  log "add \$HOME/.cargo/bin to your PATH (source \"\$HOME/.cargo/env\")"
fi

# ---------------------------------------------------------------------------------------------
# 3. PostgreSQL on 127.0.0.1:5432, user postgres, no password.
# ---------------------------------------------------------------------------------------------
pg_connects() { PGCONNECT_TIMEOUT=3 psql -w "$PG_URL" -tAqc 'select 1' >/dev/null 2>&1; }

if ! pg_answers; then
  version="$(pg_server_version)"
  { [ -n "$version" ] && have pg_ctlcluster; } || die "no PostgreSQL server installed and 127.0.0.1:5432 does not answer"
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    log "creating PostgreSQL cluster $version/main"
    as_root pg_createcluster "$version" main >/dev/null
  fi
  log "starting PostgreSQL $version/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_answers && break; sleep 0.5; done
  pg_answers || die "PostgreSQL did not start; see /var/log/postgresql/postgresql-$version-main.log"
fi

if ! pg_connects; then
  # Port answers but the URL does not work without a password: a fresh Debian install uses
  # scram-sha-256 for TCP. For LOCAL DEVELOPMENT ONLY, trust connections from the loopback
  # addresses (nothing else can reach them).
  version="$(pg_server_version)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  [ -f "$hba" ] || die "cannot connect to $PG_URL and $hba does not exist"
  if ! grep -q 'custodian local development' "$hba"; then
    log "allowing passwordless loopback connections in $hba (local development only)"
    tmp="$(mktemp)"
    {
      echo "# custodian local development: trust TCP connections from the loopback addresses only,"
      echo "# so postgres://postgres@127.0.0.1:5432 works without a password. Added by"
      echo "# scripts/ensure-deps.sh. Do NOT use this on a shared or production server."
      echo "host    all             all             127.0.0.1/32            trust"
      echo "host    all             all             ::1/128                 trust"
      echo
      as_root cat "$hba"
    } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
    as_root chown postgres:postgres "$hba" 2>/dev/null || true
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 10); do pg_connects && break; sleep 0.5; done
  pg_connects || die "still cannot connect to $PG_URL; check $hba and the server log"
fi

# ---------------------------------------------------------------------------------------------
# 4. Redis on 127.0.0.1:6379.
# ---------------------------------------------------------------------------------------------
if ! redis_answers; then
  have redis-server || die "redis-server is not installed and 127.0.0.1:6379 does not answer"
  log "starting Redis on 127.0.0.1:6379"
  if [ "$(id -u)" -eq 0 ]; then
    redis_dir=/var/lib/redis
    redis_log=/var/log/redis/custodian.log
  else
    redis_dir="${TMPDIR:-/tmp}/custodian-redis-$(id -u)"
    redis_log="$redis_dir/redis.log"
  fi
  mkdir -p "$redis_dir" "$(dirname "$redis_log")"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly yes \
    --dir "$redis_dir" --logfile "$redis_log"
  for _ in $(seq 1 20); do redis_answers && break; sleep 0.25; done
  redis_answers || die "Redis did not start; see $redis_log"
fi

if [ "${#missing[@]}" -gt 0 ] || [ "${ENSURE_DEPS_QUIET:-0}" != "1" ]; then
  log "ok: toolchain $(cargo --version 2>/dev/null | awk '{print $2}'), PostgreSQL and Redis answer on 127.0.0.1"
fi
