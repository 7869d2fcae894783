// The real Docker Compose CLI, for tests that look at what Compose hands each container: the binary from
// scripts/compose-cli.sh (an installed `docker compose` plugin or `docker-compose`, else the one it builds from
// the Go module proxy into .cache/compose/bin). `docker compose config` renders a project without a Docker
// engine, so no daemon is needed.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";

const COMPOSE_SCRIPT = path.join(PROJECT_ROOT, "scripts", "compose-cli.sh");

/** A published port as `docker compose config --format json` renders it (the long syntax). */
export interface ComposePort {
    mode?: string;
    host_ip?: string;
    target: number;
    published?: string;
    protocol?: string;
}

export interface ComposeService {
    image?: string;
    profiles?: string[];
    /** Values are null for a variable listed without a value that the environment does not set. */
    environment?: Record<string, string | null>;
    ports?: ComposePort[];
    /** Mounts in the long syntax, sources made absolute. */
    volumes?: ComposeVolume[];
    network_mode?: string;
}

/** A mount as `docker compose config --format json` renders it. */
export interface ComposeVolume {
    type: string;
    source?: string;
    target: string;
    read_only?: boolean;
}

export interface ComposeProject {
    name?: string;
    services: Record<string, ComposeService>;
}

let cli: string | undefined;

/**
 * The path of a usable Compose CLI (run as the standalone `docker-compose`). Never builds: throws, naming how
 * to get one, when there is none; a build takes minutes, so CI runs scripts/compose-cli.sh before the tests.
 */
export function composeCli(): string {
    if (cli) {
        return cli;
    }
    const result = spawnSync("bash", [COMPOSE_SCRIPT, "--check"], { encoding: "utf8" });
    const found = result.stdout?.trim().split("\n").pop();
    if (result.status !== 0 || !found) {
        throw new Error(
            "Docker Compose (>= 2.24) is needed to render Dify's compose project and there is none: run " +
                `"bash scripts/compose-cli.sh" (it builds github.com/docker/compose/v5 from the Go module proxy into ` +
                ".cache/compose/bin, a few minutes on 2 cores; needs Go) or install Docker's docker-compose-plugin. " +
                `compose-cli.sh said: ${(result.stderr ?? String(result.error ?? "")).trim()}`,
        );
    }
    cli = found;
    return cli;
}

/**
 * `docker compose <args> config --format json <services>` run in `cwd`, as the bootstrap's `compose` function runs
 * Compose there: with services, the project as `up <services>` would start it (those and what they depend on).
 * Only a minimal environment reaches Compose, so nothing from the test's shell overrides the project's .env
 * (Compose lets the shell's variables win over .env, and cloud-init's shell exports none).
 */
export function renderCompose(cwd: string, args: readonly string[] = [], services: readonly string[] = []): ComposeProject {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "compose-home-"));
    try {
        const result = spawnSync(composeCli(), [...args, "config", "--format", "json", ...services], {
            cwd,
            encoding: "utf8",
            maxBuffer: 64 << 20,
            timeout: 60_000,
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, DOCKER_CONFIG: path.join(home, ".docker") },
        });
        if (result.status !== 0) {
            throw new Error(
                `docker compose ${[...args, "config", ...services].join(" ")} failed in ${cwd}: ${result.stderr || String(result.error ?? "")}`,
            );
        }
        return JSON.parse(result.stdout) as ComposeProject;
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
}

/** The options of `docker compose` that take a value (before the subcommand). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set([
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--profile",
    "--env-file",
    "--project-directory",
    "--ansi",
    "--parallel",
    "--progress",
]);

/** Splits the arguments of one `docker compose` call into its global options, subcommand and the rest. */
export function splitComposeArgs(args: readonly string[]): { globals: string[]; command: string | undefined; rest: string[] } {
    const globals: string[] = [];
    let i = 0;
    while (i < args.length && args[i].startsWith("-")) {
        globals.push(args[i]);
        if (GLOBAL_OPTIONS_WITH_VALUE.has(args[i]) && i + 1 < args.length) {
            globals.push(args[i + 1]);
            i++;
        }
        i++;
    }
    return { globals, command: args[i], rest: args.slice(i + 1) };
}
