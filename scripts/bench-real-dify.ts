// Figures for the project against Dify's real API server (1.14.1, tests/harness/real-dify.ts): the harness's
// set-up time (cold and warm), then every Dify provider operation's wall time and HTTP calls (counted by a
// recording proxy in front of Dify), then the smoke test. The e2e lifecycle's steps: npm run bench:e2e.
// No assertions: it prints what it measured.
//
//   npm run bench:real-dify             set-up as the caches are (cold the first time), then a warm start
//   npm run bench:real-dify -- --cold   drop the built caches first (Dify's Python environment, the migrated
//                                       database template); downloaded packages stay in .cache/uv
import * as fs from "fs";
import * as path from "path";
import { difyAdminProvider } from "../dynamic-providers/dify/admin";
import { difyAgentAppProvider } from "../dynamic-providers/dify/agent-app";
import { difyMcpToolProviderProvider } from "../dynamic-providers/dify/mcp-tool-provider";
import { difyModelProviderProvider } from "../dynamic-providers/dify/model-provider";
import { difyReadinessProvider } from "../dynamic-providers/dify/readiness";
import { ensureDifyPython } from "../tests/harness/dify-python";
import { RealDify, RealDifyTimings, startRealDify } from "../tests/harness/real-dify";
import { RecordingProxy, startRecordingProxy } from "../tests/harness/recording-proxy";
import { startMcpOAuthServer } from "../tests/servers/mcp-oauth-server";
import { PROJECT_ROOT } from "./project-root";
import { runSmokeTest } from "./smoke";

const ADMIN = { email: "bench@example.com", name: "Bench Admin", password: "Bench-Passw0rd-1" };
const INIT_PASSWORD = "bench-init-9";
const CLIENT_ID = "4071151845732610001";

interface Row {
    resource: string;
    operation: string;
    ms: number;
    reads: number;
    writes: number;
    auth: number;
}

/** A create's result with its outputs (every provider here returns them). */
async function created<T>(result: Promise<{ id: string; outs?: T }>): Promise<{ id: string; outs: T }> {
    const { id, outs } = await result;
    if (outs === undefined) {
        throw new Error(`create of ${id} returned no outputs`);
    }
    return { id, outs };
}

