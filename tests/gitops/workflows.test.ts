// The GitOps workflows: actionlint must pass, and the behaviour users rely on is asserted on the parsed files
// (and, for the PR comment and the destroy confirmation, by running the workflow's own script).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../..");
const workflowsDir = path.join(root, ".github", "workflows");
const setupActionFile = path.join(root, ".github", "actions", "setup-pulumi", "action.yml");

interface Step {
    id?: string;
    name?: string;
    uses?: string;
    run?: string;
    if?: string;
    with?: Record<string, string>;
    env?: Record<string, string>;
}
interface Job {
    "runs-on"?: string;
    needs?: string | string[];
    if?: string;
    environment?: string;
    permissions?: Record<string, string>;
    concurrency?: { group: string; "cancel-in-progress"?: boolean };
    strategy?: { matrix?: Record<string, unknown> };
    env?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    name: string;
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    jobs: Record<string, Job>;
}

function readText(file: string): string {
    return fs.readFileSync(path.join(workflowsDir, file), "utf8");
}
function load(file: string): Workflow {
    return yaml.load(readText(file)) as Workflow;
}
const workflowFiles = fs.readdirSync(workflowsDir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml")).sort();

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

/** Jobs whose steps run the Pulumi CLI. */
function pulumiJobs(workflow: Workflow): [string, Job][] {
    return Object.entries(workflow.jobs).filter(([, job]) => job.steps.some((s) => /\bpulumi (preview|up|destroy)\b/.test(s.run ?? "")));
}

describe("GitHub workflows", () => {
    it("has the preview, deploy and destroy workflows", () => {
        expect(workflowFiles).toEqual(["deploy.yml", "destroy.yml", "preview.yml"]);
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

    it("use no long-lived cloud keys: the only secrets are the state backend URL and the passphrase", () => {
        const used = new Set<string>();
        for (const file of [...workflowFiles.map((f) => path.join(workflowsDir, f)), setupActionFile]) {
            for (const match of fs.readFileSync(file, "utf8").matchAll(/secrets\.([A-Za-z0-9_]+)/g)) {
                used.add(match[1]);
            }
        }
        expect([...used].sort()).toEqual(["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"]);
        for (const name of used) {
            expect(name).not.toMatch(/ACCESS_KEY|SECRET_KEY|ACCESSKEY|_AK$|_SK$/);
        }
    });

    it("give every job that runs pulumi an OIDC token, a RAM role from repository variables and both secrets", () => {
        for (const file of workflowFiles) {
            const workflow = load(file);
            // Nothing beyond reading the repository by default; jobs ask for more.
            expect(workflow.permissions, file).toEqual({ contents: "read" });
            const jobs = pulumiJobs(workflow);
            expect(jobs.length, `${file} runs pulumi`).toBeGreaterThan(0);
            for (const [name, job] of jobs) {
                expect(job.permissions?.["id-token"], `${file}/${name} id-token`).toBe("write");
                const setup = job.steps.find((s) => s.uses === "./.github/actions/setup-pulumi");
                expect(setup, `${file}/${name} uses setup-pulumi`).toBeDefined();
                expect(setup?.with?.["role-to-assume"]).toMatch(/^\$\{\{ vars\.ALIBABA_CLOUD_[A-Z_]+_ROLE_ARN \}\}$/);
                expect(setup?.with?.["oidc-provider-arn"]).toBe("${{ vars.ALIBABA_CLOUD_OIDC_PROVIDER_ARN }}");
                expect(job.env?.PULUMI_BACKEND_URL).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
                expect(job.env?.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
            }
        }
    });

    it("set up the CLI at the SDK's version and exchange the OIDC token for STS credentials", () => {
        const action = yaml.load(fs.readFileSync(setupActionFile, "utf8")) as { runs: { steps: Step[] } };
        const steps = action.runs.steps;
        const cli = steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(cli?.with?.["pulumi-version"]).toBe("${{ steps.versions.outputs.pulumi }}");
        expect(steps.find((s) => s.id === "versions")?.run).toContain('packages["node_modules/@pulumi/pulumi"].version');
        const oidc = steps.find((s) => s.uses?.startsWith("aliyun/configure-aliyun-credentials-action@"));
        expect(oidc?.with).toEqual({
            "role-to-assume": "${{ inputs.role-to-assume }}",
            "oidc-provider-arn": "${{ inputs.oidc-provider-arn }}",
        });
        expect(steps.some((s) => (s.run ?? "").includes("npm ci --prefix policy"))).toBe(true);
    });
});

describe("preview.yml", () => {
    const workflow = load("preview.yml");
    const job = workflow.jobs.preview;

    it("runs on pull requests to main, one matrix job per discovered stack", () => {
        expect(workflow.on).toEqual({ pull_request: { branches: ["main"] } });
        expect(workflow.jobs.stacks.steps.some((s) => s.run === 'echo "stacks=$(node dist/scripts/pulumi-stacks.js)" >> "$GITHUB_OUTPUT"')).toBe(true);
        expect(job.strategy?.matrix?.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        expect(job.permissions).toEqual({ contents: "read", "id-token": "write", "pull-requests": "write" });
    });

    it("previews with the diff and the guardrail policy pack, and fails the check when the preview fails", () => {
        const preview = job.steps.find((s) => s.id === "preview");
        expect(preview?.run).toMatch(/pulumi preview --stack "\$STACK" --diff .*--policy-pack policy/);
        const fail = job.steps[job.steps.length - 1];
        expect(fail.if).toBe("steps.preview.outputs.exit-code != '0'");
        expect(fail.run).toContain("exit 1");
    });

    // The comment step's own script, run against a fake GitHub API.
    const commentStep = job.steps.find((s) => s.uses?.startsWith("actions/github-script@"));
    interface Comment { id: number; body: string; user: { type: string } }

    function fakeGitHub(comments: Comment[]) {
        let nextId = Math.max(99, ...comments.map((c) => c.id)) + 1;
        const calls: string[] = [];
        const rest = {
            issues: {
                listComments: async () => ({ data: comments }),
                createComment: async (args: { body: string }) => {
                    calls.push("create");
                    comments.push({ id: nextId++, body: args.body, user: { type: "Bot" } });
                },
                updateComment: async (args: { comment_id: number; body: string }) => {
                    calls.push(`update ${args.comment_id}`);
                    const comment = comments.find((c) => c.id === args.comment_id);
                    if (comment) comment.body = args.body;
                },
            },
        };
        const github = {
            rest,
            paginate: async (method: () => Promise<{ data: Comment[] }>) => [...(await method()).data],
        };
        return { github, calls };
    }

    async function runCommentScript(stack: string, exitCode: string, output: string, comments: Comment[]) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "preview-comment-"));
        fs.writeFileSync(path.join(dir, "preview.txt"), output);
        const { github, calls } = fakeGitHub(comments);
        const context = {
            repo: { owner: "acme", repo: "dify-mcp-stack" },
            runId: 42,
            serverUrl: "https://github.example",
            payload: { pull_request: { number: 7, head: { sha: "abc1234" } } },
        };
        const fakeProcess = { env: { STACK: stack, EXIT_CODE: exitCode } };
        const fakeRequire = (name: string) => {
            if (name !== "fs") throw new Error(`unexpected require(${name})`);
            return { readFileSync: (file: string, enc: BufferEncoding) => fs.readFileSync(path.join(dir, file), enc) };
        };
        const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (
            ...args: string[]
        ) => (...values: unknown[]) => Promise<void>;
        const script = new AsyncFunction("require", "github", "context", "process", commentStep?.with?.script ?? "");
        await script(fakeRequire, github, context, fakeProcess);
        fs.rmSync(dir, { recursive: true, force: true });
        return calls;
    }

    it("comments once per stack and updates that comment on the next push", async () => {
        const comments: Comment[] = [{ id: 1, body: "LGTM", user: { type: "User" } }];
        expect(await runCommentScript("dev", "0", "+ 12 to create", comments)).toEqual(["create"]);
        expect(await runCommentScript("prod", "1", "error: boom", comments)).toEqual(["create"]);
        expect(await runCommentScript("dev", "0", "~ 1 to update", comments)).toEqual(["update 100"]);
        expect(comments).toHaveLength(3);
        const dev = comments.find((c) => c.id === 100);
        expect(dev?.body).toContain("<!-- pulumi-preview:dev -->");
        expect(dev?.body).toContain("✅ `pulumi preview` of stack `dev`");
        expect(dev?.body).toContain("~ 1 to update");
        expect(dev?.body).not.toContain("12 to create");
        expect(comments.find((c) => c.id === 101)?.body).toContain("❌ `pulumi preview` of stack `prod`");
    });

    it("truncates long previews to fit a GitHub comment", async () => {
        const comments: Comment[] = [];
        await runCommentScript("dev", "0", "x".repeat(70_000) + "THE END", comments);
        expect(comments[0].body.length).toBeLessThan(65_536);
        expect(comments[0].body).toContain("(truncated, see the job log)");
        expect(comments[0].body).toContain("THE END");
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
});

describe("destroy.yml", () => {
    const workflow = load("destroy.yml");
    const job = workflow.jobs.destroy;

    it("only runs by manual dispatch with a stack and a typed confirmation", () => {
        expect(Object.keys(workflow.on)).toEqual(["workflow_dispatch"]);
        const inputs = (workflow.on.workflow_dispatch as { inputs: Record<string, { required: boolean }> }).inputs;
        expect(Object.keys(inputs).sort()).toEqual(["confirm", "stack"]);
        expect(inputs.stack.required).toBe(true);
        expect(inputs.confirm.required).toBe(true);
        expect(job.environment).toBe("${{ inputs.stack }}");
        expect(job.concurrency?.group).toBe("pulumi-${{ inputs.stack }}");
    });

    it("checks the confirmation before anything else, and destroys only after it", () => {
        expect(job.steps[0].name).toBe("Check the confirmation");
        const destroyIndex = job.steps.findIndex((s) => (s.run ?? "").includes("pulumi destroy"));
        expect(destroyIndex).toBeGreaterThan(0);
        expect(job.steps[destroyIndex].run).toContain('pulumi destroy --stack "$STACK" --yes');

        const check = (stack: string, confirm: string) =>
            spawnSync("bash", ["-e", "-c", job.steps[0].run ?? ""], {
                env: { PATH: process.env.PATH, STACK: stack, CONFIRM: confirm },
                encoding: "utf8",
            });
        expect(check("prod", "destroy prod").status).toBe(0);
        const wrong = check("prod", "destroy dev");
        expect(wrong.status).toBe(1);
        expect(wrong.stdout).toContain('type exactly "destroy prod"');
        expect(check("prod", "prod").status).toBe(1);
        expect(check("prod", "").status).toBe(1);
    });
});
