import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_EIP_ADDRESS, MOCK_INIT_PASSWORD, RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";
import { DifyHost } from "../../components/dify-host";
import { BASE_HOST_ARGS, hostArgsWith } from "./host-args";

vi.mock("../../dynamic-providers/dify/readiness", () => import("./dynamic-stubs"));

const baseArgs = BASE_HOST_ARGS;

let registered: RegisteredResource[];
let host: DifyHost;

function one(type: string): RegisteredResource {
    const found = registered.filter((r) => r.type === type);
    expect(found, type).toHaveLength(1);
    return found[0];
}

beforeAll(async () => {
    registered = installMocks();
    host = new DifyHost("dify", baseArgs);
    await valueOf(host.mcpOAuthCallbackUrl);
    await settle();
});

describe("DifyHost", () => {
    it("puts the EIP's address into Dify's URLs in the user data", async () => {
        const instance = one("alicloud:ecs/instance:Instance");
        const userData = Buffer.from(String(instance.inputs.userData), "base64").toString("utf8");
        expect(userData.startsWith("#cloud-config\n")).toBe(true);
        expect(userData).toContain(`DIFY_PUBLIC_URL='http://${MOCK_EIP_ADDRESS}'`);
        expect(userData).toContain("DIFY_VERSION='1.14.1'");
        // The data disk is found by its id, known before the instance boots.
        expect(userData).toContain("DIFY_DATA_DISK_SERIAL='bp1mockdatadisk'");
        expect(await valueOf(host.difyUrl)).toBe(`http://${MOCK_EIP_ADDRESS}`);
    });

    it("exports the MCP OAuth callback the RAM app must register", async () => {
        expect(await valueOf(host.mcpOAuthCallbackUrl)).toBe(`http://${MOCK_EIP_ADDRESS}/console/api/mcp/oauth/callback`);
        expect(await valueOf(host.publicIp)).toBe(MOCK_EIP_ADDRESS);
        expect(await valueOf(host.instanceId)).toBe("dify-instance-id");
    });

    it("keeps the user data and INIT_PASSWORD secret", async () => {
        expect(await pulumi.isSecret(host.bootstrap.userData)).toBe(true);
        expect(await pulumi.isSecret(host.initPassword)).toBe(true);
        expect(await valueOf(host.initPassword)).toBe(MOCK_INIT_PASSWORD);
    });

    it("sizes the instance for Dify with an explicit charge type and no second public IP", () => {
        const instance = one("alicloud:ecs/instance:Instance").inputs;
        expect(instance.instanceType).toBe("ecs.c7.large");
        expect(instance.systemDiskCategory).toBe("cloud_essd");
        expect(Number(instance.systemDiskSize)).toBeGreaterThanOrEqual(40);
        expect(instance.instanceChargeType).toBe("PostPaid");
        expect(instance.internetMaxBandwidthOut).toBe(0);
        expect(instance.securityGroups).toEqual(["sg-1"]);
        expect(instance.vswitchId).toBe("vsw-1");
    });

    it("keeps Dify's data on a disk of its own that outlives the instance", () => {
        const disk = one("alicloud:ecs/ecsDisk:EcsDisk").inputs;
        expect(disk.deleteWithInstance).toBe(false);
        expect(disk.zoneId).toBe("cn-hangzhou-j");
        expect(disk.size).toBe(100);
        const attachment = one("alicloud:ecs/ecsDiskAttachment:EcsDiskAttachment").inputs;
        expect(attachment.diskId).toBe("d-bp1mockdatadisk");
        expect(attachment.instanceId).toBe("dify-instance-id");
        expect(attachment.deleteWithInstance).toBe(false);
        // Not a part of the instance: nothing on the instance would delete it.
        expect(one("alicloud:ecs/instance:Instance").inputs.dataDisks).toBeUndefined();
    });

    it("associates the pre-allocated EIP with the instance", () => {
        const association = one("alicloud:ecs/eipAssociation:EipAssociation").inputs;
        expect(association.allocationId).toBe("dify-eip-id");
        expect(association.instanceId).toBe("dify-instance-id");
        expect(one("alicloud:ecs/eipAddress:EipAddress").inputs.internetChargeType).toBe("PayByTraffic");
    });

    it("tags every taggable resource, and the instance with the Dify version", () => {
        const taggable = registered.filter((r) => r.type.startsWith("alicloud:") && !/Attachment|Association/.test(r.type));
        expect(taggable.length).toBeGreaterThanOrEqual(3);
        for (const resource of taggable) {
            expect(resource.inputs.tags, resource.type).toMatchObject({ project: "dify-mcp-stack", stack: "test" });
        }
        expect(one("alicloud:ecs/instance:Instance").inputs.tags).toMatchObject({ "dify-version": "1.14.1" });
    });

    it("waits for Dify on the public URL of this instance", () => {
        const readiness = registered.find((r) => r.type.includes("DifyReadiness"));
        expect(readiness?.inputs).toMatchObject({
            difyUrl: `http://${MOCK_EIP_ADDRESS}`,
            instanceId: "dify-instance-id",
            timeoutSeconds: 45 * 60,
        });
    });

    it("adds no key pair unless asked, and a daily snapshot policy by default", () => {
        expect(registered.some((r) => r.type === "alicloud:ecs/ecsKeyPair:EcsKeyPair")).toBe(false);
        expect(one("alicloud:ecs/autoSnapshotPolicy:AutoSnapshotPolicy").inputs.retentionDays).toBe(7);
    });
});

describe("DifyHost options", () => {
    it("creates a snapshot policy, a key pair and an https URL when configured", async () => {
        const before = registered.length;
        const withExtras = new DifyHost(
            "extra",
            hostArgsWith({
                dataDiskSnapshotRetentionDays: 14,
                sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@example",
                domain: "dify.example.com",
                certEmail: "ops@example.com",
            }),
        );
        expect(await valueOf(withExtras.difyUrl)).toBe("https://dify.example.com");
        await settle();
        const added = registered.slice(before);
        const policy = added.find((r) => r.type === "alicloud:ecs/autoSnapshotPolicy:AutoSnapshotPolicy");
        expect(policy?.inputs.retentionDays).toBe(14);
        const policyAttachment = added.find((r) => r.type === "alicloud:ecs/ecsAutoSnapshotPolicyAttachment:EcsAutoSnapshotPolicyAttachment");
        expect(policyAttachment?.inputs.diskId).toBe("d-bp1mockdatadisk");
        const instance = added.find((r) => r.type === "alicloud:ecs/instance:Instance");
        expect(instance?.inputs.keyName).toBe("dify-test-admin");
        expect(await valueOf(withExtras.mcpOAuthCallbackUrl)).toBe("https://dify.example.com/console/api/mcp/oauth/callback");
    });
});
