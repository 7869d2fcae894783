// The whole program (index.ts) with `topology: ha`, under Pulumi's mocks: every resource of the graph, how it is
// spread over the two zones, the network rules between the tiers, and that no secret reaches a resource or a stack
// output in plain text. The components' own tests (tests/components/ha/) go into each piece in detail.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { importProgram, Program } from "./program-under-mocks";
import { MOCK_ACCESS_KEY_SECRET, MOCK_ADMIN_PASSWORD, MOCK_ALNUM_PASSWORD, MOCK_INIT_PASSWORD, RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";
import { STUB_TYPE_PREFIX } from "./dynamic-stubs";

const DASHSCOPE_KEY = "sk-test-0123456789abcdef";
const SECRET_VALUES = [MOCK_INIT_PASSWORD, MOCK_ADMIN_PASSWORD, MOCK_ALNUM_PASSWORD, MOCK_ACCESS_KEY_SECRET, DASHSCOPE_KEY];
/** Pulumi's wire form of a secret: `{ [SECRET_SIG]: SECRET_VALUE_SIG, value }`. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";

let registered: RegisteredResource[];
let program: Program;
/** Where a secret value reached the engine outside a secret: "<resource> <property path>". */
const plainSecrets: string[] = [];

/** Walks a resource's serialized inputs; secrets (wire form) are skipped, any secret value elsewhere is recorded. */
function findPlainSecrets(value: unknown, where: string): void {
    if (typeof value === "string") {
        for (const secret of SECRET_VALUES) {
            if (value.includes(secret)) {
                plainSecrets.push(where);
            }
        }
    } else if (Array.isArray(value)) {
        value.forEach((item, i) => findPlainSecrets(item, `${where}[${i}]`));
    } else if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (SIG_KEY in record) {
            return;
        }
        for (const [key, item] of Object.entries(record)) {
            findPlainSecrets(item, `${where}.${key}`);
        }
    }
}

function ofType(type: string): RegisteredResource[] {
    return registered.filter((resource) => resource.type === type);
}

function one(type: string): RegisteredResource {
    const found = ofType(type);
    expect(found, type).toHaveLength(1);
    return found[0];
}

