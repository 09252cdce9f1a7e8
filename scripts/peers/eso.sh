#!/usr/bin/env bash
# The real External Secrets Operator (the differential and benchmark peer of hush's ExternalSecret
# controller); prints the path of its binary.
#
# ESO's module cannot be built with `go install module@version` (its go.mod has a `replace` for
# sprig), so the module's source from the Go module proxy is built as the main module. Next to the
# binary lies the module's CRD bundle: `$(dirname "$HUSH_PEER_ESO")/crds/bundle.yaml` (all 20
# CRDs; external-secrets.io/v1 served and stored, PushSecret v1alpha1, the generators) and
# `snippets/`: ESO's documented example manifests (docs/snippets), which tests apply unchanged,
# and `provider-docs/`: ESO's provider pages (docs/provider/*.md), whose inline manifests tests
# apply the same way.
#
#   ESO_VERSION   (default v0.16.2; newer tags are not on the module proxy)
#
# Cached in ${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers/eso-<version>-<go version>/: a machine that
# built once never builds again. The Go build cache (GOCACHE) and module cache (GOMODCACHE) are
# Go's own (their defaults unless set); only the finished binary is the peer. Idempotent; progress
# and timing go to stderr, stdout is the path only.
set -euo pipefail

version="${ESO_VERSION:-v0.16.2}"
module=github.com/external-secrets/external-secrets
command -v go >/dev/null || { echo "eso: go is not on PATH" >&2; exit 1; }
gover=$(GOTOOLCHAIN=local go env GOVERSION)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers/eso-$version-$gover"
bin="$dir/external-secrets"
crds="$dir/crds/bundle.yaml"

snippets="$dir/snippets"
provider_docs="$dir/provider-docs"
copy_docs() { # <module dir> <docs subdirectory> <destination>
  local src=$1/docs/$2 dest=$3
  rm -rf "$dest.partial"
  cp -r "$src" "$dest.partial"
  chmod -R u+w "$dest.partial"
  mv -f "$dest.partial" "$dest"
}
copy_snippets() { # the module's documented manifests, beside the binary
  copy_docs "$1" snippets "$snippets"
  copy_docs "$1" provider "$provider_docs"
}

if [[ -x "$bin" && -f "$crds" ]]; then
  if [[ ! -d "$snippets" || ! -d "$provider_docs" ]]; then
    copy_snippets "$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$module@$version" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  fi
  echo "eso $version: cached at $bin" >&2
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
start=$(date +%s)
echo "eso $version: building with $gover into $dir" >&2
src=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$module@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
# The module cache is read-only; the build needs a writable main module (go.sum updates).
work=$(mktemp -d "$dir/src.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work"
chmod -R u+w "$work"
(cd "$work" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" \
  go build -ldflags="-s -w" -o "$work/external-secrets" . >&2)
mkdir -p "$dir/crds"
cp "$work/deploy/crds/bundle.yaml" "$crds.partial"
mv -f "$crds.partial" "$crds"
mv -f "$work/external-secrets" "$bin"
copy_snippets "$src"
echo "eso $version: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
