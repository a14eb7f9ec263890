#!/usr/bin/env bash
# The whole pipeline on a live stream, as it runs at night: tansu on this machine, amplified real
# ZTF alerts produced into a topic, `nightjar run` (release build) with every default science
# module and the built-in filters, publishing the stream of every alert and the filters' topics.
#
#   scripts/bench_pipeline.sh [COUNT]      (default 20000 alerts per phase)
#
# Three phases, each on its own topics and a fresh store:
#   throughput  COUNT alerts produced first, then consumed as fast as nightjar goes:
#               alerts/s, CPU time per alert (user + system of the nightjar process), MB/s in
#               and out, peak resident memory;
#   steady      nightjar running while COUNT alerts arrive at 1,000 alerts/s: latency from the
#               input record's timestamp to the delivery of its output record, p50 / p99 / max;
#   bursts      bursts of 10,000 alerts every 30 s (a telescope visit), COUNT in all: the same
#               latencies.
# The reference for the numbers is the survey: 1,000 alerts/s steady (ZTF's peak is ~300k per
# night), Rubin's 10,000 alerts per visit every ~30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${1:-20000}"
PORT="${BENCH_KAFKA_PORT:-19092}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nightjar/target}"
cargo build --release --quiet -p nightjar
NIGHTJAR="$CARGO_TARGET_DIR/release/nightjar"
WORK="$(mktemp -d)"
trap 'scripts/tansu.sh stop "$PORT" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

scripts/tansu.sh start "$PORT" >/dev/null
BROKERS="127.0.0.1:$PORT"
export NIGHTJAR__FILTERS__DIRECTORY=filters RUST_LOG=warn

field() { grep -E "^ *$1 " "$2" | head -1 | sed -E "s/^ *$1 +//"; }

run_phase() {
    local name=$1 mode=$2
    local input="kafka://$BROKERS/bench_${name}_in" output="kafka://$BROKERS/bench_${name}_out"
    local log="$WORK/$name.log" timing="$WORK/$name.time"
    if [[ $mode == first ]]; then
        "$NIGHTJAR" produce --to "$input" --from tests/data/ztf --count "$COUNT" --partitions 4 2>/dev/null
    fi
    /usr/bin/time -f "%U %S %M" -o "$timing" \
        "$NIGHTJAR" run --source "$input" --sink "$output" --group "bench_$name" \
        --until-idle 10 --quiet --data-dir "$WORK/$name-data" 2>"$log" &
    local run_pid=$!
    case $mode in
        steady) "$NIGHTJAR" produce --to "$input" --from tests/data/ztf --count "$COUNT" --rate 1000 --partitions 4 2>/dev/null ;;
        bursts) "$NIGHTJAR" produce --to "$input" --from tests/data/ztf --count "$COUNT" --burst 10000 --every 30 --partitions 4 2>/dev/null ;;
    esac
    wait "$run_pid"
    read -r user system peak_kib <"$timing"
    local alerts
    alerts=$(field "alerts read" "$log")
    echo "== $name: $alerts alerts"
    echo "   alerts/s            $(field "alerts/s" "$log")"
    echo "   CPU per alert       $(echo "($user + $system) * 1000000 / $alerts" | bc) us (user $user s, system $system s)"
    echo "   MB/s in / out       $(field "MB/s in" "$log") / $(field "MB/s out" "$log")"
    echo "   latency p50/p99/max $(grep -E "latency p50" "$log" | sed -E 's/^ *latency p50\/p99\/max +//')"
    echo "   peak memory         $((peak_kib / 1024)) MiB"
    grep -E "^ *time: " "$log" | sed 's/^ */   /'
}

echo "nightjar pipeline benchmark: $COUNT amplified real ZTF alerts per phase, tansu on $BROKERS, $(nproc) cores"
run_phase throughput first
run_phase steady steady
run_phase bursts bursts
