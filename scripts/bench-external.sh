#!/usr/bin/env bash
# scripts/bench-external.sh [N] [NAMESPACES] [KEYS] [REFRESH] — benchmark the ExternalSecret
# controller (`hush controller --controllers external`, release build) on a real kube-apiserver
# with a private OpenBao dev server that has a file audit device (by hand; not part of
# scripts/test.sh). N ExternalSecrets (default 1000) in NAMESPACES namespaces (10) read KEYS
# distinct Vault keys (100) through one ClusterSecretStore with AppRole auth (a one-use secret
# id). Printed: time until all are Ready, Vault requests of the initial sync and of one periodic
# full refresh (refreshInterval REFRESH s, default 30) counted from the audit log, beside ESO's
# expected calls (a login, a read and a revoke per ExternalSecret), how long a new
# ExternalSecret waits when created as the refresh wave starts, and the controller's peak RSS.
# Results go to docs/benchmarks.md by hand.
#
# Uses a running environment if KUBECONFIG is set, otherwise starts one and stops it afterwards.
# OpenBao is always private to the run (its binary from HUSH_PEER_BAO in peers.env, or `bao`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"
PEERS="${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env"
BAO=bao
if [ -f "$PEERS" ]; then
  BAO=$(. "$PEERS" && echo "${HUSH_PEER_BAO:-bao}")
fi

STATE=$(mktemp -d)
bao_pid=
cleanup() {
  if [ -n "$bao_pid" ]; then kill "$bao_pid" 2>/dev/null || true; wait "$bao_pid" 2>/dev/null || true; fi
  rm -rf "$STATE"
  if [ -n "${KTE_STARTED:-}" ]; then scripts/kube-testenv.sh stop "$KTE_DIR"; fi
}
trap cleanup EXIT

if [ -z "${KUBECONFIG:-}" ]; then
  eval "$(scripts/kube-testenv.sh start)"
  KTE_STARTED=1
fi

cargo build --release --locked -p hush
cargo build --locked -p hush-e2e --example bench_external

# OpenBao: dev server (in memory) plus a declarative file audit device (OpenBao refuses to
# enable audit devices through the API).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="bench-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
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
for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$port/v1/sys/health" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/v1/sys/health" >/dev/null || { cat "$STATE/bao.log" >&2; exit 1; }
echo "OpenBao $("$BAO" version | head -1) at 127.0.0.1:$port, audit log $STATE/audit.log"

"$CARGO_TARGET_DIR/debug/examples/bench_external" "$CARGO_TARGET_DIR/release/hush" \
  "http://127.0.0.1:$port" "$token" "$STATE/audit.log" "$@"
