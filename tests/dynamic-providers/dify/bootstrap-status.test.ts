// The status command the readiness check sends to the instance, run with dash under both awks the supported
// images have (Ubuntu: mawk; Alibaba Cloud Linux: gawk), on status files the bootstrap's own set_status wrote.
import { beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { requireTool, runBootstrapFunctions, runTool } from "../../components/tooling";
import { compactScript, readBootstrapScript } from "../../../components/bootstrap/userdata";
import {
    BOOTSTRAP_STATUS_SCRIPT,
    describeBootstrapStatus,
    parseBootstrapStatus,
    redactText,
} from "../../../dynamic-providers/dify/bootstrap-status";

let workDir: string;

beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bootstrap-status-"));
    fs.mkdirSync(path.join(workDir, "data", "dify"), { recursive: true });
    fs.writeFileSync(path.join(workDir, "data", "dify", "secrets.env"), "SECRET_KEY=sk+base64/secret==\nDB_PASSWORD=5f2b9c0d1e\n");
    fs.writeFileSync(path.join(workDir, "bootstrap.env"), "DIFY_VERSION='1.14.1'\nDIFY_INIT_PASSWORD='It-s/a&Pass9'\n");
});

/** Runs the status command as Cloud Assistant would, with `awk` being the given implementation. */
function readStatus(awk: "mawk" | "gawk"): string {
    requireTool(awk);
    const bin = path.join(workDir, `bin-${awk}`);
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(runTool("bash", ["-c", `command -v ${awk}`]).stdout.trim(), path.join(bin, "awk"));
    // dash: Cloud Assistant may run a RunShellScript with /bin/sh, so the command stays POSIX.
    const result = runTool("dash", ["-c", BOOTSTRAP_STATUS_SCRIPT], {
        env: {
            PATH: `${bin}:${process.env.PATH}`,
            DIFY_BOOTSTRAP_STATE_DIR: path.join(workDir, "state"),
            DIFY_BOOTSTRAP_LOG: path.join(workDir, "bootstrap.log"),
            DIFY_BOOTSTRAP_CONFIG: path.join(workDir, "bootstrap.env"),
            DIFY_BOOTSTRAP_DATA_MOUNT: path.join(workDir, "data"),
        },
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return result.stdout;
}

/** The bootstrap's own functions, writing the status and the log in workDir. */
function bootstrap(snippet: string) {
    const result = runBootstrapFunctions(snippet, { workDir, script: compactScript(readBootstrapScript()) });
    expect(result.status, result.stderr).toBe(0);
}

describe.each(["mawk", "gawk"] as const)("the status command under %s", (awk) => {
    it("says absent before the bootstrap wrote anything", () => {
        expect(parseBootstrapStatus(readStatus(awk))).toMatchObject({ state: "absent", logTail: [] });
    });

    it("reads the step and its progress, with no log", () => {
        bootstrap(`step "pulling images" "3/11: langgenius/dify-web:1.14.1 (0.8 GB so far)"`);
        const status = parseBootstrapStatus(readStatus(awk));
        expect(status).toMatchObject({ state: "running", step: "pulling images", logTail: [] });
        expect(describeBootstrapStatus(status)).toBe("pulling images (3/11: langgenius/dify-web:1.14.1 (0.8 GB so far))");
        expect(status.updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        // No settings read yet: no digest.
        expect(status.settings).toBe("");
    });

    it("carries the settings digest of the run that wrote it", () => {
        const digest = "ab".repeat(32);
        bootstrap(`DIFY_SETTINGS_DIGEST=${digest}; set_status "done" "Dify is up" "Dify 1.14.1"`);
        expect(parseBootstrapStatus(readStatus(awk))).toMatchObject({ state: "done", step: "Dify is up", settings: digest });
    });

    it("after a failure, carries the log's tail with the secrets' values redacted on the instance", () => {
        const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
        lines.push("db said: password 5f2b9c0d1e refused", "key sk+base64/secret== and init It-s/a&Pass9 here");
        fs.writeFileSync(path.join(workDir, "bootstrap.log"), lines.join("\n") + "\n");
        bootstrap(`step "migrating the database"; fail_with "Dify's database migration failed: auth 5f2b9c0d1e" || true`);
        const output = readStatus(awk);
        for (const secret of ["5f2b9c0d1e", "sk+base64/secret==", "It-s/a&Pass9"]) {
            expect(output).not.toContain(secret);
        }
        const status = parseBootstrapStatus(output);
        expect(status).toMatchObject({ state: "failed", step: "migrating the database", detail: "Dify's database migration failed: auth [redacted]" });
        expect(status.logTail).toHaveLength(40);
        expect(status.logTail[0]).toBe("line 12");
        expect(status.logTail).toContain("db said: password [redacted] refused");
        expect(status.logTail).toContain("key [redacted] and init [redacted] here");
    });
});

describe("redactText", () => {
    it("hides assignments to secret-looking names, DashScope keys and access key ids", () => {
        expect(redactText("DB_PASSWORD=abc INIT_PASSWORD='x y' PLUGIN_DAEMON_KEY=k1 CONSOLE_API_URL=http://x")).toBe(
            "DB_PASSWORD=[redacted] INIT_PASSWORD=[redacted] PLUGIN_DAEMON_KEY=[redacted] CONSOLE_API_URL=http://x",
        );
        expect(redactText(`key ${"sk-" + "a1".repeat(16)} id ${"LTAI" + "Zz9".repeat(6)}`)).toBe("key [redacted] id [redacted]");
    });
});
