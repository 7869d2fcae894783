#!/usr/bin/env bash
# The main job: sets up a fresh machine and runs `pulumi up` for a stack.
#   ./scripts/up.sh <stack> [pulumi up flags...]        e.g. ./scripts/up.sh dev --yes
# State goes to the local file backend in .pulumi-state/ unless PULUMI_BACKEND_URL says otherwise (no Pulumi
# Cloud account needed). Secrets are encrypted with a passphrase: set PULUMI_CONFIG_PASSPHRASE or
# PULUMI_CONFIG_PASSPHRASE_FILE. Alibaba Cloud credentials come from the standard chain (environment,
# ~/.aliyun/config.json profile, OIDC, ECS RAM role); they are checked (scripts/check-credentials.ts) right after
# the npm packages, before the Pulumi CLI, any plugin or any pulumi command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stack="${1:-}"
if [ -z "$stack" ]; then
    echo "usage: ./scripts/up.sh <stack> [pulumi up flags...]   (stack config lives in Pulumi.<stack>.yaml)" >&2
    exit 2
fi
shift
if [ ! -f "Pulumi.$stack.yaml" ]; then
    echo "up.sh: there is no Pulumi.$stack.yaml; copy Pulumi.dev.yaml to start one" >&2
    exit 2
fi
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    echo "up.sh: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): it encrypts this stack's secrets" >&2
    exit 2
fi

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
# Which credentials each provider will use, or stop here, naming where it looked and the ways to provide some.
npm run --silent build
node dist/scripts/check-credentials.js "$stack"

bash "$ROOT/scripts/pulumi-cli.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
    mkdir -p "$ROOT/.pulumi-state"
    export PULUMI_BACKEND_URL="file://$ROOT/.pulumi-state"
fi
pulumi stack select --create "$stack" --secrets-provider passphrase

# Resource provider plugins at the versions package-lock.json pins. env.sh turns automatic downloads off (tests
# must not reach out), so a deployment installs them explicitly; this needs access to Pulumi's plugin host.
# command runs the opt-in smoke test at the end of up (smokeTestOnUp); installed always, so turning it on needs no set-up.
for package in alicloud random command; do
    version=$(node -p "require('./package-lock.json').packages['node_modules/@pulumi/$package'].version")
    if ! pulumi plugin ls 2>/dev/null | grep -Eq "^$package +resource +$version( |$)"; then
        pulumi plugin install resource "$package" "$version" || {
            echo "up.sh: could not install the $package $version provider plugin; install it with" \
                "'pulumi plugin install resource $package $version' on a machine that reaches Pulumi's plugin host" >&2
            exit 1
        }
    fi
done

# The DashScope key may come from the environment instead of `pulumi config set --secret`; it goes in
# through stdin, never on a command line.
if [ -n "${DASHSCOPE_API_KEY:-}" ] && ! pulumi config get dashscopeApiKey --stack "$stack" >/dev/null 2>&1; then
    printf '%s' "$DASHSCOPE_API_KEY" | pulumi config set --secret dashscopeApiKey --stack "$stack"
fi

pulumi up --stack "$stack" "$@"
