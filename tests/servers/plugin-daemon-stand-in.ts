// A narrow stand-in for Dify's plugin daemon (the Go service langgenius/dify-plugin-daemon, which cannot be built
// here) and for the plugin marketplace, so that Dify's real API server (1.14.1, tests/harness/real-dify.ts) can run
// our model-provider flow and an agent chat on 127.0.0.1 only.
//
// The server is tests/servers/plugin_daemon_stand_in.py, run in Dify's own Python environment so that every body
// it answers is first parsed with Dify's own pydantic classes (`PluginDaemonBasicResponse[T]`,
// `MarketplacePluginDeclaration`, ...) exactly as Dify's daemon client does; an answer that does not parse is not
// sent (HTTP 500, a stderr line, and `invalid` on the recorded call). It serves:
//   - plugin management: list, .difypkg upload (decoded from the zip, daemon checksum), install by identifiers
//     with a task (running, then success or a configured failure), task fetch/list/delete, manifest, decode,
//     uninstall, installation batch/missing, model provider listing, empty tool/agent/datasource/trigger listings;
//   - model runtime for langgenius/tongyi/tongyi: model schema, provider/model credential validation (a key that
//     does not start with "sk-" or contains "invalid" is refused with the daemon's PluginInvokeError/
//     CredentialsValidateFailedError), scripted LLM streaming (one tool call, then text quoting the tool result),
//     token counting, text embeddings;
//   - the marketplace routes Dify calls (plugins/batch, plugins/download, stats, dist manifest).
// Every /plugin/... route requires X-Api-Key like the daemon (HTTP 401 with PluginDaemonUnauthorizedError).
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";
import * as crypto from "crypto";
import { DifyPython } from "../harness/dify-python";

const SERVER_SCRIPT = path.join(PROJECT_ROOT, "tests", "servers", "plugin_daemon_stand_in.py");

/** How the stand-in's qwen-plus answers `dispatch/llm/invoke`. Decided per request, from the request alone:
 *  1. a `tool` message after the last user message → text: `answerPrefix` + that tool result (verbatim);
 *  2. else, mode "tool-then-text" and the request offers tools → ONE call to `toolName` (when offered) or the
 *     first tool offered, with `toolArguments`;
 *  3. else (no tools, or mode "text") → `text` (Dify's conversation-title prompt gets a JSON title instead). */
export interface LlmScript {
    /** Default "tool-then-text"; "text" never calls a tool. */
    mode?: "tool-then-text" | "text";
    /** The tool to call when the request offers it (default: the first tool of the request). */
    toolName?: string;
    /** Default `{"RegionId": "cn-hangzhou"}`. */
    toolArguments?: Record<string, unknown>;
    /** Default "Here is what the tool returned: ". */
    answerPrefix?: string;
    /** The answer without a tool result. Default "Hello from the stand-in qwen-plus.". */
    text?: string;
}

export interface PluginDaemonStandInOptions {
    /** The daemon's server key (Dify's PLUGIN_DAEMON_KEY). Default: random. */
    apiKey?: string;
    llmScript?: LlmScript;
    /** Install tasks created from now on fail with this message (as the plugin's status message). */
    installFailure?: string | null;
    /** How many fetches of a new install task answer "running" before it finishes. Default 1. */
    installRunningPolls?: number;
    /** Whether the marketplace lists (and serves) langgenius/tongyi. Default true. */
    marketplaceListsTongyi?: boolean;
    /** Limit for the server to start (it imports Dify's modules). Default 120 s. */
    startTimeoutMs?: number;
}

/** What the LLM stand-in answered for one `dispatch/llm/invoke`. */
export interface RecordedLlmAnswer {
    model: string;
    /** Names of the tools the request offered. */
    tools?: string[];
    stream?: boolean;
    answered: "tool_call" | "text" | "title" | "error";
    tool_name?: string;
    tool_arguments?: Record<string, unknown>;
    /** The tool result the answer quotes. */
    tool_result?: string;
    text?: string;
    error?: string;
}

