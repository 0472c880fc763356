#!/usr/bin/env bash
# On a hybrid cgroup host (cgroup v1 hierarchies on a tmpfs at /sys/fs/cgroup, cgroup2 at
# /sys/fs/cgroup/unified) mounts a v1 hierarchy for each controller left in cgroup2, as systemd
# does on such hosts: crun refuses a hybrid layout whose cgroup2 holds controllers
# (activities/runtime/containerd/oci-runtime.ts). A host booted without systemd leaves hugetlb
# there. Idempotent; does nothing on a cgroup v1-only or v2-only host. Needs root; where a mount
# is refused it says so and goes on (the worker then runs runc, saying why).
set -euo pipefail
root=/sys/fs/cgroup
unified=$root/unified
[[ -f $unified/cgroup.controllers ]] || exit 0
read -r -a controllers < "$unified/cgroup.controllers" || true
for c in "${controllers[@]}"; do
  # A controller enabled for cgroup2's children is in use there and cannot move.
  if grep -qw "$c" "$unified/cgroup.subtree_control"; then
    echo "cgroup controller $c is enabled in $unified; left there" >&2
    continue
  fi
  if mkdir -p "$root/$c" && mount -t cgroup -o "$c" cgroup "$root/$c"; then
    echo "mounted the cgroup v1 hierarchy of $c at $root/$c (for crun)" >&2
  else
    echo "could not mount a cgroup v1 hierarchy of $c at $root/$c: containers will run with runc" >&2
  fi
done
