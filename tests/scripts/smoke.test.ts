import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectToDify } from "../../dynamic-providers/dify/session";
import { observationsByTool, runSmokeTest, SMOKE_STACK_OUTPUTS, toolFailureOf } from "../../scripts/smoke";
import { projectRoot } from "../harness/engine-provider";
import { DifyConsoleServer, startDifyConsoleServer, TOOL_INVOKE_ERROR_TEXT } from "../servers/dify-console-server";

const ADMIN = { email: "ops@example.com", name: "Ops Admin", password: "Adm1n-Passw0rd-x" };
const CHAT = "POST /apps/<id>/chat-messages";
const smokeJs = path.join(projectRoot, "dist", "scripts", "smoke.js");

/** An agent app with the given MCP tools, made the way the DifyAgentApp provider makes it. */
async function makeAgentApp(server: DifyConsoleServer, tools: string[]): Promise<string> {
    const session = await connectToDify({ url: server.url }, ADMIN);
    const app = await session.post<{ id: string }>("/apps", { name: "Cloud Ops Agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖" });
    await session.post(`/apps/${app.id}/model-config`, {
        model: { provider: "langgenius/tongyi/tongyi", name: "qwen-plus", mode: "chat", completion_params: {} },
        pre_prompt: "You are an operations assistant.",
        agent_mode: {
            enabled: true,
            strategy: "function_call",
            max_iteration: 5,
            tools: tools.map((tool) => ({ provider_type: "mcp", provider_id: "aliyun-openapi", tool_name: tool, tool_parameters: {}, enabled: true })),
        },
    });
    return app.id;
}

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs the compiled CLI asynchronously (the local Dify lives in this process and must keep answering). */
function runCli(args: string[], env: Record<string, string>): Promise<Run> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [smokeJs, ...args], {
            cwd: projectRoot,
            env: { PATH: process.env.PATH ?? "", HOME: os.tmpdir(), ...env },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

describe.each(["1.8.0", "1.9.2", "1.14.1"])("smoke conversation against Dify %s", (version) => {
    let server: DifyConsoleServer;
    let appId: string;
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version, admin: ADMIN });
        server.seedTongyi();
        appId = await makeAgentApp(server, ["Ecs-DescribeInstances", "Ecs-DescribeRegions"]);
    });
    afterAll(() => server.close());

    it("passes only when an MCP tool was called and no error event arrived", async () => {
        const lines: string[] = [];
        const options = { difyUrl: server.url, email: ADMIN.email, password: ADMIN.password, appId, log: (line: string) => lines.push(line) };

        server.setChatScript("tool-call");
        const passed = await runSmokeTest(options);
        expect(passed).toMatchObject({ passed: true, reason: "", streamError: "", difyVersion: version });
        expect(passed.toolCalls.map((c) => c.tool)).toEqual(["Ecs-DescribeInstances"]);
        expect(passed.toolCalls[0].input).toContain("cn-hangzhou");
        expect(passed.answer).toMatch(/3 ECS instances in the Hangzhou region/);
        expect(server.bodies.get(CHAT)?.at(-1)).toEqual({
            inputs: {},
            query: "Query the number of ECS instances in the Hangzhou region",
            model_config: {},
            response_mode: "streaming",
        });

        server.setChatScript("no-tool-call");
        const noTool = await runSmokeTest(options);
        expect(noTool).toMatchObject({ passed: false, reason: "the agent answered without calling an MCP tool", toolCalls: [] });

        server.setChatScript("error");
        const failed = await runSmokeTest(options);
        expect(failed.passed).toBe(false);
        expect(failed.reason).toMatch(/the stream reported an error: \[tongyi\] Error: Invalid API-key provided/);

        // A failed call is an ordinary observation ("tool invoke error: ..."), with no error event and a polite answer.
        lines.length = 0;
        server.setChatScript("tool-error");
        const toolFailed = await runSmokeTest(options);
        expect(toolFailed).toMatchObject({ passed: false, streamError: "" });
        expect(toolFailed.toolCalls).toEqual([
            expect.objectContaining({ tool: "Ecs-DescribeInstances", error: TOOL_INVOKE_ERROR_TEXT, observation: TOOL_INVOKE_ERROR_TEXT }),
        ]);
        expect(toolFailed.reason).toBe(`every MCP tool call failed (Ecs-DescribeInstances: ${TOOL_INVOKE_ERROR_TEXT})`);
        expect(lines).toContain(`  ✗ Ecs-DescribeInstances failed: ${TOOL_INVOKE_ERROR_TEXT}`);
        expect(lines.at(-1)).toBe(`FAIL: every MCP tool call failed (Ecs-DescribeInstances: ${TOOL_INVOKE_ERROR_TEXT}).`);

        expect(lines.join("\n")).not.toContain(ADMIN.password);
        expect(lines).toContain("  → tool call: Ecs-DescribeInstances {\"Ecs-DescribeInstances\":{\"RegionId\":\"cn-hangzhou\"}}");
    });
});

