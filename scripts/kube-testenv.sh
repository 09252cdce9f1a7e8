#!/usr/bin/env bash
# scripts/kube-testenv.sh — a throwaway, real kube-apiserver + etcd on 127.0.0.1 for hush's e2e tests.
#
#   scripts/kube-testenv.sh build          build (or reuse) the binaries; prints the bin directory
#   eval "$(scripts/kube-testenv.sh start)" start one environment; exports KUBECONFIG and KTE_DIR
#   scripts/kube-testenv.sh env [DIR]      print the export lines of a running environment
#   scripts/kube-testenv.sh stop [DIR]     stop exactly that environment's processes and remove DIR
#
# Binaries come from the wrapper Go modules in tools/kube-testenv (kube-apiserver, optional
# kube-controller-manager) and tools/kube-testenv/etcd (etcd), built with the Go module proxy into
# ${XDG_CACHE_HOME:-$HOME/.cache}/hush/kube-testenv/<hash>/. KUBEBUILDER_ASSETS (a directory holding
# kube-apiserver and etcd, the envtest convention) replaces the build.
#
# Environment:
#   KUBEBUILDER_ASSETS   use these binaries instead of building
#   KTE_DIR              state directory (start: created, must not exist or be empty; default: a new mktemp dir)
#   KTE_APISERVER_ARGS   extra kube-apiserver flags, word-split (e.g. "--audit-log-path=/tmp/a.log --v=2")
#   KTE_START_TIMEOUT    seconds to wait for /readyz (default 180)
#   KTE_WITH_KCM=1       also build and start kube-controller-manager (GC, namespace finalization, ...)
#   KTE_KCM_CONTROLLERS  controllers for KCM (default: GC, namespace, serviceaccount, clusterrole-aggregation)
#
# Only `start` and `env` write to stdout (the export lines) and `build` (the bin directory);
# all diagnostics go to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC="$ROOT/tools/kube-testenv"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/hush/kube-testenv"
MARKER=.kube-testenv
# Part of the cache key: bump when the build flags below change.
RECIPE="cgo0-trimpath-sw-tags:selinux,notest,grpcnotrace-stamped"

log() { printf 'kube-testenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"; }

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

go_env() { # run go with the pinned build environment, in directory $1
  local dir=$1; shift
  (cd "$dir" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly go "$@")
}

cache_dir() {
  need go
  need sha256sum
  local key
  key=$( {
    cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/etcd/go.mod" "$SRC/etcd/go.sum"
    GOTOOLCHAIN=local go env GOVERSION
    echo "$RECIPE"
  } | sha256sum | cut -c1-16)
  echo "$CACHE_ROOT/$key"
}

# go_build <module dir> <package> <output file> <ldflags> [tags]
go_build() {
  local dir=$1 pkg=$2 out=$3 ldflags=$4 tags=${5:-}
  local tmp="$out.partial.$$" attempt
  # The module download can flake on a cold machine; the compile itself is deterministic.
  for attempt in 1 2 3; do
    if go_env "$dir" mod download >&2; then break; fi
    ((attempt < 3)) || return 1
    log "go mod download failed in $dir (attempt $attempt), retrying in 5 s"
    sleep 5
  done
  go_env "$dir" build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$tmp" "$pkg" >&2 || {
    rm -f "$tmp"
    return 1
  }
  mv -f "$tmp" "$out"
}

