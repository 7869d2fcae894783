# Source this to point the Pulumi CLI at a local file backend, e.g. to try the program without a cloud backend:
#
#   source scripts/pulumi-local-backend.sh [STATE_DIR]      (default: .pulumi-state in the repository)
#   pulumi stack init dev && pulumi preview
#
# Sets PULUMI_BACKEND_URL=file://STATE_DIR and, unless already set, a PULUMI_CONFIG_PASSPHRASE for the
# passphrase secrets provider (change it for anything you keep). Puts the CLI on PATH via scripts/env.sh;
# run `bash scripts/pulumi-cli.sh` first on a machine without Pulumi.
# shellcheck shell=bash
dify_stack_scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$dify_stack_scripts/env.sh"

dify_stack_state="${1:-$DIFY_STACK_ROOT/.pulumi-state}"
mkdir -p "$dify_stack_state"
dify_stack_state="$(cd "$dify_stack_state" && pwd)"
export PULUMI_BACKEND_URL="file://$dify_stack_state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-passphrase-change-me}"
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
unset PULUMI_ACCESS_TOKEN
echo "Pulumi backend: $PULUMI_BACKEND_URL" >&2
unset dify_stack_scripts dify_stack_state
