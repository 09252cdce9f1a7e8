#!/usr/bin/env bash
# scripts/gen-crds.sh — regenerate crds/ from the Rust types in crates/api (hush-api's `crdgen`).
#
#   bash scripts/gen-crds.sh          write crds/*.yaml
#   bash scripts/gen-crds.sh --check  generate into a temporary directory and fail (exit 1, with a
#                                     diff) if crds/ differs; used by scripts/test.sh stage `crds`
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if [ "$check" -eq 0 ]; then
  mkdir -p crds
  cargo run --quiet --locked -p hush-api --bin crdgen -- crds
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet --locked -p hush-api --bin crdgen -- "$tmp" >/dev/null
if ! diff -ru crds "$tmp" --exclude='.*' >"$tmp.diff" 2>&1; then
  # A file in crds/ that the generator no longer writes is a difference too (diff -r reports it).
  cat "$tmp.diff" >&2
  rm -f "$tmp.diff"
  echo "crds/ is out of date: run scripts/gen-crds.sh and commit the result" >&2
  exit 1
fi
rm -f "$tmp.diff"
echo "crds/ is up to date"
