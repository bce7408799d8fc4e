#!/usr/bin/env bash
# Runs Azurite's blob service (npm azurite, pinned in the repo's package.json) on the loopback port the AppHost chose.
# Inputs (environment): AZURITE_BLOB_PORT; IFCB_STATE_DIR (optional; persistent data lives there, else a temporary
# directory that is deleted on exit).
set -euo pipefail
: "${AZURITE_BLOB_PORT:?}"
root=$(cd "$(dirname "$0")/../.." && pwd)
azurite=$root/node_modules/.bin/azurite-blob
if [[ ! -x $azurite ]]; then
  echo "Azurite is not installed: run 'npm ci' in $root (see README.md)" >&2
  exit 69
fi
if [[ -n "${IFCB_STATE_DIR:-}" ]]; then
  location=$IFCB_STATE_DIR/azurite
  mkdir -p "$location"
  exec "$azurite" --blobHost 127.0.0.1 --blobPort "$AZURITE_BLOB_PORT" --location "$location" --skipApiVersionCheck --loose --silent
fi
location=$(mktemp -d -t ifcb-azurite.XXXXXX)
trap 'kill -TERM $child 2>/dev/null; wait $child 2>/dev/null; rm -rf "$location"' TERM INT HUP EXIT
"$azurite" --blobHost 127.0.0.1 --blobPort "$AZURITE_BLOB_PORT" --location "$location" --skipApiVersionCheck --loose --silent &
child=$!
wait $child
