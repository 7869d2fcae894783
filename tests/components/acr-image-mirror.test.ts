// imageSource acr under Pulumi mocks: the program (index.ts) with an ACR instance id creates the namespaces, one
// public repository and one exact-tag subscription rule per Docker Hub repository of the release, links the
// stack's own VPC and vSwitch, and hands the registry's VPC endpoint to the bootstrap (DIFY_IMAGE_REGISTRY); at
// preview it warns once about what it cannot do. The mocks also answer the ACR instance lookup.
import { beforeAll, describe, expect, it, vi } from "vitest";
import { importProgram } from "./program-under-mocks";
import * as pulumi from "@pulumi/pulumi";
import { RegisteredResource, answerLookup, cloudOutputs, settle, valueOf } from "./pulumi-mocks";
import { STUB_IDS, STUB_OUTPUTS, STUB_TYPE_PREFIX } from "./dynamic-stubs";
import {
    ACR_BILLING_PAGE,
    AcrImageMirror,
    acrManualStepsMessage,
    acrRegistryHost,
} from "../../components/acr-image-mirror";
import { DIFY_IMAGES, dockerHubRepositories, exactTagsRegexp } from "../../rules/dify-images";


const INSTANCE_ID = "cri-testinstance01";
const INSTANCE_NAME = "dify-images";
const REGISTRY_HOST = `${INSTANCE_NAME}-registry-vpc.cn-hangzhou.cr.aliyuncs.com`;
const ACR_LOOKUP = "alicloud:cs/getRegistryEnterpriseInstances:getRegistryEnterpriseInstances";

const NAMESPACE = "alicloud:cs/registryEnterpriseNamespace:RegistryEnterpriseNamespace";
const REPOSITORY = "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo";
const RULE = "alicloud:cr/artifactSubscriptionRule:ArtifactSubscriptionRule";
const VPC_LINK = "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc";

type Program = Record<string, pulumi.Output<unknown>>;

let registered: RegisteredResource[];
let lookups: pulumi.runtime.MockCallArgs[];
let program: Program;

/** Secret inputs arrive in Pulumi's wire form; the tests look at the plain values (as pulumi-mocks.ts does). */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (pulumi.runtime.specialSigKey in record && "value" in record) {
            return unwrapSecrets(record.value);
        }
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/** installMocks of pulumi-mocks.ts, plus the ACR instance lookup and the rule ids the cloud assigns. */
function installAcrMocks(preview: boolean): RegisteredResource[] {
    const resources: RegisteredResource[] = [];
    lookups = [];
    pulumi.runtime.setMocks(
        {
            newResource(args) {
                resources.push({ type: args.type, name: args.name, inputs: unwrapSecrets(args.inputs) as Record<string, unknown> });
                const stub = args.type.startsWith(STUB_TYPE_PREFIX) ? args.type.slice(STUB_TYPE_PREFIX.length) : undefined;
                const state: Record<string, unknown> = { ...args.inputs, ...(stub ? STUB_OUTPUTS[stub] : {}), ...cloudOutputs(args) };
                if (args.type === RULE) {
                    state.artifactSubscriptionRuleId = `crasr-${args.name}`;
                }
                const id = (stub ? STUB_IDS[stub] : undefined) ?? (args.type === "alicloud:ecs/ecsDisk:EcsDisk" ? "d-bp1mockdatadisk" : `${args.name}-id`);
                return { id, state };
            },
            call(args) {
                if (args.token === ACR_LOOKUP) {
                    lookups.push(args);
                    const ids = (args.inputs.ids as string[] | undefined) ?? [];
                    const instances = ids.includes(INSTANCE_ID) ? [{ id: INSTANCE_ID, name: INSTANCE_NAME, vpcEndpoints: [], publicEndpoints: [] }] : [];
                    return { instances, ids: instances.map((i) => i.id), names: instances.map((i) => i.name), id: "lookup" };
                }
                return answerLookup(args, {});
            },
        },
        "dify-mcp-stack",
        "test",
        preview,
    );
    return resources;
}

