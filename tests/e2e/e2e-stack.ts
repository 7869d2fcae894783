// What the end-to-end test (tests/e2e/lifecycle.test.ts) and the benchmark (scripts/bench-e2e.ts) share: the
// servers (Dify's real API server 1.14.1 behind a recording proxy, the Alibaba-like API server and the loopback
// MCP server that requires OAuth like Alibaba's), one stack of tests/e2e/program on a throwaway `file://` backend
// with a passphrase secrets provider, and the CLI steps with their engine summaries (--json) and the API calls
// the servers saw during each.
//
// Wiring (everything on 127.0.0.1):
//   program ──► recording proxy ──► Dify's API (gunicorn) ──► plugin-daemon stand-in (tongyi, qwen-plus)
//   program ──► Alibaba API stand-in (Ims, OpenAPIExplorer; hands out MCP URLs on the MCP server)
//   Dify ──► MCP server (/accounts/<uid>/custom/<name>/id/<id>/mcp of every MCP server the Alibaba stand-in
//            holds; OAuth clients = its RAM apps)
// The proxy is the address Dify is told it has (CONSOLE_API_URL and the other public URLs), so the redirect URI
// Dify sends in the MCP OAuth flow is the one the program registers in the RAM app (from `difyUrl`).
//
// The CLI is run asynchronously: the proxy and the Alibaba and MCP servers live in this process, and a blocking
// spawnSync would starve them.
import { spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { connectToDify, DifyConsole } from "../../dynamic-providers/dify/session";
import { createLocalBackend, LocalBackend, repoRoot, runPulumiAsync } from "../../scripts/pulumi-local-backend";
import { REAL_DIFY_DEFAULT_TAG, RealDify, startRealDify } from "../harness/real-dify";
import { ProxiedCall, RecordingProxy, startRecordingProxy } from "../harness/recording-proxy";
import { AlibabaApiServer, startAlibabaApiServer } from "../servers/alibaba-api-server";
import { ALIBABA_MCP_PATH_PATTERN, McpOAuthServer, startMcpOAuthServer } from "../servers/mcp-oauth-server";

/** The program under test, in the repository (its Pulumi.yaml names the project). */
export const E2E_PROGRAM_DIR = path.join(repoRoot, "tests", "e2e", "program");
export const E2E_PROJECT = "dify-mcp-e2e";
export const E2E_STACK = "e2e";
/** The Dify release the e2e runs: the real API server of this tag (tests/harness/real-dify.ts). */
export const E2E_DIFY_VERSION = REAL_DIFY_DEFAULT_TAG;
/** The admin the program creates (tests/e2e/program/index.js defaults). */
export const E2E_ADMIN_EMAIL = "admin@example.com";
/** The MCP tool the stand-in LLM calls when the agent offers it. */
export const E2E_SMOKE_TOOL = "Ecs-DescribeInstances";

/** Throwaway credentials and secrets, distinctive so a grep of the state finds any plain-text leak. */
export const E2E_SECRETS = {
    accessKeyId: "test-ak-e2e-local-only",
    accessKeySecret: "e2e-access-key-secret-never-in-state-7f3a",
    adminPassword: "E2eAdminPassw0rd-9c1d",
    dashscopeApiKey: "sk-e2e-dashscope-key-4b8e2f60a1",
    passphrase: "e2e-local-passphrase",
} as const;

// ------------------------------------------------------------------------------------------------------
// Servers and their call counts.

export interface E2eServers {
    alibaba: AlibabaApiServer;
    /** Alibaba's OpenAPI MCP server and authorization server in one: serves every MCP URL the Alibaba stand-in
     *  hands out, and knows its RAM OAuth apps as clients. */
    mcp: McpOAuthServer;
    /** Dify's real API server; `dify.url` is its own address (used for inspection, never by the program). */
    dify: RealDify;
    /** In front of Dify: counts every console call of the program. */
    proxy: RecordingProxy;
    /** The Dify address the program (difyUrl) and Dify itself (CONSOLE_API_URL, ...) use: the proxy's. */
    difyUrl: string;
    /** Seconds startRealDify took (importing Dify dominates). */
    difyStartSeconds: number;
    close(): Promise<void>;
}

/**
 * Starts the servers. Dify's start takes 20-50 s on 2 cores (more on a cold cache: give the caller's hook a
 * long timeout). Closes whatever started when a later one fails.
 */
export async function startE2eServers(): Promise<E2eServers> {
    const started: { close(): Promise<void> }[] = [];
    const closeAll = async () => {
        const errors: unknown[] = [];
        for (const server of started.splice(0).reverse()) {
            await server.close().catch((err: unknown) => errors.push(err));
        }
        if (errors.length > 0) {
            throw errors[0];
        }
    };
    try {
        const proxy = await startRecordingProxy();
        started.push(proxy);
        let alibaba: AlibabaApiServer | undefined;
        const mcp = await startMcpOAuthServer({
            // As Alibaba's: every RAM OAuth app is a client, every MCP server of the account is served, and only
            // tokens of the app bound to a server (its oauthClientId) open it.
            clientLookup: (clientId) => {
                const client = alibaba?.oauthClient(clientId);
                return client && { clientId: client.clientId, redirectUris: client.redirectUris, clientSecrets: client.clientSecrets };
            },
            mcpEndpoints: (mcpPath) => {
                const server = ALIBABA_MCP_PATH_PATTERN.test(mcpPath) ? alibaba?.mcpServerByPath(mcpPath) : undefined;
                return server && { oauthClientId: server.oauthClientId };
            },
        });
        started.push(mcp);
        alibaba = await startAlibabaApiServer({ accessKeyId: E2E_SECRETS.accessKeyId, accessKeySecret: E2E_SECRETS.accessKeySecret, mcpBaseUrl: mcp.url });
        started.push(alibaba);
        const began = Date.now();
        // Every public address Dify builds (the MCP OAuth redirect URI from CONSOLE_API_URL, the redirect after
        // the callback from CONSOLE_WEB_URL, ...) is the proxy's, as nginx's would be in the deployment.
        const publicUrls = ["CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "APP_API_URL", "APP_WEB_URL", "FILES_URL"];
        const dify = await startRealDify({
            env: Object.fromEntries(publicUrls.map((name) => [name, proxy.url])),
            // The smoke question is about ECS instances: the stand-in qwen-plus calls DescribeInstances.
            pluginDaemon: { llmScript: { toolName: E2E_SMOKE_TOOL } },
        });
        started.push(dify);
        proxy.target = dify.url;
        const servers: E2eServers = {
            alibaba,
            mcp,
            dify,
            proxy,
            difyUrl: proxy.url,
            difyStartSeconds: (Date.now() - began) / 1000,
            close: closeAll,
        };
        return servers;
    } catch (err) {
        await closeAll().catch(() => undefined);
        throw err;
    }
}

/** A position in the servers' call logs. */
export interface CallMark {
    alibaba: number;
    /** Into the proxy's calls. */
    dify: number;
    mcp: number;
}

export interface ApiCalls {
    /** Alibaba API reads and writes; `alibabaByAction` per action, e.g. { CreateApplication: 1 }. */
    alibabaReads: number;
    alibabaWrites: number;
    alibabaByAction: Record<string, number>;
    /** Dify console reads and writes (login, token refresh and the unauthenticated GET /setup are `difyAuth`). */
    difyReads: number;
    difyWrites: number;
    difyAuth: number;
    /** Per route template, e.g. { "POST /apps": 1 }. */
    difyByRoute: Record<string, number>;
    /** Requests Dify made to the MCP server (MCP sessions and OAuth), by kind, e.g. { mcp: 6, token: 1 }. */
    mcpByKind: Record<string, number>;
    reads: number;
    writes: number;
}

/**
 * The route templates the fake Dify (tests/servers/dify-console-server.ts) counts under, from the proxy's:
 * ids are "<id>" (the proxy says ":id"), the model provider in a credentials path is "<path>", a model type
 * is "<id>". Keeps the figures of tests, bench and earlier runs comparable.
 */
export function difyRouteTemplate(proxyRoute: string): string {
    return proxyRoute
        .replace(/:id(?=\/|$)/g, "<id>")
        .replace(/^(\w+ \/workspaces\/current\/model-providers\/).+(\/credentials)$/, "$1<path>$2")
        .replace(/^(\w+ \/workspaces\/current\/models\/model-types\/)[^/]+$/, "$1<id>");
}

/** Kinds the fake Dify gives where the proxy's rule (GET read, else write; login/setup/init auth) differs. */
const FAKE_DIFY_KINDS: Record<string, ProxiedCall["kind"]> = {
    // Setting Dify up writes the first account: the fake counts it (and /init) as writes.
    "POST /setup": "write",
    "POST /init": "write",
    // A query sent as POST.
    "POST /workspaces/current/plugin/list/latest-versions": "read",
};

/** A proxied call as the fake Dify would have counted it. */
export function countedDifyCall(call: ProxiedCall): { route: string; kind: ProxiedCall["kind"] } {
    const route = difyRouteTemplate(call.route);
    return { route, kind: FAKE_DIFY_KINDS[route] ?? call.kind };
}

export function markCalls(servers: E2eServers): CallMark {
    return { alibaba: servers.alibaba.mark(), dify: servers.proxy.calls.length, mcp: servers.mcp.mark() };
}

export function callsSince(servers: E2eServers, mark: CallMark): ApiCalls {
    const alibaba = servers.alibaba.countSince(mark.alibaba);
    const calls: ApiCalls = {
        alibabaReads: alibaba.reads,
        alibabaWrites: alibaba.writes,
        alibabaByAction: alibaba.byAction,
        difyReads: 0,
        difyWrites: 0,
        difyAuth: 0,
        difyByRoute: {},
        mcpByKind: {},
        reads: 0,
        writes: 0,
    };
    for (const call of servers.proxy.calls.slice(mark.dify).map(countedDifyCall)) {
        if (call.kind === "read") calls.difyReads++;
        else if (call.kind === "write") calls.difyWrites++;
        else calls.difyAuth++;
        calls.difyByRoute[call.route] = (calls.difyByRoute[call.route] ?? 0) + 1;
    }
    for (const call of servers.mcp.callsSince(mark.mcp)) {
        calls.mcpByKind[call.kind] = (calls.mcpByKind[call.kind] ?? 0) + 1;
    }
    calls.reads = calls.alibabaReads + calls.difyReads;
    calls.writes = calls.alibabaWrites + calls.difyWrites;
    return calls;
}

/** The write calls by name, for assertion messages: "CreateApplication×1, POST /apps×1". */
export function describeWrites(servers: E2eServers, mark: CallMark): string {
    const names = [
        ...servers.alibaba.calls.slice(mark.alibaba).filter((call) => call.kind === "write").map((call) => call.action),
        ...servers.proxy.calls.slice(mark.dify).map(countedDifyCall).filter((call) => call.kind === "write").map((call) => call.route),
    ];
    const counts = new Map<string, number>();
    for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
    return [...counts].map(([name, count]) => `${name}×${count}`).join(", ") || "none";
}

// ------------------------------------------------------------------------------------------------------
// The engine's summaries.

/** One step of `pulumi preview/up/refresh/destroy --json`. */
export interface EngineStep {
    op: string;
    urn: string;
    /** Present on replacements: the properties the provider said force it. */
    replaceReasons?: string[];
    diffReasons?: string[];
    detailedDiff?: Record<string, { kind: string; inputDiff?: boolean }> | null;
    oldState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
    newState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
}

export interface EngineSummary {
    steps: EngineStep[];
    /** Operation counts, e.g. { create: 7 } or { same: 7 }. */
    changeSummary: Record<string, number>;
    diagnostics: { message: string; severity: string; urn?: string }[];
    policyViolations?: { policyName: string; enforcementLevel: string; message: string; urn?: string }[];
    /** Streaming output only: which policy pack analysed which resource, and the policies it passed/failed. */
    policyAnalyses?: { urn: string; policyPack: string; passed: string[]; failed: string[] }[];
}

export interface StepResult {
    args: string[];
    status: number;
    stdout: string;
    stderr: string;
    /** Wall time of the CLI command. */
    ms: number;
    /** API calls the servers saw while it ran. */
    calls: ApiCalls;
    writesDescribed: string;
    /** The parsed --json summary, when the command printed one. */
    summary?: EngineSummary;
}

/** `pulumi-nodejs:dynamic/alibaba:RamOAuthApplication` and the resource name, from a URN. */
export function urnParts(urn: string): { type: string; name: string } {
    const parts = urn.split("::");
    return { type: parts[2] ?? "", name: parts[3] ?? "" };
}

/** The program's resources, keyed as `resourceKey` names them: "<Type>.<name>". */
export const E2E_RESOURCES = {
    readiness: "Readiness.dify-ready",
    oauthApp: "RamOAuthApplication.mcp-oauth",
    mcpServer: "OpenApiMcpServer.openapi-mcp",
    admin: "Admin.dify-admin",
    models: "ModelProvider.qwen",
    mcpTools: "McpToolProvider.openapi-mcp",
    agent: "AgentApp.ops-agent",
} as const;

/** "RamOAuthApplication.mcp-oauth" for urn:…::pulumi-nodejs:dynamic/alibaba:RamOAuthApplication::mcp-oauth. */
export function resourceKey(urn: string): string {
    const { type, name } = urnParts(urn);
    return `${type.slice(type.lastIndexOf(":") + 1)}.${name}`;
}

/** The operations per program resource (the stack itself left out), in the order the engine did them. */
export function operationsByResource(summary: EngineSummary): Record<string, string[]> {
    const byResource: Record<string, string[]> = {};
    for (const step of summary.steps) {
        if (urnParts(step.urn).type === "pulumi:pulumi:Stack") continue;
        (byResource[resourceKey(step.urn)] ??= []).push(step.op);
    }
    return byResource;
}

/** The steps of one resource, e.g. stepsOf(summary, E2E_RESOURCES.oauthApp). */
export function stepsOf(summary: EngineSummary, key: string): EngineStep[] {
    return summary.steps.filter((step) => resourceKey(step.urn) === key);
}

/** Properties `pulumi preview --diff` marks changed (`~ name: old => new`) in its text output. */
export function changedPropertiesInDiffText(text: string): string[] {
    return [...text.matchAll(/^\s+~ ([A-Za-z0-9_]+)\s*:/gm)].map((match) => match[1]).sort();
}

/**
 * The input keys a step changes, from the engine's own old and new inputs (dynamic providers return no
 * detailed diff, so the engine shows exactly these in `--diff`). `__provider` (the serialized code) is left out.
 */
export function changedInputKeys(step: EngineStep): string[] {
    const olds = step.oldState?.inputs ?? {};
    const news = step.newState?.inputs ?? {};
    const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
    keys.delete("__provider");
    return [...keys].filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key])).sort();
}

