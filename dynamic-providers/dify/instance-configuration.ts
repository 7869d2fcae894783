// Which bootstrap settings the Dify instance runs, and applying new ones in place (a new difyVersion is an upgrade
// of the running instance, not a new instance). The instance ignores changes of its user data (a change there would
// stop and start it and still not run the bootstrap again: cloud-init's runcmd is per instance), so this resource
// brings the instance to the current settings: it snapshots the data disk, writes the new settings file (the
// instance keeps its own INIT_PASSWORD line: no secret goes into a RunCommand, whose content Alibaba keeps in its
// invocation history) and script through Cloud Assistant, starts the bootstrap again (detached, so the RunCommand
// returns at once), follows its status file until it reports these settings done, and probes Dify's public URL.
// The bootstrap (components/bootstrap/bootstrap.sh, main) is safe to run again on a running instance.
//
// RAM actions needed: ecs:CreateSnapshot, ecs:DescribeSnapshots, ecs:RunCommand, ecs:DescribeInvocationResults,
// ecs:DescribeCloudAssistantStatus.
import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { isStringArray } from "../engine/check";
import { differs } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { isKnown } from "../engine/unknown";
import { createAlibabaApiClient, endpointProblem, isApiErrorCode } from "../alibaba/client";
import {
    cloudAssistantApi,
    CloudAssistantApi,
    COMMAND_CONTENT_MAX_BASE64_BYTES,
    ecsEndpoint,
    isInstanceNotReadyError,
    isTerminalInvocationStatus,
    NOT_READY_RESULT_CODES,
} from "../alibaba/cloud-assistant-api";
import { ecsSnapshotApi } from "../alibaba/ecs-snapshot-api";
import { compareDifyVersions, parseDifyVersion } from "../../rules/dify-version";
import { BootstrapStatus, bootstrapFailureMessage, describeBootstrapStatus, observeBootstrap } from "./bootstrap-status";
import { probeDify } from "./transport";

/** What the instance should run: the bootstrap's settings, each its own input so that a preview names what changed. */
export interface DifyInstanceConfigurationInputs {
    /** The instance. A new instance is a new resource (replace): its create brings it to these settings. */
    instanceId: string;
    regionId: string;
    /** ECS API endpoint (host or URL); default the region's. Tests point it at a local server. */
    ecsEndpoint?: string;
    /** The data disk snapshotted before every change. */
    dataDiskId: string;
    /** Where Dify answers after a change (its public base URL). */
    difyUrl: string;
    difyVersion: string;
    publicUrl: string;
    domain?: string;
    certEmail?: string;
    registryMirrors: string[];
    pipMirrorUrl?: string;
    imageRegistry?: string;
    /** SHA-256 of the shipped bootstrap script: a new script is applied like a new setting. */
    scriptDigest: string;
    /** SHA-256 over every setting and the script (renderBootstrapApplication), which the bootstrap writes into its status. */
    settingsDigest: string;
    /** The settings file without the DIFY_INIT_PASSWORD line. Derived from the settings: not compared. */
    bootstrapConfig: string;
    /** The shipped script, gzip+base64. Derived: not compared. */
    bootstrapScript: string;
    /** How long applying may take (snapshot and bootstrap) before `up` fails. */
    timeoutSeconds: number;
    /** Pause between looks at the snapshot and at the bootstrap's status. */
    pollIntervalSeconds: number;
}

export interface DifyInstanceConfigurationOutputs extends DifyInstanceConfigurationInputs {
    /** The settings digest the instance reported done with (equals `settingsDigest` after every create and update). */
    appliedSettingsDigest: string;
    /** The snapshot of the data disk taken before the last change this resource applied; absent before any. */
    lastSnapshotId?: string;
    /** The version Dify's X-Version header reported after the last change (or refresh). */
    reportedDifyVersion?: string;
}

/** The settings whose change is applied to the instance, in the order a message names them. */
export const COMPARED_SETTINGS = [
    "difyVersion",
    "publicUrl",
    "domain",
    "certEmail",
    "registryMirrors",
    "pipMirrorUrl",
    "imageRegistry",
    "dataDiskId",
    "scriptDigest",
    "settingsDigest",
] as const;
export type ComparedSetting = (typeof COMPARED_SETTINGS)[number];

