#!/bin/sh
# Builds the C helpers beside their compiled TypeScript in dist/; run by `npm run build` after tsc.
# Each is optional: without a C compiler (e.g. the Dockerfile's image) it says what runs instead.
#   as-user      the local runtime starts a step as its user in one exec (activities/runtime/local/as-user.c)
#   tar-stream   the agent splices tar <-> socket (agent/tar-stream.c); static, so the agent and
#                worker images (scripts/images/build.sh) run the same file on any libc
#   idmap-mount  containerd mounts a task's work directory idmapped (activities/runtime/containerd/idmap-mount.c)
set -eu
cd "$(dirname "$0")/.."

# helper SRC OUT EXTRA_CC_FLAGS WITHOUT: WITHOUT says what happens when it is not built.
helper() {
  if ! command -v cc >/dev/null 2>&1; then
    rm -f "$2"
    echo "no C compiler (cc): $2 not built; $4 (install gcc and libc6-dev, then npm run build)" >&2
    return 0
  fi
  mkdir -p "$(dirname "$2")"
  # shellcheck disable=SC2086 # $3: flags, split on purpose
  cc $3 -O2 -Wall -Wextra -Werror -o "$2.tmp" "$1"
  mv "$2.tmp" "$2"
}

helper activities/runtime/local/as-user.c dist/activities/runtime/local/as-user "" \
  "local steps start through unshare, sh, mount and setpriv"
helper agent/tar-stream.c dist/agent/tar-stream -static \
  "artifacts go through Node, about 2x slower; the agent image needs it"
helper activities/runtime/containerd/idmap-mount.c dist/activities/runtime/containerd/idmap-mount "" \
  "containers see their work directory without an idmap (the build's files as its uid's; their git trusts them through GIT_CONFIG, docs/containerd.md)"
