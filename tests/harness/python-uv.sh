# shellcheck shell=bash
# Sourced by the harness scripts that build a Python environment with uv (alibaba-sdk-python-env.sh,
# certbot-env.sh): Python 3.12 and uv found or installed one way. Needs ROOT and a `die` function.
#   find_python312   sets `python` (and `pyversion`), or dies naming the ways to provide one
#   ensure_uv        sets `uv`, installing uv $UV_VERSION from PyPI into .cache/uv/<version> when missing

UV_VERSION="0.13.9"

# Python 3.12, found where dify-python-env.sh looks (DIFY_PYTHON, python3.12 on PATH, pyenv); uv never
# downloads one (its downloads come from GitHub, which these machines cannot reach).
find_python312() {
    local candidate
    python=""
    for candidate in "${DIFY_PYTHON:-}" "$(command -v python3.12 2>/dev/null || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            python="$candidate"
            break
        fi
    done
    [ -n "$python" ] || die "no Python 3.12 found: set DIFY_PYTHON, put python3.12 on PATH, or install 3.12 with pyenv"
    # shellcheck disable=SC2034 # used by the sourcing script
    pyversion="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
}

# uv from PyPI, pinned, shared with the other Python environments. Built beside its final place and moved there in
# one step, so that a concurrent build never sees (or removes) a half-installed uv.
ensure_uv() {
    local staging
    uv="$ROOT/.cache/uv/$UV_VERSION/bin/uv"
    if [ ! -x "$uv" ]; then
        echo "installing uv $UV_VERSION from PyPI" >&2
        mkdir -p "$ROOT/.cache/uv"
        staging="$(mktemp -d "$ROOT/.cache/uv/.install-XXXXXX")"
        "$python" -m venv "$staging/venv" || die "could not create a virtual environment with $python"
        "$staging/venv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2 ||
            die "could not install uv $UV_VERSION from PyPI"
        mv -T "$staging/venv" "$ROOT/.cache/uv/$UV_VERSION" 2>/dev/null || true
        rm -rf "$staging"
        [ -x "$uv" ] || die "uv $UV_VERSION is not at $uv after installing it"
    fi
}
