# shellcheck shell=bash
# go_install_peer NAME PACKAGE VERSION
#   Builds a Go-built interop peer with `go install PACKAGE@VERSION` into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers/NAME-VERSION-<go version>/ and prints the binary path.
#   Idempotent: a cached binary is reused. Progress and timing go to stderr; stdout is the path only.
#   Works only for modules without replace directives (go install refuses those).
go_install_peer() {
  local name=$1 package=$2 version=$3
  command -v go >/dev/null || { echo "$name: go is not on PATH" >&2; return 1; }
  local gover cache dir bin start
  gover=$(go env GOVERSION)
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers"
  dir="$cache/$name-$version-$gover"
  # go install names the binary after the last path element, skipping a major-version suffix (/v5).
  local base
  base=$(basename "$package")
  [[ "$base" =~ ^v[0-9]+$ ]] && base=$(basename "$(dirname "$package")")
  bin="$dir/$base"
  if [[ -x "$bin" ]]; then
    echo "$name $version: cached at $bin" >&2
    echo "$bin"
    return 0
  fi
  mkdir -p "$dir"
  start=$(date +%s)
  echo "$name $version: building with $gover into $dir" >&2
  GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -trimpath" CGO_ENABLED=0 go install "$package@$version" >&2
  [[ -x "$bin" ]] || { echo "$name: go install finished but $bin is missing" >&2; return 1; }
  echo "$name $version: built in $(($(date +%s) - start)) s" >&2
  echo "$bin"
}
