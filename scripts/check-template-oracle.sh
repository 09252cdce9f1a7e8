#!/usr/bin/env bash
# Regenerates hush-template's golden outputs with Go's text/template + sprig (tools/gotemplate-oracle)
# and diffs them against the committed crates/template/tests/golden/expected.json.
#   scripts/check-template-oracle.sh           # diff only; exit 1 on a difference
#   scripts/check-template-oracle.sh --update  # rewrite expected.json
# Needs Go (the module proxy for the first build). `cargo test -p hush-template` needs neither.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
golden="$root/crates/template/tests/golden"
bin="${TMPDIR:-/tmp}/hush-gotemplate-oracle"
(cd "$root/tools/gotemplate-oracle" && go build -o "$bin" .)
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$bin" <"$golden/cases.json" >"$out"
if [[ "${1:-}" == "--update" ]]; then
  cp "$out" "$golden/expected.json"
  echo "updated $golden/expected.json"
elif diff -u "$golden/expected.json" "$out"; then
  echo "golden outputs match Go"
else
  echo "golden outputs differ from Go: run $0 --update and review" >&2
  exit 1
fi
