// Smoke test of a deployed stack: asks the Dify agent app a question that needs the Alibaba Cloud OpenAPI MCP
// server, prints the tool calls and the answer, and fails when no MCP tool was called or the stream reports
// an error.
//
//   npm run smoke -- <stack> [--url URL] [--email EMAIL] [--app-id ID] [--query TEXT] [--cwd DIR]
//
// Values come from flags, then the environment (DIFY_URL, DIFY_ADMIN_EMAIL, DIFY_ADMIN_PASSWORD,
// DIFY_AGENT_APP_ID), then the stack's outputs (`pulumi stack output --json --show-secrets --stack <stack>`):
// difyUrl, difyAdminEmail, difyAdminPassword (secret), agentAppId.
// Exit codes: 0 passed, 1 failed (no MCP tool call, error event, API error), 2 usage or configuration error.
import { execFileSync } from "child_process";
import { connectToDify, DifyStreamEvent } from "../dynamic-providers/dify-client";

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
    observation: string;
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
    const onEvent = (event: DifyStreamEvent) => {
        switch (event.event) {
            case "agent_thought": {
                const tool = String(event.tool ?? "");
                if (tool === "") {
                    return;
                }
                const key = `${String(event.id ?? "")}:${tool}`;
                const observation = String(event.observation ?? "");
                const known = byThought.get(key);
                if (known) {
                    for (const call of known) {
                        if (observation && !call.observation) {
                            call.observation = observation;
                            log(`  ← ${call.tool}: ${shorten(observation)}`);
                        }
                    }
                    return;
                }
                // Several tools in one thought come as "a;b".
                const calls = tool.split(";").filter((name) => name !== "").map((name) => ({ tool: name, input: String(event.tool_input ?? ""), observation }));
                byThought.set(key, calls);
                for (const call of calls) {
                    result.toolCalls.push(call);
                    log(`  → tool call: ${call.tool} ${shorten(call.input)}`);
                    if (observation) {
                        log(`  ← ${call.tool}: ${shorten(observation)}`);
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
    if (result.streamError) {
        result.reason = `the stream reported an error: ${result.streamError}`;
    } else if (mcpCalls.length === 0) {
        result.reason =
            result.toolCalls.length === 0
                ? "the agent answered without calling an MCP tool"
                : `the agent called ${result.toolCalls.map((c) => c.tool).join(", ")}, none of them an MCP tool of the app`;
    } else {
        result.passed = true;
    }
    log(result.passed ? `PASS: ${mcpCalls.length} MCP tool call(s)` : `FAIL: ${result.reason}`);
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
                throw new Error(`${flag} needs a value`);
            }
            (parsed as unknown as Record<string, string>)[key] = value;
        } else if (arg.startsWith("-")) {
            throw new Error(`unknown option ${arg}`);
        } else if (parsed.stack === undefined) {
            parsed.stack = arg;
        } else {
            throw new Error(`unexpected argument ${arg}`);
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
            throw new Error("the pulumi CLI is not on PATH; pass --url, --email, --app-id and DIFY_ADMIN_PASSWORD instead");
        }
        throw new Error(`pulumi stack output --stack ${stack} failed: ${shorten(String(failure.stderr ?? err), 500)}`);
    }
    try {
        return JSON.parse(text) as Record<string, unknown>;
    } catch {
        throw new Error(`pulumi stack output --stack ${stack} did not print JSON`);
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
            console.error(`missing ${missing.join(", ")} and no stack given to read them from\n${USAGE}`);
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
            console.error(`stack ${args.stack} has no output ${still.join(", ")}; has \`pulumi up\` finished?`);
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
