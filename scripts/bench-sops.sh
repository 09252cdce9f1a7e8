#!/usr/bin/env bash
# scripts/bench-sops.sh — by hand, not in CI: hush sops vs the real sops 3.11.0 in the same run.
#
#   decrypt a 20,000-key YAML (~2 MB plain), encrypt it, and decrypt a 10 MiB binary file, all with
#   one age key; wall time including process start, median of 5 runs each; prints the ratios.
#   Targets (issue 5): YAML decrypt >= 10x faster, binary decrypt >= 5x faster.
#
# Needs the peers from scripts/dev-env.sh (HUSH_PEERS_ENV, default ~/.cache/hush/peers.env).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"
PEERS="${HUSH_PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env}"
[ -f "$PEERS" ] || { echo "missing $PEERS: run scripts/dev-env.sh" >&2; exit 1; }
# shellcheck disable=SC1090
. "$PEERS"
: "${HUSH_PEER_SOPS:?missing from $PEERS}" "${HUSH_PEER_AGE_KEYGEN:?missing from $PEERS}"
RUNS="${RUNS:-5}"

cargo build --release -p hush >&2
HUSH="$CARGO_TARGET_DIR/release/hush"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$HUSH_PEER_AGE_KEYGEN" -o "$WORK/key.txt" 2>/dev/null
RECIPIENT=$(awk '/public key:/ {print $4}' "$WORK/key.txt")
export SOPS_AGE_KEY_FILE="$WORK/key.txt"

python3 - "$WORK" <<'PY'
import os, sys
work = sys.argv[1]
with open(os.path.join(work, "big.yaml"), "w") as f:
    for i in range(20000):
        f.write("key%05d: %s\n" % (i, ("v%05d-" % i) * 15))
with open(os.path.join(work, "big.bin"), "wb") as f:
    f.write(os.urandom(10 * 1024 * 1024))
PY
(cd "$WORK" && "$HUSH_PEER_SOPS" encrypt --age "$RECIPIENT" big.yaml > big.enc.yaml)
(cd "$WORK" && "$HUSH_PEER_SOPS" encrypt --age "$RECIPIENT" big.bin > big.enc.bin)
# Both tools must agree before they are timed.
cmp <("$HUSH_PEER_SOPS" decrypt "$WORK/big.enc.yaml") <("$HUSH" sops decrypt "$WORK/big.enc.yaml")
cmp "$WORK/big.bin" <("$HUSH" sops decrypt "$WORK/big.enc.bin")

median() { # median CMD... -> "wall cpu" seconds (medians; wall incl. process start, cpu = user+sys)
  python3 - "$RUNS" "$@" <<'PY'
import resource, subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
walls, cpus = [], []
for _ in range(runs):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    walls.append(time.perf_counter() - t)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
walls.sort(); cpus.sort()
print("%.4f %.4f" % (walls[len(walls) // 2], cpus[len(cpus) // 2]))
PY
}

row() { # row LABEL TARGET SOPS_CMD... -- HUSH_CMD...
  local label=$1 target=$2; shift 2
  local sops_cmd=() hush_cmd=()
  while [ "$1" != "--" ]; do sops_cmd+=("$1"); shift; done
  shift
  hush_cmd=("$@")
  local s h sw sc hw hc
  s=$(median "${sops_cmd[@]}")
  h=$(median "${hush_cmd[@]}")
  read -r sw sc <<<"$s"
  read -r hw hc <<<"$h"
  printf '%-32s wall: sops %7.3fs hush %7.3fs = %5.1fx | cpu: sops %7.3fs hush %7.3fs = %5.1fx (target %s)\n' \
    "$label" "$sw" "$hw" "$(python3 -c "print($sw/$hw)")" "$sc" "$hc" "$(python3 -c "print($sc/max($hc,0.001))")" "$target"
}

echo "median of $RUNS runs; wall time includes process start; cpu = user+sys of the process"
row "decrypt 20,000-key YAML (age)" ">=10x" \
  "$HUSH_PEER_SOPS" decrypt "$WORK/big.enc.yaml" -- "$HUSH" sops decrypt "$WORK/big.enc.yaml"
row "encrypt 20,000-key YAML (age)" "-" \
  "$HUSH_PEER_SOPS" encrypt --age "$RECIPIENT" "$WORK/big.yaml" -- \
  "$HUSH" sops encrypt --age "$RECIPIENT" "$WORK/big.yaml"
row "decrypt 10 MiB binary (age)" ">=5x" \
  "$HUSH_PEER_SOPS" decrypt "$WORK/big.enc.bin" -- "$HUSH" sops decrypt "$WORK/big.enc.bin"
