import { spawn, SpawnOptions } from "child_process";

export interface RunResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/**
 * Runs a command to its end without blocking Node's event loop, for tests whose stand-in servers live in the test
 * process and must keep answering while the child runs.
 */
export function runAsync(command: string, args: string[], options: SpawnOptions): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (chunk) => (stdout += chunk));
        child.stderr?.on("data", (chunk) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}
