#!/bin/sh
# Builds the containerd runtime's helper that mounts a step's work directory idmapped
# (activities/runtime/containerd/idmap-mount.c) beside idmap.js; run by `npm run build` after tsc.
# Without a C compiler it says so and containers see their work directory as it is on disk (the
# build's files as its uid's; their git trusts them through GIT_CONFIG, docs/containerd.md).
set -eu
cd "$(dirname "$0")/.."
src=activities/runtime/containerd/idmap-mount.c
out=dist/activities/runtime/containerd/idmap-mount
if ! command -v cc >/dev/null 2>&1; then
  rm -f "$out"
  echo "no C compiler (cc): $out not built; containers see their work directory without an idmap (install gcc and libc6-dev, then npm run build)" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
