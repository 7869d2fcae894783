// One capture run, inside the process run-capture.cjs starts: installs Pulumi mocks, records every RegisterResource
// request the program makes (type, name, parent, inputs, dependencies) exactly as the mock monitor receives it,
// runs the real index.ts or real components built by ./scenarios.ts, and writes the capture as JSON.
//
// The policy engine analyses a resource's inputs *after* its provider's Check (pulumi/pkg/resource/deploy/
// step_generator.go hands `inputs`, the checked ones, to every analyzer). For the project's dynamic resources
// that Check is our own code, so it runs here the way Pulumi's dynamic-provider host runs it
// (@pulumi/pulumi/cmd/dynamic-provider: revive the provider from the serialized `__provider` with
// require-from-string, call `check(olds, news)`, put `__provider` back) and the result is kept as `checkedInputs`.
// The alicloud provider's Check (defaults such as policy "accept") cannot run here: no plugin, no network.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { answerLookup, cloudOutputs, mockResourceId, type LookupAnswers } from "../../components/pulumi-mocks";
import { STUB_OUTPUTS } from "../../components/dynamic-stubs";
import { DYNAMIC_TYPE_PREFIX, type CaptureRequest, type CaptureResult, type CapturedResource } from "./protocol";

const root = path.resolve(__dirname, "..", "..", "..");
const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [root] }));

// Pulumi internals this run needs (not in the public typings).
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getProtect(): boolean;
    getIgnorechangesList(): string[];
    getProvider(): string;
    getObject(): unknown;
    getDependenciesList(): string[];
    getPropertydependenciesMap(): { forEach(callback: (value: { getUrnsList(): string[] }, key: string) => void): void };
}
interface RegisterResponse {
    getUrn(): string;
    getObject(): unknown;
}
type RegisterCallback = (err: unknown, response?: RegisterResponse) => void;
const mocksModule = require(path.join(pulumiDir, "runtime", "mocks")) as {
    MockMonitor: { prototype: { registerResource(req: RegisterRequest, callback: RegisterCallback): Promise<void> } };
};
const rpc = require(path.join(pulumiDir, "runtime", "rpc")) as { deserializeProperties(struct: unknown): Record<string, unknown> };
const settings = require(path.join(pulumiDir, "runtime", "settings")) as { waitForRPCs(): Promise<void> };
const requireFromString = require(require.resolve("require-from-string", { paths: [pulumiDir] })) as (code: string) => {
    handler(): { check?(olds: unknown, news: unknown): Promise<{ inputs?: Record<string, unknown>; failures?: Array<{ property: string; reason: string }> }> };
};
const { Struct } = require(require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [pulumiDir] })) as {
    Struct: { fromJavaScript(value: unknown): { toJavaScript(): Record<string, unknown> } };
};

const SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270";

/** Secrets travel in Pulumi's wire form; the policy SDK hands policies the plain values. */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (record[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE && "value" in record) {
            return unwrapSecrets(record.value);
        }
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

const captured: CapturedResource[] = [];
const pending = new Set<Promise<void>>();

// Record every RegisterResource request as the mock monitor receives it, and its URN from the answer.
const monitorPrototype = mocksModule.MockMonitor.prototype;
const registerResource = monitorPrototype.registerResource;
monitorPrototype.registerResource = function (req: RegisterRequest, callback: RegisterCallback) {
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((value, key) => {
        propertyDependencies[key] = value.getUrnsList();
    });
    const entry: Omit<CapturedResource, "urn" | "outputs"> = {
        type: req.getType(),
        name: req.getName(),
        parent: req.getParent() || undefined,
        custom: req.getCustom(),
        protect: req.getProtect(),
        ignoreChanges: req.getIgnorechangesList(),
        provider: req.getProvider() || undefined,
        dependencies: req.getDependenciesList(),
        propertyDependencies,
        inputs: unwrapSecrets(rpc.deserializeProperties(req.getObject())) as Record<string, unknown>,
    };
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    pending.add(finished);
    return registerResource.call(this, req, (err, response) => {
        if (!err && response) {
            captured.push({
                ...entry,
                urn: response.getUrn(),
                outputs: unwrapSecrets(rpc.deserializeProperties(response.getObject())) as Record<string, unknown>,
            });
        }
        pending.delete(finished);
        done();
        callback(err, response);
    });
};

/** Outputs the engine would report for a dynamic resource type ("pulumi-nodejs:dynamic/alibaba:RamOAuthApplication"). */
function dynamicOutputs(type: string): Record<string, unknown> {
    const typeName = type.split(":").pop() ?? "";
    return STUB_OUTPUTS[typeName] ?? STUB_OUTPUTS[`Dify${typeName}`] ?? {};
}

function installMocks(answers: LookupAnswers, preview: boolean): void {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type.startsWith(DYNAMIC_TYPE_PREFIX)) {
                    Object.assign(state, dynamicOutputs(args.type));
                }
                Object.assign(state, cloudOutputs(args));
                const id = args.type === "alicloud:ecs/ecsDisk:EcsDisk" ? `d-bp1mock${args.name.replace(/[^a-z0-9]/g, "")}` : mockResourceId(args.type, args.name);
                return { id, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                return answerLookup(args, answers);
            },
        },
        "dify-mcp-stack",
        "policy",
        preview,
    );
}

