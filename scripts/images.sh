#!/usr/bin/env bash
# Builds Tessera's container images on this machine; nothing is ever pulled.
#
# - One image per service: its static release binary and nothing else, FROM scratch, run
#   as a numeric non-root user, tagged tessera/<service>:<git revision>, :<version> (the
#   workspace's, which the Kubernetes manifests name) and :latest. The
#   same for tessera/wan-link, the delaying proxy the two-datacenter tests put between
#   the datacenters.
# - tessera/redis and tessera/postgres, for tests: root file systems made from Debian's
#   packages (debootstrap --variant=minbase) and `docker import`ed, once per machine and
#   reused while present.
#
# Usage: scripts/images.sh [--services-only | --bases-only]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

services=(token-stash session-jwt login audit demo-site)
# Built and imaged like a service, for the two-datacenter tests: the delaying WAN proxy.
tools=(wan-link)
# Numeric, so a runtime need not read /etc/passwd (there is none in the image).
service_uid=10001

want_services=1
want_bases=1
case "${1:-}" in
  --services-only) want_bases=0 ;;
  --bases-only) want_services=0 ;;
  "") ;;
  *) echo "images: unknown option ${1}; use --services-only or --bases-only" >&2; exit 2 ;;
esac

if ! docker info >/dev/null 2>&1; then
  echo "images: Docker is not reachable (is the daemon running, and may this user use it?)" >&2
  exit 1
fi
# The engine here has no buildx; the legacy builder needs no image but the ones we build.
export DOCKER_BUILDKIT=0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

revision() {
  local rev
  rev="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    rev="${rev}-dirty"
  fi
  echo "$rev"
}

# The workspace's version, as the Kubernetes manifests tag the images.
workspace_version() {
  awk -F'"' '/^\[workspace.package\]/ {in_package=1} in_package && /^version/ {print $2; exit}' Cargo.toml
}

build_service_images() {
  local rev bin_dir version
  rev="$(revision)"
  version="$(workspace_version)"
  bin_dir="$(bash scripts/release-bins.sh)"
  for service in "${services[@]}" "${tools[@]}"; do
    local binary="$bin_dir/tessera-$service"
    if ! ldd "$binary" 2>&1 | grep -qE "not a dynamic executable|statically linked"; then
      echo "images: $binary is not statically linked; it would not run FROM scratch" >&2
      exit 1
    fi
    local context
    context="$(mktemp -d)"
    cp "$binary" "$context/tessera-$service"
    # Debug info stays in target/ for profiling; the image carries the code only.
    if command -v strip >/dev/null; then
      strip --strip-debug "$context/tessera-$service"
    fi
    cat >"$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY tessera-$service /tessera-$service
USER $service_uid:$service_uid
ENTRYPOINT ["/tessera-$service"]
DOCKERFILE
    local built
    if ! built="$(docker build --quiet \
      --label "org.opencontainers.image.revision=$rev" \
      --label "org.opencontainers.image.title=tessera-$service" \
      -t "tessera/$service:$rev" -t "tessera/$service:$version" -t "tessera/$service:latest" \
      "$context" 2>&1)"; then
      echo "$built" >&2
      echo "images: building tessera/$service failed" >&2
      exit 1
    fi
    rm -rf "$context"
    echo "images: tessera/$service:$rev ($(docker image inspect -f '{{.Size}}' "tessera/$service:$rev") bytes)"
  done
}

# The Debian mirror this machine's own apt sources name (no other host is reachable).
debian_mirror() {
  local mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)"
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

# build_base IMAGE PACKAGES...: a Debian minbase root file system with PACKAGES, imported
# as IMAGE, unless IMAGE is already here.
build_base() {
  local image="$1"
  shift
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "images: $image is present; kept"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    echo "images: debootstrap is missing: installing Debian's debootstrap package"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local rootfs include
  rootfs="$(mktemp -d)"
  include="$(IFS=,; echo "$*")"
  echo "images: building $image from Debian packages ($include); about a minute"
  $sudo debootstrap --variant=minbase --include="$include" bookworm "$rootfs" "$(debian_mirror)" >/dev/null
  # Apt's caches and lists are not needed at run time.
  $sudo rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/*
  $sudo tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
  $sudo rm -rf "$rootfs"
  echo "images: $image built"
}

if [ "$want_services" -eq 1 ]; then
  build_service_images
fi
if [ "$want_bases" -eq 1 ]; then
  build_base tessera/redis:bookworm redis-server
  build_base tessera/postgres:bookworm postgresql
fi
