// Smoke test of a deployed stack: asks the Dify agent app a question that needs the Alibaba Cloud OpenAPI MCP
// server, prints the tool calls and the answer, and fails when no MCP tool call succeeded or the stream
// reports an error. Dify reports a failed tool call as an ordinary observation (`tool invoke error: ...`),
// not as an error event, so observations are checked too.
//
//   npm run smoke -- <stack> [--url URL] [--email EMAIL] [--app-id ID] [--query TEXT] [--cwd DIR]
//
// Values come from flags, then the environment (DIFY_URL, DIFY_ADMIN_EMAIL, DIFY_ADMIN_PASSWORD,
// DIFY_AGENT_APP_ID), then the stack's outputs (`pulumi stack output --json --show-secrets --stack <stack>`):
// difyUrl, difyAdminEmail, difyAdminPassword (secret), agentAppId.
// Exit codes: 0 passed, 1 failed (no MCP tool call, error event, API error), 2 usage or configuration error.
import { execFileSync } from "child_process";
import { joinSentences } from "../dynamic-providers/dify/errors";
import { connectToDify, DifyStreamEvent } from "../dynamic-providers/dify/session";

export const DEFAULT_SMOKE_QUERY = "Query the number of ECS instances in the Hangzhou region";

/** Stack output names the smoke test reads (index.ts exports exactly these). */
export const SMOKE_STACK_OUTPUTS = {
    difyUrl: "difyUrl",
    email: "difyAdminEmail",
    password: "difyAdminPassword",
    appId: "agentAppId",
} as const;

export interface SmokeOptions {
    difyUrl: string;
    email: string;
    password: string;
    appId: string;
    query?: string;
    /** Where progress lines go (default: stdout). */
    log?: (line: string) => void;
    /** Limit for the whole streamed answer (default 300 s). */
    timeoutMs?: number;
}

export interface SmokeToolCall {
    tool: string;
    input: string;
    /** What the tool returned, as Dify reports it for this tool. */
    observation: string;
    /** Dify's text for a failed call ("tool invoke error: ..."), "" when the call worked. */
    error: string;
}

export interface SmokeResult {
    passed: boolean;
    /** Why it failed ("" when it passed). */
    reason: string;
    difyVersion: string;
    /** The MCP tools attached to the app. */
    mcpTools: string[];
    toolCalls: SmokeToolCall[];
    answer: string;
    /** The message of an `error` event, if one arrived. */
    streamError: string;
}

interface AgentToolConfig {
    provider_type?: string;
    tool_name?: string;
    enabled?: boolean;
}

function shorten(text: string, max = 400): string {
    const flat = text.replace(/\s+/g, " ").trim();
    return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/**
 * The texts Dify's ToolEngine.agent_invoke returns as the observation instead of raising when a tool call
 * fails (core/tools/tool_engine.py); an MCP tool that cannot connect or fails gives "tool invoke error: ...".
 * toolFailureOf also recognises an Alibaba Cloud API error body passed through as an observation.
 */
const TOOL_FAILURE_PREFIXES = [
    "tool invoke error:",
    "tool parameters validation error:",
    "there is not a tool named ",
    "Please check your tool provider credentials",
    "unknown error:",
];

/** The keys of an Alibaba Cloud OpenAPI error body ({"Code","Message","RequestId",...}); a successful answer has others. */
const ALIBABA_ERROR_KEYS = ["Code", "Message", "RequestId", "HostId", "Recommend", "AccessDeniedDetail"];

/**
 * Whether an observation is an Alibaba Cloud OpenAPI error body. The MCP server answers a failed API call with
 * an `isError: true` result carrying that body, but Dify ignores `isError` (core/tools/mcp_tool/tool.py
 * MCPTool._invoke) and hands the body to the agent as an ordinary observation.
 */
function isAlibabaErrorBody(text: string): boolean {
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        return false;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        return false;
    }
    const body = parsed as Record<string, unknown>;
    return (
        typeof body.Code === "string" &&
        typeof body.Message === "string" &&
        !/^(200|ok|success)$/i.test(body.Code) &&
        Object.keys(body).every((key) => ALIBABA_ERROR_KEYS.includes(key))
    );
}

export function toolFailureOf(observation: string): string {
    const text = observation.trim();
    return TOOL_FAILURE_PREFIXES.some((prefix) => text.startsWith(prefix)) || isAlibabaErrorBody(text) ? text : "";
}

/**
 * One observation per tool. The agent runners store a thought's observation as a JSON object keyed by tool
 * name (core/agent/fc_agent_runner.py, cot_agent_runner.py; base_agent_runner.save_agent_thought dumps it),
 * which the stream carries as a string.
 */
export function observationsByTool(observation: string, tools: string[]): Map<string, string> {
    const result = new Map<string, string>();
    let parsed: unknown;
    try {
        parsed = JSON.parse(observation);
    } catch {
        parsed = undefined;
    }
    for (const tool of tools) {
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && tool in (parsed as Record<string, unknown>)) {
            const value = (parsed as Record<string, unknown>)[tool];
            result.set(tool, typeof value === "string" ? value : JSON.stringify(value));
        } else {
            result.set(tool, observation);
        }
    }
    return result;
}

