#!/usr/bin/env bash
# Side-by-side figures of `oc-harness load` against wrk (release build, one `mock-carrier
# serve` process as the carrier, everything on loopback):
#
# 1. Generator ceiling: signed webhooks (one event a notification) posted by `oc-harness load`
#    at each rate of RATES for 20 s; the highest rate it sustains (no dropped iteration, 99 % of
#    the target achieved) against the requests per second of `wrk` posting one signed
#    notification body with the same connection count (64, the webhook sender's) to the same
#    endpoint for 20 s. Each line gives the CPU time per 1,000 notifications of the harness
#    (split into user and system time) and of the carrier (and wrk's and the carrier's per
#    1,000 of wrk's requests): steadier than rates on a shared machine. Measured twice:
#    unpinned (load tool and carrier share both cores, as the scheduler places them), then
#    pinned with `taskset` (the carrier on core 1, the harness or wrk on core 0: each side one
#    core, as when the carrier runs on a machine of its own). PINNED=0 measures only the
#    first, PINNED=1 only the second.
#    The body wrk posts is signed once, when the script starts: an `OC-Signature` is valid for
#    300 s (PROTOCOL 1) and mock-carrier checks the timestamp's freshness and the HMAC, and
#    keeps no replay cache (a repeated event is told by its sequence [NUM-IDEMPOTENT]), so every
#    request of a 20-s run is a valid, acknowledged notification (applied once, then
#    acknowledged as a repeat, which costs the carrier what a new event of the same size
#    does: the body is an assignment, as most of the generator's events are).
# 2. Coordinated omission: a constant 1,000 webhooks/s for 60 s to a carrier whose webhook
#    handler stalls 2 s every 10 s (`webhook_stall`); the p99 and p99.9 acknowledgement latency
#    `oc-harness load` reports (thresholds `webhook_ack.p99`, `webhook_ack.p99.9`), the truth
#    computed from the schedule (each notification's intended send time, (k + 1) / rate after
#    the load's start, to the end of its acknowledged attempt in the exchange log), and wrk's
#    p99 and p99.9 (64 connections, as fast as they go, each request timed from when it was
#    actually sent, then wrk 4's own correction) beside them.
#
# Usage: scripts/bench-load.sh [RATES…]   (default: 500 1000 2000 3000 4000 6000)
# PART=1 runs the ceiling only, PART=2 the coordinated-omission figures only. EXCHANGE_LOG=0
# runs the ceiling's loads with `--no-exchange-log` (the checker judges every exchange, none is
# kept); the coordinated-omission figures always keep the log, which their truth is read from.
# Output directory: $OUT (default: ${CARGO_TARGET_DIR:-target}/bench-load). HARNESS=PATH and
# CARRIER=PATH measure those binaries instead of building this tree.
# Needs wrk (installed with apt-get when missing, as root), python3, GNU time and taskset.
# Exit codes: 0 measured, 1 a run failed, 2 a tool missing.
# A benchmark, not a test: quote its lines with the machine and its load average.
set -euo pipefail
cd "$(dirname "$0")/.."

rates=("$@")
if [[ ${#rates[@]} -eq 0 ]]; then
    rates=(500 1000 2000 3000 4000 6000)
fi
if ! command -v wrk >/dev/null; then
    echo "wrk not found: installing it with apt-get" >&2
    apt-get install -y wrk >&2 || { echo "error: could not install wrk" >&2; exit 2; }
fi
command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 2; }
command -v taskset >/dev/null || { echo "error: taskset not found" >&2; exit 2; }

target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/bench-load}
rm -rf "$out"
mkdir -p "$out"
# HARNESS and CARRIER name other builds to measure (e.g. the one before a change, for an A/B
# on the same machine state); without them, this tree's release build.
if [[ -z ${HARNESS:-} || -z ${CARRIER:-} ]]; then
    cargo build --release --locked -p oc-harness -p mock-carrier >&2
fi
harness=${HARNESS:-$target/release/oc-harness}
carrier_bin=${CARRIER:-$target/release/mock-carrier}
connections=64
token=bench-token
secret=bench-webhook-secret

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
carrier_port=$(free_port)
teams_port=$(free_port)
url="http://127.0.0.1:$carrier_port"
hook="$url/oc/v1/notifications/number-assignments"

# Commands that pin the carrier and the load tool to a core (none: unpinned).
pin_carrier=()
pin_load=()
# Flags of every `oc-harness load` (the ceiling's, with EXCHANGE_LOG=0).
load_flags=()
# One carrier for every run; $1: extra configuration (a misbehaviour).
carrier=
start_carrier() {
    cat >"$out/carrier.toml" <<TOML
listen = "127.0.0.1:$carrier_port"
seed = 1
calls_from = "legs"
[teams]
base_url = "http://127.0.0.1:$teams_port"
token = "$token"
webhook_secret = "$secret"
[client]
poll_interval_ms = 2000
$1
TOML
    "${pin_carrier[@]}" "$carrier_bin" serve --config "$out/carrier.toml" >"$out/carrier.log" 2>&1 &
    carrier=$!
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $carrier_port), 1)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "error: mock-carrier did not listen" >&2
    exit 1
}
stop_carrier() {
    [[ -n "$carrier" ]] && kill "$carrier" 2>/dev/null && wait "$carrier" 2>/dev/null || true
    carrier=
}
trap stop_carrier EXIT

