#!/usr/bin/env bash
# Builds (once) a real Kubernetes control plane for Causeway's kubernetes-runtime tests,
# entirely from the Go module proxy (release downloads from dl.k8s.io/GitHub are not
# reachable everywhere):
#   etcd                        go.etcd.io/etcd/server/v3 @ ETCD_VERSION (wrapper module)
#   kube-apiserver, kube-controller-manager, kube-scheduler
#                               k8s.io/kubernetes @ K8S_VERSION through a wrapper go.mod that
#                               replaces every k8s.io/* staging module (listed from
#                               k8s.io/kubernetes's own go.mod) with its published v0.x.y
#   kwok                        sigs.k8s.io/kwok/cmd/kwok @ KWOK_VERSION (fake nodes/kubelets)
#
# Idempotent: everything lands in ~/.cache/causeway/k8s-<K8S>-etcd-<ETCD>-kwok-<KWOK>/bin and
# a second run does nothing. Concurrent runs wait for each other (flock).
# Contract (like scripts/provision.sh): progress and timings go to stderr; stdout is
# exactly one line, `export CAUSEWAY_K8S_BIN=<dir>`; `--print-env` prints it without building.
set -euo pipefail

K8S_VERSION="${CAUSEWAY_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${CAUSEWAY_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${CAUSEWAY_KWOK_VERSION:-v0.8.0}"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"
DIR="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BIN="$DIR/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "[k8s provision $(date +%H:%M:%S)] $*" >&2; }
print_env() { echo "export CAUSEWAY_K8S_BIN=\"$BIN\""; }

all_built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if [[ "${1:-}" == "--print-env" ]]; then print_env; exit 0; fi
mkdir -p "$CACHE"
if all_built; then
  log "cached: $BIN"
  print_env
  exit 0
fi

exec {lock_fd}>"$CACHE/.lock-k8s-$K8S_VERSION-$ETCD_VERSION-$KWOK_VERSION"
if command -v flock >/dev/null 2>&1 && ! flock -n "$lock_fd"; then
  log "another run is building the control plane; waiting"
  flock "$lock_fd"
fi
if all_built; then log "built by another run: $BIN"; print_env; exit 0; fi

command -v go >/dev/null 2>&1 || { log "Go is required to build the control plane (none cached at $BIN)"; exit 1; }
# Builds run at low priority so they do not starve tests running beside them.
GO=(nice -n "${CAUSEWAY_BUILD_NICE:-10}" go)
export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
log "using $(go version); GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

mkdir -p "$BIN"
WORK=$(mktemp -d "$CACHE/.build-k8s.XXXX")
trap 'rm -rf "$WORK"' EXIT
total_started=$SECONDS

# Go version a module's go.mod declares (`go 1.24.0`), so the wrapper pins the same one.
go_directive() { awk '$1 == "go" { print $2; exit }' "$1"; }
# Path of a module's go.mod in the module cache, fetched from the proxy if needed.
mod_file() { "${GO[@]}" mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'; }

build_etcd() {
  [[ -x "$BIN/etcd" ]] && { log "etcd: cached"; return; }
  local started=$SECONDS w="$WORK/etcd"
  mkdir -p "$w"
  local server_mod; server_mod=$(mod_file "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  # etcd's server module points its siblings at ../api etc. with replace directives, which
  # only apply inside etcd's own repository; the wrapper requires them at the same version.
  cat >"$w/go.mod" <<MOD
module causeway.local/build/etcd

go $(go_directive "$server_mod")

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
MOD
  log "etcd $ETCD_VERSION: resolving modules"
  (cd "$w" && "${GO[@]}" mod download go.etcd.io/etcd/server/v3 >&2 && "${GO[@]}" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2)
  log "etcd $ETCD_VERSION: compiling"
  (cd "$w" && "${GO[@]}" build -trimpath -o "$w/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3 >&2)
  mv "$w/etcd" "$BIN/etcd"
  log "etcd $ETCD_VERSION: built in $((SECONDS - started))s"
}

build_kubernetes() {
  local missing=0 b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do [[ -x "$BIN/$b" ]] || missing=1; done
  [[ $missing -eq 0 ]] && { log "kubernetes: cached"; return; }
  local started=$SECONDS w="$WORK/kubernetes"
  mkdir -p "$w"
  local kmod; kmod=$(mod_file "k8s.io/kubernetes@$K8S_VERSION")
  # k8s.io/kubernetes replaces its staging modules with ./staging/src/k8s.io/<name>, which
  # do not exist outside its repository; each is published as k8s.io/<name> v0.<minor>.<patch>.
  local staging_version="v0.${K8S_VERSION#v1.}"
  local staging; staging=$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$kmod")
  [[ -n "$staging" ]] || { log "no staging replaces found in $kmod"; exit 1; }
  {
    echo "module causeway.local/build/kubernetes"
    echo
    echo "go $(go_directive "$kmod")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$w/go.mod"
  log "kubernetes $K8S_VERSION: wrapper replaces $(echo "$staging" | wc -w) staging modules with $staging_version; resolving modules"
  (cd "$w" && "${GO[@]}" get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" >&2)
  log "kubernetes $K8S_VERSION: modules resolved after $((SECONDS - started))s; compiling"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    [[ -x "$BIN/$b" ]] && continue
    local s=$SECONDS
    (cd "$w" && "${GO[@]}" build -trimpath -o "$w/$b" -ldflags "$ld" "k8s.io/kubernetes/cmd/$b" >&2)
    mv "$w/$b" "$BIN/$b"
    log "kubernetes $K8S_VERSION: $b compiled in $((SECONDS - s))s"
  done
  log "kubernetes $K8S_VERSION: built in $((SECONDS - started))s"
}

build_kwok() {
  [[ -x "$BIN/kwok" ]] && { log "kwok: cached"; return; }
  local started=$SECONDS
  log "kwok $KWOK_VERSION: building sigs.k8s.io/kwok/cmd/kwok"
  GOBIN="$WORK/kwok-bin" "${GO[@]}" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  mv "$WORK/kwok-bin/kwok" "$BIN/kwok"
  log "kwok $KWOK_VERSION: built in $((SECONDS - started))s"
}

build_etcd
build_kubernetes
build_kwok
log "control plane ready in $BIN (this run: $((SECONDS - total_started))s)"
print_env
