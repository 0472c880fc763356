#!/usr/bin/env bash
# Builds (once) the real infrastructure Causeway's dev stack and tests use, from the
# Go module proxy, because release-binary downloads are not reachable everywhere.
# Idempotent: binaries are cached under ~/.cache/causeway/<tool>-<version>/bin.
# Prints nothing but progress on stderr; `provision.sh --print-env` prints the
# PATH additions for eval.
set -euo pipefail

TEMPORAL_VERSION="${CAUSEWAY_TEMPORAL_VERSION:-v1.5.1}"
NATS_VERSION="${CAUSEWAY_NATS_VERSION:-v2.11.17}"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"

log() { echo "[provision] $*" >&2; }

# install_go_tool NAME VERSION MODULE_PATH BINARY
install_go_tool() {
  local name=$1 version=$2 module=$3 binary=$4
  local dir="$CACHE/$name-$version/bin"
  if [[ -x "$dir/$binary" ]]; then
    log "$name $version: cached at $dir/$binary"
    return
  fi
  log "$name $version: building $module@$version from the Go module proxy (first time only, a few minutes)"
  mkdir -p "$dir"
  local tmp; tmp=$(mktemp -d "$CACHE/.build-$name.XXXX")
  GOBIN="$tmp" CGO_ENABLED=0 go install "$module@$version"
  mv "$tmp/$binary" "$dir/$binary"
  rmdir "$tmp"
  log "$name $version: built $dir/$binary"
}

mkdir -p "$CACHE"
if [[ "${1:-}" != "--print-env" ]]; then
  if command -v temporal >/dev/null 2>&1 && [[ -z "${CAUSEWAY_FORCE_BUILD:-}" ]]; then
    log "temporal: using $(command -v temporal) from PATH"
  else
    install_go_tool temporal "$TEMPORAL_VERSION" github.com/temporalio/cli/cmd/temporal temporal
  fi
  if command -v nats-server >/dev/null 2>&1 && [[ -z "${CAUSEWAY_FORCE_BUILD:-}" ]]; then
    log "nats-server: using $(command -v nats-server) from PATH"
  else
    install_go_tool nats-server "$NATS_VERSION" github.com/nats-io/nats-server/v2 nats-server
  fi
fi
echo "export PATH=\"$CACHE/temporal-$TEMPORAL_VERSION/bin:$CACHE/nats-server-$NATS_VERSION/bin:\$PATH\""
