// DifyHa under Pulumi's mocks: what ties the tiers together. Every node gets the same shared keys and INIT_PASSWORD
// (sessions and the plugin daemon's keys must match across nodes), and imageSource acr links the ha VPC and pulls
// on every node from the registry's VPC endpoint.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { DifyHa } from "../../../components/ha/dify-ha";
import { parse } from "../../config/parse-settings";
import { RegisteredResource, installMocks, settle, valueOf } from "../pulumi-mocks";

// The readiness wait is a dynamic resource, which cannot be serialized from inside vitest: its stub (dynamic-stubs.ts).
vi.mock("../../../dynamic-providers/dify/readiness", () => import("../dynamic-stubs"));

const ACR_INSTANCE = { id: "cri-hatestinstance1", name: "dify-images" };
const REGISTRY_HOST = "dify-images-registry-vpc.cn-hangzhou.cr.aliyuncs.com";

let registered: RegisteredResource[];
let ha: DifyHa;

function one(type: string): RegisteredResource {
    const found = registered.filter((resource) => resource.type === type);
    expect(found, type).toHaveLength(1);
    return found[0];
}

/** The settings file a node's user data writes (the user data is base64 on both the instance and the template). */
function settingsOf(userData: unknown): Map<string, string> {
    const text = Buffer.from(String(userData), "base64").toString("utf8");
    return new Map([...text.matchAll(/^ +(DIFY_[A-Z0-9_]+)='([^']*)'$/gm)].map((match) => [match[1], match[2]]));
}

beforeAll(async () => {
    registered = installMocks({ acrInstances: [ACR_INSTANCE] });
    const { settings } = parse({
        topology: "ha",
        domain: "dify.example.com",
        certificateId: "12345-cn-hangzhou",
        dnsZone: "example.com",
        imageSource: "acr",
        acrInstanceId: ACR_INSTANCE.id,
    });
    ha = new DifyHa("dify", {
        settings,
        placement: { instanceType: "ecs.c7.large", zoneIds: ["cn-hangzhou-h", "cn-hangzhou-j"], cpuCoreCount: 2, memorySize: 4 },
        imageId: "ubuntu_22_04_x64_20G_alibase_20260522.vhd",
        tags: { "managed-by": "pulumi" },
    });
    await valueOf(ha.difyUrl);
    await valueOf(ha.appTier.scalingGroupIds);
    await settle();
});

describe("DifyHa", () => {
    it("gives the singleton and every app node the same shared keys, database and INIT_PASSWORD", () => {
        const singleton = settingsOf(one("alicloud:ecs/instance:Instance").inputs.userData);
        const app = settingsOf(one("alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate").inputs.userData);
        expect(singleton.get("DIFY_ROLE")).toBe("singleton");
        expect(app.get("DIFY_ROLE")).toBe("app");
        const shared = [...singleton.keys()].filter((key) => /SECRET_KEY|DAEMON_KEY|INNER_API_KEY|INIT_PASSWORD|DB_PASSWORD|REDIS_PASSWORD|OSS_ACCESS_KEY/.test(key));
        expect(shared.length).toBeGreaterThanOrEqual(6);
        for (const key of shared) {
            expect(singleton.get(key), key).not.toBe("");
            expect(app.get(key), key).toBe(singleton.get(key));
        }
    });

    it("with imageSource acr, links the ha VPC in zone A's app vSwitch and pulls every node's images from the registry's VPC endpoint", () => {
        expect(one("alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc").inputs).toMatchObject({ vpcId: "dify-vpc-id", vswitchId: "dify-app-a-id" });
        expect(settingsOf(one("alicloud:ecs/instance:Instance").inputs.userData).get("DIFY_IMAGE_REGISTRY")).toBe(REGISTRY_HOST);
        expect(settingsOf(one("alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate").inputs.userData).get("DIFY_IMAGE_REGISTRY")).toBe(REGISTRY_HOST);
    });

    it("creates the CNAME in dnsZone and serves Dify on the domain", async () => {
        expect(one("alicloud:dns/alidnsRecord:AlidnsRecord").inputs).toMatchObject({ domainName: "example.com", rr: "dify", type: "CNAME" });
        expect(await valueOf(ha.difyUrl)).toBe("https://dify.example.com");
        expect(await pulumi.isSecret(ha.initPassword)).toBe(true);
    });
});
