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
# and, with --node, what a real node needs (scripts/k8s/node.sh installs the rest from Debian):
#   kubelet, kube-proxy, kubectl through the same wrapper go.mod
#   coredns                     github.com/coredns/coredns @ COREDNS_VERSION, only the Corefile's plugins
#   containerd, containerd-shim-runc-v2
#                               github.com/containerd/containerd/v2 @ CONTAINERD_VERSION: the kubelet's
#                               evented PLEG needs the CRI's container events, which Debian's 1.6 lacks
#
# Idempotent: everything lands in ~/.cache/causeway/k8s-<K8S>-etcd-<ETCD>-kwok-<KWOK>/bin
# (--node: ~/.cache/causeway/k8s-node-<K8S>-coredns-<COREDNS>/bin, and containerd in
# ~/.cache/causeway/containerd-<CONTAINERD>/bin, so a new containerd version rebuilds containerd
# alone) and a second run does nothing. Concurrent runs wait for each other (flock).
# Contract (like scripts/provision.sh): progress and timings go to stderr; stdout is
# exactly one line, `export CAUSEWAY_K8S_BIN=<dir>` (--node: `export CAUSEWAY_K8S_NODE_BIN=<dir>
# CAUSEWAY_CONTAINERD_BIN=<dir>`);
# `--print-env` prints it without building; `--check` builds nothing and exits 0 when everything
# is cached, 1 (naming what is missing on stderr) when a run would build.
set -euo pipefail

K8S_VERSION="${CAUSEWAY_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${CAUSEWAY_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${CAUSEWAY_KWOK_VERSION:-v0.8.0}"
COREDNS_VERSION="${CAUSEWAY_COREDNS_VERSION:-v1.15.0}"
CONTAINERD_VERSION="${CAUSEWAY_CONTAINERD_VERSION:-v2.4.2}"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"

NODE=0
if [[ "${1:-}" == "--node" ]]; then NODE=1; shift; fi
if [[ $NODE -eq 1 ]]; then
  DIR="$CACHE/k8s-node-$K8S_VERSION-coredns-$COREDNS_VERSION"
  CONTAINERD_BIN="$CACHE/containerd-$CONTAINERD_VERSION/bin"
  BINARIES=(kubelet kube-proxy kubectl coredns "$CONTAINERD_BIN/containerd" "$CONTAINERD_BIN/containerd-shim-runc-v2")
  ENV_NAME=CAUSEWAY_K8S_NODE_BIN
  LOCK="$CACHE/.lock-k8s-node-$K8S_VERSION-$COREDNS_VERSION"
else
  DIR="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
  BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
  ENV_NAME=CAUSEWAY_K8S_BIN
  LOCK="$CACHE/.lock-k8s-$K8S_VERSION-$ETCD_VERSION-$KWOK_VERSION"
fi
BIN="$DIR/bin"

