#!/usr/bin/env bash
# The figures of sharded runs on this machine (README.md, Performance): the bundled `scale`
# scenario (or LENGTH of it) as 1 shard, then as 2 shards run at the same time, each under GNU
# time (wall, peak RSS), and the merge of the 2; then as MANY shards (default 16), PARALLEL at a
# time, and the merge of those. Prints one line per shard and per merge, and the load average
# at the start and end (other work on the machine slows every figure).
#
# Usage: scripts/bench-shards.sh [LENGTH] [MANY] [PARALLEL]   (default: 30d 16 2)
# Needs GNU time (/usr/bin/time) and python3. Exit codes: 0 every run and merge passed, 1 one
# did not, 2 a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

length=${1:-30d}
many=${2:-16}
parallel=${3:-2}
if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time not found: install Debian's time package" >&2
    exit 2
fi
cargo build --release --locked -p oc-harness >&2
binary=${CARGO_TARGET_DIR:-target}/release/oc-harness
work=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %12s %9s %12s\n' what calls wall_s peak_rss_mb

# One shard I of N, under GNU time, into $work/$tag; prints its line.
shard() {
    local tag=$1 i=$2 n=$3
    /usr/bin/time -v -o "$work/$tag/time-$i" "$binary" run scenarios/scale.toml --length "$length" \
        --shard "$i/$n" --quiet --out "$work/$tag" >"$work/$tag/stdout-$i" 2>&1
}
report_line() {
    local tag=$1 i=$2 n=$3
    python3 - "$work/$tag/shard-$i-of-$n/report.json" "$work/$tag/time-$i" "$i/$n" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
wall = t.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split()[0]
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
print(f"{'shard ' + sys.argv[3]:<12} {r['counts']['calls']:>12} {secs:>9.1f} {rss:>12.0f}")
PY
}
merge() {
    local tag=$1 n=$2
    /usr/bin/time -f '%e %M' -o "$work/$tag/time-merge" "$binary" merge \
        "$work/$tag"/shard-*-of-"$n" --out "$work/$tag/merged" >"$work/$tag/merge.txt" 2>&1
    read -r secs kb <"$work/$tag/time-merge"
    calls=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['calls'])" \
        "$work/$tag/merged/report.json")
    printf '%-12s %12s %9s %12.0f\n' "merge of $n" "$calls" "$secs" "$((kb / 1024))"
}

status=0
mkdir -p "$work/one" "$work/two" "$work/many"
shard one 0 1 || status=1
report_line one 0 1
shard two 0 2 &
first=$!
shard two 1 2 || status=1
wait "$first" || status=1
report_line two 0 2
report_line two 1 2
merge two 2 || status=1
pids=()
for ((i = 0; i < many; i++)); do
    shard many "$i" "$many" &
    pids+=($!)
    if (( ${#pids[@]} >= parallel )); then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
merge many "$many" || status=1
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
