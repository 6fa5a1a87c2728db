#!/usr/bin/env bash
# Benchmarks `oc-harness reconcile` against DuckDB on the same two CSV files, and checks that
# they agree.
#
#   scripts/bench-reconcile.sh [CALLS] [RUNS]      (defaults: 10300000 calls, 3 runs)
#
# 1. Builds oc-harness and the data generator (release), and writes, once per CALLS and seed,
#    $TARGET/bench-reconcile/CALLS/{teams.csv,carrier.csv}: Teams' rows in the CSV shape of
#    `m365 teams report pstncalls` (11 of its columns), the carrier's in the shape of
#    `oc-harness run --export`; about 97 % of CALLS on each side (3 % missing, 3 % unexpected,
#    5 % drift beyond 1 s), every call id a distinct UUID (harness/examples/reconcile-bench-data.rs).
# 2. Creates a Python virtual environment under $TARGET/bench-reconcile/venv with DuckDB from
#    PyPI (once).
# 3. RUNS times each, alternating: `oc-harness reconcile` (tolerance 1 s) and a DuckDB query
#    (a full outer join on the call id, the same counts per class and the same nearest-rank drift
#    percentiles), each under /usr/bin/time for wall time, CPU time (user + sys) and peak RSS.
# 4. Fails unless both give the same counts and percentiles; prints every run, then the best
#    and the spread of each.
#
# $TARGET is $CARGO_TARGET_DIR, or target/. The machine should be otherwise idle.
set -euo pipefail

CALLS=${1:-10300000}
RUNS=${2:-3}
SEED=1
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/bench-reconcile"
DATA="$BENCH/$CALLS"
mkdir -p "$BENCH"

cargo build --release --quiet -p oc-harness --bin oc-harness --example reconcile-bench-data
HARNESS="$TARGET/release/oc-harness"

if [[ ! -s "$DATA/carrier.csv" || ! -f "$DATA/seed-$SEED" ]]; then
    echo "writing $CALLS calls to $DATA ..."
    rm -rf "$DATA"
    "$TARGET/release/examples/reconcile-bench-data" "$CALLS" "$SEED" "$DATA"
    touch "$DATA/seed-$SEED"
fi
echo "inputs: $(($(wc -l < "$DATA/teams.csv") - 1)) Teams rows ($(du -h "$DATA/teams.csv" | cut -f1)), $(($(wc -l < "$DATA/carrier.csv") - 1)) carrier rows ($(du -h "$DATA/carrier.csv" | cut -f1))"

if [[ ! -x "$BENCH/venv/bin/python" ]] || ! "$BENCH/venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    python3 -m venv "$BENCH/venv"
    "$BENCH/venv/bin/pip" install --quiet duckdb
fi
PYTHON="$BENCH/venv/bin/python"
echo "DuckDB $("$PYTHON" -c 'import duckdb; print(duckdb.__version__)'), $(nproc) cores"

# The same figures from DuckDB: classes by a full outer join on the call id, drift in µs
# (carrier duration_ms − Teams endDateTime − startDateTime), nearest-rank percentiles (the value
# at 1-based rank ceil(q·n) of the sorted drifts).
cat > "$BENCH/duckdb_reconcile.py" <<'EOF'
import json, sys, duckdb
teams, carrier = sys.argv[1], sys.argv[2]
con = duckdb.connect()
row = con.execute(f"""
WITH t AS (SELECT callId AS id, epoch_us(endDateTime) - epoch_us(startDateTime) AS teams_us
           FROM read_csv('{teams}', header = true,
                         columns = {{'callId': 'VARCHAR', 'startDateTime': 'TIMESTAMP', 'endDateTime': 'TIMESTAMP',
                                    'duration': 'BIGINT', 'charge': 'DOUBLE', 'callType': 'VARCHAR', 'currency': 'VARCHAR',
                                    'callerNumber': 'VARCHAR', 'calleeNumber': 'VARCHAR', 'operator': 'VARCHAR',
                                    'callDurationSource': 'VARCHAR'}})),
     c AS (SELECT call_id AS id, duration_ms * 1000 AS carrier_us
           FROM read_csv('{carrier}', header = true,
                         columns = {{'call_id': 'VARCHAR', 'calling_number': 'VARCHAR', 'called_number': 'VARCHAR',
                                    'connect_time': 'TIMESTAMP', 'end_time': 'TIMESTAMP', 'duration_ms': 'BIGINT'}})),
     j AS (SELECT t.id AS tid, c.id AS cid, c.carrier_us - t.teams_us AS drift FROM t FULL OUTER JOIN c ON t.id = c.id),
     n AS (SELECT count(drift) AS n FROM j)
SELECT count(*) FILTER (WHERE tid IS NOT NULL AND cid IS NOT NULL AND abs(drift) <= 1000000),
       count(*) FILTER (WHERE tid IS NOT NULL AND cid IS NOT NULL AND abs(drift) > 1000000),
       count(*) FILTER (WHERE cid IS NULL),
       count(*) FILTER (WHERE tid IS NULL),
       quantile_disc(drift, 0.5), quantile_disc(drift, 0.9), quantile_disc(drift, 0.99), max(drift), count(drift)
FROM j
""").fetchone()
print(json.dumps({"matched": row[0], "drift": row[1], "missing": row[2], "unexpected": row[3],
                  "p50_us": row[4], "p90_us": row[5], "p99_us": row[6], "max_us": row[7], "calls": row[8]}))
