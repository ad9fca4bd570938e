#!/usr/bin/env bash
# Builds Tessera's static release binaries (the services, the demo site, the WAN link):
# what the images carry and what load runs measure. Prints the directory they are in.
#
# Usage: scripts/release-bins.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
packages=(-p tessera-token-stash -p tessera-session-jwt -p tessera-login -p tessera-audit
  -p tessera-demo-site -p tessera-wan-link)
echo "release-bins: building static release binaries; the first build takes several minutes" >&2
# crt-static links glibc in: the binary runs in an empty image and still resolves peer
# containers by name (Docker provides /etc/hosts and /etc/resolv.conf).
# No debug info: the images carry none, and it would double the build's size on disk.
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=0 \
  cargo build --release --locked --target "$target" "${packages[@]}" >&2
echo "target/$target/release"
