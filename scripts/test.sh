#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them with cargo-nextest when it is installed (cargo test otherwise). Doc tests run first,
# since nextest does not run them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --doc --quiet
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
fi