function table(header: string[], rows: string[][]): string {
    const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
    return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function timingRow(label: string, t: RealDifyTimings, environmentSeconds: number, built: boolean): string[] {
    return [
        label,
        `${environmentSeconds.toFixed(1)}${built ? " (built)" : ""}`,
        `${t.template.toFixed(1)}${t.templateBuilt ? " (built)" : ""}`,
        t.postgres.toFixed(1),
        t.database.toFixed(1),
        t.pluginDaemon.toFixed(1),
        t.api.toFixed(1),
        t.setup.toFixed(1),
        (t.total + environmentSeconds).toFixed(1),
    ];
}

async function main(): Promise<void> {
    if (process.argv.includes("--cold")) {
        for (const dir of ["dify-python", "real-dify"]) {
            fs.rmSync(path.join(PROJECT_ROOT, ".cache", dir), { recursive: true, force: true });
        }
        console.log("--cold: removed .cache/dify-python and .cache/real-dify (the uv package cache stays)");
    }

    // Set-up: the first start pays for whatever is not cached; the second is what every test file pays.
    const environment = ensureDifyPython();
    const first = await startRealDify({ initPassword: INIT_PASSWORD });
    const firstTimings = first.timings;
    const second = await startRealDify();
    const secondTimings = second.timings;
    await second.close();
    console.log("\nHarness set-up (seconds; a test file pays the warm row once)\n");
    console.log(
        table(
            ["start", "python env", "db template", "postgres", "database", "daemon", "api", "setup", "total"],
            [timingRow("first", firstTimings, environment.seconds, environment.built), timingRow("warm", secondTimings, 0, false)],
        ),
    );

    const proxy = await startRecordingProxy(first.url);
    try {
        await benchProviders(first, proxy);
    } finally {
        await proxy.close();
        await first.close();
    }
}

async function benchProviders(dify: RealDify, proxy: RecordingProxy): Promise<void> {
    const rows: Row[] = [];
    const measure = async <T>(resource: string, operation: string, step: () => Promise<T>): Promise<T> => {
        const from = proxy.calls.length;
        const started = Date.now();
        const result = await step();
        rows.push({
            resource,
            operation,
            ms: Date.now() - started,
            reads: proxy.count({ kind: "read", from }),
            writes: proxy.count({ kind: "write", from }),
            auth: proxy.count({ kind: "auth", from }),
        });
        return result;
    };
    const mcp = await startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris: [`${dify.url}/console/api/mcp/oauth/callback`] }] });
    const connection = { difyUrl: proxy.url, adminEmail: ADMIN.email, adminPassword: ADMIN.password };
    try {
        const readiness = { difyUrl: proxy.url, instanceId: "i-bench", timeoutSeconds: 60, pollIntervalSeconds: 1 };
        await measure("DifyReadiness", "create", () => difyReadinessProvider.create!(readiness));

        const adminInputs = { difyUrl: proxy.url, ...ADMIN, initPassword: INIT_PASSWORD };
        const admin = await measure("DifyAdmin", "create (init + setup)", () => created(difyAdminProvider.create!(adminInputs)));
        await measure("DifyAdmin", "read", () => difyAdminProvider.read!(admin.id, admin.outs));
        await measure("DifyAdmin", "diff (no change)", () => difyAdminProvider.diff!(admin.id, admin.outs, adminInputs));
        await measure("DifyAdmin", "create again (adopt)", () => created(difyAdminProvider.create!(adminInputs)));

        const modelInputs = { ...connection, dashscopeApiKey: "sk-bench-dashscope-0001", installPollSeconds: 0.2 };
        const model = await measure("DifyModelProvider", "create (install tongyi, key, defaults)", () => created(difyModelProviderProvider.create!(modelInputs)));
        await measure("DifyModelProvider", "read", () => difyModelProviderProvider.read!(model.id, model.outs));
        await measure("DifyModelProvider", "diff (no change)", () => difyModelProviderProvider.diff!(model.id, model.outs, modelInputs));
        const rotated = { ...modelInputs, dashscopeApiKey: "sk-bench-dashscope-0002" };
        const modelUpdate = await measure("DifyModelProvider", "update (rotate key)", () => difyModelProviderProvider.update!(model.id, model.outs, rotated));

        const mcpInputs = { ...connection, name: "Alibaba Cloud OpenAPI", serverUrl: mcp.mcpUrl, serverIdentifier: "aliyun-openapi", oauthClientId: CLIENT_ID, oauthClientSecret: "" };
        const mcpCheck = await difyMcpToolProviderProvider.check!({} as never, mcpInputs);
        const mcpDesired = mcpCheck.inputs as typeof mcpInputs;
        const provider = await measure("DifyMcpToolProvider", "create (+ authorization URL)", () => created(difyMcpToolProviderProvider.create!(mcpDesired)));
        // A person approves the consent; Dify's callback exchanges the code with the MCP server.
        const callback = await mcp.approve(provider.outs.authorizationUrl);
        await fetch(callback, { redirect: "manual" });
        const authorized = await measure("DifyMcpToolProvider", "read (after approval: lists tools)", () => difyMcpToolProviderProvider.read!(provider.id, provider.outs));
        const mcpState = { ...provider.outs, ...authorized.props };
        await measure("DifyMcpToolProvider", "diff (no change)", () => difyMcpToolProviderProvider.diff!(provider.id, mcpState, mcpDesired));
        const slower = { ...mcpDesired, timeoutSeconds: 45 };
        await measure("DifyMcpToolProvider", "update (timeout)", () => difyMcpToolProviderProvider.update!(provider.id, mcpState, slower));

        const appInputs = {
            ...connection,
            name: "ECS assistant",
            systemPrompt: "Answer questions about ECS with the Alibaba Cloud tools.",
            mcpServerIdentifier: "aliyun-openapi",
            mcpToolNames: mcpState.toolNames,
        };
        const app = await measure("DifyAgentApp", "create", () => created(difyAgentAppProvider.create!(appInputs)));
        await measure("DifyAgentApp", "read", () => difyAgentAppProvider.read!(app.id, app.outs));
        await measure("DifyAgentApp", "diff (no change)", () => difyAgentAppProvider.diff!(app.id, app.outs, appInputs));
        await measure("DifyAgentApp", "update (rename)", () => difyAgentAppProvider.update!(app.id, app.outs, { ...appInputs, name: "ECS helper" }));

        const smoke = await measure("smoke", "ask the agent (one MCP tool call)", () =>
            runSmokeTest({ difyUrl: proxy.url, email: ADMIN.email, password: ADMIN.password, appId: app.id, log: () => undefined }),
        );

        await measure("DifyAgentApp", "delete", () => difyAgentAppProvider.delete!(app.id, app.outs));
        await measure("DifyMcpToolProvider", "delete", () => difyMcpToolProviderProvider.delete!(provider.id, mcpState));
        await measure("DifyModelProvider", "delete", () => difyModelProviderProvider.delete!(model.id, { ...model.outs, ...modelUpdate.outs }));
        await measure("DifyAdmin", "delete (leaves the admin)", () => difyAdminProvider.delete!(admin.id, admin.outs));

        console.log(`\nProvider operations against Dify ${dify.version} (HTTP calls through the proxy; auth = /setup, /login, /refresh-token)\n`);
        console.log(
            table(
                ["resource", "operation", "ms", "reads", "writes", "auth"],
                rows.map((row) => [row.resource, row.operation, String(row.ms), String(row.reads), String(row.writes), String(row.auth)]),
            ),
        );
        console.log(`\nsmoke: ${smoke.passed ? "passed" : `FAILED: ${smoke.reason}`}; MCP tool calls: ${smoke.toolCalls.length}`);
    } finally {
        await mcp.close();
    }
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
});
