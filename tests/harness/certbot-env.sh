#!/usr/bin/env bash
# certbot from PyPI at the version given (rules/certbot.ts's CERTBOT_VERSION, the one the instance runs from the
# certbot/certbot image), with acme at the same version (acme is released on its own and certbot only asks for
# acme>=), in a Python 3.12 environment of its own, installed with uv. Built once into
# .cache/certbot/<version>/ and reused; prints two lines: the certbot executable, and "cached" or "built". Any
# failure exits non-zero with the reason on stderr (the tests then fail, never skip).
#
#   tests/harness/certbot-env.sh 5.8.0
#
# Python is found and uv installed as tests/harness/alibaba-sdk-python-env.sh does (.cache/uv/<version>, its
# download cache .cache/uv/cache). A stamp written last marks a complete build; concurrent callers wait on a lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECIPE=1

log() { echo "certbot-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

VERSION="${1:-}"
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: certbot-env.sh <major>.<minor>.<patch> (got '${VERSION}')"
command -v flock >/dev/null || die "flock (util-linux) is required"

# shellcheck source=tests/harness/python-uv.sh
. "$ROOT/tests/harness/python-uv.sh"
find_python312

home="$ROOT/.cache/certbot/$VERSION"
stamp="$home/.stamp"
stamp_key="recipe=$RECIPE uv=$UV_VERSION certbot=$VERSION acme=$VERSION python=$python ($pyversion)"
current() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ] && [ -x "$home/venv/bin/certbot" ]; }

if current; then
    printf '%s\ncached\n' "$home/venv/bin/certbot"
    exit 0
fi
mkdir -p "$ROOT/.cache/certbot"
exec 9>"$ROOT/.cache/certbot/.lock"
flock 9
if current; then
    printf '%s\ncached\n' "$home/venv/bin/certbot"
    exit 0
fi

ensure_uv

log "installing certbot==$VERSION acme==$VERSION into $home (uv, from PyPI)"
start=$SECONDS
rm -rf "$home"
mkdir -p "$home"
export UV_CACHE_DIR="$ROOT/.cache/uv/cache" UV_PYTHON_DOWNLOADS=never
"$uv" venv --quiet --python "$python" "$home/venv" >&2 || die "uv could not create a virtual environment with $python"
"$uv" pip install --quiet --python "$home/venv/bin/python" "certbot==$VERSION" "acme==$VERSION" >&2 ||
    die "uv could not install certbot==$VERSION acme==$VERSION from PyPI (see above)"
found="$("$home/venv/bin/certbot" --version 2>&1)" || die "the installed certbot does not run: $found"
[ "$found" = "certbot $VERSION" ] || die "the installed certbot reports '$found', not certbot $VERSION"
echo "$stamp_key" >"$stamp"
log "built in $((SECONDS - start)) s"
printf '%s\nbuilt\n' "$home/venv/bin/certbot"
