#!/usr/bin/env bash
# scripts/services/openbao.sh — a throwaway OpenBao dev server for tests (Vault transit, KV).
#
#   eval "$(scripts/services/openbao.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/openbao.sh stop              stop exactly the process this script started
#   scripts/services/openbao.sh env               print the exports of the running server again
#
# Exports: HUSH_VAULT_ADDR (http://127.0.0.1:<random free port>), HUSH_VAULT_TOKEN (dev root token),
# HUSH_VAULT_AUDIT_LOG (a file audit device: one JSON line per request, for tests that count the
# controller's Vault requests). The dev server keeps everything in memory, has KV v2 at secret/,
# and gets the transit engine at transit/. The binary is $HUSH_PEER_BAO (scripts/dev-env.sh writes it to peers.env) or `bao`.
set -euo pipefail

NAME=openbao
READY_SECONDS=10
# shellcheck source=scripts/lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

launch() {
  # A fresh root token per server; the state dir is private (0700).
  local token
  token="hush-dev-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  printf '%s' "$token" >"$STATE/token"
  # OpenBao enables audit devices only declaratively.
  cat >"$STATE/audit.hcl" <<HCL
audit "file" "tests" {
  options {
    file_path = "$STATE/audit.log"
  }
}
HCL
  exec setsid "$(peer HUSH_PEER_BAO bao)" server -dev -dev-root-token-id="$token" \
    -dev-listen-address="127.0.0.1:$1" -config="$STATE/audit.hcl"
}
ready() { http_ok "$1/v1/sys/health"; }
configure() {
  http_ok "$(service_url)/v1/sys/mounts/transit" "$(cat "$STATE/token")" '{"type":"transit"}' ||
    die "could not enable the transit engine"
}

print_env() {
  printf 'export HUSH_VAULT_ADDR=%s\n' "$(service_url)"
  printf 'export HUSH_VAULT_TOKEN=%s\n' "$(cat "$STATE/token")"
  printf 'export HUSH_VAULT_AUDIT_LOG=%s\n' "$STATE/audit.log"
}

service_main "$@"
