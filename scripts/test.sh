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
    apt_updated=1
fi

# The ha topology keeps Dify's vectors in its RDS PostgreSQL (pgvector); tests/harness/real-dify-ha.test.ts runs
# Dify against a PostgreSQL with pgvector, where an account that is not a superuser creates it as ApsaraDB RDS
# lets its privileged account: that is pgextwlist's whitelist. Both are Debian's packages for the installed major,
# postgresql-<major>-pgvector and postgresql-<major>-pgextwlist. Debian 12's archive has no pgvector: there the
# package is built from Debian 13's source package (pgvector's own, with Debian's packaging) for this major.
pg_major="$(for bin in /usr/lib/postgresql/*/bin/postgres; do basename "$(dirname "$(dirname "$bin")")"; done | sort -n | tail -1)"
pg_missing=()
[ -f "/usr/share/postgresql/$pg_major/extension/vector.control" ] || pg_missing+=(pgvector)
[ -f "/usr/lib/postgresql/$pg_major/lib/plugins/pgextwlist.so" ] || pg_missing+=(pgextwlist)
if [ "${#pg_missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    apt_install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
    [ -n "${apt_updated:-}" ] || $sudo apt-get update -qq
    for extension in "${pg_missing[@]}"; do
        package="postgresql-$pg_major-$extension"
        # madison lists what the archives offer (not a locally installed build).
        if [ -n "$(apt-cache madison "$package")" ]; then
            echo "test.sh: installing $package from Debian's packages" >&2
            apt_install "$package"
        elif [ "$extension" = pgvector ]; then
            echo "test.sh: building $package from Debian 13's pgvector source package (about a minute, once)" >&2
            apt_install build-essential debhelper dpkg-dev "postgresql-server-dev-$pg_major" postgresql-server-dev-all
            # Debian's own mirror as this machine has it configured, for the source package only, in a private
            # apt state: the machine's package sources are left as they are.
            # shellcheck source=/dev/null
            codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
            # shellcheck disable=SC2016 # $(REPO_URI) is apt's placeholder, not the shell's
            mirror="$(apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' 'Label: Debian' "Codename: $codename" 'Created-By: Packages' | head -1)"
            [ -n "$mirror" ] || { echo "test.sh: no Debian archive configured to fetch pgvector's source package from" >&2; exit 1; }
            work="$(mktemp -d)"
            mkdir -p "$work/lists/partial"
            echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
            apt_source=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
            $sudo apt-get "${apt_source[@]}" update -qq
            (
                cd "$work"
                $sudo apt-get "${apt_source[@]}" source -qq pgvector >/dev/null
                cd pgvector-*/
                # The binary package's name follows the majors this machine supports (debian/control.in).
                $sudo pg_buildext updatecontrol
                # -d: the build needs the server headers of this major only (Build-Depends names them for every
                # major Debian 13 supports); nocheck: the upstream regression tests need a running server.
                $sudo env DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -uc -us -d >"$work/build.log" 2>&1 ||
                    { tail -30 "$work/build.log" >&2; exit 1; }
            )
            apt_install "$(ls "$work/$package"_*.deb)"
            $sudo rm -rf "$work"
        else
            echo "test.sh: Debian's archive has no $package" >&2
            exit 1
        fi
    done
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
