#!/usr/bin/env bash
# Makes the Pulumi CLI and a Node.js language host available without downloading release binaries.
#
#   bash scripts/pulumi-cli.sh           use the `pulumi` on PATH, or build it into .cache/pulumi/bin
#   bash scripts/pulumi-cli.sh --check   exit 0 when a usable CLI is present, 1 otherwise; never builds
#
# Then `source scripts/env.sh` puts .cache/pulumi/bin on PATH when there is no other pulumi.
#
# A `pulumi` on PATH is used as is when it runs and has a Node.js language host beside it or on PATH (an
# official install has both). Otherwise we build, with this machine's Go toolchain and the Go module proxy:
#   - the CLI, github.com/pulumi/pulumi/pkg/v3/cmd/pulumi, at the release matching @pulumi/pulumi in
#     package-lock.json, or, when the proxy does not serve that release, the closest newer one it serves
#     (a CLI newer than the SDK is the supported direction); PULUMI_CLI_VERSION=v3.x.y overrides;
#   - the Node.js language host from scripts/pulumi-language-nodejs.go (see that file for why it is ours);
# in a generated wrapper module (.cache/pulumi/build), because pkg/v3 carries `replace` directives that make
# `go install mod@version` refuse it. The wrapper copies pkg's and sdk's non-local replaces.
# The dynamic-provider host (pulumi-resource-pulumi-nodejs) ships inside @pulumi/pulumi; we link it beside
# the CLI, where the engine looks for plugins.
# A stamp file records what was built; a second run with the same inputs does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

CACHE="$ROOT/.cache/pulumi"
BIN="$CACHE/bin"
BUILD="$CACHE/build"
CLI_MODULE="github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE="github.com/pulumi/pulumi/sdk/v3"
CLI_PACKAGE="$CLI_MODULE/cmd/pulumi"
VERSION_VAR="$SDK_MODULE/go/common/version.Version"
HOST_SOURCE="$ROOT/scripts/pulumi-language-nodejs.go"
DYNAMIC_PROVIDER="$ROOT/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
# Bump when the build recipe changes so existing caches rebuild.
RECIPE=1

log() { echo "pulumi-cli: $*" >&2; }
die() { log "error: $*"; exit 1; }

mode="ensure"
case "${1:-}" in
    "") ;;
    --check) mode="check" ;;
    *) die "unknown argument '$1' (expected nothing or --check)" ;;
esac

same_dir() { [ "$(cd "$1" 2>/dev/null && pwd -P)" = "$(cd "$2" 2>/dev/null && pwd -P)" ]; }

# An installed CLI that is not ours: use it when it works and can run Node.js programs.
if external="$(command -v pulumi 2>/dev/null)" && ! same_dir "$(dirname "$external")" "$BIN"; then
    if "$external" version >/dev/null 2>&1 &&
        { [ -x "$(dirname "$external")/pulumi-language-nodejs" ] || command -v pulumi-language-nodejs >/dev/null; }; then
        log "using $external ($("$external" version))"
        exit 0
    fi
    log "ignoring $external: it does not run, or has no pulumi-language-nodejs beside it or on PATH"
fi

[ -f "$ROOT/package-lock.json" ] || die "package-lock.json not found in $ROOT"
SDK_VERSION="v$(node -p 'require(process.argv[1]).packages["node_modules/@pulumi/pulumi"].version' \
    "$ROOT/package-lock.json")"
HOST_HASH="$(sha256sum "$HOST_SOURCE" | cut -c1-16)"
WANTED_CLI="${PULUMI_CLI_VERSION:-}"

# What a finished build records; the inputs are the SDK version, an explicit CLI version and the recipe.
stamp_key="recipe=$RECIPE sdk=$SDK_VERSION requested=${WANTED_CLI:-auto}"

link_dynamic_provider() {
    if [ -x "$DYNAMIC_PROVIDER" ]; then
        ln -sfn "$DYNAMIC_PROVIDER" "$BIN/pulumi-resource-pulumi-nodejs"
    else
        log "warning: $DYNAMIC_PROVIDER is missing (run npm ci); dynamic resources will not work"
    fi
}

