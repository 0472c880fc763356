#!/usr/bin/env bash
# Builds Causeway's container images offline (no Docker engine, no registry on the internet)
# and, with --push, copies them into a registry (the node's local one on 127.0.0.1):
#   pause     the kubelet's pod sandbox: busybox-static sleeping (Debian's busybox-static)
#   busybox   busybox-static with its applets, an os-release of its own, root and nobody: the
#             containerd runtime's default image and test image (served as docker.io/library/busybox)
#   coredns   CoreDNS from scripts/k8s/provision.sh --node, alone in the image
#   task      the default task image: Debian bookworm with bash coreutils python3 git curl ca-certificates
#   postgres  Debian bookworm's postgresql (for service tests), user postgres
#   redis     Debian bookworm's redis-server (for service tests)
#   agent     agent/Dockerfile's intent: node + dist/agent/causeway-agent.js and its static splice helper
#             dist/agent/tar-stream (GNU tar from Debian), uid 65532
#   worker    Dockerfile's intent: node + the CLI with production dependencies, uid 10001
#   resource-git, resource-time, resource-registry-image, resource-mock  the base resource types as images for
#             runtimes with no host to run them on (kubernetes): node base + what the type needs +
#             /opt/resource/{check,in,out} running the type's compiled code (built only when named)
#   test-resource  busybox + /opt/resource/{check,in,out} of scripts/images/test-resource: a
#             Concourse resource type image for tests (built only when named)
# Debian root filesystems come from mmdebstrap against the machine's Debian mirror; layers are
# plain tars turned into an OCI layout by umoci; skopeo pushes. Each image is cached under
# ~/.cache/causeway/images/<name>-<hash>/ where the hash covers its recipe (the function
# below) and its input files, so it is rebuilt only when one of them changes.
#
#   bash scripts/images/build.sh [--push 127.0.0.1:PORT] [NAME...]   (default: all)
#   bash scripts/images/build.sh --check [NAME...]   builds nothing; exits 0 when each image is
#     cached or costs seconds to make (no Debian root filesystem to bootstrap: agent and worker
#     over a cached node base), 1 naming the others on stderr
# stdout: one line per image, `NAME REF` (REF = REGISTRY/causeway/NAME:HASH with --push, else
# the OCI layout `oci:DIR:latest`); progress on stderr. Run `npm run build` first for agent/worker.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"
IMAGES="$CACHE/images"
MIRROR="${CAUSEWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
ALL=(pause busybox coredns task postgres redis agent worker)
# Part of every image's hash. It was node-tar's version in the agent (which now runs GNU tar);
# kept so that cached images keep their hashes and are not rebuilt for nothing.
HASH_SALT=7.5.23

log() { echo "[images $(date +%H:%M:%S)] $*" >&2; }
die() { log "$*"; exit 1; }

