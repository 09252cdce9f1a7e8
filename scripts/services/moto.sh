#!/usr/bin/env bash
# scripts/services/moto.sh — a throwaway moto server (AWS mock: KMS, STS, Secrets Manager, SSM, …).
#
#   eval "$(scripts/services/moto.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/moto.sh stop              stop exactly the process this script started
#   scripts/services/moto.sh env               print the exports of the running server again
#
# Exports: HUSH_MOTO_URL (http://127.0.0.1:<random free port>), and ESO's AWS_SECRETSMANAGER_ENDPOINT,
# AWS_SSM_ENDPOINT, AWS_STS_ENDPOINT pointing at it. moto accepts any credentials and
# region; clients point at it with AWS_ENDPOINT_URL=$HUSH_MOTO_URL and dummy AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY. The binary is $HUSH_PEER_MOTO_SERVER (peers.env) or `moto_server`.
# State (pid, port, log): ${HUSH_SERVICES_DIR:-$HOME/.cache/hush/services}/moto.
set -euo pipefail

NAME=moto
STATE="${HUSH_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/services}/$NAME"
PEERS_ENV="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"

log() { printf 'moto.sh: %s\n' "$*" >&2; }
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
  local url="http://127.0.0.1:$(cat "$STATE/port")"
  printf 'export HUSH_MOTO_URL=%s\n' "$url"
  # ESO's endpoint variables (AWS provider of the ExternalSecret controller, e2e tests).
  printf 'export AWS_SECRETSMANAGER_ENDPOINT=%s AWS_SSM_ENDPOINT=%s AWS_STS_ENDPOINT=%s\n' "$url" "$url" "$url"
}

start() {
  if running; then
    log "already running (pid $(cat "$STATE/pid"))"
    print_env
    return
  fi
  local moto port url
  moto=$(peer HUSH_PEER_MOTO_SERVER moto_server)
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  port=$(free_port)
  printf '%s' "$port" >"$STATE/port"
  url="http://127.0.0.1:$port"
  # setsid: its own process group, so `stop` ends the server and nothing else.
  setsid "$moto" -H 127.0.0.1 -p "$port" >"$STATE/log" 2>&1 </dev/null &
  printf '%s' "$!" >"$STATE/pid"
  for _ in $(seq 1 300); do
    running || { tail -n 20 "$STATE/log" >&2; die "server exited during startup"; }
    if http_ok "$url/moto-api/"; then
      log "started on $url (pid $(cat "$STATE/pid"))"
      print_env
      return
    fi
    sleep 0.1
  done
  die "server not ready after 30 s (log: $STATE/log)"
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
  rm -f "$STATE/pid" "$STATE/port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) running || die "not running"; print_env ;;
  *) die "usage: $0 start|stop|env" ;;
esac
