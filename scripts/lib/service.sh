# shellcheck shell=bash
# Lifecycle shared by scripts/services/*.sh. A service script sets NAME and READY_SECONDS, defines
#   launch PORT   exec the server (`exec setsid …`, so the recorded pid leads its own process group);
#                 it runs in the background with its output in $STATE/log
#   ready URL     0 once the server answers
#   configure     one-time set-up after it is ready (may be empty)
#   print_env     the `export VAR=…` lines for callers
# then sources this file and calls `service_main "$@"`.
# State (pid, port, log, …): ${HUSH_SERVICES_DIR:-$HOME/.cache/hush/services}/$NAME, so concurrent
# runs with different HUSH_SERVICES_DIR never share a server.

STATE="${HUSH_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/services}/$NAME"
PEERS_ENV="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"

log() { printf '%s.sh: %s\n' "$NAME" "$*" >&2; }
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

service_url() { printf 'http://127.0.0.1:%s' "$(cat "$STATE/port")"; }

service_start() {
  if running; then
    log "already running (pid $(cat "$STATE/pid"))"
    print_env
    return
  fi
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  free_port >"$STATE/port"
  launch "$(cat "$STATE/port")" >"$STATE/log" 2>&1 </dev/null &
  printf '%s' "$!" >"$STATE/pid"
  local url tries
  url=$(service_url)
  tries=$((READY_SECONDS * 10))
  until ready "$url"; do
    running || { tail -n 20 "$STATE/log" >&2; die "server exited during startup"; }
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "server not ready after $READY_SECONDS s (log: $STATE/log)"
    sleep 0.1
  done
  configure
  log "started on $url (pid $(cat "$STATE/pid"))"
  print_env
}

service_stop() {
  if running; then
    local pid
    pid=$(cat "$STATE/pid")
    # The server leads its own process group (setsid in launch): end the group and nothing else.
    kill -- "-$pid" 2>/dev/null || kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$STATE/pid" "$STATE/port" "$STATE/token"
}

service_main() {
  case "${1:-}" in
    start) service_start ;;
    stop) service_stop ;;
    env) running || die "not running"; print_env ;;
    *) die "usage: $0 start|stop|env" ;;
  esac
}
