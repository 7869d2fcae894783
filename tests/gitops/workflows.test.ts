// The GitOps workflows: actionlint must pass, and what users and maintainers rely on is asserted on the parsed
// files, and, for every script a workflow runs (guards, checks, summaries, comment and issue scripts), by running
// that script itself: bash steps with stand-in `pulumi`/`npm` commands, github-script steps against a fake API.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../..");
const workflowsDir = path.join(root, ".github", "workflows");
const setupActionFile = path.join(root, ".github", "actions", "setup-pulumi", "action.yml");
const policiesDir = path.join(root, ".github", "ram-policies");

interface Step {
    id?: string;
    name?: string;
    uses?: string;
    run?: string;
    if?: string;
    with?: Record<string, string | number | boolean>;
    env?: Record<string, string>;
    "continue-on-error"?: boolean;
}
interface Job {
    name?: string;
    "runs-on"?: string;
    needs?: string | string[];
    if?: string;
    environment?: string;
    permissions?: Record<string, string>;
    concurrency?: { group: string; "cancel-in-progress"?: boolean };
    strategy?: { "fail-fast"?: boolean; matrix?: Record<string, unknown> };
    env?: Record<string, string>;
    outputs?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    name: string;
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    concurrency?: unknown;
    jobs: Record<string, Job>;
}

