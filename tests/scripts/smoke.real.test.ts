// scripts/smoke.ts against Dify 1.14.1's REAL API server: the agent app made by our providers chats through
// Dify → the plugin daemon stand-in's qwen-plus (one tool call) → the MCP tool on the loopback OAuth-protected
// MCP server, with the token Dify got from a real consent + callback → the answer. The smoke must pass only
// when an MCP tool call really worked, and print the tool's error when it did not.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { difyAgentAppProvider, DifyAgentAppInputs } from "../../dynamic-providers/dify/agent-app";
import { difyMcpToolProviderProvider, DifyMcpToolProviderInputs, DifyMcpToolProviderOutputs } from "../../dynamic-providers/dify/mcp-tool-provider";
import { difyModelProviderProvider, DifyModelProviderInputs } from "../../dynamic-providers/dify/model-provider";
import { runSmokeTest, SmokeResult } from "../../scripts/smoke";
import { projectRoot } from "../harness/engine-provider";
import { RealDify, startRealDify } from "../harness/real-dify";
import { RecordingProxy, startRecordingProxy } from "../harness/recording-proxy";
import { McpOAuthServer, startMcpOAuthServer } from "../servers/mcp-oauth-server";

const ADMIN = { email: "ops@example.com", name: "Ops Admin", password: "Adm1n-Passw0rd-x" };
const CLIENT_ID = "4071151845732613353";
const TOOLS = ["Ecs-DescribeInstances", "Ecs-DescribeRegions"];
const smokeJs = path.join(projectRoot, "dist", "scripts", "smoke.js");

let dify: RealDify;
let proxy: RecordingProxy;
let mcp: McpOAuthServer;
let appId: string;
const bench: { operation: string; ms: number; auth: number; read: number; write: number }[] = [];

const daemon = () => dify.pluginDaemon!;

beforeAll(async () => {
    if (!fs.existsSync(smokeJs)) {
        throw new Error(`${smokeJs} is missing: run "npm run build" first (npm test does it).`);
    }
    // nginx's place: Dify is told the proxy's address (the OAuth redirect goes through it too).
    proxy = await startRecordingProxy();
    mcp = await startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris: [`${proxy.url}/console/api/mcp/oauth/callback`] }] });
    dify = await startRealDify({ admin: ADMIN, env: { CONSOLE_API_URL: proxy.url } });
    proxy.target = dify.url;
    console.log(`real Dify ${dify.version} at ${dify.url} (behind ${proxy.url}), started in ${dify.timings.total} s`);

    // The stack's Dify resources, made by our providers (in this process): Qwen, the MCP server (approved by a
    // person through the MCP server's consent page and Dify's callback), the agent app with the tools.
    const connection = { difyUrl: proxy.url, adminEmail: ADMIN.email, adminPassword: ADMIN.password };
    const model = await difyModelProviderProvider.check!({} as DifyModelProviderInputs, { ...connection, dashscopeApiKey: "sk-smoke-0123456789abcdef", installPollSeconds: 0.2 } as DifyModelProviderInputs);
    await difyModelProviderProvider.create(model.inputs!);
    const mcpInputs = (
        await difyMcpToolProviderProvider.check!({} as DifyMcpToolProviderInputs, {
            ...connection,
            name: "Alibaba Cloud OpenAPI",
            serverUrl: mcp.mcpUrl,
            serverIdentifier: "aliyun-openapi",
            oauthClientId: CLIENT_ID,
        } as DifyMcpToolProviderInputs)
    ).inputs!;
    const created = await difyMcpToolProviderProvider.create(mcpInputs);
    const callback = await fetch(await mcp.approve(created.outs!.authorizationUrl), { redirect: "manual" });
    expect(callback.status).toBe(302);
    const read = await difyMcpToolProviderProvider.read!(created.id, created.outs);
    const mcpOuts = read.props as DifyMcpToolProviderOutputs;
    expect(mcpOuts).toMatchObject({ authorized: true, toolNames: TOOLS });
    const appInputs = (
        await difyAgentAppProvider.check!({} as DifyAgentAppInputs, {
            ...connection,
            name: "Cloud Ops Agent",
            systemPrompt: "You are an Alibaba Cloud operations assistant. Use the tools to answer.",
            mcpServerIdentifier: mcpOuts.serverIdentifier,
            mcpToolNames: mcpOuts.toolNames,
        } as DifyAgentAppInputs)
    ).inputs!;
    appId = (await difyAgentAppProvider.create(appInputs)).id;
}, 600_000);

