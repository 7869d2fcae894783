#!/usr/bin/env bash
# The plan summary the GitOps workflows publish (pull-request comment, job summary, drift issue): what
# `pulumi preview|up|refresh|destroy --diff --color never` printed on STDOUT, cut down to the plan itself.
#
#   pulumi preview --stack dev --diff --color never --suppress-outputs > plan.txt   (stderr stays in the job log)
#   bash scripts/preview-summary.sh plan.txt > summary.txt                          (or: ... | bash scripts/preview-summary.sh)
#
# Kept: the "Previewing update (dev):" line, each resource with its operation, [urn=]/[id=]/[provider=] lines
# and property diffs (Pulumi already shows secret values as [secret]), policy violations, and the
# "Resources:" counts. Left out: everything else (program output, diagnostics, outputs, the policy-pack table).
#
# Redacted on top of what Pulumi masks, as a second line of defence:
#   - the value of any property whose name looks secret (password, secret, token, passphrase, api key,
#     access key, private key, credential, cookie), including multi-line and nested values;
#   - the value of each environment variable named in SUMMARY_SCRUB_VARS (default: the passphrase, the
#     backend URL and the STS credentials) wherever it appears;
#   - text shaped like an Alibaba Cloud AccessKey ID (LTAI…/STS.…), a DashScope key (sk-…) or a private key.
# The result is cut to SUMMARY_MAX_CHARS (default 60000; a GitHub comment holds 65,536), keeping the counts.
#
# Never feed this the output of `--json`: those streams carry the Node SDK's debug events, which hold
# secret outputs in plain text. The workflows never use --json.
set -euo pipefail

DEFAULT_SCRUB_VARS="PULUMI_CONFIG_PASSPHRASE PULUMI_BACKEND_URL ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_SECURITY_TOKEN ALICLOUD_ACCESS_KEY ALICLOUD_SECRET_KEY ALICLOUD_SECURITY_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN DIFY_ADMIN_PASSWORD"

if [ "$#" -gt 1 ]; then
    echo "usage: preview-summary.sh [FILE]   (reads stdin without FILE)" >&2
    exit 2
fi
input="${1:--}"
if [ "$input" != "-" ] && [ ! -r "$input" ]; then
    echo "preview-summary.sh: cannot read $input" >&2
    exit 2
fi

