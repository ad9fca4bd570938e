#!/usr/bin/env bash
# Starts Tessera on embedded defaults: dev certificates, the token stash, the session
# service. Prints where each listens; Ctrl-C stops them all cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "Building Tessera…"
cargo build --quiet --bin tessera-token-stash --bin tessera-session-jwt
bin=target/debug
"$bin/tessera-token-stash" dev-certs --dir .tessera/certs >/dev/null

logs=.tessera/logs
mkdir -p "$logs"
pids=()
stop() {
  echo
  echo "Stopping Tessera…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "Stopped."
}
trap stop EXIT
trap 'exit 0' INT TERM

# Starts a service, waits (bounded) for the ready line it prints, and echoes that line.
start() {
  local name=$1; shift
  local out="$logs/$name.out"
  : >"$out"
  "$@" >"$out" 2>"$logs/$name.log" &
  pids+=("$!")
  for _ in $(seq 1 600); do
    if grep -q " ready: " "$out"; then
      grep " ready: " "$out"
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "$name exited during start-up; its log ($logs/$name.log) says:" >&2
      tail -n 20 "$logs/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name did not become ready within 60 s; see $logs/$name.log" >&2
  exit 1
}

start token-stash "$bin/tessera-token-stash" serve
start session-jwt "$bin/tessera-session-jwt" serve

cat <<MSG

Tessera is up (embedded defaults, development certificates in .tessera/certs).
  gRPC clients: trust .tessera/certs/ca.pem, present a service certificate
  (e.g. login.pem / login.key); contracts in crates/proto/proto/.
  Logs: $logs/
Press Ctrl-C to stop.
MSG
wait
