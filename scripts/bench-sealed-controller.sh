#!/usr/bin/env bash
# scripts/bench-sealed-controller.sh [N] — benchmark `hush controller` on a real kube-apiserver
# (by hand; not part of scripts/test.sh). N SealedSecrets (default 10000; one 32-byte value each,
# RSA-4096) are created before the controller starts; printed: time until every Secret exists and
# its RSA decrypts, time to be fully reconciled after a restart and its decrypts, peak RSS, and the
# RSA floor from `openssl speed -multi 2 rsa4096` measured in the same run, the API calls per
# SealedSecret (the API server's request counters) and the CPU seconds of the controller,
# kube-apiserver, etcd and kube-controller-manager. Results go to docs/benchmarks.md by hand.
#
# Bitnami's controller v0.36.6 runs too when BITNAMI_CONTROLLER names its binary (default:
# ~/.cache/hush/peers/sealed-controller-v0.36.6/controller if present; BITNAMI_CONTROLLER= skips
# it). HUSH_QPS/HUSH_BURST, BITNAMI_QPS/BITNAMI_BURST and BITNAMI_MAX_WAIT (seconds per phase)
# are read by the driver.
#
# Uses a running environment if KUBECONFIG is set, otherwise starts one and stops it afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N="${1:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"

if [ -z "${KUBECONFIG:-}" ]; then
  eval "$(scripts/kube-testenv.sh start)"
  trap 'scripts/kube-testenv.sh stop "$KTE_DIR"' EXIT
fi

cargo build --release --locked -p hush
cargo build --locked -p hush-e2e --example bench_sealed_controller

floor=$(openssl speed -seconds 5 -multi 2 rsa4096 2>/dev/null | awk '/^rsa 4096 bits/ {print $(NF-1)}')
echo "openssl speed -multi 2 rsa4096: ${floor} sign/s"
echo "RSA floor for N=${N}: $(awk -v n="$N" -v f="$floor" 'BEGIN {printf "%.1f s", n / f}')"
BITNAMI_CONTROLLER="${BITNAMI_CONTROLLER-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers/sealed-controller-v0.36.6/controller}"
bitnami=()
if [ -n "$BITNAMI_CONTROLLER" ] && [ -x "$BITNAMI_CONTROLLER" ]; then
  bitnami=("$BITNAMI_CONTROLLER")
  echo "Bitnami controller: $BITNAMI_CONTROLLER (QPS ${BITNAMI_QPS:-5} / burst ${BITNAMI_BURST:-10})"
fi
"$CARGO_TARGET_DIR/debug/examples/bench_sealed_controller" "$CARGO_TARGET_DIR/release/hush" "$N" "${bitnami[@]}"
