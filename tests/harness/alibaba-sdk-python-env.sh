#!/usr/bin/env bash
# The official Alibaba Cloud Python SDKs (alibaba-sdk-requirements.txt, every package pinned) in a Python 3.12
# environment of their own, installed from PyPI with uv. Built once into
# .cache/alibaba-sdk-python/<hash of the requirements>/ and reused; prints two lines: the interpreter, and
# "cached" or "built". Any failure exits non-zero with the reason on stderr (the test then fails, never skips).
#
#   tests/harness/alibaba-sdk-python-env.sh
#
# uv and its download cache are the ones dify-python-env.sh uses (.cache/uv/<version>, .cache/uv/cache). A
# stamp written last marks a complete build; concurrent callers wait on a lock instead of building twice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQUIREMENTS="$ROOT/tests/harness/alibaba-sdk-requirements.txt"
UV_VERSION="0.13.9"
RECIPE=1

log() { echo "alibaba-sdk-python-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$REQUIREMENTS" ] || die "$REQUIREMENTS is missing"
command -v flock >/dev/null || die "flock (util-linux) is required"

# Python 3.12, found where dify-python-env.sh looks (DIFY_PYTHON, python3.12 on PATH, pyenv); uv never
# downloads one (its downloads come from GitHub, which these machines cannot reach).
python=""
for candidate in "${DIFY_PYTHON:-}" "$(command -v python3.12 2>/dev/null || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
[ -n "$python" ] || die "no Python 3.12 found: set DIFY_PYTHON, put python3.12 on PATH, or install 3.12 with pyenv"
version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

home="$ROOT/.cache/alibaba-sdk-python/$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
stamp="$home/.stamp"
stamp_key="recipe=$RECIPE uv=$UV_VERSION python=$python ($version)"
current() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ] && [ -x "$home/venv/bin/python" ]; }

if current; then
    printf '%s\ncached\n' "$home/venv/bin/python"
    exit 0
fi
mkdir -p "$ROOT/.cache/alibaba-sdk-python"
exec 9>"$ROOT/.cache/alibaba-sdk-python/.lock"
flock 9
if current; then
    printf '%s\ncached\n' "$home/venv/bin/python"
    exit 0
fi

# uv from PyPI, pinned. Built beside its final place and moved there in one step, so that a concurrent
# dify-python-env.sh never sees (or removes) a half-installed uv.
uv="$ROOT/.cache/uv/$UV_VERSION/bin/uv"
if [ ! -x "$uv" ]; then
    log "installing uv $UV_VERSION from PyPI"
    mkdir -p "$ROOT/.cache/uv"
    staging="$(mktemp -d "$ROOT/.cache/uv/.install-XXXXXX")"
    "$python" -m venv "$staging/venv" || die "could not create a virtual environment with $python"
    "$staging/venv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2 ||
        die "could not install uv $UV_VERSION from PyPI"
    mv -T "$staging/venv" "$ROOT/.cache/uv/$UV_VERSION" 2>/dev/null || true
    rm -rf "$staging"
    [ -x "$uv" ] || die "uv $UV_VERSION is not at $uv after installing it"
fi

log "building the SDKs' environment in $home (uv pip sync from PyPI)"
start=$SECONDS
rm -rf "$home"
mkdir -p "$home"
export UV_CACHE_DIR="$ROOT/.cache/uv/cache" UV_PYTHON_DOWNLOADS=never
"$uv" venv --quiet --python "$python" "$home/venv" >&2 || die "uv could not create a virtual environment with $python"
# sync, not install: the file is the whole environment (every dependency pinned), nothing is resolved anew.
"$uv" pip sync --quiet --python "$home/venv/bin/python" "$REQUIREMENTS" >&2 ||
    die "uv could not install $REQUIREMENTS from PyPI (see above)"
"$home/venv/bin/python" -c 'import alibabacloud_ims20190815.client, alibabacloud_openapiexplorer20241130.client' ||
    die "the environment in $home cannot import the SDKs"
echo "$stamp_key" >"$stamp"
log "built in $((SECONDS - start)) s"
printf '%s\nbuilt\n' "$home/venv/bin/python"
