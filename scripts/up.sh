#!/usr/bin/env bash
# Starts Tessera on embedded defaults: dev certificates, the token stash, the session
# service, the login service and two demo wikis, with a demo user, and a trace viewer
# every service exports its spans to. Prints where each listens and how to sign in;
# Ctrl-C stops them all cleanly.
#
#   --with-prometheus   also start Debian's Prometheus on the services' /metrics, with
#                       Tessera's alert rules (installs it when missing)
#   TESSERA_TRACES=off  no trace viewer and no span export (load runs)
set -euo pipefail
cd "$(dirname "$0")/.."
with_prometheus=no
for arg in "$@"; do
  case $arg in
    --with-prometheus) with_prometheus=yes ;;
    *) echo "up: unknown option $arg (try --with-prometheus)" >&2; exit 2 ;;
  esac
done
traces=${TESSERA_TRACES:-on}
repo=$PWD
# Logs, keys and data name people and hold secrets: owner-only.
umask 077

# TESSERA_BIN_DIR: binaries built already (a load run's release builds); otherwise a
# debug build, quick to make and to click through.
if [ -n "${TESSERA_BIN_DIR:-}" ]; then
  bin="$(cd "$TESSERA_BIN_DIR" && pwd)"
else
  echo "Building Tessera…"
  cargo build --quiet --bin tessera-token-stash --bin tessera-session-jwt --bin tessera-login --bin tessera-demo-site --bin tessera-audit --bin tessera-traces
  bin="$PWD/target/debug"
fi
# TESSERA_STATE_DIR: where .tessera (certificates, data, secrets, logs) lives; by
# default the checkout, so a restart finds its data again.
if [ -n "${TESSERA_STATE_DIR:-}" ]; then
  mkdir -p "$TESSERA_STATE_DIR"
  cd "$TESSERA_STATE_DIR"
fi
"$bin/tessera-token-stash" dev-certs --dir .tessera/certs >/dev/null

# Development certificates, named explicitly: a service with no certificate files and no
# dev_pki_dir refuses to start.
for service in STASH SESSION LOGIN AUDIT; do
  export "TESSERA_${service}__TLS__DEV_PKI_DIR=.tessera/certs"
done
# The login service in development mode: plain HTTP, only ever on localhost.
login_url=http://localhost:7400
export TESSERA_LOGIN__PUBLIC_URL=$login_url
export TESSERA_LOGIN__DEV_INSECURE_HTTP=true
# Every service writes its security events to the audit service.
export TESSERA_LOGIN__AUDIT__URL=https://127.0.0.1:7403
export TESSERA_SESSION__AUDIT__URL=https://127.0.0.1:7403
export TESSERA_STASH__AUDIT__URL=https://127.0.0.1:7403

# The demo user and the two demo sites, created once; their secrets live in .tessera/demo.
demo=.tessera/demo
mkdir -p "$demo"
chmod 700 "$demo"
new_password=no
if [ ! -s "$demo/password" ]; then
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$demo/password")
  new_password=yes
