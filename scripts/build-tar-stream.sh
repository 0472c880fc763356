#!/bin/sh
# Builds the agent's splice helper (agent/tar-stream.c) beside the compiled agent, run by
# `npm run build` after tsc. Static, so that the agent and worker images (scripts/images/build.sh)
# run the same file on any libc. Without a C compiler it says so and the agent pipes tar through
# Node instead (about 2x slower, BENCHMARKS.md k8s-steps); the agent image needs it.
set -eu
cd "$(dirname "$0")/.."
src=agent/tar-stream.c
out=dist/agent/tar-stream
if ! command -v cc >/dev/null 2>&1; then
  rm -f "$out"
  echo "no C compiler (cc): $out not built; artifacts go through Node, about 2x slower (install gcc and libc6-dev, then npm run build)" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
cc -static -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
