#!/usr/bin/env bash
# scripts/bench-render.sh — by hand: the render plugin on a 500-manifest app.
#
#   scripts/bench-render.sh            builds hush (release) and prints the figures
#   HUSH_BIN=/path/to/hush scripts/bench-render.sh
#
# The app: 200 SOPS-encrypted Secrets (age) + 300 ConfigMaps with one inline placeholder each
# over 30 distinct Vault KV v2 paths, token auth, rendered as Argo CD runs the CMP (cwd = app
# dir, `hush render .`). Measured: wall time (target <= 1 s) and KV reads counted in OpenBao's
# file audit log (target = 30; logins and token lookups excluded). A private OpenBao dev server
# is started with a config-file audit device (OpenBao refuses `bao audit enable` via the API)
# and stopped at exit. Needs $HUSH_PEER_BAO, $HUSH_PEER_AGE_KEYGEN (peers.env).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS_ENV="${HUSH_PEERS_ENV:-$HOME/.cache/hush/peers.env}"
# shellcheck disable=SC1090
[ -f "$PEERS_ENV" ] && . "$PEERS_ENV"
: "${HUSH_PEER_BAO:?run scripts/dev-env.sh}" "${HUSH_PEER_AGE_KEYGEN:?run scripts/dev-env.sh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hush/target}"
if [ -z "${HUSH_BIN:-}" ]; then
  cargo build --release -p hush >&2
  HUSH_BIN="$CARGO_TARGET_DIR/release/hush"
fi

work=$(mktemp -d)
bao_pid=""
cleanup() {
  [ -n "$bao_pid" ] && kill "$bao_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
token="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
cat >"$work/audit.hcl" <<HCL
audit "file" "bench" {
  options {
    file_path = "$work/audit.log"
  }
}
HCL
"$HUSH_PEER_BAO" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" \
  -config="$work/audit.hcl" >"$work/bao.log" 2>&1 &
bao_pid=$!
export BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN="$token"
for _ in $(seq 100); do "$HUSH_PEER_BAO" status >/dev/null 2>&1 && break; sleep 0.1; done

echo "seeding 30 Vault paths, encrypting 200 SOPS Secrets ..." >&2
for p in $(seq 0 29); do
  "$HUSH_PEER_BAO" kv put -mount=secret "bench/app-$p" user="user-$p" password="pw-$p-$RANDOM" >/dev/null
done
"$HUSH_PEER_AGE_KEYGEN" -o "$work/key.agekey" 2>/dev/null
recipient=$(sed -n 's/^# public key: //p' "$work/key.agekey")
mkdir -p "$work/app" "$work/plain"
for i in $(seq 0 199); do
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s-%s\n  namespace: bench\nstringData:\n  password: bench-secret-%s\n' "$i" "$i" >"$work/plain/s-$i.yaml"
  "$HUSH_BIN" sops encrypt --age "$recipient" --encrypted-regex '^(data|stringData)$' \
    "$work/plain/s-$i.yaml" >"$work/app/s-$i.enc.yaml"
done
for i in $(seq 0 299); do
  p=$((i % 30))
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-%s\ndata:\n  user: <path:secret/data/bench/app-%s#user>\n' "$i" "$p" >"$work/app/c-$i.yaml"
done

reads() { grep -c '"operation":"read".*"path":"secret/data/bench/' "$work/audit.log" 2>/dev/null || true; }
before=$(grep '"type":"request"' "$work/audit.log" | grep -c '"path":"secret/data/bench/' || true)
start=$(date +%s.%N)
(cd "$work/app" && AVP_TYPE=vault AVP_AUTH_TYPE=token VAULT_ADDR="$BAO_ADDR" VAULT_TOKEN="$token" \
  HUSH_SOPS_KEYS_DIR="$work" "$HUSH_BIN" render --stats . >"$work/out.yaml" 2>"$work/stats.txt")
end=$(date +%s.%N)
after=$(grep '"type":"request"' "$work/audit.log" | grep -c '"path":"secret/data/bench/' || true)
objects=$(grep -c '^kind: ' "$work/out.yaml")
leaks=$(grep -c 'ENC\[' "$work/out.yaml" || true)
wall=$(python3 -c "print(f'{$end - $start:.3f}')")
echo "objects:               $objects (500 expected; ENC[ left: $leaks)"
echo "wall time:             ${wall} s (target <= 1 s)"
echo "Vault KV reads:        $((after - before)) (audit log; target = 30)"
echo "hush --stats:          $(cat "$work/stats.txt")"
echo "AVP for the same app:  301 calls (1 token lookup-self + 1 whole-secret read per inline"
echo "                       placeholder occurrence, sequential; it cannot decrypt the 200 SOPS"
echo "                       files, which KSOPS would decrypt in a second pass)"
