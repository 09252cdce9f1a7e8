#!/usr/bin/env bash
# scripts/bench-shards.sh [N] [REPLICAS] [SHARDS] — benchmark `hush controller --shards` on a real
# kube-apiserver (by hand; not part of scripts/test.sh). N SealedSecrets (default 30000) for one
# unsharded replica, then N more in fresh namespaces for REPLICAS (3) replicas with --shards SHARDS
# (12); then one replica is SIGKILLed while N/10 more are created. Printed: first sync, decrypts
# summed over replicas, API calls per SealedSecret, controller CPU, peak RSS per replica, the
# hand-over times and, from the API server's audit log, Secrets created more than once. Driver:
# tests/e2e/examples/bench_shards.rs. Results go to docs/benchmarks.md by hand.
#
# Starts its own API server (with audit logging) and stops it afterwards. CPU-heavy: run it under
# `nice`. HUSH_BIN=path uses that hush binary instead of building a release one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N="${1:-30000}"
REPLICAS="${2:-3}"
SHARDS="${3:-12}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"

AUDIT_DIR=$(mktemp -d)
export AUDIT_LOG="$AUDIT_DIR/audit.log"
eval "$(env -u KTE_DIR KTE_APISERVER_ARGS="$(scripts/rbac-evidence.sh audit-args "$AUDIT_LOG")" scripts/kube-testenv.sh start)"
trap 'scripts/kube-testenv.sh stop "$KTE_DIR"; rm -rf "$AUDIT_DIR"' EXIT

if [ -z "${HUSH_BIN:-}" ]; then
  cargo build --release --locked -p hush
  HUSH_BIN="$CARGO_TARGET_DIR/release/hush"
fi
cargo build --locked -p hush-e2e --example bench_shards
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$CARGO_TARGET_DIR/debug/examples/bench_shards" "$HUSH_BIN" "$N" "$REPLICAS" "$SHARDS"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
