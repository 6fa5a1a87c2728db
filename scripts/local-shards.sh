#!/usr/bin/env bash
# Runs deploy/kubernetes/shards-job.yaml's Indexed Job on this machine, as N processes with the
# environment Kubernetes gives each pod (JOB_COMPLETION_INDEX=0…N−1) and the same arguments
# (`oc-harness run SCENARIO --shards N --out OUT --quiet`), all at once as parallelism = N
# runs them; then merge-job.yaml's merge (`oc-harness merge OUT/shard-*-of-N --out
# OUT/merged`). Prints each shard's wall time and the merged summary.
#
# Usage: scripts/local-shards.sh [SCENARIO] [N] [OUT] [LENGTH]
#   defaults: scenarios/scale.toml, 4, oc-harness-out/local-shards, the scenario's length
#   (LENGTH shortens every shard alike, e.g. 6h, as `run --length` does).
# OC_HARNESS: the binary to run (default: builds and runs the release build).
# Exit codes: the merge's (0 passed, 1 failed, 2 shards that do not merge, 3 not written), or
# 3 when a shard exited non-zero (its output is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-scenarios/scale.toml}
shards=${2:-4}
out=${3:-oc-harness-out/local-shards}
length=${4:-}
if [[ -z ${OC_HARNESS:-} ]]; then
    cargo build --release --locked -p oc-harness >&2
    OC_HARNESS=${CARGO_TARGET_DIR:-target}/release/oc-harness
fi
rm -rf "$out"/shard-*-of-"$shards" "$out/merged"
mkdir -p "$out/logs"

args=(run "$scenario" --shards "$shards" --out "$out" --quiet)
if [[ -n $length ]]; then
    args+=(--length "$length")
fi
pids=()
for ((i = 0; i < shards; i++)); do
    JOB_COMPLETION_INDEX=$i "$OC_HARNESS" "${args[@]}" >"$out/logs/shard-$i.txt" 2>&1 &
    pids+=($!)
done
status=0
for ((i = 0; i < shards; i++)); do
    if ! wait "${pids[$i]}"; then
        echo "error: shard $i/$shards failed; its output:" >&2
        cat "$out/logs/shard-$i.txt" >&2
        status=3
    fi
done
if [[ $status -ne 0 ]]; then
    exit "$status"
fi
for ((i = 0; i < shards; i++)); do
    python3 - "$out/shard-$i-of-$shards/report.json" "$i" "$shards" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"shard {sys.argv[2]}/{sys.argv[3]}: {r['counts']['calls']} calls, "
      f"{r['counts']['numbers']} numbers, wall {r['timing']['wallMs'] / 1000:.1f} s")
PY
done
"$OC_HARNESS" merge "$out"/shard-*-of-"$shards" --out "$out/merged"
