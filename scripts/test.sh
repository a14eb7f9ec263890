#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them with cargo-nextest when it is installed (cargo test otherwise). Doc tests run first,
# since nextest does not run them.
set -euo pipefail
cd "$(dirname "$0")/.."

# The PostgreSQL tests start their own throwaway cluster from the server binaries.
if [[ ! -x /usr/lib/postgresql/15/bin/initdb && -z "${NIGHTJAR_PG_BIN:-}" ]]; then
    echo "installing the PostgreSQL 15 server binaries for the store tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

cargo test --workspace --doc --quiet
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
fi
