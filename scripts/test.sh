#!/usr/bin/env bash
# scripts/test.sh — the whole hush test suite, as CI runs it (`.ci/run` calls exactly this).
#
# Stages (each prints its duration; a summary follows at the end):
#   dev-env     scripts/dev-env.sh: Debian packages, the peers venv, Go-built peers, peers.env
#   tools       cargo-deny and cargo-fuzz into the cache (built once per version)
#   fmt         cargo fmt --check; no import circle between a crate's modules (scripts/module-circles.py);
#               every repository path the docs name exists (scripts/doc-paths.py)
#   clippy      clippy -D warnings on every target
#   deny        cargo deny (licenses, bans, sources), offline
#   crds        regenerate crds/ from the Rust types and fail on a difference
#   deploy      helm lint/template of deploy/helm/hush, deploy/manifests/ up to date
#   build       compile every test target once
#   services    start a real kube-apiserver + etcd, OpenBao, moto and the Google Cloud and Azure
#               test servers (tests/cloud/) on loopback, and a second
#               API server for the real External Secrets Operator (scripts/services/eso-apiserver.sh)
#   cloud-servers  the official Google Cloud and Azure client libraries against the cloud test
#               servers of stage services (tests/cloud/test_servers.py, pytest in the peers venv)
#   tests       every test, including the #[ignore]d ones that need peers and servers
#   eso-peer    the differential tests against the real ESO (tests/e2e/tests/eso_*.rs)
#   rbac        the chart's RBAC equals the controllers' calls in the API server's audit log
#   fuzz        each fuzz target for FUZZ_SECONDS (default 10), under an RSS limit and a per-input
#               timeout (FUZZ_RSS_MB, default 2048, libFuzzer's own; FUZZ_TIMEOUT, default 10 s): a bomb is a finding
#
# Caches live outside the clone in ${XDG_CACHE_HOME:-$HOME/.cache}/hush (CARGO_TARGET_DIR, the venv,
# Go-built peers, kube-apiserver), so a machine that ran this once is fast; a fresh one builds all.
# A missing peer or server fails the run: nothing is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hush"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export HUSH_PEERS_ENV="${HUSH_PEERS_ENV:-$CACHE/peers.env}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental artifacts only help edit-compile loops; in CI they cost disk and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TOOLS="$CACHE/tools"
export PATH="$TOOLS/bin:$PATH"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
mkdir -p "$CACHE" "$TOOLS"

SUMMARY_FILE=$(mktemp)
STATE=$(mktemp -d)      # services write their exports and stop commands here
: >"$STATE/env"
: >"$STATE/stop"
# Per-run state of scripts/services/*.sh, so concurrent runs never share a server.
export HUSH_SERVICES_DIR="$STATE/services"
cleanup() {
  # Stop services in reverse order of start.
  tac "$STATE/stop" | while IFS= read -r action; do
    bash -c "$action" || true
  done
  rm -rf "$STATE" "$SUMMARY_FILE"
}
trap cleanup EXIT

stage() { # stage NAME FUNCTION
  local name=$1 fn=$2 start rc took
  start=$(date +%s)
  printf '\n=== stage %s\n' "$name"
  # A subshell outside any `||`, so `set -e` holds inside the stage function.
  set +e
  (
    set -euo pipefail
    "$fn"
  )
  rc=$?
  set -e
  # Services started by the stage export their environment for later stages.
  # shellcheck disable=SC1091
  source "$STATE/env"
  took=$(($(date +%s) - start))
  local verdict=ok
  [ "$rc" -eq 0 ] || verdict=FAILED
  printf '%-10s %5ss  %s\n' "$name" "$took" "$verdict" >>"$SUMMARY_FILE"
  printf '=== stage %s: %s in %ss\n' "$name" "$verdict" "$took"
  if [ "$rc" -ne 0 ]; then
    print_summary
    exit "$rc"
  fi
}

print_summary() {
  printf '\n=== durations\n'
  sed 's/^/  /' "$SUMMARY_FILE"
}

stage_dev_env() { bash scripts/dev-env.sh; }

install_tool() { # install_tool CRATE VERSION BINARY [toolchain]
  local crate=$1 version=$2 bin=$3 toolchain=${4:-}
  if [ -x "$TOOLS/bin/$bin" ] && "$TOOLS/bin/$bin" --version 2>/dev/null | grep -q "$version"; then
    echo "$crate $version: cached"
    return
  fi
  echo "$crate $version: building into $TOOLS"
  CARGO_TARGET_DIR="$CACHE/tools-target" cargo ${toolchain:+"+$toolchain"} install --locked --quiet \
    "$crate" --version "$version" --root "$TOOLS"
}

stage_tools() {
  install_tool cargo-deny 0.20.2 cargo-deny
  if [ -d fuzz ]; then install_tool cargo-fuzz 0.13.1 cargo-fuzz; fi
}

stage_fmt() { cargo fmt --all --check; python3 scripts/module-circles.py; python3 scripts/doc-paths.py; }

