#!/usr/bin/env bash
# Dify's API server needs its own Python environment: Python 3.12 (api/pyproject.toml: ~=3.12.0) and the
# packages api/uv.lock pins. This builds it once into .cache/dify-python/<uv.lock hash>-py<version>/ and
# prints three lines: the interpreter, the api/ folder it runs from, and "cached" or "built".
#
#   tests/harness/dify-python-env.sh <api-source-dir>
#
# The api/ source is copied beside the environment because uv installs Dify's workspace members (vector
# store and tracing providers) as editable packages that point into it. A stamp written last marks a complete
# build; concurrent callers wait on a lock instead of building twice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
UV_VERSION="0.13.9"
RECIPE=1

log() { echo "dify-python-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

src="${1:-}"
[ -n "$src" ] && [ -f "$src/uv.lock" ] && [ -f "$src/pyproject.toml" ] || die "usage: $0 <dify api/ folder with uv.lock>"
command -v flock >/dev/null || die "flock (util-linux) is required"

# A Python 3.12: DIFY_PYTHON, python3.12 on PATH, or one under pyenv. uv's own Python downloads come from
# GitHub, which these machines cannot reach, so we never ask uv to fetch one.
find_python() {
    local candidate
    if [ -n "${DIFY_PYTHON:-}" ]; then
        echo "$DIFY_PYTHON"
        return
    fi
    # pyenv's shims are on PATH even when they would refuse to run 3.12: try each candidate.
    if candidate="$(command -v python3.12 2>/dev/null)" && "$candidate" -c '' 2>/dev/null; then
        echo "$candidate"
        return
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    return 1
}
python="$(find_python)" ||
    die "no Python 3.12 found (Dify's api/pyproject.toml requires ~=3.12.0): set DIFY_PYTHON, put python3.12 on PATH, or install 3.12 with pyenv"
version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || die "$python does not run"
case "$version" in 3.12.*) ;; *) die "$python is Python $version; Dify needs 3.12" ;; esac

lock_hash="$(sha256sum "$src/uv.lock" | cut -c1-16)"
home="$ROOT/.cache/dify-python/$lock_hash-py$version"
stamp="$home/.stamp"
stamp_key="recipe=$RECIPE uv=$UV_VERSION python=$python"

report() {
    echo "$home/venv/bin/python"
    echo "$home/api"
    echo "$1"
}

current() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ] && [ -x "$home/venv/bin/python" ]; }

if current; then
    report cached
    exit 0
fi
mkdir -p "$ROOT/.cache/dify-python"
exec 9>"$ROOT/.cache/dify-python/.lock"
flock 9
if current; then
    report cached
    exit 0
fi

# uv from PyPI, pinned, in its own small environment.
uv_home="$ROOT/.cache/uv/$UV_VERSION"
if [ ! -x "$uv_home/bin/uv" ]; then
    log "installing uv $UV_VERSION from PyPI"
    rm -rf "$uv_home"
    "$python" -m venv "$uv_home"
    "$uv_home/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

log "building Dify's Python environment in $home (uv sync --frozen --no-dev; a few minutes the first time)"
start=$SECONDS
rm -rf "$home"
mkdir -p "$home"
cp -r "$src" "$home/api"
chmod -R u+w "$home/api"
(
    cd "$home/api"
    UV_PROJECT_ENVIRONMENT="$home/venv" UV_PYTHON="$python" UV_PYTHON_DOWNLOADS=never \
        UV_CACHE_DIR="$ROOT/.cache/uv/cache" \
        "$uv_home/bin/uv" sync --frozen --no-dev --quiet >&2
)
"$home/venv/bin/python" -c 'import flask, sqlalchemy, pydantic_settings' || die "the environment in $home is incomplete"
echo "$stamp_key" >"$stamp"
log "built in $((SECONDS - start)) s"
report built
