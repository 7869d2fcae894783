import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { createAlibabaApiClient, endpointProblem, isApiErrorCode } from "../alibaba/client";
import { cloudAssistantApi, ecsEndpoint, isInstanceNotReadyError, NOT_READY_RESULT_CODES } from "../alibaba/cloud-assistant-api";
import { BootstrapObservation, BootstrapStatus, bootstrapFailureMessage, describeBootstrapStatus, LOG_TAIL_LINES, observeBootstrap } from "./bootstrap-status";
import { joinSentences } from "./errors";
import { probeDify } from "./transport";

/** What the readiness check waits for. */
export interface DifyReadinessInputs {
    /** Dify's public base URL, e.g. http://203.0.113.10. */
    difyUrl: string;
    /** The instance being waited for: a new instance means a new wait. */
    instanceId: string;
    /** How long `pulumi up` waits before failing. */
    timeoutSeconds: number;
    /** Pause between probes. */
    pollIntervalSeconds: number;
    /**
     * The instance's region. With it, `up` also reads the bootstrap's status on the instance through Cloud
     * Assistant: it shows the progress, and stops at a failed step instead of waiting for the timeout. Without it,
     * only the public URL is watched. Not compared by diff: it matters only while waiting.
     */
    regionId?: string;
    /** ECS API endpoint (host or URL); default the region's. Tests point it at a local server. */
    ecsEndpoint?: string;
    /**
     * How long the instance may take to boot and start the bootstrap (Cloud Assistant's agent reporting and the
     * status file appearing) before `up` says it never did. Default 600.
     */
    bootTimeoutSeconds?: number;
    /**
     * Needs `regionId`. The URL answering ends the wait only once the instance's own bootstrap says "done": behind a
     * load balancer other nodes answer the URL (the old app nodes, during an upgrade) before this instance has
     * migrated the database. Unset (default): the URL answering is enough.
     */
    waitForBootstrap?: boolean;
    /** What the error says to check when the bootstrap finished but the URL stays silent. Default: the EIP and security group. */
    unreachableHint?: string;
}

export interface DifyReadinessOutputs extends DifyReadinessInputs {
    /** The setup step Dify reported: "not_started" on a fresh install, "finished" once an admin exists. */
    setupStep: string;
    /** The X-Version header Dify answered with. */
    difyVersion: string;
}

const SETUP_PATH = "/console/api/setup";

/** Validates the inputs; the messages name the field and the allowed values. */
export function checkDifyReadiness(news: Partial<DifyReadinessInputs>): CheckFailure[] {
    const failures: CheckFailure[] = [];
    if (typeof news.difyUrl !== "string" || !/^https?:\/\/[^/\s]+$/.test(news.difyUrl)) {
        failures.push({ property: "difyUrl", reason: "must be an http(s) base URL without a path, e.g. http://203.0.113.10" });
    }
    if (typeof news.instanceId !== "string" || news.instanceId === "") {
        failures.push({ property: "instanceId", reason: "must be the id of the ECS instance that runs Dify" });
    }
    if (typeof news.timeoutSeconds !== "number" || news.timeoutSeconds < 1 || news.timeoutSeconds > 4 * 3600) {
        failures.push({ property: "timeoutSeconds", reason: "must be a number of seconds from 1 to 14400" });
    }
    if (typeof news.pollIntervalSeconds !== "number" || news.pollIntervalSeconds <= 0 || news.pollIntervalSeconds > 300) {
        failures.push({ property: "pollIntervalSeconds", reason: "must be a number of seconds above 0 and at most 300" });
    }
    if (news.regionId !== undefined && (typeof news.regionId !== "string" || !/^[a-z]{2}-[a-z0-9-]+$/.test(news.regionId))) {
        failures.push({ property: "regionId", reason: "must be an Alibaba Cloud region id such as cn-hangzhou" });
    }
    if (news.ecsEndpoint !== undefined) {
        const problem = typeof news.ecsEndpoint === "string" ? endpointProblem(news.ecsEndpoint) : "must be a string";
        if (problem !== undefined) {
            failures.push({ property: "ecsEndpoint", reason: problem });
        }
    }
    if (news.waitForBootstrap !== undefined && (typeof news.waitForBootstrap !== "boolean" || (news.waitForBootstrap && news.regionId === undefined))) {
        failures.push({ property: "waitForBootstrap", reason: "must be a boolean, and true only with regionId (the bootstrap's status is read through Cloud Assistant)" });
    }
    if (news.unreachableHint !== undefined && (typeof news.unreachableHint !== "string" || news.unreachableHint.length > 500)) {
        failures.push({ property: "unreachableHint", reason: "must be a string of at most 500 characters" });
    }
    if (news.bootTimeoutSeconds !== undefined && (typeof news.bootTimeoutSeconds !== "number" || news.bootTimeoutSeconds < 1 || news.bootTimeoutSeconds > 3600)) {
        failures.push({ property: "bootTimeoutSeconds", reason: "must be a number of seconds from 1 to 3600" });
    }
    return failures;
}