/** Inputs whose change only updates the state (they matter while applying, not for what the instance runs). */
const STATE_ONLY: readonly (keyof DifyInstanceConfigurationInputs)[] = ["difyUrl", "regionId", "ecsEndpoint", "timeoutSeconds", "pollIntervalSeconds"];

/** Days the pre-change snapshot is kept (CreateSnapshot RetentionDays); then Alibaba releases it. */
export const SNAPSHOT_RETENTION_DAYS = 7;
/** The RunCommand that writes the files and starts the bootstrap returns at once; this bounds it. */
const APPLY_COMMAND_TIMEOUT_SECONDS = 120;
/** After the bootstrap reports done, how long the public URL may stay silent. */
const PUBLIC_URL_GRACE_SECONDS = 300;

const HEX64 = /^[0-9a-f]{64}$/;

/** Validates the inputs; a lower difyVersion than the recorded one is refused (Dify's migrations only go forward). */
export function checkDifyInstanceConfiguration(olds: Partial<DifyInstanceConfigurationInputs>, news: Partial<DifyInstanceConfigurationInputs>): CheckFailure[] {
    const failures: CheckFailure[] = [];
    const given = (key: keyof DifyInstanceConfigurationInputs) => isKnown(news[key]);
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    if (given("instanceId") && (typeof news.instanceId !== "string" || news.instanceId === "")) fail("instanceId", "must be the id of the ECS instance that runs Dify");
    if (given("regionId") && (typeof news.regionId !== "string" || !/^[a-z]{2}-[a-z0-9-]+$/.test(news.regionId))) {
        fail("regionId", "must be an Alibaba Cloud region id such as cn-hangzhou");
    }
    if (news.regionId === undefined) fail("regionId", "is required: the instance is reached through Cloud Assistant in its region");
    if (given("ecsEndpoint")) {
        const problem = typeof news.ecsEndpoint === "string" ? endpointProblem(news.ecsEndpoint) : "must be a string";
        if (problem !== undefined) fail("ecsEndpoint", problem);
    }
    if (given("dataDiskId") && (typeof news.dataDiskId !== "string" || !/^d-[a-z0-9]+$/.test(news.dataDiskId))) fail("dataDiskId", 'must be a disk id ("d-…")');
    for (const key of ["difyUrl", "publicUrl"] as const) {
        if (given(key) && (typeof news[key] !== "string" || !/^https?:\/\/[^/\s]+$/.test(news[key] as string))) {
            fail(key, "must be an http(s) base URL without a path, e.g. http://203.0.113.10");
        }
    }
    if (given("difyVersion") && (typeof news.difyVersion !== "string" || parseDifyVersion(news.difyVersion) === undefined || !/^[A-Za-z0-9._-]+$/.test(news.difyVersion))) {
        fail("difyVersion", 'must be a Dify release tag such as "1.14.1"');
    }
    if (given("registryMirrors") && !isStringArray(news.registryMirrors)) fail("registryMirrors", "must be a list of URLs");
    for (const key of ["scriptDigest", "settingsDigest"] as const) {
        if (given(key) && (typeof news[key] !== "string" || !HEX64.test(news[key] as string))) fail(key, "must be a SHA-256 in 64 lowercase hex digits");
    }
    if (given("bootstrapConfig")) {
        const config = news.bootstrapConfig;
        if (typeof config !== "string" || /^DIFY_INIT_PASSWORD=/m.test(config)) {
            fail("bootstrapConfig", "must be the settings file without its DIFY_INIT_PASSWORD line (no secret goes through Cloud Assistant)");
        } else if (isKnown(news.settingsDigest) && !config.includes(`DIFY_SETTINGS_DIGEST='${news.settingsDigest}'\n`)) {
            fail("bootstrapConfig", "must carry DIFY_SETTINGS_DIGEST, the same as settingsDigest");
        }
    }
    if (given("bootstrapScript") && (typeof news.bootstrapScript !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(news.bootstrapScript))) {
        fail("bootstrapScript", "must be the compressed script (gzip, then base64)");
    }
    if (given("timeoutSeconds") && (typeof news.timeoutSeconds !== "number" || news.timeoutSeconds < 1 || news.timeoutSeconds > 4 * 3600)) {
        fail("timeoutSeconds", "must be a number of seconds from 1 to 14400");
    }
    if (given("pollIntervalSeconds") && (typeof news.pollIntervalSeconds !== "number" || news.pollIntervalSeconds <= 0 || news.pollIntervalSeconds > 300)) {
        fail("pollIntervalSeconds", "must be a number of seconds above 0 and at most 300");
    }
    if (failures.length === 0 && [news.bootstrapConfig, news.bootstrapScript, news.settingsDigest, news.difyVersion].every(isKnown)) {
        const size = Buffer.from(applyScript(news as DifyInstanceConfigurationInputs), "utf8").toString("base64").length;
        if (size > COMMAND_CONTENT_MAX_BASE64_BYTES) {
            fail("bootstrapScript", `the settings and script make a command of ${size} bytes in Base64; Cloud Assistant takes at most ${COMMAND_CONTENT_MAX_BASE64_BYTES}`);
        }
    }
    const recorded = olds.difyVersion;
    if (typeof recorded === "string" && isKnown(recorded) && typeof news.difyVersion === "string" && isKnown(news.difyVersion) && compareDifyVersions(news.difyVersion, recorded) < 0) {
        fail(
            "difyVersion",
            `Dify ${news.difyVersion} is older than ${recorded}, which the instance runs: Dify's database migrations only go forward, so an ` +
                `installed Dify cannot be downgraded. To go back, restore the data disk from the snapshot taken before the upgrade to ${recorded} ` +
                `(named dify-before-${recorded}-<time>; the lastSnapshotId output of this resource, kept ${SNAPSHOT_RETENTION_DAYS} days), ` +
                `and set difyVersion to the version it was taken from; or keep difyVersion at ${recorded} or later.`,
        );
    }
    return failures;
}