EOF

# DuckDB's quantile_disc must be the nearest rank for the comparison to hold: checked on small
# lists where the definitions differ.
"$PYTHON" - <<'EOF'
import duckdb, math
con = duckdb.connect()
for n in (1, 2, 3, 7, 10, 11, 100, 101, 999):
    for q in (0.5, 0.9, 0.99):
        got = con.execute(f"SELECT quantile_disc(x, {q}) FROM range(1, {n + 1}) t(x)").fetchone()[0]
        want = max(1, math.ceil(q * n))
        assert got == want, f"quantile_disc({q}) of 1..{n} is {got}, nearest rank {want}"
EOF

OUT="$BENCH/out"
RESULTS="$BENCH/results.txt"
: > "$RESULTS"
for run in $(seq 1 "$RUNS"); do
    rm -rf "$OUT"
    /usr/bin/time -o "$BENCH/time.txt" -f '%e %M %U %S' "$HARNESS" reconcile --teams "$DATA/teams.csv" \
        --carrier "$DATA/carrier.csv" --tolerance 1s --out "$OUT" > "$BENCH/harness.txt" || [[ $? == 1 ]]
    # time(1) says "Command exited with non-zero status 1" first: exit 1 is "mismatches found".
    echo "oc-harness $(tail -n 1 "$BENCH/time.txt")" | tee -a "$RESULTS"
    /usr/bin/time -o "$BENCH/time.txt" -f '%e %M %U %S' "$PYTHON" "$BENCH/duckdb_reconcile.py" \
        "$DATA/teams.csv" "$DATA/carrier.csv" > "$BENCH/duckdb.json"
    echo "duckdb $(tail -n 1 "$BENCH/time.txt")" | tee -a "$RESULTS"
done
cat "$BENCH/harness.txt"

"$PYTHON" - "$OUT/report.json" "$BENCH/duckdb.json" "$RESULTS" <<'EOF'
import json, sys, statistics
report = json.load(open(sys.argv[1]))
duck = json.load(open(sys.argv[2]))
c, d = report["classes"], report["drift"]
ours = {"matched": c["matched"], "drift": c["drift"], "missing": c["missing"], "unexpected": c["unexpected"],
        "p50_us": round(d["p50Ms"] * 1000), "p90_us": round(d["p90Ms"] * 1000), "p99_us": round(d["p99Ms"] * 1000),
        "max_us": round(d["maxMs"] * 1000), "calls": d["calls"]}
print("oc-harness:", ours)
print("DuckDB:    ", duck)
if ours != duck:
    sys.exit("MISMATCH: oc-harness and DuckDB disagree")
print("agree: classes and drift percentiles are identical")
runs = {}
for line in open(sys.argv[3]):
    name, wall, rss, user, sys_ = line.split()
    runs.setdefault(name, []).append((float(wall), int(rss), float(user) + float(sys_)))
for name, values in runs.items():
    walls = sorted(v[0] for v in values)
    rss = sorted(v[1] for v in values)
    cpu = sorted(v[2] for v in values)
    print(f"{name:10} wall best {walls[0]:.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)}), "
          f"CPU best {cpu[0]:.2f} s (runs: {', '.join(f'{c:.2f}' for c in cpu)}), "
          f"peak RSS best {rss[0] / 1024:.0f} MB (max {rss[-1] / 1024:.0f} MB)")
best = {name: min(v[0] for v in values) for name, values in runs.items()}
print(f"oc-harness / DuckDB wall time (best runs): {best['oc-harness'] / best['duckdb']:.2f}")
EOF