function agentTools(detail: unknown): AgentToolConfig[] {
    const config = (detail as { model_config?: { agent_mode?: unknown } | null }).model_config;
    let agentMode = config?.agent_mode;
    if (typeof agentMode === "string") {
        try {
            agentMode = JSON.parse(agentMode);
        } catch {
            agentMode = undefined;
        }
    }
    const tools = (agentMode as { tools?: AgentToolConfig[] } | undefined)?.tools ?? [];
    return tools.filter((tool) => tool.enabled !== false);
}

/** Runs the smoke conversation against the agent app through Dify's console debug route. */
export async function runSmokeTest(options: SmokeOptions): Promise<SmokeResult> {
    const log = options.log ?? ((line: string) => console.log(line));
    const query = options.query ?? DEFAULT_SMOKE_QUERY;
    const result: SmokeResult = { passed: false, reason: "", difyVersion: "", mcpTools: [], toolCalls: [], answer: "", streamError: "" };

    const session = await connectToDify({ url: options.difyUrl }, { email: options.email, password: options.password });
    result.difyVersion = session.version;
    log(`Dify ${session.version} at ${options.difyUrl}: logged in as ${options.email}`);

    const tools = agentTools(await session.get(`/apps/${options.appId}`));
    result.mcpTools = tools.filter((tool) => tool.provider_type === "mcp").map((tool) => String(tool.tool_name));
    if (result.mcpTools.length === 0) {
        result.reason =
            "the agent app has no MCP tools attached: authorize the MCP server in Dify (the authorizationUrl output), " +
            "then run `pulumi up` so the app picks up its tools";
        log(`FAIL: ${result.reason}`);
        return result;
    }
    log(`Agent app ${options.appId}: ${result.mcpTools.length} MCP tools attached (${shorten(result.mcpTools.join(", "), 200)})`);
    log(`Question: ${query}`);

    // Dify sends an agent_thought before and after the tool runs (same id): print each call once.
    const byThought = new Map<string, SmokeToolCall[]>();
    const observe = (call: SmokeToolCall, observation: string) => {
        call.observation = observation;
        call.error = toolFailureOf(observation);
        log(call.error ? `  ✗ ${call.tool} failed: ${shorten(call.error)}` : `  ← ${call.tool}: ${shorten(observation)}`);
    };
    const onEvent = (event: DifyStreamEvent) => {
        switch (event.event) {
            case "agent_thought": {
                const tool = String(event.tool ?? "");
                if (tool === "") {
                    return;
                }
                const key = `${String(event.id ?? "")}:${tool}`;
                const observation = String(event.observation ?? "");
                // Several tools in one thought come as "a;b".
                const names = tool.split(";").filter((name) => name !== "");
                const perTool = observationsByTool(observation, names);
                const known = byThought.get(key);
                if (known) {
                    for (const call of known) {
                        if (observation && !call.observation) {
                            observe(call, perTool.get(call.tool) ?? observation);
                        }
                    }
                    return;
                }
                const calls = names.map((name) => ({ tool: name, input: String(event.tool_input ?? ""), observation: "", error: "" }));
                byThought.set(key, calls);
                for (const call of calls) {
                    result.toolCalls.push(call);
                    log(`  → tool call: ${call.tool} ${shorten(call.input)}`);
                    if (observation) {
                        observe(call, perTool.get(call.tool) ?? observation);
                    }
                }
                return;
            }
            case "agent_message":
            case "message":
                result.answer += String(event.answer ?? "");
                return;
            case "error":
                result.streamError = String(event.message ?? event.code ?? "unknown error");
                return;
            default:
                return;
        }
    };
    await session.stream(
        `/apps/${options.appId}/chat-messages`,
        // model_config {} = the saved config; agent apps reject blocking mode, so always stream.
        { inputs: {}, query, model_config: {}, response_mode: "streaming" },
        onEvent,
        options.timeoutMs ?? 300_000,
    );
    log(`Answer: ${result.answer.trim() || "(empty)"}`);

    // Every attached tool is an MCP tool for this app; when other tools are attached, match MCP names.
    const onlyMcp = tools.every((tool) => tool.provider_type === "mcp");
    const mcpCalls = result.toolCalls.filter((call) => onlyMcp || result.mcpTools.includes(call.tool));
    const working = mcpCalls.filter((call) => call.error === "");
    if (result.streamError) {
        result.reason = `the stream reported an error: ${result.streamError}`;
    } else if (mcpCalls.length === 0) {
        result.reason =
            result.toolCalls.length === 0
                ? "the agent answered without calling an MCP tool"
                : `the agent called ${result.toolCalls.map((c) => c.tool).join(", ")}, none of them an MCP tool of the app`;
    } else if (working.length === 0) {
        // The agent may answer politely after its tools failed; Dify sends no error event for that.
        const errors = mcpCalls.map((call) => `${call.tool}: ${shorten(call.error, 300)}`);
        result.reason = `every MCP tool call failed (${errors.join("; ")})`;
    } else {
        result.passed = true;
    }
    const failedCalls = mcpCalls.length - working.length;
    log(
        result.passed
            ? `PASS: ${working.length} MCP tool call(s)${failedCalls > 0 ? ` (${failedCalls} more failed)` : ""}`
            : `FAIL: ${joinSentences(result.reason)}`,
    );
    return result;
}

