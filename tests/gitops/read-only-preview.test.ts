// What the GitOps workflows promise about Pulumi itself, checked with the real CLI and engine on a small program
// (a dynamic resource with a secret input, a secret output and a multi-line property, plus program output):
//
// - the read-only role is enough: `pulumi preview` (preview.yml), `pulumi refresh --preview-only` and
//   `pulumi stack output` (drift.yml) work against a state backend the process cannot write, while `pulumi up`
//   cannot (so the check is real), and they leave the state byte for byte unchanged;
// - `refresh --preview-only --expect-no-changes` fails, with the message drift.yml looks for, when a resource
//   changed outside Pulumi;
// - what the workflows publish (scripts/preview-summary.sh over stdout) keeps the plan and drops secrets and
//   program output, which `--diff` sends to stderr (the job log) anyway.
//
// The backend is a throwaway `file://` folder. Read-only is enforced by the OS: as root the CLI runs as `nobody`
// (setpriv) on a folder only root may write; otherwise the folder is made read-only for the duration.
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalBackend, LocalBackend, runPulumi, writeJavaScriptProject } from "../../scripts/pulumi-local-backend";

const root = path.resolve(__dirname, "..", "..");
const STACK = "ci";
const PASSPHRASE = "gitops-test-passphrase-5e1c";
const ADMIN_PASSWORD = "Gitops-Admin-Passw0rd-91b7";
const API_TOKEN = "api-token-plain-value-4d2a";
// The provider derives it at run time, so it appears nowhere in the program text.
const CLIENT_SECRET = Buffer.from("app:client-secret", "utf8").toString("hex");
const PROGRAM_MARKER = "PROGRAM-OUTPUT-MARKER";

