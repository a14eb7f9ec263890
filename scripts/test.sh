#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them with cargo-nextest when it is installed (cargo test otherwise). Doc tests run first,
# since nextest does not run them.
set -euo pipefail
cd "$(dirname "$0")/.."

# The PostgreSQL tests start their own throwaway cluster from the server binaries, and run
# the cone search both with the q3c extension and without it.
if [[ -z "${NIGHTJAR_PG_BIN:-}" ]]; then
    if [[ ! -x /usr/lib/postgresql/15/bin/initdb || ! -f /usr/share/postgresql/15/extension/q3c.control ]]; then
        echo "installing PostgreSQL 15 and q3c for the store tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-15-q3c >/dev/null
    fi
    export NIGHTJAR_REQUIRE_Q3C=1
fi

# Python tools the tests run as independent readers (astropy for VOTables), in a cached
# virtual environment.
VENV="${NIGHTJAR_VENV:-$HOME/.cache/nightjar/venv}"
if ! "$VENV/bin/python" -c 'import astropy' >/dev/null 2>&1 || \
   ! cmp -s scripts/requirements.txt "$VENV/requirements.txt"; then
    echo "installing the Python test tools into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >/dev/null
    "$VENV/bin/pip" install --quiet -r scripts/requirements.txt
    cp scripts/requirements.txt "$VENV/requirements.txt"
fi
export NIGHTJAR_PYTHON="$VENV/bin/python"

# The Kafka tests run against tansu (a Kafka-compatible broker), built once and cached; each
# test starts its own broker on a free port unless NIGHTJAR_KAFKA_BROKERS names one.
if [[ -z "${NIGHTJAR_KAFKA_BROKERS:-}" ]]; then
    NIGHTJAR_TANSU="$(scripts/tansu.sh install)"
    export NIGHTJAR_TANSU
fi

cargo test --workspace --doc --quiet
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
fi
