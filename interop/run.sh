#!/usr/bin/env bash
# Starts a token stash from the built binary on free ports with a throwaway data directory
# and dev PKI, runs the independent Python client against it, and stops the stash.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-$root/target/debug/tessera-token-stash}"
venv="$root/target/interop-venv"

if [ ! -x "$venv/bin/python" ]; then
  echo "interop: creating a Python environment with grpcio and grpcio-tools in $venv"
  if ! python3 -m venv "$venv"; then
    echo "interop: python3 cannot create a virtual environment; install python3-venv (Debian) and run again" >&2
    exit 1
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-tools
fi

work="$(mktemp -d)"
stash_pid=""
cleanup() {
  [ -n "$stash_pid" ] && kill "$stash_pid" 2>/dev/null && wait "$stash_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$binary" dev-certs --dir "$work/certs" >/dev/null
mkfifo "$work/ready"
TESSERA_STASH__LISTEN=127.0.0.1:0 \
TESSERA_STASH__ADMIN_LISTEN=127.0.0.1:0 \
TESSERA_STASH__STORAGE__DATA_DIR="$work/data" \
TESSERA_STASH__TOKENS__SEAL_KEY_FILE="$work/seal.key" \
TESSERA_STASH__TLS__DEV_PKI_DIR="$work/certs" \
RUST_LOG=warn \
  "$binary" serve >"$work/ready" &
stash_pid=$!

ready_line=""
if ! read -r -t 60 ready_line <"$work/ready"; then
  echo "interop: the stash did not print its ready line within 60 s" >&2
  exit 1
fi
grpc="$(sed -n 's/.*grpc=https:\/\/\([^ ]*\).*/\1/p' <<<"$ready_line")"
echo "interop: stash ready at $grpc"
"$venv/bin/python" "$root/interop/stash_client.py" "$grpc" "$work/certs"
