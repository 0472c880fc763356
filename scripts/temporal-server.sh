#!/usr/bin/env bash
# Builds (once) a real Temporal server, for the test that Causeway's clients and workers speak
# mTLS: `temporal server start-dev` has no TLS flags, the server binary has (config `global.tls`).
# v1.29.1 is the server the pinned CLI v1.5.1 embeds; its go.mod has no replace directives.
# Cached under ~/.cache/causeway/temporal-server-<version>/bin; prints the binary's path on stdout.
set -euo pipefail

VERSION="${CAUSEWAY_TEMPORAL_SERVER_VERSION:-v1.29.1}"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"
dir="$CACHE/temporal-server-$VERSION/bin"
mkdir -p "$CACHE"
exec {lock_fd}>"$CACHE/.lock-temporal-server-$VERSION"
command -v flock >/dev/null 2>&1 && flock "$lock_fd"
if [[ ! -x "$dir/temporal-server" ]]; then
  echo "[temporal-server] building go.temporal.io/server/cmd/server@$VERSION from the Go module proxy (first time only; ~10 min on 2 cores)" >&2
  tmp=$(mktemp -d "$CACHE/.build-temporal-server.XXXX")
  trap "rm -rf '$tmp'" EXIT
  GOBIN="$tmp" CGO_ENABLED=0 go install "go.temporal.io/server/cmd/server@$VERSION" >&2
  mkdir -p "$dir"
  mv "$tmp/server" "$dir/temporal-server"
fi
echo "$dir/temporal-server"
