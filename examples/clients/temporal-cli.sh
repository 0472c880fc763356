#!/usr/bin/env bash
# A build started with the Temporal CLI (docs/client.md). Usage: temporal-cli.sh PLAN.yml [causeway compile flags]
# Env: TEMPORAL_ADDRESS (default localhost:7233), CAUSEWAY_TASK_QUEUE (default causeway),
# CAUSEWAY_CODEC_ENDPOINT and CAUSEWAY_CODEC_TOKEN: the codec server that en/decrypts payloads (docs/security.md).
set -euo pipefail
codec=()
[[ -n "${CAUSEWAY_CODEC_ENDPOINT:-}" ]] && codec=(--codec-endpoint "$CAUSEWAY_CODEC_ENDPOINT" --codec-auth "Bearer ${CAUSEWAY_CODEC_TOKEN:-}")
here=$(cd "$(dirname "$0")" && pwd)
input=$(mktemp)
trap 'rm -f "$input"' EXIT
"$here/../../bin/causeway" compile "$@" > "$input"
id="build-$(cat /proc/sys/kernel/random/uuid)"
temporal workflow start --address "${TEMPORAL_ADDRESS:-localhost:7233}" "${codec[@]}" --type build \
  --task-queue "${CAUSEWAY_TASK_QUEUE:-causeway}" --workflow-id "$id" --input-file "$input" >/dev/null
echo "started $id"
# Prints the result (the build summary) or the failure (BuildFailed / BuildErrored) and exits non-zero on failure.
temporal workflow result --address "${TEMPORAL_ADDRESS:-localhost:7233}" "${codec[@]}" --workflow-id "$id"
