// The bootstrap's steps and the readiness resource together: the shipped bootstrap script's own functions write
// the status file in a scratch directory, the fake Alibaba API server runs the readiness resource's status
// command on that "instance" with bash (Cloud Assistant's RunCommand), and the provider runs the engine's way
// (serialized, in its own process), signing its calls like any Alibaba provider here.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { AddressInfo } from "net";
import { AlibabaProviderFixture, startAlibabaProviderFixture } from "../../servers/alibaba-provider-fixture";
import { bashRunner } from "../../servers/cloud-assistant-runner";
import { runBootstrapFunctionsAsync } from "../../components/tooling";
import { compactScript, readBootstrapScript } from "../../../components/bootstrap/userdata";
import type { DifyReadinessInputs } from "../../../dynamic-providers/dify/readiness";

const ACCESS_KEY_ID = "test-ak-readiness-bootstrap";
const ACCESS_KEY_SECRET = "readiness-bootstrap-secret-0123456789";
const INSTANCE_ID = "i-bp1bootstrapwatch";
const script = compactScript(readBootstrapScript());

let fixture: AlibabaProviderFixture;
let workDir: string;
let dify: { url: string; close(): Promise<void> };

/** A Dify host that answers 502 until the bootstrap created workDir/ready, then Dify's real setup answer. */
async function startDifyStandIn(): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer((req, res) => {
        if (!fs.existsSync(path.join(workDir, "ready"))) {
            res.writeHead(502, { "Content-Type": "text/html" }).end("<html><h1>502 Bad Gateway</h1></html>");
            return;
        }
        res.writeHead(200, { "Content-Type": "application/json", "X-Version": "1.14.1" }).end(JSON.stringify({ step: "not_started" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((resolve) => server.close(() => resolve())),
    };
}

/** The bootstrap's paths, as tooling.ts points them into workDir: the status command must read the same files. */
function instanceEnvironment(): Record<string, string> {
    return {
        DIFY_BOOTSTRAP_STATE_DIR: path.join(workDir, "state"),
        DIFY_BOOTSTRAP_LOG: path.join(workDir, "bootstrap.log"),
        DIFY_BOOTSTRAP_CONFIG: path.join(workDir, "bootstrap.env"),
        DIFY_BOOTSTRAP_DATA_MOUNT: path.join(workDir, "data"),
    };
}

/** Registers the instance: each status read runs the command with bash and then counts itself in workDir/reads. */
function addInstance(options: { agentOnline?: boolean } = {}) {
    const run = bashRunner({ env: instanceEnvironment() });
    fixture.server.addInstance(INSTANCE_ID, {
        agentOnline: options.agentOnline ?? true,
        run: async (command: string) => {
            const result = await run(command);
            const reads = path.join(workDir, "reads");
            fs.writeFileSync(reads, String(Number(fs.existsSync(reads) ? fs.readFileSync(reads, "utf8") : "0") + 1));
            return result;
        },
    });
}

function inputs(overrides: Partial<DifyReadinessInputs> = {}): DifyReadinessInputs {
    return {
        difyUrl: dify.url,
        instanceId: INSTANCE_ID,
        timeoutSeconds: 120,
        pollIntervalSeconds: 0.2,
        regionId: "cn-hangzhou",
        ecsEndpoint: fixture.server.url,
        bootTimeoutSeconds: 60,
        ...overrides,
    };
}

/**
 * Runs a bootstrap snippet in the background. `next_read` waits until the instance's status has been read once
 * more, so every step is seen by the provider; `sleep` is stubbed out (the retries' pauses), /bin/sleep is real.
 * Output goes to the bootstrap log, as main's does.
 */
function runBootstrap(snippet: string, stubs: Record<string, string> = {}) {
    const prelude = `
next_read() { local n; n="$(cat "$WORK/reads" 2>/dev/null || echo 0)"; while [ "$(cat "$WORK/reads" 2>/dev/null || echo 0)" -le "$n" ]; do /bin/sleep 0.05; done; }
exec >>"$LOG_FILE" 2>&1
trap 'on_error "$LINENO"' ERR
set -E
`;
    return runBootstrapFunctionsAsync(prelude + snippet, { workDir, script, stubs: { sleep: "exit 0", ...stubs }, env: { WORK: workDir } });
}

beforeAll(async () => {
    fixture = await startAlibabaProviderFixture({
        module: "dynamic-providers/dify/readiness",
        exportName: "difyReadinessProvider",
        accessKeyId: ACCESS_KEY_ID,
        accessKeySecret: ACCESS_KEY_SECRET,
    });
});

afterAll(async () => {
    await fixture?.close();
});

beforeEach(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "readiness-bootstrap-"));
    fs.mkdirSync(path.join(workDir, "data", "dify"), { recursive: true });
    fs.mkdirSync(path.join(workDir, "opt-dify", "docker"), { recursive: true });
    fs.writeFileSync(path.join(workDir, "data", "dify", "secrets.env"), "SECRET_KEY=kept-secret-key-0001\nREDIS_PASSWORD=0123abcd4567\n");
    fs.writeFileSync(path.join(workDir, "bootstrap.env"), "DIFY_VERSION='1.14.1'\nDIFY_INIT_PASSWORD='Init-Pass/9&x'\n");
    dify = await startDifyStandIn();
});

