#!/usr/bin/env bash
# tansu, the Kafka-compatible broker the Kafka tests run against.
#
#   scripts/tansu.sh install        build tansu once into ~/.cache/nightjar/tansu (about 8 minutes;
#                                   cached afterwards) and print the binary's path
#   scripts/tansu.sh start [PORT]   install if missing, start a broker on 127.0.0.1:PORT (default
#                                   9092) with in-memory storage, wait until it answers, and print
#                                   NIGHTJAR_KAFKA_BROKERS=127.0.0.1:PORT; its pid goes to
#                                   $TANSU_DIR/tansu-PORT.pid and its log to $TANSU_DIR/tansu-PORT.log
#   scripts/tansu.sh stop [PORT]    stop the broker started by `start`
#
# The Kafka tests start their own broker on a free port when NIGHTJAR_KAFKA_BROKERS is not set;
# they find the binary through NIGHTJAR_TANSU, else $TANSU_DIR/bin/tansu, else the PATH.
#
# Known tansu 0.6 behaviour: a fetch that starts inside a record batch gets the next batch,
# so a consumer resuming at a mid-batch committed offset skips the rest of that batch. Tests
# that restart consumers produce one message per batch (batch.num.messages = 1).
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_DIR="${TANSU_DIR:-$HOME/.cache/nightjar/tansu}"
TANSU_BIN="$TANSU_DIR/bin/tansu"

install_tansu() {
    if [[ -x "$TANSU_BIN" ]] && "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
        echo "$TANSU_BIN"
        return
    fi
    echo "building tansu $TANSU_VERSION into $TANSU_DIR (about 8 minutes, once)" >&2
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --root "$TANSU_DIR" >&2
    echo "$TANSU_BIN"
}

wait_for_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

case "${1:-}" in
    install)
        install_tansu
        ;;
    start)
        port="${2:-9092}"
        bin="$(install_tansu)"
        mkdir -p "$TANSU_DIR"
        "$bin" broker \
            --listener-url "tcp://127.0.0.1:$port" \
            --advertised-listener-url "tcp://127.0.0.1:$port" \
            --storage-engine "memory://tansu/" \
            >"$TANSU_DIR/tansu-$port.log" 2>&1 &
        echo $! >"$TANSU_DIR/tansu-$port.pid"
        if ! wait_for_port "$port"; then
            echo "tansu did not start listening on 127.0.0.1:$port; see $TANSU_DIR/tansu-$port.log" >&2
            exit 1
        fi
        echo "NIGHTJAR_KAFKA_BROKERS=127.0.0.1:$port"
        ;;
    stop)
        port="${2:-9092}"
        pid_file="$TANSU_DIR/tansu-$port.pid"
        if [[ -f "$pid_file" ]]; then
            kill "$(cat "$pid_file")" 2>/dev/null || true
            rm -f "$pid_file"
        fi
        ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
