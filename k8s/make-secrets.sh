#!/usr/bin/env bash
# Makes the key sets one datacenter's Tessera reads from Secrets, as one folder per
# Secret holding one file per key, for `kubectl create secret generic NAME
# --from-file=FOLDER` (docs/deploy-kubernetes.md). Nothing is printed but the names.
#
#   token-stash-secrets   seal.key                 seals tokens in the stash's owner index
#   session-signing-keys  <unix-millis>.key        Ed25519 seeds; the newest signs
#   session-derivation    derive.key               derives session records' stash tokens and
#                                                  the refresh-token seal key (guard it like
#                                                  the signing keys) *
#   login-secrets         flow.key, id-token.key, id-token-rsa.pem, derive.key       *
#   audit-secrets         admin.token, ip-hash.key
#   redis-auth            auth.conf (requirepass), url (the stash's Redis URL)
#
# * One set for both datacenters (they are one issuer): make it once and create the same
#   Secret in each. Certificates come from cert-manager; the directory's URL
#   (tessera-directory) and a site's secret (demo-site-client) from your database and
#   `tessera-login site add`.
#
# Usage: k8s/make-secrets.sh OUT_DIR    (OUT_DIR must not exist yet)
set -euo pipefail
out="${1:?usage: k8s/make-secrets.sh OUT_DIR}"
if [ -e "$out" ]; then
  echo "make-secrets: $out exists; give a new folder so no key is overwritten" >&2
  exit 1
fi
if ! command -v openssl >/dev/null; then
  echo "make-secrets: openssl is missing; install it (Debian: apt-get install openssl)" >&2
  exit 1
fi
umask 077
secret() { openssl rand -hex 32; }

mkdir -p "$out"/{token-stash-secrets,session-signing-keys,session-derivation,login-secrets,audit-secrets,redis-auth}
secret >"$out/token-stash-secrets/seal.key"
secret >"$out/session-signing-keys/$(($(date +%s) * 1000)).key"
secret >"$out/session-derivation/derive.key"
for key in flow.key id-token.key derive.key; do secret >"$out/login-secrets/$key"; done
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out/login-secrets/id-token-rsa.pem" 2>/dev/null
secret >"$out/audit-secrets/admin.token"
secret >"$out/audit-secrets/ip-hash.key"
redis_password="$(secret)"
printf 'requirepass %s\n' "$redis_password" >"$out/redis-auth/auth.conf"
printf 'redis://:%s@redis:6379' "$redis_password" >"$out/redis-auth/url"
for dir in "$out"/*/; do
  echo "make-secrets: $(basename "$dir"): $(cd "$dir" && ls | tr '\n' ' ')"
done
