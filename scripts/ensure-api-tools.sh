#!/usr/bin/env bash
# Makes sure the OpenAPI tools are installed: openapi-spec-validator and schemathesis, from PyPI,
# into a venv of their own (var/api-venv; var/ is gitignored). Idempotent: when the venv already
# has the pinned versions it only checks (well under a second) and prints nothing. Needs python3
# with venv (scripts/ensure-deps.sh installs python3-venv) and PyPI reachable on first use.
#
# Used by integration-tests/tests/openapi.rs (the document validates) and scripts/api-check.sh
# (schemathesis against the running suite). Prints the venv's bin directory on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${API_TOOLS_VENV:-$ROOT/var/api-venv}"
# Pinned: a new schemathesis release can add checks, and the figures in the README are for this one.
PACKAGES=(openapi-spec-validator==0.9.0 schemathesis==4.32.5)

log() { printf '[ensure-api-tools] %s\n' "$*" >&2; }
die() { printf '[ensure-api-tools] ERROR: %s\n' "$*" >&2; exit 1; }

installed() {
  [ -x "$VENV/bin/python" ] || return 1
  local pkg name version
  for pkg in "${PACKAGES[@]}"; do
    name="${pkg%%==*}" version="${pkg##*==}"
    [ "$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" = "$version" ] || return 1
  done
}

if ! installed; then
  command -v python3 >/dev/null 2>&1 || die "python3 is missing (scripts/ensure-deps.sh installs it)"
  python3 -c 'import ensurepip, venv' 2>/dev/null || die "python3's venv module is missing (apt-get install python3-venv; scripts/ensure-deps.sh does it)"
  mkdir -p "$(dirname "$VENV")"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV" || die "could not create the venv $VENV"
  fi
  log "installing ${PACKAGES[*]} from PyPI into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PACKAGES[@]}" >&2 \
    || die "pip could not install ${PACKAGES[*]} (is PyPI reachable?)"
  installed || die "${PACKAGES[*]} still not importable from $VENV"
fi
echo "$VENV/bin"
