#!/usr/bin/env bash
# The end-to-end figure of the harness: runs the bundled `scale` scenario (20,000 numbers, about
# 200,000 calls a simulated day) with the release build for each length given, and prints one
# line per length: calls, wall time, calls per second, peak RSS and RSS per call. A benchmark,
# not a test: run it on a quiet machine and quote its line with the machine it ran on.
#
# Usage: scripts/bench-scale.sh [LENGTH…]      (default: 1d; e.g. 1d 7d 30d)
# Needs GNU time (/usr/bin/time, Debian's `time` package) and python3 (reads report.json).
# Exit codes: 0 every run passed, 1 a run failed or did not pass, 2 bad usage or a tool missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time not found: install Debian's time package (apt-get install time)" >&2
    exit 2
fi
if ! command -v python3 >/dev/null; then
    echo "error: python3 not found (it reads report.json)" >&2
    exit 2
fi
lengths=("$@")
if [[ ${#lengths[@]} -eq 0 ]]; then
    lengths=(1d)
fi

cargo build --release --locked -p oc-harness >&2
binary=${CARGO_TARGET_DIR:-target}/release/oc-harness
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-6s %12s %9s %10s %12s %14s\n' length calls wall_s calls_per_s peak_rss_mb rss_bytes_call
status=0
for length in "${lengths[@]}"; do
    out="$work/$length"
    if ! /usr/bin/time -v -o "$work/time-$length" "$binary" run scenarios/scale.toml \
        --length "$length" --quiet --out "$out" >"$work/stdout-$length" 2>"$work/stderr-$length"; then
        echo "error: the $length run did not pass; its output:" >&2
        cat "$work/stdout-$length" "$work/stderr-$length" >&2
        status=1
        continue
    fi
    python3 - "$length" "$out/report.json" "$work/time-$length" <<'EOF'
import json, sys
length, report_path, time_path = sys.argv[1:]
calls = json.load(open(report_path))["counts"]["calls"]
fields = {}
for line in open(time_path):
    key, _, value = line.strip().rpartition(": ")
    fields[key] = value
# "Elapsed (wall clock) time (h:mm:ss or m:ss)": m:ss.cc or h:mm:ss
parts = [float(p) for p in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_kb = int(fields["Maximum resident set size (kbytes)"])
print(f"{length:<6} {calls:>12,} {wall:>9.1f} {calls / wall:>10,.0f} {rss_kb / 1024:>12,.0f} "
      f"{rss_kb * 1024 / calls:>14,.0f}")
EOF
done
exit $status
