// Dify's own Python environment (the packages its uv.lock pins), for running Dify's real API server and for
// checking our bodies and settings against Dify's own pydantic classes. Built once per uv.lock into .cache/
// by dify-python-env.sh; later calls cost one stat.
import { execFileSync, ExecFileSyncOptions } from "child_process";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";
import { difyReleaseDir } from "./dify-release";

export interface DifyPython {
    /** The interpreter of the environment. */
    python: string;
    /** A writable copy of Dify's api/ folder the environment was built from (run Dify from here). */
    apiDir: string;
    /** Whether this call built the environment (false: it was cached). */
    built: boolean;
    /** How long this call took. */
    seconds: number;
}

const ENV_SCRIPT = path.join(PROJECT_ROOT, "tests", "harness", "dify-python-env.sh");
const environments = new Map<string, DifyPython>();

/** Dify's Python environment for `tag` (its api/ from difyReleaseDir), building it when missing. */
export function ensureDifyPython(tag = "1.14.1"): DifyPython {
    const known = environments.get(tag);
    if (known) {
        return { ...known, built: false, seconds: 0 };
    }
    const started = Date.now();
    const output = execFileSync("bash", [ENV_SCRIPT, difyReleaseDir(tag, "api")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 20,
    });
    const [python, apiDir, how] = output.trim().split("\n");
    const environment = { python, apiDir, built: how === "built", seconds: (Date.now() - started) / 1000 };
    environments.set(tag, environment);
    return environment;
}

/**
 * Runs a Python script in Dify's environment, from its api/ folder (so `import configs`, `core...` work),
 * with `stdin` as the script's input. Returns stdout; throws with stderr's tail when it fails.
 */
export function runDifyPython(
    environment: DifyPython,
    script: string,
    options: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): string {
    const execOptions: ExecFileSyncOptions = {
        cwd: environment.apiDir,
        input: options.stdin ?? "",
        env: options.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 << 20,
        stdio: "pipe",
    };
    try {
        return execFileSync(environment.python, ["-c", script], execOptions).toString();
    } catch (err) {
        const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
        const tail = stderr.trim().split("\n").slice(-25).join("\n");
        throw new Error(`Python in Dify's environment failed: ${tail || (err instanceof Error ? err.message : String(err))}`);
    }
}