function readText(file: string): string {
    return fs.readFileSync(path.join(workflowsDir, file), "utf8");
}
function load(file: string): Workflow {
    return yaml.load(readText(file)) as Workflow;
}
const workflowFiles = fs.readdirSync(workflowsDir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml")).sort();
const setupAction = yaml.load(fs.readFileSync(setupActionFile, "utf8")) as { runs: { steps: Step[] } };

/** Every job of every workflow, as [file, job id, job]. */
function allJobs(): [string, string, Job][] {
    return workflowFiles.flatMap((file) => Object.entries(load(file).jobs).map(([id, job]) => [file, id, job] as [string, string, Job]));
}
/** The step with this id or name; fails the test when there is none. */
function step(job: Job, idOrName: string): Step {
    const found = job.steps.find((s) => s.id === idOrName || s.name === idOrName);
    if (!found) throw new Error(`no step ${idOrName}`);
    return found;
}
/** Jobs whose steps run the Pulumi CLI against a stack. */
function pulumiJobs(workflow: Workflow): [string, Job][] {
    return Object.entries(workflow.jobs).filter(([, job]) =>
        job.steps.some((s) => /\b(pulumi (preview|up|destroy|refresh)|npm run smoke)\b/.test(s.run ?? "")),
    );
}

function findActionlint(): string | undefined {
    const cached = path.join(root, ".cache", "bin", "actionlint");
    if (fs.existsSync(cached)) {
        return cached;
    }
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        const candidate = path.join(dir, "actionlint");
        if (fs.existsSync(candidate)) {
            return candidate;
        }
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Running a step's bash script the way the runner does (`bash -e`), in a scratch workspace with the repository's
// scripts/, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, and stand-in commands first on PATH.

const scratch: string[] = [];
afterAll(() => {
    for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

interface StepRun {
    status: number | null;
    stdout: string;
    stderr: string;
    outputs: Record<string, string>;
    summary: string;
    workspace: string;
}

function runStep(
    script: string,
    env: Record<string, string>,
    options: { files?: Record<string, string>; stubs?: Record<string, string> } = {},
): StepRun {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-step-"));
    scratch.push(workspace);
    fs.symlinkSync(path.join(root, "scripts"), path.join(workspace, "scripts"));
    for (const [name, text] of Object.entries(options.files ?? {})) {
        fs.mkdirSync(path.dirname(path.join(workspace, name)), { recursive: true });
        fs.writeFileSync(path.join(workspace, name), text);
    }
    const bin = path.join(workspace, ".stub-bin");
    fs.mkdirSync(bin);
    for (const [name, text] of Object.entries(options.stubs ?? {})) {
        fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    }
    const outputFile = path.join(workspace, ".github-output");
    const summaryFile = path.join(workspace, ".github-step-summary");
    fs.writeFileSync(outputFile, "");
    fs.writeFileSync(summaryFile, "");
    const result = spawnSync("bash", ["--noprofile", "--norc", "-e", "-c", script], {
        cwd: workspace,
        encoding: "utf8",
        env: {
            PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`,
            HOME: workspace,
            GITHUB_OUTPUT: outputFile,
            GITHUB_STEP_SUMMARY: summaryFile,
            GITHUB_REF: "refs/heads/main",
            ...env,
        },
    });
    const outputs: Record<string, string> = {};
    for (const line of fs.readFileSync(outputFile, "utf8").split("\n")) {
        const at = line.indexOf("=");
        if (at > 0) outputs[line.slice(0, at)] = line.slice(at + 1);
    }
    return {
        status: result.status,
        stdout: result.stdout,
        stderr: result.stderr,
        outputs,
        summary: fs.readFileSync(summaryFile, "utf8"),
        workspace,
    };
}

// ---------------------------------------------------------------------------------------------------------
// Running a github-script step's script against a fake GitHub API.

interface Comment {
    id: number;
    body: string;
    user: { type: string };
}
interface Issue {
    number: number;
    title: string;
    body: string;
    pull_request?: unknown;
    comments: string[];
}

function fakeGitHub(state: { comments?: Comment[]; issues?: Issue[]; jobs?: { name: string; conclusion: string | null }[] }) {
    const comments = state.comments ?? [];
    const issues = state.issues ?? [];
    let nextId = Math.max(99, ...comments.map((c) => c.id)) + 1;
    let nextIssue = Math.max(0, ...issues.map((i) => i.number)) + 1;
    const calls: string[] = [];
    const rest = {
        issues: {
            listComments: async () => ({ data: comments }),
            createComment: async (args: { issue_number: number; body: string }) => {
                calls.push(`comment ${args.issue_number}`);
                const issue = issues.find((i) => i.number === args.issue_number);
                if (issue) issue.comments.push(args.body);
                else comments.push({ id: nextId++, body: args.body, user: { type: "Bot" } });
            },
            updateComment: async (args: { comment_id: number; body: string }) => {
                calls.push(`update ${args.comment_id}`);
                const comment = comments.find((c) => c.id === args.comment_id);
                if (comment) comment.body = args.body;
            },
            listForRepo: async () => ({ data: issues }),
            create: async (args: { title: string; body: string }) => {
                calls.push("create issue");
                issues.push({ number: nextIssue++, title: args.title, body: args.body, comments: [] });
            },
        },
        actions: {
            listJobsForWorkflowRun: async () => ({ data: state.jobs ?? [] }),
        },
    };
    const github = {
        rest,
        paginate: async (method: (args: unknown) => Promise<{ data: unknown[] }>, args: unknown) => [...(await method(args)).data],
    };
    return { github, calls, comments, issues };
}

const context = {
    repo: { owner: "acme", repo: "dify-mcp-stack" },
    runId: 42,
    serverUrl: "https://github.example",
    payload: { pull_request: { number: 7, head: { sha: "abc1234" } } },
};

async function runGitHubScript(script: string, github: unknown, env: Record<string, string>, files: Record<string, string> = {}) {
    const fakeRequire = (name: string) => {
        if (name !== "fs") throw new Error(`unexpected require(${name})`);
        return {
            readFileSync: (file: string) => {
                if (!(file in files)) {
                    throw Object.assign(new Error(`ENOENT: ${file}`), { code: "ENOENT" });
                }
                return files[file];
            },
        };
    };
    const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (
        ...args: string[]
    ) => (...values: unknown[]) => Promise<void>;
    await new AsyncFunction("require", "github", "context", "process", script)(fakeRequire, github, context, { env });
}

// ---------------------------------------------------------------------------------------------------------

describe("GitHub workflows", () => {
    it("are preview, deploy, destroy and the scheduled drift check", () => {
        expect(workflowFiles).toEqual(["deploy.yml", "destroy.yml", "drift.yml", "preview.yml"]);
    });

    it("pass actionlint", () => {
        const actionlint = findActionlint();
        if (actionlint === undefined) {
            throw new Error(
                "actionlint is not installed: run `bash scripts/install-actionlint.sh` (builds actionlint v1.7.12 " +
                "from the Go module proxy into .cache/bin; about 15 seconds)",
            );
        }
        const files = workflowFiles.map((f) => path.join(".github", "workflows", f));
        const result = spawnSync(actionlint, ["-no-color", "-oneline", ...files], { cwd: root, encoding: "utf8" });
        expect(result.stdout + result.stderr, "actionlint findings").toBe("");
        expect(result.status).toBe(0);
    });

    it("pin every action to a full commit SHA with its release in a comment, the same SHA everywhere", () => {
        const files = [...workflowFiles.map((f) => path.join(workflowsDir, f)), setupActionFile];
        const shaByAction = new Map<string, string>();
        let remote = 0;
        for (const file of files) {
            for (const line of fs.readFileSync(file, "utf8").split("\n")) {
                const match = /^\s*(?:-\s+)?uses:\s*(.+?)\s*$/.exec(line);
                if (!match) continue;
                const ref = match[1];
                if (ref.startsWith("./")) continue;
                remote++;
                expect(ref, `${path.basename(file)}: ${line.trim()}`).toMatch(/^[\w.-]+\/[\w.\/-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
                const [action, sha] = ref.split(" ")[0].split("@");
                expect(shaByAction.get(action) ?? sha, `${action} pinned to one SHA`).toBe(sha);
                shaByAction.set(action, sha);
            }
        }
        expect(remote).toBeGreaterThan(10);
        expect([...shaByAction.keys()].sort()).toEqual([
            "actions/checkout",
            "actions/download-artifact",
            "actions/github-script",
            "actions/setup-node",
            "actions/upload-artifact",
            "aliyun/configure-aliyun-credentials-action",
            "pulumi/actions",
        ]);
    });

    it("never run on pull_request_target or workflow_run (pull-request code with the base's secrets)", () => {
        for (const file of workflowFiles) {
            const triggers = Object.keys(load(file).on);
            expect(triggers, file).not.toContain("pull_request_target");
            expect(triggers, file).not.toContain("workflow_run");
            expect(readText(file), file).not.toMatch(/pull_request_target|workflow_run/);
        }
    });

    it("grant nothing by default and each job only what it uses", () => {
        for (const file of workflowFiles) {
            expect(load(file).permissions, `${file} default permissions`).toEqual({});
        }
        const allowed: Record<string, Record<string, string>> = {
            "preview.yml/stacks": { contents: "read" },
            "preview.yml/preview": { contents: "read", "id-token": "write" },
            "preview.yml/comment": { "pull-requests": "write" },
            "deploy.yml/stacks": { contents: "read" },
            "deploy.yml/deploy": { contents: "read", "id-token": "write" },
            "destroy.yml/check": { contents: "read" },
            "destroy.yml/destroy": { contents: "read", "id-token": "write" },
            "drift.yml/stacks": { contents: "read" },
            "drift.yml/check": { contents: "read", "id-token": "write" },
            "drift.yml/report": { actions: "read", "issues": "write" },
        };
        const seen: string[] = [];
        for (const [file, id, job] of allJobs()) {
            seen.push(`${file}/${id}`);
            expect(job.permissions, `${file}/${id} permissions`).toEqual(allowed[`${file}/${id}`]);
            // OIDC only where the job exchanges the token for a RAM role.
            const usesOidc = job.steps.some((s) => s.uses === "./.github/actions/setup-pulumi");
            expect(job.permissions?.["id-token"] === "write", `${file}/${id} id-token`).toBe(usesOidc);
        }
        expect(seen.sort()).toEqual(Object.keys(allowed).sort());
        // Only the comment job may write to pull requests.
        const prWriters = allJobs().filter(([, , job]) => job.permissions?.["pull-requests"] !== undefined).map(([f, id]) => `${f}/${id}`);
        expect(prWriters).toEqual(["preview.yml/comment"]);
    });

    it("bind secrets only through GitHub environments: each stack's own passphrase and the backend URL", () => {
        const used = new Set<string>();
        for (const [file, id, job] of allJobs()) {
            const text = JSON.stringify(job);
            const names = [...text.matchAll(/secrets\.([A-Za-z0-9_]+)/g)].map((m) => m[1]);
            names.forEach((name) => used.add(name));
            if (names.length > 0) {
                // Environment secrets shadow repository secrets of the same name; a job without an environment
                // would get a repository-wide secret.
                expect(job.environment, `${file}/${id} binds secrets without an environment`).toBeDefined();
                expect(job.env?.PULUMI_CONFIG_PASSPHRASE, `${file}/${id}`).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
                expect(job.env?.PULUMI_BACKEND_URL, `${file}/${id}`).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
            }
        }
        expect([...used].sort()).toEqual(["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"]);
        expect(fs.readFileSync(setupActionFile, "utf8")).not.toMatch(/secrets\./);
        const environments = Object.fromEntries(
            allJobs().filter(([, , job]) => job.environment !== undefined).map(([file, id, job]) => [`${file}/${id}`, job.environment]),
        );
        expect(environments).toEqual({
            "preview.yml/preview": "preview-${{ matrix.stack }}",
            "deploy.yml/deploy": "${{ matrix.stack }}",
            "destroy.yml/destroy": "${{ inputs.stack }}",
            "drift.yml/check": "drift-${{ matrix.stack }}",
        });
    });

    it("give every job that runs pulumi its stack's environment, an OIDC token and the right RAM role", () => {
        const roles: Record<string, string> = {
            "preview.yml": "ALIBABA_CLOUD_PREVIEW_ROLE_ARN",
            "drift.yml": "ALIBABA_CLOUD_PREVIEW_ROLE_ARN",
            "deploy.yml": "ALIBABA_CLOUD_DEPLOY_ROLE_ARN",
            "destroy.yml": "ALIBABA_CLOUD_DEPLOY_ROLE_ARN",
        };
        for (const file of workflowFiles) {
            const jobs = pulumiJobs(load(file));
            expect(jobs.length, `${file} runs pulumi`).toBe(1);
            for (const [name, job] of jobs) {
                expect(job.environment, `${file}/${name}`).toBeDefined();
                expect(job.permissions?.["id-token"], `${file}/${name} id-token`).toBe("write");
                const setup = job.steps.find((s) => s.uses === "./.github/actions/setup-pulumi");
                expect(setup?.with?.["role-to-assume"], `${file}/${name} role`).toBe(`\${{ vars.${roles[file]} }}`);
                expect(setup?.with?.["oidc-provider-arn"]).toBe("${{ vars.ALIBABA_CLOUD_OIDC_PROVIDER_ARN }}");
            }
        }
    });

    it("never record, print or upload --json or debug streams, nor show secrets", () => {
        // `--json` event streams and `--debug` output carry the Node SDK's debug events, which hold secret
        // outputs (e.g. an OAuth client secret) in plain text; an event log holds the same events.
        for (const file of [...workflowFiles.map((f) => path.join(workflowsDir, f)), setupActionFile]) {
            const text = fs.readFileSync(file, "utf8");
            const name = path.basename(file);
            expect(text, name).not.toMatch(/--json\b/);
            expect(text, name).not.toMatch(/\bpulumi\b[^\n]*\s-j\b/);
            expect(text, name).not.toMatch(/--debug\b|--verbose\b|--logtostderr\b|--logflow\b|--event-log\b|--show-secrets\b/);
            expect(text, name).not.toMatch(/\bpulumi\b[^\n]*\s-v(=|\s|\d)/);
            expect(text, name).not.toMatch(/PULUMI_ENABLE_STREAMING_JSON_PREVIEW|PULUMI_DEBUG|TF_LOG|PULUMI_DEBUG_COMMANDS/);
        }
    });

    it("upload nothing but the filtered plan summary: no state, no logs, no raw output", () => {
        const uploads: Step[] = [];
        for (const [file, id, job] of allJobs()) {
            for (const s of job.steps) {
                expect(s.uses ?? "", `${file}/${id}`).not.toMatch(/^actions\/cache/);
                if (s.uses?.startsWith("actions/upload-artifact@")) uploads.push(s);
            }
        }
        expect(uploads).toHaveLength(1);
        for (const upload of uploads) {
            const paths = String(upload.with?.path).trim().split("\n").map((p) => p.trim());
            expect(paths).toEqual(["preview-summary/summary.txt", "preview-summary/exit-code"]);
            for (const p of paths) {
                expect(p).not.toMatch(/\.pulumi|state|\.log$|stderr|\.err$|plan\.txt|up\.txt|refresh|\.json|\*/);
            }
            expect(Number(upload.with?.["retention-days"])).toBeLessThanOrEqual(1);
        }
    });

    it("never interpolate expressions into run scripts (no script injection through stack names or inputs)", () => {
        for (const [file, id, job] of allJobs()) {
            for (const s of job.steps) {
                expect(s.run ?? "", `${file}/${id}/${s.name ?? s.id ?? s.run}`).not.toContain("${{");
            }
        }
        for (const s of setupAction.runs.steps) {
            expect(s.run ?? "", s.name).not.toContain("${{");
        }
    });

    it("check out without leaving the token in .git/config", () => {
        for (const [file, id, job] of allJobs()) {
            for (const s of job.steps.filter((s) => s.uses?.startsWith("actions/checkout@"))) {
                expect(s.with?.["persist-credentials"], `${file}/${id}`).toBe(false);
            }
        }
    });

    it("set up the CLI at the SDK's version and exchange the OIDC token for STS credentials, refusing empty ones", () => {
        const steps = setupAction.runs.steps;
        const cli = steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(cli?.with?.["pulumi-version"]).toBe("${{ steps.versions.outputs.pulumi }}");
        expect(cli?.with?.command).toBeUndefined(); // install only
        expect(steps.find((s) => s.id === "versions")?.run).toContain('packages["node_modules/@pulumi/pulumi"].version');
        const oidc = steps.find((s) => s.uses?.startsWith("aliyun/configure-aliyun-credentials-action@"));
        expect(oidc?.with).toEqual({
            "role-to-assume": "${{ inputs.role-to-assume }}",
            "oidc-provider-arn": "${{ inputs.oidc-provider-arn }}",
        });
        expect(steps.some((s) => (s.run ?? "").includes("npm ci --prefix policy"))).toBe(true);

        const handOff = steps.find((s) => s.name === "Hand the temporary credentials to the providers and the state backend");
        const empty = runStep(handOff?.run ?? "", { ACCESS_KEY_ID: "", ACCESS_KEY_SECRET: "", SECURITY_TOKEN: "", GITHUB_ENV: "/dev/null" });
        expect(empty.status).toBe(1);
        expect(empty.stdout).toContain("returned no STS credentials");
        const env = path.join(os.tmpdir(), `gitops-env-${process.pid}`);
        scratch.push(env);
        const ok = runStep(handOff?.run ?? "", { ACCESS_KEY_ID: "id", ACCESS_KEY_SECRET: "key", SECURITY_TOKEN: "tok", GITHUB_ENV: env });
        expect(ok.status).toBe(0);
        expect(fs.readFileSync(env, "utf8")).toContain("AWS_SESSION_TOKEN=tok");
    });

    it("refuse, with an error, to run the main-only jobs from any other ref", () => {
        const guards = allJobs()
            .filter(([file]) => file !== "preview.yml")
            .flatMap(([file, id, job]) => job.steps.filter((s) => s.name === "Refuse any ref but main").map((s) => [`${file}/${id}`, s] as const));
        expect(guards.map(([where]) => where).sort()).toEqual(["deploy.yml/deploy", "destroy.yml/check", "destroy.yml/destroy", "drift.yml/check", "drift.yml/stacks"]);
        for (const [where, guard] of guards) {
            expect(runStep(guard.run ?? "", { GITHUB_REF: "refs/heads/main" }).status, where).toBe(0);
            const other = runStep(guard.run ?? "", { GITHUB_REF: "refs/heads/feature-x" });
            expect(other.status, where).toBe(1);
            expect(other.stdout, where).toMatch(/::error::.*only from refs\/heads\/main, not refs\/heads\/feature-x/);
        }
    });
});

describe("preview.yml", () => {
    const workflow = load("preview.yml");
    const job = workflow.jobs.preview;
    const comment = workflow.jobs.comment;
    const forkCheck = "github.event.pull_request.head.repo.full_name == github.repository";

    it("runs on pull requests to main, one job per discovered stack in its own preview-<stack> environment", () => {
        expect(workflow.on).toEqual({ pull_request: { branches: ["main"] } });
        expect(workflow.jobs.stacks.steps.some((s) => s.run === 'echo "stacks=$(node dist/scripts/pulumi-stacks.js)" >> "$GITHUB_OUTPUT"')).toBe(true);
        expect(job.strategy?.matrix?.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        expect(job.strategy?.["fail-fast"]).toBe(false);
        expect(job.environment).toBe("preview-${{ matrix.stack }}");
    });

    it("gives pull requests from forks no secrets: the secret-bearing and the commenting jobs skip them", () => {
        expect(job.if).toContain(forkCheck);
        expect(comment.if).toContain(forkCheck);
        const notice = step(workflow.jobs.stacks, "Say why a fork gets no preview");
        expect(notice.if).toBe("github.event.pull_request.head.repo.full_name != github.repository");
        const run = runStep(notice.run ?? "", {});
        expect(run.stdout).toContain("::notice::Pull requests from forks are not previewed");
        expect(run.summary).toContain("get no secrets");
    });

    it("previews with the diff and the guardrail policy pack, keeping only stdout (the plan) for the summary", () => {
        const preview = step(job, "preview");
        expect(preview.run).toMatch(/pulumi preview --stack "\$STACK" --diff .*--suppress-outputs --policy-pack policy \| tee plan\.txt/);
        expect(preview.run).not.toMatch(/2>&1/);
        const fail = job.steps[job.steps.length - 1];
        expect(fail.if).toBe("steps.preview.outputs.exit-code != '0'");
        const failed = runStep(fail.run ?? "", { STACK: "prod", EXIT_CODE: "1" });
        expect(failed.status).toBe(1);
        expect(failed.stdout).toContain("::error::pulumi preview of stack prod failed (exit code 1)");
    });

    it("hands the comment job a summary already filtered of secrets and program output", () => {
        const summaryStep = step(job, "Plan summary for the pull request");
        const plan = [
            "Previewing update (prod):",
            "  pulumi:pulumi:Stack: (same)",
            "    [urn=urn:pulumi:prod::dify-mcp-stack::pulumi:pulumi:Stack::dify-mcp-stack-prod]",
            "program log: passphrase is prod-passphrase-123",
            "    ~ alicloud:ecs/instance:Instance: (update)",
            "        [id=i-0123]",
            "      ~ instanceName: \"old\" => \"new\"",
            "        password    : \"hunter2-plain\"",
            "Resources:",
            "    ~ 1 to update",
            "    9 unchanged",
            "",
        ].join("\n");
        const run = runStep(summaryStep.run ?? "", { STACK: "prod", EXIT_CODE: "0", PULUMI_CONFIG_PASSPHRASE: "prod-passphrase-123" }, { files: { "plan.txt": plan } });
        expect(run.status).toBe(0);
        const summary = fs.readFileSync(path.join(run.workspace, "preview-summary", "summary.txt"), "utf8");
        expect(fs.readFileSync(path.join(run.workspace, "preview-summary", "exit-code"), "utf8").trim()).toBe("0");
        expect(summary).toContain('~ instanceName: "old" => "new"');
        expect(summary).toContain("password    : [redacted]");
        expect(summary).toContain("~ 1 to update");
        for (const text of [summary, run.summary]) {
            expect(text).not.toContain("prod-passphrase-123");
            expect(text).not.toContain("hunter2-plain");
            expect(text).not.toContain("program log");
        }
        const upload = job.steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"));
        expect(upload?.with?.name).toBe("preview-summary-${{ matrix.stack }}");
    });

    it("comments from a separate job that has pull-requests: write and no secrets, token or checkout", () => {
        expect(comment.needs).toEqual(["stacks", "preview"]);
        expect(comment.if).toMatch(/^!cancelled\(\)/);
        expect(comment.environment).toBeUndefined();
        expect(comment.env).toBeUndefined();
        expect(JSON.stringify(comment)).not.toMatch(/secrets\.|setup-pulumi|actions\/checkout/);
        expect(comment.strategy?.matrix?.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        const download = comment.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"));
        expect(download?.with).toEqual({ name: "preview-summary-${{ matrix.stack }}", path: "preview-summary" });
        expect(download?.["continue-on-error"]).toBe(true);
    });

    // The comment step's own script, run against a fake GitHub API.
    const commentScript = String(comment.steps.find((s) => s.uses?.startsWith("actions/github-script@"))?.with?.script ?? "");
    async function runComment(stack: string, comments: Comment[], summary?: string, exitCode = "0") {
        const { github, calls } = fakeGitHub({ comments });
        const files: Record<string, string> = {};
        if (summary !== undefined) {
            files["preview-summary/summary.txt"] = summary;
            files["preview-summary/exit-code"] = `${exitCode}\n`;
        }
        await runGitHubScript(commentScript, github, { STACK: stack }, files);
        return calls;
    }

    it("comments once per stack and updates that comment on the next push", async () => {
        const comments: Comment[] = [{ id: 1, body: "LGTM", user: { type: "User" } }];
        expect(await runComment("dev", comments, "+ 12 to create")).toEqual(["comment 7"]);
        expect(await runComment("prod", comments, "error: boom", "1")).toEqual(["comment 7"]);
        expect(await runComment("dev", comments, "~ 1 to update")).toEqual(["update 100"]);
        expect(comments).toHaveLength(3);
        const dev = comments.find((c) => c.id === 100);
        expect(dev?.body).toContain("<!-- pulumi-preview:dev -->");
        expect(dev?.body).toContain("✅ `pulumi preview` of stack `dev`");
        expect(dev?.body).toContain("~ 1 to update");
        expect(dev?.body).not.toContain("12 to create");
        const prod = comments.find((c) => c.id === 101);
        expect(prod?.body).toContain("❌ `pulumi preview` of stack `prod`");
        expect(prod?.body).toContain("the error is in the job log (exit code 1)");
    });

    it("says so when the preview left no plan (approval refused or pending, or an early failure)", async () => {
        const comments: Comment[] = [];
        await runComment("prod", comments);
        expect(comments[0].body).toContain("⚠️ No `pulumi preview` of stack `prod`");
        expect(comments[0].body).toContain("`preview-prod` environment");
    });

    it("truncates long previews to fit a GitHub comment and cannot break out of the code block", async () => {
        const comments: Comment[] = [];
        await runComment("dev", comments, "```\n@everyone" + "x".repeat(70_000));
        expect(comments[0].body.length).toBeLessThan(65_536);
        expect(comments[0].body).toContain("(truncated, see the job log)");
        expect(comments[0].body.match(/```/g)).toHaveLength(2);
    });
});

describe("deploy.yml", () => {
    const workflow = load("deploy.yml");
    const job = workflow.jobs.deploy;

    it("deploys on push to main only the stacks that opt in, each in its own environment, one at a time", () => {
        expect(workflow.on).toEqual({ push: { branches: ["main"] } });
        expect(workflow.jobs.stacks.steps.some((s) => (s.run ?? "").includes("pulumi-stacks.js --auto-deploy"))).toBe(true);
        expect(job.strategy?.matrix?.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        expect(job.environment).toBe("${{ matrix.stack }}");
        expect(job.concurrency).toEqual({ group: "pulumi-${{ matrix.stack }}", "cancel-in-progress": false });
        const up = job.steps.find((s) => (s.run ?? "").includes("pulumi up"));
        expect(up?.run).toMatch(/pulumi up --stack "\$STACK" --yes .*--policy-pack policy/);
    });

    it("runs only on main: job conditions and an explicit refusal first", () => {
        expect(workflow.jobs.stacks.if).toBe("github.ref == 'refs/heads/main'");
        expect(job.if).toMatch(/^github\.ref == 'refs\/heads\/main' && /);
        expect(job.steps[0].name).toBe("Refuse any ref but main");
    });

    it("fails the job when pulumi up fails (the output goes through tee)", () => {
        const up = job.steps.find((s) => (s.run ?? "").includes("pulumi up"));
        const stub = "#!/usr/bin/env bash\necho 'Updating (prod):'\nexit \"${STUB_EXIT:-0}\"\n";
        expect(runStep(up?.run ?? "", { STACK: "prod", GITHUB_SHA: "0123456789abcdef", GITHUB_RUN_ID: "1" }, { stubs: { pulumi: stub } }).status).toBe(0);
        const failed = runStep(up?.run ?? "", { STACK: "prod", GITHUB_SHA: "0123456789abcdef", GITHUB_RUN_ID: "1", STUB_EXIT: "255" }, { stubs: { pulumi: stub } });
        expect(failed.status).not.toBe(0);
        expect(fs.readFileSync(path.join(failed.workspace, "up.txt"), "utf8")).toBe("Updating (prod):\n");
    });

    it("summarises the update with the filtered plan, not the raw log", () => {
        const summary = step(job, "Job summary");
        const run = runStep(summary.run ?? "", { STACK: "prod", PULUMI_CONFIG_PASSPHRASE: "pp-secret-0001" }, {
            files: { "up.txt": "Updating (prod):\n    + a:b:C: (create)\n        token: \"pp-secret-0001\"\nsome log\nResources:\n    + 1 created\n" },
        });
        expect(run.summary).toContain("+ a:b:C: (create)");
        expect(run.summary).toContain("+ 1 created");
        expect(run.summary).not.toContain("pp-secret-0001");
        expect(run.summary).not.toContain("some log");
    });
});

describe("destroy.yml", () => {
    const workflow = load("destroy.yml");
    const check = workflow.jobs.check;
    const job = workflow.jobs.destroy;

    it("only runs by manual dispatch with a stack and a typed confirmation, on main", () => {
        expect(Object.keys(workflow.on)).toEqual(["workflow_dispatch"]);
        const inputs = (workflow.on.workflow_dispatch as { inputs: Record<string, { required: boolean }> }).inputs;
        expect(Object.keys(inputs).sort()).toEqual(["confirm", "stack"]);
        expect(inputs.stack.required).toBe(true);
        expect(inputs.confirm.required).toBe(true);
        expect(job.if).toBe("github.ref == 'refs/heads/main'");
        expect(job.environment).toBe("${{ inputs.stack }}");
        expect(job.concurrency?.group).toBe("pulumi-${{ inputs.stack }}");
    });

    it("checks the branch, the confirmation and the stack in a job without secrets, before the environment", () => {
        expect(job.needs).toBe("check");
        expect(check.environment).toBeUndefined();
        expect(JSON.stringify(check)).not.toMatch(/secrets\./);
        expect(check.steps.map((s) => s.name ?? s.uses?.split("@")[0])).toEqual([
            "Refuse any ref but main",
            "Check the confirmation",
            "actions/checkout",
            "Check the stack exists",
        ]);
        const confirmation = step(check, "Check the confirmation");
        const run = (stack: string, confirm: string) => runStep(confirmation.run ?? "", { STACK: stack, CONFIRM: confirm });
        expect(run("prod", "destroy prod").status).toBe(0);
        const wrong = run("prod", "destroy dev");
        expect(wrong.status).toBe(1);
        expect(wrong.stdout).toContain('type exactly "destroy prod"');
        expect(run("prod", "prod").status).toBe(1);
        expect(run("prod", "").status).toBe(1);

        const exists = step(check, "Check the stack exists");
        expect(runStep(exists.run ?? "", { STACK: "prod" }, { files: { "Pulumi.prod.yaml": "config: {}\n" } }).status).toBe(0);
        expect(runStep(exists.run ?? "", { STACK: "staging" }, { files: { "Pulumi.prod.yaml": "config: {}\n" } }).status).toBe(1);
        expect(runStep(exists.run ?? "", { STACK: "../prod" }, { files: { "Pulumi.prod.yaml": "config: {}\n" } }).status).toBe(1);
    });

    it("destroys only after the checks, repeating the refusal of other refs", () => {
        expect(job.steps[0].name).toBe("Refuse any ref but main");
        const destroy = job.steps.find((s) => (s.run ?? "").includes("pulumi destroy"));
        expect(destroy?.run).toContain('pulumi destroy --stack "$STACK" --yes');
    });
});

describe("drift.yml", () => {
    const workflow = load("drift.yml");
    const job = workflow.jobs.check;
    const drift = step(job, "drift");
    const smoke = step(job, "smoke");

    it("runs daily on a schedule and by hand, for the stacks deploy.yml deploys", () => {
        expect(Object.keys(workflow.on).sort()).toEqual(["schedule", "workflow_dispatch"]);
        const schedule = workflow.on.schedule as { cron: string }[];
        expect(schedule).toHaveLength(1);
        const fields = schedule[0].cron.split(/\s+/);
        expect(fields).toHaveLength(5);
        expect(fields[0]).toMatch(/^\d{1,2}$/);
        expect(fields[1]).toMatch(/^\d{1,2}$/);
        expect(fields.slice(2)).toEqual(["*", "*", "*"]); // every day
        expect(workflow.jobs.stacks.steps.some((s) => s.run === 'echo "stacks=$(node dist/scripts/pulumi-stacks.js --auto-deploy)" >> "$GITHUB_OUTPUT"')).toBe(true);
        expect(job.strategy?.matrix?.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        expect(job.strategy?.["fail-fast"]).toBe(false);
        expect(job.if).toMatch(/^github\.ref == 'refs\/heads\/main' && /);
    });

    it("runs read-only in each stack's drift-<stack> environment, never queued against a deploy", () => {
        expect(job.environment).toBe("drift-${{ matrix.stack }}");
        expect(job.concurrency).toEqual({ group: "drift-${{ matrix.stack }}", "cancel-in-progress": false });
        expect(job.concurrency?.group).not.toBe(load("deploy.yml").jobs.deploy.concurrency?.group);
        const setup = job.steps.find((s) => s.uses === "./.github/actions/setup-pulumi");
        expect(setup?.with?.["role-to-assume"]).toBe("${{ vars.ALIBABA_CLOUD_PREVIEW_ROLE_ARN }}");
    });

    const stubPulumi = [
        "#!/usr/bin/env bash",
        'if [ "$1" = version ]; then echo "${STUB_VERSION:-v3.270.0}"; exit 0; fi',
        'echo "$*" > "$PWD/.pulumi-args"',
        'printf "%s" "$STUB_STDOUT"',
        'printf "%s" "$STUB_STDERR" >&2',
        'exit "${STUB_EXIT:-0}"',
        "",
    ].join("\n");
    const driftPlan = [
        "Previewing refresh (prod):",
        "  pulumi:pulumi:Stack: (same)",
        "    ~ alicloud:ecs/securityGroupRule:SecurityGroupRule: (update)",
        "        [id=sg-1:ingress:tcp:22/22:intranet:0.0.0.0/0:accept:1]",
        '      ~ cidrIp: "10.0.0.0/8" => "0.0.0.0/0"',
        "Resources:",
        "    ~ 1 to update",
        "    11 unchanged",
        "",
    ].join("\n");

    it("detects drift with pulumi refresh --preview-only --expect-no-changes and tells drift from a failed refresh", () => {
        expect(drift.run).toContain('pulumi refresh --preview-only --expect-no-changes --stack "$STACK" --diff');
        const env = { STACK: "prod" };
        const clean = runStep(drift.run ?? "", { ...env, STUB_STDOUT: "Previewing refresh (prod):\nResources:\n    12 unchanged\n" }, { stubs: { pulumi: stubPulumi } });
        expect(clean.status).toBe(0);
        expect(clean.outputs).toEqual({ "exit-code": "0", result: "no drift" });
        expect(fs.readFileSync(path.join(clean.workspace, ".pulumi-args"), "utf8")).toMatch(/^refresh --preview-only --expect-no-changes --stack prod --diff/);

        const drifted = runStep(drift.run ?? "", {
            ...env,
            STUB_STDOUT: driftPlan,
            STUB_STDERR: "error: no changes were expected for refresh but changes were proposed\n",
            STUB_EXIT: "255",
        }, { stubs: { pulumi: stubPulumi } });
        expect(drifted.status).toBe(0); // the smoke test still runs; the last step fails the job
        expect(drifted.outputs).toEqual({ "exit-code": "255", result: "drift" });
        expect(drifted.stdout).toContain("::error::Stack prod has drifted");

        const broken = runStep(drift.run ?? "", { ...env, STUB_STDERR: "error: AccessDenied\n", STUB_EXIT: "1" }, { stubs: { pulumi: stubPulumi } });
        expect(broken.outputs).toEqual({ "exit-code": "1", result: "refresh failed (exit code 1)" });

        const old = runStep(drift.run ?? "", { ...env, STUB_VERSION: "v3.228.0" }, { stubs: { pulumi: stubPulumi } });
        expect(old.outputs["exit-code"]).toBe("2");
        expect(old.stdout).toContain("locks the state for refresh --preview-only");
    });

    const stubNpm = [
        "#!/usr/bin/env bash",
        'echo "$*" > "$PWD/.npm-args"',
        'printf "%s" "$STUB_STDOUT"',
        'exit "${STUB_EXIT:-0}"',
        "",
    ].join("\n");

    it("runs the smoke test, whose failure (no working MCP tool call) is reported without the tools' answers", () => {
        expect(smoke.run).toContain('npm run smoke -- "$STACK"');
        expect(smoke.if).toBe("${{ !cancelled() && steps.drift.outcome == 'success' }}");
        const passed = runStep(smoke.run ?? "", { STACK: "prod", STUB_STDOUT: "  → tool call: DescribeInstances {}\n  ← DescribeInstances: {\"Instances\":[\"i-secretish\"]}\nAnswer: 3 instances\nPASS: 1 MCP tool call(s)\n" }, { stubs: { npm: stubNpm } });
        expect(passed.status).toBe(0);
        expect(passed.outputs["exit-code"]).toBe("0");
        expect(fs.readFileSync(path.join(passed.workspace, ".npm-args"), "utf8").trim()).toBe("run smoke -- prod");
        expect(passed.stdout).toContain("PASS: 1 MCP tool call(s)");
        expect(passed.stdout).not.toContain("i-secretish");
        expect(passed.stdout).not.toContain("3 instances");

        const failed = runStep(smoke.run ?? "", {
            STACK: "prod",
            STUB_STDOUT: "  ✗ DescribeInstances failed: tool invoke error: unauthorized\nFAIL: every MCP tool call failed (DescribeInstances: tool invoke error: unauthorized).\n",
            STUB_EXIT: "1",
        }, { stubs: { npm: stubNpm } });
        expect(failed.status).toBe(0);
        expect(failed.outputs["exit-code"]).toBe("1");
        expect(failed.stdout).toContain("::error::Smoke test of stack prod failed");
    });

    it("fails the job, with a job summary, when either check finds a problem", () => {
        const summary = step(job, "Job summary");
        const run = runStep(summary.run ?? "", { STACK: "prod", DRIFT_RESULT: "drift", SMOKE_EXIT_CODE: "1", PULUMI_CONFIG_PASSPHRASE: "prod-pass-77" }, {
            files: {
                "refresh.txt": driftPlan + "prod-pass-77\n",
                "smoke.txt": "FAIL: every MCP tool call failed (x: tool invoke error: unauthorized).\n",
            },
        });
        expect(run.summary).toContain("- drift check: drift");
        expect(run.summary).toContain("- smoke test: FAILED (exit code 1): FAIL: every MCP tool call failed");
        expect(run.summary).toContain('~ cidrIp: "10.0.0.0/8" => "0.0.0.0/0"');
        expect(run.summary).not.toContain("prod-pass-77");

        const fail = job.steps[job.steps.length - 1];
        expect(fail.if).toBe("${{ !cancelled() }}");
        const verdict = (driftCode: string, smokeCode: string) =>
            runStep(fail.run ?? "", { STACK: "prod", DRIFT_EXIT_CODE: driftCode, SMOKE_EXIT_CODE: smokeCode }).status;
        expect(verdict("0", "0")).toBe(0);
        expect(verdict("255", "0")).toBe(1);
        expect(verdict("0", "1")).toBe(1);
        expect(verdict("", "0")).toBe(1); // the drift check did not run
    });

    it("opens one tracking issue naming the failed stacks, then comments on it on later failures", async () => {
        const report = workflow.jobs.report;
        expect(report.needs).toEqual(["stacks", "check"]);
        expect(report.if).toBe("${{ failure() && github.ref == 'refs/heads/main' }}");
        const script = String(report.steps[0].with?.script ?? "");
        const issues: Issue[] = [{ number: 3, title: "Unrelated", body: "", comments: [] }];
        const jobs = [
            { name: "Find deployed stacks", conclusion: "success" },
            { name: "Drift and smoke prod", conclusion: "failure" },
            { name: "Drift and smoke staging", conclusion: "success" },
        ];
        const first = fakeGitHub({ issues, jobs });
        await runGitHubScript(script, first.github, {});
        expect(first.calls).toEqual(["create issue"]);
        const created = issues.find((i) => i.number === 4);
        expect(created?.title).toBe("Drift or smoke test failure on a deployed stack");
        expect(created?.body).toContain("- Drift and smoke prod: failure");
        expect(created?.body).not.toContain("staging");
        expect(created?.body).toContain("https://github.example/acme/dify-mcp-stack/actions/runs/42");

        const second = fakeGitHub({ issues, jobs });
        await runGitHubScript(script, second.github, {});
        expect(second.calls).toEqual(["comment 4"]);
        expect(issues).toHaveLength(2);
    });
});

describe("RAM policies for the OIDC roles (.github/ram-policies)", () => {
    interface Statement {
        Effect: string;
        Action: string | string[];
        Resource?: string[];
        Principal?: { Federated: string[] };
        Condition?: Record<string, Record<string, string | string[]>>;
    }
    const policy = (file: string) => JSON.parse(fs.readFileSync(path.join(policiesDir, file), "utf8")) as { Version: string; Statement: Statement[] };
    const actions = (file: string) => policy(file).Statement.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

    it("are valid policy documents", () => {
        expect(fs.readdirSync(policiesDir).filter((f) => f.endsWith(".json")).sort()).toEqual([
            "deploy-role-trust.json",
            "deploy-role.json",
            "preview-role-trust.json",
            "preview-role.json",
        ]);
        for (const file of ["deploy-role-trust.json", "deploy-role.json", "preview-role-trust.json", "preview-role.json"]) {
            const doc = policy(file);
            expect(doc.Version, file).toBe("1");
            for (const s of doc.Statement) expect(s.Effect, file).toBe("Allow");
        }
    });

    it("let the preview role read the state and the account and change nothing", () => {
        const all = actions("preview-role.json");
        expect(all).toContain("oss:GetObject");
        expect(all).toContain("oss:ListObjects");
        for (const action of all) {
            expect(action).toMatch(/^[a-z]+:(Describe|Get|List)[A-Za-z]*\*?$/);
        }
        expect(all.join(" ")).not.toMatch(/Put|Delete|Create|Update|Modify|Run|Attach|Abort/);
    });

    it("let the deploy role write the state, manage the stack's resources, and not grant itself anything", () => {
        const doc = policy("deploy-role.json");
        const writes = doc.Statement.find((s) => (s.Action as string[]).includes("oss:PutObject"));
        expect(writes?.Action).toEqual(expect.arrayContaining(["oss:GetObject", "oss:PutObject", "oss:DeleteObject"]));
        expect(writes?.Resource).toEqual(["acs:oss:*:<account-id>:<state-bucket>/*"]);
        const all = actions("deploy-role.json");
        expect(all).not.toContain("*");
        expect(all).not.toContain("oss:*");
        for (const action of all.filter((a) => a.startsWith("ram:"))) {
            expect(action).toMatch(/^ram:(Create|Get|Update|Delete|List)(Application|Applications|AppSecret)$/);
        }
        expect(all).not.toContain("ram:*");
        expect(all.join(" ")).not.toMatch(/PassRole|AttachPolicy|CreateRole|CreateUser|CreateAccessKey|sts:/);
    });

    it("trust only exact GitHub environments: preview-/drift-<stack> for the read-only role, <stack> for deploy", () => {
        const subjects = (file: string) => {
            const [statement] = policy(file).Statement;
            expect(statement.Action).toBe("sts:AssumeRole");
            expect(statement.Principal?.Federated).toEqual(["acs:ram::<account-id>:oidc-provider/<github-oidc-provider>"]);
            expect(Object.keys(statement.Condition ?? {})).toEqual(["StringEquals"]); // no StringLike wildcards
            const equals = statement.Condition?.StringEquals ?? {};
            expect(equals["oidc:iss"]).toBe("https://token.actions.githubusercontent.com");
            expect(equals["oidc:aud"]).toBe("sts.aliyuncs.com");
            const sub = equals["oidc:sub"] as string[];
            for (const s of sub) {
                expect(s).toMatch(/^repo:<owner>\/<repo>:environment:[^*?]+$/);
            }
            return sub.map((s) => s.replace("repo:<owner>/<repo>:environment:", ""));
        };
        expect(subjects("preview-role-trust.json")).toEqual(["preview-<stack>", "drift-<stack>"]);
        expect(subjects("deploy-role-trust.json")).toEqual(["<stack>"]);
    });
});