describe("reading agent observations", () => {
    it("splits an observation keyed by tool name and recognises Dify's tool failure texts", () => {
        const observation = JSON.stringify({ a: '{"TotalCount": 3}', b: "tool invoke error: Failed to invoke tool: boom", c: { x: 1 } });
        const perTool = observationsByTool(observation, ["a", "b", "c"]);
        expect([...perTool.entries()]).toEqual([
            ["a", '{"TotalCount": 3}'],
            ["b", "tool invoke error: Failed to invoke tool: boom"],
            ["c", '{"x":1}'],
        ]);
        expect(observationsByTool("plain text", ["a"]).get("a")).toBe("plain text");
        expect(toolFailureOf(perTool.get("a") ?? "")).toBe("");
        expect(toolFailureOf("tool invoke error: Failed to connect to MCP server: x")).toBe("tool invoke error: Failed to connect to MCP server: x");
        expect(toolFailureOf("there is not a tool named Ecs-X")).not.toBe("");
        expect(toolFailureOf("tool parameters validation error: RegionId is required, please check your tool parameters")).not.toBe("");
    });
});

describe("smoke command", () => {
    let server: DifyConsoleServer;
    let appId: string;
    let bareAppId: string;
    let env: Record<string, string>;
    beforeAll(async () => {
        if (!fs.existsSync(smokeJs)) {
            throw new Error(`${smokeJs} is missing: run "npm run build" first (npm test does it).`);
        }
        server = await startDifyConsoleServer({ version: "1.14.1", admin: ADMIN, secureCookies: true });
        server.seedTongyi();
        appId = await makeAgentApp(server, ["Ecs-DescribeInstances"]);
        bareAppId = await makeAgentApp(server, []);
        env = { DIFY_ADMIN_PASSWORD: ADMIN.password };
    });
    afterAll(() => server.close());

    it("exits 0 and prints the tool calls and the answer when an MCP tool was called", async () => {
        server.setChatScript("tool-call");
        const run = await runCli(["--url", server.url, "--email", ADMIN.email, "--app-id", appId], env);
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/→ tool call: Ecs-DescribeInstances/);
        expect(run.stdout).toMatch(/Answer: There are 3 ECS instances/);
        expect(run.stdout).toMatch(/PASS: 1 MCP tool call/);
        expect(run.stdout + run.stderr).not.toContain(ADMIN.password);
    });

    it("exits non-zero when the agent called no tool, the stream reported an error, or the app has no MCP tools", async () => {
        const args = ["--url", server.url, "--email", ADMIN.email, "--app-id", appId];
        server.setChatScript("no-tool-call");
        const noTool = await runCli(args, env);
        expect(noTool.code).toBe(1);
        expect(noTool.stdout).toMatch(/FAIL: the agent answered without calling an MCP tool/);

        server.setChatScript("error");
        const error = await runCli(args, env);
        expect(error.code).toBe(1);
        expect(error.stdout).toMatch(/FAIL: the stream reported an error/);

        server.setChatScript("tool-error");
        const toolError = await runCli(args, env);
        expect(toolError.code).toBe(1);
        expect(toolError.stdout).toContain(`✗ Ecs-DescribeInstances failed: ${TOOL_INVOKE_ERROR_TEXT}`);
        expect(toolError.stdout).toMatch(/FAIL: every MCP tool call failed \(Ecs-DescribeInstances: tool invoke error: /);
        expect(toolError.stdout).not.toMatch(/PASS/);

        server.resetCalls();
        const bare = await runCli(["--url", server.url, "--email", ADMIN.email, "--app-id", bareAppId], env);
        expect(bare.code).toBe(1);
        expect(bare.stdout).toMatch(/FAIL: the agent app has no MCP tools attached/);
        expect(server.count({ route: CHAT })).toBe(0);
    });

    it("reads the stack outputs (secrets shown) through the pulumi CLI, and explains what is missing", async () => {
        server.setChatScript("tool-call");
        const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fake-pulumi-"));
        const outputs = {
            [SMOKE_STACK_OUTPUTS.difyUrl]: server.url,
            [SMOKE_STACK_OUTPUTS.email]: ADMIN.email,
            [SMOKE_STACK_OUTPUTS.password]: ADMIN.password,
            [SMOKE_STACK_OUTPUTS.appId]: appId,
        };
        // Answers only the exact command the smoke script must run.
        fs.writeFileSync(
            path.join(bin, "pulumi"),
            `#!/bin/sh\nif [ "$*" = "stack output --json --show-secrets --stack dev" ]; then\n  echo '${JSON.stringify(outputs)}'\nelse\n  echo "unexpected: $*" >&2; exit 3\nfi\n`,
            { mode: 0o755 },
        );
        const fromStack = await runCli(["dev"], { PATH: `${bin}:${process.env.PATH ?? ""}` });
        expect(fromStack.stderr).toBe("");
        expect(fromStack.code).toBe(0);
        expect(fromStack.stdout).toMatch(/PASS/);
        expect(fromStack.stdout).not.toContain(ADMIN.password);

        const noStack = await runCli(["--url", server.url], {});
        expect(noStack.code).toBe(2);
        expect(noStack.stderr).toMatch(/missing email, password, appId and no stack given/);

        const noCli = await runCli(["dev"], { PATH: path.dirname(process.execPath) });
        expect(noCli.code).toBe(2);
        expect(noCli.stderr).toMatch(/pulumi CLI is not on PATH/);
    });
});
