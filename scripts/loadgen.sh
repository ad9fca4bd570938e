#!/usr/bin/env bash
# Builds the load generator (loadtest/, a workspace of its own) in release mode and
# prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load: building the load generator (release)" >&2
# Run from inside loadtest/ so its own .cargo/config.toml (the shared target/) applies.
(cd loadtest && cargo build --release --locked --quiet >&2)
echo "$PWD/target/release/tessera-load"
