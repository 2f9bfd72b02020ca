#!/usr/bin/env bash
# Runs check.py (real FHIR clients against a running suite) in a venv of its own, made on first
# use from requirements.txt and remade when that file changes.
# Usage: run.sh BASE_URL (the gateway, e.g. http://127.0.0.1:8080), with FHIR_TOKEN set.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${FHIR_CLIENTS_VENV:-$ROOT/var/venv/fhir-clients}"
STAMP="$VENV/.requirements"
if ! cmp -s "$HERE/requirements.txt" "$STAMP" 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$STAMP"
fi
exec "$VENV/bin/python" "$HERE/check.py" "$@"
