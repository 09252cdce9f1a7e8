#!/usr/bin/env bash
# The real kustomize (runs `hush krm` as an exec KRM function in tests); prints its path.
set -euo pipefail
# shellcheck source=../lib/go-peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/go-peer.sh"
go_install_peer kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION:-v5.8.2}"
