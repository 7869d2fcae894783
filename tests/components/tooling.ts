import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** Runs a validator from Debian's packages; a missing tool fails the test with how to install it. */
export function runTool(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    const result = spawnSync(command, args, { encoding: "utf8", ...options });
    if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`${command} is not installed: run "apt-get install -y cloud-init shellcheck" (.ci/run does it)`);
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs a shell snippet with the shipped bootstrap script's functions loaded (DIFY_BOOTSTRAP_SOURCE_ONLY=1), in a
 * clean environment. `stubs` become executables first on PATH, standing in for docker, git, systemctl and the
 * like; the script's own paths point into `workDir` through its DIFY_BOOTSTRAP_* overrides.
 */
export function runBootstrapFunctions(
    snippet: string,
    options: { workDir: string; script: string; env?: Record<string, string>; stubs?: Record<string, string>; args?: string[] },
) {
    const stubDir = path.join(options.workDir, "stub-bin");
    fs.mkdirSync(stubDir, { recursive: true });
    for (const [name, body] of Object.entries(options.stubs ?? {})) {
        fs.writeFileSync(path.join(stubDir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    const scriptFile = path.join(options.workDir, "bootstrap.sh");
    fs.writeFileSync(scriptFile, options.script);
    return runTool("bash", ["--noprofile", "--norc", "-c", `. "$0"; ${snippet}`, scriptFile, ...(options.args ?? [])], {
        env: {
            PATH: `${stubDir}:${process.env.PATH}`,
            DIFY_BOOTSTRAP_SOURCE_ONLY: "1",
            DIFY_BOOTSTRAP_DATA_MOUNT: path.join(options.workDir, "data"),
            DIFY_BOOTSTRAP_DIFY_DIR: path.join(options.workDir, "opt-dify"),
            DIFY_BOOTSTRAP_DISK_BY_ID: path.join(options.workDir, "by-id"),
            DIFY_BOOTSTRAP_DOCKER_ETC: path.join(options.workDir, "etc-docker"),
            ...options.env,
        },
    });
}
