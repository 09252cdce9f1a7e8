#!/usr/bin/env bash
# Builds the real kubeseal (the interop peer of `hush seal`) into the hush cache and prints its path.
# Idempotent: an existing binary is reused. Progress and timing go to stderr; stdout is the path only.
#   KUBESEAL_VERSION   (default v0.36.6)
#   HUSH_CACHE         (default $HOME/.cache/hush)
set -euo pipefail

version="${KUBESEAL_VERSION:-v0.36.6}"
cache="${HUSH_CACHE:-$HOME/.cache/hush}"
dir="$cache/peers/kubeseal-$version"
bin="$dir/kubeseal"

if [[ -x "$bin" ]]; then
    echo "kubeseal $version: present at $bin" >&2
    echo "$bin"
    exit 0
fi

command -v go >/dev/null || { echo "kubeseal.sh: go is not on PATH" >&2; exit 1; }
mkdir -p "$dir"
start=$(date +%s)
echo "kubeseal $version: building with $(go version | cut -d' ' -f3) into $dir" >&2
# The module has no replace directives, so a plain `go install module@version` reproduces the release.
GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -trimpath" CGO_ENABLED=0 \
    go install "github.com/bitnami-labs/sealed-secrets/cmd/kubeseal@$version" >&2
if [[ ! -x "$bin" ]]; then
    echo "kubeseal.sh: go install finished but $bin is missing" >&2
    exit 1
fi
echo "kubeseal $version: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
