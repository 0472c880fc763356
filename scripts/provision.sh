#!/usr/bin/env bash
# Builds (once) the real infrastructure Causeway's dev stack and tests use, from the
# Go module proxy, because release-binary downloads are not reachable everywhere.
# Idempotent: binaries are cached under ~/.cache/causeway/<tool>-<version>/bin, and
# concurrent runs wait for each other instead of building the same tool twice.
#
# Contract: progress goes to stderr; stdout is exactly one `export PATH=...` line, so
#   eval "$(bash scripts/provision.sh)"
# puts the tools on PATH. `--print-env` prints that line without building anything.
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
  # One build per tool at a time: a second run (another terminal, jest's globalSetup)
  # waits here and then finds the binary the first one built.
  # (flock is util-linux; where it is missing, e.g. macOS, runs are simply not serialized.)
  local lock_fd
  exec {lock_fd}>"$CACHE/.lock-$name-$version"
  if command -v flock >/dev/null 2>&1 && ! flock -n "$lock_fd"; then
    log "$name $version: another provision run is building it; waiting"
    flock "$lock_fd"
  fi
  if [[ -x "$dir/$binary" ]]; then
    log "$name $version: built by another run at $dir/$binary"
    exec {lock_fd}>&-
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "$name: neither on PATH nor cached, and Go is not installed to build it."
    log "  fix: install Go >= 1.23 (https://go.dev/dl or apt-get install golang-go), or put $binary on PATH"
    exit 1
  fi
  log "$name $version: building $module@$version from the Go module proxy (first time only, a few minutes)"
  local started=$SECONDS
  mkdir -p "$dir"
  local tmp; tmp=$(mktemp -d "$CACHE/.build-$name.XXXX")
  # Never leave a half-built temp dir behind on failure or Ctrl-C.
  trap "rm -rf '$tmp'" EXIT
  GOBIN="$tmp" CGO_ENABLED=0 go install "$module@$version" >&2
  mv "$tmp/$binary" "$dir/$binary"
  rm -rf "$tmp"
  trap - EXIT
  exec {lock_fd}>&-
  log "$name $version: built $dir/$binary in $((SECONDS - started))s"
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
