import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
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

/** Waits for GET <difyUrl>/console/api/setup through the one Dify client; a timeout says what was last seen. */
async function waitForDify(inputs: DifyReadinessInputs): Promise<{ setupStep: string; difyVersion: string }> {
    try {
        const probe = await probeDify(
            { url: inputs.difyUrl, requestTimeoutMs: 10_000 },
            { waitSeconds: inputs.timeoutSeconds, pollSeconds: inputs.pollIntervalSeconds },
        );
        return { setupStep: probe.setupStep, difyVersion: probe.version };
    } catch (error) {
        const lastSeen = error instanceof Error ? error.message : String(error);
        throw new Error(
            joinSentences(
                `Dify at ${inputs.difyUrl} did not answer GET ${SETUP_PATH} within ${inputs.timeoutSeconds}s; last seen: ${lastSeen}`,
                `The bootstrap logs to /var/log/dify-bootstrap.log on instance ${inputs.instanceId}; ` +
                    "raise dify-mcp-stack:readinessTimeoutMinutes if the image pull is just slow, then run pulumi up again",
            ),
        );
    }
}

export const difyReadinessProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: DifyReadinessInputs, news: DifyReadinessInputs) {
        return { inputs: news, failures: checkDifyReadiness(news) };
    },

    async diff(_id: string, olds: DifyReadinessOutputs, news: DifyReadinessInputs) {
        return diffDifyReadiness(olds, news);
    },

    async create(inputs: DifyReadinessInputs) {
        const seen = await waitForDify(inputs);
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
