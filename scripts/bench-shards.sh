#!/usr/bin/env bash
# scripts/bench-shards.sh [sealed|external] [N] [REPLICAS] [SHARDS] [N_DURING] [KEYS] [REFRESH_S]
# — benchmark `hush controller --shards` on a real kube-apiserver (by hand; not part of
# scripts/test.sh). `sealed` (the default): N SealedSecrets (default 30000); `external`: N
# ExternalSecrets (default 5000) over KEYS OpenBao KV keys (500, refreshInterval REFRESH_S, 60).
# Each phase in fresh namespaces: one unsharded replica; REPLICAS (3) replicas with --shards
# SHARDS (12), one SIGKILLed after the first sync while N/10 more are created; REPLICAS replicas
# with N_DURING (default N; 0 skips it) objects, one SIGKILLed once half are synced. Printed: first
# sync, the expensive operation summed over replicas (decrypts / provider calls), API calls per
# object, controller CPU, peak RSS per replica, the hand-over times, Secrets written more than once
# (the API server's audit log), and for `external` the OpenBao reads of the first sync and of one
# refresh wave per distinct key (its audit log). Driver: tests/e2e/examples/bench_shards.rs.
# Results go to docs/benchmarks.md by hand.
#
# Starts its own API server (with audit logging) and, for `external`, its own OpenBao, and stops
# them afterwards. HUSH_BIN=path uses that hush binary instead of building a release one. The
# driver's BENCH_SINGLE_RSS_MIB / BENCH_SKIP_AFTER skip phases (see the driver's header).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORKLOAD=sealed
case "${1:-}" in
  sealed | external) WORKLOAD=$1; shift ;;
esac
if [ "$WORKLOAD" = sealed ]; then N="${1:-30000}"; else N="${1:-5000}"; fi
REPLICAS="${2:-3}"
SHARDS="${3:-12}"
N_DURING="${4:-$N}"
KEYS="${5:-500}"
REFRESH="${6:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"

AUDIT_DIR=$(mktemp -d)
export AUDIT_LOG="$AUDIT_DIR/audit.log"
cleanup() {
  if [ "$WORKLOAD" = external ]; then
    HUSH_SERVICES_DIR="$AUDIT_DIR/services" scripts/services/openbao.sh stop || true
  fi
  scripts/kube-testenv.sh stop "$KTE_DIR" || true
  rm -rf "$AUDIT_DIR"
}
eval "$(env -u KTE_DIR KTE_APISERVER_ARGS="$(scripts/rbac-evidence.sh audit-args "$AUDIT_LOG")" scripts/kube-testenv.sh start)"
trap cleanup EXIT
if [ "$WORKLOAD" = external ]; then
  eval "$(HUSH_SERVICES_DIR="$AUDIT_DIR/services" scripts/services/openbao.sh start)"
fi

if [ -z "${HUSH_BIN:-}" ]; then
  cargo build --release --locked -p hush
  HUSH_BIN="$CARGO_TARGET_DIR/release/hush"
fi
cargo build --locked -p hush-e2e --example bench_shards
echo "$(date -u +%FT%TZ) $(git rev-parse --short HEAD) $HUSH_BIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$CARGO_TARGET_DIR/debug/examples/bench_shards" "$WORKLOAD" "$HUSH_BIN" "$N" "$REPLICAS" "$SHARDS" \
  "$N_DURING" "$KEYS" "$REFRESH"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