afterEach(async () => {
    await dify.close();
    fixture.server.removeInstance?.(INSTANCE_ID);
    fs.rmSync(workDir, { recursive: true, force: true });
});

/** The progress lines the provider printed since `from`. */
function progressSince(from: number): string[] {
    return fixture.provider
        .output()
        .slice(from)
        .split("\n")
        .filter((line) => line.startsWith(`Dify on ${INSTANCE_ID}: `))
        .map((line) => line.slice(`Dify on ${INSTANCE_ID}: `.length));
}

describe("following the bootstrap through Cloud Assistant", () => {
    it("shows each step in up's output, then finishes when Dify answers", async () => {
        addInstance();
        const from = fixture.provider.output().length;
        const bootstrap = runBootstrap(`
step "installing Docker"; next_read
step "pulling images" "1/2: langgenius/dify-api:1.14.1 (0.0 GB so far)"; next_read
step "pulling images" "2/2: redis:6-alpine (1.2 GB so far)"; next_read
step "migrating the database"; next_read
set_status "done" "Dify is up" "Dify 1.14.1"; touch "$WORK/ready"`);
        const result = await fixture.provider.call<{ outs: Record<string, unknown> }>("create", inputs());
        const finished = await bootstrap;
        expect(finished.stderr).toBe("");
        expect(finished.status).toBe(0);
        expect(result.outs).toMatchObject({ setupStep: "not_started", difyVersion: "1.14.1" });
        expect(progressSince(from)).toEqual(
            expect.arrayContaining([
                "installing Docker",
                "pulling images (1/2: langgenius/dify-api:1.14.1 (0.0 GB so far))",
                "pulling images (2/2: redis:6-alpine (1.2 GB so far))",
                "migrating the database",
            ]),
        );
        const lines = progressSince(from);
        expect(lines.indexOf("installing Docker")).toBeLessThan(lines.indexOf("migrating the database"));
    });

    it("with waitForBootstrap, keeps waiting while other nodes answer the URL until this instance's bootstrap is done", async () => {
        addInstance();
        // The URL answers from the start (the old app nodes behind the load balancer, during an upgrade).
        fs.writeFileSync(path.join(workDir, "ready"), "");
        const bootstrap = runBootstrap(`
step "migrating the database"; next_read; next_read
touch "$WORK/migrated"; set_status "done" "Dify is up" "Dify 1.14.1"`);
        const result = await fixture.provider.call<{ outs: Record<string, unknown> }>("create", inputs({ waitForBootstrap: true }));
        // Returned only after the bootstrap marked itself done, not on the first answer of the URL.
        expect(fs.existsSync(path.join(workDir, "migrated"))).toBe(true);
        expect(result.outs).toMatchObject({ setupStep: "not_started", waitForBootstrap: true });
        expect((await bootstrap).status).toBe(0);
    });

    it("without waitForBootstrap, the URL answering ends the wait at once (the single host)", async () => {
        addInstance();
        fs.writeFileSync(path.join(workDir, "ready"), "");
        await fixture.provider.call("create", inputs());
        expect(fs.existsSync(path.join(workDir, "reads"))).toBe(false);
    });

    // Each failure: the step that failed, why, and the log's last lines (secrets redacted on the instance), from
    // the first status read after the bootstrap marked itself failed.
    const failures: { step: string; snippet: string; stubs: Record<string, string>; detail: RegExp; logLine: RegExp }[] = [
        {
            step: "pulling images",
            snippet: `step "preparing Dify's settings"; next_read; pull_images`,
            stubs: {
                docker: `case "$*" in
  "compose config --images") printf 'langgenius/dify-api:1.14.1\\nredis:6-alpine\\n' ;;
  "pull -q langgenius/dify-api:1.14.1") echo "docker.io/langgenius/dify-api:1.14.1" ;;
  "pull -q redis:6-alpine") echo 'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: request canceled (auth 0123abcd4567)' >&2; exit 1 ;;
  "image inspect"*) echo 1200000000 ;;
  *) exit 0 ;;
esac`,
            },
            detail: /pulling redis:6-alpine from docker\.io failed 5 times: Error response from daemon: .*request canceled/,
            logLine: /docker pull redis:6-alpine: Error response from daemon/,
        },
        {
            step: "fetching Dify 1.14.1",
            snippet: `step "fetching Dify 1.14.1"; next_read; retry 3 30 fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR"`,
            stubs: { git: 'echo "fatal: unable to access https://github.com/: Could not resolve host (Init-Pass/9&x)" >&2; exit 128', timeout: 'shift; "$@"', curl: "exit 6" },
            detail: /giving up after 3 attempts: fetch_dify 1\.14\.1/,
            logLine: /attempt 2 of 3 failed/,
        },
        {
            step: "migrating the database",
            snippet: `step "starting Dify"; next_read; wait_for_migrations`,
            stubs: {
                docker: `case "$*" in
  "compose logs --no-color api") printf 'Running migrations\\nDatabase migration failed: (psycopg2.OperationalError) connection to server at "db" failed\\n' ;;
  *) exit 0 ;;
esac`,
                curl: "exit 7",
            },
            detail: /Dify's database migration failed: Database migration failed: \(psycopg2\.OperationalError\)/,
            logLine: /Database migration failed/,
        },
    ];

    it.each(failures)("stops at a failure in \"$step\" on the first read after it, with the reason and the log's tail", async (failure) => {
        addInstance();
        const bootstrap = runBootstrap(`${failure.snippet} || cp "$WORK/reads" "$WORK/reads-at-failure"`, failure.stubs);
        const error = await fixture.provider.call("create", inputs()).then(
            () => undefined,
            (err: Error) => err,
        );
        await bootstrap;
        expect(error?.message).toContain(`The bootstrap on instance ${INSTANCE_ID} failed at "${failure.step}"`);
        expect(error?.message).toMatch(failure.detail);
        expect(error?.message).toMatch(failure.logLine);
        expect(error?.message).toContain("Last lines of /var/log/dify-bootstrap.log (secrets redacted)");
        for (const secret of ["0123abcd4567", "Init-Pass/9&x", "kept-secret-key-0001"]) {
            expect(error?.message).not.toContain(secret);
        }
        // One polling interval: at most one status read after the failure was written.
        const reads = Number(fs.readFileSync(path.join(workDir, "reads"), "utf8"));
        const atFailure = Number(fs.readFileSync(path.join(workDir, "reads-at-failure"), "utf8"));
        expect(reads - atFailure).toBeLessThanOrEqual(1);
    });

    it("says the instance never booted when Cloud Assistant's agent never reports", async () => {
        addInstance({ agentOnline: false });
        await expect(fixture.provider.call("create", inputs({ bootTimeoutSeconds: 2 }))).rejects.toThrow(
            new RegExp(`Instance ${INSTANCE_ID} has not come up within 2s: its Cloud Assistant agent never reported`),
        );
    });

    it("says the bootstrap never started when the instance is up but no status file appears", async () => {
        addInstance();
        await expect(fixture.provider.call("create", inputs({ bootTimeoutSeconds: 2 }))).rejects.toThrow(
            /is running \(Cloud Assistant answers\) but its bootstrap has not started within 2s: cloud-init did not run the user data/,
        );
        expect(Number(fs.readFileSync(path.join(workDir, "reads"), "utf8"))).toBeGreaterThan(0);
    });
});
