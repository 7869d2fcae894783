import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseEnv, runBootstrapFunctions } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";

const PUBLIC_URL = "http://198.51.100.23";
// Characters that break sed- or awk -v-based editing must reach the file unchanged.
const INIT_PASSWORD = "a/b&c\\d=e-Init9";
const PIP_MIRROR = "https://pypi.example.com/simple?a=1&b=/c\\d";

const URL_KEYS = ["CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "APP_API_URL", "APP_WEB_URL", "FILES_URL"];
const SECRET_KEYS = [
    "SECRET_KEY",
    "DB_PASSWORD",
    "REDIS_PASSWORD",
    "SANDBOX_API_KEY",
    "CODE_EXECUTION_API_KEY",
    "PLUGIN_DAEMON_KEY",
    "PLUGIN_DIFY_INNER_API_KEY",
    "WEAVIATE_API_KEY",
    "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS",
    "CELERY_BROKER_URL",
];
/** Every key the bootstrap may change; any other line must stay as Dify shipped it. */
const CHANGED_KEYS = new Set([
    ...URL_KEYS,
    ...SECRET_KEYS,
    "TRIGGER_URL",
    "ENDPOINT_URL_TEMPLATE",
    "NEXT_PUBLIC_SOCKET_URL",
    "INIT_PASSWORD",
    "PIP_MIRROR_URL",
    "EXPOSE_PLUGIN_DEBUGGING_PORT",
    "PLUGIN_PYTHON_ENV_INIT_TIMEOUT",
]);
/** Keys the bootstrap adds at the end when the release's .env.example lacks them. */
const APPENDED_KEYS = new Set(["PLUGIN_IGNORE_UV_LOCK", "PLUGIN_PYTHON_ENV_INIT_TIMEOUT"]);

/** Runs the shipped script's own functions against a copy of a release's .env.example. */
function configure(version: string, workDir: string): { before: string; after: string; secrets: Map<string, string> } {
    const envFile = path.join(workDir, ".env");
    const before = fs.readFileSync(path.join(difyReleaseDir(version, "docker"), ".env.example"), "utf8");
    if (!fs.existsSync(envFile)) {
        fs.writeFileSync(envFile, before);
    }
    const secretsFile = path.join(workDir, "secrets.env");
    const result = runBootstrapFunctions(`load_or_create_secrets "$1"; configure_dify_env "$2" "$1" "$3"`, {
        workDir,
        script: compactScript(readBootstrapScript()),
        args: [secretsFile, envFile, PUBLIC_URL],
        env: { DIFY_INIT_PASSWORD: INIT_PASSWORD, DIFY_PIP_MIRROR_URL: PIP_MIRROR },
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return { before, after: fs.readFileSync(envFile, "utf8"), secrets: parseEnv(fs.readFileSync(secretsFile, "utf8")) };
}

describe.each(["1.8.0", "1.14.1"])("Dify %s .env editing", (version) => {
    let workDir: string;
    let before: string;
    let after: string;
    let secrets: Map<string, string>;
    let original: Map<string, string>;
    let edited: Map<string, string>;

    beforeAll(() => {
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), `dify-env-${version}-`));
        ({ before, after, secrets } = configure(version, workDir));
        original = parseEnv(before);
        edited = parseEnv(after);
    });

    it("sets every public URL key to the EIP address", () => {
        for (const key of URL_KEYS) {
            expect(edited.get(key), key).toBe(PUBLIC_URL);
        }
        if (original.has("TRIGGER_URL")) {
            expect(edited.get("TRIGGER_URL")).toBe(PUBLIC_URL);
            expect(edited.get("ENDPOINT_URL_TEMPLATE")).toBe(`${PUBLIC_URL}/e/{hook_id}`);
            expect(edited.get("NEXT_PUBLIC_SOCKET_URL")).toBe("ws://198.51.100.23");
        }
    });

    it("replaces every default secret with one generated on the instance", () => {
        for (const key of SECRET_KEYS) {
            expect(edited.get(key), key).not.toBe(original.get(key));
            expect(edited.get(key), key).not.toContain("difyai123456");
            expect(edited.get(key), key).not.toBe("");
        }
        expect(edited.get("DB_PASSWORD")).toBe(secrets.get("DB_PASSWORD"));
        expect(edited.get("CODE_EXECUTION_API_KEY")).toBe(edited.get("SANDBOX_API_KEY"));
        expect(edited.get("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS")).toBe(edited.get("WEAVIATE_API_KEY"));
        // The broker URL embeds the Redis password; host, port and database stay.
        expect(edited.get("CELERY_BROKER_URL")).toBe(`redis://:${secrets.get("REDIS_PASSWORD")}@redis:6379/1`);
        expect(secrets.get("REDIS_PASSWORD")).toMatch(/^[0-9a-f]{32}$/);
    });

    it("gives the plugin daemon 600 s to set up a plugin's Python environment, and with a mirror, no uv.lock", () => {
        expect(edited.get("PLUGIN_PYTHON_ENV_INIT_TIMEOUT")).toBe("600");
        expect(edited.get("PLUGIN_IGNORE_UV_LOCK")).toBe("true");
    });

    it("keeps values with /, &, \\ and = intact", () => {
        expect(edited.get("INIT_PASSWORD")).toBe(INIT_PASSWORD);
        expect(edited.get("PIP_MIRROR_URL")).toBe(PIP_MIRROR);
        expect(edited.get("SECRET_KEY")).toBe(secrets.get("SECRET_KEY"));
    });

    it("leaves the plugin debugging port a bare port (Dify's api reads it as PLUGIN_REMOTE_INSTALL_PORT, an integer)", () => {
        // The loopback binding lives in the compose override (tests/components/compose-environment.test.ts).
        expect(edited.get("EXPOSE_PLUGIN_DEBUGGING_PORT")).toBe(original.get("EXPOSE_PLUGIN_DEBUGGING_PORT"));
        expect(edited.get("EXPOSE_PLUGIN_DEBUGGING_PORT")).toMatch(/^[0-9]+$/);
    });

    it("repairs the address an earlier bootstrap wrote into EXPOSE_PLUGIN_DEBUGGING_PORT", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dify-env-${version}-old-`));
        fs.writeFileSync(path.join(dir, ".env"), after.replace(/^EXPOSE_PLUGIN_DEBUGGING_PORT=.*$/m, "EXPOSE_PLUGIN_DEBUGGING_PORT=127.0.0.1:5003"));
        const repaired = configure(version, dir);
        expect(parseEnv(repaired.after).get("EXPOSE_PLUGIN_DEBUGGING_PORT")).toBe("5003");
    });

    it("changes no other line", () => {
        const beforeLines = before.split("\n");
        const afterLines = after.split("\n");
        // Appended after the release's last line (its final empty "line" moves down with them).
        const appended = afterLines.slice(beforeLines.length - 1, -1);
        expect(appended.map((line) => /^([A-Z0-9_]+)=/.exec(line)?.[1]).every((key) => key !== undefined && APPENDED_KEYS.has(key))).toBe(true);
        expect(afterLines).toHaveLength(beforeLines.length + appended.length);
        afterLines.slice(0, beforeLines.length - 1).forEach((line, i) => {
            const key = /^([A-Z0-9_]+)=/.exec(beforeLines[i])?.[1];
            if (key === undefined || !CHANGED_KEYS.has(key)) {
                expect(line, `line ${i + 1}`).toBe(beforeLines[i]);
            }
        });
    });

    it("is idempotent and reuses the kept secrets on a second run (a rebuilt instance)", () => {
        const again = configure(version, workDir);
        expect(again.after).toBe(after);
    });
});

describe("INIT_PASSWORD once the first admin exists", () => {
    it("stays empty when scrub_init_password left its marker on the data disk (a re-applied bootstrap, a rebuilt instance)", () => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "dify-env-admin-exists-"));
        fs.mkdirSync(path.join(workDir, "data", "dify"), { recursive: true });
        // runBootstrapFunctions points DIFY_BOOTSTRAP_DATA_MOUNT at workDir/data.
        fs.writeFileSync(path.join(workDir, "data", "dify", "admin-exists"), "2026-01-01T00:00:00Z\n");
        const { after } = configure("1.14.1", workDir);
        expect(parseEnv(after).get("INIT_PASSWORD")).toBe("");
        expect(after).not.toContain(INIT_PASSWORD);
        // Without the marker, the settings file's password goes in (the first boot).
        fs.rmSync(path.join(workDir, "data", "dify", "admin-exists"));
        expect(parseEnv(configure("1.14.1", workDir).after).get("INIT_PASSWORD")).toBe(INIT_PASSWORD);
    });
});
