# Sourced: start_one_stack OUT starts `just up`'s stack from the static release binaries
# in a fresh state directory under OUT, waits until it is up, adds load accounts, and
# writes OUT/stack.json for tessera-load (and Locust). It stops when the shell exits.

start_one_stack() {
  local out=$1 root=$PWD
  local bin_dir
  bin_dir="$root/$(bash scripts/release-bins.sh)"
  # The stack: `just up`'s script, on release binaries and a state directory of its own.
  export TESSERA_BIN_DIR="$bin_dir" TESSERA_STATE_DIR="$out/stack"
  # A load run measures the services, not span export to a development viewer.
  export TESSERA_TRACES=off
  # Simulated visitors come from addresses of their own, which the login learns from
  # x-forwarded-for; it believes that header from this machine only.
  export TESSERA_LOGIN__CLIENT_IP_HEADER=x-forwarded-for
  export TESSERA_LOGIN__TRUSTED_PROXIES='["127.0.0.1"]'
  # Sessions age within a run: sites refresh them after this many seconds.
  local access_token_seconds=5
  export TESSERA_SESSION__ACCESS_TOKEN_SECONDS=$access_token_seconds

  echo "load: starting the stack (release builds); its output: $out/stack.out"
  bash scripts/up.sh >"$out/stack.out" 2>&1 &
  up_pid=$!
  trap stop_one_stack EXIT
  for _ in $(seq 1 1200); do
    if grep -q "^Tessera is up" "$out/stack.out"; then break; fi
    if ! kill -0 "$up_pid" 2>/dev/null; then
      echo "load: the stack did not start; its output says:" >&2
      tail -n 30 "$out/stack.out" >&2
      exit 1
    fi
    sleep 0.1
  done
  if ! grep -q "^Tessera is up" "$out/stack.out"; then
    echo "load: the stack was not up within 120 s; see $out/stack.out" >&2
    exit 1
  fi

  local state="$out/stack"
  # More accounts than the demo user, each with the demo password: people sign in as one
  # of them each, and stuffers try them from networks of their own.
  local accounts='"demo"'
  for i in $(seq 1 19); do
    (cd "$state" && "$bin_dir/tessera-login" user add "load-$i" --if-absent <.tessera/demo/password >/dev/null)
    accounts="$accounts, \"load-$i\""
  done
  cat >"$out/stack.json" <<JSON
{
  "name": "one stack (just up's, on release builds)",
  "login_origin": "http://localhost:7400",
  "datacenters": [{
    "name": "local",
    "login_metrics": "$(admin_of "$state" login)/metrics",
    "session_metrics": "$(admin_of "$state" session-jwt)/metrics",
    "stash_metrics": "$(admin_of "$state" token-stash)/metrics"
  }],
  "sites": [
    {"name": "wiki-a", "origin": "http://localhost:7501", "dc": "local"},
    {"name": "wiki-b", "origin": "http://localhost:7502", "dc": "local"}
  ],
  "accounts": [$accounts],
  "password_file": "$state/.tessera/demo/password",
  "forwarded_for": true,
  "access_token_seconds": $access_token_seconds
}
JSON
}

# The admin address service $2 of the stack in state directory $1 printed when ready.
admin_of() {
  sed -n 's/.* ready: .*admin=\(http:\/\/[^ ]*\).*/\1/p' "$1/.tessera/logs/$2.out" | head -n 1
}

stop_one_stack() {
  if [ -n "${up_pid:-}" ] && kill -0 "$up_pid" 2>/dev/null; then
    echo "load: stopping the stack"
    kill -TERM "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
}

# Refuses to start while another stack holds the ports.
require_free_ports() {
  for port in 7400 7401 7402 7403 7501 7502; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "load: 127.0.0.1:$port is taken (is \`just up\` running?). A load run starts the same stack from release builds on the same ports: stop the other one first." >&2
      exit 1
    fi
  done
}
