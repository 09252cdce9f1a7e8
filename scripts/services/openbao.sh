#!/usr/bin/env bash
# scripts/services/openbao.sh — a throwaway OpenBao dev server for tests (Vault transit, KV).
#
#   eval "$(scripts/services/openbao.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/openbao.sh stop              stop exactly the process this script started
#   scripts/services/openbao.sh env               print the exports of the running server again
#
# Exports: HUSH_VAULT_ADDR (http://127.0.0.1:<random free port>), HUSH_VAULT_TOKEN (dev root token).
# The dev server keeps everything in memory, has KV v2 at secret/, and gets the transit engine at
# transit/. The binary is $HUSH_PEER_BAO (scripts/dev-env.sh writes it to peers.env) or `bao`.
# State (pid, port, token, log): ${HUSH_SERVICES_DIR:-$HOME/.cache/hush/services}/openbao.
set -euo pipefail

NAME=openbao
STATE="${HUSH_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/services}/$NAME"
PEERS_ENV="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"

log() { printf 'openbao.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

peer() { # peer VAR default: from the environment, then peers.env, then PATH
  local v="${!1:-}"
  if [ -z "$v" ] && [ -f "$PEERS_ENV" ]; then
    v=$(sed -n "s/^\(export \)\{0,1\}$1=//p" "$PEERS_ENV" | tail -n 1 | tr -d "\"'")
  fi
  [ -n "$v" ] || v=$(command -v "$2" || true)
  [ -n "$v" ] || die "$1 is not set and '$2' is not on PATH (run scripts/dev-env.sh)"
  printf '%s' "$v"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

http_ok() { # http_ok URL [TOKEN [JSON_BODY]]: 0 when the request answers 2xx (python3, no curl needed)
  python3 - "$@" <<'PY' >/dev/null 2>&1
import sys, urllib.request
url = sys.argv[1]
headers = {"X-Vault-Token": sys.argv[2]} if len(sys.argv) > 2 else {}
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
with urllib.request.urlopen(req, timeout=2) as r:
    sys.exit(0 if 200 <= r.status < 300 else 1)
PY
}

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

print_env() {
  printf 'export HUSH_VAULT_ADDR=%s\n' "http://127.0.0.1:$(cat "$STATE/port")"
  printf 'export HUSH_VAULT_TOKEN=%s\n' "$(cat "$STATE/token")"
}

start() {
  if running; then
    log "already running (pid $(cat "$STATE/pid"))"
    print_env
    return
  fi
  local bao port token addr
  bao=$(peer HUSH_PEER_BAO bao)
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  port=$(free_port)
  token="hush-dev-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  printf '%s' "$port" >"$STATE/port"
  printf '%s' "$token" >"$STATE/token"
  addr="http://127.0.0.1:$port"
  # setsid: its own process group, so `stop` ends the server and nothing else.
  setsid "$bao" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" \
    >"$STATE/log" 2>&1 </dev/null &
  printf '%s' "$!" >"$STATE/pid"
  for _ in $(seq 1 100); do
    running || { tail -n 20 "$STATE/log" >&2; die "server exited during startup"; }
    if http_ok "$addr/v1/sys/health"; then
      break
    fi
    sleep 0.1
  done
  http_ok "$addr/v1/sys/health" || die "server not ready after 10 s (log: $STATE/log)"
  http_ok "$addr/v1/sys/mounts/transit" "$token" '{"type":"transit"}' ||
    die "could not enable the transit engine"
  log "started on $addr (pid $(cat "$STATE/pid"))"
  print_env
}

stop() {
  if running; then
    local pid
    pid=$(cat "$STATE/pid")
    kill -- "-$pid" 2>/dev/null || kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$STATE/pid" "$STATE/port" "$STATE/token"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) running || die "not running"; print_env ;;
  *) die "usage: $0 start|stop|env" ;;
esac