# Binaries bake their checkout's path in (env!("CARGO_MANIFEST_DIR") for fixtures and crds/),
# and cargo does not notice the same sources moving to another checkout: when the shared target
# dir was last built from elsewhere, the workspace's own crates are rebuilt (dependencies stay).
own_target_dir() {
  local marker="$CARGO_TARGET_DIR/.hush-checkout" members
  [ "$(cat "$marker" 2>/dev/null)" != "$ROOT" ] || return 0
  members=$(cargo metadata --no-deps --locked --format-version 1 |
    python3 -c 'import json, sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
  # shellcheck disable=SC2086
  cargo clean --quiet $members
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$ROOT" >"$marker"
}

stage_clippy() { cargo clippy --workspace --all-targets --all-features --locked -- -D warnings; }

stage_deny() {
  # cargo deny reads `cargo metadata` offline; fetch every platform's crates first.
  cargo fetch --locked --quiet
  cargo deny --offline --locked --log-level error check licenses bans sources
}

stage_crds() {
  if [ -x scripts/gen-crds.sh ]; then
    bash scripts/gen-crds.sh --check
  else
    echo "no generated CRDs yet"
  fi
}

stage_deploy() {
  # The Helm chart with the real Helm (peers.env): lint every toggle, render, and the committed
  # chart copies and deploy/manifests/ must equal a fresh render.
  # shellcheck disable=SC1090
  source "$HUSH_PEERS_ENV"
  local helm=$HUSH_PEER_HELM chart=deploy/helm/hush
  local all=controllers.external.enabled=true,controllers.external.refreshEndpoint.enabled=true,networkPolicy.enabled=true
  all+=,metrics.serviceMonitor.enabled=true,argocd.cmpPlugin.enabled=true
  "$helm" lint --strict "$chart"
  "$helm" lint --strict "$chart" --set "$all"
  "$helm" lint --strict "$chart" --set controllers.sealed.enabled=false,controllers.external.enabled=true
  "$helm" template hush "$chart" --namespace kube-system --set "$all" >/dev/null
  if "$helm" template hush "$chart" --set controllers.sealed.enabled=false >/dev/null 2>&1; then
    echo "helm template accepted a chart with no controller enabled" >&2
    return 1
  fi
  bash scripts/render-manifests.sh --check
}

stage_build() { cargo test --workspace --all-features --locked --no-run; }

stage_services() {
  # Each service's start prints `export VAR=…` lines (its state included); they go to the
  # state env file for later stages, and its stop command is queued for the exit trap.
  local out svc audit
  # The audit log is the evidence of stage rbac (scripts/rbac-evidence.sh).
  audit=$(bash scripts/rbac-evidence.sh audit-args "$STATE/audit.log")
  out=$(env -u KTE_DIR KTE_APISERVER_ARGS="${KTE_APISERVER_ARGS:-} $audit" scripts/kube-testenv.sh start)
  printf '%s\n' "$out" >>"$STATE/env"
  eval "$out"
  printf '%q stop %q\n' "$ROOT/scripts/kube-testenv.sh" "$KTE_DIR" >>"$STATE/stop"
  echo "kube-apiserver: KUBECONFIG=$KUBECONFIG"
  for svc in scripts/services/*.sh; do
    [ -e "$svc" ] || continue
    out=$(bash "$svc" start)
    printf '%s\n' "$out" >>"$STATE/env"
    printf '%s; bash %q stop\n' "$(printf '%s' "$out" | tr '\n' ';')" "$ROOT/$svc" >>"$STATE/stop"
    echo "$(basename "$svc" .sh): started"
  done
}

# The cloud test servers speak the real wire protocols: proven with the clouds' official clients.
stage_cloud_servers() {
  local python
  python=$(sed -n 's/^\(export \)\{0,1\}HUSH_PEER_PYTHON=//p' "$HUSH_PEERS_ENV" | tail -n 1)
  [ -x "$python" ] || { echo "HUSH_PEER_PYTHON missing from $HUSH_PEERS_ENV" >&2; return 1; }
  "$python" -m pytest -q -p no:cacheprovider tests/cloud
}

# The differential tests against the real ESO (named eso_peer_*) get their own stage.
stage_tests() { cargo test --workspace --all-features --locked -- --include-ignored --skip eso_peer_; }

stage_eso_peer() {
  cargo test -p hush-e2e --all-features --locked --test 'eso_*' -- --include-ignored eso_peer_
}

# The controllers ran as the chart's ServiceAccounts in stage tests; their calls in the audit log
# must equal the chart's rules.
stage_rbac() { bash scripts/rbac-evidence.sh compare "$STATE/audit.log"; }

stage_fuzz() {
  if [ ! -d fuzz ]; then
    echo "no fuzz targets yet"
    return
  fi
  local target log artifact
  local -a findings=()
  log=$(mktemp)
  # Every target runs; any finding fails the stage afterwards, named with its artifact. An input
  # that takes more than FUZZ_TIMEOUT seconds or makes the process use more than FUZZ_RSS_MB
  # (one allocation of that size included) is a finding, like a crash: resource bombs fail here.
  for target in $(cargo fuzz list --fuzz-dir fuzz); do
    echo "fuzz $target for ${FUZZ_SECONDS}s (rss ${FUZZ_RSS_MB} MB, ${FUZZ_TIMEOUT}s per input)"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT" \
      -print_final_stats=0 >"$log" 2>&1; then
      tail -n 3 "$log"
    else
      tail -n 40 "$log"
      artifact=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -n 1)
      echo "FUZZ FINDING: target $target failed; artifact: ${artifact:-none written (build or setup failure, see above)}"
      findings+=("$target${artifact:+ ($artifact)}")
    fi
  done
  rm -f "$log"
  if ((${#findings[@]} > 0)); then
    printf 'fuzz findings: %s\n' "${findings[@]}"
    return 1
  fi
}

stage dev-env stage_dev_env
stage tools stage_tools
own_target_dir
stage fmt stage_fmt
stage clippy stage_clippy
stage deny stage_deny
stage crds stage_crds
stage deploy stage_deploy
stage build stage_build
stage services stage_services
stage cloud-servers stage_cloud_servers
stage tests stage_tests
stage eso-peer stage_eso_peer
stage rbac stage_rbac
stage fuzz stage_fuzz
print_summary
