#!/usr/bin/env bash
# The test runs of `just test` after the build: every crate's tests, then the
# observability suite (it runs `just up`'s stack, on that script's fixed ports, one test
# at a time), then the container suite on its own (its datacenters start dozens of
# processes on few cores; beside the CPU-bound tests they starve; the Kubernetes manifest
# test is one of them), then the Kubernetes overlays' offline validation, then the load
# generator's tests and the short load runs on one stack and across two datacenters.
# Every part runs; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1
  shift
  echo "test: $name"
  "$@" || failed+=("$name")
}
# Filters rather than -p/--exclude: the whole workspace's feature set, so nothing that
# `cargo build --workspace` built is built again.
if command -v cargo-nextest >/dev/null; then
  step "every crate but the container and observability suites" \
    cargo nextest run --workspace --no-fail-fast \
    -E 'not package(tessera-dc-suite) and not package(tessera-trace-viewer)'
  step "the observability suite" \
    cargo nextest run --workspace --no-fail-fast --test-threads 1 -E 'package(tessera-trace-viewer)'
  step "the container suite" \
    cargo nextest run --workspace --no-fail-fast -E 'package(tessera-dc-suite)'
else
  step "every crate, the container suite included" cargo test --workspace --no-fail-fast
fi
step "the Kubernetes overlays render and validate offline" bash scripts/k8s-validate.sh
step "the load generator's own tests" bash -c "cd loadtest && cargo test --release --locked --quiet"
step "a short load run on one stack" bash scripts/load.sh --users 20 --iterations 2
step "a short load run across two datacenters" bash scripts/load-dc.sh --users 20 --iterations 2

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'test: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "test: every part passed"