interface StepEventMetadata {
    op: string;
    urn: string;
    old?: EngineStep["oldState"] | null;
    new?: EngineStep["newState"] | null;
    keys?: string[];
    diffs?: string[];
    detailedDiff?: EngineStep["detailedDiff"];
}

interface EngineEvent {
    resOutputsEvent?: { metadata: StepEventMetadata };
    resOpFailedEvent?: { metadata: StepEventMetadata };
    diagnosticEvent?: { message: string; severity: string; urn?: string };
    policyEvent?: { policyName: string; enforcementLevel: string; message: string; resourceUrn?: string };
    policyAnalyzeSummaryEvent?: { resourceUrn: string; policyPackName: string; passed?: string[]; failed?: string[] };
    summaryEvent?: { resourceChanges?: Record<string, number> };
}

/**
 * `preview --json` prints one object; `up`, `refresh` and `destroy --json` print the engine's event stream, one
 * JSON object a line. Both become the same summary: the steps done (for the stream: the resources whose outputs
 * were recorded), the engine's change counts, error/warning diagnostics and policy violations.
 */
export function parseEngineSummary(stdout: string): EngineSummary | undefined {
    const text = stdout.trim();
    if (text.startsWith("{\n")) {
        const end = text.lastIndexOf("\n}");
        try {
            const parsed = JSON.parse(text.slice(0, end + 2)) as Partial<EngineSummary>;
            return {
                steps: parsed.steps ?? [],
                changeSummary: parsed.changeSummary ?? {},
                diagnostics: (parsed.diagnostics ?? []).filter((d) => d.severity !== "debug"),
                policyViolations: parsed.policyViolations ?? [],
            };
        } catch {
            return undefined;
        }
    }
    const summary: EngineSummary = { steps: [], changeSummary: {}, diagnostics: [], policyViolations: [], policyAnalyses: [] };
    let sawSummary = false;
    for (const line of text.split("\n")) {
        if (!line.startsWith("{")) continue;
        let event: EngineEvent;
        try {
            event = JSON.parse(line) as EngineEvent;
        } catch {
            continue;
        }
        const metadata = event.resOutputsEvent?.metadata;
        if (metadata) {
            summary.steps.push({
                op: metadata.op,
                urn: metadata.urn,
                replaceReasons: metadata.keys,
                diffReasons: metadata.diffs,
                detailedDiff: metadata.detailedDiff,
                oldState: metadata.old ?? undefined,
                newState: metadata.new ?? undefined,
            });
        }
        const diagnostic = event.diagnosticEvent;
        if (diagnostic && (diagnostic.severity === "error" || diagnostic.severity === "warning")) {
            summary.diagnostics.push({ message: diagnostic.message, severity: diagnostic.severity, urn: diagnostic.urn });
        }
        const policy = event.policyEvent;
        if (policy) {
            summary.policyViolations?.push({ policyName: policy.policyName, enforcementLevel: policy.enforcementLevel, message: policy.message, urn: policy.resourceUrn });
        }
        const analysis = event.policyAnalyzeSummaryEvent;
        if (analysis) {
            summary.policyAnalyses?.push({ urn: analysis.resourceUrn, policyPack: analysis.policyPackName, passed: analysis.passed ?? [], failed: analysis.failed ?? [] });
        }
        if (event.summaryEvent) {
            summary.changeSummary = event.summaryEvent.resourceChanges ?? {};
            sawSummary = true;
        }
    }
    return sawSummary ? summary : undefined;
}

