import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_EIP_ADDRESS, RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";

vi.mock("../../dynamic-providers/dify-readiness", () => import("./readiness-stub"));

type Program = Record<string, pulumi.Output<unknown>>;

let registered: RegisteredResource[];
let program: Program;

beforeAll(async () => {
    pulumi.runtime.setAllConfig({
        "alicloud:region": "cn-hangzhou",
        "dify-mcp-stack:adminCidr": "192.0.2.0/24",
        "dify-mcp-stack:tags": JSON.stringify(["team=platform"]),
    });
    registered = installMocks({
        instanceTypes: [
            { id: "ecs.t6-c1m2.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-a"] },
            { id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-k", "cn-hangzhou-h"] },
        ],
    });
    program = (await import("../../index")) as unknown as Program;
    await valueOf(program.mcpOAuthCallbackUrl);
    await settle();
});

describe("the program (index.ts)", () => {
    it("exports what users need", async () => {
        expect(await valueOf(program.difyUrl)).toBe(`http://${MOCK_EIP_ADDRESS}`);
        expect(await valueOf(program.mcpOAuthCallbackUrl)).toBe(`http://${MOCK_EIP_ADDRESS}/console/api/mcp/oauth/callback`);
        expect(await valueOf(program.publicIp)).toBe(MOCK_EIP_ADDRESS);
        expect(await valueOf(program.instanceId)).toBe("dify-instance-id");
    });

    it("picks the first preferred instance type the region offers, and builds the vSwitch in its zone", async () => {
        expect(await valueOf(program.instanceType)).toBe("ecs.c7.large");
        const vswitch = registered.find((r) => r.type === "alicloud:vpc/switch:Switch");
        expect(vswitch?.inputs.zoneId).toBe("cn-hangzhou-h");
    });

    it("opens SSH to the admin CIDR only and tags everything with the stack and extra tags", () => {
        const ssh = registered.filter((r) => r.type === "alicloud:ecs/securityGroupRule:SecurityGroupRule" && r.inputs.portRange === "22/22");
        expect(ssh.map((r) => r.inputs.cidrIp)).toEqual(["192.0.2.0/24"]);
        const instance = registered.find((r) => r.type === "alicloud:ecs/instance:Instance");
        expect(instance?.inputs.tags).toMatchObject({ "dify-version": "1.14.1", "cpu-cores": "2", "memory-gib": "4" });
        const vpc = registered.find((r) => r.type === "alicloud:vpc/network:Network");
        expect(vpc?.inputs.tags).toMatchObject({ team: "platform", stack: "test", "managed-by": "pulumi" });
    });
});
