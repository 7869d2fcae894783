// The instance's bootstrap status as the readiness check reads it through Cloud Assistant: the shell script that
// reads it on the instance, and the parsing of what that script prints. The status file is written by
// components/bootstrap/bootstrap.sh (set_status): "state=", "step=", "detail=", "updated=" and "settings=" lines.

/** Where the bootstrap keeps its status and log; the same defaults and overrides as bootstrap.sh. */
const STATE_DIR = "${DIFY_BOOTSTRAP_STATE_DIR:-/var/lib/dify-bootstrap}";
const LOG_FILE = "${DIFY_BOOTSTRAP_LOG:-/var/log/dify-bootstrap.log}";
const CONFIG_FILE = "${DIFY_BOOTSTRAP_CONFIG:-/etc/dify-bootstrap/bootstrap.env}";
const SECRETS_FILE = "${DIFY_BOOTSTRAP_DATA_MOUNT:-/data}/dify/secrets.env";

/** Marks the start of the log's tail in the script's output. */
const LOG_TAIL_MARKER = "--- log tail ---";

/** Lines of /var/log/dify-bootstrap.log a failure report carries. */
export const LOG_TAIL_LINES = 40;

/**
 * The script Cloud Assistant runs (as root): the status file, or "state=absent" before the bootstrap wrote one, and
 * after a failure the log's last lines; every value of the Dify secrets file and the INIT_PASSWORD in them is
 * replaced by "[redacted]" on the instance, before anything leaves it.
 */
export const BOOTSTRAP_STATUS_SCRIPT = `status="${STATE_DIR}/status"
init="$(grep '^DIFY_INIT_PASSWORD=' "${CONFIG_FILE}" 2>/dev/null)"
{
    if [ -f "$status" ]; then cat "$status"; else echo state=absent; fi
    if grep -qx state=failed "$status" 2>/dev/null; then
        echo '${LOG_TAIL_MARKER}'
        tail -n ${LOG_TAIL_LINES} "${LOG_FILE}" 2>/dev/null
    fi
} | awk -v init="$init" -v secrets="${SECRETS_FILE}" '
    function keep(line,   i, v) {
        i = index(line, "="); if (i == 0) return
        v = substr(line, i + 1); gsub(/^\\047|\\047$/, "", v)
        if (length(v) >= 6) hidden[v] = 1
    }
    BEGIN { keep(init); while ((getline line < secrets) > 0) keep(line) }
    { line = $0
      for (s in hidden) { while ((p = index(line, s)) > 0) line = substr(line, 1, p - 1) "[redacted]" substr(line, p + length(s)) }
      print line }'
`;

export type BootstrapState = "absent" | "running" | "done" | "failed";

/** What the status script printed, parsed. */
export interface BootstrapStatus {
    /** "absent": the bootstrap has not written a status (it has not started, or cloud-init never ran it). */
    state: BootstrapState;
    /** The step, e.g. "installing Docker", "pulling images". */
    step: string;
    /** Progress within the step, or why it failed. */
    detail: string;
    /** When the bootstrap wrote the status (UTC, ISO 8601), as the instance's clock has it. */
    updated: string;
    /**
     * The settings digest of the run that wrote the status (DIFY_SETTINGS_DIGEST, see renderBootstrapApplication in
     * components/bootstrap/userdata.ts); "" when the bootstrap predates it or had not read its settings yet.
     */
    settings: string;
    /** After a failure: the log's last lines, redacted. */
    logTail: string[];
}

const STATES: readonly BootstrapState[] = ["absent", "running", "done", "failed"];