// ------------------------------------------------------------------------------------------------------
// The stack.

/** Stack settings the program reads (tests/e2e/program/index.js); secrets are set with --secret. */
/** Settings of the program (Pulumi.yaml's keys, read by config/integration-config.ts) the tests change. */
export interface E2eConfig {
    oauthAppName?: string;
    oauthAppType?: string;
    oauthAccessTokenValidity?: number;
    oauthRefreshTokenValidity?: number;
    mcpServerName?: string;
    adminName?: string;
    llmModel?: string;
    mcpProviderName?: string;
    mcpServerIdentifier?: string;
    agentAppName?: string;
    agentSystemPrompt?: string;
}

/** The e2e stack's settings at creation: a WebApp, so a client secret travels all the way into Dify. */
export const E2E_CONFIG = {
    oauthAppName: "dify-mcp-e2e",
    oauthAppType: "WebApp",
    mcpServerName: "e2e-mcp",
    adminEmail: E2E_ADMIN_EMAIL,
    adminName: "Pulumi E2E",
    mcpServerIdentifier: "alibaba-openapi",
    agentAppName: "ECS assistant",
    agentSystemPrompt: "Answer questions about the user's ECS instances with the Alibaba Cloud tools.",
} as const;

/** One entry of `pulumi stack history --json` (newest first). */
export interface HistoryEntry {
    version: number;
    kind: string;
    result: string;
    resourceChanges?: Record<string, number>;
}

