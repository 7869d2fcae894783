#!/usr/bin/env bash
# Pebble, Let's Encrypt's ACME test server, for the certificate tests: github.com/letsencrypt/pebble/v2 at the
# version given, built with this machine's Go toolchain from the Go module proxy (never a toolchain download:
# GOTOOLCHAIN=local), as scripts/compose-cli.sh builds Compose. Built once into .cache/pebble/<version>/ with the
# module's test certificates beside it (the listener's certificate and key, and the minica root that signed
# them), and reused; prints three lines: the binary, the certificate folder, and "cached" or "built". Any failure
# exits non-zero with the reason on stderr (the tests then fail, never skip).
#
#   tests/harness/pebble-env.sh v2.10.3
#
# A stamp written last marks a complete build; concurrent callers wait on a lock instead of building twice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODULE="github.com/letsencrypt/pebble/v2"
# Bump when the recipe changes so existing caches rebuild.
RECIPE=1

log() { echo "pebble-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

VERSION="${1:-}"
[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: pebble-env.sh v<major>.<minor>.<patch> (got '${VERSION}')"
command -v go >/dev/null || die "no Go toolchain: Pebble is built from the Go module proxy (install Go 1.25 or later)"
command -v flock >/dev/null || die "flock (util-linux) is required"

home="$ROOT/.cache/pebble/$VERSION"
stamp="$home/.stamp"
stamp_key="recipe=$RECIPE module=$MODULE@$VERSION"
current() {
    [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$stamp_key" ] && [ -x "$home/bin/pebble" ] &&
        [ -f "$home/certs/pebble.minica.pem" ] && [ -f "$home/certs/localhost/cert.pem" ] && [ -f "$home/certs/localhost/key.pem" ]
}

if current; then
    printf '%s\n%s\ncached\n' "$home/bin/pebble" "$home/certs"
    exit 0
fi
mkdir -p "$ROOT/.cache/pebble"
exec 9>"$ROOT/.cache/pebble/.lock"
flock 9
if current; then
    printf '%s\n%s\ncached\n' "$home/bin/pebble" "$home/certs"
    exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
start=$SECONDS
log "building $MODULE/cmd/pebble@$VERSION with $(go env GOVERSION) (about a minute the first time)"
rm -rf "$home"
mkdir -p "$home/bin"
GOBIN="$home/bin" go install -trimpath "$MODULE/cmd/pebble@$VERSION" >&2 ||
    die "go install $MODULE/cmd/pebble@$VERSION failed (see above; Pebble $VERSION needs the Go its go.mod names)"
[ -x "$home/bin/pebble" ] || die "go install left no $home/bin/pebble"
# The module's own test certificates: Pebble's HTTPS listener serves test/certs/localhost (localhost, pebble,
# 127.0.0.1), signed by test/certs/pebble.minica.pem. The module cache is read-only and may be cleaned: copy them.
module_dir="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -f "$module_dir/test/certs/pebble.minica.pem" ] || die "go mod download $MODULE@$VERSION gave no test/certs (module dir: '${module_dir}')"
mkdir -p "$home/certs/localhost"
cp "$module_dir/test/certs/pebble.minica.pem" "$home/certs/"
cp "$module_dir/test/certs/localhost/cert.pem" "$module_dir/test/certs/localhost/key.pem" "$home/certs/localhost/"
chmod -R u+w "$home/certs"
printf '%s\nbuilt-with=%s\n' "$stamp_key" "$(go env GOVERSION)" >"$stamp"
log "built in $((SECONDS - start)) s"
printf '%s\n%s\nbuilt\n' "$home/bin/pebble" "$home/certs"
