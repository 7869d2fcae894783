#!/usr/bin/env bash
# Prints the exact cloud-init user data a stack's config produces, and nothing else, on stdout:
#   ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-...>] [--image-registry <host>] > user-data.yaml
#   ./scripts/render-userdata.sh <ha stack> --role app|singleton [--image-registry <host>] > user-data.yaml   (topology ha)
# Everything else (the Node.js set-up, the build, warnings, errors) goes to stderr; a bad config exits non-zero.
# `npm run --silent render:userdata -- <stack> ...` runs this script too. Without --silent, npm itself first prints
# its "> dify-mcp-stack@... render:userdata" banner on stdout, which is why this script is the documented command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
if [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund >&2
fi
# Compile only when a source is newer than the compiled script: repeated renders (and the tests, which run this
# beside others reading dist/) skip the build.
compiled=dist/scripts/render-userdata.js
if [ ! -f "$compiled" ] || [ package-lock.json -nt "$compiled" ] || [ tsconfig.json -nt "$compiled" ] ||
    [ tsconfig.build.json -nt "$compiled" ] ||
    [ -n "$(find components config rules dynamic-providers scripts -newer "$compiled" \( -name '*.ts' -o -name '*.sh' \) -print -quit)" ]; then
    npm run --silent build >&2
fi
exec node "$compiled" "$@"
