#!/usr/bin/env bash
# The checker's own share of a run's memory: runs the bundled `scale` scenario for each length
# given with the measuring build (`--features heap-by-part`: the allocator counts the heap each
# part of the harness holds, crediting every block to the part that allocated it wherever it
# is freed; the checker is its actor's thread and the end-of-run judgement while it folds the
# calls), and prints per length the calls and the bytes the checker held at its peak and at the
# end; then, between the shortest and the longest length, the checker's bytes per extra call.
#
# Usage: scripts/bench-checker-memory.sh [LENGTH…]      (default: 1d 7d)
# Needs python3 (reads report.json). The measuring binary is built once into
# $CARGO_TARGET_DIR/release (then copied aside), and the normal one is built again at the end.
# Exit codes: 0 measured, 1 a run failed, 2 bad usage or a tool missing.
# A benchmark, not a test: its figures are bytes, not times, so a busy machine does not change
# them much (only how far the checker's mailbox fills).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 2; }
lengths=("$@")
if [[ ${#lengths[@]} -eq 0 ]]; then
    lengths=(1d 7d)
fi

target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
trap 'rm -rf "$work"; cargo build --release --locked -p oc-harness >&2' EXIT
cargo build --release --locked -p oc-harness --features heap-by-part >&2
cp "$target/release/oc-harness" "$work/oc-harness-heap-by-part"

printf '%-8s %10s %18s %18s\n' length calls "checker peak (B)" "checker end (B)"
results=()
for length in "${lengths[@]}"; do
    out="$work/$length"
    if ! "$work/oc-harness-heap-by-part" run scenarios/scale.toml --length "$length" \
        --out "$out" --quiet >"$work/stdout" 2>"$work/stderr"; then
        echo "error: the $length run failed:" >&2
        cat "$work/stdout" "$work/stderr" >&2
        exit 1
    fi
    line=$(grep '^heap held by the checker:' "$work/stderr") || {
        echo "error: the measuring build printed no checker figure" >&2
        exit 1
    }
    end=$(sed -E 's/.*: ([0-9-]+) bytes at the end, ([0-9-]+) bytes at the peak/\1/' <<<"$line")
    peak=$(sed -E 's/.*: ([0-9-]+) bytes at the end, ([0-9-]+) bytes at the peak/\2/' <<<"$line")
    calls=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["calls"])' \
        "$out/report.json")
    printf '%-8s %10s %18s %18s\n' "$length" "$calls" "$peak" "$end"
    results+=("$calls $peak")
done
if [[ ${#results[@]} -ge 2 ]]; then
    python3 - "${results[0]}" "${results[-1]}" <<'EOF'
import sys
(c1, p1), (c2, p2) = (map(int, a.split()) for a in sys.argv[1:3])
if c2 > c1:
    print(f"checker: {(p2 - p1) / (c2 - c1):.1f} bytes of peak heap per extra call "
          f"({p1:,} B at {c1:,} calls, {p2:,} B at {c2:,} calls)")
EOF
fi