# Hand the values to awk through the environment (never on a command line, where `ps` would show them).
scrub_count=0
for name in ${SUMMARY_SCRUB_VARS:-$DEFAULT_SCRUB_VARS}; do
    if [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [ -n "${!name:-}" ]; then
        export "PREVIEW_SUMMARY_SCRUB_$scrub_count=${!name}"
        scrub_count=$((scrub_count + 1))
    fi
done
export PREVIEW_SUMMARY_SCRUB_COUNT="$scrub_count"
export PREVIEW_SUMMARY_MAX_CHARS="${SUMMARY_MAX_CHARS:-60000}"

# POSIX awk (the runners' mawk as well as gawk): no regex intervals, no gensub.
exec awk '
function indent(s) { match(s, /^ */); return RLENGTH }
# Column of the property name or resource type: after the indent and a diff marker ("+ ", "~ ", "+-", ...).
function keycol(s,   n, rest) {
    n = indent(s)
    rest = substr(s, n + 1)
    if (match(rest, /^(\+-|-\+|\+>|<=|=>|[-+~<>=*]) ?/)) n += RLENGTH
    return n
}
function replace_all(s, needle, with,   out, i) {
    out = ""
    while (needle != "" && (i = index(s, needle)) > 0) {
        out = out substr(s, 1, i - 1) with
        s = substr(s, i + length(needle))
    }
    return out s
}
# Replaces every match of the regular expression re (a string: a /re/ literal argument would be a match
# against $0) whose length is at least min with [redacted].
function redact_re(s, re, min,   out, piece) {
    out = ""
    while (match(s, re)) {
        piece = substr(s, RSTART, RLENGTH)
        out = out substr(s, 1, RSTART - 1) (RLENGTH >= min ? "[redacted]" : piece)
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}
function scrub(s,   i) {
    for (i = 0; i < nscrub; i++) s = replace_all(s, scrubs[i], "[redacted]")
    s = redact_re(s, "LTAI[A-Za-z0-9]+", 16)
    s = redact_re(s, "STS\\.[A-Za-z0-9]+", 20)
    s = redact_re(s, "sk-[A-Za-z0-9_-]+", 19)
    if (s ~ /-----BEGIN [A-Z ]*PRIVATE KEY-----/) s = "[redacted: private key]"
    return s
}
function emit_plan(s) { plan[nplan++] = scrub(s) }
function emit_counts(s) { counts[ncounts++] = scrub(s) }
BEGIN {
    nscrub = 0
    for (i = 0; i < ENVIRON["PREVIEW_SUMMARY_SCRUB_COUNT"] + 0; i++) {
        v = ENVIRON["PREVIEW_SUMMARY_SCRUB_" i]
        if (length(v) >= 4) scrubs[nscrub++] = v
    }
    max = ENVIRON["PREVIEW_SUMMARY_MAX_CHARS"] + 0
    secret_key = "pass(word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|cookie"
    section = ""; block = -1; hide = -1; policy = 0; dropped = 0; nplan = 0; ncounts = 0
}
{
    line = $0
    sub(/\r$/, "", line)
    gsub(/\033\[[0-9;]*[A-Za-z]/, "", line)
    blank = (line ~ /^[ \t]*$/)

    # "Previewing update (dev):", "Updating (dev):", "Previewing refresh (dev):", "Destroying (dev):" ...
    if (line ~ /^(Previewing|Updating|Refreshing|Destroying|Importing)( [a-z]+)? \([^()]*\):$/) {
        emit_plan(line); section = "plan"; block = -1; hide = -1; policy = 0; next
    }
    if (line ~ /^Resources:$/) { emit_counts(line); section = "counts"; next }
    # The other sections (Outputs:, Diagnostics:, Policies:, Policy Packs run:, Duration: ...) are left out.
    if (line ~ /^(Outputs|Diagnostics|Policies|Policy Violations|Policy Packs run|Duration|Permalink|Warnings?):/) {
        section = "other"; block = -1; hide = -1; policy = 0; dropped++; next
    }
    if (section == "counts") {
        if (line ~ /^ +([-+~<>]|\+-|-\+)? *[0-9]+ [a-z]/) emit_counts(line)
        else if (blank) section = ""
        else dropped++
        next
    }
    if (section != "plan") { if (!blank) dropped++; next }
    if (blank) next

    # Inside the value of a redacted property: skip its continuation lines and its closing bracket.
    if (hide >= 0) {
        col = keycol(line)
        if (col > hide) next
        if (col == hide && line ~ /^ *[]}] *$/) { hide = -1; next }
        hide = -1
    }
    # A resource and its operation: "    ~ alicloud:ecs/instance:Instance: (update)"
    if (line ~ /^ *((\+-|-\+|\+>|<=|[-+~<>=*]) ?)? *[A-Za-z0-9_.-]+:[A-Za-z0-9_.\/-]*:[A-Za-z0-9_.-]+: \([a-z][a-z -]*\)$/) {
        emit_plan(line); block = indent(line); policy = 0; next
    }
    # A policy violation: "    pack@v0.1.0 [mandatory]  rule-name  (type: name)"; its message follows at column 0.
    if (line ~ /^ +[^ ]+@v[0-9][^ ]* \[(mandatory|advisory|remediate|disabled)\] /) {
        emit_plan(line); policy = 1; next
    }
    if (policy && indent(line) == 0) { emit_plan("        " line); next }
    policy = 0
    if (block >= 0 && indent(line) > block) {
        col = keycol(line)
        rest = substr(line, col + 1)
        if (match(rest, /^"?[A-Za-z0-9_.$@\/-]+"? *: ?/)) {
            key = tolower(substr(rest, 1, RLENGTH))
            value = substr(rest, RLENGTH + 1)
            if (key ~ secret_key && value !~ /^\[secret\] *$/) {
                prefix = substr(line, 1, col) substr(rest, 1, RLENGTH)
                if (prefix !~ / $/) prefix = prefix " "
                emit_plan(prefix "[redacted]")
                hide = col
                next
            }
        }
        emit_plan(line); next
    }
    # Anything else (program output that reached stdout, unknown lines) is left out.
    block = -1; dropped++
}
END {
    used = 0; cut = 0
    for (i = 0; i < ncounts; i++) used += length(counts[i]) + 1
    used += 200
    for (i = 0; i < nplan; i++) {
        if (used + length(plan[i]) + 1 > max) { cut = nplan - i; break }
        print plan[i]; used += length(plan[i]) + 1
    }
    if (cut > 0) print "... (" cut " more lines of the plan left out: the full plan is in the job log)"
    for (i = 0; i < ncounts; i++) print counts[i]
    if (dropped > 0) print "(" dropped " other lines, such as program output and diagnostics, are only in the job log)"
}
' "$input"
