#!/usr/bin/env bash
# The real Helm v3 (chart rendering in the render plugin's tests, chart lint/template); prints its path.
set -euo pipefail
# shellcheck source=../lib/go-peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/go-peer.sh"
go_install_peer helm helm.sh/helm/v3/cmd/helm "${HELM_VERSION:-v3.22.0}"
