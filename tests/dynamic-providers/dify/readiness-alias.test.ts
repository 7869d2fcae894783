// DifyReadiness's type token moved from dify:DifyReadiness to dify:Readiness; the class passes an alias to the
// old type so stacks created before the move keep their resource. Proven under the real Pulumi engine on a local
// file backend: a stack created with the old token previews with no change after the switch, and `up` moves the
// state to the new URN without waiting on Dify again. The control (the same switch without the alias) plans a
// create and a delete, so the test can fail.
//
// The program (plain JavaScript in a temp project) requires the compiled provider from dist/ and registers the
// resource by a config value `variant`:
//   old           raw dynamic Resource, type "dify"/"DifyReadiness", the props the class passes;
//   new           new DifyReadiness(...) (type "dify"/"Readiness", alias to the old type);
//   new-no-alias  raw dynamic Resource, type "dify"/"Readiness", no alias.
// The readiness probe is answered by a loopback setup-probe server in this process, so the CLI is run
// asynchronously (a blocking spawnSync would starve the server).
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalBackend, type PulumiRun, createLocalBackend, repoRoot, runPulumiAsync, writeJavaScriptProject } from "../../../scripts/pulumi-local-backend";
import { type SetupProbeServer, startSetupProbeServer } from "../../servers/setup-probe-server";

const COMPILED = path.join(repoRoot, "dist", "dynamic-providers", "dify", "readiness.js");
const OLD_TYPE = "pulumi-nodejs:dynamic/dify:DifyReadiness";
const NEW_TYPE = "pulumi-nodejs:dynamic/dify:Readiness";

const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const { DifyReadiness, difyReadinessProvider } = require(${JSON.stringify(COMPILED)});

const config = new pulumi.Config();
const variant = config.require("variant");
const difyUrl = config.require("difyUrl");

if (variant === "old") {
    // What DifyReadiness registered before the move: the class's props (pollIntervalSeconds given, the outputs
    // declared undefined) under dify:DifyReadiness.
    new pulumi.dynamic.Resource(difyReadinessProvider, "dify-ready", {
        pollIntervalSeconds: 1, difyUrl, instanceId: "i-test", timeoutSeconds: 30, setupStep: undefined, difyVersion: undefined,
    }, {}, "dify", "DifyReadiness");
} else if (variant === "new") {
    new DifyReadiness("dify-ready", { difyUrl, instanceId: "i-test", timeoutSeconds: 30, pollIntervalSeconds: 1 });
} else if (variant === "new-no-alias") {
    new pulumi.dynamic.Resource(difyReadinessProvider, "dify-ready", {
        pollIntervalSeconds: 1, difyUrl, instanceId: "i-test", timeoutSeconds: 30, setupStep: undefined, difyVersion: undefined,
    }, {}, "dify", "Readiness");
} else {
    throw new Error("unknown variant " + variant);
}
`;

interface PreviewStep {
    op: string;
    urn: string;
    oldState?: { urn?: string; type?: string };
    newState?: { urn?: string; type?: string; aliases?: string[] };
}

interface PreviewJson {
    steps?: PreviewStep[];
    changeSummary?: Record<string, number>;
}

interface StateResource {
    urn: string;
    type: string;
    id?: string;
    aliases?: string[];
}

let backend: LocalBackend;
let projectDir: string;
let dify: SetupProbeServer;

function pulumi(stack: string, args: string[]): Promise<PulumiRun> {
    return runPulumiAsync(backend, projectDir, [...args, "--stack", stack]);
}

async function succeed(stack: string, args: string[]): Promise<string> {
    const result = await pulumi(stack, args);
    if (result.status !== 0) {
        throw new Error(`pulumi ${args.join(" ")} (stack ${stack}) exited ${result.status}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`);
    }
    return result.stdout;
}

/** `stack init`, then `up` with the old registration: the state a stack had before the type token moved. */
async function createOldStack(stack: string): Promise<void> {
    await succeed(stack, ["stack", "init", "--secrets-provider", "passphrase"]);
    await succeed(stack, ["config", "set", "difyUrl", dify.url]);
    await useVariant(stack, "old");
    await succeed(stack, ["up", "--yes", "--skip-preview"]);
}

async function useVariant(stack: string, variant: "old" | "new" | "new-no-alias"): Promise<void> {
    await succeed(stack, ["config", "set", "variant", variant]);
}

/** `preview --json --show-sames`: without --show-sames the JSON leaves out every "same" step but the stack's. */
async function preview(stack: string): Promise<PreviewJson> {
    const stdout = await succeed(stack, ["preview", "--json", "--show-sames"]);
    return JSON.parse(stdout) as PreviewJson;
}

async function readinessResources(stack: string): Promise<StateResource[]> {
    const state = JSON.parse(await succeed(stack, ["stack", "export"])) as { deployment: { resources?: StateResource[] } };
    return (state.deployment.resources ?? []).filter((resource) => resource.urn.endsWith("::dify-ready"));
}

/** The steps of the program's own resource (the stack resource left out). */
function readinessSteps(plan: PreviewJson): PreviewStep[] {
    return (plan.steps ?? []).filter((step) => step.urn.endsWith("::dify-ready"));
}

function readinessOps(plan: PreviewJson): string[] {
    return readinessSteps(plan).map((step) => step.op);
}

beforeAll(async () => {
    if (!fs.existsSync(COMPILED)) {
        throw new Error(`${COMPILED} is missing: run \`npm run build\` first`);
    }
    dify = await startSetupProbeServer({ failuresBeforeReady: 0 });
    backend = createLocalBackend({ passphrase: "readiness-alias-test" });
    projectDir = path.join(backend.dir, "project");
    writeJavaScriptProject(projectDir, "readiness-alias", PROGRAM);
}, 60_000);