/** The Check the engine runs before analysis, as Pulumi's dynamic-provider host runs it. */
async function checkDynamic(resource: CapturedResource): Promise<void> {
    const providerText = resource.inputs.__provider;
    if (typeof providerText !== "string") {
        resource.checkError = "no __provider in the inputs";
        return;
    }
    try {
        const provider = requireFromString(providerText).handler();
        let inputs: Record<string, unknown> = resource.inputs;
        if (provider.check) {
            const result = await provider.check({}, resource.inputs);
            inputs = result.inputs ?? inputs;
            resource.checkFailures = result.failures ?? [];
        }
        inputs.__provider = providerText;
        resource.checkedInputs = Struct.fromJavaScript(inputs).toJavaScript();
    } catch (error) {
        resource.checkError = error instanceof Error ? error.message : String(error);
    }
}

/** Waits until the program's registrations (and the ones they start) have all been answered. */
async function settle(): Promise<void> {
    for (let quiet = 0; quiet < 3; ) {
        await settings.waitForRPCs();
        await Promise.all([...pending]);
        await new Promise((resolve) => setTimeout(resolve, 20));
        quiet = pending.size === 0 ? quiet + 1 : 0;
    }
}

async function main(): Promise<void> {
    const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8")) as CaptureRequest;
    const errors: string[] = [];
    process.on("unhandledRejection", (reason) => errors.push(reason instanceof Error ? reason.stack ?? reason.message : String(reason)));
    if (request.program) {
        const config = Object.fromEntries(Object.entries(request.program.config).map(([key, value]) => [key.includes(":") ? key : `dify-mcp-stack:${key}`, value]));
        pulumi.runtime.setAllConfig(config, (request.program.secretKeys ?? []).map((key) => (key.includes(":") ? key : `dify-mcp-stack:${key}`)));
    }
    installMocks(request.lookups ?? {}, request.preview ?? false);
    try {
        if (request.program) {
            require(path.join(root, "index.ts"));
        }
        if (request.cases && request.cases.length > 0) {
            const { SCENARIOS } = require("./scenarios") as typeof import("./scenarios");
            for (const c of request.cases) {
                const build = SCENARIOS[c.scenario];
                if (build === undefined) {
                    throw new Error(`no scenario "${c.scenario}" in scenarios.ts`);
                }
                build(c.name, c.args ?? {});
            }
        }
    } catch (error) {
        errors.push(error instanceof Error ? error.stack ?? error.message : String(error));
    }
    await settle();
    for (const resource of captured) {
        if (resource.type.startsWith(DYNAMIC_TYPE_PREFIX)) {
            await checkDynamic(resource);
        }
    }
    const result: CaptureResult = { resources: captured, errors };
    // A file, not stdout: the capture is megabytes (serialized providers), and exit does not wait for a pipe.
    fs.writeFileSync(process.argv[3], JSON.stringify(result));
}

main().then(
    () => process.exit(0),
    (error) => {
        process.stderr.write(String(error instanceof Error ? error.stack : error));
        process.exit(1);
    },
);