log() { echo "[k8s provision $(date +%H:%M:%S)] $*" >&2; }
print_env() {
  if [[ $NODE -eq 1 ]]; then
    echo "export $ENV_NAME=\"$BIN\" CAUSEWAY_CONTAINERD_BIN=\"$CONTAINERD_BIN\""
  else
    echo "export $ENV_NAME=\"$BIN\""
  fi
}
# A binary's path: BINARIES names those in $BIN by name, others by absolute path.
bin_path() { if [[ $1 == /* ]]; then echo "$1"; else echo "$BIN/$1"; fi; }

all_built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$(bin_path "$b")" ]] || return 1; done
}

if [[ "${1:-}" == "--print-env" ]]; then print_env; exit 0; fi
if [[ "${1:-}" == "--check" ]]; then
  all_built && exit 0
  for b in "${BINARIES[@]}"; do [[ -x "$(bin_path "$b")" ]] || log "not cached: $(bin_path "$b")"; done
  exit 1
fi
mkdir -p "$CACHE"
if all_built; then
  log "cached: $BIN"
  print_env
  exit 0
fi

exec {lock_fd}>"$LOCK"
if command -v flock >/dev/null 2>&1 && ! flock -n "$lock_fd"; then
  log "another run is building $DIR; waiting"
  flock "$lock_fd"
fi
if all_built; then log "built by another run: $BIN"; print_env; exit 0; fi

command -v go >/dev/null 2>&1 || { log "Go is required to build ${BINARIES[*]} (none cached at $BIN)"; exit 1; }
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

# build_kubernetes CMD...: k8s.io/kubernetes/cmd/CMD for each CMD not in $BIN yet.
build_kubernetes() {
  local missing=0 b cmds=("$@")
  for b in "${cmds[@]}"; do [[ -x "$BIN/$b" ]] || missing=1; done
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
  local pkgs=() c
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION"); done
  (cd "$w" && "${GO[@]}" get "${pkgs[@]}" >&2)
  log "kubernetes $K8S_VERSION: modules resolved after $((SECONDS - started))s; compiling"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  # One go build for all of them: it schedules every package of the three graphs together and
  # links them in parallel, where one build per binary left a core idle in each one's tail.
  local todo=()
  for b in "${cmds[@]}"; do [[ -x "$BIN/$b" ]] || todo+=("k8s.io/kubernetes/cmd/$b"); done
  mkdir -p "$w/out"
  (cd "$w" && "${GO[@]}" build -trimpath -o "$w/out/" -ldflags "$ld" "${todo[@]}" >&2)
  for b in "${cmds[@]}"; do [[ -x "$w/out/$b" ]] && mv "$w/out/$b" "$BIN/$b"; done
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

# The plugins the node's Corefile uses (cli/dev/k8s/node.ts, coreDnsObjects). CoreDNS's own main
# links all ~60 (cloud DNS SDKs among them), which made it the slowest binary of the node. The
# cache dir does not name them: after adding one, delete the cached coredns.
COREDNS_PLUGINS=(errors health ready kubernetes cache)

build_coredns() {
  [[ -x "$BIN/coredns" ]] && { log "coredns: cached"; return; }
  local started=$SECONDS w="$WORK/coredns"
  mkdir -p "$w"
  local cmod; cmod=$(mod_file "github.com/coredns/coredns@$COREDNS_VERSION")
  # A main of our own linking only those plugins, as CoreDNS documents for custom builds.
  {
    echo "package main"
    echo
    echo "import ("
    for p in "${COREDNS_PLUGINS[@]}"; do echo "	_ \"github.com/coredns/coredns/plugin/$p\""; done
    echo "	\"github.com/coredns/coredns/coremain\""
    echo ")"
    echo
    echo "func main() { coremain.Run() }"
  } >"$w/main.go"
  printf 'module causeway.local/build/coredns\n\ngo %s\n\nrequire github.com/coredns/coredns %s\n' \
    "$(go_directive "$cmod")" "$COREDNS_VERSION" >"$w/go.mod"
  log "coredns $COREDNS_VERSION: resolving modules (plugins: ${COREDNS_PLUGINS[*]})"
  (cd "$w" && "${GO[@]}" mod tidy >&2)
  log "coredns $COREDNS_VERSION: compiling"
  (cd "$w" && "${GO[@]}" build -trimpath -o "$w/coredns-bin" -ldflags "-s -w" . >&2)
  mv "$w/coredns-bin" "$BIN/coredns"
  log "coredns $COREDNS_VERSION: built in $((SECONDS - started))s"
}

# containerd's daemon and its runc shim (runc itself stays Debian's). No cgo: the btrfs
# snapshotter, the one part that needs it, is not used (overlayfs).
build_containerd() {
  [[ -x "$CONTAINERD_BIN/containerd" && -x "$CONTAINERD_BIN/containerd-shim-runc-v2" ]] && { log "containerd: cached"; return; }
  local started=$SECONDS m=github.com/containerd/containerd/v2
  log "containerd $CONTAINERD_VERSION: building $m/cmd/containerd and cmd/containerd-shim-runc-v2"
  GOBIN="$WORK/containerd-bin" "${GO[@]}" install -trimpath -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION" \
    "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" >&2
  mkdir -p "$CONTAINERD_BIN"
  mv "$WORK/containerd-bin/containerd-shim-runc-v2" "$CONTAINERD_BIN/"
  mv "$WORK/containerd-bin/containerd" "$CONTAINERD_BIN/"
  log "containerd $CONTAINERD_VERSION: built in $((SECONDS - started))s"
}

if [[ $NODE -eq 1 ]]; then
  build_kubernetes kubelet kube-proxy kubectl
  build_coredns
  build_containerd
  log "node binaries ready in $BIN (this run: $((SECONDS - total_started))s)"
else
  build_etcd
  build_kubernetes kube-apiserver kube-controller-manager kube-scheduler
  build_kwok
  log "control plane ready in $BIN (this run: $((SECONDS - total_started))s)"
fi
print_env
