import { spawn, spawnSync, ChildProcessWithoutNullStreams } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** The project root: the harness runs compiled providers from `dist/` and resolves packages from here. */
export const projectRoot = path.resolve(__dirname, "..", "..");

const RESPONSE_MARKER = "@@provider-host@@";

/** An error thrown by the provider inside the host process, carried back by name and message. */
export class HostedProviderError extends Error {
    constructor(name: string, message: string) {
        super(message);
        this.name = name;
    }
}

interface HostResponse {
    id: number;
    result?: unknown;
    error?: { name: string; message: string };
}

/**
 * A dynamic provider running the way the Pulumi engine runs it: serialized with
 * `pulumi.runtime.serializeFunction` from compiled CommonJS, then revived in a fresh Node process.
 */
export interface HostedProvider {
    /** Calls a provider method (check, diff, create, read, update, delete) in the host process. */
    call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
    /** The serialized closure text, as it would be stored in the stack state. */
    readonly serializedText: string;
    /** Everything the provider printed (stdout and stderr) so far. */
    output(): string;
    close(): Promise<void>;
}

export interface HostedProviderOptions {
    /** Path of the provider's module below `dist/`, without extension, e.g. "dynamic-providers/alibaba/ram-oauth-app". */
    module: string;
    /** Name of the exported provider object. */
    exportName: string;
    /** Extra environment for the host process (credentials, endpoints). Nothing else leaks in from the test. */
    env?: Record<string, string>;
}

function baseEnvironment(): Record<string, string> {
    const keep = ["PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT"];
    const env: Record<string, string> = {};
    for (const key of keep) {
        const value = process.env[key];
        if (value !== undefined) {
            env[key] = value;
        }
    }
    env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true";
    // Keep the developer's own ~/.aliyun profile out of the credential chain.
    env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = "true";
    return env;
}

/** Serializes the provider in one Node process and starts it in another. */
export async function startHostedProvider(options: HostedProviderOptions): Promise<HostedProvider> {
    const compiled = path.join(projectRoot, "dist", `${options.module}.js`);
    if (!fs.existsSync(compiled)) {
        throw new Error(`${compiled} is missing: run "npm run build" first (npm test does it).`);
    }
    const serialize = spawnSync(
        process.execPath,
        [path.join(__dirname, "serialize-provider.cjs"), compiled, options.exportName],
        { cwd: projectRoot, encoding: "utf8", env: baseEnvironment(), maxBuffer: 64 * 1024 * 1024 },
    );
    if (serialize.status !== 0) {
        throw new Error(`serializing ${options.module}.${options.exportName} failed:\n${serialize.stderr}`);
    }
    const serializedText = serialize.stdout;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "provider-host-"));
    const textFile = path.join(dir, "provider.js");
    fs.writeFileSync(textFile, serializedText);

    const child: ChildProcessWithoutNullStreams = spawn(
        process.execPath,
        [path.join(__dirname, "provider-host.cjs"), textFile],
        { cwd: projectRoot, env: { ...baseEnvironment(), HOME: dir, ...options.env } },
    );
    let printed = "";
    let pendingStdout = "";
    let nextId = 1;
    const waiting = new Map<number, (response: HostResponse) => void>();
    let exited = false;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
        pendingStdout += chunk;
        let newline = pendingStdout.indexOf("\n");
        while (newline >= 0) {
            const line = pendingStdout.slice(0, newline);
            pendingStdout = pendingStdout.slice(newline + 1);
            if (line.startsWith(RESPONSE_MARKER)) {
                const response = JSON.parse(line.slice(RESPONSE_MARKER.length)) as HostResponse;
                waiting.get(response.id)?.(response);
                waiting.delete(response.id);
            } else {
                printed += line + "\n";
            }
            newline = pendingStdout.indexOf("\n");
        }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
        printed += chunk;
    });
    child.on("exit", () => {
        exited = true;
        for (const resolve of waiting.values()) {
            resolve({ id: -1, error: { name: "HostExited", message: `provider host exited:\n${printed}` } });
        }
        waiting.clear();
    });

    return {
        serializedText,
        output: () => printed,
        call<T>(method: string, ...args: unknown[]): Promise<T> {
            if (exited) {
                return Promise.reject(new Error(`provider host has exited:\n${printed}`));
            }
            const id = nextId++;
            return new Promise<T>((resolve, reject) => {
                waiting.set(id, (response) => {
                    if (response.error) {
                        reject(new HostedProviderError(response.error.name, response.error.message));
                    } else {
                        resolve(response.result as T);
                    }
                });
                child.stdin.write(JSON.stringify({ id, method, args }) + "\n");
            });
        },
        close(): Promise<void> {
            return new Promise((resolve) => {
                if (exited) {
                    resolve();
                    return;
                }
                child.once("exit", () => resolve());
                child.stdin.end();
            });
        },
    };
}

/** What `check` answers, as the engine receives it. */
export interface EngineCheckResult<Inputs> {
    inputs: Inputs;
    failures: { property: string; reason: string }[];
}

/** What `diff` answers, as the engine receives it. */
export interface EngineDiffResult {
    changes?: boolean;
    replaces?: string[];
    deleteBeforeReplace?: boolean;
}

/** check then create, as the engine does for a new resource; the check must pass. */
export async function engineCreate<Raw, Inputs, Outputs>(
    provider: HostedProvider,
    raw: Raw,
): Promise<{ id: string; outs: Outputs; inputs: Inputs }> {
    const checked = await provider.call<EngineCheckResult<Inputs>>("check", {}, raw);
    if (checked.failures?.length) {
        throw new Error(`check failed: ${JSON.stringify(checked.failures)}`);
    }
    const created = await provider.call<{ id: string; outs: Outputs }>("create", checked.inputs);
    return { ...created, inputs: checked.inputs };
}

/** check then diff against the stored outputs, as the engine does on `preview`/`up`; the check must pass. */
export async function engineDiff<Raw, Inputs, Outputs>(
    provider: HostedProvider,
    id: string,
    olds: Outputs,
    oldInputs: Raw,
    raw: Raw,
): Promise<{ diff: EngineDiffResult; inputs: Inputs }> {
    const checked = await provider.call<EngineCheckResult<Inputs>>("check", oldInputs, raw);
    if (checked.failures?.length) {
        throw new Error(`check failed: ${JSON.stringify(checked.failures)}`);
    }
    const diff = await provider.call<EngineDiffResult>("diff", id, olds, checked.inputs);
    return { diff, inputs: checked.inputs };
}
