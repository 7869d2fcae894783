import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** The Debian package of each validator the tests run. */
const TOOL_PACKAGES: Record<string, string> = {
    "cloud-init": "cloud-init",
    shellcheck: "shellcheck",
    "systemd-analyze": "systemd",
    "systemd-escape": "systemd",
    "mkfs.ext4": "e2fsprogs",
    sfdisk: "fdisk",
    curl: "curl",
    gpg: "gnupg",
    mawk: "mawk",
    gawk: "gawk",
};

/** Fails (never skips) when a tool the tests need is missing, naming the package that has it. */
export function requireTool(command: string): void {
    const found = spawnSync("bash", ["-c", 'command -v "$1"', "bash", command], { encoding: "utf8", env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    if (found.status !== 0) {
        const pkg = TOOL_PACKAGES[command] ?? command;
        throw new Error(`${command} is not installed: run "apt-get install -y ${pkg}" (scripts/test.sh installs the validators)`);
    }
}

/** Runs a validator from Debian's packages; a missing tool fails the test with how to install it. */
export function runTool(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    const result = spawnSync(command, args, { encoding: "utf8", ...options });
    if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
        const pkg = TOOL_PACKAGES[command] ?? command;
        throw new Error(`${command} is not installed: run "apt-get install -y ${pkg}" (scripts/test.sh installs the validators)`);
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs a shell snippet with the shipped bootstrap script's functions loaded (DIFY_BOOTSTRAP_SOURCE_ONLY=1), in a
 * clean environment. `stubs` become executables first on PATH, standing in for docker, git, systemctl and the
 * like; the script's own paths point into `workDir` through its DIFY_BOOTSTRAP_* overrides.
 */
export function runBootstrapFunctions(snippet: string, options: BootstrapRunOptions) {
    const { args, env } = bootstrapInvocation(snippet, options);
    return runTool("bash", args, { env });
}

/**
 * runBootstrapFunctions without blocking Node's event loop, for stand-ins that talk to a server in this process
 * (the fake Dify console).
 */
export function runBootstrapFunctionsAsync(snippet: string, options: BootstrapRunOptions): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const { args, env } = bootstrapInvocation(snippet, options);
    return new Promise((resolve, reject) => {
        const child = spawn("bash", args, { env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}

export interface BootstrapRunOptions {
    workDir: string;
    script: string;
    env?: Record<string, string>;
    stubs?: Record<string, string>;
    args?: string[];
}

function bootstrapInvocation(snippet: string, options: BootstrapRunOptions): { args: string[]; env: NodeJS.ProcessEnv } {
    const stubDir = path.join(options.workDir, "stub-bin");
    fs.mkdirSync(stubDir, { recursive: true });
    for (const [name, body] of Object.entries(options.stubs ?? {})) {
        fs.writeFileSync(path.join(stubDir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    const scriptFile = path.join(options.workDir, "bootstrap.sh");
    fs.writeFileSync(scriptFile, options.script);
    return {
        args: ["--noprofile", "--norc", "-c", `. "$0"; ${snippet}`, scriptFile, ...(options.args ?? [])],
        env: {
            // The sbin directories hold blkid, wipefs and mkfs.ext4 (root's PATH has them, a user's may not).
            PATH: `${stubDir}:${process.env.PATH}:/usr/sbin:/sbin`,
            DIFY_BOOTSTRAP_SOURCE_ONLY: "1",
            DIFY_BOOTSTRAP_DATA_MOUNT: path.join(options.workDir, "data"),
            DIFY_BOOTSTRAP_DIFY_DIR: path.join(options.workDir, "opt-dify"),
            DIFY_BOOTSTRAP_DISK_BY_ID: path.join(options.workDir, "by-id"),
            DIFY_BOOTSTRAP_DOCKER_ETC: path.join(options.workDir, "etc-docker"),
            DIFY_BOOTSTRAP_SYSTEMD_DIR: path.join(options.workDir, "systemd"),
            DIFY_BOOTSTRAP_STATE_DIR: path.join(options.workDir, "state"),
            DIFY_BOOTSTRAP_LOG: path.join(options.workDir, "bootstrap.log"),
            DIFY_BOOTSTRAP_CONFIG: path.join(options.workDir, "bootstrap.env"),
            ...options.env,
        },
    };
}

/** KEY=value lines of a .env file (the first of a repeated key wins, as in Compose). */
export function parseEnv(text: string): Map<string, string> {
    const values = new Map<string, string>();
    for (const line of text.split("\n")) {
        const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
        if (match && !values.has(match[1])) {
            values.set(match[1], match[2]);
        }
    }
    return values;
}

/**
 * Runs cloud-init's own write_files module (Debian's cloud-init, /usr/bin/python3) on the user data's entries,
 * each path moved under `root`: the files an instance would get, decoded by cloud-init itself.
 */
export function writeFilesWithCloudInit(userDataFile: string, root: string) {
    const program = [
        "import os, sys, yaml",
        "from cloudinit.config.cc_write_files import write_files",
        "files = yaml.safe_load(open(sys.argv[1]))['write_files']",
        "for f in files: f['path'] = sys.argv[2] + f['path']; f.pop('owner', None)",
        "write_files('write_files', files, None)",
    ].join("\n");
    return runTool("/usr/bin/python3", ["-c", program, userDataFile, root]);
}