function ofType(type: string): RegisteredResource[] {
    return registered.filter((r) => r.type === type);
}

function userDataOf(): string {
    const instances = ofType("alicloud:ecs/instance:Instance");
    expect(instances).toHaveLength(1);
    return Buffer.from(String(instances[0].inputs.userData), "base64").toString("utf8");
}

beforeAll(async () => {
    pulumi.runtime.setAllConfig(
        {
            "alicloud:region": "cn-hangzhou",
            "dify-mcp-stack:imageSource": "acr",
            "dify-mcp-stack:acrInstanceId": INSTANCE_ID,
            "dify-mcp-stack:adminEmail": "ops@example.com",
            "dify-mcp-stack:dashscopeApiKey": "sk-test-0123456789abcdef",
        },
        ["dify-mcp-stack:dashscopeApiKey"],
    );
    registered = installAcrMocks(false);
    program = await importProgram();
    await valueOf(program.agentAppId);
    await valueOf(program.acrSubscriptionRuleIds);
    await settle();
});

describe("imageSource acr in the program (index.ts)", () => {
    const repositories = dockerHubRepositories(DIFY_IMAGES["1.14.1"]);

    it("creates one public namespace per Docker Hub namespace of Dify 1.14.1's images, in the given instance", () => {
        const namespaces = ofType(NAMESPACE).map((r) => r.inputs);
        expect(namespaces.map((n) => n.name).sort()).toEqual(["certbot", "langgenius", "library", "semitechnologies", "ubuntu"]);
        for (const namespace of namespaces) {
            expect(namespace).toMatchObject({ instanceId: INSTANCE_ID, autoCreate: false, defaultVisibility: "PUBLIC" });
        }
    });

    it("creates one repository and one rule per Docker Hub repository, copying exactly the release's tag", () => {
        expect(ofType(REPOSITORY)).toHaveLength(repositories.length);
        const rules = ofType(RULE).map((r) => r.inputs);
        expect(rules).toHaveLength(repositories.length);
        for (const source of repositories) {
            const rule = rules.find((r) => r.sourceNamespaceName === source.namespace && r.sourceRepoName === source.repository);
            expect(rule, `${source.namespace}/${source.repository}`).toEqual({
                instanceId: INSTANCE_ID,
                sourceProvider: "DOCKER_HUB",
                sourceNamespaceName: source.namespace,
                sourceRepoName: source.repository,
                namespaceName: source.namespace,
                repoName: source.repository,
                tagRegexp: exactTagsRegexp(source.tags),
                tagCount: 1,
                platforms: ["linux/amd64"],
                override: true,
            });
            const repository = ofType(REPOSITORY).find((r) => r.inputs.namespace === source.namespace && r.inputs.name === source.repository);
            expect(repository?.inputs).toMatchObject({ instanceId: INSTANCE_ID, repoType: "PUBLIC" });
        }
        const api = rules.find((r) => r.sourceRepoName === "dify-api");
        expect(api?.tagRegexp).toBe("^1\\.14\\.1$");
        const daemon = rules.find((r) => r.sourceRepoName === "dify-plugin-daemon");
        expect(daemon?.tagRegexp).toBe("^0\\.6\\.0-local$");
        const nginx = rules.find((r) => r.sourceRepoName === "nginx");
        expect(nginx).toMatchObject({ sourceNamespaceName: "library", tagRegexp: "^latest$" });
    });

    it("links the stack's own VPC and vSwitch to the registry, with a PrivateZone record", () => {
        const links = ofType(VPC_LINK);
        expect(links).toHaveLength(1);
        expect(links[0].inputs).toEqual({
            instanceId: INSTANCE_ID,
            vpcId: "dify-vpc-id",
            vswitchId: "dify-vswitch-id",
            moduleName: "Registry",
            enableCreateDnsRecordInPvzt: true,
        });
        expect(ofType("alicloud:vpc/network:Network").map((r) => r.name)).toEqual(["dify-vpc"]);
        expect(ofType("alicloud:vpc/switch:Switch").map((r) => r.name)).toEqual(["dify-vswitch"]);
    });

    it("looks the instance up by id without asking for a login token", () => {
        expect(lookups).toHaveLength(1);
        expect(lookups[0].inputs).toMatchObject({ ids: [INSTANCE_ID], enableDetails: false });
    });

    it("passes the registry's VPC endpoint into the user data, with no registry mirrors", () => {
        const userData = userDataOf();
        expect(userData).toContain(`DIFY_IMAGE_REGISTRY='${REGISTRY_HOST}'`);
        expect(userData).toContain("DIFY_REGISTRY_MIRRORS=''");
    });

    it("exports the rule ids for the first sync", async () => {
        const ids = (await valueOf(program.acrSubscriptionRuleIds)) as string[];
        expect(ids).toHaveLength(repositories.length);
        expect(ids.every((id) => id.startsWith("crasr-dify-sync-"))).toBe(true);
    });
});