/** A new URL or instance needs a new wait (replace); the timing settings only update the state. */
export function diffDifyReadiness(olds: DifyReadinessOutputs, news: DifyReadinessInputs): pulumi.dynamic.DiffResult {
    const replaces = (["difyUrl", "instanceId"] as const).filter((key) => olds[key] !== news[key]);
    const changes = (["difyUrl", "instanceId", "timeoutSeconds", "pollIntervalSeconds"] as const).filter(
        (key) => olds[key] !== news[key],
    );
    return { changes: changes.length > 0, replaces, deleteBeforeReplace: false };
}

/** Default of `bootTimeoutSeconds`. */
const DEFAULT_BOOT_TIMEOUT_SECONDS = 600;
/** After the bootstrap says Dify is up on the instance, how long the public URL may stay silent. */
const PUBLIC_URL_GRACE_SECONDS = 300;

/** Why `up` stopped waiting: the failed step with the log's last lines, or what never happened. */
function bootstrapFailure(inputs: DifyReadinessInputs, status: BootstrapStatus): Error {
    return new Error(bootstrapFailureMessage(inputs.instanceId, status, "Fix the cause, then run pulumi up again (a new instance bootstraps from the start)."));
}

/** Reads the bootstrap's status through Cloud Assistant, or says why it cannot (then only the URL is watched). */
function statusReader(inputs: DifyReadinessInputs): ((log: (line: string) => void) => Promise<BootstrapObservation | undefined>) | undefined {
    const regionId = inputs.regionId;
    if (regionId === undefined) {
        return undefined;
    }
    const api = cloudAssistantApi(createAlibabaApiClient({ endpoint: inputs.ecsEndpoint ?? ecsEndpoint(regionId) }));
    const errors = { isInstanceNotReadyError, notReadyResultCodes: NOT_READY_RESULT_CODES };
    let disabled = false;
    return async (log) => {
        if (disabled) {
            return undefined;
        }
        try {
            return await observeBootstrap(api, errors, { regionId, instanceId: inputs.instanceId });
        } catch (err) {
            // Without the permission (or with another refusal) `up` still works: it watches the URL alone.
            if (isApiErrorCode(err, "Forbidden") || isApiErrorCode(err, "NoPermission") || isApiErrorCode(err, "InvalidAccessKeyId")) {
                disabled = true;
                log(
                    `cannot read the bootstrap's progress through Cloud Assistant (${(err as Error).message}); ` +
                        "grant ecs:RunCommand, ecs:DescribeInvocationResults and ecs:DescribeCloudAssistantStatus to see it. Watching the public URL only.",
                );
                return undefined;
            }
            return { kind: "unreadable", reason: err instanceof Error ? err.message : String(err) };
        }
    };
}

/**
 * Waits until GET <difyUrl>/console/api/setup answers. Between probes it reads the bootstrap's status on the
 * instance (with `regionId`): each new step goes to `up`'s output; a failed step, an instance that never boots
 * and a bootstrap that never starts end the wait at once, with the reason.
 */
