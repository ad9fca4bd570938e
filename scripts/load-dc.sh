#!/usr/bin/env bash
# `just load-dc`: the load run of `just load`, across the two datacenters of `just dc-up`
# (release images). Each visitor's resolver sends the login's name to one datacenter
# and it signs in first on the site hosted in the other, so every such code is minted
# in one datacenter and redeemed in the other. The datacenters are started here and
# removed at the end.
#
# Usage: scripts/load-dc.sh [tessera-load and goose flags]; with none, about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

run="$(date -u +%Y%m%dT%H%M%SZ)-two-datacenters"
out="$root/target/loadtest/$run"
mkdir -p "$out"

for address in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do
  if (exec 3<>"/dev/tcp/$address/443") 2>/dev/null; then
    echo "load-dc: $address:443 is taken (is \`just dc-up\` running?). A load run starts its own two datacenters there: stop the other first." >&2
    exit 1
  fi
done

loadgen="$(bash scripts/loadgen.sh)"
echo "load-dc: building tessera-dc-up"
cargo build --quiet -p tessera-dc-suite --bin tessera-dc-up
# Sessions age within a run: sites refresh them after this many seconds.
access_token_seconds=5

echo "load-dc: starting two datacenters in containers; their output: $out/dc-up.out"
target/debug/tessera-dc-up --describe "$out/stack.json" \
  --access-token-seconds "$access_token_seconds" >"$out/dc-up.out" 2>&1 &
dc_pid=$!
stop_datacenters() {
  if kill -0 "$dc_pid" 2>/dev/null; then
    echo "load-dc: removing the two datacenters"
    kill -TERM "$dc_pid" 2>/dev/null || true
    wait "$dc_pid" 2>/dev/null || true
  fi
}
trap stop_datacenters EXIT
for _ in $(seq 1 1800); do
  if [ -s "$out/stack.json" ]; then break; fi
  if ! kill -0 "$dc_pid" 2>/dev/null; then
    echo "load-dc: the datacenters did not start; tessera-dc-up says:" >&2
    tail -n 30 "$out/dc-up.out" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$out/stack.json" ]; then
  echo "load-dc: the datacenters were not up within 180 s; see $out/dc-up.out" >&2
  exit 1
fi

if [ "$#" -eq 0 ]; then
  set -- --users 40 --run-time 30s
fi
status=0
"$loadgen" --stack "$out/stack.json" --out "$out" "$@" || status=$?
echo "load-dc: reports in $out"
exit "$status"
