#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them with cargo-nextest when it is installed (cargo test otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
    # nextest does not run doc tests.
    cargo test --workspace --doc
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
    cargo test --workspace --doc
fi