export interface RecordedDaemonCall {
    method: string;
    /** The request path, e.g. /plugin/<tenant>/management/list. */
    path: string;
    /** The route template matched, e.g. /plugin/<tenant_id>/management/list; null when no route matched. */
    route: string | null;
    query: Record<string, string>;
    /** JSON body (multipart: form fields, files as {filename, size}). */
    body?: unknown;
    status: number;
    at: string;
    tenant_id?: string;
    /** The X-Plugin-ID header of dispatch calls. */
    plugin_id?: string;
    /** True for calls to the marketplace stand-in. */
    marketplace?: boolean;
    /** True when no route of the stand-in matched (a daemon route our flows need but the stand-in lacks). */
    unhandled?: boolean;
    /** Why the body the stand-in built failed Dify's own validation (it then answered HTTP 500). */
    invalid?: string;
    llm?: RecordedLlmAnswer;
    credentials_valid?: boolean;
    task_id?: string;
    unique_identifier?: string;
    uninstalled?: string;
}

export interface PluginDaemonStandIn {
    /** The daemon's base URL (Dify's PLUGIN_DAEMON_URL), http://127.0.0.1:<port>. */
    url: string;
    /** The daemon's server key (Dify's PLUGIN_DAEMON_KEY). */
    apiKey: string;
    /** The marketplace's base URL (Dify's MARKETPLACE_API_URL). */
    marketplaceUrl: string;
    /** A .difypkg of langgenius/tongyi (the marketplace's package; for `pluginPackagePath`). */
    packagePath: string;
    /** The unique identifier of that package (what the marketplace lists as latest). */
    uniqueIdentifier: string;
    /** The environment Dify's API server needs to use this stand-in. */
    difyEnv: Record<string, string>;
    /** Every call to the daemon and the marketplace so far, in order. */
    calls(): Promise<RecordedDaemonCall[]>;
    /** Forgets the calls recorded so far. */
    clearCalls(): Promise<void>;
    setLlmScript(script: LlmScript): Promise<void>;
    configure(options: Pick<PluginDaemonStandInOptions, "llmScript" | "installFailure" | "installRunningPolls" | "marketplaceListsTongyi">): Promise<void>;
    /** The server's stderr so far (validation failures and unhandled routes are logged there). */
    log(): string;
    close(): Promise<void>;
}

function configBody(options: Partial<PluginDaemonStandInOptions>): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    if (options.llmScript !== undefined) {
        const s = options.llmScript;
        body.llm_script = {
            ...(s.mode !== undefined ? { mode: s.mode } : {}),
            ...(s.toolName !== undefined ? { tool_name: s.toolName } : {}),
            ...(s.toolArguments !== undefined ? { tool_arguments: s.toolArguments } : {}),
            ...(s.answerPrefix !== undefined ? { answer_prefix: s.answerPrefix } : {}),
            ...(s.text !== undefined ? { text: s.text } : {}),
        };
    }
    if (options.installFailure !== undefined) {
        body.install_failure = options.installFailure;
    }
    if (options.installRunningPolls !== undefined) {
        body.install_running_polls = options.installRunningPolls;
    }
    if (options.marketplaceListsTongyi !== undefined) {
        body.marketplace_lists_tongyi = options.marketplaceListsTongyi;
    }
    return body;
}

interface ReadyLine {
    daemon_port: number;
    marketplace_port: number;
    package_path: string;
    unique_identifier: string;
}