beforeAll(async () => {
    pulumi.runtime.setAllConfig(
        {
            "alicloud:region": "cn-hangzhou",
            "dify-mcp-stack:topology": "ha",
            "dify-mcp-stack:domain": "dify.example.com",
            "dify-mcp-stack:certificateId": "12345-cn-hangzhou",
            "dify-mcp-stack:adminEmail": "ops@example.com",
            "dify-mcp-stack:dashscopeApiKey": DASHSCOPE_KEY,
        },
        ["dify-mcp-stack:dashscopeApiKey"],
    );
    registered = installMocks({
        instanceTypes: [{ id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-k", "cn-hangzhou-h", "cn-hangzhou-j"] }],
    });
    // Read what the engine receives, secrets still in their wire form (installMocks' record unwraps them).
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(request: { getName(): string; getObject(): { toJavaScript(): unknown } | undefined }, callback: unknown): void;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (request, callback) => {
        findPlainSecrets(request.getObject()?.toJavaScript(), request.getName());
        register(request, callback);
    };
    program = await importProgram();
    await valueOf(program.agentAppId);
    await settle();
});

describe("topology ha: the whole program", () => {
    it("builds the managed tiers and no single host", () => {
        for (const type of [
            "alicloud:rds/instance:Instance",
            "alicloud:rds/backupPolicy:BackupPolicy",
            "alicloud:kvstore/instance:Instance",
            "alicloud:oss/bucket:Bucket",
            "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "alicloud:ram/accessKey:AccessKey",
            "alicloud:vpc/natGateway:NatGateway",
            "alicloud:alb/loadBalancer:LoadBalancer",
            "alicloud:alb/serverGroup:ServerGroup",
            "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate",
            "alicloud:pvtz/zone:Zone",
        ]) {
            one(type);
        }
        expect(ofType("alicloud:rds/database:Database").map((db) => db.inputs.dataBaseName ?? db.inputs.name).sort()).toEqual(["dify", "dify_plugin"]);
        expect(ofType("alicloud:alb/listener:Listener").map((listener) => listener.inputs.listenerPort).sort()).toEqual([443, 80]);
        // The single topology's host, data disk and public address are not part of it.
        expect(ofType("alicloud:ecs/ecsDisk:EcsDisk")).toEqual([]);
        expect(ofType("alicloud:ecs/eipAssociation:EipAssociation").map((association) => association.inputs.instanceType)).toEqual(["Nat"]);
        expect(ofType("alicloud:ecs/instance:Instance").map((instance) => instance.name)).toEqual(["dify-singleton"]);
    });

    it("spreads every tier over the two zones", () => {
        const zonesOf = (tier: string) =>
            ofType("alicloud:vpc/switch:Switch")
                .filter((vswitch) => vswitch.name.startsWith(`dify-${tier}-`))
                .map((vswitch) => vswitch.inputs.zoneId);
        for (const tier of ["lb", "app", "data"]) {
            expect(new Set(zonesOf(tier)), tier).toEqual(new Set(["cn-hangzhou-h", "cn-hangzhou-j"]));
        }
        const rds = one("alicloud:rds/instance:Instance").inputs;
        expect(rds.category).toBe("HighAvailability");
        expect([rds.zoneId, rds.zoneIdSlaveA]).toEqual(["cn-hangzhou-h", "cn-hangzhou-j"]);
        const redis = one("alicloud:kvstore/instance:Instance").inputs;
        expect([redis.zoneId, redis.secondaryZoneId]).toEqual(["cn-hangzhou-h", "cn-hangzhou-j"]);
        const groups = ofType("alicloud:ess/scalingGroup:ScalingGroup");
        expect(groups.map((group) => (group.inputs.vswitchIds as string[]).join())).toEqual(["dify-app-a-id", "dify-app-b-id"]);
        expect(groups.map((group) => group.inputs.minSize)).toEqual([1, 1]);
        const alb = one("alicloud:alb/loadBalancer:LoadBalancer").inputs;
        expect((alb.zoneMappings as { zoneId: string }[]).map((mapping) => mapping.zoneId)).toEqual(["cn-hangzhou-h", "cn-hangzhou-j"]);
    });

    it("lets each tier be reached only from the one before it", () => {
        const rules = ofType("alicloud:ecs/securityGroupRule:SecurityGroupRule").map((rule) => rule.inputs);
        const open = rules.filter((rule) => rule.cidrIp === "0.0.0.0/0" && rule.policy === "accept");
        // Only the ALB's group admits the internet (allowedCidrs' default), on 80 and 443.
        expect(open.map((rule) => `${rule.securityGroupId} ${rule.portRange}`).sort()).toEqual(["dify-alb-sg-id 443/443", "dify-alb-sg-id 80/80"]);
        const app = rules.filter((rule) => rule.securityGroupId === "dify-app-sg-id");
        expect(app.map((rule) => `${rule.portRange} ${rule.cidrIp}`).sort()).toEqual(["80/80 172.16.0.0/24", "80/80 172.16.1.0/24"]);
        const singleton = rules.filter((rule) => rule.securityGroupId === "dify-singleton-sg-id");
        expect(singleton.map((rule) => `${rule.portRange} ${rule.cidrIp}`).sort()).toEqual(["5002/5002 172.16.10.0/24", "5002/5002 172.16.11.0/24"]);
        expect(one("alicloud:rds/instance:Instance").inputs.securityIps).toEqual(["172.16.10.0/24", "172.16.11.0/24"]);
        expect(one("alicloud:kvstore/instance:Instance").inputs.securityIps).toEqual(["172.16.10.0/24", "172.16.11.0/24"]);
        // No node has a public address: the singleton and the launch template.
        expect(ofType("alicloud:ecs/instance:Instance")[0].inputs.internetMaxBandwidthOut ?? 0).toBe(0);
        expect(one("alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate").inputs.internetMaxBandwidthOut ?? 0).toBe(0);
    });

    it("waits for the singleton's own bootstrap (it migrates) before Dify's admin, and serves Dify on the domain", async () => {
        const readiness = registered.filter((resource) => resource.type === `${STUB_TYPE_PREFIX}DifyReadiness`);
        expect(readiness).toHaveLength(1);
        expect(readiness[0].inputs).toMatchObject({ difyUrl: "https://dify.example.com", waitForBootstrap: true, instanceId: "dify-singleton-id" });
        expect(await valueOf(program.difyUrl)).toBe("https://dify.example.com");
        expect(await valueOf(program.mcpOAuthCallbackUrl)).toBe("https://dify.example.com/console/api/mcp/oauth/callback");
        expect(await valueOf(program.dnsInstructions)).toContain("dify.example.com");
        expect(program.publicIp).toBeUndefined();
        expect(program.dataDiskId).toBeUndefined();
    });

    it("hands no secret to any resource or output in plain text", async () => {
        expect(plainSecrets).toEqual([]);
        for (const [name, output] of Object.entries(program)) {
            if (!pulumi.Output.isInstance(output)) {
                continue;
            }
            const text = JSON.stringify(await valueOf(output)) ?? "";
            if (SECRET_VALUES.some((secret) => text.includes(secret))) {
                expect(await pulumi.isSecret(output), name).toBe(true);
            }
        }
    });
});
