#!/usr/bin/env bash
# Makes the Docker Compose CLI available without downloading release binaries, and prints the path of an
# executable that runs as the standalone `docker-compose` (the Compose plugin binary does both).
#
#   bash scripts/compose-cli.sh           print a usable Compose, building it into .cache/compose/bin if needed
#   bash scripts/compose-cli.sh --check   print it and exit 0 when one is usable, exit 1 otherwise; never builds
#
# Used as is, in this order, when it runs and is at least $MIN_VERSION (the bootstrap's override file uses the
# `!override` YAML tag, which Compose understands from 2.24): the `docker compose` plugin (its binary, found
# where the docker CLI looks for plugins), then a `docker-compose` on PATH. `docker compose config` needs no
# Docker engine, so no daemon is required.
#
# Otherwise we build github.com/docker/compose/v5 (the successor of .../v2; `cmd/` is its main package) with
# this machine's Go toolchain and the Go module proxy: the release pinned below, or, when the proxy does not
# serve it or this Go is too old for it, the newest stable release that the proxy serves and this Go can build
# (never a Go toolchain download: GOTOOLCHAIN=local). COMPOSE_CLI_VERSION=v5.x.y overrides the pin.
# The build runs in a copy of the release's module source (.cache/compose/src) as the main module, so its own
# go.mod and go.sum decide every dependency (`go install module@version` refuses it: its go.mod has exclude
# directives). A stamp records what was built; a second run does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/compose"
BIN="$CACHE/bin"
MODULE="github.com/docker/compose/v5"
PINNED_VERSION="v5.6.0"
WANTED="${COMPOSE_CLI_VERSION:-$PINNED_VERSION}"
MIN_VERSION="2.24.0"
# Bump when the build recipe changes so existing caches rebuild.
RECIPE=1
stamp_key="recipe=$RECIPE module=$MODULE requested=$WANTED"

log() { echo "compose-cli: $*" >&2; }
die() { log "error: $*"; exit 1; }

mode="ensure"
case "${1:-}" in
    "") ;;
    --check) mode="check" ;;
    *) die "unknown argument '$1' (expected nothing or --check)" ;;
esac