afterAll(async () => {
    if (bench.length > 0) {
        console.log(
            [
                `Dify ${dify?.version ?? "?"} (real API server): the smoke conversation, console-API calls and wall time`,
                "operation                         ms  auth  read  write",
                ...bench.map((m) => `${m.operation.padEnd(30)}${String(m.ms).padStart(5)}${String(m.auth).padStart(6)}${String(m.read).padStart(6)}${String(m.write).padStart(7)}`),
            ].join("\n"),
        );
    }
    await dify?.close();
    await Promise.all([mcp?.close(), proxy?.close()]);
}, 120_000);

/** runSmokeTest in this process, as `npm run smoke` runs it, with its printed lines. */
async function smoke(operation: string): Promise<{ result: SmokeResult; lines: string[] }> {
    const lines: string[] = [];
    const from = proxy.calls.length;
    const started = Date.now();
    const result = await runSmokeTest({ difyUrl: proxy.url, email: ADMIN.email, password: ADMIN.password, appId, log: (line) => lines.push(line), timeoutMs: 120_000 });
    const ms = Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 30));
    const calls = proxy.calls.slice(from);
    const count = (kind: string) => calls.filter((c) => c.kind === kind).length;
    bench.push({ operation, ms, auth: count("auth"), read: count("read"), write: count("write") });
    expect(lines.join("\n")).not.toContain(ADMIN.password);
    return { result, lines };
}

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** The compiled CLI, asynchronously (the MCP server Dify calls lives in this process). */
function runCli(): Promise<Run> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [smokeJs, "--url", proxy.url, "--email", ADMIN.email, "--app-id", appId], {
            cwd: projectRoot,
            env: { PATH: process.env.PATH ?? "", HOME: os.tmpdir(), DIFY_ADMIN_PASSWORD: ADMIN.password },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

describe("the smoke test against the real Dify", () => {
    it("passes when the MCP tool call works end to end: Dify → qwen-plus → MCP tool with the OAuth token → answer", async () => {
        await daemon().clearCalls();
        const toolCallsBefore = mcp.toolInvocations.length;
        const { result, lines } = await smoke("smoke (passes)");
        expect(result).toMatchObject({ passed: true, reason: "", streamError: "", difyVersion: "1.14.1", mcpTools: TOOLS });
        expect(result.toolCalls).toHaveLength(1);
        const [toolCall] = result.toolCalls;
        expect(toolCall).toMatchObject({ tool: "Ecs-DescribeInstances", error: "" });
        expect(JSON.parse(toolCall.input)).toEqual({ "Ecs-DescribeInstances": { RegionId: "cn-hangzhou" } });
        expect(JSON.parse(toolCall.observation)).toMatchObject({ TotalCount: 2, Instances: { Instance: [{ RegionId: "cn-hangzhou" }, { RegionId: "cn-hangzhou" }] } });
        // The MCP server ran the tool once, for a request that carried a valid token.
        expect(mcp.toolInvocations.slice(toolCallsBefore)).toEqual([{ name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou" }, outcome: "success" }]);
        expect(mcp.calls.filter((c) => c.rpcMethod === "tools/call").at(-1)).toMatchObject({ authorized: true, bearer: "valid", status: 200 });
        // The answer quotes the tool result the model was given.
        const llm = (await daemon().calls()).filter((c) => c.llm).map((c) => c.llm!);
        expect(llm.map((answer) => answer.answered)).toEqual(expect.arrayContaining(["tool_call", "text"]));
        expect(result.answer).toContain('"TotalCount": 2');
        expect(lines).toContain('  → tool call: Ecs-DescribeInstances {"Ecs-DescribeInstances": {"RegionId": "cn-hangzhou"}}');
        expect(lines.at(-1)).toBe("PASS: 1 MCP tool call(s)");
    });

    it("the command exits 0 and prints the call and the answer", async () => {
        const run = await runCli();
        expect(run.stderr).toBe("");
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/← Ecs-DescribeInstances: \{"RequestId": "[0-9A-F-]+", "TotalCount": 2/);
        expect(run.stdout).toMatch(/PASS: 1 MCP tool call\(s\)\n$/);
    });

    it("fails, printing the tool's error, when the MCP server makes the tool fail (JSON-RPC error)", async () => {
        mcp.setToolFailure({ mode: "jsonrpc-error", message: "Throttling.User: Request was denied due to user flow control." });
        try {
            const { result, lines } = await smoke("smoke (tool fails)");
            const error = "tool invoke error: Failed to connect to MCP server: code=-32603 message='Throttling.User: Request was denied due to user flow control.' data=None";
            expect(result).toMatchObject({ passed: false, streamError: "" });
            expect(result.toolCalls).toEqual([expect.objectContaining({ tool: "Ecs-DescribeInstances", error })]);
            expect(result.reason).toBe(`every MCP tool call failed (Ecs-DescribeInstances: ${error})`);
            expect(lines).toContain(`  ✗ Ecs-DescribeInstances failed: ${error}`);
            expect(lines.at(-1)).toBe(`FAIL: every MCP tool call failed (Ecs-DescribeInstances: ${error}).`);

            const run = await runCli();
            expect(run.code).toBe(1);
            expect(run.stdout).toContain(`✗ Ecs-DescribeInstances failed: ${error}`);
            expect(run.stdout).not.toMatch(/PASS/);
        } finally {
            mcp.setToolFailure(null);
        }
    });

    it("fails, printing the API's error, when the tool answers with an Alibaba Cloud error (isError, which Dify ignores)", async () => {
        // The API refuses (an unknown region): the MCP server answers isError with the API's error body; Dify
        // drops isError and the agent sees the body as an ordinary observation.
        await daemon().setLlmScript({ toolArguments: { RegionId: "cn-nowhere" } });
        try {
            const { result, lines } = await smoke("smoke (API error)");
            expect(result.passed).toBe(false);
            const body = JSON.parse(result.toolCalls[0].error) as Record<string, string>;
            expect(body).toMatchObject({ Code: "InvalidRegionId.NotFound", Message: "The specified RegionId cn-nowhere does not exist." });
            expect(mcp.toolInvocations.at(-1)).toMatchObject({ outcome: "tool-error" });
            expect(lines.find((line) => line.startsWith("  ✗ Ecs-DescribeInstances failed: "))).toContain("InvalidRegionId.NotFound");
            expect(lines.at(-1)).toMatch(/^FAIL: every MCP tool call failed \(Ecs-DescribeInstances: \{"Code": "InvalidRegionId\.NotFound".*\}\)\.$/);
        } finally {
            await daemon().setLlmScript({});
        }
        // The same failure switched on at the MCP server, in the shape of an API error body.
        mcp.setToolFailure({ mode: "is-error-result", message: JSON.stringify({ Code: "Throttling.User", Message: "Request was denied due to user flow control.", RequestId: "5A1B" }) });
        try {
            const { result } = await smoke("smoke (tool isError)");
            expect(result.passed).toBe(false);
            expect(result.reason).toMatch(/^every MCP tool call failed \(Ecs-DescribeInstances: \{"Code": "Throttling\.User"/);
        } finally {
            mcp.setToolFailure(null);
        }
    });

    it("fails when the agent answers without calling a tool", async () => {
        await daemon().setLlmScript({ mode: "text" });
        try {
            const { result } = await smoke("smoke (no tool call)");
            expect(result).toMatchObject({ passed: false, reason: "the agent answered without calling an MCP tool", toolCalls: [] });
            expect(result.answer).toBe("Hello from the stand-in qwen-plus.");
        } finally {
            await daemon().setLlmScript({});
        }
    });

    it("fails, printing why, when the MCP server revoked the tokens", async () => {
        expect(mcp.revokeTokens()).toBeGreaterThan(0);
        const reachedTool = mcp.toolInvocations.length;
        const { result, lines } = await smoke("smoke (tokens revoked)");
        expect(result.passed).toBe(false);
        const error = result.toolCalls[0]?.error ?? "";
        expect(error).toBe('tool invoke error: Failed to connect to MCP server: Authentication retry failed: {"error":"invalid_grant","error_description":"refresh token revoked"}');
        expect(lines).toContain(`  ✗ Ecs-DescribeInstances failed: ${error}`);
        // Nothing reached the tool: Dify's call was refused for its token, and the refresh for the refresh token.
        expect(mcp.toolInvocations.length).toBe(reachedTool);
        const run = await runCli();
        expect(run.code).toBe(1);
        expect(run.stdout).toMatch(/FAIL: every MCP tool call failed \(Ecs-DescribeInstances: tool invoke error: .*refresh token revoked/);
    });
});
