// The official Alibaba Cloud Python SDKs (alibabacloud-ims20190815, alibabacloud-openapiexplorer20241130 and
// their pinned dependencies, alibaba-sdk-requirements.txt), for checking the fake Alibaba API server against
// what the SDKs really send. Built once per requirements file into .cache/alibaba-sdk-python/ by
// alibaba-sdk-python-env.sh (uv, from PyPI); later calls cost one stat. Asynchronous throughout: the fake server
// runs in the test's own process and must keep answering while Python waits for it.
import { execFile } from "child_process";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";

export interface AlibabaSdkPython {
    /** The interpreter of the environment. */
    python: string;
    /** Whether this call built the environment (false: it was cached). */
    built: boolean;
    /** How long this call took. */
    seconds: number;
}

const ENV_SCRIPT = path.join(PROJECT_ROOT, "tests", "harness", "alibaba-sdk-python-env.sh");

function run(
    file: string,
    args: string[],
    options: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ stdout: string; stderr: string; error: Error | null }> {
    return new Promise((resolve) => {
        const child = execFile(file, args, { env: options.env, timeout: options.timeoutMs, maxBuffer: 16 << 20, encoding: "utf8" }, (error, stdout, stderr) =>
            resolve({ stdout, stderr, error }),
        );
        child.stdin?.end(options.stdin ?? "");
    });
}

function tail(text: string, lines = 25): string {
    return text.trim().split("\n").slice(-lines).join("\n");
}

/** The SDKs' environment, building it when missing. Throws, saying why, when it cannot be built. */
export async function ensureAlibabaSdkPython(): Promise<AlibabaSdkPython> {
    const started = Date.now();
    const { stdout, stderr, error } = await run("bash", [ENV_SCRIPT], { env: process.env, timeoutMs: 600_000 });
    if (error) {
        throw new Error(
            `could not create the official Alibaba Cloud SDKs' Python environment (${ENV_SCRIPT}; it needs Python 3.12 and PyPI): ` +
                `${tail(stderr) || error.message}`,
        );
    }
    const [python, how] = stdout.trim().split("\n");
    return { python, built: how === "built", seconds: (Date.now() - started) / 1000 };
}

/**
 * Runs a Python file with the SDKs' interpreter, `stdin` as its input, in a bare environment (no proxy
 * variables, no Alibaba credentials, ECS metadata lookups off). Returns stdout; throws with stderr's tail.
 */
export async function runAlibabaSdkPython(environment: AlibabaSdkPython, script: string, stdin: string, timeoutMs = 60_000): Promise<string> {
    const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        ALIBABA_CLOUD_ECS_METADATA_DISABLED: "true",
        NO_PROXY: "127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE: "1",
    };
    const { stdout, stderr, error } = await run(environment.python, [script], { stdin, env, timeoutMs });
    if (error) {
        throw new Error(`${path.basename(script)} failed: ${tail(stderr) || error.message}`);
    }
    return stdout;
}