async function waitForDify(inputs: DifyReadinessInputs, log: (line: string) => void): Promise<{ setupStep: string; difyVersion: string }> {
    const started = Date.now();
    const elapsed = () => (Date.now() - started) / 1000;
    const bootTimeout = inputs.bootTimeoutSeconds ?? DEFAULT_BOOT_TIMEOUT_SECONDS;
    const readStatus = statusReader(inputs);
    let lastSeen = "nothing yet";
    let lastProgress = "";
    let doneAt: number | undefined;
    for (;;) {
        let answered: { setupStep: string; difyVersion: string } | undefined;
        try {
            const probe = await probeDify({ url: inputs.difyUrl, requestTimeoutMs: 10_000 });
            answered = { setupStep: probe.setupStep, difyVersion: probe.version };
            if (!inputs.waitForBootstrap) {
                return answered;
            }
        } catch (error) {
            lastSeen = error instanceof Error ? error.message : String(error);
        }
        const seen = readStatus ? await readStatus(log) : undefined;
        if (answered !== undefined && (seen === undefined || (seen.kind === "status" && seen.status.state === "done"))) {
            // waitForBootstrap: this instance is done too (or its status cannot be read: the URL is all there is).
            return answered;
        }
        let progress = "";
        if (seen?.kind === "status") {
            const status = seen.status;
            if (status.state === "failed") {
                throw bootstrapFailure(inputs, status);
            }
            if (status.state === "absent" && elapsed() > bootTimeout) {
                throw new Error(
                    `Instance ${inputs.instanceId} is running (Cloud Assistant answers) but its bootstrap has not started within ${bootTimeout}s: ` +
                        "cloud-init did not run the user data. See /var/log/cloud-init-output.log on the instance.",
                );
            }
            if (status.state === "done") {
                doneAt ??= elapsed();
                if (elapsed() - doneAt > PUBLIC_URL_GRACE_SECONDS) {
                    throw new Error(
                        `Dify is up on instance ${inputs.instanceId} (the bootstrap finished), but ${inputs.difyUrl} has not answered for ${PUBLIC_URL_GRACE_SECONDS}s; ` +
                            `last seen: ${lastSeen}. ${inputs.unreachableHint ?? "Check the EIP association and the security group's rules for the Dify ports."}`,
                    );
                }
            }
            progress = describeBootstrapStatus(status);
        } else if (seen?.kind === "agent-offline") {
            if (elapsed() > bootTimeout) {
                throw new Error(
                    `Instance ${inputs.instanceId} has not come up within ${bootTimeout}s: its Cloud Assistant agent ` +
                        `${seen.everReported ? "stopped reporting" : "never reported"} (the instance did not boot, or its image has no Cloud Assistant agent). ` +
                        "See the instance's system log in the ECS console; raise dify-mcp-stack:readinessTimeoutMinutes only if it is just slow.",
                );
            }
            progress = "waiting for the instance to boot";
        } else if (seen?.kind === "unreadable") {
            progress = `bootstrap status unreadable: ${seen.reason}`;
        }
        if (progress !== "" && progress !== lastProgress) {
            log(progress);
            lastProgress = progress;
        }
        if (elapsed() >= inputs.timeoutSeconds) {
            throw new Error(
                joinSentences(
                    `Dify at ${inputs.difyUrl} did not answer GET ${SETUP_PATH} within ${inputs.timeoutSeconds}s; last seen: ${lastSeen}` +
                        (lastProgress !== "" ? `; the bootstrap last said: ${lastProgress}` : ""),
                    `The bootstrap logs to /var/log/dify-bootstrap.log on instance ${inputs.instanceId} (the last ${LOG_TAIL_LINES} lines come with a failure); ` +
                        "raise dify-mcp-stack:readinessTimeoutMinutes if the image pull is just slow, then run pulumi up again",
                ),
            );
        }
        await new Promise((resolve) => setTimeout(resolve, inputs.pollIntervalSeconds * 1000));
    }
}

/** Progress lines go to the provider's stdout, which `pulumi up` shows as they come. */
function progressLog(inputs: DifyReadinessInputs): (line: string) => void {
    return (line) => console.log(`Dify on ${inputs.instanceId}: ${line}`);
}

