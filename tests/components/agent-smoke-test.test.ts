// smokeTestOnUp under Pulumi mocks: the program (index.ts) adds the smoke test at the end of `up` as a
// @pulumi/command local.Command, after the agent, with the admin password only in its (secret) environment and
// re-run only when the agent's wiring changes.
import { beforeAll, describe, expect, it } from "vitest";
import { importProgram } from "./program-under-mocks";
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { installMocks, RegisteredResource, settle, valueOf } from "./pulumi-mocks";
import { STUB_OUTPUTS } from "./dynamic-stubs";


const COMMAND = "command:local:Command";
let registered: RegisteredResource[];
let program: Record<string, pulumi.Output<unknown>>;

beforeAll(async () => {
    pulumi.runtime.setAllConfig(
        {
            "alicloud:region": "cn-hangzhou",
            "dify-mcp-stack:adminCidr": "192.0.2.0/24",
            "dify-mcp-stack:adminEmail": "ops@example.com",
            "dify-mcp-stack:dashscopeApiKey": "sk-test-0123456789abcdef",
            "dify-mcp-stack:smokeTestOnUp": "true",
        },
        ["dify-mcp-stack:dashscopeApiKey"],
    );
    registered = installMocks({
        instanceTypes: [{ id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-k"] }],
    });
    program = await importProgram();
    await valueOf(program.agentAppId);
    await settle();
});

describe("smokeTestOnUp", () => {
    it("runs `npm run smoke` at the end of up with the deployment's values in the environment", () => {
        const commands = registered.filter((r) => r.type === COMMAND);
        expect(commands).toHaveLength(1);
        const inputs = commands[0].inputs as { create: string; environment: Record<string, string>; triggers: unknown[]; logging: string };
        expect(inputs.create).toMatch(/npm run --silent smoke$/);
        expect(inputs.environment).toMatchObject({
            DIFY_ADMIN_EMAIL: "ops@example.com",
            DIFY_AGENT_APP_ID: STUB_OUTPUTS.DifyAgentApp.appId,
            DIFY_MCP_AUTHORIZED: String(STUB_OUTPUTS.DifyMcpToolProvider.authorized),
        });
        // HTTPS on the EIP by default.
        expect(inputs.environment.DIFY_URL).toMatch(/^https:\/\//);
        // Re-run when the agent's wiring changes, and only then.
        expect(inputs.triggers).toEqual(expect.arrayContaining([STUB_OUTPUTS.DifyAgentApp.appId, STUB_OUTPUTS.DifyMcpToolProvider.authorized]));
    });

    it("puts no value into the shell line: the password reaches the command only through its environment", async () => {
        const command = registered.find((r) => r.type === COMMAND)!;
        const password = await valueOf(program.difyAdminPassword as pulumi.Output<string>);
        expect((command.inputs as { create: string }).create).not.toContain(password);
        expect((command.inputs as { environment: Record<string, string> }).environment.DIFY_ADMIN_PASSWORD).toBe(password);
    });

    it("stops with the authorization URL when the MCP server is not authorized yet, and runs the smoke test once it is", () => {
        const command = registered.find((r) => r.type === COMMAND)!;
        const create = (command.inputs as { create: string }).create;
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "smoke-on-up-"));
        fs.writeFileSync(path.join(dir, "npm"), '#!/bin/sh\necho "npm $*" >> "$CALLS"\n', { mode: 0o755 });
        const run = (authorized: string) =>
            spawnSync("bash", ["--noprofile", "--norc", "-c", create], {
                encoding: "utf8",
                env: { PATH: `${dir}:/usr/bin:/bin`, CALLS: path.join(dir, "calls"), DIFY_MCP_AUTHORIZED: authorized, DIFY_MCP_AUTHORIZATION_URL: "https://signin.aliyun.com/oauth2/v1/auth?x=1" },
            });
        const refused = run("false");
        expect(refused.status).toBe(1);
        expect(refused.stderr).toContain("not authorized yet; approve the consent at https://signin.aliyun.com/oauth2/v1/auth?x=1");
        expect(fs.existsSync(path.join(dir, "calls"))).toBe(false);
        const ran = run("true");
        expect(ran.status).toBe(0);
        expect(fs.readFileSync(path.join(dir, "calls"), "utf8")).toBe("npm run --silent smoke\n");
    });
});
