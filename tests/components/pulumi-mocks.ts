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
    /** ACR Enterprise instances the account has (imageSource acr looks its instance up by id). */
    acrInstances?: Array<{ id: string; name: string }>;
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
/** Ids of the shape the cloud gives, where a component checks it. */
export const MOCK_IDS: Readonly<Record<string, string>> = {
    "alicloud:ecs/ecsDisk:EcsDisk": "d-bp1mockdatadisk",
    // An AccessKey's id is the key's id (letters and digits).
    "alicloud:ram/accessKey:AccessKey": "MockAccessKeyId0123456789",
};

/** The id the mocks give a resource: one of the cloud's shape where that matters (MOCK_IDS), else `<name>-id`. */
export function mockResourceId(type: string, name: string): string {
    return MOCK_IDS[type] ?? `${name}-id`;
}

/** What a RandomPassword without special characters gets (other than the admin's). */
export const MOCK_ALNUM_PASSWORD = "MockAlnumPassw0rd4Db7Redis9";
export const MOCK_ACCESS_KEY_SECRET = "MockAccessKeySecret0123456789ab";
export const MOCK_PRIVATE_IP = "172.16.10.23";
export const MOCK_ALB_DNS_NAME = "alb-mock0123456789.cn-hangzhou.alb.aliyuncsslb.com";

/** What the cloud would report for a resource beyond its inputs (addresses, generated passwords, ...). */
export function cloudOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
    switch (args.type) {
        case "alicloud:ecs/eipAddress:EipAddress":
            return { ipAddress: MOCK_EIP_ADDRESS };
        case "random:index/randomPassword:RandomPassword":
            if (args.name.includes("admin")) {
                return { result: MOCK_ADMIN_PASSWORD };
            }
            // Letters and digits only where the password asks for no special characters (database, Redis, keys).
            return { result: args.inputs.special === false ? MOCK_ALNUM_PASSWORD : MOCK_INIT_PASSWORD };
        case "alicloud:vpc/switch:Switch":
            return { zoneId: args.inputs.zoneId };
        case "alicloud:ecs/ecsKeyPair:EcsKeyPair":
            return { keyPairName: args.inputs.keyPairName };
        case "alicloud:vpc/natGateway:NatGateway":
            return { snatTableIds: `stb-${args.name}` };
        case "alicloud:rds/instance:Instance":
            return { connectionString: `pgm-${args.name}.pg.rds.aliyuncs.com`, port: "5432" };
        case "alicloud:kvstore/instance:Instance":
            return { connectionDomain: `r-${args.name}.redis.rds.aliyuncs.com`, privateConnectionPort: "6379" };
        case "alicloud:ram/accessKey:AccessKey":
            return { secret: MOCK_ACCESS_KEY_SECRET };
        case "random:index/randomString:RandomString":
            return { result: "k3x9q2ab" };
        case "alicloud:ecs/instance:Instance":
            return { privateIp: args.inputs.privateIp ?? MOCK_PRIVATE_IP };
        case "alicloud:alb/loadBalancer:LoadBalancer":
            return { dnsName: MOCK_ALB_DNS_NAME };
        case "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate":
            return { latestVersionNumber: 1 };
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
        case "alicloud:cs/getRegistryEnterpriseInstances:getRegistryEnterpriseInstances": {
            const ids = (args.inputs.ids as string[] | undefined) ?? [];
            const instances = (answers.acrInstances ?? [])
                .filter((instance) => ids.length === 0 || ids.includes(instance.id))
                .map((instance) => ({ ...instance, vpcEndpoints: [], publicEndpoints: [] }));
            return { instances, ids: instances.map((i) => i.id), names: instances.map((i) => i.name), id: "lookup" };
        }
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
                const id = stubId ?? mockResourceId(args.type, args.name);
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