export const difyReadinessProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: DifyReadinessInputs, news: DifyReadinessInputs) {
        return { inputs: news, failures: checkDifyReadiness(news) };
    },

    async diff(_id: string, olds: DifyReadinessOutputs, news: DifyReadinessInputs) {
        return diffDifyReadiness(olds, news);
    },

    async create(inputs: DifyReadinessInputs) {
        const seen = await waitForDify(inputs, progressLog(inputs));
        const outs: DifyReadinessOutputs = { ...inputs, ...seen };
        return { id: `${inputs.instanceId}-ready`, outs };
    },

    /**
     * One probe (with the client's read retries, no waiting): the version and setup step Dify reports now, so a
     * refresh shows an upgrade, or the setup done since the wait. Dify not answering says nothing about the wait
     * that already happened: the state is kept, with a warning.
     */
    async read(id: string, props?: DifyReadinessOutputs) {
        const state = props as DifyReadinessOutputs;
        try {
            const probe = await probeDify({ url: state.difyUrl, requestTimeoutMs: 10_000 });
            return { id, props: { ...state, setupStep: probe.setupStep, difyVersion: probe.version } };
        } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            console.warn(`warning: Dify at ${state.difyUrl} did not answer GET ${SETUP_PATH} (${reason}); keeping the recorded readiness.`);
            return { id, props: state };
        }
    },

    async update(_id: string, olds: DifyReadinessOutputs, news: DifyReadinessInputs) {
        const outs: DifyReadinessOutputs = { ...olds, ...news };
        return { outs };
    },

    // Nothing to delete: the wait leaves nothing behind.
    async delete() {
        return;
    },
};

/** What `new DifyReadiness(...)` takes. A new URL or instance means a new wait (replace); the timings update the state only. */
export interface DifyReadinessArgs {
    /** Dify's public base URL, e.g. http://203.0.113.10 (no path). Changing it replaces the resource: `up` waits again. */
    difyUrl: pulumi.Input<string>;
    /** The ECS instance that runs Dify. Changing it replaces the resource: `up` waits for the new instance. */
    instanceId: pulumi.Input<string>;
    /** How long `up` waits for Dify before failing, 1–14400 seconds. Changing it updates the state only. */
    timeoutSeconds: pulumi.Input<number>;
    /** Pause between probes, above 0 and at most 300 seconds. Default 15. Changing it updates the state only. */
    pollIntervalSeconds?: pulumi.Input<number>;
    /**
     * The instance's region: `up` then shows the bootstrap's progress and stops at a failed step (through Cloud
     * Assistant; needs ecs:RunCommand, ecs:DescribeInvocationResults, ecs:DescribeCloudAssistantStatus). Unset:
     * the public URL alone is watched. Changing it changes nothing on a finished wait.
     */
    regionId?: pulumi.Input<string>;
    /** ECS API endpoint; default the region's. Changing it changes nothing on a finished wait. */
    ecsEndpoint?: pulumi.Input<string>;
    /** How long the instance may take to boot and start the bootstrap, 1–3600 seconds. Default 600. */
    bootTimeoutSeconds?: pulumi.Input<number>;
    /**
     * Needs `regionId`: the wait ends only when the URL answers and this instance's bootstrap is done (behind a load
     * balancer other nodes may answer first). Default false. Changing it changes nothing on a finished wait.
     */
    waitForBootstrap?: pulumi.Input<boolean>;
    /** What the error says to check when the bootstrap finished but the URL stays silent. Changing it changes nothing on a finished wait. */
    unreachableHint?: pulumi.Input<string>;
}

/** Makes `pulumi up` wait until Dify's console API answers on the public address. */
export class DifyReadiness extends pulumi.dynamic.Resource {
    declare readonly setupStep: pulumi.Output<string>;
    declare readonly difyVersion: pulumi.Output<string>;
    declare readonly difyUrl: pulumi.Output<string>;

    constructor(name: string, args: DifyReadinessArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyReadinessProvider,
            name,
            { pollIntervalSeconds: 15, ...args, setupStep: undefined, difyVersion: undefined },
            // Registered as dify:DifyReadiness before the type tokens were made consistent: the alias keeps the URN.
            { ...opts, aliases: [{ type: "pulumi-nodejs:dynamic/dify:DifyReadiness" }, ...(opts?.aliases ?? [])] },
            "dify",
            "Readiness",
        );
    }
}
