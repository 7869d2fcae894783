import { beforeAll, describe, expect, it } from "vitest";
import { importProgram } from "./program-under-mocks";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_ADMIN_PASSWORD, MOCK_EIP_ADDRESS, MOCK_INIT_PASSWORD, RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";
import { STUB_OUTPUTS, STUB_REGISTRATIONS, STUB_TYPE_PREFIX } from "./dynamic-stubs";


type Program = Record<string, pulumi.Output<unknown>>;

const DASHSCOPE_KEY = "sk-test-0123456789abcdef";
let registered: RegisteredResource[];
let program: Program;

function stubbed(typeName: string): Record<string, unknown> {
    const found = registered.filter((r) => r.type === `${STUB_TYPE_PREFIX}${typeName}`);
    expect(found, typeName).toHaveLength(1);
    return found[0].inputs;
}

beforeAll(async () => {
    pulumi.runtime.setAllConfig(
        {
            "alicloud:region": "cn-hangzhou",
            "dify-mcp-stack:adminCidr": "192.0.2.0/24",
            "dify-mcp-stack:tags": JSON.stringify(["team=platform"]),
            "dify-mcp-stack:adminEmail": "ops@example.com",
            "dify-mcp-stack:dashscopeApiKey": DASHSCOPE_KEY,
        },
        ["dify-mcp-stack:dashscopeApiKey"],
    );
    registered = installMocks({
        instanceTypes: [
            { id: "ecs.t6-c1m2.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-a"] },
            { id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-k", "cn-hangzhou-h"] },
        ],
    });
    program = await importProgram();
    await valueOf(program.agentAppId);
    await settle();
});

describe("the program (index.ts)", () => {
    it("lets Dify's admin (and so every Dify resource) wait for readiness and for the instance's configuration", () => {
        const admin = STUB_REGISTRATIONS.find((r) => r.typeName === "DifyAdmin");
        const dependsOn = (admin?.opts?.dependsOn ?? []) as pulumi.Resource[];
        const names = dependsOn.map((resource) => STUB_REGISTRATIONS.find((r) => r.resource === resource)?.typeName);
        expect(names).toEqual(["DifyReadiness", "DifyInstanceConfiguration"]);
    });

    it("runs no smoke test during up unless smokeTestOnUp asks for it", () => {
        expect(registered.filter((r) => r.type === "command:local:Command")).toEqual([]);
    });

    it("exports what users and the smoke test need", async () => {
        expect(await valueOf(program.difyUrl)).toBe(`https://${MOCK_EIP_ADDRESS}`);
        expect(await valueOf(program.mcpOAuthCallbackUrl)).toBe(`https://${MOCK_EIP_ADDRESS}/console/api/mcp/oauth/callback`);
        expect(await valueOf(program.publicIp)).toBe(MOCK_EIP_ADDRESS);
        expect(await valueOf(program.instanceId)).toBe("dify-instance-id");
        expect(await valueOf(program.difyAdminEmail)).toBe("ops@example.com");
        expect(await valueOf(program.agentAppId)).toBe("app-uuid");
        expect(await valueOf(program.mcpAuthorizationUrl)).toMatch(/^https:\/\/signin\.aliyun\.com\//);
        expect(await valueOf(program.mcpServerUrl)).toBe((STUB_OUTPUTS.OpenApiMcpServer.urls as { mcp: string }).mcp);
    });

    it("keeps the admin password and the DashScope key secret", async () => {
        expect(await pulumi.isSecret(program.difyAdminPassword)).toBe(true);
        expect(await valueOf(program.difyAdminPassword)).toBe(MOCK_ADMIN_PASSWORD);
        expect(stubbed("DifyModelProvider").dashscopeApiKey).toBe(DASHSCOPE_KEY);
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

    it("pulls Dify's images through Alibaba's registry mirror in cn-hangzhou by default, with no ACR resources", async () => {
        const instance = registered.find((r) => r.type === "alicloud:ecs/instance:Instance");
        const userData = Buffer.from(String(instance?.inputs.userData), "base64").toString("utf8");
        expect(userData).toContain("DIFY_REGISTRY_MIRRORS='https://mirrors-ssl.aliyuncs.com/'");
        expect(userData).toContain("DIFY_IMAGE_REGISTRY=''");
        expect(registered.filter((r) => /^alicloud:(cr|cs)\//.test(r.type))).toEqual([]);
        expect(program.acrSubscriptionRuleIds).toBeUndefined();
    });

    it("registers Dify's callback on the RAM app and binds the MCP server to the app", () => {
        const app = stubbed("RamOAuthApplication");
        expect(app.consoleApiUrl).toBe(`https://${MOCK_EIP_ADDRESS}`);
        expect(app.appName).toBe("dify-mcp-test");
        expect(app.appType).toBe("NativeApp");
        const server = stubbed("OpenApiMcpServer");
        expect(server.oauthClientId).toBe(STUB_OUTPUTS.RamOAuthApplication.appId);
        expect(server.name).toBe("dify-test");
        expect(server.site).toBe("china");
    });

    it("wires Dify to the MCP server's Streamable HTTP URL with the RAM app as the preset client", () => {
        const admin = stubbed("DifyAdmin");
        expect(admin).toMatchObject({ difyUrl: `https://${MOCK_EIP_ADDRESS}`, email: "ops@example.com", initPassword: MOCK_INIT_PASSWORD });
        const tools = stubbed("DifyMcpToolProvider");
        expect(tools.serverUrl).toBe((STUB_OUTPUTS.OpenApiMcpServer.urls as { mcp: string }).mcp);
        expect(tools.oauthClientId).toBe(STUB_OUTPUTS.RamOAuthApplication.appId);
        expect(tools.serverIdentifier).toBe("aliyun-openapi");
        const agent = stubbed("DifyAgentApp");
        expect(agent.mcpServerIdentifier).toBe("aliyun-openapi");
        expect(agent.difyUrl).toBe(`https://${MOCK_EIP_ADDRESS}`);
    });
});