# The carrier's CPU time so far (user + system), in clock ticks (/proc/PID/stat fields 14, 15;
# the command name, field 2, has no spaces here).
carrier_ticks() {
    awk '{ print $14 + $15 }' "/proc/$carrier/stat"
}

# A plan of number events only: $1 name, $2 rate, $3 seconds, $4 thresholds, $5 the most
# notifications in flight (default: the connection count).
plan() {
    cat >"$out/$1.toml" <<TOML
name = "$1"
description = "bench-load.sh: signed webhooks at $2 a second"
seed = 1
interval = "5s"
numbers = 50000
call_numbers = 10
first_number = "+14258000000"
max_in_flight = ${5:-$connections}
start_slack = "100ms"
catch_up = "0s"
thresholds = [$4]

[executors.number_events]
events_per_notification = 1
start_rate = $2
stages = [{ duration = "$3s", target = $2 }]
TOML
}

# Runs a plan; prints nothing, leaves the report in $out/$1.
load() {
    "${pin_load[@]}" /usr/bin/time -f "%U %S" -o "$out/$1.cpu" \
        "$harness" load --carrier-url "$url" --plan "$out/$1.toml" \
        --listen "127.0.0.1:$teams_port" --token "$token" --webhook-secret "$secret" \
        --ready-timeout 30s --out "$out/$1" --quiet "${load_flags[@]}" \
        >"$out/$1.stdout" 2>"$out/$1.stderr" || true
    [[ -f "$out/$1/report.json" ]] || { echo "error: $1 wrote no report" >&2; cat "$out/$1.stderr" >&2; exit 1; }
}