built_is_current() {
    [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-nodejs" ] && [ -f "$BIN/.stamp" ] &&
        [ "$(sed -n 1p "$BIN/.stamp")" = "$stamp_key" ] &&
        [ "$(sed -n 3p "$BIN/.stamp")" = "host=$HOST_HASH" ] &&
        "$BIN/pulumi" version >/dev/null 2>&1
}

if built_is_current; then
    link_dynamic_provider
    log "up to date: $BIN/pulumi $(sed -n 2p "$BIN/.stamp") ($("$BIN/pulumi" version)); nothing to build"
    exit 0
fi
if [ "$mode" = "check" ]; then
    log "no usable pulumi CLI: run 'bash scripts/pulumi-cli.sh' to build it (expected sdk $SDK_VERSION)"
    exit 1
fi

command -v go >/dev/null || die "no pulumi on PATH and no Go toolchain to build it; install Go >= 1.26 or Pulumi"
command -v flock >/dev/null || die "flock (util-linux) is required"

mkdir -p "$BIN" "$BUILD"
# One build at a time: CI and a developer's test run may start this concurrently.
exec 9>"$CACHE/.lock"
flock 9
if built_is_current; then
    link_dynamic_provider
    log "built by a concurrent run: $BIN/pulumi ($("$BIN/pulumi" version))"
    exit 0
fi

cd "$BUILD"
# A throwaway module to run `go list`/`go mod download` in (they need a main module).
rm -f go.mod go.sum
go mod init dify-mcp-stack/pulumi-cli-build >/dev/null 2>&1

# Prints the GoMod path of module@version when the proxy serves its source, fails otherwise.
served_gomod() {
    local json
    json="$(go mod download -json "$1@$2" 2>/dev/null)" || return 1
    node -e 'const m = JSON.parse(process.argv[1]); if (m.Error || !m.Zip) process.exit(1); console.log(m.GoMod);' \
        "$json"
}

# Candidate CLI releases: the exact match first, then newer ones oldest first, then older ones newest first.
cli_candidates() {
    if [ -n "$WANTED_CLI" ]; then
        echo "$WANTED_CLI"
        return
    fi
    local all
    all="$(go list -m -versions "$CLI_MODULE" | tr ' ' '\n' | tail -n +2 | grep -v -- '-' | sort -V)"
    echo "$SDK_VERSION"
    printf '%s\n%s\n' "$all" "$SDK_VERSION" | sort -V | sed -n "/^${SDK_VERSION//./\\.}\$/,\$p" |
        grep -vx -- "$SDK_VERSION" || true
    printf '%s\n%s\n' "$all" "$SDK_VERSION" | sort -Vr | sed -n "/^${SDK_VERSION//./\\.}\$/,\$p" |
        grep -vx -- "$SDK_VERSION" || true
}

CLI_VERSION=""
PKG_GOMOD=""
for candidate in $(cli_candidates | awk '!seen[$0]++'); do
    if PKG_GOMOD="$(served_gomod "$CLI_MODULE" "$candidate")"; then
        CLI_VERSION="$candidate"
        break
    fi
    log "$CLI_MODULE@$candidate is not served by the module proxy"
done
[ -n "$CLI_VERSION" ] || die "the module proxy serves no usable $CLI_MODULE release"
[ "$CLI_VERSION" = "$SDK_VERSION" ] ||
    log "building CLI $CLI_VERSION for @pulumi/pulumi $SDK_VERSION (exact release not served)"
SDK_GOMOD="$(served_gomod "$SDK_MODULE" "$CLI_VERSION")" || die "$SDK_MODULE@$CLI_VERSION is not served"

# The wrapper module: requires pkg and sdk at the same release and repeats their non-local replaces
# (replaces of a dependency are ignored by Go; local ones like `sdk/v3 => ../sdk` are satisfied by the
# matching sdk release).
replace_flags() {
    go mod edit -json "$1" | node -e '
        const mod = JSON.parse(require("fs").readFileSync(0, "utf8"));
        for (const r of mod.Replace || []) {
            if (!r.New.Version) continue; // a local directory in the Pulumi repository
            const old = r.Old.Version ? `${r.Old.Path}@${r.Old.Version}` : r.Old.Path;
            console.log(`-replace=${old}=${r.New.Path}@${r.New.Version}`);
        }'
}
mapfile -t replaces < <(replace_flags "$PKG_GOMOD"; replace_flags "$SDK_GOMOD")
go mod edit -require="$CLI_MODULE@$CLI_VERSION" -require="$SDK_MODULE@$CLI_VERSION" "${replaces[@]}"
mkdir -p langhost
cp "$HOST_SOURCE" langhost/main.go
log "resolving dependencies of $CLI_PACKAGE@$CLI_VERSION"
go get -tool "$CLI_PACKAGE@$CLI_VERSION" >&2
go mod tidy >&2

ldflags="-s -w -X $VERSION_VAR=$CLI_VERSION"
start=$SECONDS
log "building pulumi $CLI_VERSION (cold builds take long on 2 cores)"
go build -trimpath -ldflags "$ldflags" -o "$BIN/pulumi.new" "$CLI_PACKAGE"
log "building pulumi-language-nodejs"
go build -trimpath -ldflags "$ldflags" -o "$BIN/pulumi-language-nodejs.new" ./langhost
mv "$BIN/pulumi.new" "$BIN/pulumi"
mv "$BIN/pulumi-language-nodejs.new" "$BIN/pulumi-language-nodejs"
link_dynamic_provider
printf '%s\ncli=%s\nhost=%s\n' "$stamp_key" "$CLI_VERSION" "$HOST_HASH" >"$BIN/.stamp"
log "built $BIN/pulumi ($("$BIN/pulumi" version)) in $((SECONDS - start))s"
