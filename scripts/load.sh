#!/usr/bin/env bash
# `just load`: a bounded goose load run against `just up`'s stack, which it starts here
# from release builds (a debug build would measure the compiler) in a fresh state
# directory under the run's reports, and stops at the end.
#
# Usage: scripts/load.sh [tessera-load and goose flags]; with none, about a minute:
#   two phases (scrapers alone, then the whole mix) of 30 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

run="$(date -u +%Y%m%dT%H%M%SZ)-one-stack"
out="$root/target/loadtest/$run"
mkdir -p "$out"

# shellcheck source=lib/one-stack.sh
source scripts/lib/one-stack.sh
require_free_ports

loadgen="$(bash scripts/loadgen.sh)"
start_one_stack "$out"

if [ "$#" -eq 0 ]; then
  set -- --users 40 --run-time 30s
fi
status=0
"$loadgen" --stack "$out/stack.json" --out "$out" "$@" || status=$?
echo "load: reports in $out"
exit "$status"