/** Parses the status script's output; anything it does not recognise is "absent" with the text as detail. */
export function parseBootstrapStatus(output: string): BootstrapStatus {
    const [head, tail] = splitOnce(output, `${LOG_TAIL_MARKER}\n`);
    const fields = new Map<string, string>();
    for (const line of head.split("\n")) {
        const match = /^(state|step|detail|updated|settings)=(.*)$/.exec(line);
        if (match && !fields.has(match[1])) {
            fields.set(match[1], match[2]);
        }
    }
    const state = fields.get("state") as BootstrapState | undefined;
    return {
        state: state !== undefined && STATES.includes(state) ? state : "absent",
        step: fields.get("step") ?? "",
        detail: redactText(fields.get("detail") ?? (state === undefined ? head.trim().slice(0, 200) : "")),
        updated: fields.get("updated") ?? "",
        settings: fields.get("settings") ?? "",
        logTail: tail === undefined ? [] : redactText(tail).split("\n").filter((line) => line.trim() !== ""),
    };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
    const at = text.indexOf(separator);
    return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

/**
 * A second, pattern-based redaction here, for secrets the instance could not know by value: assignments to
 * names that say PASSWORD, SECRET, TOKEN or KEY, DashScope keys and Alibaba access key ids.
 */
export function redactText(text: string): string {
    return text
        .replace(/\b([A-Za-z0-9_]*(?:PASSWORD|SECRET|TOKEN|_KEY|APIKEY)[A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S+)/gi, "$1=[redacted]")
        .replace(/\bsk-[A-Za-z0-9]{16,}\b/g, "[redacted]")
        .replace(/\bLTAI[A-Za-z0-9]{12,}\b/g, "[redacted]");
}

/**
 * Why `up` stopped: the instance, the failed step and its reason, what to do (`advice`, a sentence), and the log's
 * last lines. Shared by the readiness check and the instance configuration, so both say it the same way.
 */
export function bootstrapFailureMessage(instanceId: string, status: BootstrapStatus, advice: string): string {
    const tail = status.logTail.length > 0 ? `\nLast lines of /var/log/dify-bootstrap.log (secrets redacted):\n  ${status.logTail.join("\n  ")}` : "";
    return `The bootstrap on instance ${instanceId} failed at "${status.step}": ${status.detail}. ${advice}${tail}`;
}

/** One line for `pulumi up`'s output: "pulling images (5/11: langgenius/dify-api:1.14.1 (1.2 GB so far))". */
export function describeBootstrapStatus(status: BootstrapStatus): string {
    if (status.state === "absent") {
        return "the bootstrap has not started yet";
    }
    return status.detail === "" ? status.step : `${status.step} (${status.detail})`;
}

// ----- Reading it through Cloud Assistant --------------------------------------------------------------------

/** What one look at the instance found. */
export type BootstrapObservation =
    | { kind: "status"; status: BootstrapStatus }
    /** Cloud Assistant's agent on the instance is not reporting: the instance is not up (yet). */
    | { kind: "agent-offline"; everReported: boolean }
    /** The look itself failed (the command timed out, an unexpected answer): try again next time. */
    | { kind: "unreadable"; reason: string };

/** How long one status command may take on the instance, and how often its result is asked for. */
const COMMAND_TIMEOUT_SECONDS = 30;
const RESULT_POLL_MS = 1000;

/** The calls the reader needs (cloud-assistant-api.ts provides them; tests may substitute). */
export interface CloudAssistantCalls {
    cloudAssistantStatus(request: { regionId: string; instanceId: string }): Promise<{ online: boolean; everReported: boolean } | undefined>;
    runShellScript(request: { regionId: string; instanceId: string; script: string; timeoutSeconds: number; name: string }): Promise<{ invokeId: string }>;
    describeInvocationResult(request: { regionId: string; invokeId: string; instanceId: string }): Promise<
        { status: string; exitCode?: number; output: string; errorCode?: string; errorInfo?: string } | undefined
    >;
}

/** Invocation result codes that mean the agent or the instance is not ready (cloud-assistant-api.ts). */
export interface CloudAssistantErrors {
    isInstanceNotReadyError(err: unknown): boolean;
    notReadyResultCodes: readonly string[];
}

const FINAL_INVOCATION_STATUSES = ["Success", "Failed", "Error", "Timeout", "Cancelled", "Terminated", "Invalid", "Aborted"];

/** Runs the status script on the instance and waits for its answer (at most about COMMAND_TIMEOUT_SECONDS + 10 s). */
export async function observeBootstrap(
    api: CloudAssistantCalls,
    errors: CloudAssistantErrors,
    target: { regionId: string; instanceId: string },
): Promise<BootstrapObservation> {
    const agent = await api.cloudAssistantStatus(target);
    if (!agent?.online) {
        return { kind: "agent-offline", everReported: agent?.everReported ?? false };
    }
    let invokeId: string;
    try {
        ({ invokeId } = await api.runShellScript({
            ...target,
            script: BOOTSTRAP_STATUS_SCRIPT,
            timeoutSeconds: COMMAND_TIMEOUT_SECONDS,
            name: "dify-bootstrap-status",
        }));
    } catch (err) {
        if (errors.isInstanceNotReadyError(err)) {
            return { kind: "agent-offline", everReported: true };
        }
        throw err;
    }
    const deadline = Date.now() + (COMMAND_TIMEOUT_SECONDS + 10) * 1000;
    for (;;) {
        await new Promise((resolve) => setTimeout(resolve, RESULT_POLL_MS));
        const result = await api.describeInvocationResult({ ...target, invokeId });
        if (result && FINAL_INVOCATION_STATUSES.includes(result.status)) {
            if (result.status === "Success") {
                return { kind: "status", status: parseBootstrapStatus(result.output) };
            }
            if (result.errorCode !== undefined && errors.notReadyResultCodes.includes(result.errorCode)) {
                return { kind: "agent-offline", everReported: true };
            }
            const why = [result.status, result.errorCode, result.errorInfo].filter((part) => part).join(": ");
            return { kind: "unreadable", reason: `the status command ended ${why}${result.exitCode !== undefined ? ` (exit ${result.exitCode})` : ""}` };
        }
        if (Date.now() > deadline) {
            return { kind: "unreadable", reason: `the status command had no result after ${COMMAND_TIMEOUT_SECONDS + 10}s (last: ${result?.status ?? "none"})` };
        }
    }
}
