#!/usr/bin/env bash
# Sealing benchmark (by hand, not in CI): seal 10,000 values and unseal 1,000 with an RSA-4096
# key, hush vs the real kubeseal in the same run, and the ratio to `openssl speed rsa4096`.
# Both tools get the same inputs: one Secret with N items (so process start-up is paid once) and
# `--recovery-unseal` of one SealedSecret with M items.
#   SEAL_VALUES (10000), UNSEAL_VALUES (1000), HUSH (release build), KUBESEAL (peers.env)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hush"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
SEAL_VALUES=${SEAL_VALUES:-10000}
UNSEAL_VALUES=${UNSEAL_VALUES:-1000}

if [ -z "${KUBESEAL:-}" ]; then
  KUBESEAL=$(grep '^HUSH_PEER_KUBESEAL=' "${HUSH_PEERS_ENV:-$CACHE/peers.env}" | cut -d= -f2-)
fi
[ -x "$KUBESEAL" ] || { echo "bench-seal: kubeseal not found; run scripts/dev-env.sh" >&2; exit 1; }
if [ -z "${HUSH:-}" ]; then
  (cd "$ROOT" && cargo build --release -p hush --quiet)
  HUSH="$CARGO_TARGET_DIR/release/hush"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:4096 -nodes -keyout key.pem -out cert.pem -days 365 -subj "/" 2>/dev/null
mkdir persona && ln -s "$HUSH" persona/kubeseal   # the kubeseal persona

python3 - "$SEAL_VALUES" "$UNSEAL_VALUES" <<'PY'
import base64, json, os, sys
n, m = int(sys.argv[1]), int(sys.argv[2])
def secret(count):
    data = {f"k{i:05d}": base64.b64encode(os.urandom(32)).decode() for i in range(count)}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "bench", "namespace": "bench"}, "data": data}
json.dump(secret(n), open("seal.json", "w"))
json.dump(secret(m), open("unseal.json", "w"))
PY

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.0f}')" "$@"; }

declare -A result
for tool in hush kubeseal; do
  bin=$KUBESEAL; [ "$tool" = hush ] && bin=./persona/kubeseal
  t0=$(now); "$bin" --cert cert.pem -f seal.json > "sealed-$tool.json"; t1=$(now)
  result[$tool-seal]=$(rate "$SEAL_VALUES" "$t0" "$t1")
  "$bin" --cert cert.pem -f unseal.json > "unseal-in-$tool.json"
  t0=$(now); "$bin" --recovery-unseal --recovery-private-key key.pem -f "unseal-in-$tool.json" > /dev/null; t1=$(now)
  result[$tool-unseal]=$(rate "$UNSEAL_VALUES" "$t0" "$t1")
done
# Cross-check: each opens the other's output.
"$KUBESEAL" --recovery-unseal --recovery-private-key key.pem -f unseal-in-hush.json > /dev/null
./persona/kubeseal --recovery-unseal --recovery-private-key key.pem -f unseal-in-kubeseal.json > /dev/null

sign=$(openssl speed -seconds 3 rsa4096 2>/dev/null | awk '/^rsa 4096/ {print $6}')
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$@"; }

echo "date: $(date -u +%F)  cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-34s %12s %12s %10s\n' "measurement" "hush" "kubeseal" "hush/ks"
printf '%-34s %12s %12s %10s\n' "seal $SEAL_VALUES values (values/s)" "${result[hush-seal]}" "${result[kubeseal-seal]}" "$(ratio "${result[hush-seal]}" "${result[kubeseal-seal]}")"
printf '%-34s %12s %12s %10s\n' "unseal $UNSEAL_VALUES values (values/s)" "${result[hush-unseal]}" "${result[kubeseal-unseal]}" "$(ratio "${result[hush-unseal]}" "${result[kubeseal-unseal]}")"
echo "openssl speed rsa4096 sign/s: $sign"
echo "unseal / openssl sign: hush $(ratio "${result[hush-unseal]}" "$sign"), kubeseal $(ratio "${result[kubeseal-unseal]}" "$sign")"