function waitForReady(child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<ReadyLine> {
    return new Promise((resolve, reject) => {
        let stdout = "";
        const fail = (why: string) => {
            clearTimeout(timer);
            reject(new Error(`plugin daemon stand-in did not start: ${why}\n${stderr().split("\n").slice(-30).join("\n")}`));
        };
        const timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
        child.stdout!.on("data", (data: Buffer) => {
            stdout += data.toString();
            const newline = stdout.indexOf("\n");
            if (newline >= 0) {
                clearTimeout(timer);
                try {
                    resolve(JSON.parse(stdout.slice(0, newline)) as ReadyLine);
                } catch {
                    fail(`unexpected output ${JSON.stringify(stdout.slice(0, 200))}`);
                }
            }
        });
        child.once("exit", (code, signal) => fail(`exited (${code ?? signal})`));
        child.once("error", (err) => fail(err.message));
    });
}

/** Starts the stand-in with Dify's Python (ensureDifyPython). Listens on 127.0.0.1 only. */
export async function startPluginDaemonStandIn(python: DifyPython, options: PluginDaemonStandInOptions = {}): Promise<PluginDaemonStandIn> {
    const apiKey = options.apiKey ?? `stand-in-${crypto.randomBytes(12).toString("hex")}`;
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "plugin-daemon-stand-in-"));
    let stderr = "";
    const child = spawn(python.python, [SERVER_SCRIPT, "--api-key", apiKey, "--work-dir", workDir, "--config", JSON.stringify(configBody(options))], {
        cwd: python.apiDir,
        // Dify's api/ for `import core...`; no proxy variables, so nothing leaves 127.0.0.1.
        env: {
            PATH: process.env.PATH ?? "/usr/bin:/bin",
            HOME: process.env.HOME ?? "/root",
            PYTHONPATH: python.apiDir,
            PYTHONUNBUFFERED: "1",
            PYTHONDONTWRITEBYTECODE: "1",
        },
        stdio: ["pipe", "pipe", "pipe"],
    });
    child.stderr!.on("data", (data: Buffer) => {
        stderr = (stderr + data.toString()).slice(-200_000);
    });
    let ready: ReadyLine;
    try {
        ready = await waitForReady(child, options.startTimeoutMs ?? 120_000, () => stderr);
    } catch (err) {
        child.kill("SIGKILL");
        fs.rmSync(workDir, { recursive: true, force: true });
        throw err;
    }
    const url = `http://127.0.0.1:${ready.daemon_port}`;
    const marketplaceUrl = `http://127.0.0.1:${ready.marketplace_port}`;

    const control = async <T>(method: "GET" | "POST", route: string, body?: unknown): Promise<T> => {
        const response = await fetch(`${url}/__stand_in/${route}`, {
            method,
            headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (!response.ok) {
            throw new Error(`plugin daemon stand-in: ${route} answered ${response.status}: ${await response.text()}`);
        }
        return (await response.json()) as T;
    };

    let closed: Promise<void> | undefined;
    return {
        url,
        apiKey,
        marketplaceUrl,
        packagePath: ready.package_path,
        uniqueIdentifier: ready.unique_identifier,
        difyEnv: {
            PLUGIN_DAEMON_URL: url,
            PLUGIN_DAEMON_KEY: apiKey,
            MARKETPLACE_ENABLED: "true",
            MARKETPLACE_API_URL: marketplaceUrl,
        },
        calls: async () => (await control<{ calls: RecordedDaemonCall[] }>("GET", "calls")).calls,
        clearCalls: async () => {
            await control("POST", "configure", { clear_calls: true });
        },
        setLlmScript: async (script) => {
            await control("POST", "configure", configBody({ llmScript: script }));
        },
        configure: async (changes) => {
            await control("POST", "configure", configBody(changes));
        },
        log: () => stderr,
        close: () => {
            closed ??= new Promise<void>((resolve) => {
                const done = () => {
                    fs.rmSync(workDir, { recursive: true, force: true });
                    resolve();
                };
                if (child.exitCode !== null || child.signalCode !== null) {
                    done();
                    return;
                }
                const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
                child.once("exit", () => {
                    clearTimeout(kill);
                    done();
                });
                child.stdin!.end();
                child.kill("SIGTERM");
            });
            return closed;
        },
    };
}
