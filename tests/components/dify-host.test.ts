import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_EIP_ADDRESS, MOCK_INIT_PASSWORD, RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";
import { DifyHost } from "../../components/dify-host";
import { BASE_HOST_ARGS, buildHostRecordingOptions, hostArgsWith } from "./host-args";
import { STUB_REGISTRATIONS } from "./dynamic-stubs";
import * as crypto from "crypto";
import { gunzipSync } from "zlib";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";

vi.mock("../../dynamic-providers/dify/readiness", () => import("./dynamic-stubs"));
vi.mock("../../dynamic-providers/dify/instance-configuration", () => import("./dynamic-stubs"));

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
        expect(userData).toContain(`DIFY_PUBLIC_URL='https://${MOCK_EIP_ADDRESS}'`);
        expect(userData).toContain("DIFY_VERSION='1.14.1'");
        // The data disk is found by its id, known before the instance boots.
        expect(userData).toContain("DIFY_DATA_DISK_SERIAL='bp1mockdatadisk'");
        expect(await valueOf(host.difyUrl)).toBe(`https://${MOCK_EIP_ADDRESS}`);
    });

    it("exports the MCP OAuth callback the RAM app must register", async () => {
        expect(await valueOf(host.mcpOAuthCallbackUrl)).toBe(`https://${MOCK_EIP_ADDRESS}/console/api/mcp/oauth/callback`);
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

    it("waits for Dify on the public URL of this instance, following its bootstrap in the stack's region", () => {
        const readiness = registered.find((r) => r.type.includes("DifyReadiness"));
        expect(readiness?.inputs).toMatchObject({
            difyUrl: `https://${MOCK_EIP_ADDRESS}`,
            instanceId: "dify-instance-id",
            timeoutSeconds: 45 * 60,
            regionId: "cn-hangzhou",
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

    it("serves plain http://<EIP> only with plainHttp, in Dify's URLs, the callback and the readiness probe", async () => {
        const before = registered.length;
        const plain = new DifyHost("plain", hostArgsWith({ plainHttp: true }));
        expect(await valueOf(plain.difyUrl)).toBe(`http://${MOCK_EIP_ADDRESS}`);
        expect(await valueOf(plain.mcpOAuthCallbackUrl)).toBe(`http://${MOCK_EIP_ADDRESS}/console/api/mcp/oauth/callback`);
        await settle();
        const added = registered.slice(before);
        const instance = added.find((r) => r.type === "alicloud:ecs/instance:Instance");
        const userData = Buffer.from(String(instance?.inputs.userData), "base64").toString("utf8");
        expect(userData).toContain(`DIFY_PUBLIC_URL='http://${MOCK_EIP_ADDRESS}'`);
        expect(added.find((r) => r.type.includes("DifyReadiness"))?.inputs.difyUrl).toBe(`http://${MOCK_EIP_ADDRESS}`);
    });

    it("pulls from Docker Hub by default and from the given image registry (imageSource acr) when there is one", async () => {
        const before = registered.length;
        const fromAcr = new DifyHost("acr", { ...BASE_HOST_ARGS, imageRegistry: pulumi.output("dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com") });
        await valueOf(fromAcr.mcpOAuthCallbackUrl);
        await settle();
        const instance = registered.slice(before).find((r) => r.type === "alicloud:ecs/instance:Instance");
        const userData = Buffer.from(String(instance?.inputs.userData), "base64").toString("utf8");
        expect(userData).toContain("DIFY_IMAGE_REGISTRY='dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com'");
        const base = registered.find((r) => r.type === "alicloud:ecs/instance:Instance" && r.name === "dify-instance");
        const defaultUserData = Buffer.from(String(base?.inputs.userData), "base64").toString("utf8");
        expect(defaultUserData).toContain("DIFY_IMAGE_REGISTRY=''");
    });

    it("writes the resolved registry mirrors into the user data", async () => {
        const before = registered.length;
        const mirrored = new DifyHost("mirrored", hostArgsWith({ registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"] }));
        await valueOf(mirrored.mcpOAuthCallbackUrl);
        await settle();
        const instance = registered.slice(before).find((r) => r.type === "alicloud:ecs/instance:Instance");
        const userData = Buffer.from(String(instance?.inputs.userData), "base64").toString("utf8");
        expect(userData).toContain("DIFY_REGISTRY_MIRRORS='https://mirrors-ssl.aliyuncs.com/'");
    });
});

describe("a new difyVersion (or any bootstrap setting) is applied to the running instance", () => {
    it("ignores user data changes on the instance instead of replacing it (the old instance still goes first on a replace)", async () => {
        const options = new Map<string, pulumi.CustomResourceOptions>();
        await buildHostRecordingOptions("inplace", baseArgs, options);
        const instance = options.get("inplace-instance");
        expect(instance?.ignoreChanges).toContain("userData");
        expect(instance?.replaceOnChanges ?? []).not.toContain("userData");
        expect(instance?.deleteBeforeReplace).toBe(true);
        // The first create still gets the user data (ignoreChanges applies to changes only).
        expect(registered.find((r) => r.name === "inplace-instance")?.inputs.userData).toBeTruthy();
    });

    it("has a configuration resource after readiness that carries the settings and the user data's digest", async () => {
        const configuration = registered.find((r) => r.type.endsWith("DifyInstanceConfiguration") && r.name === "dify-configuration");
        const difyUrl = await valueOf(host.difyUrl);
        expect(configuration?.inputs).toMatchObject({
            instanceId: "dify-instance-id",
            regionId: "cn-hangzhou",
            dataDiskId: "d-bp1mockdatadisk",
            difyUrl,
            publicUrl: difyUrl,
            difyVersion: "1.14.1",
            registryMirrors: [],
            timeoutSeconds: 45 * 60,
        });
        const inputs = configuration?.inputs as Record<string, string>;
        // The digest the user data carries, which the bootstrap writes into its status.
        const instance = registered.find((r) => r.type === "alicloud:ecs/instance:Instance" && r.name === "dify-instance");
        const userData = Buffer.from(String(instance?.inputs.userData), "base64").toString("utf8");
        expect(inputs.settingsDigest).toMatch(/^[0-9a-f]{64}$/);
        expect(userData).toContain(`DIFY_SETTINGS_DIGEST='${inputs.settingsDigest}'`);
        // The settings file without INIT_PASSWORD (no secret goes through Cloud Assistant), the same script.
        expect(inputs.bootstrapConfig).toContain(`DIFY_SETTINGS_DIGEST='${inputs.settingsDigest}'\n`);
        expect(inputs.bootstrapConfig).not.toContain("DIFY_INIT_PASSWORD");
        expect(inputs.bootstrapConfig).not.toContain(MOCK_INIT_PASSWORD);
        for (const line of inputs.bootstrapConfig.trimEnd().split("\n")) {
            expect(userData).toContain(line);
        }
        const shipped = compactScript(readBootstrapScript()).trimEnd() + "\n";
        expect(gunzipSync(Buffer.from(inputs.bootstrapScript, "base64")).toString("utf8")).toBe(shipped);
        expect(userData).toContain(`  content: ${inputs.bootstrapScript}\n`);
        expect(inputs.scriptDigest).toBe(crypto.createHash("sha256").update(shipped).digest("hex"));
        // After the first boot's wait, so that it reads a finished status.
        const registration = STUB_REGISTRATIONS.find((r) => r.name === "dify-configuration");
        expect(registration?.opts?.dependsOn).toEqual([host.readiness]);
        expect(host.configuration).toBe(registration?.resource);
    });

    it("gives the configuration the registry mirrors and image registry the user data has", async () => {
        const before = registered.length;
        const mirrored = new DifyHost("mirrored-config", {
            ...hostArgsWith({ registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"] }),
            imageRegistry: pulumi.output("dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com"),
        });
        await valueOf(mirrored.mcpOAuthCallbackUrl);
        await settle();
        const configuration = registered.slice(before).find((r) => r.type.endsWith("DifyInstanceConfiguration"));
        expect(configuration?.inputs).toMatchObject({
            registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"],
            imageRegistry: "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
        });
    });
});
