# Tessera developer commands. `just up` starts the system, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

certs_dir := ".tessera/certs"

# List the commands.
default:
    @just --list

# Start Tessera on embedded defaults (stash, sessions, login, two demo wikis, a trace
# viewer); `just up --with-prometheus` also starts Prometheus with the alert rules.
# Ctrl-C stops it.
up *ARGS: _protoc
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ " {{ARGS}} " == *" --with-prometheus "* ]]; then just _prometheus; fi
    bash scripts/up.sh {{ARGS}}

# Create the dev CA and service certificates anew, replacing any old ones.
certs:
    cargo run --quiet --bin tessera-token-stash -- dev-certs --dir {{certs_dir}} --force

# Run every test (unit, integration on both backends, interop, two datacenters in
# containers, the Kubernetes overlays validated and run in containers, short load runs on one stack and across two datacenters); installs and
# builds what is missing, images included.
test: _redis _postgres _browser _protoc _prometheus images
    cargo build --workspace --all-targets
    bash interop/run.sh target/debug/tessera-token-stash
    bash scripts/test.sh

# A bounded load run (about a minute) against `just up`'s stack, started here from
# release builds: scrapers alone, then the mix (scrapers, people, returning people,
# refresh storms, credential stuffing). Takes goose's flags (--users, --run-time,
# --iterations, --report-file) and --mix kind=weight,...; prints where the reports are
# and the correctness counters, and fails if any is wrong.
load *ARGS:
    bash scripts/load.sh {{ARGS}}

# The same run across the two datacenters of `just dc-up` (started here from the
# images), with codes redeemed in the datacenter that did not mint them.
load-dc *ARGS: images
    bash scripts/load-dc.sh {{ARGS}}

# Build the container images here, pulling nothing: services FROM scratch, Redis and PostgreSQL from Debian.
images:
    bash scripts/images.sh

# Start the two datacenters in containers for a person to click through (prints both
# datacenters' addresses and how to open them); Ctrl-C removes them.
dc-up: images
    cargo run --quiet -p tessera-dc-suite --bin tessera-dc-up

# Remove the two datacenters' containers and networks that a killed `just dc-up` or test
# run left behind.
dc-down:
    #!/usr/bin/env bash
    set -euo pipefail
    containers=$(docker ps -aq --filter label=tessera-dc-suite=1)
    [ -z "$containers" ] || docker rm -f $containers >/dev/null
    networks=$(docker network ls -q --filter label=tessera-dc-suite=1)
    [ -z "$networks" ] || docker network rm $networks >/dev/null
    echo "removed $(echo $containers | wc -w) container(s) and $(echo $networks | wc -w) network(s)"

# Render both Kubernetes overlays and validate them offline: kubernetes-validate --strict
# and checkov (installed into target/k8s-tools at pinned versions). The rendered files
# land in target/k8s/.
k8s:
    bash scripts/k8s-validate.sh

# Benchmarks: the stash against raw Redis; session tokens (Ed25519 vs RS256) and refreshes;
# sign-ins; the audit log; and how each costs as its data grows (needs about 8 GB of memory).
bench: _redis
    cargo bench -p tessera-token-stash --bench stash
    cargo bench -p tessera-session-jwt --bench tokens
    cargo bench -p tessera-login --bench logins
    cargo bench -p tessera-audit --bench audit
    cargo bench -p tessera-audit --bench audit -- growth

# Format the code.
fmt:
    cargo fmt --all
    cd loadtest && cargo fmt

# Check formatting and lints (warnings are errors).
lint: _protoc
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd loadtest && cargo fmt -- --check
    cd loadtest && cargo clippy --release --locked --all-targets -- -D warnings

# Install PostgreSQL from Debian's packages if it is missing (tests start their own
# throwaway clusters; the packaged one is not used).
_postgres:
    #!/usr/bin/env bash
    set -euo pipefail
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi
    echo "PostgreSQL is missing: installing Debian's postgresql package"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null

# Install headless Chromium and its WebDriver from Debian's packages if missing.
# Install Debian's protobuf-compiler if `protoc` is missing (the trace viewer's OTLP
# receiver is generated with it at build time).
_protoc:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v protoc >/dev/null; then exit 0; fi
    echo "protoc is missing: installing Debian's protobuf-compiler"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null

# Install Debian's Prometheus if it is missing (promtool checks the alert rules and
# dashboards; `just up --with-prometheus` runs it). Its packaged service is not used.
_prometheus:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi
    echo "Prometheus is missing: installing Debian's prometheus"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null

_browser:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
    echo "Chromium or chromedriver is missing: installing Debian's chromium and chromium-driver"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null

# Install redis-server from Debian's packages if it is missing.
_redis:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v redis-server >/dev/null; then exit 0; fi
    echo "redis-server is missing: installing Debian's redis-server package"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    # The tests start their own servers; the packaged service is not needed.
    $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
