#!/usr/bin/env bash
# scripts/bench-crypto.sh — by hand, not in CI: RSA-4096 OAEP decryption on one thread vs
# `openssl speed rsa4096` sign/s measured in the same run, and AES-256-GCM throughput.
# Prints the ratio the foundation issue targets (≥ 0.8× openssl's private-key operations/s).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hush/target}"

echo "== openssl speed -seconds 3 rsa4096 (one thread)"
ossl=$(openssl speed -seconds 3 rsa4096 2>/dev/null | awk '/^rsa 4096 bits/ {print $6; exit}')
[ -n "$ossl" ] || { echo "could not read openssl's sign/s" >&2; exit 1; }
echo "openssl rsa4096 sign/s: $ossl"

echo "== cargo bench -p hush-crypto (criterion)"
out=$(taskset -c 0 cargo bench -p hush-crypto --bench crypto -- --noplot 2>&1 | tee /dev/stderr)
# criterion prints e.g. "rsa4096/oaep_decrypt  time: [1.1 ms 1.2 ms 1.3 ms]  thrpt: [770 elem/s 800 elem/s 830 elem/s]"
hush=$(printf '%s\n' "$out" | awk '/^rsa4096\/oaep_decrypt/ {f=1} f && /thrpt:/ {gsub(/\[/,""); print $4, $5; exit}')
value=${hush% *}
unit=${hush#* }
case "$unit" in
  elem/s) per_s=$value ;;
  Kelem/s) per_s=$(awk -v v="$value" 'BEGIN{print v*1000}') ;;
  *) echo "unexpected unit '$unit'" >&2; exit 1 ;;
esac
ratio=$(awk -v h="$per_s" -v o="$ossl" 'BEGIN{printf "%.2f", h/o}')
echo
echo "RSA-4096 OAEP decrypt, one thread: hush ${per_s}/s, openssl sign ${ossl}/s, ratio ${ratio}x (target >= 0.8x)"
