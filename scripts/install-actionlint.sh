#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow linter used by tests/gitops) into .cache/bin, building it
# with this machine's Go toolchain from the Go module proxy. Does nothing when that version is already there.
#
#   bash scripts/install-actionlint.sh        then tests find .cache/bin/actionlint
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.7.12"
BIN="$ROOT/.cache/bin"

if [ -x "$BIN/actionlint" ] && "$BIN/actionlint" -version 2>/dev/null | head -n 1 | grep -qx "$VERSION"; then
    echo "actionlint $VERSION: $BIN/actionlint (already installed)" >&2
    exit 0
fi
command -v go >/dev/null || { echo "install-actionlint: Go is required (go install from the module proxy)" >&2; exit 1; }
mkdir -p "$BIN"
GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
echo "actionlint $("$BIN/actionlint" -version | head -n 1): $BIN/actionlint" >&2