describe("AcrImageMirror on its own", () => {
    it("warns once at preview with the manual steps, the cost and its source", async () => {
        registered = installAcrMocks(true);
        const warn = vi.spyOn(pulumi.log, "warn").mockImplementation(async () => undefined);
        const mirror = new AcrImageMirror("preview", {
            instanceId: INSTANCE_ID,
            region: "cn-hangzhou",
            difyVersion: "1.8.0",
            vpcId: "vpc-1",
            vswitchId: "vsw-1",
            platform: "linux/arm64",
        });
        await settle();
        const ours = warn.mock.calls.filter(([, resource]) => resource === mirror);
        expect(ours).toHaveLength(1);
        const message = String(ours[0][0]);
        expect(message).toBe(acrManualStepsMessage(INSTANCE_ID, 10));
        expect(message).toContain('Basic is "starting at USD 113/month" in China');
        expect(message).toContain(ACR_BILLING_PAGE);
        expect(message).toContain("2026-11-30");
        expect(message).toContain("no pay-as-you-go");
        expect(message).toContain(`aliyun cr CreateArtifactSubscriptionTask --InstanceId ${INSTANCE_ID} --RuleId <rule>`);
        expect(message).toContain("5 times, a minute apart");
        warn.mockRestore();
        // Dify 1.8.0 has no busybox; the platform follows the host's architecture.
        const rules = registered.filter((r) => r.type === RULE && r.name.startsWith("preview-"));
        expect(rules).toHaveLength(10);
        expect(rules.every((r) => JSON.stringify(r.inputs.platforms) === JSON.stringify(["linux/arm64"]))).toBe(true);
        expect(rules.find((r) => r.inputs.sourceRepoName === "weaviate")?.inputs.tagRegexp).toBe("^1\\.19\\.0$");
        expect(mirror.repositoryNames).not.toContain("library/busybox");
    });

    it("refuses a release whose images are not listed", () => {
        expect(
            () => new AcrImageMirror("unknown", { instanceId: INSTANCE_ID, region: "cn-hangzhou", difyVersion: "1.13.0", vpcId: "vpc-1", vswitchId: "vsw-1" }),
        ).toThrow("the images of Dify 1.13.0 are not listed (rules/dify-images.ts lists 1.8.0, 1.14.1)");
    });

    it("takes the registry host Alibaba reports once a VPC is linked, else builds it from the instance name", () => {
        const reported = { id: INSTANCE_ID, name: INSTANCE_NAME, vpcEndpoints: ["other.example.com", "dify-images-registry-vpc.cn-hangzhou.cr.aliyuncs.com"] };
        expect(acrRegistryHost([reported], INSTANCE_ID, "cn-hangzhou")).toBe(REGISTRY_HOST);
        expect(acrRegistryHost([{ ...reported, vpcEndpoints: [] }], INSTANCE_ID, "cn-hangzhou")).toBe(REGISTRY_HOST);
    });

    it("names the setting when the account has no instance with the id", () => {
        expect(() => acrRegistryHost([], "cri-missing1", "cn-hangzhou")).toThrow(
            'dify-mcp-stack:acrInstanceId is "cri-missing1", but the account has no Container Registry Enterprise Edition instance with that id in cn-hangzhou',
        );
    });
});
