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
# A second listener speaks TLS (for `cert` auth): HUSH_VAULT_TLS_ADDR (https://127.0.0.1:<port>) and
# HUSH_VAULT_TLS_DIR holding ca.crt (the CA of the listener's certificate, for 127.0.0.1) and
# client.crt / client.key (a client certificate of another CA, client-ca.crt, for cert auth roles).
set -euo pipefail

NAME=openbao
READY_SECONDS=10
# shellcheck source=scripts/lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

# make_tls DIR: a CA and the listener's certificate (127.0.0.1), and a client certificate of a
# second CA; fresh per server.
make_tls() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=hush-openbao-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -keyout ca.key -out ca.crt
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
      -extfile server.ext -out server.crt
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=hush-openbao-client-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -keyout client-ca.key -out client-ca.crt
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=hush-test-client" -keyout client.key -out client.csr
    printf '%s\n' "extendedKeyUsage=clientAuth" >client.ext
    openssl x509 -req -in client.csr -CA client-ca.crt -CAkey client-ca.key -CAcreateserial -days 7 \
      -extfile client.ext -out client.crt
  ) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
}

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
  make_tls "$STATE/tls"
  free_port >"$STATE/tls-port"
  cat >"$STATE/tls.hcl" <<HCL
listener "tcp" {
  address       = "127.0.0.1:$(cat "$STATE/tls-port")"
  tls_cert_file = "$STATE/tls/server.crt"
  tls_key_file  = "$STATE/tls/server.key"
}
HCL
  exec setsid "$(peer HUSH_PEER_BAO bao)" server -dev -dev-root-token-id="$token" \
    -dev-listen-address="127.0.0.1:$1" -config="$STATE/audit.hcl" -config="$STATE/tls.hcl"
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
  printf 'export HUSH_VAULT_TLS_ADDR=https://127.0.0.1:%s\n' "$(cat "$STATE/tls-port")"
  printf 'export HUSH_VAULT_TLS_DIR=%s\n' "$STATE/tls"
}

service_main "$@"
