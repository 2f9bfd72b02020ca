#!/usr/bin/env bash
# `make load`: the FHIR API at scale (issue 8's figures). Builds release binaries, then runs the
# `load` binary, which starts the whole suite from them (its own databases and stream prefix,
# anomaly watching but not suspending), loads a synthetic population through the gateway in
# steps and measures each step. Settings (env): LOAD_RESOURCES (10000,1000000), LOAD_SECONDS
# (10), LOAD_CONNECTIONS (16), LOAD_BATCH (200), LOAD_MEASURE (all, or ingest), SKIP_BUILD=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
scripts/ensure-deps.sh
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --bins
fi
export CUSTODIAN_BIN_DIR="$ROOT/target/release"
exec "$CUSTODIAN_BIN_DIR/load" \
  --resources "${LOAD_RESOURCES:-10000,1000000}" \
  --seconds "${LOAD_SECONDS:-10}" \
  --connections "${LOAD_CONNECTIONS:-16}" \
  --batch "${LOAD_BATCH:-200}" \
  --measure "${LOAD_MEASURE:-all}"
