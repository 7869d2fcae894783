// Runs the real Pulumi engine against a throwaway local state: a `file://` backend and a passphrase secrets
// provider in a temp folder, the CLI from scripts/pulumi-cli.sh, and nothing that reaches for the network.
// Used by the end-to-end tests; also handy for trying the program without a cloud backend.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "./project-root";

/** The repository root. */
export const repoRoot = PROJECT_ROOT;

/** Where scripts/pulumi-cli.sh builds the CLI when the machine has none. */
export const builtCliRoot = path.join(repoRoot, ".cache", "pulumi");

export interface PulumiCli {
    /** Absolute path of the `pulumi` binary. */
    readonly binary: string;
    /** Folder to put first on PATH: it also holds the language host and the dynamic-provider host. */
    readonly binDir: string;
    /** `pulumi version` output, e.g. "v3.274.1". */
    readonly version: string;
}

function which(command: string, searchPath: string | undefined): string | undefined {
    for (const dir of (searchPath ?? "").split(path.delimiter)) {
        const candidate = path.join(dir, command);
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            return candidate;
        } catch {
            // not here
        }
    }
    return undefined;
}

/**
 * Finds the Pulumi CLI the way scripts/env.sh does: the one built into .cache/pulumi/bin, else a `pulumi` on PATH.
 * Throws with the command that provides it when there is none.
 */
export function findPulumiCli(env: NodeJS.ProcessEnv = process.env): PulumiCli {
    const built = path.join(builtCliRoot, "bin", "pulumi");
    const binary = fs.existsSync(built) ? built : which("pulumi", env.PATH);
    if (binary === undefined) {
        throw new Error(
            "No Pulumi CLI: run `bash scripts/pulumi-cli.sh` (it builds the CLI and the Node.js language host from " +
            "the Go module proxy into .cache/pulumi/bin; about 5 minutes on 2 cores) or install Pulumi.",
        );
    }
    const version = execFileSync(binary, ["version"], {
        encoding: "utf8",
        env: { ...env, PULUMI_SKIP_UPDATE_CHECK: "true" },
    }).trim();
    return { binary, binDir: path.dirname(binary), version };
}

export interface LocalBackend {
    /** Temp folder holding `state/` (the backend) and `home/` (PULUMI_HOME). */
    readonly dir: string;
    /** `file://…` URL of the backend. */
    readonly url: string;
    /** Environment for running `pulumi` (or the Automation API) against this backend. */
    readonly env: NodeJS.ProcessEnv;
    readonly cli: PulumiCli;
    /** Removes the temp folder. */
    cleanup(): void;
}

export interface LocalBackendOptions {
    /** Passphrase of the stack's secrets provider. */
    passphrase?: string;
    /** Parent folder for the temp folder (default: the OS temp folder). */
    parentDir?: string;
    /** Extra variables, e.g. endpoints of local test servers. */
    env?: NodeJS.ProcessEnv;
}

// Variables that would point the CLI at a cloud backend, another home, or real cloud credentials.
const SCRUBBED = [
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_BACKEND_URL",
    "PULUMI_HOME",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "PULUMI_CONFIG_PASSPHRASE",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALICLOUD_ACCESS_KEY",
    "ALICLOUD_SECRET_KEY",
    "ALICLOUD_SECURITY_TOKEN",
];

/** Creates a throwaway file backend and the environment that uses it. */
export function createLocalBackend(options: LocalBackendOptions = {}): LocalBackend {
    const cli = findPulumiCli();
    const dir = fs.mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), "pulumi-local-"));
    const stateDir = path.join(dir, "state");
    const homeDir = path.join(dir, "home");
    fs.mkdirSync(stateDir);
    fs.mkdirSync(homeDir);
    const url = `file://${stateDir}`;

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of SCRUBBED) {
        delete env[name];
    }
    Object.assign(env, {
        PATH: `${cli.binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        PULUMI_BACKEND_URL: url,
        PULUMI_HOME: homeDir,
        PULUMI_CONFIG_PASSPHRASE: options.passphrase ?? "local-test-passphrase",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        PULUMI_NON_INTERACTIVE: "true",
        // Without this the Alibaba credential chain probes the ECS metadata address.
        ALIBABA_CLOUD_ECS_METADATA_DISABLED: "true",
        NO_COLOR: "1",
        ...options.env,
    });

    return {
        dir,
        url,
        env,
        cli,
        cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
}

export interface PulumiRun {
    readonly status: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs `pulumi <args>` in `cwd` against the backend; never throws on a non-zero exit. */
export function runPulumi(backend: LocalBackend, cwd: string, args: readonly string[]): PulumiRun {
    const result = spawnSync(backend.cli.binary, ["--non-interactive", ...args], {
        cwd,
        env: backend.env,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
    });
    if (result.error) {
        throw result.error;
    }
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Like `runPulumi`, without blocking the event loop: for tests whose local servers (in the same process) must keep
 * answering while the engine runs. `env` adds variables to the backend's.
 */
export function runPulumiAsync(backend: LocalBackend, cwd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<PulumiRun> {
    return new Promise((resolve, reject) => {
        const child = spawn(backend.cli.binary, ["--non-interactive", ...args], { cwd, env: { ...backend.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        child.on("error", reject);
        child.on("close", (code) =>
            resolve({ status: code ?? -1, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") }),
        );
    });
}

/**
 * A plain-JavaScript Pulumi project in `dir` (created) whose program is `program`, using the repository's
 * node_modules: the engine runs it without compiling TypeScript.
 */
export function writeJavaScriptProject(dir: string, name: string, program: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`);
    fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify({ name, main: "index.js" })}\n`);
    fs.writeFileSync(path.join(dir, "index.js"), program);
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
}
