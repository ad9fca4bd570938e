#!/usr/bin/env bash
# The person scenario run by goose (tessera-load) and by Locust, one after the other,
# against one stack started as `just load` starts it: requests per second per core of
# load generator, and the stack's sign-ins per second under each, for
# docs/benchmarks.md. Installs Locust from PyPI if missing.
#
# Usage: scripts/compare-locust.sh [users (40)] [seconds per generator (60)]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
users=${1:-40}
seconds=${2:-60}

if ! command -v locust >/dev/null; then
  echo "compare: Locust is missing: installing it from PyPI"
  python3 -m pip install --quiet locust
fi

out="$root/target/loadtest/$(date -u +%Y%m%dT%H%M%SZ)-goose-vs-locust"
mkdir -p "$out/locust"
# shellcheck source=lib/one-stack.sh
source scripts/lib/one-stack.sh
require_free_ports
loadgen="$(bash scripts/loadgen.sh)"
start_one_stack "$out"
login_metrics=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["datacenters"][0]["login_metrics"])' "$out/stack.json")

# The login's count of successful sign-ins (0 before the first: the series is not shown).
sign_ins() {
  curl -fsS "$login_metrics" |
    awk '$1 == "tessera_login_attempts_total{outcome=\"succeeded\"}" {n = $2} END {print n + 0}'
}

# measure NAME COMMAND...: runs it, and leaves NAME.cpu (user+system CPU seconds, wall
# seconds) and NAME.sign_ins (the login's count of sign-ins during it).
measure() {
  local name=$1 before after
  shift
  before=$(sign_ins)
  local TIMEFORMAT="%U %S %R"
  { time "$@" >"$out/$name.log" 2>&1; } 2>"$out/$name.cpu"
  after=$(sign_ins)
  echo $((${after%.*} - ${before%.*})) >"$out/$name.sign_ins"
}

echo "compare: goose, $users people for ${seconds}s"
measure goose "$loadgen" --stack "$out/stack.json" --out "$out/goose" \
  --mix scraper=0,person=1,returning=0,storm=0,stuffer=0 \
  --users "$users" --increase-rate "$users" --run-time "${seconds}s"
echo "compare: Locust, $users people for ${seconds}s"
export TESSERA_STACK="$out/stack.json"
measure locust locust -f loadtest/locust/person.py --headless \
  -u "$users" -r "$users" -t "${seconds}s" --csv "$out/locust/stats" --only-summary

python3 - "$out" "$users" "$seconds" <<'PY' | tee "$out/comparison.md"
import csv, json, sys
out, users, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cpu(name):
    user, system, wall = (float(x) for x in open(f"{out}/{name}.cpu").read().split()[-3:])
    return user + system, wall
def sign_ins(name):
    return int(open(f"{out}/{name}.sign_ins").read())
goose = json.load(open(f"{out}/goose/summary.json"))
goose_requests = sum(p["requests"] for p in goose["phases"])
with open(f"{out}/locust/stats_stats.csv") as f:
    locust_requests = next(int(r["Request Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated")
print(f"{users} simulated people, {seconds} s each, person scenario only, one stack on release builds\n")
print("| generator | requests | requests/s | generator CPU (s) | generator cores busy | requests/s per generator core | stack sign-ins/s |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, requests in (("goose", goose_requests), ("Locust", locust_requests)):
    busy, wall = cpu(name.lower())
    print(f"| {name} | {requests} | {requests / seconds:.0f} | {busy:.1f} | {busy / wall:.2f} | {requests / max(busy, 0.001):.0f} | {sign_ins(name.lower()) / seconds:.1f} |")
PY
echo "compare: written to $out/comparison.md"
