import * as pulumi from "@pulumi/pulumi";
import { STUB_IDS, STUB_OUTPUTS, STUB_TYPE_PREFIX } from "./dynamic-stubs";

/** A resource the program registered, as Pulumi's mock monitor saw it. */
export interface RegisteredResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

/** Canned answers for the data-source lookups the components make at preview time. */
export interface LookupAnswers {
    instanceTypes?: Array<{ id: string; cpuCoreCount: number; memorySize: number; availabilityZones: string[] }>;
    imageId?: string;
    /** Outputs a resource (by name) reports beyond its inputs, e.g. an existing disk's `encrypted: false`. */
    state?: Record<string, Record<string, unknown>>;
}

const SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d";

/** Mock inputs carry secrets in Pulumi's wire form; tests look at the plain values. */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (SECRET_SIGNATURE_KEY in record && "value" in record) {
            return unwrapSecrets(record.value);
        }
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

export const MOCK_EIP_ADDRESS = "198.51.100.23";
export const MOCK_INIT_PASSWORD = "Init-Pass=word/&12";
export const MOCK_ADMIN_PASSWORD = "AdminPassw0rdGenerated99";

/** What the cloud would report for a resource beyond its inputs (addresses, generated passwords, ...). */
export function cloudOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
    switch (args.type) {
        case "alicloud:ecs/eipAddress:EipAddress":
            return { ipAddress: MOCK_EIP_ADDRESS };
        case "random:index/randomPassword:RandomPassword":
            return { result: args.name.includes("admin") ? MOCK_ADMIN_PASSWORD : MOCK_INIT_PASSWORD };
        case "alicloud:vpc/switch:Switch":
            return { zoneId: args.inputs.zoneId };
        case "alicloud:ecs/ecsKeyPair:EcsKeyPair":
            return { keyPairName: args.inputs.keyPairName };
        default:
            return {};
    }
}

/** Canned answers for the alicloud data-source lookups the components make. */
export function answerLookup(args: pulumi.runtime.MockCallArgs, answers: LookupAnswers): Record<string, unknown> {
    switch (args.token) {
        case "alicloud:ecs/getInstanceTypes:getInstanceTypes": {
            const all = answers.instanceTypes ?? [
                { id: "ecs.u1-c1m2.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-j", "cn-hangzhou-k"] },
                { id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-h"] },
            ];
            const wanted = args.inputs.instanceType as string | undefined;
            return { instanceTypes: wanted ? all.filter((t) => t.id === wanted) : all, ids: [] };
        }
        case "alicloud:ecs/getImages:getImages":
            return { images: [{ id: answers.imageId ?? "ubuntu_22_04_x64_20G_alibase_20260522.vhd" }], ids: [] };
        default:
            throw new Error(`unexpected lookup ${args.token}`);
    }
}

/**
 * Installs Pulumi mocks that record every registered resource and answer the alicloud lookups. Must be called
 * before the components under test are constructed.
 */
export function installMocks(answers: LookupAnswers = {}): RegisteredResource[] {
    const registered: RegisteredResource[] = [];
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
                registered.push({ type: args.type, name: args.name, inputs: unwrapSecrets(args.inputs) as Record<string, unknown> });
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type.startsWith(STUB_TYPE_PREFIX)) {
                    Object.assign(state, STUB_OUTPUTS[args.type.slice(STUB_TYPE_PREFIX.length)]);
                }
                Object.assign(state, cloudOutputs(args), answers.state?.[args.name]);
                const stubId = args.type.startsWith(STUB_TYPE_PREFIX) ? STUB_IDS[args.type.slice(STUB_TYPE_PREFIX.length)] : undefined;
                const id = stubId ?? (args.type === "alicloud:ecs/ecsDisk:EcsDisk" ? "d-bp1mockdatadisk" : `${args.name}-id`);
                return { id, state };
            },
            call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
                return answerLookup(args, answers);
            },
        },
        "dify-mcp-stack",
        "test",
        false,
    );
    return registered;
}

/** The resolved value of an output (secret or not). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

/** Waits until the registrations started so far have reached the mock monitor. */
export async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}
