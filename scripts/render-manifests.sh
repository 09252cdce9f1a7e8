#!/usr/bin/env bash
# scripts/render-manifests.sh [--check] — keep the Helm chart's copies and the plain manifests in step:
#   deploy/helm/hush/crds/*.yaml          copies of crds/*.yaml (scripts/gen-crds.sh writes those)
#   deploy/helm/hush/files/plugin.yaml    copy of plugins/argocd/plugin.yaml
#   deploy/manifests/hush.yaml            `helm template` of the chart in kube-system with both
#                                         controllers (CRDs included, ServiceMonitor off)
#   deploy/manifests/argocd-cmp-plugin.yaml  the Argo CD plugin ConfigMap alone (namespace argocd)
# With --check nothing is written: a difference fails (exit 1) and is printed.
# Helm: $HUSH_PEER_HELM (from $HUSH_PEERS_ENV, default ~/.cache/hush/peers.env), else `helm`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
PEERS_ENV="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"
if [ -z "${HUSH_PEER_HELM:-}" ] && [ -f "$PEERS_ENV" ]; then
  # shellcheck disable=SC1090
  source "$PEERS_ENV"
fi
HELM="${HUSH_PEER_HELM:-helm}"
command -v "$HELM" >/dev/null || { echo "render-manifests: no helm ($HELM); run scripts/dev-env.sh" >&2; exit 1; }

CHART=deploy/helm/hush
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/crds" "$OUT/files" "$OUT/manifests"
cp crds/*.yaml "$OUT/crds/"
cp plugins/argocd/plugin.yaml "$OUT/files/plugin.yaml"

# Render from a copy of the chart that already has the fresh copies, so --check never reads stale ones.
STAGE="$OUT/chart"
mkdir -p "$STAGE"
cp -R "$CHART/." "$STAGE/"
rm -rf "$STAGE/crds" "$STAGE/files"
cp -R "$OUT/crds" "$OUT/files" "$STAGE/"
# HOME and Helm's caches in the temporary directory: rendering never touches the user's Helm setup.
export HELM_CACHE_HOME="$OUT/helm/cache" HELM_CONFIG_HOME="$OUT/helm/config" HELM_DATA_HOME="$OUT/helm/data"
{
  echo "# Rendered by scripts/render-manifests.sh from deploy/helm/hush: do not edit."
  echo "# helm template hush deploy/helm/hush --namespace kube-system --include-crds \\"
  echo "#   --set controllers.external.enabled=true"
  "$HELM" template hush "$STAGE" --namespace kube-system --include-crds \
    --set controllers.external.enabled=true
} >"$OUT/manifests/hush.yaml"
{
  echo "# Rendered by scripts/render-manifests.sh from deploy/helm/hush: do not edit."
  echo "# The Argo CD plugin ConfigMap (namespace argocd); the sidecar: docs/install.md."
  "$HELM" template hush "$STAGE" --namespace kube-system --set argocd.cmpPlugin.enabled=true \
    --show-only templates/argocd-cmp-plugin.yaml
} >"$OUT/manifests/argocd-cmp-plugin.yaml"

status=0
sync() { # sync GENERATED_DIR COMMITTED_DIR
  local from=$1 to=$2
  if $check; then
    if ! diff -r -u "$to" "$from"; then
      echo "render-manifests: $to is out of date; run scripts/render-manifests.sh" >&2
      status=1
    fi
  else
    rm -rf "$to"
    mkdir -p "$(dirname "$to")"
    cp -R "$from" "$to"
  fi
}
sync "$OUT/crds" "$CHART/crds"
sync "$OUT/files" "$CHART/files"
sync "$OUT/manifests" deploy/manifests
exit "$status"