export interface E2eStack {
    readonly servers: E2eServers;
    readonly backend: LocalBackend;
    /** The folder with the generated Pulumi.yaml (main: the program) and the stack's config file. */
    readonly projectDir: string;
    /** Runs `pulumi <args>` and records its time and the API calls it caused; `env` adds variables. */
    run(args: string[], env?: NodeJS.ProcessEnv): Promise<StepResult>;
    /** Sets plain settings (`pulumi config set`). */
    setConfig(values: E2eConfig): Promise<void>;
    /** `pulumi preview --json`. */
    preview(extra?: string[]): Promise<StepResult>;
    /**
     * `pulumi preview --policy-pack policy` with the streaming JSON output, which also reports which policies
     * each resource passed or failed.
     */
    previewWithPolicies(): Promise<StepResult>;
    /** `pulumi up --yes --skip-preview --json` (the preview is a step of its own). */
    up(extra?: string[]): Promise<StepResult>;
    refresh(extra?: string[]): Promise<StepResult>;
    destroy(extra?: string[]): Promise<StepResult>;
    /** `pulumi stack export` (secrets stay encrypted). */
    exportState(): Promise<string>;
    /** `pulumi stack output --json` (secret outputs show as "[secret]"). */
    outputs(): Promise<Record<string, unknown>>;
    history(): Promise<HistoryEntry[]>;
    /** Every file the CLI wrote: state, checkpoints, history, backups, logs and the stack's config file. */
    writtenFiles(): string[];
    /** Removes the stack's temp folder (backend, config, CLI home); the servers are the caller's. */
    cleanup(): void;
}

