#!/usr/bin/env bash
# `make faults`: the fault harness (integration-tests/src/faults) over release builds of the six
# services. It brings its own PostgreSQL cluster and Redis (scratch directory, free ports), so it
# may crash them; it needs only the binaries ensure-deps installs. Writes the table to
# var/faults/results.md and exits non-zero when anything acknowledged was lost.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

ENSURE_DEPS_QUIET=1 scripts/ensure-deps.sh
echo "==> cargo build --release --bins"
cargo build --release --bins
mkdir -p var/faults
CUSTODIAN_BIN_DIR="$ROOT/target/release" target/release/faults --markdown var/faults/results.md "$@"
