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
RECIPE=1

log() { echo "alibaba-sdk-python-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$REQUIREMENTS" ] || die "$REQUIREMENTS is missing"
command -v flock >/dev/null || die "flock (util-linux) is required"

# shellcheck source=tests/harness/python-uv.sh
. "$ROOT/tests/harness/python-uv.sh"
find_python312

home="$ROOT/.cache/alibaba-sdk-python/$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
stamp="$home/.stamp"
stamp_key="recipe=$RECIPE uv=$UV_VERSION python=$python ($pyversion)"
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

ensure_uv

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
