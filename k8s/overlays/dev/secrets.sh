#!/usr/bin/env bash
# Creates, in the cluster kubectl points at, every Secret k8s/overlays/dev expects, with fresh
# random values (nothing is written to the repository; the working files live in a temporary
# directory removed on exit). For development and test clusters: production takes them from
# its secret store (k8s/overlays/production/external-secret.example.yaml, docs/operations.md).
#
#   k8s/overlays/dev/secrets.sh [--namespace custodian] [--origin custodian.dev.example.com/ledger]
#
# Refuses when custodian-secrets already exists: new values would lock the services out of
# their data (the records encryption key) and of PostgreSQL and Redis. Delete the namespace's
# Secrets (and data) first to start over.
# Needs kubectl, openssl, sha256sum, and the ledger binary for the checkpoint key (LEDGER_BIN,
# default target/debug/ledger, else `cargo run -p ledger`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
NS=custodian
ORIGIN=custodian.dev.example.com/ledger
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) NS="$2"; shift 2 ;;
    --origin) ORIGIN="$2"; shift 2 ;;
    *) echo "usage: $0 [--namespace NS] [--origin LEDGER_ORIGIN]" >&2; exit 2 ;;
  esac
done
# redis_acl_rules: the same ACL rules as the local Redis of make run and the tests.
# shellcheck source=../../../scripts/lib/redis.sh
source "$ROOT/scripts/lib/redis.sh"

if kubectl -n "$NS" get secret custodian-secrets >/dev/null 2>&1; then
  echo "secrets.sh: Secret custodian-secrets already exists in namespace $NS; not overwriting" >&2
  exit 1
fi
kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
chmod 700 "$WORK"
cd "$WORK"
apply() { kubectl -n "$NS" apply -f - >/dev/null; }
hex() { openssl rand -hex "$1"; }

DB_SERVICES=(identity consent records ledger anomaly)
SERVICES=(identity consent records ledger anomaly gateway)
args=()
for s in "${DB_SERVICES[@]}"; do
  pw="$(hex 24)"
  kubectl create secret generic "custodian-pg-$s" --type=kubernetes.io/basic-auth \
    --from-literal=username="custodian_$s" --from-literal=password="$pw" \
    --dry-run=client -o yaml | kubectl label --local -f - cnpg.io/reload=true -o yaml | apply
  args+=(--from-literal="${s^^}_DATABASE_URL=postgres://custodian_$s:$pw@custodian-pg-rw:5432/custodian_$s?sslmode=verify-full&sslrootcert=/etc/custodian/tls/ca.crt")
done
echo "user default off resetkeys -@all" >users.acl
for s in "${SERVICES[@]}"; do
  pw="$(hex 24)"
  echo "user $s on #$(printf '%s' "$pw" | sha256sum | awk '{print $1}') $(redis_acl_rules "$s")" >>users.acl
  args+=(--from-literal="${s^^}_REDIS_URL=rediss://$s:$pw@redis:6379")
done
kubectl create secret generic custodian-redis-acl --from-file=users.acl --dry-run=client -o yaml | apply

for p in identity consent anomaly records; do
  openssl genpkey -algorithm ed25519 -out "$p-stream.pem"
  openssl pkey -in "$p-stream.pem" -pubout -out "$p-stream.pub"
done
hex 32 >internal.token
LEDGER_BIN="${LEDGER_BIN:-$ROOT/target/debug/ledger}"
# keygen prints the verifier key (public): the one witnesses and auditors trust.
printf 'ledger verifier key: '
if [ -x "$LEDGER_BIN" ]; then
  "$LEDGER_BIN" keygen --name "$ORIGIN" --out ledger-signing.key
else
  (cd "$ROOT" && cargo run -q -p ledger --bin ledger -- keygen --name "$ORIGIN" --out "$WORK/ledger-signing.key")
fi
files=()
for f in ./*-stream.pem ./*-stream.pub internal.token ledger-signing.key; do files+=(--from-file="$f"); done
kubectl create secret generic custodian-stream-keys "${files[@]}" --dry-run=client -o yaml | apply

kubectl create secret generic custodian-secrets "${args[@]}" \
  --from-literal=ADMIN_PASSWORD="$(openssl rand -base64 24)" \
  --from-literal=RECORDS_ENCRYPTION_KEY="$(hex 32)" \
  --dry-run=client -o yaml | apply
echo "secrets.sh: created custodian-secrets, custodian-stream-keys, custodian-redis-acl and custodian-pg-{${DB_SERVICES[*]}} in namespace $NS"
echo "  the administrator's password: kubectl -n $NS get secret custodian-secrets -o jsonpath='{.data.ADMIN_PASSWORD}' | base64 -d"
