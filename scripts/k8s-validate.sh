#!/usr/bin/env bash
# Proves the Kubernetes overlays offline: each renders with `kubectl kustomize`, passes
# kubernetes-validate --strict against the Kubernetes version we target (its schemas ship
# with it) and checkov's Kubernetes checks (with the skips k8s/.checkov.yaml lists). The
# Python tools live in a virtual environment under target/, at pinned versions, so the
# machine's own Python packages are untouched.
#
# Usage: scripts/k8s-validate.sh [overlay...]   (default: every overlay in k8s/overlays)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

kubernetes_version=1.32.0
tools="$root/target/k8s-tools"
out="$root/target/k8s"

if ! command -v kubectl >/dev/null; then
  echo "k8s-validate: kubectl is missing; install it (only its built-in kustomize is used, no cluster)" >&2
  exit 1
fi
if [ ! -x "$tools/bin/checkov" ] || [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "k8s-validate: installing kubernetes-validate and checkov into $tools (about a minute, once)"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 checkov==3.3.30
fi

overlays=("$@")
if [ "${#overlays[@]}" -eq 0 ]; then
  for dir in k8s/overlays/*/; do overlays+=("$(basename "$dir")"); done
fi
mkdir -p "$out"
for overlay in "${overlays[@]}"; do
  rendered="$out/$overlay.yaml"
  echo "k8s-validate: $overlay: rendering"
  kubectl kustomize "k8s/overlays/$overlay" >"$rendered"

  echo "k8s-validate: $overlay: kubernetes-validate --strict for Kubernetes $kubernetes_version"
  report="$("$tools/bin/kubernetes-validate" --strict -k "$kubernetes_version" "$rendered" 2>&1)" || {
    echo "$report" | grep -v '^INFO' >&2
    echo "k8s-validate: $overlay does not validate" >&2
    exit 1
  }
  # Only cert-manager's Certificates may go unchecked (their schema is cert-manager's,
  # not Kubernetes'; the manifest test reads and uses every field they set).
  unexpected="$(echo "$report" | grep -v '^INFO' | grep -v "Couldn't find schema for kind Certificate with api version cert-manager.io/v1" || true)"
  if [ -n "$unexpected" ]; then
    echo "$unexpected" >&2
    echo "k8s-validate: $overlay: kubernetes-validate warned about more than Certificates" >&2
    exit 1
  fi
  echo "k8s-validate: $overlay: $(echo "$report" | grep -c '^INFO.*passed') resources valid"

  echo "k8s-validate: $overlay: checkov"
  scan="$(mktemp -d)"
  cp "$rendered" "$scan/"
  if ! (cd "$scan" && "$tools/bin/checkov" --config-file "$root/k8s/.checkov.yaml" -d . 2>&1 |
    grep -v 'prismacloud\|urllib3\|guidelines' >"$out/$overlay.checkov.txt"); then
    :
  fi
  rm -rf "$scan"
  summary="$(grep -E '^Passed checks' "$out/$overlay.checkov.txt" || true)"
  if [ -z "$summary" ]; then
    cat "$out/$overlay.checkov.txt" >&2
    echo "k8s-validate: $overlay: checkov printed no summary" >&2
    exit 1
  fi
  echo "k8s-validate: $overlay: checkov: $summary"
  if ! echo "$summary" | grep -q 'Failed checks: 0,'; then
    cat "$out/$overlay.checkov.txt" >&2
    echo "k8s-validate: $overlay: checkov found problems" >&2
    exit 1
  fi
done
echo "k8s-validate: every overlay renders, validates strictly and passes checkov"
