#!/usr/bin/env bash
# Checks that `nightjar inspect` reads every alert file that fastavro reads, with the same
# number of alerts per file, under the given folders (default: the bundled tests/data).
#
# Usage: scripts/check_against_fastavro.sh [DIR...]
# Needs: pip install -r scripts/requirements.txt; a built nightjar (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=("${@:-tests/data}")
nightjar="${NIGHTJAR:-target/release/nightjar}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 scripts/fastavro_count.py "${dirs[@]}" | grep -v '^total' | grep -v 'ERROR' | sort >"$tmp/fastavro"
"$nightjar" --log-level error inspect --count "${dirs[@]}" | sort >"$tmp/nightjar" || true

fastavro_files=$(wc -l <"$tmp/fastavro")
fastavro_alerts=$(awk -F'\t' '{s += $2} END {print s}' "$tmp/fastavro")
# Keep only the files fastavro reads; nightjar must give each the same count.
join -t $'\t' -a 1 -e MISSING -o 1.1,1.2,2.2 "$tmp/fastavro" "$tmp/nightjar" >"$tmp/joined"
mismatches=$(awk -F'\t' '$2 != $3' "$tmp/joined")
echo "fastavro reads ${fastavro_files} files, ${fastavro_alerts} alerts under ${dirs[*]}"
if [[ -n "$mismatches" ]]; then
    echo "files where nightjar differs (path, fastavro, nightjar):"
    echo "$mismatches"
    exit 1
fi
echo "nightjar reads the same ${fastavro_alerts} alerts from the same ${fastavro_files} files"
