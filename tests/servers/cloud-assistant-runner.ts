// A Cloud Assistant "agent" for the fake Alibaba API server's instances (AlibabaApiServer.addInstance): runs
// each script with `bash -c`, in a clean environment (a standard PATH, nothing of the test process's own) plus
// the variables given, so that a test can point a script's paths at a scratch directory. stdout and stderr are
// captured together through one pipe, in the order they were written, as the real agent reports them in one Output.
import { spawn } from "child_process";
import * as os from "os";
import { CommandRunner } from "./alibaba-api-server";

export interface BashRunnerOptions {
    /** Added to the clean environment (and overriding its PATH if given); undefined values are left out. */
    env?: Record<string, string | undefined>;
    /** Working directory of the script; default the system's temporary directory (the real agent uses /root). */
    cwd?: string;
}

const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function cleanEnvironment(extra: Record<string, string | undefined> = {}): Record<string, string> {
    const env: Record<string, string> = { PATH: CLEAN_PATH };
    for (const [name, value] of Object.entries(extra)) {
        if (value !== undefined) env[name] = value;
    }
    return env;
}

/** A runner for `addInstance(id, { run: bashRunner({ env }) })`. On abort (timeout, server closing) it kills the
 *  script's whole process group and answers what the script wrote until then, with exit code 137. */
export function bashRunner(options: BashRunnerOptions = {}): CommandRunner {
    return (script, signal) =>
        new Promise((resolve, reject) => {
            // stderr onto stdout's pipe, so that the output keeps the order it was written in; the script itself
            // runs as `bash -c <script>` (the outer bash execs it).
            const child = spawn("bash", ["-c", 'exec bash -c "$1" 2>&1', "bash", script], {
                env: cleanEnvironment(options.env),
                cwd: options.cwd ?? os.tmpdir(),
                stdio: ["ignore", "pipe", "ignore"],
                // Its own process group, so that abort kills whatever the script started too.
                detached: true,
            });
            const chunks: Buffer[] = [];
            child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
            const kill = () => {
                if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
                    try {
                        process.kill(-child.pid, "SIGKILL");
                    } catch {
                        // Already gone.
                    }
                }
            };
            if (signal?.aborted) kill();
            else signal?.addEventListener("abort", kill, { once: true });
            child.on("error", (err) => {
                signal?.removeEventListener("abort", kill);
                reject(err);
            });
            child.on("close", (code, signalName) => {
                signal?.removeEventListener("abort", kill);
                const exitCode = code ?? 128 + (signalName ? (os.constants.signals[signalName] ?? 0) : 0);
                resolve({ output: Buffer.concat(chunks).toString("utf8"), exitCode });
            });
        });
}
