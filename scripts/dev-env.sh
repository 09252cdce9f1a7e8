#!/usr/bin/env bash
# scripts/dev-env.sh — install everything hush's tests need, idempotently, and record peer paths.
#
#   scripts/dev-env.sh            install/verify; write the peers env file; print what was done
#
# - Debian packages: age, gnupg, openssl, iproute2, and zsh, fish, groff-base, man-db (the shell
#   completion and man page tests load them); apt-get update only when one is missing.
# - Python venv with the interop peers and test servers (sops 3.11.0, OpenBao, moto, kubesealpy,
#   the kubernetes client). The venv lives in the cache, keyed by the requirements, and `.venv`
#   in the repository points at it, so a fresh clone on a machine that built once is ready at once.
# - Go-built peers: every scripts/peers/<name>.sh prints the path of the binary it built (or found
#   in the cache); it is recorded as HUSH_PEER_<NAME>.
# - Writes ${HUSH_PEERS_ENV:-$CACHE/peers.env}: KEY=ABSOLUTE_PATH lines. Tests read peers from
#   there, never from PATH (a `sops` symlink to hush must not end up testing itself).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hush"
PEERS_ENV="${HUSH_PEERS_ENV:-$CACHE/peers.env}"
mkdir -p "$CACHE"

log() { printf 'dev-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- Debian packages ------------------------------------------------------------------------
debian_packages=(age gnupg openssl iproute2 ca-certificates zsh fish groff-base man-db)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
else
  log "Debian packages present: ${debian_packages[*]}"
fi

# --- Python venv ----------------------------------------------------------------------------
REQS="$ROOT/scripts/requirements-dev.txt"
PY=${HUSH_PYTHON:-python3}
req_hash=$( { cat "$REQS"; "$PY" --version 2>&1; } | sha256sum | cut -c1-16)
VENV="$CACHE/venv-$req_hash"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  log "creating venv $VENV"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" >&2
  touch "$VENV/.complete"
else
  log "venv up to date: $VENV"
fi
if [ "$(readlink "$ROOT/.venv" 2>/dev/null)" != "$VENV" ]; then
  rm -rf "$ROOT/.venv"
  ln -s "$VENV" "$ROOT/.venv"
fi

# --- peers ----------------------------------------------------------------------------------
declare -A peers=(
  [PYTHON]="$VENV/bin/python"
  [SOPS]="$VENV/bin/sops"
  [BAO]="$VENV/bin/bao"
  [MOTO_SERVER]="$VENV/bin/moto_server"
  [AGE]="$(command -v age || true)"
  [AGE_KEYGEN]="$(command -v age-keygen || true)"
  [GPG]="$(command -v gpg || true)"
  [OPENSSL]="$(command -v openssl || true)"
)
for script in "$ROOT"/scripts/peers/*.sh; do
  [ -e "$script" ] || continue
  name=$(basename "$script" .sh)
  var=$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
  start=$SECONDS
  path=$(bash "$script") || die "building peer '$name' failed (scripts/peers/$name.sh)"
  log "peer $name: $path ($((SECONDS - start)) s)"
  peers[$var]="$path"
done

tmp=$(mktemp "$PEERS_ENV.XXXXXX")
for var in $(printf '%s\n' "${!peers[@]}" | sort); do
  path=${peers[$var]}
  [ -n "$path" ] && [ -x "$path" ] || die "peer $var not found or not executable: '${path}'"
  printf 'HUSH_PEER_%s=%s\n' "$var" "$path" >>"$tmp"
done
mv "$tmp" "$PEERS_ENV"
log "wrote $PEERS_ENV:"
sed 's/^/  /' "$PEERS_ENV" >&2
"${peers[SOPS]}" --version --disable-version-check 2>/dev/null | head -1 | sed 's/^/dev-env: /' >&2 || true
