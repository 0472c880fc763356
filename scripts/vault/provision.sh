#!/usr/bin/env bash
# Builds (once) a real Vault server for the `vault` credential manager's test, from the Go
# module proxy: github.com/hashicorp/vault @ VAULT_VERSION through a wrapper module, because
# Vault's go.mod replaces its api/sdk modules with ./api, ./sdk (paths that exist only in its
# repository); the wrapper takes their published versions (the ones Vault's go.mod requires)
# and repeats Vault's two replaces of other modules. OpenBao's server and sdk/v2 modules are not served here
# (the proxy answers 403; only its api/v2 client is), see docs/security.md.
#
# Idempotent: the binary lands in ~/.cache/causeway/vault-<VERSION>/bin/vault; a second run
# does nothing. Contract (like scripts/k8s/provision.sh): progress to stderr; stdout is exactly
# `export CAUSEWAY_VAULT_BIN=<dir>`; `--print-env` prints it without building.
set -euo pipefail

VAULT_VERSION="${CAUSEWAY_VAULT_VERSION:-v1.21.4}"
CACHE="${CAUSEWAY_CACHE:-$HOME/.cache/causeway}"
DIR="$CACHE/vault-$VAULT_VERSION"
BIN="$DIR/bin"
LOCK="$CACHE/.lock-vault-$VAULT_VERSION"

log() { echo "[vault provision $(date +%H:%M:%S)] $*" >&2; }
print_env() { echo "export CAUSEWAY_VAULT_BIN=\"$BIN\""; }

if [[ "${1:-}" == "--print-env" ]]; then print_env; exit 0; fi
mkdir -p "$CACHE"
if [[ -x "$BIN/vault" ]]; then log "cached: $BIN"; print_env; exit 0; fi

exec {lock_fd}>"$LOCK"
if command -v flock >/dev/null 2>&1 && ! flock -n "$lock_fd"; then
  log "another run is building $DIR; waiting"
  flock "$lock_fd"
fi
if [[ -x "$BIN/vault" ]]; then log "built by another run: $BIN"; print_env; exit 0; fi

command -v go >/dev/null 2>&1 || { log "Go is required to build vault (none cached at $BIN)"; exit 1; }
# Low priority, so the build does not starve tests running beside it.
GO=(nice -n "${CAUSEWAY_BUILD_NICE:-10}" go)
export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN"
WORK=$(mktemp -d "$CACHE/.build-vault.XXXX")
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS

vmod=$("${GO[@]}" mod download -json "github.com/hashicorp/vault@$VAULT_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
{
  echo "module causeway.local/build/vault"
  echo
  awk '$1 == "go" { print; exit }' "$vmod"
  echo
  echo "require github.com/hashicorp/vault $VAULT_VERSION"
  echo
  # Vault's replaces of other modules (not its ./ paths) apply only in its own go.mod: repeat them.
  awk '$1 == "replace" && $0 !~ /=> \.\// { print }' "$vmod"
} >"$WORK/go.mod"
log "vault $VAULT_VERSION: resolving modules"
(cd "$WORK" && "${GO[@]}" get "github.com/hashicorp/vault@$VAULT_VERSION" >&2)
log "vault $VAULT_VERSION: compiling (modules resolved after $((SECONDS - started))s)"
(cd "$WORK" && "${GO[@]}" build -trimpath -ldflags "-s -w" -o "$WORK/vault" github.com/hashicorp/vault >&2)
mv "$WORK/vault" "$BIN/vault"
log "vault $VAULT_VERSION: built in $((SECONDS - started))s"
print_env