# version_of BINARY: the version a standalone Compose binary reports (e.g. 2.40.3, 5.6.0), or fails.
version_of() {
    local v
    v="$("$1" version --short 2>/dev/null)" || return 1
    v="${v#v}"
    [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || return 1
    echo "${BASH_REMATCH[0]}"
}

recent_enough() {
    [ "$(printf '%s\n%s\n' "$MIN_VERSION" "$1" | sort -V | head -n1)" = "$MIN_VERSION" ]
}

# usable BINARY: runs, reports a version, and is recent enough; logs why not.
usable() {
    local v
    [ -x "$1" ] || return 1
    if ! v="$(version_of "$1")"; then
        log "ignoring $1: it does not run as docker-compose"
        return 1
    fi
    if ! recent_enough "$v"; then
        log "ignoring $1: Compose $v is older than $MIN_VERSION"
        return 1
    fi
}

# The docker CLI's plugin folders, in the order it searches them.
plugin_candidates() {
    echo "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
    local dir
    for dir in /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins \
        /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
        echo "$dir/docker-compose"
    done
}

same_file() { [ "$(readlink -f "$1")" = "$(readlink -f "$2")" ]; }

# An installed Compose that is not ours.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    while read -r candidate; do
        if [ -x "$candidate" ] && usable "$candidate"; then
            log "using the docker compose plugin $candidate ($(version_of "$candidate"))"
            echo "$candidate"
            exit 0
        fi
    done < <(plugin_candidates)
fi
if external="$(command -v docker-compose 2>/dev/null)" && ! same_file "$external" "$BIN/docker-compose" &&
    usable "$external"; then
    log "using $external ($(version_of "$external"))"
    echo "$external"
    exit 0
fi

built_is_current() {
    [ -x "$BIN/docker-compose" ] && [ -f "$BIN/.stamp" ] &&
        [ "$(sed -n 1p "$BIN/.stamp")" = "$stamp_key" ] &&
        version_of "$BIN/docker-compose" >/dev/null
}

if built_is_current; then
    log "up to date: $BIN/docker-compose ($(version_of "$BIN/docker-compose")); nothing to build"
    echo "$BIN/docker-compose"
    exit 0
fi
if [ "$mode" = "check" ]; then
    log "no usable Docker Compose (>= $MIN_VERSION): run 'bash scripts/compose-cli.sh' to build $MODULE@$WANTED" \
        "into $BIN with Go, or install the docker-compose-plugin package"
    exit 1
fi

command -v go >/dev/null || die "no Docker Compose and no Go toolchain to build it; install Go or docker-compose-plugin"
command -v flock >/dev/null || die "flock (util-linux) is required"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

mkdir -p "$BIN"
# One build at a time: CI and a developer's test run may start this concurrently.
exec 9>"$CACHE/.lock"
flock 9
if built_is_current; then
    log "built by a concurrent run: $BIN/docker-compose ($(version_of "$BIN/docker-compose"))"
    echo "$BIN/docker-compose"
    exit 0
fi

GO_VERSION="$(go env GOVERSION)"
GO_VERSION="${GO_VERSION#go}"

# json_field NAME: a string field of the JSON object `go mod download -json` prints on stdin.
json_field() {
    sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

# go_directive VERSION: the Go version a release's go.mod requires, when the proxy serves the release.
go_directive() {
    local gomod
    gomod="$(go mod download -json "$MODULE@$1" 2>/dev/null | json_field GoMod)" || true
    [ -n "$gomod" ] && [ -f "$gomod" ] || return 1
    sed -n 's/^go \([0-9.]*\).*$/\1/p' "$gomod" | head -n1
}

# Candidates: the requested release, then every stable release the proxy serves, newest first.
candidates() {
    echo "$WANTED"
    [ -n "${COMPOSE_CLI_VERSION:-}" ] && return
    (cd "$CACHE" && go list -m -versions "$MODULE" 2>/dev/null) | tr ' ' '\n' | tail -n +2 | grep -v -- '-' |
        sort -Vr || true
}

VERSION=""
for candidate in $(candidates | awk '!seen[$0]++'); do
    if ! needs="$(go_directive "$candidate")" || [ -z "$needs" ]; then
        log "$MODULE@$candidate is not served by the module proxy"
        continue
    fi
    if [ "$(printf '%s\n%s\n' "$needs" "$GO_VERSION" | sort -V | tail -n1)" != "$GO_VERSION" ]; then
        log "$MODULE@$candidate needs Go $needs; this Go is $GO_VERSION"
        continue
    fi
    VERSION="$candidate"
    break
done
[ -n "$VERSION" ] || die "the module proxy serves no $MODULE release that Go $GO_VERSION can build (wanted $WANTED)"
[ "$VERSION" = "$WANTED" ] || log "building $VERSION instead of $WANTED"

start=$SECONDS
log "building docker-compose $VERSION with Go $GO_VERSION (a cold build takes minutes on 2 cores)"
module_dir="$(go mod download -json "$MODULE@$VERSION" | json_field Dir)"
[ -f "$module_dir/go.mod" ] || die "go mod download $MODULE@$VERSION gave no module source"
rm -rf "$CACHE/src"
cp -R "$module_dir" "$CACHE/src"
chmod -R u+w "$CACHE/src"
(cd "$CACHE/src" && go build -trimpath -ldflags "-s -w -X $MODULE/internal.Version=$VERSION" \
    -o "$BIN/docker-compose.new" ./cmd) >&2
mv "$BIN/docker-compose.new" "$BIN/docker-compose"
rm -rf "$CACHE/src"
printf '%s\nbuilt=%s\ngo=%s\n' "$stamp_key" "$VERSION" "$GO_VERSION" >"$BIN/.stamp"
log "built $BIN/docker-compose ($(version_of "$BIN/docker-compose")) in $((SECONDS - start))s"
echo "$BIN/docker-compose"