// ---------------------------------------------------------------------------------------------------------
// Command line.

export interface SmokeCommandLine {
    stack?: string;
    url?: string;
    email?: string;
    appId?: string;
    query?: string;
    cwd?: string;
    help: boolean;
}

export function parseSmokeArgs(argv: string[]): SmokeCommandLine {
    const parsed: SmokeCommandLine = { help: false };
    const flags: Record<string, keyof SmokeCommandLine> = {
        "--url": "url",
        "--email": "email",
        "--app-id": "appId",
        "--query": "query",
        "--cwd": "cwd",
        "--stack": "stack",
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "-h" || arg === "--help") {
            parsed.help = true;
            continue;
        }
        const [flag, inline] = arg.includes("=") && arg.startsWith("--") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
        const key = flags[flag];
        if (key) {
            const value = inline ?? argv[++i];
            if (value === undefined) {
                throw new Error(joinSentences(`${flag} needs a value`));
            }
            (parsed as unknown as Record<string, string>)[key] = value;
        } else if (arg.startsWith("-")) {
            throw new Error(joinSentences(`unknown option ${arg}`));
        } else if (parsed.stack === undefined) {
            parsed.stack = arg;
        } else {
            throw new Error(joinSentences(`unexpected argument ${arg}`));
        }
    }
    return parsed;
}

const USAGE = `usage: npm run smoke -- <stack> [--url URL] [--email EMAIL] [--app-id ID] [--query TEXT] [--cwd DIR]
  Reads ${Object.values(SMOKE_STACK_OUTPUTS).join(", ")} from the stack's outputs; flags and the environment
  (DIFY_URL, DIFY_ADMIN_EMAIL, DIFY_ADMIN_PASSWORD, DIFY_AGENT_APP_ID) take precedence.`;

function readStackOutputs(stack: string, cwd?: string): Record<string, unknown> {
    let text: string;
    try {
        text = execFileSync("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", stack], {
            cwd,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
            maxBuffer: 16 * 1024 * 1024,
        });
    } catch (err) {
        const failure = err as { code?: string; stderr?: string };
        if (failure.code === "ENOENT") {
            throw new Error(joinSentences("the pulumi CLI is not on PATH; pass --url, --email, --app-id and DIFY_ADMIN_PASSWORD instead"));
        }
        throw new Error(joinSentences(`pulumi stack output --stack ${stack} failed: ${shorten(String(failure.stderr ?? err), 500)}`));
    }
    try {
        return JSON.parse(text) as Record<string, unknown>;
    } catch {
        throw new Error(joinSentences(`pulumi stack output --stack ${stack} did not print JSON`));
    }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
    let args: SmokeCommandLine;
    try {
        args = parseSmokeArgs(argv);
    } catch (err) {
        console.error(`${(err as Error).message}\n${USAGE}`);
        return 2;
    }
    if (args.help) {
        console.log(USAGE);
        return 0;
    }
    const values = {
        difyUrl: args.url ?? env.DIFY_URL,
        email: args.email ?? env.DIFY_ADMIN_EMAIL,
        password: env.DIFY_ADMIN_PASSWORD,
        appId: args.appId ?? env.DIFY_AGENT_APP_ID,
    };
    const missing = (Object.keys(values) as (keyof typeof values)[]).filter((key) => !values[key]);
    if (missing.length > 0) {
        if (!args.stack) {
            console.error(`${joinSentences(`missing ${missing.join(", ")} and no stack given to read them from`)}\n${USAGE}`);
            return 2;
        }
        let outputs: Record<string, unknown>;
        try {
            outputs = readStackOutputs(args.stack, args.cwd);
        } catch (err) {
            console.error((err as Error).message);
            return 2;
        }
        for (const key of missing) {
            const value = outputs[SMOKE_STACK_OUTPUTS[key]];
            if (typeof value === "string" && value !== "") {
                values[key] = value;
            }
        }
        const still = missing.filter((key) => !values[key]).map((key) => SMOKE_STACK_OUTPUTS[key]);
        if (still.length > 0) {
            console.error(joinSentences(`stack ${args.stack} has no output ${still.join(", ")}; run \`pulumi up\` to completion first`));
            return 2;
        }
    }
    try {
        const result = await runSmokeTest({
            difyUrl: values.difyUrl as string,
            email: values.email as string,
            password: values.password as string,
            appId: values.appId as string,
            query: args.query,
        });
        return result.passed ? 0 : 1;
    } catch (err) {
        console.error(`FAIL: ${(err as Error).message}`);
        return 1;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err: unknown) => {
            console.error(`FAIL: ${err instanceof Error ? err.message : String(err)}`);
            process.exit(1);
        },
    );
}
