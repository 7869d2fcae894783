#!/usr/bin/env bash
# The test command: sets up a fresh machine (Debian validators, Node 22, npm packages) and runs `npm test`.
#   ./scripts/test.sh            everything
#   ./scripts/test.sh <args>     passed to vitest, e.g. ./scripts/test.sh tests/components
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The user-data tests run Debian's real validators, and Dify's real API server needs PostgreSQL and Redis; a
# missing one is installed, never skipped.
missing=()
command -v cloud-init >/dev/null 2>&1 || missing+=(cloud-init)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The data-disk tests check the generated units with systemd-analyze and build disk images with sfdisk.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v sfdisk >/dev/null 2>&1 || missing+=(fdisk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The Docker repository key tests make throwaway keys and read them with gpg, as the bootstrap does.
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
# The bootstrap-status script runs under Ubuntu's awk (mawk) and Alibaba Cloud Linux's (gawk); the tests run both.
command -v mawk >/dev/null 2>&1 || missing+=(mawk)
command -v gawk >/dev/null 2>&1 || missing+=(gawk)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "test.sh: installing ${missing[*]} from Debian's packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
echo "test.sh: node $(node --version), npm $(npm --version)" >&2

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
# The policy pack is its own npm project (pulumi preview --policy-pack policy loads it from there).
if [ ! -d policy/node_modules ] || [ policy/package-lock.json -nt policy/node_modules/.package-lock.json ]; then
    npm ci --prefix policy --no-audit --no-fund
fi
# The end-to-end suite runs the real Pulumi engine: the CLI on PATH, or one built from Go modules (about
# 5 minutes the first time, cached in .cache/pulumi afterwards). The workflow tests lint with actionlint.
bash "$ROOT/scripts/pulumi-cli.sh"
bash "$ROOT/scripts/install-actionlint.sh"
# The compose-environment test renders Dify's project with the real Compose (built from Go modules when there
# is none, about 5 minutes the first time, cached in .cache/compose afterwards).
bash "$ROOT/scripts/compose-cli.sh" >/dev/null
# Dify's real API server runs in the tests from its own Python environment (uv sync of its uv.lock): built
# here once, cached in .cache/dify-python afterwards.
npm run build --silent
node dist/scripts/prepare-dify-python.js
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

status=0
rm -f .cache/test-results.json
if [ "$#" -gt 0 ]; then
    npm run build --silent
    npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/test-results.json "$@" || status=$?
else
    npm test || status=$?
fi
# One plain closing line with the counts (vitest's own summary is not in a form CI reads).
if [ -f .cache/test-results.json ]; then
    node -e '
        const r = require(process.argv[1]);
        console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
    ' "$ROOT/.cache/test-results.json"
fi
exit "$status"