const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const provider = {
    async create(inputs) {
        return { id: "id-" + inputs.name, outs: { ...inputs, clientSecret: Buffer.from(inputs.name + ":client-secret").toString("hex") } };
    },
    async read(id, props) {
        // Drift stands in for a change made in the console: the provider reports another description.
        const drifted = process.env.GITOPS_TEST_DRIFT ? { description: "changed-outside-pulumi" } : {};
        return { id, props: { ...props, ...drifted } };
    },
    async diff(id, olds, news) {
        const keys = ["description", "password", "apiToken", "userData", "tags"];
        return { changes: keys.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },
    async update(id, olds, news) {
        return { outs: { ...news, clientSecret: olds.clientSecret } };
    },
};
class App extends pulumi.dynamic.Resource {
    constructor(name, args, opts) {
        super(provider, name, { clientSecret: undefined, ...args }, { ...opts, additionalSecretOutputs: ["clientSecret"] });
    }
}
const config = new pulumi.Config();
const app = new App("app", {
    name: "app",
    description: config.require("description"),
    password: config.requireSecret("adminPassword"),
    apiToken: config.get("apiToken") ?? "none",
    userData: config.get("userData") ?? "#!/bin/bash\\necho one\\necho two\\n",
    tags: { environment: config.get("environment") ?? "dev" },
});
console.log("${PROGRAM_MARKER} " + (config.get("apiToken") ?? ""));
exports.clientSecret = app.clientSecret;
exports.adminPassword = config.requireSecret("adminPassword");
`;

const POLICY_PACK = `"use strict";
const { PolicyPack } = require("@pulumi/policy");
new PolicyPack("gitops-test", {
    policies: [{
        name: "no-prod-tag-in-test",
        description: "Test pack: flags a prod tag.",
        enforcementLevel: "advisory",
        validateResource: (args, reportViolation) => {
            if (args.props.tags && args.props.tags.environment === "prod") {
                reportViolation("the tags say prod");
            }
        },
    }],
});
`;

let backend: LocalBackend;
let programDir: string;
let packDir: string;
let stateDir: string;
let readOnlyHome: string;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function pulumi(...args: string[]) {
    return runPulumi(backend, programDir, args);
}

/** Every file under the backend folder with its SHA-256 (a file written and removed again, like a lock, leaves no trace here: the OS permission check catches those). */
function stateTree(): Record<string, string> {
    const tree: Record<string, string> = {};
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full);
            else tree[path.relative(stateDir, full)] = crypto.createHash("sha256").update(fs.readFileSync(full)).digest("hex");
        }
    };
    walk(stateDir);
    return tree;
}

function setWritable(dir: string, writable: boolean) {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) setWritable(full, writable);
        else fs.chmodSync(full, writable ? 0o644 : 0o444);
    }
    fs.chmodSync(dir, writable ? 0o755 : 0o555);
}

/** Runs the CLI unable to write the state backend (see the header). */
function pulumiReadOnly(args: string[], env: Record<string, string> = {}) {
    const runEnv: NodeJS.ProcessEnv = { ...backend.env, HOME: readOnlyHome, PULUMI_HOME: readOnlyHome, ...env };
    // As in the workflows: PULUMI_SKIP_CONFIRMATIONS would make refresh --preview-only refuse to run ("--yes and
    // --preview-only cannot be used together").
    delete runEnv.PULUMI_SKIP_CONFIRMATIONS;
    const command = isRoot
        ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", backend.cli.binary, "--non-interactive", ...args]] as const
        : [backend.cli.binary, ["--non-interactive", ...args]] as const;
    if (!isRoot) setWritable(stateDir, false);
    try {
        const result = spawnSync(command[0], [...command[1]], { cwd: programDir, env: runEnv, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        if (result.error) throw result.error;
        return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    } finally {
        if (!isRoot) setWritable(stateDir, true);
    }
}

function summarize(text: string): string {
    const result = spawnSync("bash", [path.join(root, "scripts", "preview-summary.sh")], {
        input: text,
        encoding: "utf8",
        env: { PATH: process.env.PATH, PULUMI_CONFIG_PASSPHRASE: PASSPHRASE },
    });
    expect(result.status, result.stderr).toBe(0);
    return result.stdout;
}

beforeAll(() => {
    if (isRoot && spawnSync("setpriv", ["--version"]).status !== 0) {
        throw new Error("running as root: setpriv (util-linux) is needed to run the CLI as nobody on a read-only backend");
    }
    if (!fs.existsSync(path.join(root, "policy", "node_modules", "@pulumi", "policy"))) {
        throw new Error("policy/node_modules is missing: run `npm ci --prefix policy`");
    }
    backend = createLocalBackend({ passphrase: PASSPHRASE });
    // `nobody` must be able to read the program, the pack and the state, and to write only its own home.
    fs.chmodSync(backend.dir, 0o755);
    stateDir = path.join(backend.dir, "state");
    readOnlyHome = path.join(backend.dir, "home-read-only");
    fs.mkdirSync(readOnlyHome, { mode: 0o777 });
    fs.chmodSync(readOnlyHome, 0o777);

    programDir = path.join(backend.dir, "program");
    writeJavaScriptProject(programDir, "gitops-read-only", PROGRAM);

    packDir = path.join(backend.dir, "policy-pack");
    fs.mkdirSync(packDir);
    fs.writeFileSync(path.join(packDir, "PulumiPolicy.yaml"), "runtime: nodejs\ndescription: GitOps test pack\n");
    fs.writeFileSync(path.join(packDir, "package.json"), '{"name":"gitops-test-pack","version":"0.0.1","main":"index.js"}\n');
    fs.writeFileSync(path.join(packDir, "index.js"), POLICY_PACK);
    fs.symlinkSync(path.join(root, "policy", "node_modules"), path.join(packDir, "node_modules"));

    const init = pulumi("stack", "init", STACK, "--secrets-provider", "passphrase");
    expect(init.status, init.stderr).toBe(0);
    expect(pulumi("config", "set", "description", "first").status).toBe(0);
    expect(pulumi("config", "set", "--secret", "adminPassword", ADMIN_PASSWORD).status).toBe(0);
    const up = pulumi("up", "--yes", "--skip-preview", "--color", "never");
    expect(up.status, up.stdout + up.stderr).toBe(0);

    // The change a pull request would make.
    for (const [key, value] of [
        ["description", "second"],
        ["apiToken", API_TOKEN],
        ["environment", "prod"],
        ["userData", "#!/bin/bash\necho one\necho three\n"],
    ]) {
        expect(pulumi("config", "set", key, value).status).toBe(0);
    }
}, 180_000);

afterAll(() => {
    if (backend) {
        setWritable(stateDir, true);
        backend.cleanup();
    }
});

describe("the read-only RAM role is enough for previews and drift checks", () => {
    let preview: { status: number; stdout: string; stderr: string };
    let previewSummary = "";

    it("pulumi preview --diff with the policy pack works without write access and writes nothing", () => {
        const before = stateTree();
        preview = pulumiReadOnly(["preview", "--stack", STACK, "--diff", "--color", "never", "--suppress-outputs", "--policy-pack", packDir]);
        expect(preview.status, preview.stdout + preview.stderr).toBe(0);
        expect(preview.stdout).toContain("(update)");
        expect(stateTree()).toEqual(before);
    }, 120_000);

    it("keeps program output out of stdout (it goes to stderr, i.e. only the job log)", () => {
        expect(preview.stdout).not.toContain(PROGRAM_MARKER);
        expect(preview.stderr).toContain(PROGRAM_MARKER);
    });

    it("publishes a summary with the plan, the policy violation and the counts, and no secret or program output", () => {
        previewSummary = summarize(preview.stdout);
        expect(previewSummary).toMatch(/^Previewing update \(ci\):$/m);
        expect(previewSummary).toMatch(/~ pulumi-nodejs:dynamic:Resource: \(update\)/);
        expect(previewSummary).toMatch(/~ description *: "first" => "second"/);
        expect(previewSummary).toMatch(/password *: \[secret\]/);
        expect(previewSummary).toMatch(/apiToken *: \[redacted\]/);
        expect(previewSummary).toMatch(/\[advisory\] +no-prod-tag-in-test/);
        expect(previewSummary).toContain("the tags say prod");
        expect(previewSummary).toMatch(/- echo two/);
        expect(previewSummary).toMatch(/^Resources:$/m);
        expect(previewSummary).toMatch(/~ 1 to update/);
        for (const secret of [PASSPHRASE, ADMIN_PASSWORD, API_TOKEN, CLIENT_SECRET, PROGRAM_MARKER]) {
            expect(previewSummary).not.toContain(secret);
        }
    });

    it("pulumi refresh --preview-only --expect-no-changes passes without write access when nothing drifted", () => {
        const before = stateTree();
        const refresh = pulumiReadOnly(["refresh", "--preview-only", "--expect-no-changes", "--stack", STACK, "--diff", "--color", "never", "--suppress-outputs"]);
        expect(refresh.status, refresh.stdout + refresh.stderr).toBe(0);
        expect(stateTree()).toEqual(before);
    }, 120_000);

    it("and fails with the message drift.yml looks for when a resource changed outside Pulumi", () => {
        const before = stateTree();
        const refresh = pulumiReadOnly(
            ["refresh", "--preview-only", "--expect-no-changes", "--stack", STACK, "--diff", "--color", "never", "--suppress-outputs"],
            { GITOPS_TEST_DRIFT: "1" },
        );
        expect(refresh.status).not.toBe(0);
        expect(refresh.stderr).toContain("no changes were expected"); // drift.yml: grep -q "no changes were expected"
        expect(stateTree()).toEqual(before);
        const summary = summarize(refresh.stdout);
        expect(summary).toMatch(/^Previewing refresh \(ci\):$/m);
        expect(summary).toMatch(/~ description *: "first" => "changed-outside-pulumi"/);
        expect(summary).toMatch(/clientSecret *: \[secret\]/);
        for (const secret of [PASSPHRASE, ADMIN_PASSWORD, CLIENT_SECRET]) {
            expect(summary).not.toContain(secret);
        }
    }, 120_000);

    it("the smoke test's read of the stack outputs works without write access", () => {
        // What scripts/smoke.ts runs (in memory; the workflows never print it).
        const outputs = pulumiReadOnly(["stack", "output", "--json", "--show-secrets", "--stack", STACK]);
        expect(outputs.status, outputs.stderr).toBe(0);
        expect(JSON.parse(outputs.stdout).adminPassword).toBe(ADMIN_PASSWORD);
    }, 120_000);

    it("while pulumi up is refused on the same read-only backend (the check above is real)", () => {
        const before = stateTree();
        const up = pulumiReadOnly(["up", "--yes", "--skip-preview", "--stack", STACK, "--color", "never"]);
        expect(up.status).not.toBe(0);
        expect(up.stdout + up.stderr).toMatch(/\.pulumi\/locks\/.*permission denied/);
        expect(stateTree()).toEqual(before);
    }, 120_000);
});
