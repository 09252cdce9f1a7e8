#!/usr/bin/env bash
# scripts/bench-external.sh [N] [NAMESPACES] [KEYS] [REFRESH] — benchmark hush's ExternalSecret
# controller (`hush controller --controllers external`, release build, default flags) beside the
# real External Secrets Operator v0.16.2 (HUSH_PEER_ESO, scripts/peers/eso.sh) with
# `--concurrent 1` (its default) and `--concurrent 8`, by hand (not part of scripts/test.sh).
#
# Each controller gets the same driver (tests/e2e/examples/bench_external.rs) on a fresh
# kube-apiserver and a fresh private OpenBao dev server with a file audit device: N ExternalSecrets
# (default 1000) in NAMESPACES namespaces (10) read KEYS distinct Vault keys (100) through one
# ClusterSecretStore with AppRole auth. Printed per controller: time until all are Ready, Vault
# requests of the initial sync and of one periodic refresh (refreshInterval REFRESH s, default 30)
# from the audit log, API calls per ExternalSecret (the API server's apiserver_request_total),
# how long a new ExternalSecret created as the refresh wave starts waits, controller CPU time and
# peak RSS; then one table of all. Results go to docs/benchmarks.md by hand.
#
#   BENCH_CONTROLLERS   which runs, in order (default "eso:1 eso:8 hush")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"
PEERS="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"
peer() { # peer VAR: from the environment, else peers.env
  local v="${!1:-}"
  if [ -z "$v" ] && [ -f "$PEERS" ]; then v=$(sed -n "s/^$1=//p" "$PEERS" | tail -n 1); fi
  printf '%s' "$v"
}
BAO=$(peer HUSH_PEER_BAO)
BAO=${BAO:-bao}
CONTROLLERS=${BENCH_CONTROLLERS:-"eso:1 eso:8 hush"}

STATE=$(mktemp -d)
bao_pid=
kte_dir=
cleanup() {
  if [ -n "$bao_pid" ]; then kill "$bao_pid" 2>/dev/null || true; wait "$bao_pid" 2>/dev/null || true; fi
  if [ -n "$kte_dir" ]; then scripts/kube-testenv.sh stop "$kte_dir" || true; fi
  rm -rf "$STATE"
}
trap cleanup EXIT

cargo build --release --locked -p hush
cargo build --locked -p hush-e2e --example bench_external
ESO=$(peer HUSH_PEER_ESO)
case " $CONTROLLERS " in
  *" eso:"*) [ -n "$ESO" ] && [ -x "$ESO" ] || ESO=$(bash scripts/peers/eso.sh) ;;
esac

start_bao() { # a private OpenBao dev server with a declarative file audit device (OpenBao
  # refuses to enable audit devices through the API)
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  token="bench-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  rm -f "$STATE/audit.log"
  cat >"$STATE/audit.hcl" <<HCL
audit "file" "bench" {
  options {
    file_path = "$STATE/audit.log"
  }
}
HCL
  "$BAO" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" \
    -config="$STATE/audit.hcl" >"$STATE/bao.log" 2>&1 &
  bao_pid=$!
  addr="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    if curl -fsS "$addr/v1/sys/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "$addr/v1/sys/health" >/dev/null || { cat "$STATE/bao.log" >&2; exit 1; }
}

: >"$STATE/results"
for c in $CONTROLLERS; do
  case "$c" in
    hush) subject="hush=$CARGO_TARGET_DIR/release/hush" ;;
    eso:*) subject="eso=$ESO:${c#eso:}" ;;
    *) echo "unknown controller '$c' (hush or eso:N)" >&2; exit 2 ;;
  esac
  echo
  echo "=== $c"
  out=$(env -u KTE_DIR -u KUBECONFIG scripts/kube-testenv.sh start)
  kte_dir=$(eval "$out" && printf '%s' "$KTE_DIR")
  start_bao
  echo "OpenBao $("$BAO" version | head -1) at $addr; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  (eval "$out" && "$CARGO_TARGET_DIR/debug/examples/bench_external" "$subject" "$addr" "$token" \
    "$STATE/audit.log" "$@") | tee "$STATE/run.log"
  grep '^RESULT ' "$STATE/run.log" >>"$STATE/results" || true
  kill "$bao_pid" 2>/dev/null || true
  wait "$bao_pid" 2>/dev/null || true
  bao_pid=
  scripts/kube-testenv.sh stop "$kte_dir"
  kte_dir=
done

echo
echo "=== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD))"
python3 - "$STATE/results" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1])]
if not rows:
    sys.exit("no results")
fields = [
    ("ready_s", "initial sync: all Ready (s)"),
    ("start_vault", "initial sync: Vault requests"),
    ("start_logins", "  of which logins"),
    ("start_reads", "  of which KV reads"),
    ("start_api_per_es", "initial sync: API calls per ExternalSecret"),
    ("start_cpu_s", "initial sync: controller CPU (s)"),
    ("wave_vault", "one refresh wave: Vault requests"),
    ("wave_logins", "  of which logins"),
    ("wave_reads", "  of which KV reads"),
    ("wave_s", "refresh wave: spread (s)"),
    ("wave_api_per_es", "refresh wave: API calls per ExternalSecret"),
    ("wave_cpu_s", "refresh wave: controller CPU (s)"),
    ("new_es_ready_s", "new ExternalSecret at the wave: Ready after (s)"),
    ("rss_mib", "controller peak RSS (MiB)"),
]
print("| Figure | " + " | ".join(r["controller"] for r in rows) + " |")
print("|---|" + "---|" * len(rows))
for key, label in fields:
    print(f"| {label} | " + " | ".join(r.get(key, "-") for r in rows) + " |")
PY
