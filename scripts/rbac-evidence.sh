#!/usr/bin/env bash
# scripts/rbac-evidence.sh — the Helm chart's RBAC against what the controllers really call.
#
#   scripts/rbac-evidence.sh compare AUDIT_LOG...   compare the chart with an audit log
#   scripts/rbac-evidence.sh run                    own API server with audit logging, OpenBao and
#                                                   moto; all hush-e2e scenarios; then compare
#   scripts/rbac-evidence.sh rules                  the chart's rules per profile (ids for
#                                                   HUSH_E2E_RBAC_OMIT, scripts/rbac-minimality.sh)
#   scripts/rbac-evidence.sh exec CMD...            CMD with the servers of `run` (KUBECONFIG,
#                                                   KTE_DIR, HUSH_VAULT_*, AWS_* and AUDIT_LOG set)
#
# The e2e harnesses run each controller as the chart's ServiceAccount (hush_testkit::chart:
# impersonation, the chart's Roles and ClusterRoles applied per test with the key namespace as
# release namespace), so the scenarios passing proves the rules suffice. The API server logs every
# request at Metadata level (scripts/lib/audit-policy.yaml: no bodies, no Secret data);
# scripts/lib/rbac_evidence.py groups the calls of each ServiceAccount by (verb, group, resource,
# subresource, cluster-wide / release namespace / other namespace) and prints the differences:
#   +  a call the chart does not allow      -  a rule entry no call used
#   =  a rule entry only ever used where another rule entry allows the same call
# Exit 1 on any difference. scripts/test.sh starts its API server with the audit flags
# (`audit-args FILE` prints them) and runs `compare` after the test stage.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PEERS_ENV="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"
[ -f "$PEERS_ENV" ] || { echo "rbac-evidence: no $PEERS_ENV; run scripts/dev-env.sh" >&2; exit 1; }
# shellcheck disable=SC1090
source "$PEERS_ENV"
export HUSH_PEERS_ENV="$PEERS_ENV"

# The kube-apiserver flags that write the evidence to $1.
audit_args() { printf -- '--audit-log-path=%s --audit-policy-file=%s --audit-log-maxsize=1024' "$1" "$ROOT/scripts/lib/audit-policy.yaml"; }

compare() {
  "$HUSH_PEER_PYTHON" scripts/lib/rbac_evidence.py "$HUSH_PEER_HELM" deploy/helm/hush "$@"
}

case "${1:-}" in
  compare)
    shift
    [ "$#" -gt 0 ] || { echo "usage: $0 compare AUDIT_LOG..." >&2; exit 2; }
    compare "$@"
    ;;
  rules)
    "$HUSH_PEER_PYTHON" scripts/lib/rbac_evidence.py "$HUSH_PEER_HELM" deploy/helm/hush --rules
    ;;
  audit-args)
    audit_args "${2:?usage: $0 audit-args AUDIT_LOG}"
    ;;
  run | exec)
    mode=$1
    shift
    WORK=$(mktemp -d)
    export HUSH_SERVICES_DIR="$WORK/services"
    stops=()
    cleanup() {
      local i
      for ((i = ${#stops[@]} - 1; i >= 0; i--)); do bash -c "${stops[i]}" || true; done
      rm -rf "$WORK"
    }
    trap cleanup EXIT
    out=$(env -u KTE_DIR KTE_APISERVER_ARGS="${KTE_APISERVER_ARGS:-} $(audit_args "$WORK/audit.log")" \
      scripts/kube-testenv.sh start)
    eval "$out"
    stops+=("$(printf '%q stop %q' "$ROOT/scripts/kube-testenv.sh" "$KTE_DIR")")
    for svc in scripts/services/openbao.sh scripts/services/moto.sh; do
      out=$(bash "$svc" start)
      eval "$out"
      stops+=("$(printf 'HUSH_SERVICES_DIR=%q bash %q stop' "$HUSH_SERVICES_DIR" "$ROOT/$svc")")
    done
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"
    export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
    if [ "$mode" = exec ]; then
      AUDIT_LOG="$WORK/audit.log" "$@"
    else
      # Compare even after a failed scenario: a forbidden call is often why it failed.
      tests=0
      cargo test -p hush-e2e --all-features --locked --no-fail-fast -- --include-ignored || tests=$?
      compare "$WORK/audit.log"
      [ "$tests" -eq 0 ] || { echo "rbac-evidence: scenarios failed (exit $tests)" >&2; exit "$tests"; }
    fi
    ;;
  *)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
