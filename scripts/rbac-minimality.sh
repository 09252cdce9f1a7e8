#!/usr/bin/env bash
# scripts/rbac-minimality.sh — by hand: each of the chart's controller RBAC rules is needed.
#
# For every rule bound to a controller's ServiceAccount (scripts/rbac-evidence.sh rules), run that
# controller's e2e scenarios with the rule left out (HUSH_E2E_RBAC_OMIT, hush_testkit::chart) and
# print a Markdown table: rule → the scenarios that then fail. A rule whose removal fails nothing
# is not needed (or no scenario covers it) and is marked NOT NEEDED. The servers are the ones of
# `scripts/rbac-evidence.sh run` (started once). About 1 minute per rule on 2 cores.
#
#   scripts/rbac-minimality.sh [RULE_ID...]     default: every rule
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${AUDIT_LOG:-}" ]; then
  exec bash scripts/rbac-evidence.sh exec bash "$0" "$@"
fi

# The e2e test binaries of each profile (tests/e2e/tests/*.rs); MINIMALITY_EXTERNAL_TESTS="a b"
# narrows the ExternalSecret ones (default: every external_*.rs).
sealed_tests=(--test sealed_controller --test deploy_manifests)
external_tests=()
if [ -n "${MINIMALITY_EXTERNAL_TESTS:-}" ]; then
  for t in $MINIMALITY_EXTERNAL_TESTS; do external_tests+=(--test "$t"); done
else
  for f in tests/e2e/tests/external_*.rs; do
    external_tests+=(--test "$(basename "$f" .rs)")
  done
fi

# Build once; then run the test binaries directly, one after the other (in parallel they starve
# each other on 2 cores), each bounded by MINIMALITY_TIMEOUT seconds (default 150): a test still
# running then counts as failing (hung).
declare -A binary
while IFS=$'\t' read -r name path; do
  binary[$name]=$path
done < <(cargo test -p hush-e2e --all-features --locked --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"] + "\t" + m["executable"])')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

failing() { # failing PROFILES...: names of the failing tests of those profiles, one per line
  local tests=() profile t i=0
  for profile in "$@"; do
    case $profile in
      sealed) tests+=("${sealed_tests[@]}") ;;
      external) tests+=("${external_tests[@]}") ;;
    esac
  done
  for t in "${tests[@]}"; do
    [ "$t" != --test ] || continue
    [ -n "${binary[$t]:-}" ] || { echo "no test binary $t" >&2; exit 2; }
    timeout "${MINIMALITY_TIMEOUT:-150}" "${binary[$t]}" --include-ignored >"$OUT/$i" 2>&1 || true
    i=$((i + 1))
  done
  for ((t = 0; t < i; t++)); do
    # Failed, or started and never finished (timeout).
    sed -n 's/^test \([^ ]*\) \.\.\. FAILED$/\1/p' "$OUT/$t"
    sed -n 's/^test \([^ ]*\) has been running for over 60 seconds$/\1 (hung)/p' "$OUT/$t" |
      while read -r name hung; do
        grep -q "^test $name \.\.\. " "$OUT/$t" || echo "$name $hung"
      done
  done | sort -u
}

baseline=$(HUSH_E2E_RBAC_OMIT='' failing sealed external)
if [ -n "$baseline" ]; then
  # Flaky or broken without any rule removed: left out of every row below, and named here.
  printf 'failing with the full chart (not counted below):\n%s\n' "$baseline" >&2
fi
# The full chart's evidence from that run (on stderr; the table follows on stdout).
bash scripts/rbac-evidence.sh compare "$AUDIT_LOG" >&2 || true

declare -A profiles grants
order=()
while IFS=$'\t' read -r profile id what; do
  if [ -z "${profiles[$id]:-}" ]; then
    order+=("$id")
    grants[$id]=$what
  fi
  profiles[$id]="${profiles[$id]:-} $profile"
done < <(bash scripts/rbac-evidence.sh rules)
[ "$#" -eq 0 ] || order=("$@")

printf '| Rule (chart) | Grants | Scenarios failing without it |\n|---|---|---|\n'
for id in "${order[@]}"; do
  [ -n "${profiles[$id]:-}" ] || { echo "no rule $id (see scripts/rbac-evidence.sh rules)" >&2; exit 2; }
  # shellcheck disable=SC2086
  failed=$(HUSH_E2E_RBAC_OMIT="$id" failing ${profiles[$id]} | grep -vxF -f <(printf '%s\n' "$baseline") |
    paste -sd, - | sed 's/,/, /g' || true)
  # shellcheck disable=SC2016
  printf '| `%s` | %s | %s |\n' "$id" "${grants[$id]}" "${failed:-NOT NEEDED}"
done