afterAll(async () => {
    backend?.cleanup();
    await dify?.close();
});

describe("DifyReadiness's alias to dify:DifyReadiness under the engine", () => {
    it("keeps a stack created with the old type token: preview plans no change, up records the new URN", async () => {
        await createOldStack("migrate");
        const before = await readinessResources("migrate");
        expect(before.map((resource) => resource.type)).toEqual([OLD_TYPE]);
        const probesAfterCreate = dify.probes();
        expect(probesAfterCreate).toBe(1);

        await useVariant("migrate", "new");
        const plan = await preview("migrate");
        expect(readinessOps(plan), JSON.stringify(plan.steps, null, 2)).toEqual(["same"]);
        expect(new Set((plan.steps ?? []).map((step) => step.op))).toEqual(new Set(["same"]));
        const changes = Object.entries(plan.changeSummary ?? {}).filter(([op, count]) => op !== "same" && count > 0);
        expect(changes, JSON.stringify(plan.changeSummary)).toEqual([]);
        expect(plan.changeSummary?.same).toBe(2);
        // The engine matched the new registration to the old state through the alias.
        const [step] = readinessSteps(plan);
        expect(step.urn).toContain(`::${NEW_TYPE}::dify-ready`);
        expect(step.oldState?.urn).toContain(`::${OLD_TYPE}::dify-ready`);
        expect(step.newState?.aliases).toEqual([step.oldState?.urn]);

        await succeed("migrate", ["up", "--yes", "--skip-preview"]);
        const after = await readinessResources("migrate");
        expect(after, JSON.stringify(after, null, 2)).toHaveLength(1);
        expect(after[0].type).toBe(NEW_TYPE);
        expect(after[0].urn).toContain(`::${NEW_TYPE}::dify-ready`);
        expect(after.some((resource) => resource.urn.includes(OLD_TYPE))).toBe(false);
        // The same resource, not a new wait: same id, and Dify was not probed again.
        expect(after[0].id).toBe(before[0].id);
        expect(dify.probes()).toBe(probesAfterCreate);

        // Settled: the next preview is all "same" too.
        const next = await preview("migrate");
        expect(readinessOps(next)).toEqual(["same"]);
    }, 120_000);

    it("control: without the alias the same switch plans a create and a delete", async () => {
        await createOldStack("control");
        await useVariant("control", "new-no-alias");
        const plan = await preview("control");
        const ops = readinessOps(plan).sort();
        expect(ops, JSON.stringify(plan.steps, null, 2)).toEqual(["create", "delete"]);
        expect(plan.changeSummary).toMatchObject({ create: 1, delete: 1 });
    }, 120_000);
});
