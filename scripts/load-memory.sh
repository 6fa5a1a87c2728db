#!/usr/bin/env bash
# Memory of a long load test: runs `oc-harness load` (release build) with PLAN against
# `mock-carrier serve` as a separate process (`calls_from = "legs"`, polling every 2 s), and
# prints every SAMPLE seconds the resident size (VmRSS) of both processes, Teams' store's open
# calls (from metrics.ndjson) and the machine's load average; at the end the harness's exit
# code, wall time and peak RSS (GNU time). A measurement, not a test: quote its lines with the
# machine it ran on and its load average.
#
# Usage: scripts/load-memory.sh [PLAN] [SAMPLE]   (default: scenarios/load/one-hour.toml, 30)
# RETIRE_AFTER_MS=N sets the carrier's `retire_after_ms` (how long it keeps a settled call;
# default 10 minutes); the carrier_calls column is the calls its ledger held at its last
# retirement (`-` before the first).
# The output directory is $OUT (default: ${CARGO_TARGET_DIR:-target}/load-memory): the report,
# metrics.ndjson, the carrier's configuration, both processes' logs.
# HARNESS=PATH measures that oc-harness binary instead of this tree's release build (e.g. the
# build before a change, or the `--features heap-by-part` build, whose last line of
# harness.stderr gives the checker's heap).
# Needs GNU time (/usr/bin/time) and python3 (picks a free port).
# Exit codes: the harness's (0 every threshold held, 1 one failed), 2 bad usage or a tool missing.
set -euo pipefail
cd "$(dirname "$0")/.."

plan=${1:-scenarios/load/one-hour.toml}
sample=${2:-30}
if [[ ! -f "$plan" ]]; then
    echo "error: no plan $plan" >&2
    exit 2
fi
for tool in /usr/bin/time python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool not found" >&2
        exit 2
    fi
done
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/load-memory}
rm -rf "$out"
mkdir -p "$out"

cargo build --release --locked -p oc-harness -p mock-carrier >&2
# Copies, so that a rebuild during the hour does not touch the running binaries.
mkdir -p "$out/bin"
cp "${HARNESS:-$target/release/oc-harness}" "$out/bin/oc-harness"
cp "$target/release/mock-carrier" "$out/bin/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

/usr/bin/time -v -o "$out/time.txt" "$out/bin/oc-harness" load \
    --carrier-url "http://127.0.0.1:$port" --plan "$plan" --listen 127.0.0.1:0 \
    --ready-timeout 120s --out "$out/report" >"$out/harness.stdout" 2>"$out/harness.stderr" &
timed=$!
cleanup() {
    [[ -n "${carrier:-}" ]] && kill "$carrier" 2>/dev/null || true
    kill "$timed" 2>/dev/null || true
}
trap cleanup EXIT

field() { sed -n "s/^ *$1 *//p" "$out/harness.stdout" | head -1; }
for _ in $(seq 1 1200); do
    [[ -n "$(field 'webhook secret')" ]] && break
    sleep 0.1
done
if [[ -z "$(field 'webhook secret')" ]]; then
    echo "error: the harness did not print its setup:" >&2
    cat "$out/harness.stdout" "$out/harness.stderr" >&2
    exit 1
fi
cat >"$out/carrier.toml" <<TOML
listen = "127.0.0.1:$port"
seed = 1
calls_from = "legs"
retire_after_ms = ${RETIRE_AFTER_MS:-600000}
[teams]
base_url = "$(field 'Teams API base URL')"
token = "$(field 'bearer token')"
webhook_secret = "$(field 'webhook secret')"
[client]
poll_interval_ms = 2000
TOML
"$out/bin/mock-carrier" serve --config "$out/carrier.toml" \
    >"$out/carrier.stdout" 2>"$out/carrier.stderr" &
carrier=$!
harness=$(pgrep -P "$timed" oc-harness || echo "$timed")

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo -; }
printf '%8s %12s %12s %11s %13s %s\n' elapsed_s harness_mb carrier_mb teams_calls carrier_calls \
    load_average
start=$(date +%s)
while kill -0 "$timed" 2>/dev/null; do
    open=$({ tail -n 1 "$out/report/metrics.ndjson" 2>/dev/null || true; } \
        | sed -n 's/.*"teams_calls":\([0-9]*\).*/\1/p')
    held=$({ grep -o 'held=[0-9]*' "$out/carrier.stderr" 2>/dev/null || true; } | tail -n 1 \
        | cut -d= -f2)
    printf '%8d %12s %12s %11s %13s %s\n' $(( $(date +%s) - start )) "$(rss_mb "$harness")" \
        "$(rss_mb "$carrier")" "${open:--}" "${held:--}" "$(cut -d' ' -f1-3 /proc/loadavg)"
    for _ in $(seq 1 "$sample"); do
        kill -0 "$timed" 2>/dev/null || break
        sleep 1
    done
done
set +e
wait "$timed"
code=$?
set -e
echo "exit code $code; $(grep -E 'Elapsed|Maximum resident' "$out/time.txt" | sed 's/^\s*//' | paste -sd';')"
tail -n 3 "$out/harness.stdout"
grep 'heap held by the checker' "$out/harness.stderr" || true
exit "$code"
