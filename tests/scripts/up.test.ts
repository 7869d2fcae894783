// scripts/up.sh checks the Alibaba Cloud credentials before the Pulumi CLI, any plugin or any pulumi command. Run for
// real with stand-ins first on PATH: `pulumi` and `npm` record their arguments and succeed; `node` records its
// arguments and runs the real Node.js, so the credential check itself is the real one (dist/, built beforehand).
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runAsync, RunResult } from "./run-async";

const root = path.resolve(__dirname, "..", "..");
const checker = path.join(root, "dist", "scripts", "check-credentials.js");

interface UpRun extends RunResult {
    /** Every recorded call, in order: `pulumi …`, `npm …`, `node …`. */
    calls: string[];
}

function stub(dir: string, name: string, body: string) {
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
}

async function up(env: Record<string, string>): Promise<UpRun> {
    if (!fs.existsSync(checker)) {
        throw new Error(`${checker} is missing: run "npm run build" first (npm test does it)`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "up-"));
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const calls = path.join(dir, "calls");
    fs.writeFileSync(calls, "");
    stub(bin, "pulumi", 'echo "pulumi $*" >> "$UP_TEST_CALLS"\n[ "${1:-}" != version ] || echo v3.999.0');
    stub(bin, "pulumi-language-nodejs", "exit 0");
    stub(bin, "npm", 'echo "npm $*" >> "$UP_TEST_CALLS"');
    stub(bin, "node", 'echo "node $*" >> "$UP_TEST_CALLS"\nexec "$UP_TEST_NODE" "$@"');
    const childEnv = {
        PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
        HOME: path.join(dir, "home"),
        UP_TEST_CALLS: calls,
        UP_TEST_NODE: process.execPath,
        PULUMI_CONFIG_PASSPHRASE: "test-passphrase",
        PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
        ALIBABA_CLOUD_ECS_METADATA_DISABLED: "true",
        ...env,
    };
    fs.mkdirSync(childEnv.HOME);
    const result = await runAsync("bash", [path.join(root, "scripts", "up.sh"), "dev", "--yes"], { cwd: os.tmpdir(), env: childEnv });
    return { ...result, calls: fs.readFileSync(calls, "utf8").split("\n").filter((line) => line !== "") };
}

const CHECK = "node dist/scripts/check-credentials.js dev";

describe("./scripts/up.sh <stack>", () => {
    it("without credentials stops at the check, after the build and before any pulumi command, saying so", async () => {
        const result = await up({});
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("no Alibaba Cloud credentials found for the OAuth app and MCP server providers");
        expect(result.stderr).toContain("Ways to provide credentials");
        expect(result.calls).toContain("npm run --silent build");
        expect(result.calls.indexOf("npm run --silent build")).toBeLessThan(result.calls.indexOf(CHECK));
        expect(result.calls.filter((call) => call.startsWith("pulumi "))).toEqual([]);
        expect(result.calls[result.calls.length - 1]).toBe(CHECK);
    });

    it("with credentials names them, then goes on to the CLI, the plugins and pulumi up", async () => {
        const result = await up({ ALIBABA_CLOUD_ACCESS_KEY_ID: "LTAI_TEST_UP_KEY_05", ALIBABA_CLOUD_ACCESS_KEY_SECRET: "UpTestSecret-do-not-print" });
        expect(result.stderr).not.toContain("no Alibaba Cloud credentials");
        expect(result.status).toBe(0);
        expect(result.stdout).toContain("check-credentials: Alibaba Cloud credentials for stack dev:");
        expect(result.stdout).toContain("access key LTAI...05");
        expect(result.stdout + result.stderr).not.toContain("UpTestSecret-do-not-print");

        const check = result.calls.indexOf(CHECK);
        const firstPulumi = result.calls.findIndex((call) => call.startsWith("pulumi "));
        expect(check).toBeGreaterThan(-1);
        expect(firstPulumi).toBeGreaterThan(check);
        expect(result.calls.slice(firstPulumi)).toEqual(
            expect.arrayContaining([
                "pulumi stack select --create dev --secrets-provider passphrase",
                expect.stringMatching(/^pulumi plugin install resource alicloud \d/),
                "pulumi up --stack dev --yes",
            ]),
        );
        expect(result.calls[result.calls.length - 1]).toBe("pulumi up --stack dev --yes");
    });
});
