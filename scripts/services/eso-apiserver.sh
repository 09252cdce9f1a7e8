#!/usr/bin/env bash
# scripts/services/eso-apiserver.sh — a second, separate kube-apiserver + etcd (scripts/kube-testenv.sh)
# for the real External Secrets Operator in the differential tests (tests/e2e/tests/eso_*.rs): the
# tests run ESO there and hush's controller on the run's own server (KUBECONFIG), and compare.
#
#   eval "$(scripts/services/eso-apiserver.sh start)"   start; prints only `export VAR=…` lines
#   scripts/services/eso-apiserver.sh stop              stop exactly that environment
#   scripts/services/eso-apiserver.sh env               print the exports again
#
# Exports: HUSH_ESO_KUBECONFIG (its admin kubeconfig) and HUSH_ESO_KTE_DIR (its kube-testenv
# directory). The ESO process itself is started by each test (with its own --controller-class),
# from HUSH_PEER_ESO in peers.env.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="${HUSH_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/services}/eso-apiserver"

log() { printf 'eso-apiserver.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kte_dir() { # the environment's directory: HUSH_ESO_KTE_DIR, else the state file
  local dir=${HUSH_ESO_KTE_DIR:-}
  [ -n "$dir" ] || dir=$(cat "$STATE/kte_dir" 2>/dev/null || true)
  printf '%s' "$dir"
}

print_env() {
  local dir=$1
  printf 'export HUSH_ESO_KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'export HUSH_ESO_KTE_DIR=%q\n' "$dir"
}

start() {
  local dir out
  dir=$(kte_dir)
  if [ -n "$dir" ] && [ -f "$dir/kubeconfig" ] && "$ROOT/scripts/kube-testenv.sh" env "$dir" >/dev/null 2>&1; then
    log "already running ($dir)"
    print_env "$dir"
    return
  fi
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  # A new environment of its own: never the KTE_DIR of the run's main server.
  out=$(env -u KTE_DIR -u KUBECONFIG "$ROOT/scripts/kube-testenv.sh" start)
  dir=$(eval "$out" && printf '%s' "$KTE_DIR")
  [ -f "$dir/kubeconfig" ] || die "kube-testenv started but $dir/kubeconfig is missing"
  printf '%s' "$dir" >"$STATE/kte_dir"
  log "started ($dir)"
  print_env "$dir"
}

stop() {
  local dir
  dir=$(kte_dir)
  if [ -z "$dir" ]; then
    log "not running"
    return
  fi
  "$ROOT/scripts/kube-testenv.sh" stop "$dir" || true
  rm -f "$STATE/kte_dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    dir=$(kte_dir)
    [ -n "$dir" ] || die "not running"
    print_env "$dir"
    ;;
  *) die "usage: $0 start|stop|env" ;;
esac