# A signed notification body and the wrk script posting it ($1: the script; $2: wrk's own
# percentiles to print at the end). The event is an assignment, with its SIP URI, usage and
# assignee, as two in three of the generator's events are: the carrier's cost of a notification
# grows with its body (the HMAC, the parse, the validation), so an `unassigned` event, a third
# smaller, would favour wrk.
wrk_script() {
    python3 - "$secret" >"$1" <<'PY'
import hashlib, hmac, json, sys, time, uuid
secret = sys.argv[1].encode()
body = json.dumps({
    "notificationId": str(uuid.UUID(int=1)),
    "sentDateTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    "events": [{
        "eventId": str(uuid.UUID(int=2)), "sequence": 1, "type": "assigned",
        "tenantId": str(uuid.UUID(int=3)), "telephoneNumber": "+14258999999",
        "sipUri": "sip:+14258999999@load.example.com;user=phone",
        "usage": "CallingUserAssignment",
        "assignee": {"id": str(uuid.UUID(int=4)), "type": "user"},
        "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }],
}, separators=(",", ":"))
t = int(time.time())
sig = hmac.new(secret, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
print(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}')
print('wrk.headers["Content-Type"] = "application/json"')
print(f'wrk.headers["OC-Signature"] = "t={t},v1={sig}"')
print('''done = function(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %d non-2xx or errors, p99 %.1f ms, p99.9 %.1f ms\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end''')
PY
}

echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The ceiling against wrk; $1 names the set-up in each line (unpinned, pinned).
ceiling() {
local setup=$1
echo "## 1. generator ceiling ($connections connections, $setup)"
start_carrier ""
local best=0 most=0
for rate in "${rates[@]}"; do
    plan "ceiling-$setup-$rate" "$rate" 20 '"dropped == 0", "achieved_rate >= 0.99"'
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    carrier_before=$(carrier_ticks)
    load "ceiling-$setup-$rate"
    carrier_after=$(carrier_ticks)
    load_after=$(cut -d' ' -f1 /proc/loadavg)
    read -r achieved dropped late in_flight held < <(python3 - "$out/ceiling-$setup-$rate/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rows = r["load"]["intervals"]
seconds = sum((i["endMs"] - i["startMs"]) / 1000 for i in rows)
done = sum(e["achievedRate"] * (i["endMs"] - i["startMs"]) / 1000 for i in rows for e in i["executors"])
l = r["load"]
print(f'{done / seconds:.0f} {l["dropped"]} {l["droppedLate"]} {l["droppedInFlight"]} {int(all(t["passed"] for t in r["thresholds"]))}')
PY
    )
    # CPU seconds (user + system) of the harness per 1,000 notifications sent: steadier than
    # wall-clock rates on a shared machine.
    # Split into user and system time: the kernel's share (loopback TCP, the same calls a
    # request as wrk's) against the work in the process itself.
    cpu=$(awk -v n="$achieved" 'END { printf "%.3f s (user %.3f, system %.3f)", ($1 + $2) / (n * 20) * 1000, $1 / (n * 20) * 1000, $2 / (n * 20) * 1000 }' "$out/ceiling-$setup-$rate.cpu")
    # The carrier's CPU over the same run (its process lives through every rate), per 1,000
    # notifications acknowledged.
    carrier_cpu=$(awk -v a="$carrier_before" -v b="$carrier_after" -v n="$achieved" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.3f", (b - a) / hz / (n * 20) * 1000 }')
    echo "generator ($setup): target $rate/s, achieved $achieved/s, dropped $dropped ($late late, $in_flight at the in-flight cap), sustained $held, CPU ${cpu} per 1000 webhooks, carrier ${carrier_cpu} s (load average $load_before before, $load_after after)"
    if [[ $held == 1 ]]; then best=$rate; fi
    if (( achieved > most )); then most=$achieved; fi
done
wrk_script "$out/post.lua"
load_before=$(cut -d' ' -f1 /proc/loadavg)
carrier_before=$(carrier_ticks)
"${pin_load[@]}" /usr/bin/time -f "%U %S" -o "$out/wrk-$setup.cpu" \
    wrk -t2 -c"$connections" -d20s -s "$out/post.lua" "$hook" >"$out/wrk-ceiling-$setup.txt" 2>&1
carrier_after=$(carrier_ticks)
wrk_rps=$(awk '/Requests\/sec/ { print $2 }' "$out/wrk-ceiling-$setup.txt")
grep '^wrk:' "$out/wrk-ceiling-$setup.txt" || true
carrier_cpu=$(awk -v a="$carrier_before" -v b="$carrier_after" -v n="$wrk_rps" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.3f", (b - a) / hz / (n * 20) * 1000 }')
wrk_cpu=$(awk -v n="$wrk_rps" 'END { printf "%.3f s (user %.3f, system %.3f)", ($1 + $2) / (n * 20) * 1000, $1 / (n * 20) * 1000, $2 / (n * 20) * 1000 }' "$out/wrk-$setup.cpu")
echo "wrk ($setup): ${wrk_rps} requests/s, wrk CPU ${wrk_cpu} and carrier CPU ${carrier_cpu} s per 1000 requests (load average $load_before before, $(cut -d' ' -f1 /proc/loadavg) after)"
python3 -c "print(f'ceiling ($setup): generator {$best}/s sustained, wrk {float(\"$wrk_rps\"):.0f} requests/s, ratio {$best / float(\"$wrk_rps\"):.2f}')"
python3 -c "print(f'throughput ($setup): generator {$most}/s at most (dropped iterations or not), ratio {$most / float(\"$wrk_rps\"):.2f}')"
stop_carrier
}
if [[ ${PART:-all} != 2 ]]; then
    if [[ ${EXCHANGE_LOG:-1} == 0 ]]; then
        load_flags=(--no-exchange-log)
        echo "# the generator keeps no exchange log (--no-exchange-log)"
    fi
    if [[ ${PINNED:-} != 1 ]]; then
        ceiling unpinned
    fi
    if [[ ${PINNED:-} != 0 ]]; then
        # Each side one core: the carrier on core 1, the harness or wrk on core 0.
        pin_carrier=(taskset -c 1)
        pin_load=(taskset -c 0)
        ceiling pinned
        pin_carrier=()
        pin_load=()
    fi
fi
[[ ${PART:-all} == 1 ]] && exit 0
load_flags=()
[[ -f "$out/post.lua" ]] || wrk_script "$out/post.lua"

echo "## 2. coordinated omission: 1000 webhooks/s, the carrier stalls 2 s every 10 s"
start_carrier "[misbehaviour]
webhook_stall = { every_ms = 10000, pause_ms = 2000 }"
# Room for every notification a 2-s stall holds (2,000 at 1,000/s): none is dropped, each
# waits and is timed from its intended send time.
plan omission 1000 60 '"webhook_ack.p99 < 1h", "webhook_ack.p99.9 < 1h"' 4096
load omission
python3 -c "import json; r = json.load(open('$out/omission/report.json')); print('dropped iterations:', r['load']['dropped'])"
python3 - "$out/omission" 1000 60 50000 <<'PY'
# The truth, from the schedule alone: the plan's constant rate puts notification k (from 0) at
# (k + 1) / rate s after the load's start (`BaseTime` in metrics.hlog); k is read from what the
# notification carries (one event a notification: event k is on number k mod N of the pool, its
# (k div N)-th change: assigned, updated, unassigned), not from the harness's own `simTime`
# stamp; its answer is the end of its acknowledged attempt as the exchange log recorded it.
import gzip, json, math, re, sys
d, rate, seconds, pool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(f"{d}/report.json"))
reported = {t["name"].split()[0]: t["measured"] for t in r["thresholds"]}
base_ms = None
for line in open(f"{d}/metrics.hlog"):
    m = re.match(r"#\[BaseTime: ([0-9.]+)", line)
    if m:
        base_ms = round(float(m.group(1)) * 1000)
first = 14258000000
changes = {"assigned": 0, "updated": 1, "unassigned": 2}
answered, stamped, attempts = {}, {}, 0
with gzip.open(f"{d}/exchanges.ndjson.gz", "rt") as f:
    for line in f:
        e = json.loads(line)
        detail = e.get("detail") or {}
        if detail.get("kind") != "webhook":
            continue
        events = json.loads(e["requestBody"])["events"]
        if len(events) != 1 or int(events[0]["telephoneNumber"][1:]) - first >= pool:
            continue  # the call numbers, assigned before the load
        attempts += 1
        if e.get("status") not in (200, 202, 204):
            continue
        ev = events[0]
        k = int(ev["telephoneNumber"][1:]) - first + pool * changes[ev["type"]]
        end = e["wallTimeMs"] + e["latencyUs"] / 1000
        answered[k] = min(answered.get(k, math.inf), end - (base_ms + (k + 1) * 1000 / rate))
        stamped[k] = min(stamped.get(k, math.inf), end - e["simTime"])
scheduled = seconds * rate
never = scheduled - len(answered) - r["load"]["dropped"]
lat = sorted(answered.values())
def q(values, p):
    return values[max(0, math.ceil(p * len(values)) - 1)]
print(f"oc-harness (the report's thresholds): p99 {reported['webhook_ack.p99']:.1f} ms, p99.9 {reported['webhook_ack.p99.9']:.1f} ms")
print(f"truth from the schedule ({len(lat)} of {scheduled} notifications acknowledged, {attempts} attempts, {never} never acknowledged nor dropped): p99 {q(lat, 0.99):.1f} ms, p99.9 {q(lat, 0.999):.1f} ms, max {lat[-1]:.1f} ms")
off = max(abs(answered[k] - stamped[k]) for k in answered)
print(f"the harness's intended-time stamps against the schedule: at most {off:.1f} ms apart")
print(f"within: p99 {100 * abs(reported['webhook_ack.p99'] / q(lat, 0.99) - 1):.1f} %, p99.9 {100 * abs(reported['webhook_ack.p99.9'] / q(lat, 0.999) - 1):.1f} %")
PY
# wrk twice, as most run it and with room for the stalls. wrk 4 corrects its own histogram at
# the end (`stats_correct`: each sample longer than the mean interval between a connection's
# requests adds the samples that interval would have seen, an estimate from its achieved rate),
# but a request that outlasts its socket timeout (2 s by default) is counted as a time-out and
# never as a sample: the default leaves out exactly the requests a 2-s stall holds longest.
wrk -t2 -c"$connections" -d60s -s "$out/post.lua" "$hook" >"$out/wrk-omission.txt" 2>&1 || true
echo "wrk, default 2-s timeout: $(grep '^wrk:' "$out/wrk-omission.txt" | cut -d' ' -f2-)"
wrk -t2 -c"$connections" -d60s --timeout 10s -s "$out/post.lua" "$hook" >"$out/wrk-omission-10s.txt" 2>&1 || true
echo "wrk, --timeout 10s: $(grep '^wrk:' "$out/wrk-omission-10s.txt" | cut -d' ' -f2-)"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_carrier
