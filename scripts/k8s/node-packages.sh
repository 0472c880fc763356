#!/usr/bin/env bash
# Installs what a real node and the offline image builds need from Debian (idempotent):
# containerd + runc + CNI plugins (bridge, host-local, loopback, portmap), the local registry
# (docker-registry, the CNCF distribution server), umoci + skopeo + mmdebstrap (images without
# Docker), busybox-static (the pause image), iptables (kube-proxy), python3 (a containerd
# worker gives a rootless-unpacked rootfs its owners back: activities/runtime/containerd/owners.ts),
# crun (the containerd runtime's OCI runtime where the host's cgroups allow: the last line). The
# packages' daemons are not started: the node starts its own containerd and registry with its own config.
set -euo pipefail
PACKAGES=(containerd runc crun containernetworking-plugins docker-registry umoci skopeo mmdebstrap busybox-static iptables conntrack python3)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo -n)
here=$(dirname "${BASH_SOURCE[0]}")
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "node packages already installed" >&2
  "${sudo[@]}" bash "$here/../cgroup-hierarchies.sh"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2
# policy-rc.d exit 101 keeps the packages' postinst from starting their system daemons.
printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
"${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
"${sudo[@]}" bash "$here/../cgroup-hierarchies.sh"
