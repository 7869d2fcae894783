// The real program (index.ts) under the real Pulumi engine: bad settings must stop `pulumi preview` with every
// problem named, before anything is planned. Runs on a copy of the program with a local file backend; nothing
// here needs the alicloud plugin, because validation happens before the first resource or lookup.
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { LocalBackend, createLocalBackend, runPulumi } from "../../scripts/pulumi-local-backend";

const root = path.resolve(__dirname, "..", "..");
let backend: LocalBackend;
let programDir: string;

function pulumi(...args: string[]) {
    return runPulumi(backend, programDir, args);
}

beforeAll(() => {
    backend = createLocalBackend({ passphrase: "preview-validation-test" });
    programDir = path.join(backend.dir, "program");
    fs.mkdirSync(programDir);
    for (const entry of ["Pulumi.yaml", "index.ts", "tsconfig.json", "package.json", "components", "config", "rules", "dynamic-providers"]) {
        fs.cpSync(path.join(root, entry), path.join(programDir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(root, "node_modules"), path.join(programDir, "node_modules"));
    const init = pulumi("stack", "init", "validation", "--secrets-provider", "passphrase");
    expect(init.status, init.stderr).toBe(0);
    for (const [key, value] of [
        ["alicloud:region", "cn-hangzhou"],
        ["adminEmail", "ops@example.com"],
    ]) {
        expect(pulumi("config", "set", key, value).status).toBe(0);
    }
    expect(pulumi("config", "set", "--secret", "dashscopeApiKey", "sk-validation-test-key").status).toBe(0);
});

describe("pulumi preview of the real program", () => {
    it("fails on bad settings with every problem, naming the key and what is allowed", () => {
        pulumi("config", "set", "difyVersion", "1.7.0");
        pulumi("config", "set", "adminCidr", "0.0.0.0/0");
        pulumi("config", "set", "instanceType", "ecs.u1-c1m1.large");
        pulumi("config", "set", "oauthAppType", "ServerApp");
        const preview = pulumi("preview");
        const output = preview.stdout + preview.stderr;
        expect(preview.status).not.toBe(0);
        expect(output).toContain("Invalid stack configuration");
        expect(output).toContain('dify-mcp-stack:difyVersion is "1.7.0"; allowed: 1.8.0 or later');
        expect(output).toContain("dify-mcp-stack:adminCidr is \"0.0.0.0/0\", which opens SSH to the whole internet");
        expect(output).toContain("Dify needs at least 2 vCPU and 4 GiB");
        expect(output).toContain('dify-mcp-stack:oauthAppType is "ServerApp"; allowed: WebApp, NativeApp');
        // A clean message, not a stack trace.
        expect(output).not.toMatch(/at parseStackSettings/);
        // The secret never shows up.
        expect(output).not.toContain("sk-validation-test-key");
    });

    it("names a missing required setting", () => {
        for (const key of ["difyVersion", "adminCidr", "instanceType", "oauthAppType", "adminEmail"]) {
            pulumi("config", "rm", key);
        }
        const preview = pulumi("preview");
        expect(preview.status).not.toBe(0);
        expect(preview.stdout + preview.stderr).toMatch(/adminEmail/);
    });
});