export interface E2eStackOptions {
    /** Folder for the temp backend (default: the OS temp folder). */
    parentDir?: string;
    /** Initial plain settings. */
    config?: E2eConfig;
}

/** The policy pack (an npm project of its own: `npm ci --prefix policy`). */
export const POLICY_PACK_DIR = path.join(repoRoot, "policy");

/** Fails with the CLI's own output when a step did not exit 0. */
export function assertSucceeded(result: StepResult): StepResult {
    if (result.status !== 0) {
        const diagnostics = result.summary?.diagnostics.map((d) => `${d.severity}: ${d.message}`).join("\n") ?? "";
        throw new Error(
            `pulumi ${result.args.join(" ")} exited ${result.status}\n${diagnostics}\n--- stderr ---\n${result.stderr.slice(-4000)}\n--- stdout ---\n${result.stdout.slice(-4000)}`,
        );
    }
    return result;
}

function listFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * Creates the stack: a temp folder with a Pulumi.yaml whose `main` points at tests/e2e/program (so the stack's
 * config file lands in the temp folder, not the repository), the backend, `stack init` with the passphrase
 * provider, the servers' addresses and the secrets. Fails when there is no CLI or no compiled dist/.
 */
export async function createE2eStack(servers: E2eServers, options: E2eStackOptions = {}): Promise<E2eStack> {
    const compiled = path.join(repoRoot, "dist", "dynamic-providers", "alibaba", "ram-oauth-app.js");
    if (!fs.existsSync(compiled)) {
        throw new Error(`${compiled} is missing: run \`npm run build\` first (the e2e program requires the compiled providers)`);
    }
    // Throws "No Pulumi CLI: run `bash scripts/pulumi-cli.sh` …" when there is none.
    const backend = createLocalBackend({
        passphrase: E2E_SECRETS.passphrase,
        parentDir: options.parentDir,
        env: {
            ALIBABA_CLOUD_ACCESS_KEY_ID: E2E_SECRETS.accessKeyId,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET: E2E_SECRETS.accessKeySecret,
        },
    });
    const projectDir = path.join(backend.dir, "project");
    fs.mkdirSync(projectDir);
    const programYaml = fs.readFileSync(path.join(E2E_PROGRAM_DIR, "Pulumi.yaml"), "utf8");
    fs.writeFileSync(path.join(projectDir, "Pulumi.yaml"), `${programYaml.trimEnd()}\nmain: ${JSON.stringify(path.relative(projectDir, E2E_PROGRAM_DIR))}\n`);

    const run = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<StepResult> => {
        const mark = markCalls(servers);
        const started = process.hrtime.bigint();
        const result = await runPulumiAsync(backend, projectDir, args, env);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        return {
            args,
            ...result,
            ms,
            calls: callsSince(servers, mark),
            writesDescribed: describeWrites(servers, mark),
            summary: args.includes("--json") ? parseEngineSummary(result.stdout) : undefined,
        };
    };
    const setConfig = async (values: E2eConfig | Record<string, string | number>) => {
        for (const [key, value] of Object.entries(values)) {
            if (value !== undefined) {
                assertSucceeded(await run(["config", "set", key, String(value)]));
            }
        }
    };

    try {
        assertSucceeded(await run(["stack", "init", E2E_STACK, "--secrets-provider", "passphrase"]));
        await setConfig({ alibabaEndpoint: servers.alibaba.url, difyUrl: servers.difyUrl, ...E2E_CONFIG, ...options.config });
        assertSucceeded(await run(["config", "set", "--secret", "adminPassword", E2E_SECRETS.adminPassword]));
        assertSucceeded(await run(["config", "set", "--secret", "dashscopeApiKey", E2E_SECRETS.dashscopeApiKey]));
    } catch (err) {
        backend.cleanup();
        throw err;
    }

    return {
        servers,
        backend,
        projectDir,
        run,
        setConfig,
        preview: (extra = []) => run(["preview", "--json", ...extra]),
        previewWithPolicies: () => {
            if (!fs.existsSync(path.join(POLICY_PACK_DIR, "node_modules", "@pulumi", "policy"))) {
                throw new Error(`${POLICY_PACK_DIR}/node_modules is missing: run \`npm ci --prefix policy\``);
            }
            return run(["preview", "--json", "--policy-pack", POLICY_PACK_DIR], { PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true" });
        },
        up: (extra = []) => run(["up", "--yes", "--skip-preview", "--json", ...extra]),
        refresh: (extra = []) => run(["refresh", "--yes", "--skip-preview", "--json", ...extra]),
        destroy: (extra = []) => run(["destroy", "--yes", "--skip-preview", "--json", ...extra]),
        exportState: async () => assertSucceeded(await run(["stack", "export"])).stdout,
        outputs: async () => JSON.parse(assertSucceeded(await run(["stack", "output", "--json"])).stdout) as Record<string, unknown>,
        history: async () => JSON.parse(assertSucceeded(await run(["stack", "history", "--json"])).stdout) as HistoryEntry[],
        writtenFiles: () => listFiles(backend.dir),
        cleanup: () => backend.cleanup(),
    };
}

// ------------------------------------------------------------------------------------------------------
// The real Dify's state, for assertions: read through its console API with an admin session of our own and from
// its database. The session goes to Dify directly, not through the proxy, so the call counts stay the program's.

export interface DifyMcpProviderState {
    id: string;
    name: string;
    serverIdentifier: string;
    /** SHA-256 of the server URL (Dify stores the URL encrypted and shows it masked): see `urlHash`. */
    serverUrlHash: string;
    /** Dify's `authed` flag (is_team_authorization). */
    authed: boolean;
    /** The tools Dify stored for the provider (listed from the server with its tokens). */
    toolNames: string[];
    /** The preset client as Dify shows it: masked (first and last two characters), "" when none. */
    maskedClientId: string;
    maskedClientSecret: string;
    isDynamicRegistration: boolean;
}

export interface DifyAppState {
    id: string;
    name: string;
    mode: string;
    prePrompt: string;
    /** The MCP tools in the saved agent config: "<provider_id>/<tool_name>". */
    mcpTools: string[];
}

export interface DifyState {
    /** GET /console/api/setup: "finished" once the first admin exists. */
    isSetUp(): Promise<boolean>;
    accountEmails(): Promise<string[]>;
    mcpProviders(): Promise<DifyMcpProviderState[]>;
    /** Installed plugin ids (GET /workspaces/current/plugin/list, answered by the plugin daemon stand-in). */
    plugins(): Promise<string[]>;
    /** The tongyi provider's credentials: id, name and the key as Dify shows it (obfuscated). */
    tongyiCredentials(): Promise<{ id: string; name: string; shownKey: string }[]>;
    defaultModel(type: "llm" | "text-embedding"): Promise<{ provider: string; model: string } | undefined>;
    agentApps(): Promise<DifyAppState[]>;
    /** Deletes an app as a person in Dify's console would (DELETE /apps/<id>). */
    deleteApp(id: string): Promise<void>;
    /** Deletes an MCP provider as a person in Dify's console would. */
    deleteMcpProvider(id: string): Promise<void>;
}

/** The hash Dify keeps of an MCP server URL (server_url_hash). */
export function urlHash(url: string): string {
    return createHash("sha256").update(url, "utf8").digest("hex");
}

function parseJson<T>(value: unknown): T | undefined {
    if (typeof value !== "string") return value as T | undefined;
    try {
        return JSON.parse(value) as T;
    } catch {
        return undefined;
    }
}

/** Reads the real Dify of `servers` as the program's admin (logs in on first use, after the program set Dify up). */
export function difyState(servers: E2eServers, admin = { email: E2E_ADMIN_EMAIL, password: E2E_SECRETS.adminPassword }): DifyState {
    const difyUrl = servers.dify.url;
    let session: Promise<DifyConsole> | undefined;
    const console_ = () => (session ??= connectToDify({ url: difyUrl }, admin).catch((err: unknown) => {
        session = undefined;
        throw err;
    }));
    const TONGYI = "langgenius/tongyi/tongyi";
    return {
        isSetUp: async () => {
            const answer = (await (await fetch(`${difyUrl}/console/api/setup`)).json()) as { step?: string };
            return answer.step === "finished";
        },
        accountEmails: async () => (await servers.dify.sql("select email from accounts order by created_at")).split("\n").filter(Boolean),
        mcpProviders: async () => {
            // The stored tool list is JSON (descriptions may hold anything): only the names come out, comma-separated.
            const rows = await servers.dify.sql(
                "select id, server_url_hash, authed, coalesce((select string_agg(t->>'name', ',' order by n) " +
                    "from json_array_elements(tools::json) with ordinality as e(t, n)), '') from tool_mcp_providers order by created_at",
            );
            const result: DifyMcpProviderState[] = [];
            for (const row of rows.split("\n").filter(Boolean)) {
                const [id, hash, authed, tools] = row.split("|");
                const detail = await (await console_()).get<{
                    name?: string;
                    server_identifier?: string;
                    authentication?: { client_id?: string; client_secret?: string } | null;
                    is_dynamic_registration?: boolean;
                }>(`/workspaces/current/tool-provider/mcp/tools/${id}`);
                result.push({
                    id,
                    name: detail.name ?? "",
                    serverIdentifier: detail.server_identifier ?? "",
                    serverUrlHash: hash,
                    authed: authed === "t",
                    toolNames: tools ? tools.split(",") : [],
                    maskedClientId: detail.authentication?.client_id ?? "",
                    maskedClientSecret: detail.authentication?.client_secret ?? "",
                    isDynamicRegistration: detail.is_dynamic_registration === true,
                });
            }
            return result;
        },
        plugins: async () => {
            const list = await (await console_()).get<{ plugins?: { plugin_id?: string }[] }>("/workspaces/current/plugin/list", { page: 1, page_size: 256 });
            return (list.plugins ?? []).map((plugin) => String(plugin.plugin_id));
        },
        tongyiCredentials: async () => {
            const dify = await console_();
            const providers = await dify.get<{ data?: { provider: string; custom_configuration?: { available_credentials?: { credential_id: string; credential_name: string }[] } }[] }>(
                "/workspaces/current/model-providers",
            );
            const available = providers.data?.find((entry) => entry.provider === TONGYI)?.custom_configuration?.available_credentials ?? [];
            const result: { id: string; name: string; shownKey: string }[] = [];
            for (const credential of available) {
                const shown = await dify.get<{ credentials?: Record<string, string> }>(`/workspaces/current/model-providers/${TONGYI}/credentials`, {
                    credential_id: credential.credential_id,
                });
                result.push({ id: credential.credential_id, name: credential.credential_name, shownKey: shown.credentials?.dashscope_api_key ?? "" });
            }
            return result;
        },
        defaultModel: async (type) => {
            const answer = await (await console_()).get<{ data?: { model?: string; provider?: { provider?: string } } | null }>("/workspaces/current/default-model", {
                model_type: type,
            });
            return answer.data ? { provider: String(answer.data.provider?.provider), model: String(answer.data.model) } : undefined;
        },
        agentApps: async () => {
            const dify = await console_();
            const list = await dify.get<{ data?: { id: string }[] }>("/apps", { page: 1, limit: 100 });
            const apps: DifyAppState[] = [];
            for (const { id } of list.data ?? []) {
                const app = await dify.get<{ id: string; name: string; mode: string; model_config?: { pre_prompt?: string; agent_mode?: unknown } | null }>(`/apps/${id}`);
                const agentMode = parseJson<{ tools?: { provider_type?: string; provider_id?: string; tool_name?: string }[] }>(app.model_config?.agent_mode) ?? {};
                apps.push({
                    id: app.id,
                    name: app.name,
                    mode: app.mode,
                    prePrompt: app.model_config?.pre_prompt ?? "",
                    mcpTools: (agentMode.tools ?? []).filter((tool) => tool.provider_type === "mcp").map((tool) => `${tool.provider_id}/${tool.tool_name}`),
                });
            }
            return apps;
        },
        deleteApp: async (id) => {
            await (await console_()).delete(`/apps/${id}`);
        },
        deleteMcpProvider: async (id) => {
            await (await console_()).delete("/workspaces/current/tool-provider/mcp", { provider_id: id });
        },
    };
}

// ------------------------------------------------------------------------------------------------------
// A person's steps: approving the MCP authorization, and running the smoke test against the stack.

export interface Approval {
    /** Where the consent sent the browser: Dify's callback with code and state. */
    callbackUrl: string;
    /** Dify's answer to the callback (a redirect to its console once it exchanged the code). */
    status: number;
    location: string;
}

/**
 * Approves `authorizationUrl` (the stack's mcpAuthorizationUrl) on the MCP server's consent page, then follows
 * the browser to Dify's callback, where Dify exchanges the code for tokens at the MCP server's token endpoint.
 */
export async function approveMcpAuthorization(servers: E2eServers, authorizationUrl: string): Promise<Approval> {
    const callbackUrl = await servers.mcp.approve(authorizationUrl);
    const answer = await fetch(callbackUrl, { redirect: "manual" });
    await answer.text();
    return { callbackUrl, status: answer.status, location: answer.headers.get("location") ?? "" };
}

export interface SmokeRun {
    code: number | null;
    stdout: string;
    stderr: string;
    ms: number;
}

/**
 * `node dist/scripts/smoke.js e2e --cwd <project>`, as `npm run smoke -- <stack>` runs it: the smoke reads
 * difyUrl, difyAdminEmail, difyAdminPassword and agentAppId from the stack's outputs with the CLI, then asks the
 * agent. Asynchronous: the servers it reaches live in this process.
 */
export function runSmoke(stack: E2eStack, timeoutMs = 300_000): Promise<SmokeRun> {
    const smokeJs = path.join(repoRoot, "dist", "scripts", "smoke.js");
    if (!fs.existsSync(smokeJs)) {
        throw new Error(`${smokeJs} is missing: run \`npm run build\` first`);
    }
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [smokeJs, E2E_STACK, "--cwd", stack.projectDir], { cwd: repoRoot, env: stack.backend.env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", reject);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, ms: Date.now() - started });
        });
    });
}
