// What the end-to-end test (tests/e2e/lifecycle.test.ts) and the benchmark (scripts/bench-e2e.ts) share: the
// local Alibaba-like and Dify-like servers in this process, one stack of tests/e2e/program on a throwaway
// `file://` backend with a passphrase secrets provider, and the CLI steps with their engine summaries (--json)
// and the API calls the servers saw during each.
//
// The CLI is run asynchronously: the servers live in this process, and a blocking spawnSync would starve them.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { createLocalBackend, LocalBackend, repoRoot } from "../../scripts/pulumi-local-backend";
import { AlibabaApiServer, startAlibabaApiServer } from "../servers/alibaba-api-server";
import { DifyConsoleServer, startDifyConsoleServer } from "../servers/dify-console-server";

/** The program under test, in the repository (its Pulumi.yaml names the project). */
export const E2E_PROGRAM_DIR = path.join(repoRoot, "tests", "e2e", "program");
export const E2E_PROJECT = "dify-mcp-e2e";
export const E2E_STACK = "e2e";
/** The Dify release the local console server behaves like: the newest generation (cookies, base64 login, preset OAuth client). */
export const E2E_DIFY_VERSION = "1.14.1";

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
    dify: DifyConsoleServer;
    close(): Promise<void>;
}

export async function startE2eServers(): Promise<E2eServers> {
    const alibaba = await startAlibabaApiServer({ accessKeyId: E2E_SECRETS.accessKeyId, accessKeySecret: E2E_SECRETS.accessKeySecret });
    const dify = await startDifyConsoleServer({ version: E2E_DIFY_VERSION, pluginInstallPolls: 1 });
    return {
        alibaba,
        dify,
        close: async () => {
            await Promise.all([alibaba.close(), dify.close()]);
        },
    };
}

/** A position in both servers' call logs. */
export interface CallMark {
    alibaba: number;
    dify: number;
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
    reads: number;
    writes: number;
}

export function markCalls(servers: E2eServers): CallMark {
    return { alibaba: servers.alibaba.mark(), dify: servers.dify.calls.length };
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
        reads: 0,
        writes: 0,
    };
    for (const call of servers.dify.calls.slice(mark.dify)) {
        if (call.kind === "read") calls.difyReads++;
        else if (call.kind === "write") calls.difyWrites++;
        else calls.difyAuth++;
        calls.difyByRoute[call.route] = (calls.difyByRoute[call.route] ?? 0) + 1;
    }
    calls.reads = calls.alibabaReads + calls.difyReads;
    calls.writes = calls.alibabaWrites + calls.difyWrites;
    return calls;
}

/** The write calls by name, for assertion messages: "CreateApplication×1, POST /apps×1". */
export function describeWrites(servers: E2eServers, mark: CallMark): string {
    const names = [
        ...servers.alibaba.calls.slice(mark.alibaba).filter((call) => call.kind === "write").map((call) => call.action),
        ...servers.dify.calls.slice(mark.dify).filter((call) => call.kind === "write").map((call) => call.route),
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
    readiness: "DifyReadiness.dify-ready",
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
export interface E2eConfig {
    oauthAppName?: string;
    oauthAppType?: string;
    accessTokenValidity?: number;
    mcpServerName?: string;
    mcpServerDescription?: string;
    agentName?: string;
    agentPrompt?: string;
}

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

function runCli(backend: LocalBackend, cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(backend.cli.binary, ["--non-interactive", ...args], { cwd, env: { ...backend.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        child.on("error", reject);
        child.on("close", (code) =>
            resolve({ status: code ?? -1, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") }),
        );
    });
}

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
    const compiled = path.join(repoRoot, "dist", "dynamic-providers", "ram-oauth-app.js");
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
        const result = await runCli(backend, projectDir, args, env);
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
        await setConfig({ alibabaEndpoint: servers.alibaba.url, difyUrl: servers.dify.url, ...options.config });
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
