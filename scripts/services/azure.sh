#!/usr/bin/env bash
# scripts/services/azure.sh — a throwaway Azure test server (tests/cloud/azure_server.py: Entra ID's
# token endpoint and one Key Vault, secrets and keys, over HTTPS with a CA of its own).
#
#   eval "$(scripts/services/azure.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/azure.sh stop              stop exactly the process this script started
#   scripts/services/azure.sh env               print the exports of the running server again
#
# Exports: HUSH_AZURE_URL (https://127.0.0.1:<random free port>): the vault URL and the authority
# host at once; HUSH_AZURE_CA: the PEM of the CA that signed its certificate; and for hush
# AZURE_AUTHORITY_HOST, HUSH_AZURE_VAULT_DOMAIN (127.0.0.1:<port>) and HUSH_AZURE_CA_FILE. An application
# (tenant id, client id, client secret) comes from `POST $HUSH_AZURE_URL/hush/apps {}`.
# The interpreter is $HUSH_PEER_PYTHON (peers.env: the peers venv, where `cryptography` is installed).
set -euo pipefail

NAME=azure
READY_SECONDS=30
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/service.sh
. "$HERE/../lib/service.sh"

launch() {
  exec setsid "$(peer HUSH_PEER_PYTHON python3)" "$HERE/../../tests/cloud/azure_server.py" \
    --port "$1" --state "$STATE/tls"
}
ready() { # the management API over TLS (not $1, the library's http URL), trusting the server's CA
  [ -f "$STATE/tls/ca.pem" ] || return 1
  python3 - "https://127.0.0.1:$(cat "$STATE/port")/hush/calls" "$STATE/tls/ca.pem" <<'PY' >/dev/null 2>&1
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
with urllib.request.urlopen(sys.argv[1], timeout=2, context=ctx) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}
configure() { :; }
print_env() {
  local port ca
  port=$(cat "$STATE/port")
  ca="$STATE/tls/ca.pem"
  printf 'export HUSH_AZURE_URL=https://127.0.0.1:%s HUSH_AZURE_CA=%s\n' "$port" "$ca"
  # azure-identity's authority variable and hush's Key Vault domain and CA (crates/azure, Cloud).
  printf 'export AZURE_AUTHORITY_HOST=https://127.0.0.1:%s HUSH_AZURE_VAULT_DOMAIN=127.0.0.1:%s HUSH_AZURE_CA_FILE=%s\n' \
    "$port" "$port" "$ca"
  # hush's managed-identity endpoint (crates/azure, imds_endpoint_from_env).
  printf 'export HUSH_AZURE_IMDS_ENDPOINT=https://127.0.0.1:%s/metadata/identity/oauth2/token\n' "$port"
}

service_main "$@"
