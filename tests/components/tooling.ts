import { spawnSync } from "child_process";

/** Runs a validator from Debian's packages; a missing tool fails the test with how to install it. */
export function runTool(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    const result = spawnSync(command, args, { encoding: "utf8", ...options });
    if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`${command} is not installed: run "apt-get install -y cloud-init shellcheck" (.ci/run does it)`);
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