REGISTRY=""
CHECK=0
if [[ "${1:-}" == "--push" ]]; then REGISTRY="${2:?--push needs HOST:PORT}"; shift 2; fi
if [[ "${1:-}" == "--check" ]]; then CHECK=1; shift; fi
NAMES=("$@")
[[ ${#NAMES[@]} -gt 0 ]] || NAMES=("${ALL[@]}")

for tool in umoci mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install umoci skopeo mmdebstrap busybox-static (scripts/k8s/node.sh --install does it)"
done

# A Debian root filesystem as a tar: mmdebstrap minbase plus PACKAGES, docs and man pages left out.
debian_rootfs() {
  local out=$1; shift
  local include; include=$(IFS=,; echo "$*")
  mmdebstrap --quiet --variant=minbase ${include:+--include="$include"} \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$SUITE" "$out" "$MIRROR" "deb ${MIRROR}-security $SUITE-security main" >&2
}

# Node from the machine (the image's libc is the same Debian's), for agent and worker.
node_binary() { readlink -f "$(command -v node)"; }

# Each recipe_NAME DIR LAYOUT builds layers into DIR and configures LAYOUT:img. Its text is
# part of the image's hash (declare -f), with the files inputs_NAME lists.
inputs_pause() { command -v busybox; }
recipe_pause() {
  local d=$1/layer
  mkdir -p "$d/bin"
  cp "$(command -v busybox)" "$d/bin/busybox"
  add_layer "$2" "$d"
  # A pause container only holds the pod's namespaces; the runtime SIGKILLs it.
  umoci config --image "$2:img" --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 2147483647 --config.user 65535:65535
}

inputs_busybox() { command -v busybox; }
recipe_busybox() {
  local d=$1/layer
  mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/root"
  chmod 1777 "$d/tmp"
  cp "$(command -v busybox)" "$d/bin/busybox"
  "$d/bin/busybox" --list | while read -r applet; do [[ "$applet" == busybox ]] || ln -s busybox "$d/bin/$applet"; done
  # Tests tell this image from the host by its os-release.
  printf 'NAME="Causeway busybox"\nID=causeway-busybox\nPRETTY_NAME="Causeway busybox (busybox-static)"\n' >"$d/etc/os-release"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
  add_layer "$2" "$d"
  umoci config --image "$2:img" --config.cmd /bin/sh --config.env PATH=/bin
}

# Not in ALL: test/containerd/resource-types.test.ts builds and pushes it. Its hash covers
# recipe_busybox through the busybox binary and this recipe only, so a change to the busybox
# recipe alone needs the cached test-resource removed.
inputs_test-resource() { command -v busybox; ls "$ROOT"/scripts/images/test-resource/*; }
recipe_test-resource() {
  recipe_busybox "$1" "$2"
  local d=$1/resource
  mkdir -p "$d/opt/resource"
  cp "$ROOT"/scripts/images/test-resource/{check,in,out} "$d/opt/resource/"
  add_layer "$2" "$d"
}

# Not in ALL: test/containerd/resource-images.test.ts builds and pushes it. busybox plus a layer
# whose /data belongs to uid 999 (the image's user, as postgres's data directory is its user's),
# a setuid file of root's, a hard link, and symlinks at the host's /etc/shadow: owners restored
# from a rootless unpack must land on the image's files only.
inputs_test-owners() { command -v busybox; }
recipe_test-owners() {
  recipe_busybox "$1" "$2"
  local d=$1/owners tarfile
  mkdir -p "$d/data" "$d/etc" "$d/bin"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\nowner:x:999:999:owner:/data:/bin/sh\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nowner:x:999:\n' >"$d/etc/group"
  echo kept >"$d/data/kept"
  ln "$d/data/kept" "$d/data/kept-link"
  chmod 0700 "$d/data"
  echo '#!/bin/sh' >"$d/bin/setuid-root"
  chmod 4755 "$d/bin/setuid-root"
  ln -s /etc/shadow "$d/etc/x"
  ln -s /etc/shadow "$d/data/shadow"
  tarfile=$(mktemp "$2.layer.XXXX")
  tar -C "$d" --owner=0 --group=0 --numeric-owner -cf "$tarfile" ./etc ./bin
  tar -C "$d" --owner=999 --group=999 --numeric-owner -rf "$tarfile" ./data
  umoci raw add-layer --image "$2:img" "$tarfile"
  rm -f "$tarfile"
  umoci config --image "$2:img" --config.user 999:999
}

inputs_coredns() { echo "${CAUSEWAY_K8S_NODE_BIN:?run eval \"\$(bash scripts/k8s/provision.sh --node)\" first}/coredns"; }
recipe_coredns() {
  local d=$1/layer
  mkdir -p "$d/etc/coredns"
  cp "$CAUSEWAY_K8S_NODE_BIN/coredns" "$d/coredns"
  add_layer "$2" "$d"
  umoci config --image "$2:img" --config.entrypoint /coredns --config.cmd -conf --config.cmd /etc/coredns/Corefile --config.user 65532:65532
}

inputs_task() { :; }
recipe_task() {
  debian_rootfs "$1/rootfs.tar" bash coreutils python3 git curl ca-certificates
  umoci raw add-layer --image "$2:img" "$1/rootfs.tar"
  umoci config --image "$2:img" --config.cmd /bin/bash --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

inputs_postgres() { :; }
recipe_postgres() {
  debian_rootfs "$1/rootfs.tar" postgresql-15
  umoci raw add-layer --image "$2:img" "$1/rootfs.tar"
  # The cluster Debian's package creates is dropped: a service runs initdb into its own dir.
  umoci config --image "$2:img" --config.user postgres --config.workingdir /var/lib/postgresql \
    --config.env PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin --config.cmd postgres
}

inputs_redis() { :; }
recipe_redis() {
  debian_rootfs "$1/rootfs.tar" redis-server
  umoci raw add-layer --image "$2:img" "$1/rootfs.tar"
  umoci config --image "$2:img" --config.user redis --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.cmd redis-server --config.cmd --protected-mode --config.cmd no --config.cmd --save --config.cmd ''
}

# The node base shared by agent and worker: minbase has libstdc++ (apt needs it), which node links.
# Its root filesystem is cached on its own (keyed by how it is made), so a changed agent or CLI
# costs a copy of the new files, not another mmdebstrap.
node_base() {
  local key rootfs
  key=$({ declare -f debian_rootfs; echo "$SUITE $MIRROR ca-certificates"; } | sha256sum | cut -c1-16)
  rootfs="$IMAGES/node-base-rootfs-$key.tar"
  if [[ ! -f "$rootfs" ]]; then
    debian_rootfs "$1/rootfs.tar" ca-certificates
    mv "$1/rootfs.tar" "$rootfs"
  fi
  umoci raw add-layer --image "$2:img" "$rootfs"
  mkdir -p "$1/node/usr/local/bin"
  cp "$(node_binary)" "$1/node/usr/local/bin/node"
  add_layer "$2" "$1/node"
}

inputs_agent() { node_binary; echo "$ROOT/dist/agent/causeway-agent.js"; echo "$ROOT/dist/agent/tar-stream"; }
recipe_agent() {
  node_base "$1" "$2"
  local d=$1/agent
  mkdir -p "$d/agent" "$d/usr/local/bin"
  cp "$ROOT/dist/agent/causeway-agent.js" "$d/agent/causeway-agent.js"
  # Without it the agent still works, with Node in the artifacts' byte path (about 2x slower).
  [[ -x "$ROOT/dist/agent/tar-stream" ]] || die "agent: dist/agent/tar-stream is missing: npm run build with a C compiler (gcc, libc6-dev)"
  cp "$ROOT/dist/agent/tar-stream" "$d/agent/tar-stream"
  printf '#!/bin/sh\nexec node /agent/causeway-agent.js "$@"\n' >"$d/usr/local/bin/causeway-agent"
  chmod +x "$d/usr/local/bin/causeway-agent"
  add_layer "$2" "$d"
  umoci config --image "$2:img" --config.entrypoint causeway-agent --config.workingdir /agent --config.user 65532:65532 \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin
}

inputs_worker() {
  node_binary
  echo "$ROOT/package.json"; echo "$ROOT/package-lock.json"
  (cd "$ROOT" && find dist bin -type f -not -path 'dist/test/*' -not -path 'dist/bench/*' | sort | sed "s|^|$ROOT/|")
}
recipe_worker() {
  node_base "$1" "$2"
  local d=$1/worker
  mkdir -p "$d/causeway" "$d/usr/local/bin" "$d/var/lib/causeway"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$d/causeway/"
  # As .ci/run: npm ci may refuse the lockfile (other platforms' optional binaries are not served).
  (cd "$d/causeway" && { npm ci --silent --omit=dev --ignore-scripts --no-audit --no-fund >&2 ||
    npm install --silent --omit=dev --ignore-scripts --no-audit --no-fund --no-save >&2; })
  cp -r "$ROOT/dist" "$ROOT/bin" "$d/causeway/"
  rm -rf "$d/causeway/dist/test" "$d/causeway/dist/bench"
  ln -s /causeway/bin/causeway "$d/usr/local/bin/causeway"
  add_layer "$2" "$d" 10001
  umoci config --image "$2:img" --config.entrypoint causeway --config.workingdir /causeway --config.user 10001:10001 \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env CAUSEWAY_HOME=/var/lib/causeway --config.env NODE_ENV=production
}

# The base resource types (resources/) as Concourse resource type images: node base, a layer of
# the Debian packages the type runs (git; skopeo and umoci) over the node base's root filesystem
# (so that one stays shared), and /opt/resource/{check,in,out} running the type's dist/ code,
# bundled with its dependencies (zod) by esbuild into one file. Not in ALL: the tests that use
# them build them; a worker finds them through CAUSEWAY_RESOURCE_IMAGES (docs/kubernetes.md).
RESOURCE_PACKAGES_git="git"
RESOURCE_PACKAGES_time=""
RESOURCE_PACKAGES_mock=""
RESOURCE_PACKAGES_registry_image="skopeo umoci"
resource_packages() { local v="RESOURCE_PACKAGES_${1//-/_}"; echo "${!v}"; }
resource_inputs() {
  node_binary
  printf '%s\n' "$ROOT/scripts/images/tree-diff.js" "$ROOT/node_modules/zod/package.json" "$ROOT/node_modules/esbuild/package.json"
  (cd "$ROOT" && find dist/resources dist/schemas -name '*.js' | sort | sed "s|^|$ROOT/|")
}
# packages_layer PACKAGE...: the cached layer's path (it may not exist yet)
packages_layer() {
  local key
  key=$({ declare -f debian_rootfs; echo "$SUITE $MIRROR ca-certificates $*"; sha256sum <"$ROOT/scripts/images/tree-diff.js"; } | sha256sum | cut -c1-16)
  echo "$IMAGES/node-base-packages-$key.tar"
}
resource_image() {
  local type=$1 work=$2 layout=$3 packages layer base key
  node_base "$work" "$layout"
  read -ra packages <<<"$(resource_packages "$type")"
  if [[ ${#packages[@]} -gt 0 ]]; then
    layer=$(packages_layer "${packages[@]}")
    if [[ ! -f "$layer" ]]; then
      key=$({ declare -f debian_rootfs; echo "$SUITE $MIRROR ca-certificates"; } | sha256sum | cut -c1-16)
      base="$IMAGES/node-base-rootfs-$key.tar"
      debian_rootfs "$work/full.tar" ca-certificates "${packages[@]}"
      mkdir "$work/base" "$work/full"
      tar -C "$work/base" --numeric-owner -xf "$base"
      tar -C "$work/full" --numeric-owner -xf "$work/full.tar"
      node "$ROOT/scripts/images/tree-diff.js" "$work/base" "$work/full" >"$work/changed"
      tar -C "$work/full" --numeric-owner --no-recursion -T "$work/changed" -cf "$layer.tmp"
      mv "$layer.tmp" "$layer"
      rm -rf "$work/base" "$work/full" "$work/full.tar"
    fi
    umoci raw add-layer --image "$layout:img" "$layer"
  fi
  local d=$work/resource s
  mkdir -p "$d/opt/resource"
  "$ROOT/node_modules/.bin/esbuild" "$ROOT/dist/resources/src/$type.js" --bundle --platform=node --target=node20 \
    --log-level=warning --outfile="$d/opt/resource/$type.js"
  for s in check in out; do
    printf '#!/bin/sh\nexec node /opt/resource/%s.js %s "$@"\n' "$type" "$s" >"$d/opt/resource/$s"
    chmod +x "$d/opt/resource/$s"
  done
  add_layer "$layout" "$d"
  umoci config --image "$layout:img" --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.cmd /bin/sh
}
inputs_resource-git() { resource_inputs; }
recipe_resource-git() { resource_image git "$@"; }
inputs_resource-time() { resource_inputs; }
recipe_resource-time() { resource_image time "$@"; }
inputs_resource-registry-image() { resource_inputs; }
recipe_resource-registry-image() { resource_image registry-image "$@"; }
inputs_resource-mock() { resource_inputs; }
recipe_resource-mock() { resource_image mock "$@"; }

# add_layer LAYOUT DIR [UID]: DIR's tree as one layer, owned by root (or UID for /var/lib/causeway).
add_layer() {
  local tarfile; tarfile=$(mktemp "$1.layer.XXXX")
  tar -C "$2" --owner=0 --group=0 --numeric-owner -cf "$tarfile" .
  if [[ -n "${3:-}" ]]; then
    tar -C "$2" --owner="$3" --group="$3" --numeric-owner -rf "$tarfile" ./var/lib/causeway
  fi
  umoci raw add-layer --image "$1:img" "$tarfile"
  rm -f "$tarfile"
}

image_hash() {
  local name=$1
  {
    declare -f "recipe_$name" "inputs_$name" debian_rootfs node_base add_layer
    [[ $name != resource-* ]] || { declare -f resource_image resource_inputs packages_layer; echo "$(resource_packages "${name#resource-}")"; }
    echo "$SUITE $MIRROR $HASH_SALT"
    local f
    while IFS= read -r f; do [[ -n "$f" ]] && { echo "$f"; sha256sum <"$f"; }; done < <("inputs_$name")
  } | sha256sum | cut -c1-16
}

build_one() {
  local name=$1 hash dir
  declare -F "recipe_$name" >/dev/null || die "unknown image $name (known: ${ALL[*]})"
  hash=$(image_hash "$name")
  dir="$IMAGES/$name-$hash"
  if [[ -f "$dir/done" ]]; then
    log "$name: cached ($dir)"
  else
    local started=$SECONDS work
    rm -rf "$dir"
    mkdir -p "$IMAGES"
    work=$(mktemp -d "$IMAGES/.build-$name.XXXX")
    log "$name: building"
    umoci init --layout "$work/oci" >&2
    umoci new --image "$work/oci:img" >&2
    "recipe_$name" "$work" "$work/oci" >&2
    umoci tag --image "$work/oci:img" latest >&2
    umoci gc --layout "$work/oci" >&2
    mv "$work/oci" "$dir"
    rm -rf "$work"
    touch "$dir/done"
    log "$name: built in $((SECONDS - started))s"
  fi
  if [[ -n "$REGISTRY" ]]; then
    local ref="$REGISTRY/causeway/$name:$hash"
    skopeo copy --quiet --dest-tls-verify=false "oci:$dir:latest" "docker://$ref" >&2
    echo "$name $ref"
  else
    echo "$name oci:$dir:latest"
  fi
}

# Whether NAME is cached or cheap: only the mmdebstrap root filesystems take minutes.
check_one() {
  local name=$1
  declare -F "recipe_$name" >/dev/null || die "unknown image $name (known: ${ALL[*]})"
  case $name in
    pause | busybox | coredns | test-owners | test-resource) return 0 ;;
    resource-*)
      local packages
      read -ra packages <<<"$(resource_packages "${name#resource-}")"
      if [[ ${#packages[@]} -gt 0 && ! -f "$(packages_layer "${packages[@]}")" ]]; then
        log "$name: its layer of ${packages[*]} is not cached (mmdebstrap)"
        return 1
      fi
      # as agent's: cheap over a cached node base
      check_one agent 2>/dev/null && return 0
      log "$name: its node base root filesystem is not cached (mmdebstrap)"
      return 1
      ;;
    agent | worker)
      # node_base's path, computed again: node_base's text is part of every image's hash
      local key
      key=$({ declare -f debian_rootfs; echo "$SUITE $MIRROR ca-certificates"; } | sha256sum | cut -c1-16)
      [[ -f "$IMAGES/node-base-rootfs-$key.tar" ]] && return 0
      log "$name: its node base root filesystem is not cached (mmdebstrap)"
      return 1
      ;;
  esac
  # inputs of the Debian images are files of this machine, not dist/: their hash is cheap
  [[ -f "$IMAGES/$name-$(image_hash "$name")/done" ]] && return 0
  log "$name: not cached (mmdebstrap)"
  return 1
}

if [[ $CHECK -eq 1 ]]; then
  ok=0
  for n in "${NAMES[@]}"; do check_one "$n" || ok=1; done
  exit $ok
fi
for n in "${NAMES[@]}"; do build_one "$n"; done