/** The compared settings that differ (an unknown new value counts as a change). */
export function changedSettings(olds: Partial<DifyInstanceConfigurationInputs>, news: Partial<DifyInstanceConfigurationInputs>): ComparedSetting[] {
    return COMPARED_SETTINGS.filter((key) => differs(olds, news, key));
}

/**
 * Settings never replace the resource (they are applied in place); only a new instance does. The derived
 * bootstrapConfig and bootstrapScript are not compared (the digests say when they changed).
 */
export function diffDifyInstanceConfiguration(olds: DifyInstanceConfigurationOutputs, news: DifyInstanceConfigurationInputs): pulumi.dynamic.DiffResult {
    const replaces = differs(olds, news, "instanceId") ? ["instanceId"] : [];
    const changes = replaces.length > 0 || changedSettings(olds, news).length > 0 || STATE_ONLY.some((key) => differs(olds, news, key));
    return { changes, replaces, deleteBeforeReplace: false };
}

/** Single-quotes a value for sh (values are checked, this keeps a stray quote harmless anyway). */
function quote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command Cloud Assistant runs (as root, by sh or bash): writes the new settings file (with the instance's own
 * DIFY_INIT_PASSWORD line) and the new script, each to a temporary file renamed over the old one, writes a status
 * of its own (so a failure of an earlier run is never taken for this one's), and starts the bootstrap detached:
 * with systemd-run, unless DIFY_BOOTSTRAP_DETACH says otherwise (the tests' fake instance). Paths follow the
 * bootstrap's DIFY_BOOTSTRAP_* overrides, plus DIFY_BOOTSTRAP_SCRIPT for the script.
 */
export function applyScript(inputs: Pick<DifyInstanceConfigurationInputs, "bootstrapConfig" | "bootstrapScript" | "settingsDigest" | "difyVersion">): string {
    const base64Lines = inputs.bootstrapScript.match(/.{1,76}/g) ?? [];
    return [
        "set -eu",
        'config="${DIFY_BOOTSTRAP_CONFIG:-/etc/dify-bootstrap/bootstrap.env}"',
        'script="${DIFY_BOOTSTRAP_SCRIPT:-/usr/local/sbin/dify-bootstrap.sh}"',
        'state="${DIFY_BOOTSTRAP_STATE_DIR:-/var/lib/dify-bootstrap}"',
        "umask 077",
        'mkdir -p "${config%/*}" "${script%/*}" "$state"',
        'new_config="$(mktemp "$config.XXXXXX")"',
        'new_script="$(mktemp "$script.XXXXXX")"',
        "trap 'rm -f \"$new_config\" \"$new_script\"' EXIT",
        "{",
        "cat <<'DIFY_SETTINGS_END'",
        inputs.bootstrapConfig.trimEnd(),
        "DIFY_SETTINGS_END",
        `grep -m1 '^DIFY_INIT_PASSWORD=' "$config" 2>/dev/null || echo "DIFY_INIT_PASSWORD=''"`,
        '} >"$new_config"',
        "base64 -d <<'DIFY_SCRIPT_END' | gzip -dc >\"$new_script\"",
        ...base64Lines,
        "DIFY_SCRIPT_END",
        'chmod 600 "$new_config"',
        'chmod 700 "$new_script"',
        'mv -f "$new_config" "$config"',
        'mv -f "$new_script" "$script"',
        'status_file="$(mktemp "$state/.status.XXXXXX")"',
        `printf 'state=running\\nstep=applying new settings\\ndetail=Dify %s\\nupdated=%s\\nsettings=%s\\n' ${quote(inputs.difyVersion)} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${quote(inputs.settingsDigest)} >"$status_file"`,
        'chmod 644 "$status_file"',
        'mv -f "$status_file" "$state/status"',
        'rm -f "$state/done" "$state/failed"',
        // Detached: the bootstrap outlives this command (a transient systemd unit), which returns at once.
        '${DIFY_BOOTSTRAP_DETACH:-systemd-run --collect --unit=dify-bootstrap-apply-$(date -u +%Y%m%d%H%M%S)} bash "$script" </dev/null >/dev/null 2>&1',
        `echo ${quote(`started the bootstrap for settings ${inputs.settingsDigest}`)}`,
        "",
    ].join("\n");
}

// ----- Applying ---------------------------------------------------------------------------------------------

type Log = (line: string) => void;

function progressLog(instanceId: string): Log {
    return (line) => console.log(`Dify on ${instanceId}: ${line}`);
}

function sleep(seconds: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

const PERMISSIONS_HINT =
    "grant ecs:CreateSnapshot, ecs:DescribeSnapshots, ecs:RunCommand, ecs:DescribeInvocationResults and ecs:DescribeCloudAssistantStatus";

function isPermissionError(err: unknown): boolean {
    return isApiErrorCode(err, "Forbidden") || isApiErrorCode(err, "NoPermission") || isApiErrorCode(err, "InvalidAccessKeyId");
}

/** The clients one apply needs, built when a provider method runs (never at module level). */
function clients(inputs: DifyInstanceConfigurationInputs) {
    const client = createAlibabaApiClient({ endpoint: inputs.ecsEndpoint ?? ecsEndpoint(inputs.regionId) });
    return { assistant: cloudAssistantApi(client), snapshots: ecsSnapshotApi(client) };
}

/** One look at the bootstrap's status, or why there is none (offline agent, unreadable). Permission errors throw. */
async function lookAtStatus(assistant: CloudAssistantApi, inputs: DifyInstanceConfigurationInputs): Promise<{ status?: BootstrapStatus; why: string }> {
    try {
        const target = { regionId: inputs.regionId, instanceId: inputs.instanceId };
        const seen = await observeBootstrap(assistant, { isInstanceNotReadyError, notReadyResultCodes: NOT_READY_RESULT_CODES }, target);
        if (seen.kind === "status") return { status: seen.status, why: describeBootstrapStatus(seen.status) };
        if (seen.kind === "agent-offline") return { why: "the instance's Cloud Assistant agent is not online" };
        return { why: `bootstrap status unreadable: ${seen.reason}` };
    } catch (err) {
        if (isPermissionError(err)) {
            throw new Error(`Cannot reach instance ${inputs.instanceId} through Cloud Assistant (${(err as Error).message}); ${PERMISSIONS_HINT}.`);
        }
        return { why: `bootstrap status unreadable: ${err instanceof Error ? err.message : String(err)}` };
    }
}

/** The status as it is now, waiting (until the deadline) while the agent is offline or the status unreadable. */
async function currentStatus(assistant: CloudAssistantApi, inputs: DifyInstanceConfigurationInputs, deadline: number, log: Log): Promise<BootstrapStatus> {
    let last = "";
    for (;;) {
        const seen = await lookAtStatus(assistant, inputs);
        if (seen.status) return seen.status;
        if (seen.why !== last) log(seen.why);
        last = seen.why;
        if (Date.now() > deadline) {
            throw new Error(`Could not read the bootstrap's status on instance ${inputs.instanceId} within ${inputs.timeoutSeconds}s: ${seen.why}.`);
        }
        await sleep(inputs.pollIntervalSeconds);
    }
}

function timestamp(date: Date): string {
    return date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** (a) The data disk's snapshot, waited for until accomplished. */
async function snapshotDataDisk(inputs: DifyInstanceConfigurationInputs, deadline: number, log: Log): Promise<{ snapshotId: string; snapshotName: string }> {
    const { snapshots } = clients(inputs);
    const now = new Date();
    const snapshotName = `dify-before-${inputs.difyVersion}-${timestamp(now)}`;
    let snapshotId: string;
    try {
        ({ snapshotId } = await snapshots.createSnapshot({
            diskId: inputs.dataDiskId,
            snapshotName,
            description: `Dify's data disk before Dify ${inputs.difyVersion} was applied to ${inputs.instanceId} (dify-mcp-stack)`,
            retentionDays: SNAPSHOT_RETENTION_DAYS,
            // The same token for retries of this request: a lost answer does not make a second snapshot.
            clientToken: `dify-${inputs.settingsDigest.slice(0, 16)}-${timestamp(now)}`,
        }));
    } catch (err) {
        const hint = isPermissionError(err) ? `; ${PERMISSIONS_HINT}` : "";
        throw new Error(`Snapshotting the data disk ${inputs.dataDiskId} before changing instance ${inputs.instanceId} failed, nothing was changed: ${(err as Error).message}${hint}`);
    }
    log(`snapshotting the data disk ${inputs.dataDiskId} before the change: ${snapshotId} (${snapshotName}, kept ${SNAPSHOT_RETENTION_DAYS} days)`);
    let lastProgress = "";
    for (;;) {
        // Just created, it may not be listed yet: that counts as progressing.
        const [found] = await snapshots.describeSnapshots({ regionId: inputs.regionId, snapshotIds: [snapshotId] });
        if (found?.status === "accomplished") {
            log(`snapshot ${snapshotId} is done`);
            return { snapshotId, snapshotName };
        }
        if (found?.status === "failed") {
            throw new Error(`The snapshot ${snapshotId} of the data disk ${inputs.dataDiskId} failed; nothing was changed on instance ${inputs.instanceId}. Run pulumi up again to retry.`);
        }
        const progress = found?.progress ?? "0%";
        if (progress !== lastProgress) log(`snapshot ${snapshotId}: ${progress}`);
        lastProgress = progress;
        if (Date.now() > deadline) {
            throw new Error(
                `The snapshot ${snapshotId} of the data disk ${inputs.dataDiskId} was not done within ${inputs.timeoutSeconds}s (last: ${found?.status ?? "not listed"} ${progress}); ` +
                    `nothing was changed on instance ${inputs.instanceId}. Run pulumi up again once it is (a new snapshot is taken then).`,
            );
        }
        await sleep(inputs.pollIntervalSeconds);
    }
}

/** (b) Writes the settings and script and starts the bootstrap, through one RunCommand that returns at once. */
async function startBootstrap(assistant: CloudAssistantApi, inputs: DifyInstanceConfigurationInputs, deadline: number): Promise<void> {
    const target = { regionId: inputs.regionId, instanceId: inputs.instanceId };
    let invokeId: string;
    for (;;) {
        try {
            ({ invokeId } = await assistant.runShellScript({ ...target, script: applyScript(inputs), timeoutSeconds: APPLY_COMMAND_TIMEOUT_SECONDS, name: "dify-bootstrap-apply" }));
            break;
        } catch (err) {
            if (!isInstanceNotReadyError(err) || Date.now() > deadline) throw err;
            await sleep(inputs.pollIntervalSeconds);
        }
    }
    const until = Date.now() + (APPLY_COMMAND_TIMEOUT_SECONDS + 10) * 1000;
    for (;;) {
        await sleep(1);
        const result = await assistant.describeInvocationResult({ ...target, invokeId });
        if (result && isTerminalInvocationStatus(result.status)) {
            if (result.status === "Success") return;
            const why = [result.status, result.errorCode, result.errorInfo].filter((part) => part).join(": ");
            throw new Error(`Writing the new settings on instance ${inputs.instanceId} failed (${why}); the bootstrap was not started. Output:\n  ${result.output.trim().split("\n").join("\n  ")}`);
        }
        if (Date.now() > until) {
            throw new Error(`Writing the new settings on instance ${inputs.instanceId} had no result after ${APPLY_COMMAND_TIMEOUT_SECONDS + 10}s (last: ${result?.status ?? "none"}).`);
        }
    }
}

/** (c) Follows the bootstrap until it reports these settings done; a failed step or the deadline ends it. */
async function followBootstrap(assistant: CloudAssistantApi, inputs: DifyInstanceConfigurationInputs, deadline: number, log: Log, advice: string): Promise<void> {
    let lastProgress = "";
    for (;;) {
        const seen = await lookAtStatus(assistant, inputs);
        const status = seen.status;
        if (status?.state === "failed") {
            throw new Error(bootstrapFailureMessage(inputs.instanceId, status, advice));
        }
        if (status?.state === "done" && status.settings === inputs.settingsDigest) {
            return;
        }
        if (seen.why !== lastProgress) log(seen.why);
        lastProgress = seen.why;
        if (Date.now() > deadline) {
            throw new Error(
                `The bootstrap on instance ${inputs.instanceId} did not finish applying Dify ${inputs.difyVersion} within ${inputs.timeoutSeconds}s; it last said: ${lastProgress}. ` +
                    "It goes on on the instance (/var/log/dify-bootstrap.log there); run pulumi up again to wait for it, and raise " +
                    `dify-mcp-stack:readinessTimeoutMinutes if it is just slow. ${advice}`,
            );
        }
        await sleep(inputs.pollIntervalSeconds);
    }
}

/** (d) The version Dify's public URL reports, once it answers (it may take a moment behind nginx). */
async function reportedVersion(inputs: DifyInstanceConfigurationInputs, log: Log): Promise<string> {
    try {
        const probe = await probeDify({ url: inputs.difyUrl, requestTimeoutMs: 10_000 }, { waitSeconds: PUBLIC_URL_GRACE_SECONDS, pollSeconds: inputs.pollIntervalSeconds });
        if (compareDifyVersions(probe.version, inputs.difyVersion) !== 0) {
            log(`warning: Dify at ${inputs.difyUrl} reports version ${probe.version}, not ${inputs.difyVersion}`);
        }
        return probe.version;
    } catch (err) {
        throw new Error(
            `Dify on instance ${inputs.instanceId} runs the new settings (the bootstrap finished), but ${inputs.difyUrl} did not answer within ${PUBLIC_URL_GRACE_SECONDS}s: ` +
                `${err instanceof Error ? err.message : String(err)}. Check the EIP association and the security group's rules for the Dify ports.`,
        );
    }
}

/**
 * Brings the instance to `inputs`: nothing when its status already reports these settings done, a wait when a run
 * for them is under way (e.g. the first boot finishing), else snapshot, files, bootstrap, wait, probe.
 */
async function converge(inputs: DifyInstanceConfigurationInputs, reason: string, previousSnapshotId: string | undefined): Promise<DifyInstanceConfigurationOutputs> {
    const log = progressLog(inputs.instanceId);
    const deadline = Date.now() + inputs.timeoutSeconds * 1000;
    const { assistant } = clients(inputs);
    const status = await currentStatus(assistant, inputs, deadline, log);
    const outputs = (snapshotId: string | undefined, version: string): DifyInstanceConfigurationOutputs => {
        const result: DifyInstanceConfigurationOutputs = { ...inputs, appliedSettingsDigest: inputs.settingsDigest, reportedDifyVersion: version };
        if (snapshotId !== undefined) result.lastSnapshotId = snapshotId;
        return result;
    };
    if (status.settings === inputs.settingsDigest && (status.state === "done" || status.state === "running")) {
        if (status.state === "running") {
            log("the bootstrap is applying these settings already; following it");
            await followBootstrap(assistant, inputs, deadline, log, "Fix the cause, then run pulumi up again: the settings are applied again.");
        } else {
            log(`runs these settings already (Dify ${inputs.difyVersion})`);
        }
        return outputs(previousSnapshotId, await reportedVersion(inputs, log));
    }
    log(`applying new settings: ${reason}`);
    const snapshot = await snapshotDataDisk(inputs, deadline, log);
    const advice =
        `Dify's data disk as it was before is in the snapshot ${snapshot.snapshotId} (${snapshot.snapshotName}, kept ${SNAPSHOT_RETENTION_DAYS} days). ` +
        "Fix the cause, then run pulumi up again: the settings are applied again.";
    await startBootstrap(assistant, inputs, deadline);
    log(`started the bootstrap for Dify ${inputs.difyVersion}`);
    await followBootstrap(assistant, inputs, deadline, log, advice);
    const version = await reportedVersion(inputs, log);
    log(`Dify ${version} is up with the new settings`);
    return outputs(snapshot.snapshotId, version);
}

/** What changed, for up's output: "Dify 1.13.3 → 1.14.1, registryMirrors". */
function describeChanges(olds: Partial<DifyInstanceConfigurationInputs>, news: DifyInstanceConfigurationInputs, changed: readonly ComparedSetting[]): string {
    const named = changed
        .filter((key) => key !== "settingsDigest")
        .map((key) => (key === "difyVersion" ? `Dify ${olds.difyVersion} → ${news.difyVersion}` : key === "scriptDigest" ? "a new bootstrap script" : key));
    return named.length > 0 ? named.join(", ") : "new bootstrap settings";
}

const provider: pulumi.dynamic.ResourceProvider<DifyInstanceConfigurationInputs, DifyInstanceConfigurationOutputs> = {
    async check(olds: DifyInstanceConfigurationInputs, news: DifyInstanceConfigurationInputs) {
        return { inputs: news, failures: checkDifyInstanceConfiguration(olds ?? {}, news) };
    },

    async diff(_id: string, olds: DifyInstanceConfigurationOutputs, news: DifyInstanceConfigurationInputs) {
        return diffDifyInstanceConfiguration(olds, news);
    },

    /**
     * After DifyReadiness: an instance that booted with these settings reports them done, and nothing happens. One
     * that booted with an older user data (a replaced instance: the instance ignores user data changes) or with a
     * bootstrap that wrote no digest (stacks from before this resource) gets the settings applied once.
     */
    async create(inputs: DifyInstanceConfigurationInputs) {
        const outs = await converge(inputs, "the instance booted with other (older) settings than the stack's", undefined);
        return { id: `${inputs.instanceId}-configuration`, outs };
    },

    async update(_id: string, olds: DifyInstanceConfigurationOutputs, news: DifyInstanceConfigurationInputs) {
        const changed = changedSettings(olds, news);
        if (changed.length === 0) {
            // Timing, endpoint or URL only: nothing to do on the instance.
            return { outs: { ...olds, ...news } };
        }
        return { outs: await converge(news, describeChanges(olds, news, changed), olds.lastSnapshotId) };
    },

    /** Keeps the state; refreshes the version Dify reports (a warning, and the state kept, when it does not answer). */
    async read(id: string, props?: DifyInstanceConfigurationOutputs) {
        const state = props as DifyInstanceConfigurationOutputs;
        try {
            const probe = await probeDify({ url: state.difyUrl, requestTimeoutMs: 10_000 });
            return { id, props: { ...state, reportedDifyVersion: probe.version } };
        } catch (error) {
            console.warn(`warning: Dify at ${state.difyUrl} did not answer (${error instanceof Error ? error.message : String(error)}); keeping the recorded configuration.`);
            return { id, props: state };
        }
    },

    // Nothing to undo: the instance keeps what it runs, and the snapshots expire by themselves.
    async delete() {
        return;
    },
};

export const difyInstanceConfigurationProvider = engineSafeProvider(provider);

/** What `new DifyInstanceConfiguration(...)` takes. Settings are applied in place; only a new instance replaces it. */
export interface DifyInstanceConfigurationArgs {
    /** The instance that runs Dify. A new instance replaces the resource, whose create brings it to these settings. */
    instanceId: pulumi.Input<string>;
    /** The instance's region (Cloud Assistant and the snapshot are called there). Changing it updates the state only. */
    regionId: pulumi.Input<string>;
    /** ECS API endpoint; default the region's. Changing it updates the state only. */
    ecsEndpoint?: pulumi.Input<string>;
    /** The data disk, snapshotted (kept 7 days) before every change. Changing it applies the settings again. */
    dataDiskId: pulumi.Input<string>;
    /** Dify's public base URL, probed after a change for the version it runs. Changing it updates the state only. */
    difyUrl: pulumi.Input<string>;
    /** The Dify release tag. A newer one upgrades the running instance; an older one is refused (restore the snapshot instead). */
    difyVersion: pulumi.Input<string>;
    /** The public URL Dify's settings get; changing it applies the settings again (like each setting below). */
    publicUrl: pulumi.Input<string>;
    /** The domain, for https; unset: none. */
    domain?: pulumi.Input<string>;
    /** Let's Encrypt's notice address, with `domain`; unset: none. */
    certEmail?: pulumi.Input<string>;
    /** Docker Hub mirrors of the Docker daemon; default none. */
    registryMirrors?: pulumi.Input<pulumi.Input<string>[]>;
    /** PyPI index for the plugin daemon; unset: PyPI. */
    pipMirrorUrl?: pulumi.Input<string>;
    /** The registry holding copies of Dify's images (imageSource acr); unset: Docker Hub. */
    imageRegistry?: pulumi.Input<string>;
    /** DifyBootstrap's `scriptDigest`: a new shipped script is applied like a new setting. */
    scriptDigest: pulumi.Input<string>;
    /** DifyBootstrap's `settingsDigest`: what the instance must report done. */
    settingsDigest: pulumi.Input<string>;
    /** DifyBootstrap's `bootstrapConfig` (no INIT_PASSWORD). Not compared. */
    bootstrapConfig: pulumi.Input<string>;
    /** DifyBootstrap's `bootstrapScript` (gzip+base64). Not compared. */
    bootstrapScript: pulumi.Input<string>;
    /** How long applying (snapshot, bootstrap, Dify answering) may take, 1–14400 seconds. Changing it updates the state only. */
    timeoutSeconds: pulumi.Input<number>;
    /** Pause between looks at the snapshot and the bootstrap, above 0 and at most 300 seconds. Default 15. */
    pollIntervalSeconds?: pulumi.Input<number>;
}

/**
 * Says which bootstrap settings the Dify instance runs and applies new ones in place: snapshot of the data disk,
 * the new settings and script through Cloud Assistant, the bootstrap run again, a wait until it reports them done
 * (its progress in `up`'s output; a failed step fails `up` with the log's tail), and Dify's version probed.
 */
export class DifyInstanceConfiguration extends pulumi.dynamic.Resource {
    /** The Dify release the instance was last brought to. */
    declare readonly difyVersion: pulumi.Output<string>;
    declare readonly appliedSettingsDigest: pulumi.Output<string>;
    /** The snapshot taken before the last change this resource applied (absent before any). */
    declare readonly lastSnapshotId: pulumi.Output<string | undefined>;
    /** What Dify's X-Version header said after the last change or refresh. */
    declare readonly reportedDifyVersion: pulumi.Output<string | undefined>;

    constructor(name: string, args: DifyInstanceConfigurationArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyInstanceConfigurationProvider,
            name,
            {
                pollIntervalSeconds: 15,
                ...args,
                registryMirrors: args.registryMirrors ?? [],
                appliedSettingsDigest: undefined,
                lastSnapshotId: undefined,
                reportedDifyVersion: undefined,
            },
            opts,
            "dify",
            "InstanceConfiguration",
        );
    }
}