build() {
  local out kver minor ld p t0 want=(kube-apiserver etcd) missing=() b
  out=$(cache_dir)
  [[ ${KTE_WITH_KCM:-0} == 1 ]] && want+=(kube-controller-manager)
  for b in "${want[@]}"; do [[ -x $out/$b ]] || missing+=("$b"); done
  if ((${#missing[@]} == 0)); then
    echo "$out"
    return 0
  fi
  mkdir -p "$out"
  # Serialize concurrent builds of the same key (e.g. two CI jobs on one machine).
  exec 9>"$out/.lock"
  flock 9
  missing=()
  for b in "${want[@]}"; do [[ -x $out/$b ]] || missing+=("$b"); done
  t0=$SECONDS
  kver=$(go_env "$SRC" list -m -f '{{.Version}}' k8s.io/kubernetes)
  [[ $kver =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version '$kver'"
  minor=${BASH_REMATCH[1]}
  # Same stamping as kubernetes' hack/lib/version.sh; gitVersion must be the exact semver.
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for b in "${missing[@]}"; do
    log "building $b ($( [[ $b == etcd ]] && echo "go.etcd.io/etcd/server/v3" || echo "k8s.io/kubernetes $kver")) into $out"
    case $b in
      etcd) go_build "$SRC/etcd" go.etcd.io/etcd/server/v3 "$out/etcd" "-s -w" ;;
      *) go_build "$SRC" "k8s.io/kubernetes/cmd/$b" "$out/$b" "$ld" selinux,notest,grpcnotrace ;;
    esac || die "building $b failed (see the go output above)"
  done
  exec 9>&-
  log "build finished in $((SECONDS - t0)) s: ${missing[*]}"
  echo "$out"
}

bin_dir() {
  if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
    local b
    for b in kube-apiserver etcd; do
      [[ -x $KUBEBUILDER_ASSETS/$b ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$b'"
    done
    if [[ ${KTE_WITH_KCM:-0} == 1 && ! -x $KUBEBUILDER_ASSETS/kube-controller-manager ]]; then
      die "KTE_WITH_KCM=1 but KUBEBUILDER_ASSETS has no kube-controller-manager"
    fi
    echo "$KUBEBUILDER_ASSETS"
  else
    build
  fi
}

# ---------------------------------------------------------------------------------------------
# process handling (only ever PIDs recorded in this KTE_DIR)
# ---------------------------------------------------------------------------------------------

# A PID counts as ours only if it is alive and its command line mentions this KTE_DIR,
# which guards against PID reuse after a crash.
ours() { # <pid> <dir>
  local pid=$1 dir=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"
}

stop_pidfile() { # <pidfile> <dir>
  local f=$1 dir=$2 pid i
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  if ours "$pid" "$dir"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$(basename "$f" .pid) (pid $pid) ignored SIGTERM for 15 s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$f"
}

stop_dir() { # <dir>
  local dir=$1
  [[ -n $dir && $dir != / ]] || die "refusing to stop KTE_DIR='$dir'"
  [[ -f $dir/$MARKER ]] || die "$dir is not a kube-testenv directory (no $MARKER)"
  stop_pidfile "$dir/kube-controller-manager.pid" "$dir"
  stop_pidfile "$dir/kube-apiserver.pid" "$dir"
  stop_pidfile "$dir/etcd.pid" "$dir"
  rm -rf -- "$dir"
}

running() { # <dir>: true if any recorded process is alive
  local f
  for f in "$1"/*.pid; do
    [[ -f $f ]] || continue
    ours "$(<"$f")" "$1" && return 0
  done
  return 1
}

# wait_until <what> <timeout-s> <pidfile> <cmd...>: poll cmd until it succeeds; fail if the process died.
wait_until() {
  local what=$1 timeout=$2 pidfile=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(<"$pidfile")" 2>/dev/null || {
      log "the process for $what exited during startup"
      return 1
    }
    ((SECONDS < deadline)) || {
      log "timed out after ${timeout}s waiting for $what"
      return 1
    }
    sleep 0.25
  done
}

# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------

free_ports() { # <n>: n distinct free loopback ports, one per line
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

make_pki() { # <dir>
  local d=$1
  (
    cd "$d"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=hush-kube-testenv-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.crt
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      >server.ext
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >client.ext
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out apiserver.crt
    openssl req -new -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=hush-kube-testenv-admin" \
      -keyout admin.key -out admin.csr
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile client.ext -out admin.crt
    # A user with no rights of its own (tests bind Roles to it: client-certificate auth).
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=hush-kube-testenv-tenant" \
      -keyout tenant.key -out tenant.csr
    openssl x509 -req -in tenant.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile client.ext -out tenant.crt
    openssl genrsa -traditional -out sa.key 2048 # ServiceAccount token signing key (PKCS#1)
    openssl rsa -in sa.key -pubout -out sa.pub    # its public half, for token verification
  ) >"$d/openssl.log" 2>&1 || {
    cat "$d/openssl.log" >&2
    return 1
  }
}

write_kubeconfig() { # <file> <server-url> <pki-dir>
  (
    umask 077
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hush-kube-testenv
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 <"$3/ca.crt")
users:
- name: hush-kube-testenv-admin
  user:
    client-certificate-data: $(base64 -w0 <"$3/admin.crt")
    client-key-data: $(base64 -w0 <"$3/admin.key")
contexts:
- name: hush-kube-testenv
  context:
    cluster: hush-kube-testenv
    user: hush-kube-testenv-admin
    namespace: default
current-context: hush-kube-testenv
EOF
  )
}

export_lines() { # <dir>
  printf 'export KUBECONFIG=%q\n' "$1/kubeconfig"
  printf 'export KTE_DIR=%q\n' "$1"
}

dump_logs() { # <dir>
  local f
  for f in "$1"/logs/*.log; do
    [[ -s $f ]] || continue
    log "---- last 40 lines of $f ----"
    tail -n 40 "$f" >&2
  done
}

START_DIR=""
START_OK=0
on_start_exit() {
  local rc=$?
  if ((START_OK == 0)) && [[ -n $START_DIR && -f $START_DIR/$MARKER ]]; then
    dump_logs "$START_DIR"
    log "start failed; stopping everything under $START_DIR"
    stop_dir "$START_DIR" || true
    ((rc != 0)) || rc=1
  fi
  exit "$rc"
}

start() {
  need curl
  need openssl
  need python3
  need base64
  local bin t0=$SECONDS
  bin=$(bin_dir)
  local apiserver="$bin/kube-apiserver" etcd="$bin/etcd" kcm="$bin/kube-controller-manager"

  local dir
  if [[ -n ${KTE_DIR:-} ]]; then
    dir=$KTE_DIR
    if [[ -e $dir ]]; then
      [[ -d $dir ]] || die "KTE_DIR=$dir exists and is not a directory"
      if [[ -f $dir/$MARKER ]]; then
        running "$dir" && die "KTE_DIR=$dir already hosts a running environment; stop it first"
        log "removing the leftovers of an earlier environment in $dir"
        stop_dir "$dir"
      elif [[ -n $(ls -A "$dir") ]]; then
        die "KTE_DIR=$dir exists, is not empty and is not a kube-testenv directory"
      fi
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
  else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/hush-kte.XXXXXX")
  fi
  : >"$dir/$MARKER"
  START_DIR=$dir
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$dir/pki" "$dir/logs"
  local pki="$dir/pki"
  make_pki "$pki"

  local ports etcd_port peer_port api_port kcm_port url
  mapfile -t ports < <(free_ports 4)
  ((${#ports[@]} == 4)) || die "could not allocate free ports"
  etcd_port=${ports[0]} peer_port=${ports[1]} api_port=${ports[2]} kcm_port=${ports[3]}

  "$etcd" --name=kte --data-dir="$dir/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="kte=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --logger=zap --log-level=warn \
    </dev/null >"$dir/logs/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_until etcd 30 "$dir/etcd.pid" curl -fsS "http://127.0.0.1:$etcd_port/health"

  local -a extra=()
  # Extra flags are meant to be word-split (e.g. "--feature-gates=X=true --audit-log-path=...").
  read -r -a extra <<<"${KTE_APISERVER_ARGS:-}"
  "$apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    "${extra[@]}" \
    </dev/null >"$dir/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"

  url="https://127.0.0.1:$api_port"
  local -a c=(curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
  wait_until "kube-apiserver /readyz" "${KTE_START_TIMEOUT:-180}" "$dir/kube-apiserver.pid" "${c[@]}" "$url/readyz"
  wait_until "namespace default" 60 "$dir/kube-apiserver.pid" "${c[@]}" "$url/api/v1/namespaces/default"

  write_kubeconfig "$dir/kubeconfig" "$url" "$pki"

  if [[ ${KTE_WITH_KCM:-0} == 1 ]]; then
    mkdir -p "$dir/kcm"
    "$kcm" --kubeconfig="$dir/kubeconfig" \
      --authentication-kubeconfig="$dir/kubeconfig" --authorization-kubeconfig="$dir/kubeconfig" \
      --authentication-skip-lookup=true --client-ca-file="$pki/ca.crt" \
      --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$dir/kcm" \
      --leader-elect=false --use-service-account-credentials=false \
      --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
      --controllers="${KTE_KCM_CONTROLLERS:-garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,clusterrole-aggregation-controller}" \
      </dev/null >"$dir/logs/kube-controller-manager.log" 2>&1 &
    echo $! >"$dir/kube-controller-manager.pid"
    wait_until kube-controller-manager 60 "$dir/kube-controller-manager.pid" \
      curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
  fi

  export_lines "$dir" >"$dir/env"
  START_OK=1
  trap - EXIT INT TERM
  log "ready in $((SECONDS - t0)) s: $url (state in $dir; stop with: scripts/kube-testenv.sh stop $dir)"
  cat "$dir/env"
}

# ---------------------------------------------------------------------------------------------

target_dir() { # [DIR] -> the environment directory from the argument or KTE_DIR
  local dir=${1:-${KTE_DIR:-}}
  [[ -n $dir ]] || die "no environment given: pass DIR or set KTE_DIR"
  echo "$dir"
}

usage() {
  echo "usage: $0 build | start | stop [DIR] | env [DIR]" >&2
  exit 2
}

case ${1:-} in
  build)
    [[ $# -eq 1 ]] || usage
    build
    ;;
  start)
    [[ $# -eq 1 ]] || usage
    start
    ;;
  stop)
    [[ $# -le 2 ]] || usage
    dir=$(target_dir "${2:-}")
    if [[ ! -e $dir ]]; then
      log "$dir does not exist; nothing to stop"
      exit 0
    fi
    stop_dir "$dir"
    log "stopped and removed $dir"
    ;;
  env)
    [[ $# -le 2 ]] || usage
    dir=$(target_dir "${2:-}")
    [[ -f $dir/$MARKER && -f $dir/env ]] || die "$dir is not a started kube-testenv directory"
    running "$dir" || die "the environment in $dir is not running"
    cat "$dir/env"
    ;;
  *) usage ;;
esac