fi
# A demo user left by an earlier run whose password file is gone gets the new password
# once the session service runs (a password change ends the user's sessions there).
demo_user=$("$bin/tessera-login" user add demo --if-absent <"$demo/password")
for site in wiki-a:7501 wiki-b:7502; do
  name=${site%%:*}; port=${site##*:}
  origin=http://localhost:$port
  if [ ! -s "$demo/$name.secret" ]; then
    "$bin/tessera-login" site add "$name" --if-absent --secret-file "$demo/$name.secret" \
      --redirect-uri "$origin/callback" --post-logout-uri "$origin/" \
      --backchannel-logout-uri "$origin/backchannel-logout" >/dev/null
  fi
  # A site registered earlier whose secret file is gone gets a new secret.
  if [ ! -s "$demo/$name.secret" ]; then
    "$bin/tessera-login" site reset-secret "$name" --secret-file "$demo/$name.secret" >/dev/null
  fi
done

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

# Starts NAME running COMMAND..., waits (bounded: a service that hangs must not hang the
# script) until its STREAM (stdout or stderr) shows PATTERN, and echoes that line.
start_watching() {
  local name=$1 stream=$2 pattern=$3; shift 3
  local out="$logs/$name.out" log="$logs/$name.log"
  : >"$out"
  : >"$log"
  "$@" >"$out" 2>"$log" &
  pids+=("$!")
  local watched=$out
  [ "$stream" = stderr ] && watched=$log
  for _ in $(seq 1 600); do
    if grep -q -- "$pattern" "$watched"; then
      grep -m1 -- "$pattern" "$watched"
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "$name exited during start-up; its log ($log) says:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name did not become ready within 60 s; see $log" >&2
  exit 1
}

# Starts a Tessera service and echoes the ready line it prints.
start() {
  local name=$1; shift
  start_watching "$name" stdout " ready: " "$@"
}

traces_ui=http://127.0.0.1:7416
if [ "$traces" != off ]; then
  start traces "$bin/tessera-traces" --otlp 127.0.0.1:7417 --ui 127.0.0.1:7416
  # Every service exports its spans there, every trace of them (ratio 1), in batches
  # sent twice a second so a sign-in shows up at once.
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:7417
  export OTEL_TRACES_SAMPLER_ARG=${OTEL_TRACES_SAMPLER_ARG:-1}
  export OTEL_BSP_SCHEDULE_DELAY=500
  export TESSERA_AUDIT__TRACE_VIEWER_URL=$traces_ui
fi
start token-stash "$bin/tessera-token-stash" serve
start audit "$bin/tessera-audit" serve
start session-jwt "$bin/tessera-session-jwt" serve
start login "$bin/tessera-login" serve
if [ "$new_password" = yes ] && [[ "$demo_user" == *"left unchanged"* ]]; then
  "$bin/tessera-login" user passwd demo <"$demo/password" >/dev/null
fi
for site in wiki-a:7501 wiki-b:7502; do
  name=${site%%:*}; port=${site##*:}
  start "$name" "$bin/tessera-demo-site" --client-id "$name" \
    --client-secret-file "$demo/$name.secret" --listen "127.0.0.1:$port" \
    --public-url "http://localhost:$port" --login-url "$login_url" \
    --admin-listen "127.0.0.1:$((port + 80))" --datacenter dc1
done
if [ "$with_prometheus" = yes ]; then
  # Prometheus keeps its data with the rest of the state; the configuration and rules
  # are the repository's own, so what it alerts on is what `just test` checks.
  mkdir -p .tessera/prometheus
  start_watching prometheus stderr "Server is ready to receive web requests" \
    prometheus --config.file="$repo/deploy/prometheus/prometheus.yml" \
    --storage.tsdb.path=.tessera/prometheus --web.listen-address=127.0.0.1:7490 >/dev/null
fi

cat <<MSG

Tessera is up (embedded defaults, development mode: plain HTTP on localhost only).

  Open  http://localhost:7501/  (wiki-a) and sign in with
        user name: demo
        password:  $(cat "$demo/password")
  then  http://localhost:7502/  (wiki-b): signed in without a form.
  Sign out on either and both are signed out.

$(if [ "$traces" != off ]; then echo "  Traces:          $traces_ui/  (one trace per sign-in; every service exports here)"; fi)
$(if [ "$with_prometheus" = yes ]; then echo "  Prometheus:      http://127.0.0.1:7490/alerts  (scraping every /metrics; rules in deploy/prometheus/)"; fi)
  Metrics:         http://127.0.0.1:7480/metrics (login), :7481 (stash), :7482 (sessions),
                   :7483 (audit), :7581 and :7582 (wiki-a, wiki-b)
  Audit dashboard: http://127.0.0.1:7483/dashboard
                   admin token: $(cat .tessera/secrets/audit/admin.token)
  Login service:  $login_url/  (OpenID discovery at $login_url/.well-known/openid-configuration)
  gRPC clients:   trust .tessera/certs/ca.pem, present a service certificate;
                  contracts in crates/proto/proto/.
  Logs:           $logs/
Press Ctrl-C to stop.
MSG
wait
